# Streamed image folders end to end: --stream on trains the same bits as the
# folder in memory and for any --workers; --stream auto streams past the
# memory budget; --augment rrc,flip (streamed, any worker count, evaluated on
# centre crops); a streamed run's peak memory does not grow with the
# folder's pixels; --normalize given values saved with the run and their
# errors; a JPEG found corrupt mid-training: an error naming it that keeps the
# last checkpoint, or with --skip-bad-images replaced and counted.
. "$(dirname "$0")/cli_lib.sh"

MAKE="$MIXREG_SOURCE_DIR/tests/make_image_folder.py"
DATA="$WORK/imgs"
python3 "$MAKE" "$DATA" --per-class 12 --jpeg || fail "could not write the image folder"
train() { # out args...
    local out=$1; shift
    "$BIN" train --data "folder:$DATA" --image-size 16 --epochs 2 --batch-size 8 --hidden 16 --threads 2 \
        --no-tensorboard --log-every 0 --val-split 0.2 --out "$out" "$@" > "$WORK/train.out" 2> "$WORK/train.err"
}

# In memory, streamed, streamed with workers: the same weights and statistics.
train "$WORK/mem" --stream off --augment crop:2,flip || fail "in-memory training failed: $(cat "$WORK/train.err")"
check '! grep -q "streamed" "$WORK/train.out"'
for w in 0 1 3; do
    train "$WORK/str$w" --stream on --augment crop:2,flip --workers $w || fail "streamed training failed: $(cat "$WORK/train.err")"
    check 'tensors_equal "$WORK/mem/model.safetensors" "$WORK/str$w/model.safetensors"'
done
check 'grep -q "37 train / 12 test, 3x16x16, 3 classes, streamed from disk" "$WORK/train.out"'
check '[ "$(json_get "$WORK/str3/config.json" "j[\"stream\"]")" = on ]'
# auto: in memory under the budget, streamed over it.
train "$WORK/auto" --augment crop:2,flip || fail "auto failed: $(cat "$WORK/train.err")"
check '! grep -q "streamed" "$WORK/train.out"'
MIXREG_MEMORY_BUDGET=20000 train "$WORK/auto-small" --augment crop:2,flip || fail "auto (small budget) failed"
check 'grep -q "training set streamed from disk" "$WORK/train.out"'
check 'tensors_equal "$WORK/mem/model.safetensors" "$WORK/auto-small/model.safetensors"'
"$BIN" eval "$WORK/str1" --json > "$WORK/eval.json" 2> "$WORK/eval.err" || fail "eval of a streamed run failed: $(cat "$WORK/eval.err")"
check '[ "$(json_get "$WORK/eval.json" "j[\"plain\"][\"n\"]")" = 12 ]'

# The ImageNet recipe: random resized crops of the originals, the same bits for any worker count.
for w in 0 1 3; do
    train "$WORK/rrc$w" --augment rrc,flip --workers $w --epochs 4 || fail "rrc training failed: $(cat "$WORK/train.err")"
done
check 'grep -q "training set streamed from disk" "$WORK/train.out"'
check 'tensors_equal "$WORK/rrc0/model.safetensors" "$WORK/rrc1/model.safetensors"'
check 'tensors_equal "$WORK/rrc0/model.safetensors" "$WORK/rrc3/model.safetensors"'
check '! tensors_equal "$WORK/rrc0/model.safetensors" "$WORK/str0/model.safetensors"'
check '[ "$(json_get "$WORK/rrc0/config.json" "j[\"augment\"]")" = rrc,flip ]'
"$BIN" eval "$WORK/rrc0" --json > "$WORK/rrc.json" 2> "$WORK/eval.err" || fail "eval of an rrc run failed: $(cat "$WORK/eval.err")"
check '[ "$(json_get "$WORK/rrc.json" "j[\"plain\"][\"accuracy\"] >= 0.6")" = True ]'
train "$WORK/rrc-noflip" --augment rrc || fail "rrc without flip failed"
check '! tensors_equal "$WORK/rrc0/model.safetensors" "$WORK/rrc-noflip/model.safetensors"'
expect_status 2 "--augment rrc needs an image folder" -- train --augment rrc,flip
expect_status 2 "which --stream off does not keep" -- train --data "folder:$DATA" --augment rrc --stream off
expect_status 2 "--stream on needs an image folder" -- train --stream on
expect_status 2 "--stream: unknown 'sometimes'" -- train --stream sometimes
expect_status 2 "'rrc' and 'crop' exclude each other" -- train --augment rrc,crop:4

# Peak memory: streamed, a folder four times larger takes no more; in memory it does.
python3 "$MAKE" "$WORK/small" --per-class 20 && python3 "$MAKE" "$WORK/big" --per-class 80 || fail "could not write the folders"
peak_kb() { # folder stream: the peak resident size of one training run, in KiB
    # AddressSanitizer's quarantine holds freed blocks back (up to 256 MB), so
    # under it memory would grow with the number of decodes; without it the
    # allocator reuses them as the release build does.
    ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=0" python3 - "$BIN" "$@" <<'PY'
import resource, subprocess, sys
bin, folder, stream = sys.argv[1:4]
subprocess.run([bin, "train", "--data", "folder:" + folder, "--image-size", "320", "--epochs", "1", "--max-steps", "2",
                "--batch-size", "8", "--hidden", "8", "--threads", "2", "--no-tensorboard", "--log-every", "0",
                "--val-split", "0", "--stream", stream, "--out", folder + "-run-" + stream],
               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
PY
}
S_ON=$(peak_kb "$WORK/small" on); B_ON=$(peak_kb "$WORK/big" on)
S_OFF=$(peak_kb "$WORK/small" off); B_OFF=$(peak_kb "$WORK/big" off)
echo "peak KiB: streamed $S_ON -> $B_ON, in memory $S_OFF -> $B_OFF (60 -> 240 training images of 3x320x320)"
# 180 more images are 55 MB decoded (and the test set grows by 60).
check '[ $((B_ON - S_ON)) -lt 20000 ]'
check '[ $((B_OFF - S_OFF)) -gt 60000 ]'

# Given normalisation statistics, saved with the run and used by eval.
train "$WORK/imagenet" --normalize imagenet || fail "--normalize imagenet failed: $(cat "$WORK/train.err")"
normalize_of() { "$MIXREG_PYTHON" -c "
from safetensors import safe_open; import json, sys
with safe_open(sys.argv[1], 'np') as f: n = json.loads(f.metadata()['mixreg.normalize'])
print(','.join('%.3f' % v for v in n['mean']) + '/' + ','.join('%.3f' % v for v in n['std']))" "$1"; }
check '[ "$(normalize_of "$WORK/imagenet/model.safetensors")" = 0.485,0.456,0.406/0.229,0.224,0.225 ]'
check '[ "$(json_get "$WORK/imagenet/config.json" "j[\"normalize\"]")" = imagenet ]'
train "$WORK/given" --normalize 0.5,0.4,0.3/0.25,0.2,0.1 --stream on || fail "--normalize M/S failed"
check '[ "$(normalize_of "$WORK/given/model.safetensors")" = 0.500,0.400,0.300/0.250,0.200,0.100 ]'
"$BIN" eval "$WORK/given" --json > "$WORK/given.json" 2> "$WORK/eval.err" || fail "eval failed: $(cat "$WORK/eval.err")"
check '[ "$(json_get "$WORK/given.json" "j[\"plain\"][\"n\"]")" = 12 ]'
expect_status 1 "'0.5/0.5' gives 1 channel but the data has 3" -- train --data "folder:$DATA" --image-size 16 --normalize 0.5/0.5 --out "$WORK/n1"
expect_status 2 "2 means but 3 stds" -- train --normalize 0.5,0.5/1,1,1
expect_status 2 "std of channel 1 is 0" -- train --normalize 0.5,0.5,0.5/1,0,1
expect_status 2 "'abc' in 'abc/1' is not a number" -- train --normalize abc/1
expect_status 2 "--normalize: 'cifar' is not imagenet" -- train --normalize cifar

# A JPEG found corrupt mid-training: the run stops on it (injected NaN at step 8
# after the epoch-1 checkpoint), the file is corrupted, the run resumed.
mid_run() { # out args...
    local out=$1; shift
    MIXREG_FAULT_NAN_STEP=8 train "$out" --stream on --epochs 3 "$@"
    check '[ -f "$out/model.safetensors" ]'
}
python3 "$MAKE" "$DATA" --per-class 12 --jpeg
mid_run "$WORK/mid"
mid_run "$WORK/mid-skip" --skip-bad-images
python3 "$MAKE" "$DATA" --per-class 12 --corrupt-jpeg
cp "$WORK/mid/model.safetensors" "$WORK/mid-before.safetensors"
"$BIN" train --resume "$WORK/mid" > /dev/null 2> "$WORK/resume.err"
RESUME_STATUS=$?
check '[ "$RESUME_STATUS" = 1 ]'
check '[ "$(wc -l < "$WORK/resume.err")" = 1 ]'
check 'grep -q "zz-photo.jpg: truncated JPEG" "$WORK/resume.err"'
check 'grep -q "the last checkpoint is kept in the run directory" "$WORK/resume.err"'
check 'cmp -s "$WORK/mid/model.safetensors" "$WORK/mid-before.safetensors"'
"$BIN" train --resume "$WORK/mid-skip" > /dev/null 2> "$WORK/skip.err" || fail "resume with --skip-bad-images failed: $(cat "$WORK/skip.err")"
check 'grep -q "(train): 1 image failed to decode and was replaced by the next image of its class" "$WORK/skip.err"'
check '[ "$(grep -c "\"type\": \"epoch\"" "$WORK/mid-skip/log.jsonl")" = 3 ]'
finish
