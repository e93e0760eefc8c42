# experiments/rescale_probe.py on a small resnet20 Mixup run and an ERM one:
# its plain and rescaled predictions are eval's (the same metrics to the
# printed digits), T = 1 is the plain prediction in every column, the logit
# step alone never changes the accuracy and the input step alone has the
# accuracy of both steps (balanced classes: y_bar is uniform), the ERM run's batch norms see their
# own variance and the tables name every run. Skipped (77) where PyTorch is
# not importable.
. "$(dirname "$0")/cli_lib.sh"

PY=${MIXREG_PYTHON:-$MIXREG_SOURCE_DIR/.venv/bin/python}
if ! "$PY" -c "import torch, numpy" 2> /dev/null; then
    echo "skipped: $PY cannot import torch and numpy"
    rm -rf "$WORK"
    exit 77
fi
if nm "$BIN" 2> /dev/null | grep -q __asan_init; then
    # The library's metrics under the sanitizers are cli_python.sh's; PyTorch
    # is not built to share a process with them.
    echo "skipped: a sanitizer build"
    rm -rf "$WORK"
    exit 77
fi

python3 "$MIXREG_SOURCE_DIR/tests/make_tiny_idx.py" "$WORK/tiny" 12 96 64 3 || fail "could not write the tiny dataset"
for run in mixup erm; do
    alpha=1
    [ $run = erm ] && alpha=0
    "$BIN" train --model resnet20 --data "idx:$WORK/tiny" --batch-size 16 --epochs 2 --mixup-alpha $alpha \
        --no-tensorboard --threads 1 --log-every 0 --out "$WORK/$run" > /dev/null 2> "$WORK/err" ||
        fail "training $run: $(cat "$WORK/err")"
    "$BIN" eval "$WORK/$run" --json --threads 1 > "$WORK/$run.json" 2> "$WORK/err" || fail "eval $run: $(cat "$WORK/err")"
done
MIXREG_LIBRARY="$(dirname "$BIN")/libmixreg.so" PYTHONPATH="$MIXREG_SOURCE_DIR/python" \
    "$PY" "$MIXREG_SOURCE_DIR/experiments/rescale_probe.py" "$WORK/mixup" "$WORK/erm" --data-dir "$WORK/tiny" \
    --train-images 48 --json "$WORK/probe.json" > "$WORK/probe.md" 2> "$WORK/err" || fail "probe: $(cat "$WORK/err")"

"$PY" - "$WORK" <<'PY' || fail "probe's numbers"
import json, sys
w = sys.argv[1]
probe = {r["run"].rsplit("/", 1)[-1]: r for r in json.load(open(f"{w}/probe.json"))}
bad = []
def close(a, b, what, tol):
    if abs(a - b) > tol:
        bad.append(f"{what}: {a} against {b}")
for name in ("mixup", "erm"):
    r, ev = probe[name], json.load(open(f"{w}/{name}.json"))
    sweep = {s["T"]: s for s in r["sweep"]}
    plain, rescaled = ev["plain"], ev["rescaled"]
    close(r["theta_bar"], ev["theta_bar"], f"{name} theta_bar", 1e-9)
    for mode, got in (("plain", sweep[1.0]["both"]), ("rescaled", r["rescaled"])):
        close(got["accuracy"], 100 * ev[mode]["accuracy"], f"{name} {mode} accuracy", 1e-9)
        close(got["nll"], ev[mode]["nll"], f"{name} {mode} NLL", 1e-4)
        close(got["ece"], 100 * ev[mode]["ece"], f"{name} {mode} ECE", 1e-2)
    for s in r["sweep"]:
        close(s["logit"]["accuracy"], sweep[1.0]["both"]["accuracy"], f"{name} logit step at T {s['T']}", 1e-9)
        close(s["input"]["accuracy"], s["both"]["accuracy"], f"{name} input step at T {s['T']}", 1e-9)
    for key in ("input", "logit"):
        close(sweep[1.0][key]["nll"], sweep[1.0]["both"]["nll"], f"{name} {key} at T 1", 1e-6)
    if len(r["bn_log2_ratio"]["plain"]) != 21:
        bad.append(f"{name}: {len(r['bn_log2_ratio']['plain'])} batch norms, resnet20 has 21")
erm = probe["erm"]
close(erm["rescaled"]["nll"], erm["sweep"][-1]["both"]["nll"], "erm: rescaled at theta_bar 1 against plain", 1e-6)
if abs(erm["bn_log2_ratio"]["plain"][0] - erm["bn_log2_ratio"]["shrunk"][0]) > 1e-5:  # x_bar + 1 (x - x_bar) rounds
    bad.append("erm: shrinking by theta_bar 1 changed the batch-norm input")
print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
check 'grep -q "^| mixup | .* | .* | .* | .* |" "$WORK/probe.md" && grep -q "^| erm | " "$WORK/probe.md"'
check '[ "$(grep -c "^## " "$WORK/probe.md")" = 3 ]'
finish
