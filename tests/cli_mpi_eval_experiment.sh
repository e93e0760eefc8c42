# mixreg experiment under mpirun: every rank walks the grid, each run trains
# data-parallel and is evaluated sharded; rank 0 alone writes the report. A
# tiny 2-run grid (mlp, no batch norm) gives one process's results up to float
# summation order, stays resumable, and prints its progress once. Skipped
# without an MPI build.
. "$(dirname "$0")/cli_lib.sh"
. "$(dirname "$0")/mpi_sanitizer_env.sh"

if [ -z "${MIXREG_MPIEXEC:-}" ]; then
    echo "skipped: mixreg is built without MPI (or no mpirun was found)"
    finish; exit $?
fi
MPI="$MIXREG_MPIEXEC --allow-run-as-root --oversubscribe -np 2"

DATA="$WORK/tiny"
python3 "$(dirname "$0")/make_tiny_idx.py" "$DATA" 12 600 203 11 || { fail "making the tiny dataset"; finish; exit 1; }
CONF="$WORK/grid.conf"
cat > "$CONF" <<CONF
data = idx:$DATA
epochs = 1
max-steps = 12
batch-size = 32
hidden = 32
val-split = 0.2
threads = 1
log-every = 0
no-tensorboard = true
keep = 0
[erm]
mixup-alpha = 0
[mixup]
mixup-alpha = 1
mixup-mode = elem
CONF

"$BIN" experiment "$CONF" --out "$WORK/one" > "$WORK/one.out" 2> "$WORK/one.err" ||
    fail "one process: $(cat "$WORK/one.err")"
$MPI "$BIN" experiment "$CONF" --out "$WORK/two" > "$WORK/two.out" 2> "$WORK/two.err" ||
    fail "mpirun -np 2: $(cat "$WORK/two.err")"

# The same metrics in every mode: training differs only in float summation
# order, so to a relative 1e-4 (the evaluation of given weights is exact).
same_metrics() {
    python3 - "$1" "$2" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
ok = set(a["modes"]) == set(b["modes"]) and a["n"] == b["n"] and len(a["modes"]) == 4
for mode in a["modes"]:
    for key in ("accuracy", "nll", "ece", "brier", "temperature"):
        x, y = a["modes"][mode][key], b["modes"][mode][key]
        if abs(x - y) > 1e-4 * max(1.0, abs(x)):
            print(f"{mode} {key}: {x} vs {y}"); ok = False
    if a["modes"][mode]["reliability"]["count"] != b["modes"][mode]["reliability"]["count"]:
        print(f"{mode}: reliability counts differ"); ok = False
sys.exit(0 if ok else 1)
PY
}
for run in erm mixup; do
    check 'same_metrics "$WORK/one/runs/$run/eval.json" "$WORK/two/runs/$run/eval.json"'
    check '[ "$(json_get "$WORK/two/runs/$run/result.json" "j[\"processes\"]")" = 2 ]'
done
check 'grep -q "2 done, 0 pending" "$WORK/two/table.md"'
check '[ -s "$WORK/two/report.html" ] && [ -s "$WORK/two/manifest.json" ]'
# Progress printed once, by rank 0.
check '[ "$(grep -c "^\[1/2\]" "$WORK/two.out")" = 1 ] && [ "$(grep -c "^\[2/2\]" "$WORK/two.out")" = 1 ]'
check '[ "$(grep -c "^report:" "$WORK/two.out")" = 1 ]'

# Resumable under mpirun: a finished grid trains nothing; a run whose
# evaluation was lost is evaluated again from its weights, exactly as before.
STAMP=$(stat -c %Y.%s "$WORK/two/runs/erm/eval.json")
cp "$WORK/two/runs/mixup/eval.json" "$WORK/mixup_eval.json"
rm "$WORK/two/runs/mixup/eval.json"
sleep 1
$MPI "$BIN" experiment "$CONF" --out "$WORK/two" > "$WORK/again.out" 2> "$WORK/again.err" ||
    fail "mpirun, resumed: $(cat "$WORK/again.err")"
check '[ "$(stat -c %Y.%s "$WORK/two/runs/erm/eval.json")" = "$STAMP" ]'
check '! grep -q "\] erm " "$WORK/again.out" && grep -q "\] mixup " "$WORK/again.out"'
check 'cmp -s "$WORK/mixup_eval.json" "$WORK/two/runs/mixup/eval.json"'
# ... and one process continues what two started.
rm "$WORK/two/runs/mixup/eval.json"
"$BIN" experiment "$CONF" --out "$WORK/two" > /dev/null 2> "$WORK/single.err" || fail "one process after two: $(cat "$WORK/single.err")"
check 'cmp -s "$WORK/mixup_eval.json" "$WORK/two/runs/mixup/eval.json"'

# Interrupted under mpirun (SIGTERM to mpirun while the second run trains):
# the ranks stop together after the same step with a checkpoint, and the same
# command continues, with the first run left as it was.
sed -e 's/^max-steps = 12$/save-every = 4steps/' -e 's/^epochs = 1$/epochs = 3/' -e 's/^batch-size = 32$/batch-size = 16/' "$CONF" > "$WORK/long.conf"
$MPI "$BIN" experiment "$WORK/long.conf" --out "$WORK/stop" > "$WORK/stop.out" 2> "$WORK/stop.err" &
PID=$!
for _ in $(seq 1 600); do
    [ -e "$WORK/stop/runs/mixup" ] && break
    sleep 0.05
done
kill -TERM "$PID" 2> /dev/null
wait "$PID"
check '[ -f "$WORK/stop/runs/erm/eval.json" ]'
STAMP=$(stat -c %Y.%s "$WORK/stop/runs/erm/eval.json")
sleep 1
$MPI "$BIN" experiment "$WORK/long.conf" --out "$WORK/stop" > "$WORK/resume.out" 2> "$WORK/resume.err" ||
    fail "mpirun, resumed after a stop: $(cat "$WORK/resume.err")"
check '[ -f "$WORK/stop/runs/mixup/eval.json" ] && grep -q "2 done, 0 pending" "$WORK/stop/table.md"'
check '[ "$(stat -c %Y.%s "$WORK/stop/runs/erm/eval.json")" = "$STAMP" ]'

finish
