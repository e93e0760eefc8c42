# Evaluation memory on 224x224 image-folder models (the default image size):
# eval plans inference-only buffers within $MIXREG_INFERENCE_MEMORY, so a
# resnet20 evaluates with the default flags (--batch-size 500, which once
# asked for 37 GB of training buffers) under a 2 GiB address-space limit,
# with the metrics of an unlimited run; batches cut at a boundary that does
# not divide the split, or squeezed to one sample by a tiny budget, or with
# the split streamed from disk, give the same metrics; analyze and predict
# plan within the budget too; a resnet50 at 224 evaluates in well under
# 2 GiB of peak memory.
. "$(dirname "$0")/cli_lib.sh"

# AddressSanitizer reserves terabytes of address space for its shadow memory
# and keeps freed blocks in quarantine, so neither an address-space limit
# (ulimit -v) nor a peak-RSS bound means anything under the sanitizer build:
# those checks run on the release build only.
SANITIZED=0
if ldd "$BIN" 2>/dev/null | grep -q 'libasan'; then SANITIZED=1; fi

DATA="$WORK/imgs"
python3 "$MIXREG_SOURCE_DIR/tests/make_image_folder.py" "$DATA" --per-class 2 || fail "could not write the image folder"
train() { # out model
    "$BIN" train --data "folder:$DATA" --model "$2" --epochs 1 --max-steps 1 --batch-size 2 --threads 2 \
        --no-tensorboard --log-every 0 --out "$1" > /dev/null 2> "$WORK/train.err"
}
# peak_rss_kb CMD...: runs CMD (stdout to $WORK/rss.out) and prints its peak resident memory in KiB.
peak_rss_kb() {
    python3 - "$@" <<'PY'
import os, resource, subprocess, sys
with open(os.environ["RSS_OUT"], "w") as out:
    rc = subprocess.call(sys.argv[1:], stdout=out, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if rc == 0 else -1)
PY
}
# same_metrics A B: the two eval JSON files report the same metrics (to float rounding of the printed values).
same_metrics() {
    python3 - "$1" "$2" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
ok = a.keys() == b.keys()
for mode in ("plain", "rescaled"):
    for k, v in a[mode].items():
        ok = ok and abs(v - b[mode][k]) <= 2e-6
sys.exit(0 if ok and a["plain"]["n"] == 6 else 1)
PY
}

train "$WORK/r20" resnet20 || fail "resnet20 training failed: $(cat "$WORK/train.err")"
"$BIN" eval "$WORK/r20" --json --threads 2 > "$WORK/free.json" 2> "$WORK/eval.err" \
    || fail "eval failed: $(cat "$WORK/eval.err")"
check '[ "$(json_get "$WORK/free.json" "j[\"plain\"][\"n\"]")" = 6 ]'
if [ "$SANITIZED" = 0 ]; then
    # Default flags under a 2 GiB address-space limit (the training buffers for batch 500 took 37 GB).
    (ulimit -v 2097152 && "$BIN" eval "$WORK/r20" --json --threads 2 > "$WORK/limited.json" 2> "$WORK/eval.err") \
        || fail "eval under ulimit -v 2 GiB failed: $(cat "$WORK/eval.err")"
    check 'same_metrics "$WORK/free.json" "$WORK/limited.json"'
fi
# Batches of 4 over the 6 samples (4 + 2), and of 1 when the budget holds only one sample.
"$BIN" eval "$WORK/r20" --json --threads 2 --batch-size 4 > "$WORK/b4.json" 2> "$WORK/eval.err" \
    || fail "eval --batch-size 4 failed: $(cat "$WORK/eval.err")"
check 'same_metrics "$WORK/free.json" "$WORK/b4.json"'
MIXREG_INFERENCE_MEMORY=1048576 "$BIN" eval "$WORK/r20" --json --threads 2 > "$WORK/tiny.json" 2> "$WORK/eval.err" \
    || fail "eval with a 1 MiB budget failed: $(cat "$WORK/eval.err")"
check 'same_metrics "$WORK/free.json" "$WORK/tiny.json"'
# A test split over $MIXREG_MEMORY_BUDGET is streamed (--stream auto, the run's setting): the same metrics.
MIXREG_MEMORY_BUDGET=1000 "$BIN" eval "$WORK/r20" --json --threads 2 > "$WORK/streamed.json" 2> "$WORK/eval.err" \
    || fail "eval of a streamed split failed: $(cat "$WORK/eval.err")"
check 'same_metrics "$WORK/free.json" "$WORK/streamed.json"'
# The budget's own errors: usage (exit 2), one line.
MIXREG_INFERENCE_MEMORY=12k expect_status 2 "MIXREG_INFERENCE_MEMORY: '12k' is not a number of bytes" -- eval "$WORK/r20"
# predict plans within the budget as eval does.
MIXREG_INFERENCE_MEMORY=1048576 "$BIN" predict "$WORK/r20" --data "folder:$DATA" > "$WORK/predict.out" 2> "$WORK/predict.err" \
    || fail "predict with a 1 MiB budget failed: $(cat "$WORK/predict.err")"
check '[ "$(grep -c "^sample " "$WORK/predict.out")" = 6 ]'
# analyze: the Taylor terms' 150528 x 150528 input covariance (84 GiB) is refused up front, clearly.
expect_status 1 "Taylor terms need the 150528 x 150528 input covariance" -- analyze "$WORK/r20" --samples 2

if [ "$SANITIZED" = 0 ]; then
    train "$WORK/r50" resnet50 || fail "resnet50 training failed: $(cat "$WORK/train.err")"
    kb=$(RSS_OUT="$WORK/r50.json" peak_rss_kb "$BIN" eval "$WORK/r50" --json --threads 2)
    echo "resnet50 at 224x224, eval with the default flags: peak RSS $((kb / 1024)) MiB"
    check '[ "$kb" -gt 0 ] && [ "$kb" -lt 1048576 ]'  # under 1 GiB ("well under 2")
    check '[ "$(json_get "$WORK/r50.json" "j[\"rescaled\"][\"n\"]")" = 6 ]'
fi
finish
