# Mixing other than plain Mixup: a CutMix-only or one-sided (inputs-only)
# run has no rescaled prediction, and eval, its JSON and the training line say
# so; --mixup-off-epoch mixes in the first N epochs only, counts the unmixed
# epochs in the stored theta_bar and survives a resume; --cutmix-minmax is
# stored with the run and checked like every setting.
. "$(dirname "$0")/cli_lib.sh"

python3 "$MIXREG_SOURCE_DIR/tests/make_tiny_idx.py" "$WORK/tiny" 8 64 20 5 || fail "could not write the tiny dataset"
COMMON=(--model logreg --data "idx:$WORK/tiny" --batch-size 16 --no-tensorboard --threads 1 --log-every 0)

train() { # NAME ARGS...: trains into $WORK/NAME, the training line in $WORK/NAME.out
    local name=$1
    shift
    "$BIN" train "${COMMON[@]}" "$@" --out "$WORK/$name" > "$WORK/$name.out" 2> "$WORK/$name.err" ||
        fail "training $name: $(cat "$WORK/$name.err")"
}

# ---- no rescaled prediction where the paper's derivation does not apply ----
train cutmix --mixup-alpha 0 --cutmix-alpha 1 --max-steps 2
train inputs --mixup-alpha 1 --mixup-only-inputs --max-steps 2
train erm --mixup-alpha 0 --max-steps 2
check '! grep -q "ERM" "$WORK/cutmix.out"'
check 'grep -q "CutMix alpha 1 (no rescaled prediction)" "$WORK/cutmix.out"'
check 'grep -q "mixup alpha 1 (inputs only) (no rescaled prediction)" "$WORK/inputs.out"'
check 'grep -q "ERM (no mixup)" "$WORK/erm.out"'
for run in cutmix inputs; do
    why="trained with CutMix"
    [ "$run" = inputs ] && why="trained with --mixup-only-inputs"
    "$BIN" eval "$WORK/$run" --threads 1 > "$WORK/$run.eval" 2> "$WORK/err" || fail "eval $run: $(cat "$WORK/err")"
    check "grep -qx 'rescaled: not defined for this run ($why)' '$WORK/$run.eval'"
    check "grep -q '^plain ' '$WORK/$run.eval'"
    check "! grep -q '^rescaled ' '$WORK/$run.eval'"
    check "! grep -q 'theta_bar' '$WORK/$run.eval'"
    "$BIN" eval "$WORK/$run" --json --threads 1 > "$WORK/$run.json" 2> "$WORK/err" || fail "eval --json $run: $(cat "$WORK/err")"
    check "[ \"\$(json_get '$WORK/$run.json' 'j[\"rescaled\"], j[\"theta_bar\"], \"accuracy\" in j[\"plain\"]')\" = 'not defined for this run ($why) None True' ]"
    expect_status 1 "rescaled prediction is not defined" -- eval "$WORK/$run" --rescale on --threads 1
    expect_status 1 "$why" -- eval "$WORK/$run" --rescale both --threads 1
    expect_status 0 "" -- eval "$WORK/$run" --rescale off --threads 1
done
# analyze: no Taylor terms for CutMix, and it says why.
"$BIN" analyze "$WORK/cutmix" --samples 10 --threads 1 > "$WORK/analyze.out" 2>&1 || fail "analyze: $(cat "$WORK/analyze.out")"
check 'grep -q "^note: trained with CutMix: the paper.s expansion" "$WORK/analyze.out"'
# Plain Mixup keeps its rescaled prediction.
train mixup --mixup-alpha 1 --max-steps 2
"$BIN" eval "$WORK/mixup" --threads 1 > "$WORK/mixup.eval" 2>&1 || fail "eval mixup: $(cat "$WORK/mixup.eval")"
check 'grep -q "^rescaled " "$WORK/mixup.eval" && grep -q "(theta_bar 0.7500)" "$WORK/mixup.eval"'
check '! grep -q "not defined" "$WORK/mixup.eval"'
# --theta-bar: the rescaled prediction with another shrinkage; 1 is the plain
# prediction (to rounding), and an ERM run can be shrunk too.
"$BIN" eval "$WORK/mixup" --theta-bar 1 --json --threads 1 > "$WORK/t1.json" 2> "$WORK/err" || fail "eval --theta-bar 1: $(cat "$WORK/err")"
check '[ "$(json_get "$WORK/t1.json" "j[\"theta_bar\"], all(abs(j[\"plain\"][k] - j[\"rescaled\"][k]) < 1e-5 for k in (\"nll\", \"accuracy\", \"ece\"))")" = "1 True" ]'
"$BIN" eval "$WORK/erm" --theta-bar 0.5 --threads 1 > "$WORK/t05.eval" 2> "$WORK/err" || fail "eval --theta-bar 0.5: $(cat "$WORK/err")"
check 'grep -q "(theta_bar 0.5000 as given; the run.s is 1.0000)" "$WORK/t05.eval"'
check '[ "$(grep "^plain " "$WORK/t05.eval" | awk "{print \$4}")" != "$(grep "^rescaled " "$WORK/t05.eval" | awk "{print \$4}")" ]'
expect_status 1 "theta-bar: the rescaled prediction is not defined" -- eval "$WORK/cutmix" --theta-bar 0.9 --threads 1
expect_status 2 "theta-bar" -- eval "$WORK/erm" --theta-bar 0 --threads 1
expect_status 2 "theta-bar" -- eval "$WORK/erm" --theta-bar 1.5 --threads 1

# ---- --mixup-off-epoch ----
# 4 epochs of 4 steps; off from epoch 3 on (mixing in epochs 1-2): theta_bar
# = 1/2 * 1 + 1/2 * 0.75. N >= epochs changes nothing, bit for bit.
OFF=(--mixup-alpha 1 --epochs 4 --save-every 1steps --keep 20)
train always "${OFF[@]}"
train off2 "${OFF[@]}" --mixup-off-epoch 2
train off4 "${OFF[@]}" --mixup-off-epoch 4
check 'grep -q "mixing in epochs 1-2 (theta_bar 0.8750)" "$WORK/off2.out"'
check 'tensors_equal "$WORK/always/model.safetensors" "$WORK/off4/model.safetensors"'
check '! tensors_equal "$WORK/always/model.safetensors" "$WORK/off2/model.safetensors"'
for run in always off2 off4; do
    "$BIN" eval "$WORK/$run" --json --threads 1 > "$WORK/$run.json" 2> "$WORK/err" || fail "eval $run: $(cat "$WORK/err")"
done
check '[ "$(json_get "$WORK/off2.json" "j[\"theta_bar\"]")" = 0.875 ]'
check '[ "$(json_get "$WORK/off4.json" "j[\"theta_bar\"]")" = 0.75 ]'
epoch_losses() { python3 -c "import json,sys; print(' '.join(str(j['train_loss']) for j in map(json.loads, open(sys.argv[1])) if j['type'] == 'epoch'))" "$1/log.jsonl"; }
always=($(epoch_losses "$WORK/always")) off2=($(epoch_losses "$WORK/off2"))
check '[ "${#off2[@]}" = 4 ] && [ "${always[0]} ${always[1]}" = "${off2[0]} ${off2[1]}" ] && [ "${always[2]}" != "${off2[2]}" ]'
# The unmixed epochs fit the clean labels: a lower loss than mixed epochs.
check 'python3 -c "import sys; sys.exit(not float(sys.argv[1]) < float(sys.argv[2]))" "${off2[2]}" "${always[2]}"'
check '[ "$(json_get "$WORK/off2/config.json" "j[\"mixup_off_epoch\"]")" = 2 ]'
# Resumed before the switch (mid epoch 2) and after it (mid epoch 3): the
# same model as the uninterrupted run.
for step in 6 10; do
    cp -r "$WORK/off2" "$WORK/off2-from-$step"
    cp "$WORK/off2/checkpoints/step-00000000$(printf %02d $step).safetensors" "$WORK/off2-from-$step/model.safetensors"
    rm -f "$WORK/off2-from-$step/result.json"
    "$BIN" train --resume "$WORK/off2-from-$step" > /dev/null 2> "$WORK/err" || fail "resume at step $step: $(cat "$WORK/err")"
    check "tensors_equal '$WORK/off2/model.safetensors' '$WORK/off2-from-$step/model.safetensors'"
done

# ---- --cutmix-minmax ----
train minmax --mixup-alpha 0 --cutmix-minmax 0.25,0.75 --max-steps 2
check 'grep -q "CutMix (box sides 0.25-0.75 of the image) (no rescaled prediction)" "$WORK/minmax.out"'
check '[ "$(json_get "$WORK/minmax/config.json" "j[\"cutmix_minmax\"], j[\"cutmix_alpha\"]")" = "0.25,0.75 0" ]'
check '[ "$(json_get "$WORK/erm/config.json" "j[\"cutmix_minmax\"], j[\"mixup_off_epoch\"]")" = "off 0" ]'
# `mixreg runs` names the mixing: CutMix, not ERM.
"$BIN" runs "$WORK" > "$WORK/runs.out" 2>&1 || fail "runs: $(cat "$WORK/runs.out")"
check 'grep -q "^cutmix .* cutmix a=1 " "$WORK/runs.out" && grep -q "^minmax .* cutmix 0.25,0.75 " "$WORK/runs.out"'
check 'grep -q "^erm .* ERM " "$WORK/runs.out" && ! grep -q "^cutmix .* ERM " "$WORK/runs.out"'
expect_status 2 "MIN must be below MAX" -- train "${COMMON[@]}" --cutmix-minmax 0.8,0.2 --out "$WORK/bad"
expect_status 2 "cutmix-minmax" -- train "${COMMON[@]}" --cutmix-minmax 0.5 --out "$WORK/bad"
expect_status 2 "cutmix-minmax" -- train "${COMMON[@]}" --cutmix-minmax 0.2,1.5 --out "$WORK/bad"
expect_status 2 "mixup-off-epoch" -- train "${COMMON[@]}" --mixup-off-epoch -1 --out "$WORK/bad"
finish
