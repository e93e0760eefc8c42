# End to end on Fashion-MNIST: train a few hundred steps with Mixup, evaluate
# plain and rescaled through the CLI, check the run directory and the JSON.
. "$(dirname "$0")/cli_lib.sh"

RUN="$WORK/run"
if ! "$BIN" train --epochs 2 --max-steps 300 --threads 2 --seed 3 --out "$RUN" > "$WORK/train.out" 2> "$WORK/train.err"; then
    fail "training failed: $(cat "$WORK/train.err")"
    finish; exit 1
fi
check '[ -f "$RUN/model.safetensors" ] && [ -f "$RUN/config.json" ] && [ -f "$RUN/log.jsonl" ] && [ -f "$RUN/result.json" ]'
check 'grep -q "rescaled" "$WORK/train.out"'
check '[ "$(grep -c "\"type\": \"epoch\"" "$RUN/log.jsonl")" = 1 ]'   # 300 steps < one 469-step epoch
check '[ "$(grep -c "\"type\": \"step\"" "$RUN/log.jsonl")" = 6 ]'    # a step line every 50 steps

"$BIN" eval "$RUN" --json > "$WORK/eval.json" 2> "$WORK/eval.err" || fail "eval failed: $(cat "$WORK/eval.err")"
check '[ "$(json_get "$WORK/eval.json" "\",\".join(sorted(j))")" = plain,rescaled,theta_bar ]'
check '[ "$(json_get "$WORK/eval.json" "\",\".join(sorted(j[\"plain\"]))")" = accuracy,brier,ece,ece_adaptive,mce,n,nll,top5 ]'
acc=$(json_get "$WORK/eval.json" "j['plain']['accuracy']")
racc=$(json_get "$WORK/eval.json" "j['rescaled']['accuracy']")
echo "accuracy after 300 steps: plain $acc, rescaled $racc"
check 'python3 -c "import sys; sys.exit(not float(sys.argv[1]) > 0.70)" "$acc"'   # chance is 0.10
check 'python3 -c "import sys; sys.exit(not float(sys.argv[1]) > 0.70)" "$racc"'
check '[ "$(json_get "$WORK/eval.json" "j[\"plain\"][\"n\"]")" = 10000 ]'
check '[ "$(json_get "$WORK/eval.json" "round(j[\"theta_bar\"], 6)")" = 0.75 ]'
# eval agrees with what training reported at its end.
check '[ "$(json_get "$RUN/result.json" "round(j[\"plain\"][\"accuracy\"], 6)")" = "$(json_get "$WORK/eval.json" "round(j[\"plain\"][\"accuracy\"], 6)")" ]'
# Temperature scaling, reliability diagram, predictions.
"$BIN" eval "$RUN" --json --temperature fit --bins 10 --reliability "$WORK/rel.png" --reliability "$WORK/rel.svg" \
    --predictions "$WORK/pred.csv" > "$WORK/temp.json" 2> "$WORK/temp.err" || fail "eval --temperature failed: $(cat "$WORK/temp.err")"
check '[ "$(json_get "$WORK/temp.json" "\",\".join(sorted(k for k in j if isinstance(j[k], dict) and \"accuracy\" in j[k]))")" = plain,rescaled,rescaled+temperature,temperature ]'
check '[ "$(json_get "$WORK/temp.json" "j[\"temperature\"][\"temperature\"] > 0")" = True ]'
check '[ "$(json_get "$WORK/temp.json" "j[\"temperature\"][\"nll\"] <= j[\"plain\"][\"nll\"] + 0.02")" = True ]'
check '[ "$(json_get "$WORK/temp.json" "j[\"temperature_fit\"][\"seen_in_training\"]")" = True ]'
check '[ "$(json_get "$WORK/temp.json" "j[\"plain\"][\"accuracy\"] == j[\"temperature\"][\"accuracy\"]")" = True ]'
check '[ "$(head -c 4 "$WORK/rel.svg" | od -An -c | tr -d " ")" != "" ] && grep -q "<svg" "$WORK/rel.svg"'
# Both modes reported (with temperature scaling too): p0.. the rescaled
# probabilities, then the rescaled logits and the plain probabilities and logits.
check '[ "$(head -n 1 "$WORK/pred.csv")" = "index,label,$(for b in p rescaled_logit plain_p plain_logit; do for c in 0 1 2 3 4 5 6 7 8 9; do printf "%s%s," $b $c; done; done | sed "s/,\$//")" ]'
check '[ "$(wc -l < "$WORK/pred.csv")" = 10001 ]'
"$BIN" eval "$RUN" --reliability "$WORK/rel.png" > /dev/null || fail "eval --reliability png failed"
check '[ "$(head -c 8 "$WORK/rel.png" | od -An -tx1 | tr -d " \n")" = 89504e470d0a1a0a ]'
expect_status 2 "--temperature" -- eval "$RUN" --temperature guess
expect_status 2 "--bins" -- eval "$RUN" --bins 0
expect_status 2 ".csv or .npy" -- eval "$RUN" --predictions "$WORK/pred.txt"

# --rescale off reports only the plain mode.
"$BIN" eval "$RUN" --json --rescale off > "$WORK/plain.json"
check '[ "$(json_get "$WORK/plain.json" "\"rescaled\" in j")" = False ]'
# The config records the run's settings.
check '[ "$(json_get "$RUN/config.json" "j[\"mixup_alpha\"]")" = 1 ]'
# A second run into the same directory is refused, the first model untouched.
before=$(md5sum < "$RUN/model.safetensors")
expect_status 1 "already holds" -- train --max-steps 5 --out "$RUN"
check '[ "$before" = "$(md5sum < "$RUN/model.safetensors")" ]'

# Reproducible: the same seed and threads give the same bits.
"$BIN" train --epochs 1 --max-steps 40 --threads 2 --seed 11 --out "$WORK/a" > /dev/null 2>&1
"$BIN" train --epochs 1 --max-steps 40 --threads 2 --seed 11 --out "$WORK/b" > /dev/null 2>&1
check 'tensors_equal "$WORK/a/model.safetensors" "$WORK/b/model.safetensors"'
"$BIN" train --epochs 1 --max-steps 40 --threads 2 --seed 12 --out "$WORK/c" > /dev/null 2>&1
check '! tensors_equal "$WORK/a/model.safetensors" "$WORK/c/model.safetensors"'

# ERM with every other mixup variant runs; ERM's rescaled equals plain (theta_bar = 1).
"$BIN" train --epochs 1 --max-steps 30 --mixup-alpha 0 --out "$WORK/erm" > /dev/null 2>&1 || fail "ERM run failed"
"$BIN" eval "$WORK/erm" --json > "$WORK/erm.json"
check '[ "$(json_get "$WORK/erm.json" "j[\"plain\"] == j[\"rescaled\"]")" = True ]'
for variant in "--mixup-mode elem --mixup-partner flip" "--mixup-mode pair --mixup-partner perm --mixup-theta" \
               "--mixup-mode pair --mixup-partner flip --batch-size 7" "--mixup-partner roll --label-smoothing 0.1" \
               "--model logreg --schedule step:1 --nesterov" "--mixup-only-inputs" "--mixup-only-labels --mixup-theta"; do
    # shellcheck disable=SC2086
    "$BIN" train --epochs 2 --max-steps 20 $variant --out "$WORK/v$CHECKS" > /dev/null 2> "$WORK/v.err" || fail "variant '$variant' failed: $(cat "$WORK/v.err")"
    CHECKS=$((CHECKS + 1))
done

# predict: a PNG of the first test image gets the same top classes as the test split's sample 0.
python3 - "$WORK/first.png" "${MIXREG_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}/t10k-images-idx3-ubyte.gz" <<'PY'
import gzip, struct, sys, zlib
img = gzip.open(sys.argv[2]).read()[16:16 + 784]
raw = b"".join(b"\x00" + img[r * 28:(r + 1) * 28] for r in range(28))
chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY
from_png=$("$BIN" predict "$RUN" "$WORK/first.png" | tail -n 1 | sed 's/^[^:]*://')
from_data=$("$BIN" predict "$RUN" --data fashion-mnist --limit 1 | tail -n 1 | sed 's/^[^:]*://')
check '[ -n "$from_png" ] && [ "$from_png" = "$from_data" ]'
check '"$BIN" predict "$RUN" --data fashion-mnist --limit 2 --no-rescale | head -n 1 | grep -q "^plain prediction"'
expect_status 2 "either IMAGE" -- predict "$RUN"
expect_status 1 "eval.json: not a JPEG or PNG image" -- predict "$RUN" "$WORK/eval.json"

# The ablations are recorded in the config.
"$BIN" train --epochs 1 --max-steps 5 --mixup-only-inputs --out "$WORK/ablation" > /dev/null 2>&1
check '[ "$(json_get "$WORK/ablation/config.json" "(j[\"mixup_inputs\"], j[\"mixup_labels\"])")" = "(True, False)" ]'

# Divergence is a clear runtime error.
expect_status 1 "loss became" -- train --epochs 1 --lr 1000 --schedule constant --warmup-epochs 0 --out "$WORK/nan"

# runs lists the run directories with their final metrics.
"$BIN" runs "$WORK" --json > "$WORK/runs.json" || fail "runs failed"
# (300 steps of 2 epochs: stopped by --max-steps, not done)
check '[ "$(json_get "$WORK/runs.json" "[r[\"status\"] for r in j if r[\"run\"] == \"run\"][0]")" = stopped ]'
check '[ "$(json_get "$RUN/result.json" "(j[\"complete\"], j[\"stopped_by\"], j[\"steps\"])")" = "(False, '"'max_steps'"', 300)" ]'
check '[ "$(json_get "$WORK/runs.json" "[r[\"test\"][\"plain\"][\"accuracy\"] for r in j if r[\"run\"] == \"run\"][0]")" = "$acc" ]'
check '"$BIN" runs "$WORK" | grep -q "a=1 batch/perm"'
expect_status 1 "No such file or directory" -- runs "$WORK/absent"
# done: every epoch trained (a step limit at or past the end changes nothing);
# stopped: --max-steps ended it early; a result.json from before "complete"
# was written is judged by the epochs its log holds.
python3 "$MIXREG_SOURCE_DIR/tests/make_tiny_idx.py" "$WORK/tiny" 8 64 16 5 || fail "could not write the tiny dataset"
tiny=(--data "idx:$WORK/tiny" --model logreg --batch-size 16 --threads 1 --no-tensorboard)
"$BIN" train "${tiny[@]}" --epochs 2 --out "$WORK/status/full" > /dev/null 2>&1 || fail "full run failed"
"$BIN" train "${tiny[@]}" --epochs 2 --max-steps 8 --out "$WORK/status/exact" > /dev/null 2>&1 || fail "exact run failed"
"$BIN" train "${tiny[@]}" --epochs 2 --max-steps 6 --out "$WORK/status/short" > /dev/null 2>&1 || fail "short run failed"
"$BIN" train "${tiny[@]}" --epochs 2 --max-steps 3 --out "$WORK/status/old" > /dev/null 2>&1 || fail "old run failed"
python3 - "$WORK/status/old/result.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
for k in ("complete", "stopped_by", "steps"):
    del j[k]
json.dump(j, open(sys.argv[1], "w"))
PY
"$BIN" runs "$WORK/status" --json > "$WORK/status.json" || fail "runs failed"
check '[ "$(json_get "$WORK/status.json" "sorted((r[\"run\"], r[\"status\"]) for r in j)")" = "[('"'exact'"', '"'done'"'), ('"'full'"', '"'done'"'), ('"'old'"', '"'stopped'"'), ('"'short'"', '"'stopped'"')]" ]'
check '[ "$(json_get "$WORK/status/full/result.json" "(j[\"complete\"], j[\"steps\"], \"stopped_by\" in j)")" = "(True, 8, False)" ]'
check '"$BIN" runs "$WORK/status" | grep -Eq "^short +stopped "'

# theta --json carries every field.
"$BIN" theta --alpha 1 --json > "$WORK/theta.json"
check '[ "$(json_get "$WORK/theta.json" "\",\".join(sorted(j))")" = alpha,gamma2,label_smoothing,mix_prob,theta_bar,theta_var ]'
check '[ "$(json_get "$WORK/theta.json" "round(j[\"label_smoothing\"], 12)")" = 0.25 ]'
finish
