# mixreg eval and analyze under mpirun: two ranks, each evaluating a shard of
# whole batches, report exactly what one process reports (the same JSON, the
# same predictions file bytes, the same reliability diagram), and only rank 0
# prints or writes. Skipped without an MPI build.
. "$(dirname "$0")/cli_lib.sh"
. "$(dirname "$0")/mpi_sanitizer_env.sh"

if [ -z "${MIXREG_MPIEXEC:-}" ]; then
    echo "skipped: mixreg is built without MPI (or no mpirun was found)"
    finish; exit $?
fi
MPI="$MIXREG_MPIEXEC --allow-run-as-root --oversubscribe -np 2"
PY=${MIXREG_PYTHON:-python3}
[ -x "$PY" ] || PY=python3

# 203 test samples: in batches of 32 that is 7 batches, 4 on rank 0 and 3
# (the last one short) on rank 1.
DATA="$WORK/tiny"
python3 "$(dirname "$0")/make_tiny_idx.py" "$DATA" 12 600 203 7 || { fail "making the tiny dataset"; finish; exit 1; }

for model in mlp lenet5; do
    RUN="$WORK/$model"
    if ! "$BIN" train --data "idx:$DATA" --model "$model" --hidden 32 --epochs 1 --max-steps 12 --batch-size 32 \
        --threads 1 --val-split 0.2 --no-tensorboard --log-every 0 --out "$RUN" > "$WORK/train.out" 2>&1; then
        fail "training $model failed: $(cat "$WORK/train.out")"
        continue
    fi
    # Every output of eval, one process against two ranks, byte for byte.
    for flags in "--rescale on" "--rescale both --temperature fit --bins 10"; do
        # shellcheck disable=SC2086
        "$BIN" eval "$RUN" --json --threads 1 --batch-size 32 $flags --predictions "$WORK/one.npy" \
            --reliability "$WORK/one.svg" > "$WORK/one.json" 2> "$WORK/one.err" || fail "eval $model $flags: $(cat "$WORK/one.err")"
        # shellcheck disable=SC2086
        $MPI "$BIN" eval "$RUN" --json --threads 1 --batch-size 32 $flags --predictions "$WORK/two.npy" \
            --reliability "$WORK/two.svg" > "$WORK/two.json" 2> "$WORK/two.err" || fail "mpirun eval $model $flags: $(cat "$WORK/two.err")"
        check '[ -s "$WORK/one.json" ] && cmp -s "$WORK/one.json" "$WORK/two.json"'
        check 'cmp -s "$WORK/one.npy" "$WORK/two.npy"'
        check 'cmp -s "$WORK/one.svg" "$WORK/two.svg"'
        check '[ "$(wc -l < "$WORK/two.json")" = 1 ]'   # rank 0 alone prints
    done
    check '[ "$(json_get "$WORK/two.json" "j[\"rescaled+temperature\"][\"n\"]")" = 203 ]'
    check '[ "$(json_get "$WORK/two.json" "j[\"temperature_fit\"][\"n\"]")" = 120 ]'
    # The .csv predictions and the human-readable table, too.
    "$BIN" eval "$RUN" --threads 1 --batch-size 32 --predictions "$WORK/one.csv" > "$WORK/one.txt" 2> "$WORK/one.err"
    $MPI "$BIN" eval "$RUN" --threads 1 --batch-size 32 --predictions "$WORK/two.csv" > "$WORK/two.txt" 2> "$WORK/two.err"
    check '[ -s "$WORK/one.txt" ] && cmp -s "$WORK/one.txt" "$WORK/two.txt"'
    check '[ "$(wc -l < "$WORK/two.csv")" = 204 ] && cmp -s "$WORK/one.csv" "$WORK/two.csv"'

    # analyze: 50 samples in Jacobian batches of 8 (7 batches), every estimate the same bits.
    "$BIN" analyze "$RUN" --json --threads 1 --samples 50 --batch-size 8 > "$WORK/a1.json" 2> "$WORK/a1.err" ||
        fail "analyze $model: $(cat "$WORK/a1.err")"
    $MPI "$BIN" analyze "$RUN" --json --threads 1 --samples 50 --batch-size 8 > "$WORK/a2.json" 2> "$WORK/a2.err" ||
        fail "mpirun analyze $model: $(cat "$WORK/a2.err")"
    check '[ -s "$WORK/a1.json" ] && cmp -s "$WORK/a1.json" "$WORK/a2.json"'
    check '[ "$(json_get "$WORK/a2.json" "j[\"samples\"]")" = 50 ]'
done

# predict prints its top classes once, the same as one process.
"$BIN" predict "$WORK/lenet5" --data "idx:$DATA" --limit 40 > "$WORK/pr1.txt" 2> "$WORK/pr.err" || fail "predict: $(cat "$WORK/pr.err")"
$MPI "$BIN" predict "$WORK/lenet5" --data "idx:$DATA" --limit 40 > "$WORK/pr2.txt" 2> "$WORK/pr.err" || fail "mpirun predict: $(cat "$WORK/pr.err")"
check '[ "$(grep -c "^sample " "$WORK/pr1.txt")" = 40 ] && cmp -s "$WORK/pr1.txt" "$WORK/pr2.txt"'

# More ranks than batches: rank 2 gets none and still takes part.
MPI3="$MIXREG_MPIEXEC --allow-run-as-root --oversubscribe -np 3"
"$BIN" eval "$WORK/mlp" --json --threads 1 --batch-size 100 > "$WORK/one.json" 2> "$WORK/one.err"
$MPI3 "$BIN" eval "$WORK/mlp" --json --threads 1 --batch-size 100 > "$WORK/three.json" 2> "$WORK/three.err" ||
    fail "mpirun -np 3 eval: $(cat "$WORK/three.err")"
check '[ -s "$WORK/one.json" ] && cmp -s "$WORK/one.json" "$WORK/three.json"'
$MPI3 "$BIN" analyze "$WORK/mlp" --json --threads 1 --samples 10 --batch-size 8 > "$WORK/a3.json" 2> "$WORK/a3.err" ||
    fail "mpirun -np 3 analyze: $(cat "$WORK/a3.err")"
"$BIN" analyze "$WORK/mlp" --json --threads 1 --samples 10 --batch-size 8 > "$WORK/a1.json" 2> "$WORK/a1.err"
check '[ -s "$WORK/a1.json" ] && cmp -s "$WORK/a1.json" "$WORK/a3.json"'

# The library's sharded functions against the one-process ones, on 2 and 3 ranks
# (tests/test_eval_shard.c: each rank checks the job's result bit for bit).
UNIT="$(dirname "$BIN")/test_eval_shard"
if [ -x "$UNIT" ]; then
    for np in 2 3; do
        timeout 300 "$MIXREG_MPIEXEC" --allow-run-as-root --oversubscribe -np "$np" "$UNIT" > "$WORK/unit.txt" 2>&1 ||
            fail "test_eval_shard on $np ranks: $(cat "$WORK/unit.txt")"
        check '[ "$(grep -c "checks, 0 failed" "$WORK/unit.txt")" = "$np" ]'
    done
else
    fail "no $UNIT next to $BIN"
fi

# An error every rank meets stops the job with exit 1, no hang.
timeout 120 $MPI "$BIN" eval "$WORK/mlp" --data "idx:$WORK/nowhere" > /dev/null 2> "$WORK/err.txt"
code=$?
check '[ "$code" != 0 ] && [ "$code" != 124 ]'
check 'grep -q "mixreg: error:" "$WORK/err.txt"'

finish
