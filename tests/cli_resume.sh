# Checkpoints and exact resume: a run stopped by SIGINT or killed with SIGKILL
# at a random moment and resumed ends with bit-identical weights, optimizer and
# RNG state to an uninterrupted run; a full disk while saving keeps the previous
# checkpoint.
. "$(dirname "$0")/cli_lib.sh"

# 4 epochs of 120 steps (batch 500), checkpoints every 25 steps.
ARGS=(--epochs 4 --batch-size 500 --lr 0.05 --seed 5 --threads 2 --save-every 25steps --keep 2 --log-every 10)
"$BIN" train "${ARGS[@]}" --out "$WORK/straight" > /dev/null 2>&1 || fail "uninterrupted run failed"

# SIGINT once training runs (its first step line is logged): saves a
# checkpoint, exits 130, says how to continue.
"$BIN" train "${ARGS[@]}" --out "$WORK/int" > /dev/null 2> "$WORK/int.err" &
pid=$!
wait_for 'has_step_line "$WORK/int/log.jsonl"' $pid || fail "training logged no step"
kill -INT $pid
wait $pid
status=$?
check '[ "$status" = 130 ]'
check 'grep -q "resume" "$WORK/int.err"'
check '[ -f "$WORK/int/model.safetensors" ]'
cp -r "$WORK/int" "$WORK/full-disk"
"$BIN" train --resume "$WORK/int" > /dev/null 2> "$WORK/resume.err" || fail "resume after SIGINT failed: $(cat "$WORK/resume.err")"
check 'tensors_equal "$WORK/straight/model.safetensors" "$WORK/int/model.safetensors"'
check '[ "$(grep -c "\"type\": \"epoch\"" "$WORK/int/log.jsonl")" = 4 ]'
check '[ "$(grep -c "\"type\": \"step\"" "$WORK/int/log.jsonl")" = 48 ]'
check '[ "$(ls "$WORK/int/checkpoints" | wc -l)" = 2 ]'

# SIGKILL at a random moment, then resume (again if the first resume is killed too).
delay=$(python3 -c "import random; print(round(random.uniform(0.3, 3.0), 2))")
echo "killing after ${delay}s"
"$BIN" train "${ARGS[@]}" --out "$WORK/kill" > /dev/null 2>&1 &
pid=$!
sleep "$delay"
kill -KILL $pid 2> /dev/null
wait $pid 2> /dev/null
if [ -f "$WORK/kill/model.safetensors" ]; then
    "$BIN" train --resume "$WORK/kill" > /dev/null 2> "$WORK/kill.err" || fail "resume after SIGKILL failed: $(cat "$WORK/kill.err")"
else
    # Killed before the first checkpoint: nothing to resume, so the run starts
    # over in the same directory (its stale log is dropped).
    "$BIN" train "${ARGS[@]}" --out "$WORK/kill" > /dev/null 2> "$WORK/kill.err" || fail "rerun after an early SIGKILL failed: $(cat "$WORK/kill.err")"
fi
check 'tensors_equal "$WORK/straight/model.safetensors" "$WORK/kill/model.safetensors"'
check '[ "$(grep -c "\"type\": \"step\"" "$WORK/kill/log.jsonl")" = 48 ]'
check '[ -z "$(find "$WORK/kill" -name "*.tmp.*")" ]'

# A full disk while saving: a clear error, and the previous checkpoint untouched and loadable.
before=$(md5sum < "$WORK/full-disk/model.safetensors")
MIXREG_FAULT_WRITE_LIMIT=100000 "$BIN" train --resume "$WORK/full-disk" > /dev/null 2> "$WORK/disk.err"
status=$?
check '[ "$status" = 1 ]'
last=$(tail -n 1 "$WORK/disk.err")
check 'case "$last" in "mixreg: error: "*"No space left on device"*) true;; *) false;; esac'
check 'printf "%s" "$last" | grep -q "previous version"'
check '[ "$before" = "$(md5sum < "$WORK/full-disk/model.safetensors")" ]'
check '"$BIN" eval "$WORK/full-disk" --json > /dev/null'
check '[ -z "$(find "$WORK/full-disk" -name "*.tmp.*")" ]'

# A NaN loss in epoch 2 stops training; epoch 1's checkpoint stays and loads.
MIXREG_FAULT_NAN_STEP=150 "$BIN" train --epochs 2 --batch-size 500 --threads 2 --out "$WORK/nan" > /dev/null 2> "$WORK/nan.err"
status=$?
check '[ "$status" = 1 ]'
check 'grep -q "loss became NaN at epoch 2" "$WORK/nan.err"'
check 'grep -q "last good checkpoint is kept" "$WORK/nan.err"'
check '"$BIN" eval "$WORK/nan" --json > "$WORK/nan.json"'
check '[ "$(python3 -c "import json,struct,sys; b=open(sys.argv[1],\"rb\").read(); n=struct.unpack(\"<Q\",b[:8])[0]; print(json.loads(b[8:8+n])[\"__metadata__\"][\"mixreg.step\"])" "$WORK/nan/model.safetensors")" = 120 ]'

# --resume takes no other settings; a run without training state cannot be resumed.
expect_status 2 "only --threads" -- train --resume "$WORK/int" --epochs 9
expect_status 1 "model.safetensors" -- train --resume "$WORK/nowhere"
finish
