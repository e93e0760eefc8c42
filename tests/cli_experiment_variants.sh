# Experiments with analysis and with mixing the rescaled prediction does not
# apply to: analyze-seeds writes RUN_DIR/analysis.json for the seeds it names
# (a finished run is analysed, not retrained) and the report aggregates it
# over seeds; a CutMix group's table says its rescaled prediction is not
# defined; a run directory whose stored config lacks a key added to the
# settings table since, or that was moved, is still the same run.
. "$(dirname "$0")/cli_lib.sh"

python3 "$MIXREG_SOURCE_DIR/tests/make_tiny_idx.py" "$WORK/tiny" 8 64 20 5 || fail "could not write the tiny dataset"
write_conf() { # FILE [EXTRA SHARED LINE]
    cat > "$1" <<CONF
data = idx:$WORK/tiny
model = logreg
epochs = 1
batch-size = 16
threads = 1
log-every = 0
no-tensorboard = true
keep = 0
seeds = 0, 1
$2
[erm]
mixup-alpha = 0
[mixup]
mixup-alpha = 1
[cutmix]
mixup-alpha = 0
cutmix-alpha = 1
CONF
}
OUT="$WORK/out"
write_conf "$WORK/plain.conf" ""
"$BIN" experiment "$WORK/plain.conf" --out "$OUT" > "$WORK/first.out" 2> "$WORK/first.err" || fail "experiment: $(cat "$WORK/first.err")"
check '[ ! -e "$OUT/runs/erm_seed=0/analysis.json" ] && [ ! -e "$OUT/analysis.csv" ]'
check '! grep -q "## Analysis" "$OUT/table.md"'
# The CutMix group: plain and temperature modes, and a row saying why not rescaled.
E="$OUT/runs/cutmix_seed=1/eval.json"
check '[ "$(json_get "$E" "\",\".join(sorted(j[\"modes\"])), j[\"theta_bar\"], j[\"rescaled\"]")" = "plain,temperature None not defined for this run (trained with CutMix)" ]'
check 'grep -q "^| cutmix | rescaled | 2 | not defined for this run (trained with CutMix) |" "$OUT/table.md"'
check 'grep -q "^| mixup | rescaled | 2 | [0-9]" "$OUT/table.md"'
check 'grep -q "cutmix_seed=0 .*acc .*(rescaled: not defined)" "$WORK/first.out"'

# The file now asks for analysis of seed 1: the finished runs are analysed, not retrained.
STAMP=$(stat -c %Y.%s "$OUT/runs/mixup_seed=1/eval.json")
write_conf "$WORK/seed1.conf" "analyze-seeds = 1"
"$BIN" experiment "$WORK/seed1.conf" --dry-run > "$WORK/dry.out" 2>&1 || fail "dry run: $(cat "$WORK/dry.out")"
check 'grep -q "mixup_seed=1  (+ analyze)" "$WORK/dry.out" && ! grep -q "mixup_seed=0  (+ analyze)" "$WORK/dry.out"'
sleep 1
"$BIN" experiment "$WORK/seed1.conf" --out "$OUT" > "$WORK/second.out" 2> "$WORK/second.err" || fail "analysis: $(cat "$WORK/second.err")"
check '[ "$(stat -c %Y.%s "$OUT/runs/mixup_seed=1/eval.json")" = "$STAMP" ]'
for m in erm mixup cutmix; do
    check "[ -f '$OUT/runs/${m}_seed=1/analysis.json' ] && [ ! -e '$OUT/runs/${m}_seed=0/analysis.json' ]"
done
check '[ "$(grep -c "analysed" "$WORK/second.out")" = 3 ]'
check '[ "$(json_get "$OUT/runs/mixup_seed=1/analysis.json" "j[\"samples\"], j[\"theta_bar\"]")" = "20 0.75" ]'
check 'grep -q "^| mixup | 1 | [0-9]" "$OUT/table.md"'

# analyze-seeds = all: seed 0 too, and the table aggregates two seeds with their spread.
write_conf "$WORK/all.conf" "analyze-seeds = all"
"$BIN" experiment "$WORK/all.conf" --out "$OUT" > "$WORK/third.out" 2> "$WORK/third.err" || fail "analysis: $(cat "$WORK/third.err")"
check '[ -f "$OUT/runs/erm_seed=0/analysis.json" ] && [ -f "$OUT/runs/cutmix_seed=0/analysis.json" ]'
check 'grep -q "^| mixup | 2 | [0-9.e+-]* ± [0-9]" "$OUT/table.md"'
WANT=$(python3 - "$OUT" <<'PY'
import json, statistics, sys
v = [json.load(open(f"{sys.argv[1]}/runs/mixup_seed={s}/analysis.json"))["jacobian_fro_mean"] for s in (0, 1)]
print("%.12g,%.12g" % (statistics.mean(v), statistics.stdev(v)))
PY
)
check '[ "$(grep "^\"mixup\"," "$OUT/analysis.csv" | cut -d, -f3,4)" = "$WANT" ]'
# Nothing left to do: a rerun trains and analyses nothing.
"$BIN" experiment "$WORK/all.conf" --out "$OUT" > "$WORK/fourth.out" 2>&1 || fail "rerun: $(cat "$WORK/fourth.out")"
check '! grep -q "analysed\|acc " "$WORK/fourth.out"'

write_conf "$WORK/bad.conf" "analyze-seeds = 7"
expect_status 2 "no run has seed 7" -- experiment "$WORK/bad.conf" --dry-run
write_conf "$WORK/bad.conf" "analyze-seeds = all, 0"
expect_status 2 "stands alone" -- experiment "$WORK/bad.conf" --dry-run
write_conf "$WORK/bad.conf" "analyze-seeds = some"
expect_status 2 "not none, all or a seed" -- experiment "$WORK/bad.conf" --dry-run
printf '[erm]\nmixup-alpha = 0\nanalyze-seeds = all\n' > "$WORK/bad.conf"
expect_status 2 "applies to the whole experiment" -- experiment "$WORK/bad.conf" --dry-run

# A stored config without a key added to the settings table since (its
# default is what the run trained with), in a folder moved elsewhere: the
# same run, for --report-only and for a rerun alike.
python3 - "$OUT/runs/erm_seed=0/config.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
for key in ("mix_prob", "cutmix_minmax", "mixup_off_epoch"):
    del j[key]
json.dump(j, open(sys.argv[1], "w"), indent="\t")
PY
mv "$OUT" "$WORK/moved"
expect_status 0 "" -- experiment "$WORK/all.conf" --out "$WORK/moved" --report-only
"$BIN" experiment "$WORK/all.conf" --out "$WORK/moved" > "$WORK/moved.out" 2>&1 || fail "rerun after the move: $(cat "$WORK/moved.out")"
check '! grep -q "analysed\|acc " "$WORK/moved.out"'
# A stored value that differs is still refused, naming the setting.
python3 - "$WORK/moved/runs/erm_seed=0/config.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["lr"] = 0.5
json.dump(j, open(sys.argv[1], "w"), indent="\t")
PY
expect_status 1 "other settings than the experiment file now gives (lr: 0.5 there, 0.05 here)" -- experiment "$WORK/all.conf" --out "$WORK/moved" --report-only
finish
