# The theta statistics a run carries follow what training did: with --mix-prob
# P a fraction 1 - P of the samples is unmixed (theta = 1), so the stored
# theta_bar is (1 - P) + P theta_bar(alpha), the rescaled prediction uses it,
# and `mixreg theta --mix-prob` prints the same number.
. "$(dirname "$0")/cli_lib.sh"

python3 "$MIXREG_SOURCE_DIR/tests/make_tiny_idx.py" "$WORK/tiny" 8 60 20 5 || fail "could not write the tiny dataset"
for p in 1 0.5; do
    "$BIN" train --model logreg --data "idx:$WORK/tiny" --mixup-alpha 1 --mix-prob "$p" --max-steps 1 --batch-size 16 \
        --no-tensorboard --threads 1 --out "$WORK/run-$p" > /dev/null 2> "$WORK/err" || fail "training with --mix-prob $p: $(cat "$WORK/err")"
    "$BIN" eval "$WORK/run-$p" --json --threads 1 > "$WORK/eval-$p.json" 2> "$WORK/err" || fail "eval: $(cat "$WORK/err")"
    "$BIN" theta --alpha 1 --mix-prob "$p" --json > "$WORK/theta-$p.json" || fail "theta --mix-prob $p failed"
done
check '[ "$(json_get "$WORK/eval-1.json" "j[\"theta_bar\"]")" = 0.75 ]'
check '[ "$(json_get "$WORK/eval-0.5.json" "j[\"theta_bar\"]")" = 0.875 ]'
check '[ "$(json_get "$WORK/theta-0.5.json" "j[\"theta_bar\"], j[\"mix_prob\"], j[\"label_smoothing\"]")" = "0.875 0.5 0.125" ]'
expect_status 2 "mix-prob" -- theta --alpha 1 --mix-prob 1.5
expect_status 2 "mix-prob" -- theta --alpha 1 --mix-prob nan
finish
