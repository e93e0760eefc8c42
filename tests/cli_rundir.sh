# The run directory as two jobs, a crash, a full disk or a hostile user meet
# it: one writer at a time (the lock names the other's pid, readers need none),
# planted symbolic links never written through, leftovers of a killed run
# cleaned, no partial log line or TensorBoard record on a full disk, stops
# before training exit 130 at once, experiment names that would leave the
# output directory refused, and `runs` that prints any name as valid JSON.
. "$(dirname "$0")/cli_lib.sh"

PY=${MIXREG_PYTHON:-python3}
[ -x "$PY" ] || PY=python3
python3 "$(dirname "$0")/make_tiny_idx.py" "$WORK/tiny" 8 200 40 1
TINY=(--data "idx:$WORK/tiny" --model logreg --batch-size 10 --threads 1)
dead_pid() { sh -c 'echo $$'; }

# ---- the lock ----
# A run that lasts (Fashion-MNIST, one thread), stopped by the test once checked.
"$BIN" train --threads 1 --batch-size 500 --log-every 1 --epochs 50 --save-every 5steps --out "$WORK/busy" > /dev/null 2> "$WORK/busy.err" &
pid=$!
wait_for 'has_step_line "$WORK/busy/log.jsonl"' $pid || fail "training logged no step: $(cat "$WORK/busy.err")"
check '[ "$(cat "$WORK/busy/.lock")" = "$pid" ]'
expect_status 1 "busy is in use by another mixreg process (pid $pid)" -- train "${TINY[@]}" --out "$WORK/busy"
# Readers need no lock.
check '"$BIN" runs "$WORK" --json > "$WORK/busy-runs.json"'
check '[ "$(json_get "$WORK/busy-runs.json" "[r[\"run\"] for r in j] == [\"busy\"]")" = True ]'
wait_for '[ -f "$WORK/busy/model.safetensors" ]' $pid || fail "no checkpoint was saved: $(cat "$WORK/busy.err")"
check '"$BIN" eval "$WORK/busy" --json > /dev/null'
expect_status 1 "(pid $pid)" -- train --resume "$WORK/busy"
kill -INT $pid
wait $pid
status=$?
check '[ "$status" = 130 ]'

# ---- SIGINT/SIGTERM before training: exit 130 at once, saying nothing was saved ----
# Stopped as soon as its handler is in place, the process is then still
# loading Fashion-MNIST (a third of a second of decompression at least), so
# the signal comes before training, whatever the machine's load.
stop_early() {  # PID SIGNAL
    wait_for "catches_sigint $1" $1 60 || fail "no handler installed"
    kill -STOP $1 && kill -$2 $1 && kill -CONT $1
}
"$BIN" train --threads 1 --batch-size 500 --epochs 1 --out "$WORK/early" > /dev/null 2> "$WORK/early.err" &
pid=$!
stop_early $pid INT
wait $pid
status=$?
check '[ "$status" = 130 ]'
check '[ "$(cat "$WORK/early.err")" = "mixreg: interrupted by signal 2 before training started; nothing was trained or saved" ]'
check '[ ! -e "$WORK/early" ]'
# The same on resume: the checkpoint is left as it was.
before=$(md5sum < "$WORK/busy/model.safetensors")
"$BIN" train --resume "$WORK/busy" > /dev/null 2> "$WORK/busy2.err" &
pid=$!
stop_early $pid TERM
wait $pid
status=$?
check '[ "$status" = 130 ]'
check '[ "$(cat "$WORK/busy2.err")" = "mixreg: interrupted by signal 15 before training started; the checkpoint is unchanged; continue with mixreg train --resume $WORK/busy" ]'
check '[ "$before" = "$(md5sum < "$WORK/busy/model.safetensors")" ]'

# ---- leftovers ----
# A directory left by a run killed before its first checkpoint: a fresh run
# starts its log over and removes the dead writer's temporaries.
dead=$(dead_pid)
mkdir -p "$WORK/stale/tensorboard"
echo '{"type": "step", "epoch": 1, "step": 999, "stale": true}' > "$WORK/stale/log.jsonl"
echo 'x' > "$WORK/stale/tensorboard/events.out.tfevents.1.host.$dead.mixreg"
echo 'partial' > "$WORK/stale/config.json.tmp.$dead"
echo 'partial' > "$WORK/stale/model.safetensors.tmp.$dead.0"
"$BIN" train "${TINY[@]}" --epochs 1 --log-every 5 --out "$WORK/stale" > /dev/null 2> "$WORK/stale.err" \
    || fail "training over a stale directory failed: $(cat "$WORK/stale.err")"
check '! grep -q stale "$WORK/stale/log.jsonl"'
check '[ "$(grep -c "\"type\": \"step\"" "$WORK/stale/log.jsonl")" = 4 ]'
check '[ "$(ls "$WORK/stale/tensorboard" | wc -l)" = 1 ]'
check '[ -z "$(find "$WORK/stale" -name "*.tmp.*")" ]'
# Resume removes a dead writer's temporaries, keeps a live process's.
"$BIN" train "${TINY[@]}" --epochs 2 --max-steps 30 --save-every 10steps --out "$WORK/left" > /dev/null 2>&1 || fail "tiny run failed"
dead=$(dead_pid)
echo partial > "$WORK/left/model.safetensors.tmp.$dead.2"
echo partial > "$WORK/left/checkpoints/step-0000000040.safetensors.tmp.$dead"
echo partial > "$WORK/left/predictions.csv.tmp.$$.0"
"$BIN" train --resume "$WORK/left" > /dev/null 2> "$WORK/left.err" || fail "resume failed: $(cat "$WORK/left.err")"
check '[ "$(find "$WORK/left" -name "*.tmp.*")" = "$WORK/left/predictions.csv.tmp.$$.0" ]'

# ---- planted symbolic links: for each file written, the target outside stays untouched ----
echo "outside: must stay as it is" > "$WORK/outside.txt"
mkdir -p "$WORK/outside-dir"
OUTSIDE_SUM=$(md5sum < "$WORK/outside.txt")
outside_untouched() { [ "$(md5sum < "$WORK/outside.txt")" = "$OUTSIDE_SUM" ] && [ -z "$(ls -A "$WORK/outside-dir")" ]; }
# name, what it links to, the expected exit status of a fresh run (0: the link is replaced or removed)
while read -r name target want; do
    d="$WORK/link-$(echo "$name" | tr / _)"
    mkdir -p "$(dirname "$d/$name")"
    ln -s "$target" "$d/$name"
    "$BIN" train "${TINY[@]}" --epochs 2 --val-split 0.2 --keep 2 --out "$d" > /dev/null 2> "$d.err"
    got=$?
    CHECKS=$((CHECKS + 1))
    [ "$got" = "$want" ] || fail "$name: a run with a planted link exited $got, expected $want ($(cat "$d.err"))"
    if [ "$want" != 0 ]; then
        check 'grep -q "$name is a symbolic link; refusing" "$d.err"'
    else
        check '[ ! -L "$d/$name" ]'
    fi
    check 'outside_untouched'
done <<EOF
config.json $WORK/outside.txt 0
log.jsonl $WORK/outside.txt 0
result.json $WORK/outside.txt 0
best.safetensors $WORK/outside.txt 0
checkpoints/step-0000000016.safetensors $WORK/outside.txt 0
.lock $WORK/outside.txt 1
checkpoints $WORK/outside-dir 1
tensorboard $WORK/outside-dir 1
EOF
# On resume, a log that is a link is refused (it would be read and rewritten).
R="$WORK/link-config.json"
"$BIN" train "${TINY[@]}" --epochs 1 --out "$WORK/finished" > /dev/null 2>&1 || fail "tiny run failed"
"$BIN" train "${TINY[@]}" --epochs 1 --max-steps 10 --out "$WORK/link-partial" > /dev/null 2>&1
rm "$WORK/link-partial/log.jsonl" && ln -s "$WORK/outside.txt" "$WORK/link-partial/log.jsonl"
expect_status 1 "log.jsonl is a symbolic link" -- train --resume "$WORK/link-partial"
check 'outside_untouched'
# eval's outputs written into the run directory replace a link, never write through it.
ln -s "$WORK/outside.txt" "$R/predictions.csv"
ln -s "$WORK/outside.txt" "$R/reliability.svg"
check '"$BIN" eval "$R" --predictions "$R/predictions.csv" --reliability "$R/reliability.svg" > /dev/null'
check '[ ! -L "$R/predictions.csv" ] && [ ! -L "$R/reliability.svg" ] && outside_untouched'
# An experiment's runs/ directory that is a link is refused before any run.
mkdir -p "$WORK/exp-out"
ln -s "$WORK/outside-dir" "$WORK/exp-out/runs"
printf 'data = idx:%s\nmodel = logreg\nepochs = 1\n[erm]\nmixup-alpha = 0\n' "$WORK/tiny" > "$WORK/exp.conf"
expect_status 1 "exp-out/runs is a symbolic link" -- experiment "$WORK/exp.conf" --out "$WORK/exp-out"
check 'outside_untouched'

# ---- a full disk (a file size limit): whole records only, the checkpoint intact ----
limited_train() {  # OUT ARGS...: training under a 24 KiB file size limit, SIGXFSZ ignored
    local out=$1
    shift
    ( trap '' XFSZ; ulimit -f 24 && exec "$BIN" train "${TINY[@]}" --epochs 40 --log-every 1 --save-every 5steps "$@" --out "$out" ) \
        > /dev/null 2> "$out.err"
}
if ( trap '' XFSZ; ulimit -f 24 ) 2> /dev/null; then
    for variant in tensorboard no-tensorboard; do
        out="$WORK/full-$variant"
        if [ "$variant" = tensorboard ]; then limited_train "$out"; else limited_train "$out" --no-tensorboard; fi
        status=$?
        check '[ "$status" = 1 ]'
        check 'grep -q "^mixreg: error: .*write failed: File too large (the partial record was removed)" "$out.err"'
        check '[ "$(grep -c "^mixreg: error" "$out.err")" = 1 ] && tail -n 1 "$out.err" | grep -q "^mixreg: error"'
        # Every log line whole, ending in a newline.
        check 'python3 -c "import json,sys; t=open(sys.argv[1]).read(); assert t.endswith(\"\\n\"); [json.loads(l) for l in t.splitlines()]" "$out/log.jsonl"'
        check '"$BIN" eval "$out" --json > /dev/null'
    done
    check 'grep -q "tensorboard/events.out.tfevents" "$WORK/full-tensorboard.err"'
    check 'grep -q "log.jsonl" "$WORK/full-no-tensorboard.err"'
    # Every TensorBoard record whole: framing and CRCs check to the file's end.
    check '"$PY" - "$WORK"/full-tensorboard/tensorboard/events.out.tfevents.* <<'"'"'PY'"'"'
import struct, sys
def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF
def masked(c):
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF
b = open(sys.argv[1], "rb").read()
p = 0
while p < len(b):
    assert len(b) - p >= 16, "a partial record at the end"
    n = struct.unpack("<Q", b[p:p + 8])[0]
    assert struct.unpack("<I", b[p + 8:p + 12])[0] == masked(crc32c(b[p:p + 8]))
    assert p + 16 + n <= len(b), "a partial record at the end"
    assert struct.unpack("<I", b[p + 12 + n:p + 16 + n])[0] == masked(crc32c(b[p + 12:p + 12 + n]))
    p += 16 + n
PY'
else
    echo "skipped the full-disk checks: ulimit -f is not available here"
fi

# ---- experiment names ----
mkdir -p "$WORK/cwd"
printf 'epochs = 1\nmax-steps = 2\n[..]\n' > "$WORK/dotdot.conf"
expect_status 2 "dotdot.conf:3: method name '..' cannot name a run directory" -- experiment "$WORK/dotdot.conf" --dry-run
printf 'epochs = 1\nmax-steps = 2\n[.]\n' > "$WORK/dot.conf"
expect_status 2 "method name '.' cannot name" -- experiment "$WORK/dot.conf" --dry-run
printf 'epochs = 1\nmax-steps = 2\n[-x]\n' > "$WORK/dash.conf"
expect_status 2 "method name '-x' cannot name" -- experiment "$WORK/dash.conf" --dry-run
# A file named "...conf" gives no output directory name: --out is required, nothing is written.
printf 'epochs = 1\nmax-steps = 2\n[erm]\nmixup-alpha = 0\n' > "$WORK/cwd/...conf"
( cd "$WORK/cwd" && "$BIN" experiment ...conf > "$WORK/dots.out" 2> "$WORK/dots.err" )
status=$?
check '[ "$status" = 2 ]'
check 'grep -q "^mixreg: error: ...conf: the file.s name gives no usable output directory (.runs/...); give --out DIR" "$WORK/dots.err"'
check '[ "$(ls -A "$WORK/cwd")" = "...conf" ] && [ ! -e "$WORK/runs" ]'
( cd "$WORK/cwd" && "$BIN" experiment ...conf --dry-run > /dev/null 2>&1 )
status=$?
check '[ "$status" = 2 ]'

# ---- runs: any directory name as valid JSON, missing metrics empty ----
mkdir -p "$WORK/list/quote\"d" "$WORK/list/back\\slash"
cp "$WORK/finished/config.json" "$WORK/list/quote\"d/"
cp -r "$WORK/finished/." "$WORK/list/back\\slash/"
rm "$WORK/list/back\\slash/result.json"
python3 - "$WORK/list/back\\slash/log.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
for j in lines:
    if j["type"] == "epoch":
        del j["test"]["rescaled"]  # an epoch line without the rescaled metrics
open(sys.argv[1], "w").write("".join(json.dumps(j) + "\n" for j in lines))
PY
"$BIN" runs "$WORK/list" --json > "$WORK/list.json" || fail "runs --json failed"
check 'python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$WORK/list.json"'
check 'python3 - "$WORK/list.json" <<'"'"'PY'"'"'
import json, sys
runs = {r["run"]: r for r in json.load(open(sys.argv[1]))}
assert sorted(runs) == ["back\\slash", "quote\"d"], sorted(runs)
q = runs["quote\"d"]
assert (q["status"], q["test"], q["epochs_done"], q["steps"]) == ("started", None, None, None), q
b = runs["back\\slash"]
assert b["status"] == "partial" and "rescaled" not in b["test"] and b["epochs_done"] == 1, b
PY'
"$BIN" runs "$WORK/list" > "$WORK/list.txt" || fail "runs failed"
check '! grep -q -- "-100.00%\|-1.0000" "$WORK/list.txt"'
check 'grep "^quote" "$WORK/list.txt" | grep -q "started .* - *- *- *- *- *-$"'
finish
