# mixreg analyze: the regularisation analysis of a trained run (Jacobian norms,
# Lipschitz estimates, confidence, the paper's Taylor terms), on tiny Mixup and
# ERM runs on Fashion-MNIST, its JSON, and its errors.
. "$(dirname "$0")/cli_lib.sh"

# Fail at once, and say why, while the command is not registered in cli/main.c.
if "$BIN" analyze --help 2>&1 | grep -q "unknown command"; then
    CHECKS=$((CHECKS + 1))
    fail "'mixreg analyze' is not registered (cli/main.c, cli/commands.h: int cmd_analyze(int argc, char **argv))"
    finish; exit 1
fi

RUN="$WORK/run"
ERM="$WORK/erm"
for spec in "$RUN:1" "$ERM:0"; do
    dir=${spec%:*} alpha=${spec##*:}
    if ! "$BIN" train --epochs 1 --max-steps 50 --threads 2 --no-tensorboard --mixup-alpha "$alpha" --out "$dir" \
        > "$WORK/train.out" 2> "$WORK/train.err"; then
        CHECKS=$((CHECKS + 1))
        fail "training (alpha $alpha) failed: $(cat "$WORK/train.err")"
        finish; exit 1
    fi
done

"$BIN" analyze "$RUN" --json --samples 200 --threads 2 > "$WORK/a.json" 2> "$WORK/a.err" \
    || fail "analyze --json failed: $(cat "$WORK/a.err")"
check '[ ! -s "$WORK/a.err" ]'
# Every key, every value a finite number.
KEYS="samples jacobian_fro_mean jacobian_fro_max softmax_jacobian_fro_mean softmax_jacobian_fro_max lipschitz_mean \
lipschitz_max confidence_mean entropy_mean jacobian_term cross_term theta_bar sigma2 gamma2"
check '[ "$(json_get "$WORK/a.json" "all(isinstance(j[k], (int, float)) and abs(j[k]) < 1e300 for k in \"$KEYS\".split())")" = True ]'
check '[ "$(json_get "$WORK/a.json" "j[\"samples\"]")" = 200 ]'
check '[ "$(json_get "$WORK/a.json" "j[\"lipschitz_max\"] >= j[\"lipschitz_mean\"] > 0")" = True ]'
check '[ "$(json_get "$WORK/a.json" "j[\"jacobian_fro_max\"] >= j[\"jacobian_fro_mean\"] > 0")" = True ]'
# ||J||_F / sqrt(C) <= ||J||_2 <= ||J||_F (rank <= C = 10); ||H J||_F <= ||H||_2 ||J||_F <= ||J||_F / 2.
check '[ "$(json_get "$WORK/a.json" "j[\"jacobian_fro_mean\"] / 10 ** 0.5 <= j[\"lipschitz_mean\"] <= j[\"jacobian_fro_mean\"]")" = True ]'
check '[ "$(json_get "$WORK/a.json" "0 < j[\"softmax_jacobian_fro_max\"] <= j[\"jacobian_fro_max\"] / 2")" = True ]'
check '[ "$(json_get "$WORK/a.json" "0.1 <= j[\"confidence_mean\"] <= 1 and 0 <= j[\"entropy_mean\"] <= 2.3025851")" = True ]'
# The run's statistics for alpha = 1: theta_bar 3/4, sigma^2 1/48, gamma^2 1/12.
check '[ "$(json_get "$WORK/a.json" "abs(j[\"theta_bar\"] - 0.75) < 1e-9 and abs(j[\"sigma2\"] - 1 / 48) < 1e-9 and abs(j[\"gamma2\"] - 1 / 12) < 1e-9")" = True ]'
# A mixup model: a positive Jacobian penalty (H and E[delta delta^T] are PSD), a nonzero
# cross term, each the sum of its sigma^2 and gamma^2 parts.
check '[ "$(json_get "$WORK/a.json" "j[\"jacobian_term\"] > 0 and j[\"cross_term\"] != 0")" = True ]'
check '[ "$(json_get "$WORK/a.json" "abs(j[\"jacobian_term\"] - j[\"jacobian_term_sigma2\"] - j[\"jacobian_term_gamma2\"]) < 1e-7")" = True ]'
check '[ "$(json_get "$WORK/a.json" "abs(j[\"cross_term\"] - j[\"cross_term_sigma2\"] - j[\"cross_term_gamma2\"]) < 1e-7")" = True ]'
check '[ "$(json_get "$WORK/a.json" "j[\"rescaled\"][\"lipschitz_max\"] >= j[\"rescaled\"][\"lipschitz_mean\"] > 0")" = True ]'
echo "mixup run: $(cat "$WORK/a.json")"

# Deterministic; another power-iteration seed converges to the same norms.
"$BIN" analyze "$RUN" --json --samples 200 --threads 2 > "$WORK/b.json"
check 'cmp -s "$WORK/a.json" "$WORK/b.json"'
"$BIN" analyze "$RUN" --json --samples 200 --threads 2 --seed 9 --batch-size 64 > "$WORK/c.json"
check '[ "$(python3 -c "import json,sys; a,c=(json.load(open(f)) for f in sys.argv[1:]); print(all(abs(a[k]-c[k]) <= 1e-5*abs(a[k]) for k in (\"lipschitz_mean\",\"lipschitz_max\",\"jacobian_term\",\"cross_term\",\"entropy_mean\")))" "$WORK/a.json" "$WORK/c.json")" = True ]'
# --samples is the first N: 50 of them give other means.
"$BIN" analyze "$RUN" --json --samples 50 --threads 2 > "$WORK/d.json"
check '[ "$(json_get "$WORK/d.json" "j[\"samples\"]")" = 50 ]'
check '[ "$(json_get "$WORK/d.json" "j[\"jacobian_fro_mean\"]")" != "$(json_get "$WORK/a.json" "j[\"jacobian_fro_mean\"]")" ]'

# The table.
"$BIN" analyze "$RUN" --samples 100 --threads 2 --data fashion-mnist > "$WORK/table.out" 2>&1 || fail "analyze (table) failed"
check 'grep -q "Lipschitz" "$WORK/table.out" && grep -q "Taylor terms" "$WORK/table.out" && grep -q "cross term" "$WORK/table.out"'
check 'grep -q "100 test samples, mixup alpha 1" "$WORK/table.out"'

# ERM: no perturbation, both terms exactly 0, the rescaled prediction is the plain one.
"$BIN" analyze "$ERM" --json --samples 200 --threads 2 > "$WORK/erm.json" 2> "$WORK/erm.err" \
    || fail "analyze (ERM) failed: $(cat "$WORK/erm.err")"
check '[ "$(json_get "$WORK/erm.json" "j[\"jacobian_term\"] == 0 and j[\"cross_term\"] == 0")" = True ]'
check '[ "$(json_get "$WORK/erm.json" "j[\"sigma2\"] == 0 and j[\"gamma2\"] == 0 and j[\"theta_bar\"] == 1")" = True ]'
check '[ "$(json_get "$WORK/erm.json" "j[\"lipschitz_max\"] >= j[\"lipschitz_mean\"] > 0")" = True ]'
check '[ "$(json_get "$WORK/erm.json" "j[\"rescaled\"][\"lipschitz_mean\"] == j[\"lipschitz_mean\"]")" = True ]'
"$BIN" analyze "$ERM" --samples 20 --threads 2 > "$WORK/erm.out"
check 'grep -q "ERM model" "$WORK/erm.out"'

# Errors: one line, 2 for usage, 1 for runtime.
expect_status 0 "" -- analyze --help
expect_status 2 "missing RUN_DIR" -- analyze
expect_status 2 "missing RUN_DIR" -- analyze --json
expect_status 2 "--samples" -- analyze "$RUN" --samples 0
expect_status 2 "--samples" -- analyze "$RUN" --samples -5
expect_status 2 "not a whole number" -- analyze "$RUN" --samples many
expect_status 2 "needs a value" -- analyze "$RUN" --samples
expect_status 2 "unknown flag" -- analyze "$RUN" --frobnicate
expect_status 2 "unknown argument" -- analyze "$RUN" "$ERM"
expect_status 2 "takes no value" -- analyze "$RUN" --json=yes
expect_status 2 "--batch-size" -- analyze "$RUN" --batch-size 0
expect_status 1 "model.safetensors" -- analyze "$WORK/not-a-run"
expect_status 1 "no/such/dir" -- analyze "$RUN" --data "$WORK/no/such/dir"

finish
