# Crafted checkpoints: a model.safetensors whose header or stored model
# declares what its tensors do not hold is one error line and exit 1 from every
# command that reads a run (eval, predict, analyze, train --resume), never a
# crash or an allocation the size of the declared model.
. "$(dirname "$0")/cli_lib.sh"

python3 "$(dirname "$0")/make_tiny_idx.py" "$WORK/data" 8 64 32 1
DATA=(--data "idx:$WORK/data")
for model in mlp resnet20; do
    if ! "$BIN" train "${DATA[@]}" --model "$model" --hidden 16 --epochs 2 --batch-size 16 --max-steps 1 --threads 1 \
        --no-tensorboard --out "$WORK/$model" > /dev/null 2> "$WORK/train.err"; then
        CHECKS=$((CHECKS + 1))
        fail "training $model failed: $(cat "$WORK/train.err")"
        finish; exit 1
    fi
done

# craft SRC DST EDIT [ARGS]: DST is run directory SRC with its model.safetensors
# header edited: dup-metadata (a second "__metadata__" object), model KEY JSON
# (one field of the stored model), x_bar-shape JSON (the rescale tensor's shape).
craft() {
    rm -rf "$2"
    cp -r "$1" "$2"
    python3 - "$2/model.safetensors" "${@:3}" <<'PY'
import json, struct, sys
path, edit, args = sys.argv[1], sys.argv[2], sys.argv[3:]
b = open(path, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
meta = h.pop("__metadata__")
if edit == "model":
    m = json.loads(meta["mixreg.model"])
    m[args[0]] = json.loads(args[1])
    meta["mixreg.model"] = json.dumps(m)
elif edit == "x_bar-shape":
    h["mixreg.rescale.x_bar"]["shape"] = json.loads(args[0])
text = json.dumps(h)
if edit == "dup-metadata":  # the second object is longer: it used to be written past the first's table
    extra = {"k%d" % i: "v" for i in range(40)}
    text = '{"__metadata__":' + json.dumps(meta) + ',"__metadata__":' + json.dumps(extra) + "," + text[1:]
else:
    text = '{"__metadata__":' + json.dumps(meta) + "," + text[1:]
text += " " * (-len(text) % 8)
open(path, "wb").write(struct.pack("<Q", len(text)) + text.encode() + b[8 + n:])
PY
}

# every_reader DIR PATTERN: each command that loads the run fails cleanly.
every_reader() {
    expect_status 1 "$2" -- eval "$1" "${DATA[@]}" --threads 1
    expect_status 1 "$2" -- predict "$1" "${DATA[@]}"
    expect_status 1 "$2" -- analyze "$1" "${DATA[@]}" --threads 1 --samples 8
    expect_status 1 "$2" -- train --resume "$1" --threads 1
}

for model in mlp resnet20; do
    craft "$WORK/$model" "$WORK/dup" dup-metadata
    every_reader "$WORK/dup" "__metadata__' appears twice"
    for field in "in_height 1000000000" "in_width 4611686018427387904" "in_channels 3" "num_classes 1000000000" \
                 "num_classes 2147483648" "in_height 4096"; do
        craft "$WORK/$model" "$WORK/field" model $field
        every_reader "$WORK/field" "model.safetensors"
    done
    # The declared input and the rescale tensor's shape agree, but the file cannot hold it.
    craft "$WORK/$model" "$WORK/shape" x_bar-shape "[1, 1000000000, 1000000000]"
    every_reader "$WORK/shape" "model.safetensors"
done
# Hidden widths whose weights the file cannot hold: refused before they are allocated.
craft "$WORK/mlp" "$WORK/wide" model hidden "[65536, 65536, 65536, 65536, 65536, 65536, 65536, 65536]"
every_reader "$WORK/wide" "more than the file can hold"
# The untouched runs still load.
expect_status 0 "" -- eval "$WORK/mlp" "${DATA[@]}" --threads 1
expect_status 0 "" -- eval "$WORK/resnet20" "${DATA[@]}" --threads 1
finish
