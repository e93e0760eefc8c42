#!/usr/bin/env bash
# Builds mixreg twice, as released and with AddressSanitizer + UndefinedBehaviorSanitizer,
# and runs the whole test suite (ctest) on both.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMIXREG_MPI=ON > /dev/null
cmake --build build -j "$JOBS"
ctest --test-dir build --output-on-failure -j "$JOBS"
cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMIXREG_SANITIZE=ON -DMIXREG_MPI=ON > /dev/null
cmake --build build-sanitize -j "$JOBS"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --test-dir build-sanitize --output-on-failure -j "$JOBS"
