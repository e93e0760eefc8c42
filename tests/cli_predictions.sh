# eval --predictions: one mode's probabilities as p0.. (as always); with
# --rescale both, also the rescaled logits and the plain probabilities and
# logits, each block named by its mode, in .csv and .npy alike.
. "$(dirname "$0")/cli_lib.sh"

PY=${MIXREG_PYTHON:-$MIXREG_SOURCE_DIR/.venv/bin/python}
python3 "$MIXREG_SOURCE_DIR/tests/make_tiny_idx.py" "$WORK/tiny" 8 96 40 9 || fail "could not write the tiny dataset"
"$BIN" train --data "idx:$WORK/tiny" --model mlp --hidden 16 --epochs 2 --batch-size 16 --mixup-alpha 1 --threads 1 \
    --no-tensorboard --out "$WORK/run" > /dev/null 2>&1 || { fail "training failed"; finish; exit 1; }
for ext in csv npy; do
    for mode in off on both; do
        "$BIN" eval "$WORK/run" --rescale $mode --predictions "$WORK/$mode.$ext" --threads 1 > /dev/null 2> "$WORK/eval.err" \
            || fail "eval --rescale $mode --predictions .$ext failed: $(cat "$WORK/eval.err")"
    done
done
check '[ "$(head -n 1 "$WORK/off.csv")" = "index,label,p0,p1,p2,p3" ]'
check '[ "$(head -n 1 "$WORK/both.csv")" = "index,label,p0,p1,p2,p3,rescaled_logit0,rescaled_logit1,rescaled_logit2,rescaled_logit3,plain_p0,plain_p1,plain_p2,plain_p3,plain_logit0,plain_logit1,plain_logit2,plain_logit3" ]'
# The plain columns are a --rescale off run's predictions, the p columns a
# --rescale on run's, to the bit (.npy) and the digit (.csv); the logits give
# those probabilities; rescaling changed them (alpha 1: theta_bar 0.75).
check '"$PY" - "$WORK" <<PY
import csv, sys
import numpy as np
w = sys.argv[1]
C = 4
both, off, on = (np.load(f"{w}/{m}.npy") for m in ("both", "off", "on"))
assert both.shape == (40, 2 + 4 * C) and off.shape == on.shape == (40, 2 + C), (both.shape, off.shape)
assert (both[:, :2] == off[:, :2]).all()
assert (both[:, 2:2 + C] == on[:, 2:]).all()
assert (both[:, 2 + 2 * C:2 + 3 * C] == off[:, 2:]).all()
def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
assert np.allclose(softmax(both[:, 2 + C:2 + 2 * C].astype(np.float64)), both[:, 2:2 + C], atol=1e-6)
assert np.allclose(softmax(both[:, 2 + 3 * C:].astype(np.float64)), off[:, 2:], atol=1e-6)
assert np.abs(both[:, 2:2 + C] - off[:, 2:]).max() > 1e-3
rows = {m: list(csv.DictReader(open(f"{w}/{m}.csv"))) for m in ("both", "off", "on")}
for b, o, r in zip(rows["both"], rows["off"], rows["on"]):
    for c in range(C):
        assert b[f"plain_p{c}"] == o[f"p{c}"] and b[f"p{c}"] == r[f"p{c}"], (b, o, r)
PY'
finish
