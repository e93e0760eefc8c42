#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs each for a bounded
# time, starting from the committed fixtures: SECONDS_PER_TARGET (default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${SECONDS_PER_TARGET:-30}
OUT=build-fuzz
mkdir -p "$OUT"
FLAGS=(-std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -D_POSIX_C_SOURCE=200809L -DMIXREG_VERSION=\"fuzz\" -Iinclude -Isrc)
build() { # target sources...
    local target=$1; shift
    clang "${FLAGS[@]}" "$@" "tests/fuzz/$target.c" -o "$OUT/$target" $(pkg-config --cflags --libs libcjson zlib) -lm
}
build fuzz_safetensors src/core/error.c src/io/fileio.c src/io/safetensors.c
for target in "$OUT"/fuzz_*; do
    name=$(basename "$target")
    corpus="$OUT/corpus-$name"
    mkdir -p "$corpus"
    cp tests/fixtures/*.safetensors "$corpus/" 2> /dev/null || true
    echo "fuzzing $name for ${SECONDS_PER_TARGET}s"
    "$target" -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 "$corpus" 2>&1 | tail -n 3
done
echo "fuzzing finished without a crash"
