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
    clang "${FLAGS[@]}" "$@" "tests/fuzz/$target.c" -o "$OUT/$target" $(pkg-config --cflags --libs libcjson zlib libjpeg libpng) -lm
}
build fuzz_safetensors src/core/error.c src/io/fileio.c src/io/safetensors.c
build fuzz_idx src/core/error.c src/data/idx.c
# The image decoders and resampling.
IMAGE=(src/data/image.c src/data/image_jpeg.c src/data/image_png.c src/data/image_resample.c)
# dataset.c with what it calls for streamed datasets (decoding, augmentation).
DATASET=(src/core/error.c src/core/rng.c src/io/fileio.c src/data/dataset.c src/data/idx.c src/data/subset.c
         src/data/stream.c src/data/augment.c src/data/resized_crop.c src/data/folder.c src/data/classes.c "${IMAGE[@]}")
build fuzz_cifar src/data/cifar.c "${DATASET[@]}"
build fuzz_image src/core/error.c src/io/fileio.c "${IMAGE[@]}"
build fuzz_class_map "${DATASET[@]}"
# fuzz_image's seeds are encoded by libjpeg and libpng, with the test fixtures' encoders.
clang -std=c11 -O1 -D_POSIX_C_SOURCE=200809L -Itests tests/fuzz/image_seeds.c -o "$OUT/image_seeds" \
    $(pkg-config --cflags --libs libjpeg libpng)

ramp() { printf "$(printf '\\x%02x' $(seq 0 $(($1 - 1))))"; } # the bytes 0 to $1 - 1 (at most 256)
pixels() { for _ in $(seq 12); do ramp 256; done; }          # 3072 bytes: one CIFAR image
seed() { # target corpus: writes a small valid file of each kind the target reads
    case $1 in
    fuzz_safetensors) cp tests/fixtures/*.safetensors "$2/" ;;
    fuzz_idx)
        { printf '\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00\x04'; ramp 24; } > "$2/seed-images"
        printf '\x00\x00\x08\x01\x00\x00\x00\x03\x00\x01\x02' > "$2/seed-labels"
        gzip -n -c "$2/seed-images" > "$2/seed-images.gz" ;;
    fuzz_cifar)
        { printf '\x03'; pixels; printf '\x09'; pixels; } > "$2/seed-cifar10"
        { printf '\x07\x2a'; pixels; printf '\x13\x63'; pixels; } > "$2/seed-cifar100" ;;
    fuzz_image) "$OUT/image_seeds" "$2" ;;
    fuzz_class_map) printf '# dataset class -> model classes\nant\t0,1\ndog fish\t6\ncow 2, 3\n' > "$2/seed-map" ;;
    esac
}
for target in "$OUT"/fuzz_*; do
    name=$(basename "$target")
    corpus="$OUT/corpus-$name"
    mkdir -p "$corpus"
    seed "$name" "$corpus"
    echo "fuzzing $name for ${SECONDS_PER_TARGET}s"
    "$target" -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 "$corpus" 2>&1 | tail -n 3
done
echo "fuzzing finished without a crash"
