# The data sources eval --help lists are the ones the data-source parser
# reads (mx_data_source_forms): each form listed is evaluated end to end on a
# fixture of its kind, a form without a fixture here fails the test, and a
# kind not listed is a usage error.
. "$(dirname "$0")/cli_lib.sh"

# Tiny fixtures: IDX files, CIFAR-10 and CIFAR-100 binaries, an image folder.
python3 "$MIXREG_SOURCE_DIR/tests/make_tiny_idx.py" "$WORK/idx" 8 64 16 3 || fail "could not write the IDX fixture"
python3 "$MIXREG_SOURCE_DIR/tests/make_image_folder.py" "$WORK/folder" > /dev/null || fail "could not write the image folder"
python3 - "$WORK" <<'PY' || fail "could not write the CIFAR fixtures"
import os, random, sys
w = sys.argv[1]
rng = random.Random(5)
def records(n, labels):
    return b"".join(bytes(labels(i)) + bytes(rng.randrange(256) for _ in range(3072)) for i in range(n))
os.makedirs(f"{w}/cifar10"); os.makedirs(f"{w}/cifar100")
for name in [f"data_batch_{k}.bin" for k in range(1, 6)] + ["test_batch.bin"]:
    open(f"{w}/cifar10/{name}", "wb").write(records(4, lambda i: [i % 10]))
for name in ("train.bin", "test.bin"):
    open(f"{w}/cifar100/{name}", "wb").write(records(6, lambda i: [i % 20, i % 100]))
PY

"$BIN" eval --help > "$WORK/help.txt"
forms=$(grep -A1 -- "--data SOURCE" "$WORK/help.txt" | tail -n 1 | tr -d ' ')
check '[ -n "$forms" ]'
# Every command's help lists the same forms (train, eval, predict, analyze, theta, bench).
for cmd in train predict analyze theta bench; do
    check '"$BIN" $cmd --help | grep -qF -- "$forms"'
done
train_on() { # train_on NAME DATA: a quick run on DATA, in $WORK/runs/NAME
    "$BIN" train --data "$2" --model logreg --epochs 1 --max-steps 2 --batch-size 4 --image-size 8 --threads 1 \
        --no-tensorboard --out "$WORK/runs/$1" > /dev/null 2> "$WORK/train-$1.err" || fail "training on $2 failed: $(cat "$WORK/train-$1.err")"
}
train_on idx "idx:$WORK/idx"
listed=0
IFS='|' read -ra list <<< "$forms"
for form in "${list[@]}"; do
    listed=$((listed + 1))
    run=idx
    case "$form" in
        fashion-mnist) data=fashion-mnist ;;
        idx:DIR)       data="idx:$WORK/idx" ;;
        DIR)           data="$WORK/idx" ;;
        cifar10:DIR)   data="cifar10:$WORK/cifar10"; run=cifar10 ;;
        cifar100:DIR)  data="cifar100:$WORK/cifar100"; run=cifar100 ;;
        folder:DIR)    data="folder:$WORK/folder"; run=folder ;;
        *) fail "eval --help lists '$form', which this test has no fixture for"; continue ;;
    esac
    [ -d "$WORK/runs/$run" ] || train_on "$run" "$data"
    CHECKS=$((CHECKS + 1))
    MIXREG_FASHION_MNIST="$WORK/idx" "$BIN" eval "$WORK/runs/$run" --data "$data" --json --threads 1 > "$WORK/eval.json" \
        2> "$WORK/eval.err" || fail "eval --data $data (listed as $form) failed: $(cat "$WORK/eval.err")"
    # A form whose directory is missing is a runtime error, not a usage error.
    missing=${data/$WORK/$WORK/absent}
    [ "$form" = fashion-mnist ] || expect_status 1 "absent" -- eval "$WORK/runs/$run" --data "$missing"
done
check '[ "$listed" = 6 ]'
expect_status 2 "unknown kind in 'imagenet:x' (expected $forms)" -- eval "$WORK/runs/idx" --data imagenet:x
finish
