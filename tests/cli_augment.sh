# Training with augmentation and CutMix from the command line, and the
# rescale statistics' pass with and without the augmentation (--rescale-stats).
. "$(dirname "$0")/cli_lib.sh"

train() { # out args...
    local out=$1; shift
    "$BIN" train --epochs 1 --max-steps 20 --hidden 32 --threads 2 --no-tensorboard --log-every 0 --out "$out" "$@" \
        > "$WORK/train.out" 2> "$WORK/train.err" || fail "train $* failed: $(cat "$WORK/train.err")"
}

# Augmentation changes what the statistics' pass sees; clean ignores it.
train "$WORK/aug" --augment crop:4,flip --rescale-stats augmented
train "$WORK/clean" --augment crop:4,flip --rescale-stats clean
check '[ "$(json_get "$WORK/aug/config.json" "j[\"augment\"]")" = "crop:4,flip" ]'
check '[ "$(json_get "$WORK/clean/config.json" "j[\"rescale_stats\"]")" = clean ]'
check '! tensors_equal "$WORK/aug/model.safetensors" "$WORK/clean/model.safetensors"'
# Crops with zero padding shift some of each image out of the frame and black
# in: the mean image is darker (x_bar's mean, normalised, is lower) with the
# augmentation in the pass than without.
brightness() { "$MIXREG_PYTHON" -c "
from safetensors.numpy import load_file; import sys
print(load_file(sys.argv[1])['mixreg.rescale.x_bar'].mean())" "$1"; }
check '"$MIXREG_PYTHON" -c "import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) - 1e-3 else 1)" "$(brightness "$WORK/aug/model.safetensors")" "$(brightness "$WORK/clean/model.safetensors")"'

# Without augmentation both passes are the same pass: identical files but for the config.
train "$WORK/plain_a" --rescale-stats augmented
train "$WORK/plain_c" --rescale-stats clean
check 'tensors_equal "$WORK/plain_a/model.safetensors" "$WORK/plain_c/model.safetensors"'

# CutMix alone and switched with Mixup train and evaluate.
train "$WORK/cutmix" --mixup-alpha 0 --cutmix-alpha 1
train "$WORK/switch" --mixup-alpha 1 --cutmix-alpha 1 --cutmix-switch-prob 0.5 --mix-prob 0.8 --augment flip
check '[ "$(json_get "$WORK/switch/config.json" "j[\"cutmix_alpha\"]")" = 1 ]'
"$BIN" eval "$WORK/switch" --json > "$WORK/eval.json" 2> "$WORK/eval.err" || fail "eval failed: $(cat "$WORK/eval.err")"
check '[ "$(json_get "$WORK/eval.json" "j[\"plain\"][\"n\"]")" = 10000 ]'
# Same seed, same flags: the same bits (augmentation and CutMix draws are seeded).
train "$WORK/switch2" --mixup-alpha 1 --cutmix-alpha 1 --cutmix-switch-prob 0.5 --mix-prob 0.8 --augment flip
check 'tensors_equal "$WORK/switch/model.safetensors" "$WORK/switch2/model.safetensors"'
# Loader worker threads prepare the batches; the bits do not change.
train "$WORK/workers" --mixup-alpha 1 --cutmix-alpha 1 --cutmix-switch-prob 0.5 --mix-prob 0.8 --augment flip --workers 2
check 'tensors_equal "$WORK/switch/model.safetensors" "$WORK/workers/model.safetensors"'
check '[ "$(json_get "$WORK/workers/config.json" "j[\"workers\"]")" = 2 ]'
expect_status 2 "--workers" -- train --workers 100

expect_status 2 "--augment" -- train --augment crop:4:20
expect_status 2 "--augment" -- train --augment sideways
expect_status 2 "--cutmix-switch-prob" -- train --cutmix-switch-prob 2
expect_status 2 "--mix-prob" -- train --mix-prob -0.5
expect_status 2 "--rescale-stats" -- train --rescale-stats dirty
finish
