# Convolutional models end to end on a tiny IDX dataset (1x16x16, 4 classes):
# train, eval and analyze a resnet20; a resume from a mid-epoch checkpoint ends
# bit-identical to the uninterrupted run (batch-norm running statistics, and
# WideResNet's dropout generator, included); the checkpoint holds the buffers under their PyTorch names and
# loads into the PyTorch module with load_state_dict(strict=True), which then
# gives mixreg eval's probabilities; every mixing option trains a CNN; a model
# that does not fit the images is refused before training.
. "$(dirname "$0")/cli_lib.sh"

# Images: a class-dependent bright square on noise, so the models have something to learn.
make_idx() {  # DIR SIZE TRAIN TEST
    python3 "$MIXREG_SOURCE_DIR/tests/make_tiny_idx.py" "$@" 7
}
make_idx "$WORK/tiny" 16 96 40 || fail "could not write the tiny dataset"
make_idx "$WORK/tiny8" 8 32 8 || fail "could not write the 8x8 dataset"
DATA="idx:$WORK/tiny"

# 96 / 16 = 6 steps per epoch, 18 in all, a checkpoint every 2 steps, all kept.
ARGS=(--model resnet20 --data "$DATA" --epochs 3 --batch-size 16 --lr 0.05 --seed 3 --threads 2 --save-every 2steps
      --keep 10 --log-every 1 --no-tensorboard)
"$BIN" train "${ARGS[@]}" --out "$WORK/straight" > /dev/null 2> "$WORK/train.err" \
    || fail "resnet20 training failed: $(cat "$WORK/train.err")"
check '[ -f "$WORK/straight/checkpoints/step-0000000008.safetensors" ]'

# Resume from step 8 (epoch 2, step 2 of 6): the same final bits, running statistics included.
mkdir -p "$WORK/resumed"
cp "$WORK/straight/checkpoints/step-0000000008.safetensors" "$WORK/resumed/model.safetensors"
"$BIN" train --resume "$WORK/resumed" > /dev/null 2> "$WORK/resume.err" \
    || fail "resume failed: $(cat "$WORK/resume.err")"
check 'tensors_equal "$WORK/straight/model.safetensors" "$WORK/resumed/model.safetensors"'
# The same with WideResNet's dropout: its generator state is a checkpointed buffer.
DROP=("${ARGS[@]}" --model wrn-10-1-0.3)
"$BIN" train "${DROP[@]}" --out "$WORK/drop" > /dev/null 2> "$WORK/drop.err" || fail "wrn dropout training failed: $(cat "$WORK/drop.err")"
mkdir -p "$WORK/drop-resumed"
cp "$WORK/drop/checkpoints/step-0000000010.safetensors" "$WORK/drop-resumed/model.safetensors"
"$BIN" train --resume "$WORK/drop-resumed" > /dev/null 2>&1 || fail "wrn dropout resume failed"
check 'tensors_equal "$WORK/drop/model.safetensors" "$WORK/drop-resumed/model.safetensors"'

# The buffers in the file: PyTorch names, running statistics as F32, counters as
# 0-dimensional I64 equal to the number of training forwards (18 steps).
check '[ "$(python3 - "$WORK/straight/model.safetensors" <<'"'"'PY'"'"'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
h = json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])
n = 8 + struct.unpack("<Q", b[:8])[0]
t = h["L.8.b2.num_batches_tracked"]
count = struct.unpack("<q", b[n + t["data_offsets"][0]:n + t["data_offsets"][1]])[0]
ok = (h["b.running_mean"]["dtype"] == "F32" and h["b.running_var"]["shape"] == [16]
      and t["dtype"] == "I64" and t["shape"] == [] and count == 18
      and "mixreg.optim.momentum.b.weight" in h and "mixreg.optim.momentum.b.running_mean" not in h)
print(ok)
PY
)" = True ]'

# eval (eval mode: running statistics) and analyze (input gradients in eval mode).
"$BIN" eval "$WORK/straight" --json --threads 2 > "$WORK/eval.json" 2> "$WORK/eval.err" \
    || fail "eval failed: $(cat "$WORK/eval.err")"
check '[ "$(json_get "$WORK/eval.json" "j[\"plain\"][\"n\"] == 40 and 0 <= j[\"plain\"][\"accuracy\"] <= 1")" = True ]'
"$BIN" analyze "$WORK/straight" --json --samples 20 --threads 2 > "$WORK/analyze.json" 2> "$WORK/analyze.err" \
    || fail "analyze failed: $(cat "$WORK/analyze.err")"
check '[ "$(json_get "$WORK/analyze.json" "j[\"samples\"] == 20 and j[\"lipschitz_max\"] >= j[\"lipschitz_mean\"] > 0")" = True ]'

# PyTorch: python/mixreg/torch.py's from_run builds the run's module, loads the
# weights and buffers strictly and, in eval mode, gives eval's probabilities.
PY=${MIXREG_PYTHON:-$MIXREG_SOURCE_DIR/.venv/bin/python}
"$BIN" eval "$WORK/straight" --rescale off --predictions "$WORK/pred.npy" --threads 2 > /dev/null \
    || fail "eval --predictions failed"
if "$PY" -c "import torch, numpy" 2> /dev/null; then
    CHECKS=$((CHECKS + 1))
    "$PY" - "$MIXREG_SOURCE_DIR/python" "$WORK/straight" "$WORK/pred.npy" "$WORK/tiny" <<'PY' \
        || fail "PyTorch disagrees with mixreg's resnet20"
import json, os, struct, sys
import numpy as np, torch
sys.path.insert(0, sys.argv[1])
from mixreg.torch import from_run
run, pred, data = sys.argv[2:5]
model = from_run(run)
assert not model.training
norm = json.loads(model.mixreg_meta["mixreg.normalize"])
raw = open(os.path.join(data, "t10k-images-idx3-ubyte"), "rb").read()
n, h, w = struct.unpack(">III", raw[4:16])
x = torch.tensor(np.frombuffer(raw, np.uint8, offset=16).reshape(n, 1, h, w).astype(np.float32) / 255.0)
x = (x - norm["mean"][0]) / norm["std"][0]
with torch.no_grad():
    probs = torch.softmax(model(x).double(), 1).numpy()
p = np.load(pred)
diff = np.abs(p[:, 2:] - probs).max()
print(f"PyTorch resnet20 vs mixreg eval: max |probability difference| {diff:.2e}")
sys.exit(0 if diff < 1e-4 else 1)
PY
else
    fail "$PY lacks torch/numpy: run scripts/install-deps.sh"
fi

# Every mixing and augmentation option trains the CNNs (a few steps each).
i=0
for opts in "--mixup-mode elem --mixup-partner flip" "--mixup-mode pair --mixup-theta" "--cutmix-alpha 1" \
            "--cutmix-alpha 1 --cutmix-switch-prob 0.5 --mix-prob 0.5" "--mixup-alpha 0" "--augment crop:2,flip" \
            "--mixup-only-inputs --label-smoothing 0.1" "--rescale-stats clean --nesterov --workers 2"; do
    for model in lenet5 resnet20 preact18 wrn-10-1; do
        i=$((i + 1))
        # shellcheck disable=SC2086
        "$BIN" train --model "$model" --data "$DATA" --epochs 1 --max-steps 2 --batch-size 8 --threads 2 \
            --no-tensorboard $opts --out "$WORK/opt$i" > /dev/null 2> "$WORK/opt.err" \
            || fail "--model $model $opts failed: $(cat "$WORK/opt.err")"
        check '[ -f "$WORK/opt$i/result.json" ]'
    done
done

# Models that do not fit, or do not exist: refused before anything is written.
expect_status 2 "lenet5" -- train --model lenet5 --data "idx:$WORK/tiny8" --epochs 1 --out "$WORK/small"
check '[ ! -e "$WORK/small" ]'
expect_status 2 "wrn-D-K" -- train --model resnet21 --data "$DATA" --out "$WORK/bad"
expect_status 2 "unknown" -- train --model wrn-27-10 --data "$DATA" --out "$WORK/bad"
finish
