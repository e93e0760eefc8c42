# SIGINT at random moments of training (steps, the evaluation at an epoch's
# end, a checkpoint being written), one and two threads: every run stops
# with exit 130 after saving a checkpoint. The handler runs on a stack of
# its own (src/train/stop_signal.c): on top of oneDNN's JIT kernels it had
# corrupted their data below the stack pointer, and on a Xeon with AMX 7 of
# 8 such runs died in free() instead.
. "$(dirname "$0")/cli_lib.sh"

for run in 1 2 3 4 5 6; do
    threads=$((1 + run % 2))
    out="$WORK/run$run"
    "$BIN" train --threads "$threads" --batch-size 500 --epochs 50 --log-every 1 --out "$out" > /dev/null 2> "$out.err" &
    pid=$!
    wait_for 'has_step_line "$out/log.jsonl"' $pid || fail "run $run logged no step: $(cat "$out.err")"
    sleep "$(python3 -c "import random; print(round(random.uniform(0.0, 2.5), 2))")"
    kill -INT $pid
    wait $pid
    status=$?
    check '[ "$status" = 130 ]'
    check 'grep -q "checkpoint saved" "$out.err"'
    check '[ -f "$out/model.safetensors" ]'
done
finish
