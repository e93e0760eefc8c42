# mixreg experiment: a tiny grid on Fashion-MNIST run end to end, resumed
# after an interruption without redoing finished runs, its report, and the
# file errors that must stop it before anything runs. Also theta --data.
. "$(dirname "$0")/cli_lib.sh"

CONF="$WORK/tiny.conf"
OUT="$WORK/out"
cat > "$CONF" <<'CONF'
# a tiny grid: two methods, one with an alpha axis, two seeds
epochs = 1
max-steps = 25
hidden = 32
val-split = 0.1
threads = 2
log-every = 0
no-tensorboard = true
keep = 0
seeds = 0, 1
[erm]
mixup-alpha = 0
[mixup]
mixup-alpha = 0.5, 2
CONF

"$BIN" experiment "$CONF" --dry-run > "$WORK/dry.out" 2>&1 || fail "dry run failed: $(cat "$WORK/dry.out")"
check 'grep -q "6 runs" "$WORK/dry.out"'
check 'grep -q "mixup_mixup-alpha=2_seed=1" "$WORK/dry.out"'
check '[ ! -e "$OUT" ]'

# Interrupt the grid: SIGTERM while a later run trains (the max-steps runs are
# short, so stop it as soon as the second run's directory appears).
"$BIN" experiment "$CONF" --out "$OUT" > "$WORK/first.out" 2> "$WORK/first.err" &
PID=$!
# (Waiting for that event, not a fixed time: a loaded machine may take long
# over the first run, and a stop during it would leave no finished run.)
wait_for '[ -e "$OUT/runs/erm_seed=1" ]' "$PID"
kill -TERM "$PID" 2> /dev/null
wait "$PID"
STATUS=$?
# Either it was stopped (130) or it had already finished (0): both must resume cleanly.
check '[ "$STATUS" = 130 ] || [ "$STATUS" = 0 ]'
check '[ -f "$OUT/runs/erm_seed=0/eval.json" ]'
STAMP=$(stat -c %Y.%s "$OUT/runs/erm_seed=0/eval.json")
sleep 1

"$BIN" experiment "$CONF" --out "$OUT" > "$WORK/second.out" 2> "$WORK/second.err" \
    || fail "resumed experiment failed: $(cat "$WORK/second.err")"
check '[ "$(stat -c %Y.%s "$OUT/runs/erm_seed=0/eval.json")" = "$STAMP" ]'
check '! grep -q "erm_seed=0" "$WORK/second.out"'
for run in erm_seed=0 erm_seed=1 mixup_mixup-alpha=0.5_seed=0 mixup_mixup-alpha=0.5_seed=1 \
           mixup_mixup-alpha=2_seed=0 mixup_mixup-alpha=2_seed=1; do
    check '[ -f "$OUT/runs/$run/eval.json" ]'
done
E="$OUT/runs/mixup_mixup-alpha=2_seed=1/eval.json"
check '[ "$(json_get "$E" "\",\".join(sorted(j[\"modes\"]))")" = "plain,rescaled,rescaled+temperature,temperature" ]'
check '[ "$(json_get "$E" "abs(j[\"theta_bar\"] - 0.6875) < 1e-4")" = True ]'
check '[ "$(json_get "$E" "len(j[\"modes\"][\"plain\"][\"reliability\"][\"count\"]) == 15")" = True ]'
check '[ "$(json_get "$E" "sum(j[\"modes\"][\"plain\"][\"reliability\"][\"count\"]) == 10000")" = True ]'
check '[ "$(json_get "$E" "j[\"temperature_fit\"][\"seen_in_training\"]")" = False ]'

# The report: table rows per group and mode, figures, one self-contained HTML.
check 'grep -q "6 done, 0 pending" "$OUT/table.md"'
check 'grep -q "| mixup mixup-alpha=2 | rescaled | 2 |" "$OUT/table.md"'
check '[ "$(grep -c "^erm," "$OUT/table.csv")" = 4 ]'
check '[ -s "$OUT/figures/alpha.png" ] && [ -s "$OUT/figures/confidence.png" ]'
check 'grep -q "data:image/png;base64," "$OUT/report.html"'
check '! grep -q "src=\"http" "$OUT/report.html"'

# A third call finds everything done and trains nothing; --report-only redraws.
"$BIN" experiment "$CONF" --out "$OUT" > "$WORK/third.out" 2>&1 || fail "third call failed"
check '! grep -q "\[1/6\]" "$WORK/third.out"'
rm "$OUT/report.html"
"$BIN" experiment "$CONF" --out "$OUT" --report-only > /dev/null 2>&1 || fail "--report-only failed"
check '[ -s "$OUT/report.html" ]'

# The file changed under a finished run: refused, nothing overwritten.
sed 's/hidden = 32/hidden = 48/' "$CONF" > "$WORK/changed.conf"
expect_status 1 "other settings" -- experiment "$WORK/changed.conf" --out "$OUT"

# Bad files are refused before anything runs, naming the line.
bad() { printf "$1" > "$WORK/bad.conf"; }
bad '[a]\nmixup-alfa = 1\n'
expect_status 2 "bad.conf:2: unknown key 'mixup-alfa'" -- experiment "$WORK/bad.conf" --out "$WORK/never"
bad 'epochs = 2\n[a]\n[a]\n'
expect_status 2 "bad.conf:3: method \[a\] is declared twice" -- experiment "$WORK/bad.conf" --out "$WORK/never"
bad '[erm]\nmixup-alpha = 0\n[erm2]\nmixup-alpha = 0\n'
expect_status 2 "bad.conf:3: \[erm2\] repeats a run of \[erm\]" -- experiment "$WORK/bad.conf" --out "$WORK/never"
bad '[a]\nlabel-smoothing = 2\n'
expect_status 2 "bad.conf:2: --label-smoothing must be in" -- experiment "$WORK/bad.conf" --out "$WORK/never"
check '[ ! -e "$WORK/never" ]'
expect_status 1 "no/such.conf" -- experiment "$WORK/no/such.conf"
expect_status 2 "missing FILE" -- experiment

# theta with a dataset: the class prior and the implied targets.
"$BIN" theta --alpha 1 --data fashion-mnist --json > "$WORK/theta.json" || fail "theta --data failed"
check '[ "$(json_get "$WORK/theta.json" "len(j[\"class_prior\"])")" = 10 ]'
check '[ "$(json_get "$WORK/theta.json" "abs(sum(j[\"class_prior\"]) - 1) < 1e-9")" = True ]'
check '[ "$(json_get "$WORK/theta.json" "abs(j[\"target_true_class\"][3] - 0.775) < 1e-9")" = True ]'
check '[ "$(json_get "$WORK/theta.json" "abs(j[\"target_other_class\"][3] - 0.025) < 1e-9")" = True ]'
expect_status 1 "no/such" -- theta --alpha 1 --data "$WORK/no/such"
finish
