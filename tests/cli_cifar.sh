# docs/cifar.md's commands on tiny files in the CIFAR binary format: CIFAR-10's
# five training batches and test batch (a few records each), CIFAR-100's
# train.bin and test.bin with fine and coarse labels.
. "$(dirname "$0")/cli_lib.sh"

C10=$WORK/cifar-10-batches-bin
C100=$WORK/cifar-100-binary
python3 - "$C10" "$C100" <<'PY'
import os, sys
c10, c100 = sys.argv[1:3]
os.makedirs(c10)
os.makedirs(c100)
def image(k):  # 3072 bytes: red, green, blue 32x32 planes
    return bytes((k * 37 + i * (1 + k % 5)) % 256 for i in range(3072))
k = 0
for name, n in [("data_batch_%d.bin" % b, 4) for b in range(1, 6)] + [("test_batch.bin", 6)]:
    with open(os.path.join(c10, name), "wb") as f:
        for _ in range(n):
            f.write(bytes([k % 10]) + image(k))
            k += 1
for name, n in (("train.bin", 12), ("test.bin", 5)):
    with open(os.path.join(c100, name), "wb") as f:
        for i in range(n):
            f.write(bytes([i % 20, (i * 7) % 100]) + image(i))
PY
"$BIN" train --data "cifar10:$C10" --model resnet20 --augment crop:4,flip --epochs 200 --lr 0.1 \
    --schedule step:100,150 --weight-decay 1e-4 --mixup-alpha 1 --out "$WORK/c10-mixup" \
    --max-steps 3 --batch-size 8 --threads 2 --no-tensorboard > /dev/null 2>&1 || fail "train on cifar10:DIR failed"
"$BIN" eval "$WORK/c10-mixup" --json > "$WORK/c10.json" 2> /dev/null || fail "eval of the cifar10 run failed"
check '[ "$(json_get "$WORK/c10.json" "(j[\"plain\"][\"n\"], j[\"rescaled\"][\"n\"])")" = "(6, 6)" ]'
"$BIN" theta --alpha 1 --data "cifar10:$C10" --json > "$WORK/theta.json" || fail "theta --data cifar10:DIR failed"
check '[ "$(json_get "$WORK/theta.json" "(len(j[\"class_prior\"]), j[\"class_prior\"][0])")" = "(10, 0.1)" ]'
"$BIN" train --data "cifar100:$C100" --label coarse --model lenet5 --epochs 1 --batch-size 4 --threads 2 \
    --out "$WORK/c100" --no-tensorboard > /dev/null 2>&1 || fail "train on cifar100:DIR --label coarse failed"
"$BIN" eval "$WORK/c100" --json > "$WORK/c100.json" 2> /dev/null || fail "eval of the cifar100 run failed"
check '[ "$(json_get "$WORK/c100.json" "j[\"plain\"][\"n\"]")" = 5 ]'
check '[ "$(json_get "$WORK/c100/config.json" "j[\"label\"] == \"coarse\" and j[\"data\"].startswith(\"cifar100:\")")" = True ]'
# A batch file cut mid-record is an error naming it.
head -c 5000 "$C10/test_batch.bin" > "$WORK/cut" && mv "$WORK/cut" "$C10/test_batch.bin"
expect_status 1 "test_batch.bin" -- eval "$WORK/c10-mixup"
finish
