# mixreg bench on synthetic data: the JSON line's GFLOP per image (lenet5's
# hand count, tests/test_flops.c) and the rates they imply; bad synthetic
# specs and --classes without them are usage errors. bench/run.sh --dry-run
# (no process run, no PyTorch needed: the peers' interpreters are stand-ins
# that print a version): every row against every peer, the rows' flags, the
# rounds, the per-row steps and evaluation batches, and a note for a peer
# that is not installed; then a real run with stand-ins for mixreg and the
# peer: a row mixreg cannot run on the CPU runs no peers. The OpenMP spin
# the run had is in its line: the user's, or the short one beside a busy task.
. "$(dirname "$0")/cli_lib.sh"

"$BIN" bench --model lenet5 --data synthetic:1x28x28 --classes 3 --batch 8 --steps 2 --warmup 1 --eval-batches 2 \
    > "$WORK/bench.json" 2> "$WORK/bench.err" || fail "bench on synthetic data failed: $(cat "$WORK/bench.err")"
# lenet5 on 1x28x28 with 3 classes: 416,520 - 84 x 7 = 415,932 multiply-adds
# forward; a step 3 x that less the first convolution's backward data (117,600).
check '[ "$(json_get "$WORK/bench.json" "j[\"gflop_per_image_eval\"] == 0.000831864 and j[\"gflop_per_image_train\"] == 0.002260392")" = True ]'
check '[ "$(json_get "$WORK/bench.json" "abs(j[\"train_gflops\"] - j[\"train_img_per_s\"] * j[\"gflop_per_image_train\"]) <= 0.1 + 1e-3 * j[\"train_gflops\"]")" = True ]'
check '[ "$(json_get "$WORK/bench.json" "j[\"eval_img_per_s\"] > 0 and \"sgemm_gflops\" not in j")" = True ]'
# The OpenMP spin (cli/main.c): the user's setting kept; with another task
# runnable as mixreg starts (a busy loop here), the short one. (ctest sets
# GOMP_SPINCOUNT for every test: the cases without it unset it.)
quick=(bench --model mlp --data synthetic:1x8x8 --batch 4 --steps 1 --warmup 0 --eval-batches 1)
GOMP_SPINCOUNT=777 "$BIN" "${quick[@]}" > "$WORK/spin.json" || fail "bench with GOMP_SPINCOUNT failed"
check '[ "$(json_get "$WORK/spin.json" "j[\"gomp_spincount\"] == 777 and j[\"omp_wait_policy\"] is None")" = True ]'
env -u GOMP_SPINCOUNT OMP_WAIT_POLICY=passive "$BIN" "${quick[@]}" > "$WORK/spin.json" || fail "bench with OMP_WAIT_POLICY failed"
check '[ "$(json_get "$WORK/spin.json" "j[\"gomp_spincount\"] is None and j[\"omp_wait_policy\"] == \"passive\"")" = True ]'
(while :; do :; done) & busy=$!
sleep 0.2
env -u GOMP_SPINCOUNT -u OMP_WAIT_POLICY "$BIN" "${quick[@]}" > "$WORK/spin.json" || fail "bench beside a busy loop failed"
kill "$busy"
check '[ "$(json_get "$WORK/spin.json" "j[\"gomp_spincount\"] == 1000")" = True ]'
expect_status 2 "synthetic:CxHxW" -- bench --model lenet5 --data synthetic:5x28x28
expect_status 2 "synthetic:CxHxW" -- bench --model lenet5 --data synthetic:1x28
expect_status 2 "synthetic:CxHxW" -- bench --model lenet5 --data synthetic:1x028x28
expect_status 2 "synthetic:CxHxW" -- bench --model lenet5 --data synthetic:1x28x28x
expect_status 2 "over 2 GiB" -- bench --model lenet5 --data synthetic:4x4096x4096
expect_status 2 "only with --data synthetic" -- bench --model lenet5 --classes 5

# The harness's plan. Stand-in interpreters: answer the version question only.
printf '#!/bin/sh\necho 2.15.0\n' > "$WORK/torch2" && chmod +x "$WORK/torch2"
RUN=("$MIXREG_SOURCE_DIR/bench/run.sh")
export MIXREG_BIN=build/mixreg TORCH1_PYTHON="$WORK/no-such-python" TORCH2_PYTHON="$WORK/torch2"
"${RUN[@]}" --dry-run > "$WORK/plan.txt" 2> "$WORK/plan.err" || fail "run.sh --dry-run failed: $(cat "$WORK/plan.err")"
count() { grep -c -- "$1" "$WORK/plan.txt"; }
# 5 rows of 3 rounds and 2 resnet50 rows of 2: 19 rounds, each mixreg, 2.15 eager, 2.15 + compile.
check '[ "$(count "^build/mixreg bench ")" = 19 ]'
check '[ "$(count "torch_peer.py ")" = 38 ]'
check '[ "$(count "torch_peer.py .*--compile")" = 19 ]'
check 'grep -q "^# peer torch1 skipped: .*no-such-python not found" "$WORK/plan.txt"'
check 'grep -q "^# resnet50-bf16, round 2, PyTorch 2.15.0 + compile$" "$WORK/plan.txt"'
check 'grep -q "^# peak rates: build/mixreg bench .*--sgemm" "$WORK/plan.txt"'
# CNNs channels-last, the MLP not; bf16 rows autocast; resnet50 at 224 batch 32.
check '[ "$(count "torch_peer.py --model mlp .*--channels-last")" = 0 ]'
check '[ "$(count "torch_peer.py --model lenet5 .*--channels-last")" = 6 ]'
check '[ "$(count "torch_peer.py --model resnet20 .*--data synthetic:3x32x32 .*--channels-last --bf16")" = 6 ]'
check '[ "$(count "^build/mixreg bench --model resnet20 .*--data synthetic:3x32x32 --precision bf16$")" = 3 ]'
check '[ "$(count "^build/mixreg bench --model resnet50 --threads 2 --batch 32 .*--data synthetic:3x224x224 --classes 1000 --precision bf16$")" = 2 ]'
check '[ "$(count "^build/mixreg bench --model preact18 .*--data synthetic:3x32x32 --precision fp32$")" = 3 ]'
# Rows, rounds and steps picked; the old positional form still works.
STEPS_resnet20=7 THREADS=1 "${RUN[@]}" resnet20,mlp 2 --dry-run > "$WORK/plan.txt" 2>&1 || fail "run.sh resnet20,mlp 2 failed"
check '[ "$(count "^build/mixreg bench --model resnet20 --threads 1 --batch 128 --steps 7 ")" = 2 ]'
check '[ "$(count "^build/mixreg bench --model mlp --threads 1 --batch 128 --steps 200 ")" = 2 ]'
check '[ "$(count "^build/mixreg bench ")" = 4 ]'
PEERS=torch2 "${RUN[@]}" --rows lenet5 --rounds 1 --steps 3 --dry-run > "$WORK/plan.txt" 2>&1 || fail "run.sh --rows failed"
check '[ "$(count "torch_peer.py --model lenet5 --threads 2 --batch 128 --steps 3 ")" = 1 ]'
check '[ "$(count "--compile")" = 0 ]'
# Evaluation batches: 512 for the small rows, 8 for the others, or a row's own.
EVAL_BATCHES_resnet20=3 "${RUN[@]}" --rows mlp,resnet20 --rounds 1 --dry-run > "$WORK/plan.txt" 2>&1 || fail "run.sh failed"
check '[ "$(count "^build/mixreg bench --model mlp .*--eval-batches 512 ")" = 1 ]'
check '[ "$(count "^build/mixreg bench --model resnet20 .*--eval-batches 3 ")" = 1 ]'
CHECKS=$((CHECKS + 1))
if "${RUN[@]}" --rows resnet21 --dry-run > /dev/null 2>&1; then fail "run.sh took an unknown row"; fi

# A row mixreg cannot run on the CPU (a stand-in that answers bf16 as a CPU
# without AVX-512 does) runs no peers: the stand-in peer leaves a mark.
cat > "$WORK/mixreg-stub" <<'STUB'
#!/bin/sh
case "$*" in *"--precision bf16"*)
    echo "mixreg: error: precision bf16: this CPU has no bfloat16 convolution kernels (oneDNN's need AVX-512)" >&2
    exit 1 ;;
esac
echo '{"sgemm_gflops": 100.0, "train_img_per_s": 1.0, "eval_img_per_s": 1.0}'
STUB
cat > "$WORK/torch2-stub" <<STUB
#!/bin/sh
if [ "\$1" = "-c" ]; then echo 2.15.0; exit 0; fi
touch "$WORK/peer-ran"
echo '{"train_img_per_s": 1.0, "eval_img_per_s": 1.0}'
STUB
chmod +x "$WORK/mixreg-stub" "$WORK/torch2-stub"
MIXREG_BIN="$WORK/mixreg-stub" TORCH2_PYTHON="$WORK/torch2-stub" PEERS=torch2 \
    "${RUN[@]}" --rows resnet20-bf16 --rounds 2 > "$WORK/run.md" 2> "$WORK/run.err" || fail "run.sh failed: $(cat "$WORK/run.err")"
check '[ ! -e "$WORK/peer-ran" ]'
check 'grep -q "resnet20-bf16: the peers not run, as mixreg.s precision is not available on this CPU" "$WORK/run.md"'
check 'grep -q "^| resnet20-bf16 | not available on this CPU | not run |" "$WORK/run.md"'
finish
