# Interoperability: Python's safetensors reads mixreg's model file, and PyTorch
# with the loaded weights gives the probabilities mixreg eval writes (1e-5).
. "$(dirname "$0")/cli_lib.sh"

PY=${MIXREG_PYTHON:-$MIXREG_SOURCE_DIR/.venv/bin/python}
if ! "$PY" -c "import safetensors, torch, numpy" 2> /dev/null; then
    fail "$PY lacks safetensors/torch/numpy: run scripts/install-deps.sh"
    # A checkpoint whose tensor has the wrong shape for its model is a clear error.
mkdir -p "$WORK/bad"
"$PY" - "$WORK/run/model.safetensors" "$WORK/bad/model.safetensors" <<'PY'
import sys
from safetensors import safe_open
from safetensors.numpy import load_file, save_file
t = load_file(sys.argv[1])
with safe_open(sys.argv[1], "numpy") as f:
    meta = f.metadata()
t["1.weight"] = t["1.weight"][:100].copy()
save_file(t, sys.argv[2], metadata=meta)
PY
expect_status 1 "1.weight" -- eval "$WORK/bad"
finish; exit 1
fi
"$BIN" train --epochs 1 --max-steps 100 --threads 2 --out "$WORK/run" > /dev/null 2>&1 || fail "training failed"
"$BIN" eval "$WORK/run" --rescale off --predictions "$WORK/pred.npy" > /dev/null || fail "eval --predictions failed"
CHECKS=$((CHECKS + 1))
"$PY" "$MIXREG_SOURCE_DIR/tests/interop_torch.py" "$WORK/run" "$WORK/pred.npy" "${MIXREG_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}" \
    || fail "PyTorch disagrees with mixreg"
# A checkpoint whose tensor has the wrong shape for its model is a clear error.
mkdir -p "$WORK/bad"
"$PY" - "$WORK/run/model.safetensors" "$WORK/bad/model.safetensors" <<'PY'
import sys
from safetensors import safe_open
from safetensors.numpy import load_file, save_file
t = load_file(sys.argv[1])
with safe_open(sys.argv[1], "numpy") as f:
    meta = f.metadata()
t["1.weight"] = t["1.weight"][:100].copy()
save_file(t, sys.argv[2], metadata=meta)
PY
expect_status 1 "1.weight" -- eval "$WORK/bad"
finish
