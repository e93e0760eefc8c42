# timm's flag names as aliases of mixreg's settings (the settings table's
# alias column), and the answer to an unknown flag: "did you mean".
. "$(dirname "$0")/cli_lib.sh"

python3 "$MIXREG_SOURCE_DIR/tests/make_tiny_idx.py" "$WORK/tiny" 8 64 16 5 || fail "could not write the tiny dataset"
common=(--data "idx:$WORK/tiny" --model logreg --epochs 1 --max-steps 2 --threads 1 --no-tensorboard)

# The same run through timm's names and through mixreg's: the same stored
# config (apart from the directory), under the canonical keys only.
"$BIN" train "${common[@]}" -b 16 --mixup 0.4 --cutmix=0.5 --mixup-prob 0.8 --mixup-switch-prob 0.3 \
    --smoothing 0.1 --sched constant --output "$WORK/timm" > /dev/null 2> "$WORK/timm.err" \
    || fail "training with timm's names failed: $(cat "$WORK/timm.err")"
"$BIN" train "${common[@]}" --batch-size 16 --mixup-alpha 0.4 --cutmix-alpha 0.5 --mix-prob 0.8 \
    --cutmix-switch-prob 0.3 --label-smoothing 0.1 --schedule constant --out "$WORK/own" > /dev/null 2> "$WORK/own.err" \
    || fail "training with mixreg's names failed: $(cat "$WORK/own.err")"
check '[ "$(json_get "$WORK/timm/config.json" "[j[k] for k in (\"batch_size\", \"mixup_alpha\", \"cutmix_alpha\", \"mix_prob\", \"cutmix_switch_prob\", \"label_smoothing\", \"schedule\")]")" = "[16, 0.4, 0.5, 0.8, 0.3, 0.1, '"'"'constant'"'"']" ]'
check '[ "$(json_get "$WORK/timm/config.json" "j[\"out\"]")" = "$WORK/timm" ]'
check 'python3 - "$WORK/timm/config.json" "$WORK/own/config.json" <<PY
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
a.pop("out"); b.pop("out")
sys.exit(a != b or any(k in a for k in ("b", "mixup", "cutmix", "mixup_prob", "mixup_switch_prob", "smoothing", "sched", "output")))
PY'
# -b=N as --batch-size=N; a value refused under an alias is named as typed.
"$BIN" train "${common[@]}" -b=8 --out "$WORK/short" > /dev/null 2>&1 || fail "-b=8 refused"
check '[ "$(json_get "$WORK/short/config.json" "j[\"batch_size\"]")" = 8 ]'
expect_status 2 "^mixreg: error: train: -b must be in 1..65536, got 0" -- train -b 0
expect_status 2 "train: --mixup must be in" -- train --mixup -1
expect_status 2 "train: --smoothing must be in" -- train --smoothing 1.5
# One letter takes one dash, a name two.
expect_status 2 "unknown flag '--b' (did you mean '-b'?)" -- train --b 16
expect_status 2 "unknown flag '-mixup'" -- train -mixup 1
# timm's step schedules take their epochs from other flags; mixreg's from the value.
expect_status 2 "step:E1,E2,... (timm's multistep" -- train --sched step
expect_status 2 "step:E1,E2,... (timm's multistep" -- train --schedule multistep
"$BIN" train "${common[@]}" --sched step:1 --out "$WORK/step" > /dev/null 2>&1 || fail "--sched step:1 refused"
check '[ "$(json_get "$WORK/step/config.json" "j[\"schedule\"]")" = step:1 ]'
# --help lists every alias with its setting.
"$BIN" train --help > "$WORK/help.txt"
for pair in "-b:--batch-size" "--mixup:--mixup-alpha" "--cutmix:--cutmix-alpha" "--mixup-prob:--mix-prob" \
            "--mixup-switch-prob:--cutmix-switch-prob" "--smoothing:--label-smoothing" "--sched:--schedule" \
            "--output:--out"; do
    check 'grep -Eq -- "^  ${pair%%:*} += ${pair#*:}\$" "$WORK/help.txt"'
done

# Experiment files take the aliases too, under the setting's own name: in the
# run names, and set twice when both names are given.
cat > "$WORK/grid.ini" <<CONF
data = idx:$WORK/tiny
model = logreg
epochs = 1
[mixup]
mixup = 0.5, 1
CONF
"$BIN" experiment "$WORK/grid.ini" --out "$WORK/grid" --dry-run > "$WORK/dry.out" 2>&1 || fail "dry run failed: $(cat "$WORK/dry.out")"
check 'grep -q "^  mixup_mixup-alpha=0.5$" "$WORK/dry.out"'
printf 'mixup-alpha = 1\nmixup = 2\n' > "$WORK/twice.ini"
expect_status 2 "'mixup-alpha' is set twice (first at line 1)" -- experiment "$WORK/twice.ini" --out "$WORK/twice" --dry-run

# An unknown flag: the closest of the command's flags and aliases, exit 2, or
# none when nothing is close.
expect_status 2 "^mixreg: error: unknown flag '--mixup-alhpa' (did you mean '--mixup-alpha'?)\$" -- train --mixup-alhpa 0.3
expect_status 2 "^mixreg: error: unknown flag '--mixup-alhpa' (did you mean '--mixup-alpha'?)\$" -- train --mixup-alhpa=0.3
expect_status 2 "unknown flag '--smothing' (did you mean '--smoothing'?)" -- train --smothing 0.1
expect_status 2 "unknown flag '--epoch' (did you mean '--epochs'?)" -- train --epoch 3
expect_status 2 "^mixreg: error: unknown flag '--frobnicate' (see mixreg train --help)\$" -- train --frobnicate
expect_status 2 "unknown flag '--predicitons' (did you mean '--predictions'?)" -- eval "$WORK/own" --predicitons p.csv
expect_status 2 "unknown flag '--rescal' (did you mean '--rescale'?)" -- eval "$WORK/own" --rescal off
expect_status 2 "unknown flag '--jsn' (did you mean '--json'?)" -- runs "$WORK" --jsn
expect_status 2 "unknown flag '--no-rescal' (did you mean '--no-rescale'?)" -- predict "$WORK/own" --no-rescal
expect_status 2 "unknown flag '--dryrun' (did you mean '--dry-run'?)" -- experiment "$WORK/grid.ini" --dryrun
expect_status 2 "unknown flag '--alpah' (did you mean '--alpha'?)" -- theta --alpah 1
expect_status 2 "unknown flag '--sample' (did you mean '--samples'?)" -- analyze "$WORK/own" --sample 3
expect_status 2 "unknown flag '--stesp' (did you mean '--steps'?)" -- bench --stesp 3
# Eval's own flags, not train's: no suggestion of a training flag.
expect_status 2 "^mixreg: error: unknown flag '--mixup-alpha' (see mixreg eval --help)\$" -- eval "$WORK/own" --mixup-alpha 1
# A stray word is still an unknown argument, not a flag.
expect_status 2 "unknown argument 'extra'" -- eval "$WORK/own" extra
finish
