# mixreg as an installed library: `cmake --install` of this build into a
# prefix gives the headers (with the umbrella mixreg/mixreg.h), libmixreg.so
# exporting only mx_* symbols, libmixreg.a, a pkg-config file and a CMake
# package; examples/predict_image.c builds against each way in and prints
# exactly what `mixreg predict` prints for the same run and image.
. "$(dirname "$0")/cli_lib.sh"

BUILD=$(dirname "$BIN")
PREFIX="$WORK/prefix"
cmake --install "$BUILD" --prefix "$PREFIX" > "$WORK/install.log" 2>&1 || fail "cmake --install failed: $(tail -3 "$WORK/install.log")"
LIBDIR=$(dirname "$(find "$PREFIX" -name libmixreg.so -print -quit)")
check '[ -f "$PREFIX/include/mixreg/mixreg.h" ] && [ -f "$LIBDIR/libmixreg.a" ] && [ -f "$LIBDIR/pkgconfig/mixreg.pc" ]'
check '[ -f "$LIBDIR/cmake/mixreg/mixregConfig.cmake" ]'
# Only the public API is exported: every defined dynamic symbol is mx_*.
check '[ -z "$(nm -D --defined-only "$LIBDIR/libmixreg.so" | awk "\$2 ~ /^[TDBR]\$/ && \$3 !~ /^mx_/ {print \$3}")" ]'
check 'nm -D --defined-only "$LIBDIR/libmixreg.so" | grep -q " T mx_run_load$"'

# A sanitizer build's library needs the program built the same way.
EXTRA=()
if nm "$BIN" 2> /dev/null | grep -q __asan_init; then EXTRA=(-fsanitize=address,undefined); fi
export PKG_CONFIG_PATH="$LIBDIR/pkgconfig"
CFLAGS=(-std=c11 -Wall -Wextra -Werror -pedantic "${EXTRA[@]}")
# shellcheck disable=SC2046
cc "${CFLAGS[@]}" "$MIXREG_SOURCE_DIR/examples/predict_image.c" $(pkg-config --cflags --libs mixreg) \
    -o "$WORK/predict_shared" 2> "$WORK/cc.err" || fail "example against the shared library: $(cat "$WORK/cc.err")"
# shellcheck disable=SC2046
cc "${CFLAGS[@]}" "$MIXREG_SOURCE_DIR/examples/predict_image.c" -static-libgcc $(pkg-config --cflags mixreg) \
    "$LIBDIR/libmixreg.a" $(pkg-config --static --libs-only-l --libs-only-other mixreg | sed 's/-lmixreg//') \
    -o "$WORK/predict_static" 2> "$WORK/cc-static.err" || fail "example against the static library: $(cat "$WORK/cc-static.err")"
mkdir -p "$WORK/consumer"
cat > "$WORK/consumer/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.18)
project(consumer C)
find_package(mixreg REQUIRED)
add_executable(predict_image "$MIXREG_SOURCE_DIR/examples/predict_image.c")
target_compile_options(predict_image PRIVATE ${EXTRA[*]})
target_link_options(predict_image PRIVATE ${EXTRA[*]})
target_link_libraries(predict_image PRIVATE mixreg::mixreg)
CMAKE
{ cmake -S "$WORK/consumer" -B "$WORK/consumer/build" -DCMAKE_PREFIX_PATH="$PREFIX" && cmake --build "$WORK/consumer/build"; } \
    > "$WORK/consumer.log" 2>&1 || fail "find_package(mixreg) consumer: $(tail -5 "$WORK/consumer.log")"

# A small Mixup run and an image of its size: the example's output is predict's.
python3 "$MIXREG_SOURCE_DIR/tests/make_tiny_idx.py" "$WORK/tiny" 12 64 16 3 || fail "could not write the tiny dataset"
"$BIN" train --model lenet5 --data "idx:$WORK/tiny" --mixup-alpha 1 --max-steps 3 --batch-size 16 --no-tensorboard \
    --threads 1 --out "$WORK/run" > /dev/null 2> "$WORK/train.err" || fail "training failed: $(cat "$WORK/train.err")"
python3 - "$WORK/img.png" <<'PY'
import struct, sys, zlib
w = h = 12
rows = b"".join(b"\x00" + bytes(v for x in range(w) for v in ((x * 37 + y * 11) % 256,) * 3) for y in range(h))
chunk = lambda k, d: struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d) & 0xFFFFFFFF)
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                              + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
PY
"$BIN" predict "$WORK/run" "$WORK/img.png" > "$WORK/want.txt" 2> "$WORK/predict.err" || fail "predict failed: $(cat "$WORK/predict.err")"
# predict's first line names the mode ("rescaled prediction (theta_bar ...)"), then one line per image.
check 'grep -q "^rescaled prediction" "$WORK/want.txt" && [ "$(wc -l < "$WORK/want.txt")" = 2 ]'
tail -n 1 "$WORK/want.txt" > "$WORK/want-line.txt"
for prog in "$WORK/predict_shared" "$WORK/predict_static" "$WORK/consumer/build/predict_image"; do
    LD_LIBRARY_PATH="$LIBDIR" "$prog" "$WORK/run" "$WORK/img.png" > "$WORK/got.txt" 2> "$WORK/got.err" \
        || fail "$prog failed: $(cat "$WORK/got.err")"
    check 'diff "$WORK/want-line.txt" "$WORK/got.txt" > /dev/null'
done
finish
