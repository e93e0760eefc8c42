# mixreg import: usage errors; crafted .pt files refused with one line and
# exit 1, nothing written; then a randomly initialised torchvision resnet50
# saved as .safetensors, .pt, a float16 training checkpoint (.pt, with
# DataParallel's "module." prefix) and bfloat16 .safetensors, imported and
# evaluated on a tiny image folder: mixreg's logits equal torchvision's
# (tests/import_torch.py states the tolerance), and --rescale-from gives the
# run whose `eval --rescale on` is the paper's rescaled prediction. The
# torchvision part needs torch and torchvision (python3-torchvision): without
# them the test says so and exits 77 (skipped).
. "$(dirname "$0")/cli_lib.sh"

PY=${MIXREG_PYTHON:-$MIXREG_SOURCE_DIR/.venv/bin/python}

# ---- Usage errors (exit 2), found before any file is read ----
expect_status 2 "missing --arch" -- import x.pt --out "$WORK/u"
expect_status 2 "missing --out" -- import x.pt --arch resnet50
expect_status 2 "missing FILE" -- import --arch resnet50 --out "$WORK/u"
expect_status 2 "--rescale-from and --alpha go together" -- import x.pt --arch resnet50 --out "$WORK/u" --alpha 1
expect_status 2 "--input must be CxHxW" -- import x.pt --arch resnet50 --out "$WORK/u" --input 3x64
expect_status 2 "--input must be CxHxW" -- import x.pt --arch resnet50 --out "$WORK/u" --input 3x64x64x1
expect_status 2 "unknown 'resnet51'" -- import x.pt --arch resnet51 --out "$WORK/u"
expect_status 2 "give the normalisation the model was trained with" -- import x.pt --arch resnet50 --out "$WORK/u" \
    --normalize computed
expect_status 2 "unknown flag '--epochs'" -- import x.pt --arch resnet50 --out "$WORK/u" --epochs 3
check '[ ! -e "$WORK/u" ]'

# ---- Crafted .pt files (Python's zipfile and hand-written pickles, no torch needed) ----
python3 - "$WORK/crafted" <<'PY'
import os, struct, sys, zipfile
out = sys.argv[1]
os.makedirs(out)
def s(text):  # BINUNICODE
    return b"X" + struct.pack("<I", len(text)) + text.encode()
def tensor(numel, size):  # _rebuild_tensor_v2 of a 1-D FloatStorage "0"
    return (b"ctorch._utils\n_rebuild_tensor_v2\n((" + s("storage") + b"ctorch\nFloatStorage\n" + s("0") + s("cpu")
            + b"K" + bytes([numel]) + b"tQK\x00K" + bytes([size]) + b"\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtR")
state_dict = b"\x80\x02ccollections\nOrderedDict\n)R(" + s("w") + tensor(2, 2) + b"u."
def archive(name, pickle, storage=b"\x00" * 8, method=zipfile.ZIP_STORED):
    with zipfile.ZipFile(os.path.join(out, name + ".pt"), "w", compression=method) as z:
        z.writestr("archive/data.pkl", pickle)
        z.writestr("archive/data/0", storage)
archive("minimal", state_dict)
archive("evil", b"\x80\x02cos\nsystem\n" + s("echo hacked > /tmp/mixreg-pwned") + b"\x85R.")
archive("opcode", b"\x80\x02cbuiltins\neval\n.")
archive("short", state_dict, storage=b"\x00" * 4)
archive("deflated", state_dict, method=zipfile.ZIP_DEFLATED)
whole = open(os.path.join(out, "minimal.pt"), "rb").read()
open(os.path.join(out, "truncated.pt"), "wb").write(whole[: len(whole) // 2])
at = whole.index(b"archive/data/0" + b"\x00" * 8)  # the local header's name, then the 8 bytes of the storage
damaged = bytearray(whole)
damaged[at + len("archive/data/0") + 3] ^= 0x40
open(os.path.join(out, "crc.pt"), "wb").write(bytes(damaged))
open(os.path.join(out, "legacy.pt"), "wb").write(state_dict)  # a bare pickle: torch.save before 1.6
PY
while read -r name pattern; do
    expect_status 1 "$pattern" -- import "$WORK/crafted/$name.pt" --arch resnet50 --out "$WORK/c-$name"
    check "[ ! -e '$WORK/c-$name/model.safetensors' ]"
done <<'CASES'
minimal more than the file can hold
evil refusing the global 'os.system'
opcode refusing the global 'builtins.eval'
short storage 0 holds 4 bytes, not the 8 declared
deflated compressed (method 8)
truncated no zip end-of-central-directory record
crc fails its CRC-32 check
legacy an old-style torch.save file
CASES
check '[ ! -e /tmp/mixreg-pwned ]'

# ---- torchvision's resnet50 ----
if ! "$PY" -c "import numpy, PIL, safetensors, torch, torchvision" 2> /dev/null; then
    echo "cli_import: $PY lacks torch/torchvision (python3-torchvision): the torchvision checks are skipped"
    finish || exit 1
    exit 77
fi
W=$WORK/w
mkdir -p "$W"
"$PY" "$MIXREG_SOURCE_DIR/tests/import_torch.py" make "$W" || fail "making the torchvision fixtures failed"
specs=()  # weights,predictions[,run]: checked against torchvision in one Python process below
for f in weights.safetensors weights.pt weights-f16-ckpt.pt weights-bf16.safetensors; do
    run=$WORK/run-$f
    CHECKS=$((CHECKS + 1))
    if ! "$BIN" import "$W/$f" --arch resnet50 --input 3x64x64 --classes 3 --out "$run" > "$WORK/import.out"; then
        fail "import $f failed"
        continue
    fi
    grep -q "3x64x64 input, 3 classes" "$WORK/import.out" || fail "import $f: $(cat "$WORK/import.out")"
    "$BIN" eval "$run" --data "folder:$W/images" --rescale off --predictions "$WORK/p-$f.npy" > /dev/null 2>&1 \
        || fail "eval of the import of $f failed"
    specs+=("$W/$f,$WORK/p-$f.npy")
    if [ "$f" = weights.pt ]; then
        cp "$WORK/p-$f.npy" "$WORK/plain.npy"
        cp -r "$run" "$WORK/plain-run"
        # predict's top class is eval's (and so torchvision's).
        "$BIN" predict "$run" --data "folder:$W/images" --limit 7 --top 1 > "$WORK/predict.out" 2> /dev/null \
            || fail "predict failed"
        check "[ \"\$(awk 'NR > 1 {print \$5}' '$WORK/predict.out' | tr '\n' ' ')\" = \
\"\$("$PY" -c 'import numpy; p = numpy.load(\"$WORK/plain.npy\"); print(\" \".join(str(int(c)) for c in p[:, 2:].argmax(1)))') \" ]"
        expect_status 1 "already holds a run" -- import "$W/$f" --arch resnet50 --input 3x64x64 --out "$run"
    fi
    rm -rf "$run"
done
expect_status 1 "has 3 rows (classes), not the 4 asked for" -- import "$W/weights.pt" --arch resnet50 --classes 4 \
    --out "$WORK/four"
expect_status 1 "has shape \[64x3x7x7\], the model's is \[64x1x7x7\]" -- import "$W/weights.pt" --arch resnet50 \
    --input 1x64x64 --out "$WORK/gray"
check '[ ! -e "$WORK/four/model.safetensors" ] && [ ! -e "$WORK/gray/model.safetensors" ]'

# --rescale-from: x_bar and y_bar from the folder's training split, theta_bar from alpha; the run's data is the folder.
run=$WORK/run-rescaled
"$BIN" import "$W/weights.pt" --arch resnet50 --input 3x64x64 --rescale-from "folder:$W/images" --alpha 1 \
    --out "$run" > "$WORK/import.out" || fail "import --rescale-from failed"
check "grep -q 'theta_bar 0.750000 (alpha 1), x_bar and y_bar from 10 training images' '$WORK/import.out'"
"$BIN" eval "$run" --rescale on --predictions "$WORK/p.npy" --json > "$WORK/eval.json" 2> /dev/null \
    || fail "eval --rescale on of the rescaled import failed"
check '[ "$(json_get "$WORK/eval.json" "sorted(j) == [\"rescaled\", \"theta_bar\"] and j[\"theta_bar\"] == 0.75")" = True ]'
specs+=("$W/weights.pt,$WORK/p.npy,$run")
CHECKS=$((CHECKS + ${#specs[@]}))
"$PY" "$MIXREG_SOURCE_DIR/tests/import_torch.py" check "$W" "${specs[@]}" \
    || fail "mixreg's predictions (plain for each file, then rescaled) disagree with torchvision's"

# docs/objectnet.md on a fake ObjectNet: mapping files in ObjectNet's formats for a 3-class "ImageNet" (its
# label file in another order than the model's classes), the class map scripts/objectnet_class_map.py makes of
# them, and eval on a folder of 3 ObjectNet classes, one unmapped, scored by the ObjectNet rule.
M=$WORK/objectnet/mappings
mkdir -p "$M" "$WORK/objectnet/images"
cp -r "$W/images/val/ant" "$WORK/objectnet/images/alarm_clock"
cp -r "$W/images/val/bee" "$WORK/objectnet/images/banana"
cp -r "$W/images/val/cow" "$WORK/objectnet/images/unmapped_thing"
printf 'cow, moo cow\nant, emmet\nbee\n' > "$M/imagenet_to_label_2012_v2"
echo '{"0": 1, "1": 2, "2": 0}' > "$M/pytorch_to_imagenet_2012_id.json"
echo '{"alarm_clock": "Alarm clock", "banana": "Banana", "unmapped_thing": "Unmapped thing"}' \
    > "$M/folder_to_objectnet_label.json"
echo '{"Banana": "bee; cow, moo cow", "Alarm clock": "ant, emmet"}' > "$M/objectnet_to_imagenet_1k.json"
python3 "$MIXREG_SOURCE_DIR/scripts/objectnet_class_map.py" "$M" > "$WORK/objectnet.map" || fail "objectnet_class_map.py failed"
check "[ \"\$(grep -v '^#' '$WORK/objectnet.map')\" = \"\$(printf 'alarm_clock\t0\nbanana\t1,2')\" ]"
"$BIN" eval "$WORK/plain-run" --data "folder:$WORK/objectnet/images" --class-map "$WORK/objectnet.map" --rescale off \
    --json > "$WORK/objectnet.json" 2> /dev/null || fail "eval on the fake ObjectNet failed"
# Expected: alarm_clock's images (val/ant) right when class 0 scores highest, banana's (val/bee) when 1 or 2 does.
expect=$("$PY" -c "import numpy; p = numpy.load('$WORK/plain.npy')[:, 2:].argmax(1); \
print(round(float(((p[:2] == 0).sum() + (p[2:5] != 0).sum()) / 5), 6))")
check '[ "$(json_get "$WORK/objectnet.json" "(j[\"plain\"][\"n\"], j[\"plain\"][\"accuracy\"])")" = "(5, $expect)" ]'
finish
