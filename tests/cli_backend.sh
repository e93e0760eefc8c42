# --backend ref|cpu end to end on a tiny IDX dataset (1x16x16, 4 classes, 100
# training images: batches of 16 and a last one of 4, which the cpu backend
# plans on first use): both backends train and evaluate, the run's config
# records the backend (cpu by default) and a resume continues on it
# bit-identically; the first step's loss is the same on either; the same with
# --precision bf16 (which needs the cpu backend);
# bench takes --backend; an unknown backend is refused; --backend cuda is
# parsed and refused at once with the reason (exit 1).
. "$(dirname "$0")/cli_lib.sh"

python3 "$MIXREG_SOURCE_DIR/tests/make_tiny_idx.py" "$WORK/tiny" 16 100 40 11 || fail "could not write the tiny dataset"
DATA="idx:$WORK/tiny"

# 7 steps per epoch (6 of 16, 1 of 4), 14 in all; a checkpoint every 3 steps.
ARGS=(--model resnet20 --data "$DATA" --epochs 2 --batch-size 16 --lr 0.02 --seed 5 --threads 2 --save-every 3steps
      --keep 10 --log-every 1 --no-tensorboard)
for b in ref cpu; do
    "$BIN" train "${ARGS[@]}" --backend "$b" --out "$WORK/$b" > /dev/null 2> "$WORK/$b.err" \
        || fail "--backend $b training failed: $(cat "$WORK/$b.err")"
    check '[ "$(json_get "$WORK/$b/config.json" "j[\"backend\"]")" = "$b" ]'
    "$BIN" eval "$WORK/$b" --json --threads 2 > "$WORK/$b-eval.json" 2> "$WORK/$b-eval.err" \
        || fail "eval of the $b run failed: $(cat "$WORK/$b-eval.err")"
    check '[ "$(json_get "$WORK/$b-eval.json" "j[\"plain\"][\"n\"] == 40 and 0 <= j[\"plain\"][\"accuracy\"] <= 1")" = True ]'
done

# The default is cpu.
"$BIN" train "${ARGS[@]}" --max-steps 1 --out "$WORK/default" > /dev/null 2>&1 || fail "default training failed"
check '[ "$(json_get "$WORK/default/config.json" "j[\"backend\"]")" = cpu ]'

# The same network either way: the first step's loss (a forward on the same
# weights and batch) agrees to a relative 1e-5 (its printed 6 digits may
# differ in the last one: the kernels' summation order depends on the CPU's
# vector width). (Later steps drift apart:
# with these quantised images some activation lands within a rounding of a
# ReLU's kink, on different sides, and training amplifies that like any
# perturbation; tests/test_cnn_backends.c compares whole steps away from kinks.)
for b in ref cpu; do
    "$BIN" train "${ARGS[@]}" --backend "$b" --max-steps 1 --out "$WORK/one-$b" > /dev/null 2>&1 || fail "one step on $b failed"
done
first_loss() { python3 -c "import json,sys; print([j['loss'] for j in map(json.loads, open(sys.argv[1])) if j['type'] == 'step'][0])" "$1/log.jsonl"; }
check 'python3 -c "import sys; a, b = map(float, sys.argv[1:]); sys.exit(abs(a - b) > 1e-5 * abs(a))" "$(first_loss "$WORK/one-ref")" "$(first_loss "$WORK/one-cpu")"'

# Resume on the cpu backend from step 9 (epoch 2, step 2 of 7): the same final bits.
mkdir -p "$WORK/resumed"
cp "$WORK/cpu/checkpoints/step-0000000009.safetensors" "$WORK/resumed/model.safetensors"
"$BIN" train --resume "$WORK/resumed" > /dev/null 2> "$WORK/resume.err" || fail "resume failed: $(cat "$WORK/resume.err")"
check '[ "$(json_get "$WORK/resumed/config.json" "j[\"backend\"]")" = cpu ]'
check 'tensors_equal "$WORK/cpu/model.safetensors" "$WORK/resumed/model.safetensors"'

# bf16 convolutions: recorded, evaluated and resumed bit-identically on them too.
# oneDNN's bfloat16 kernels need AVX-512 (avx512_core: F, BW, VL, DQ); on an
# AVX2-only CPU the run is refused before anything is written, exit 1.
check '[ "$(json_get "$WORK/cpu/config.json" "j[\"precision\"]")" = fp32 ]'
if grep -q avx512bw /proc/cpuinfo; then
    "$BIN" train "${ARGS[@]}" --precision bf16 --out "$WORK/bf16" > /dev/null 2> "$WORK/bf16.err" \
        || fail "--precision bf16 training failed: $(cat "$WORK/bf16.err")"
    check '[ "$(json_get "$WORK/bf16/config.json" "j[\"precision\"] + j[\"backend\"]")" = bf16cpu ]'
    "$BIN" eval "$WORK/bf16" --json --threads 2 > "$WORK/bf16-eval.json" 2>&1 || fail "eval of the bf16 run failed"
    check '[ "$(json_get "$WORK/bf16-eval.json" "j[\"plain\"][\"n\"] == 40")" = True ]'
    mkdir -p "$WORK/bf16-resumed"
    cp "$WORK/bf16/checkpoints/step-0000000009.safetensors" "$WORK/bf16-resumed/model.safetensors"
    "$BIN" train --resume "$WORK/bf16-resumed" > /dev/null 2>&1 || fail "bf16 resume failed"
    check 'tensors_equal "$WORK/bf16/model.safetensors" "$WORK/bf16-resumed/model.safetensors"'
else
    echo "no AVX-512 on this CPU: checking that --precision bf16 is refused"
    expect_status 1 "no bfloat16 convolution kernels" -- train "${ARGS[@]}" --precision bf16 --out "$WORK/bf16"
    check '[ ! -e "$WORK/bf16/model.safetensors" ]'
fi
expect_status 2 "backend cpu" -- train --model resnet20 --data "$DATA" --backend ref --precision bf16 --out "$WORK/bad"
expect_status 2 "fp32 or bf16" -- train --model resnet20 --data "$DATA" --precision fp16 --out "$WORK/bad"

# bench reports its backend.
for b in ref cpu; do
    "$BIN" bench --model lenet5 --data "$DATA" --backend "$b" --batch 8 --steps 2 --warmup 1 > "$WORK/bench.json" 2> "$WORK/bench.err" \
        || fail "bench --backend $b failed: $(cat "$WORK/bench.err")"
    check '[ "$(json_get "$WORK/bench.json" "j[\"backend\"] == \"$b\" and j[\"train_img_per_s\"] > 0")" = True ]'
done

expect_status 2 "ref, cpu or cuda" -- train --model lenet5 --data "$DATA" --backend gpu --out "$WORK/bad"
check '[ ! -e "$WORK/bad" ]'
expect_status 2 "ref, cpu or cuda" -- bench --model lenet5 --backend gpu

# --backend cuda: one line and exit 1, within seconds (never waiting for a
# device), before anything is loaded or written. Why depends on the build
# (cmake/cuda.cmake sets MIXREG_TEST_CUDA_BUILT; scripts/test.sh builds the
# release suite with CUDA where the toolkit is and the sanitizer suite
# without) and on the machine: built without CUDA; with it, no device
# visible; with a device, the backend's layer kernels are not written yet.
if [ "${MIXREG_TEST_CUDA_BUILT:-0}" != 1 ]; then
    why="--backend cuda: this mixreg was built without CUDA (rebuild with -DMIXREG_CUDA=ON)"
elif command -v nvidia-smi > /dev/null && nvidia-smi -L 2> /dev/null | grep -q '^GPU'; then
    why="--backend cuda: a CUDA device is visible, but .* has no layer kernels yet"
else
    why="--backend cuda: no CUDA device visible (.*); use --backend cpu"
fi
echo "expecting: mixreg: error: $why"
for cmd in "train --model resnet20 --data $DATA --out $WORK/cuda" "bench --model lenet5 --data $DATA --steps 1" \
           "train --model mlp --data $DATA --out $WORK/cuda"; do
    start=$(date +%s)
    # shellcheck disable=SC2086 # the command's words
    err=$(timeout 60 "$BIN" $cmd --backend cuda 2>&1 > /dev/null)
    got=$?
    check '[ "$got" = 1 ]'
    check '[ "$(printf "%s\n" "$err" | wc -l)" = 1 ]'
    check 'printf "%s" "$err" | grep -q -- "^mixreg: error: $why$"'
    check '[ $(( $(date +%s) - start )) -lt 30 ]'
    [ "$got" = 1 ] && printf '%s' "$err" | grep -q -- "^mixreg: error: $why$" || echo "got (exit $got): $err" >&2
done
check '[ ! -e "$WORK/cuda" ]'
finish
