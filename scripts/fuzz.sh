#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.c; clang, ASan + UBSan) and
# runs each for a bounded time, one target per core at a time:
# SECONDS_PER_TARGET (default 30); TARGETS="a b" runs only those. Each starts
# from seeds made of real files (tests/fuzz/seeds/, the test fixtures,
# experiments/) with a dictionary of its format's tokens (tests/fuzz/<target>.dict,
# plus json.dict for the JSON readers). A crash fails the script with libFuzzer's
# report once the running targets end; the input is kept as build-fuzz/<target>-crash-*.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${SECONDS_PER_TARGET:-30}
OUT=build-fuzz
JOBS=$(nproc)
mkdir -p "$OUT/obj"
CFLAGS=(-std=c11 -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fopenmp -Wno-pass-failed
        -D_POSIX_C_SOURCE=200809L -DMIXREG_VERSION=\"fuzz\" -Iinclude -Isrc $(pkg-config --cflags libcjson cairo libpng libjpeg))
LIBS=($(pkg-config --libs libcjson cairo fontconfig libpng libjpeg zlib openblas) -ldnnl -lm -lpthread)

# The whole library with coverage instrumentation, as an archive: each target
# links only what it calls, so code moving between files needs no change here.
rm -f "$OUT"/obj/*.o "$OUT/libmixreg.a" "$OUT/build.log"
# Without MPI (dist_single.c) and without CUDA (none.c), as a plain build.
SOURCES=$(find src -name '*.c' ! -name dist_mpi.c | sort)
for src in $SOURCES; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
    clang "${CFLAGS[@]}" -fsanitize=fuzzer-no-link -c "$src" -o "$OUT/obj/$(tr / _ <<< "$src").o" 2>> "$OUT/build.log" &
done
wait
if [ "$(find "$OUT/obj" -name '*.o' | wc -l)" != "$(wc -w <<< "$SOURCES")" ]; then
    grep -A3 "error:" "$OUT/build.log" >&2
    exit 1
fi
ar rcs "$OUT/libmixreg.a" "$OUT"/obj/*.o
# C++'s operator new with slack, as in the sanitizer build (tests/sanitize/new_with_slack.c:
# oneDNN 2.6.3 reads a word past a vector when a loaded model plans small bfloat16 convolutions).
clang "${CFLAGS[@]}" -c tests/sanitize/new_with_slack.c -o "$OUT/new_with_slack.o"
ALL=()
for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    clang "${CFLAGS[@]}" -fsanitize=fuzzer "$src" "$OUT/new_with_slack.o" "$OUT/libmixreg.a" -o "$OUT/$name" "${LIBS[@]}"
    ALL+=("$name")
done
# fuzz_image's seeds are encoded by libjpeg and libpng, with the test fixtures' encoders.
clang -std=c11 -O1 -D_POSIX_C_SOURCE=200809L -Itests tests/fuzz/image_seeds.c -o "$OUT/image_seeds" \
    $(pkg-config --cflags --libs libjpeg libpng)

ramp() { printf "$(printf '\\x%02x' $(seq 0 $(($1 - 1))))"; } # the bytes 0 to $1 - 1 (at most 256)
pixels() { for _ in $(seq 12); do ramp 256; done; }          # 3072 bytes: one CIFAR image
seed() { # target corpus: real files of the kind the target reads
    if [ -d "tests/fuzz/seeds/$1" ]; then cp tests/fuzz/seeds/"$1"/* "$2/"; fi
    case $1 in
    fuzz_safetensors)  # the fixtures PyTorch wrote, cut to their smallest tensors
        for f in tests/fixtures/*.safetensors; do
            python3 tests/fuzz/shrink_safetensors.py "$f" "$2/fixture-$(basename "$f")" 2048
            python3 tests/fuzz/shrink_safetensors.py --text "$f" "$2/fixture-$(basename "$f" .safetensors).text" 2048
        done ;;
    fuzz_idx)
        { printf '\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00\x04'; ramp 24; } > "$2/seed-images"
        printf '\x00\x00\x08\x01\x00\x00\x00\x03\x00\x01\x02' > "$2/seed-labels"
        gzip -n -c "$2/seed-images" > "$2/seed-images.gz" ;;
    fuzz_cifar)
        { printf '\x03'; pixels; printf '\x09'; pixels; } > "$2/seed-cifar10"
        { printf '\x07\x2a'; pixels; printf '\x13\x63'; pixels; } > "$2/seed-cifar100" ;;
    fuzz_image) "$OUT/image_seeds" "$2" ;;
    fuzz_class_map) printf '# dataset class -> model classes\nant\t0,1\ndog fish\t6\ncow 2, 3\n' > "$2/seed-map" ;;
    fuzz_experiment) cp experiments/*.conf "$2/" ;;
    esac
}
dictionary() { # target: the dictionary file to use, if any
    local parts=()
    case $1 in
    fuzz_safetensors) parts=(fuzz_safetensors json) ;;
    fuzz_checkpoint) parts=(fuzz_safetensors fuzz_config_json json) ;;
    fuzz_config_json) parts=(fuzz_config_json json) ;;
    fuzz_run_files) parts=(fuzz_run_files json) ;;
    fuzz_experiment) parts=(fuzz_experiment) ;;
    fuzz_torch_pt) parts=(fuzz_torch_pt) ;;
    esac
    [ ${#parts[@]} = 0 ] && return
    for p in "${parts[@]}"; do cat "tests/fuzz/$p.dict"; done > "$OUT/$1.dict"
    echo "-dict=$OUT/$1.dict"
}
fuzz_one() { # target corpus: fuzzes it; on a crash prints libFuzzer's report and leaves $OUT/<target>.crashed
    local name=$1 corpus=$2
    # Leak checking stays on: a leak on a malformed file is a defect too. One
    # thread each, as the targets run side by side.
    if ! OMP_NUM_THREADS=1 "$OUT/$name" -max_total_time="$SECONDS_PER_TARGET" -timeout=25 -print_final_stats=1 \
        -artifact_prefix="$OUT/$name-" $(dictionary "$name") "$corpus" > "$OUT/$name.log" 2>&1; then
        { tail -n 60 "$OUT/$name.log"; echo "fuzz.sh: $name found a crash (input: $OUT/$name-crash-* or similar)"; } >&2
        touch "$OUT/$name.crashed"
        return
    fi
    echo "$name: $(grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$OUT/$name.log" | tr '\n' ' ')"
}
# The targets run $JOBS at a time: each is one process on one core. Seeding
# runs here, so that a failure there stops the script (set -e).
rm -f "$OUT"/*.crashed
for name in ${TARGETS:-${ALL[@]}}; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
    corpus="$OUT/corpus-$name"
    mkdir -p "$corpus"
    seed "$name" "$corpus"
    echo "fuzzing $name for ${SECONDS_PER_TARGET}s"
    fuzz_one "$name" "$corpus" &
done
wait
if compgen -G "$OUT/*.crashed" > /dev/null; then
    echo "fuzz.sh: a crash in $(basename -s .crashed "$OUT"/*.crashed | tr '\n' ' ')" >&2
    exit 1
fi
echo "fuzzing finished without a crash"
