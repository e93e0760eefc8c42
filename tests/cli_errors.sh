# Every bad flag and bad file is one line "mixreg: error: ...", status 2 for
# usage and 1 for runtime errors, never a crash.
. "$(dirname "$0")/cli_lib.sh"

expect_status 2 "unknown command" -- frobnicate
expect_status 2 "unknown flag .--frobnicate. (see mixreg train --help)" -- train --frobnicate
expect_status 2 "--mixup-alpha" -- train --mixup-alpha -1
expect_status 2 "not a number" -- train --mixup-alpha abc
expect_status 2 "--batch-size" -- train --batch-size 0
expect_status 2 "--epochs" -- train --epochs 0
expect_status 2 "needs a value" -- train --lr
expect_status 2 "--mixup-mode" -- train --mixup-mode triple
expect_status 2 "--mixup-partner" -- train --mixup-partner random
expect_status 2 "pair" -- train --mixup-mode pair --mixup-partner roll
expect_status 2 "--label-smoothing" -- train --label-smoothing 1.5
expect_status 2 "--schedule" -- train --schedule linear
expect_status 2 "--schedule" -- train --schedule step:5,2
expect_status 2 "--model" -- train --model resnet9000
expect_status 2 "mlp" -- train --model resnet9000
expect_status 2 "--hidden" -- train --hidden 512,,3
expect_status 2 "--nesterov" -- train --momentum 0 --nesterov
expect_status 2 "takes no value" -- train --mixup-theta=yes
expect_status 2 "--threads" -- train --threads -3
expect_status 2 "exclude each other" -- train --mixup-only-inputs --mixup-only-labels
expect_status 1 "no/such/dir" -- train --data "$WORK/no/such/dir" --out "$WORK/run"
expect_status 2 "unknown kind" -- train --data foo:x --out "$WORK/run"
expect_status 2 "missing RUN_DIR" -- eval
expect_status 1 "model.safetensors" -- eval "$WORK/not-a-run"
expect_status 2 "--rescale" -- eval "$WORK" --rescale sometimes
expect_status 2 "--alpha is required" -- theta
expect_status 2 "--alpha" -- theta --alpha -0.5
expect_status 2 "not a number" -- theta --alpha nan

# A run directory whose model file is garbage.
mkdir -p "$WORK/garbage"
printf 'this is not a model' > "$WORK/garbage/model.safetensors"
expect_status 1 "model.safetensors" -- eval "$WORK/garbage"
# A truncated IDX directory.
mkdir -p "$WORK/idx"
printf '\x00\x00\x08\x03\x00\x00\x00\x05' > "$WORK/idx/train-images-idx3-ubyte"
printf '\x00\x00\x08\x01\x00\x00\x00\x05\x00\x01\x02\x03\x04' > "$WORK/idx/train-labels-idx1-ubyte"
expect_status 1 "train-images" -- train --data "$WORK/idx" --out "$WORK/run2"

# Help and version succeed.
expect_status 0 "" -- --help
expect_status 0 "" -- --version
expect_status 0 "" -- train --help
expect_status 0 "" -- eval --help
expect_status 0 "" -- theta --help
finish
