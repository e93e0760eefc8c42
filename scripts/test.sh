#!/usr/bin/env bash
# Builds mixreg twice, as released and with AddressSanitizer + UndefinedBehaviorSanitizer,
# and runs the whole test suite (ctest) on both.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMIXREG_MPI=ON > /dev/null
cmake --build build -j "$JOBS"
ctest --test-dir build --output-on-failure -j "$JOBS"
# The sanitizer build without the cuda backend (the release one has it where
# the toolkit is installed): so both of --backend cuda's refusals, "built
# without CUDA" and "no CUDA device visible", are tested (tests/cli_backend.sh).
cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMIXREG_SANITIZE=ON -DMIXREG_MPI=ON -DMIXREG_CUDA=OFF > /dev/null
cmake --build build-sanitize -j "$JOBS"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --test-dir build-sanitize --output-on-failure -j "$JOBS"
