# Image folders end to end: train on folder:DIR (PNG files of odd sizes
# brought to --image-size), evaluate, evaluate through a class map (the
# ObjectNet protocol), and undecodable files: an error naming the file, or
# left out and counted with --skip-bad-images.
. "$(dirname "$0")/cli_lib.sh"

DATA="$WORK/imgs"
python3 "$MIXREG_SOURCE_DIR/tests/make_image_folder.py" "$DATA" --per-class 12 || fail "could not write the image folder"
train() { # out args...
    local out=$1; shift
    "$BIN" train --data "folder:$DATA" --image-size 16 --epochs 3 --batch-size 8 --hidden 16 --threads 2 \
        --no-tensorboard --log-every 0 --val-split 0 --out "$out" "$@" > "$WORK/train.out" 2> "$WORK/train.err"
}
train "$WORK/run" --mixup-alpha 0.5 || fail "training on an image folder failed: $(cat "$WORK/train.err")"
check 'grep -q "36 train / 12 test, 3x16x16, 3 classes" "$WORK/train.out"'
"$BIN" eval "$WORK/run" --json > "$WORK/eval.json" 2> "$WORK/eval.err" || fail "eval failed: $(cat "$WORK/eval.err")"
check '[ "$(json_get "$WORK/eval.json" "j[\"plain\"][\"n\"]")" = 12 ]'
# Stripes and colours this distinct are learnt in three epochs.
check '[ "$(json_get "$WORK/eval.json" "j[\"plain\"][\"accuracy\"] >= 0.9")" = True ]'

# The model keeps its class names; evaluation matches the val folder's classes
# to them by name.
check '[ "$(python3 -c "import json,struct,sys; b=open(sys.argv[1],\"rb\").read(); n=struct.unpack(\"<Q\",b[:8])[0]; print(json.loads(b[8:8+n])[\"__metadata__\"][\"mixreg.classes\"])" "$WORK/run/model.safetensors")" = "[\"ant\",\"bee\",\"cow\"]" ]'
# Without its first class the val folder's bee would be scored as ant by
# position (accuracy near 0); by name it is bee.
mv "$DATA/val/ant" "$WORK/val-ant"
"$BIN" eval "$WORK/run" --json > "$WORK/noant.json" 2> "$WORK/noant.err" || fail "eval without ant failed: $(cat "$WORK/noant.err")"
check '[ "$(json_get "$WORK/noant.json" "j[\"plain\"][\"n\"]")" = 8 ]'
check '[ "$(json_get "$WORK/noant.json" "j[\"plain\"][\"accuracy\"] >= 0.9")" = True ]'
check '[ "$(wc -l < "$WORK/noant.err")" = 1 ] && grep -q "folder:.* (test): no images of 1 of the model.s 3 classes (ant)" "$WORK/noant.err"'
# A class the model does not have: an error naming it, for eval and before training.
mv "$WORK/val-ant" "$DATA/val/zebra"
expect_status 1 "(test): class 'zebra' is not one of the model's 3 classes (ant, bee, cow)" -- eval "$WORK/run"
expect_status 1 "class 'zebra' is not one of the model's 3 classes" -- predict "$WORK/run" --data "folder:$DATA"
train "$WORK/zebra"
ZEBRA_STATUS=$?
check '[ "$ZEBRA_STATUS" = 1 ] && grep -q "class .zebra. is not one of the model.s 3 classes" "$WORK/train.err"'
check '[ ! -e "$WORK/zebra" ]'
mv "$DATA/val/zebra" "$DATA/val/ant"
# predict takes JPEG and PNG files of any size for a folder model (the
# folder's recipe), and names the classes.
python3 -c "import sys; sys.path.insert(0, sys.argv[1]); import make_image_folder as m; open(sys.argv[2], 'wb').write(m.BEE_JPEG)" \
    "$MIXREG_SOURCE_DIR/tests" "$WORK/bee.jpg"
"$BIN" predict "$WORK/run" "$DATA/val/bee/001.png" "$WORK/bee.jpg" > "$WORK/predict.out" 2> "$WORK/predict.err" \
    || fail "predict failed: $(cat "$WORK/predict.err")"
check 'grep -q "val/bee/001.png:  1 (bee) " "$WORK/predict.out"'
check 'grep -q "bee.jpg:  [0-2] ([a-z]*) " "$WORK/predict.out"'

# A class map scoring only two of the three classes, one of them through two model classes.
printf '# dataset class -> model classes\nant\t0\ncow 2,1\n' > "$WORK/map.txt"
"$BIN" eval "$WORK/run" --class-map "$WORK/map.txt" --json > "$WORK/mapped.json" 2> "$WORK/mapped.err" \
    || fail "eval --class-map failed: $(cat "$WORK/mapped.err")"
check '[ "$(json_get "$WORK/mapped.json" "j[\"plain\"][\"n\"]")" = 8 ]'
check '[ "$(json_get "$WORK/mapped.json" "0 <= j[\"rescaled\"][\"accuracy\"] <= 1")" = True ]'
printf 'ant 0\nyak 1\n' > "$WORK/bad-map.txt"
expect_status 1 "bad-map.txt: line 2: .yak. is not a class" -- eval "$WORK/run" --class-map "$WORK/bad-map.txt"
printf 'ant 7\n' > "$WORK/bad-map2.txt"
expect_status 1 "bad-map2.txt: line 1: model class index 7 is out of range" -- eval "$WORK/run" --class-map "$WORK/bad-map2.txt"
expect_status 2 "folder" -- eval "$WORK/run" --data fashion-mnist --class-map "$WORK/map.txt"

# A file that does not decode: named, or skipped and counted.
python3 "$MIXREG_SOURCE_DIR/tests/make_image_folder.py" "$DATA" --per-class 12 --corrupt
train "$WORK/bad"
BAD_STATUS=$?
check '[ "$BAD_STATUS" = 1 ]'
check 'grep -q "zz-broken.png" "$WORK/train.err"'
train "$WORK/skip" --skip-bad-images || fail "--skip-bad-images failed: $(cat "$WORK/train.err")"
check 'grep -q "left out 1 image that failed to decode" "$WORK/train.err"'
# A JPEG cut short and sealed with an end marker: libjpeg only warns (and fills
# the rest with gray); it counts as a file that does not decode.
FULL_DATA=$DATA
DATA="$WORK/sealed"
python3 "$MIXREG_SOURCE_DIR/tests/make_image_folder.py" "$DATA" --per-class 12 --sealed-jpeg
train "$WORK/sealed-run"
SEALED_STATUS=$?
check '[ "$SEALED_STATUS" = 1 ]'
check 'grep -q "zz-photo.jpg: corrupt JPEG: premature end of data segment" "$WORK/train.err"'
train "$WORK/sealed-skip" --skip-bad-images || fail "--skip-bad-images failed: $(cat "$WORK/train.err")"
check 'grep -q "left out 1 image that failed to decode" "$WORK/train.err"'
# A few bytes of PNG declaring 16384 x 16384 pixels: over the limit, refused
# before anything is allocated; a file that does not decode like any other.
DATA="$WORK/huge"
python3 "$MIXREG_SOURCE_DIR/tests/make_image_folder.py" "$DATA" --per-class 12
python3 - "$DATA/train/cow/zz-huge.png" <<'PY'
import struct, sys, zlib
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
ihdr = struct.pack(">IIBBBBB", 16384, 16384, 8, 2, 0, 0, 0)
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 4096))
                             + chunk(b"IEND", b""))
PY
train "$WORK/huge-run"
HUGE_STATUS=$?
check '[ "$HUGE_STATUS" = 1 ]'
check 'grep -q "zz-huge.png: PNG image of 16384x16384 pixels (width x height) is over the limit of 67108864 pixels" "$WORK/train.err"'
train "$WORK/huge-skip" --skip-bad-images || fail "--skip-bad-images failed: $(cat "$WORK/train.err")"
check 'grep -q "left out 1 image that failed to decode" "$WORK/train.err"'
DATA=$FULL_DATA
expect_status 2 "--image-size" -- train --data "folder:$DATA" --image-size 4
rm -rf "$DATA/train/emu" && mkdir -p "$DATA/train/emu"
expect_status 1 "emu" -- train --data "folder:$DATA" --image-size 16 --out "$WORK/empty"
finish
