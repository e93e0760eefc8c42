# TensorBoard event files written during training, read back by TensorBoard's
# own EventAccumulator and compared with log.jsonl.
. "$(dirname "$0")/cli_lib.sh"

PY=${MIXREG_PYTHON:-$MIXREG_SOURCE_DIR/.venv/bin/python}
if ! "$PY" -c "import tensorboard" 2> /dev/null; then
    fail "$PY lacks tensorboard: run scripts/install-deps.sh"
    finish; exit 1
fi
"$BIN" train --epochs 2 --batch-size 500 --max-steps 150 --log-every 25 --tb-histograms --val-split 0.1 --threads 2 \
    --out "$WORK/run" > /dev/null 2>&1 || fail "training failed"
check '[ "$(ls "$WORK/run/tensorboard" | grep -c "^events.out.tfevents")" = 1 ]'
CHECKS=$((CHECKS + 1))
"$PY" "$MIXREG_SOURCE_DIR/tests/tensorboard_read.py" "$WORK/run" || fail "TensorBoard disagrees with log.jsonl"
"$BIN" train --epochs 1 --max-steps 5 --no-tensorboard --out "$WORK/quiet" > /dev/null 2>&1 || fail "--no-tensorboard run failed"
check '[ ! -e "$WORK/quiet/tensorboard" ]'
finish
