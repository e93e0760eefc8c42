# Exit statuses, table-driven: 2 only for a command line that is wrong in
# itself (unknown command or flag, bad value, flags that exclude each other,
# an unknown kind of --data, an invalid $MIXREG_MAX_IMAGE_PIXELS), 1 for every
# condition met once it is accepted: files that are missing or corrupt,
# images over the size limit, a checkpoint naming an unknown architecture,
# data that does not fit the model, an --out that already holds a run. Each
# case prints one line "mixreg: error: ...".
. "$(dirname "$0")/cli_lib.sh"

TESTS="$MIXREG_SOURCE_DIR/tests"
python3 "$TESTS/make_tiny_idx.py" "$WORK/tiny8" 8 40 12 5 || fail "could not write the tiny dataset"
python3 "$TESTS/make_tiny_idx.py" "$WORK/tiny16" 16 40 12 5 || fail "could not write the tiny dataset"
# Train labels 0, 1, 2 (three samples); test labels 0 to 3: a class the model will not have.
python3 "$TESTS/make_tiny_idx.py" "$WORK/more" 8 3 4 5 || fail "could not write the tiny dataset"
# ... and a model of three classes, trained where both splits have three.
python3 "$TESTS/make_tiny_idx.py" "$WORK/three" 8 3 3 5 || fail "could not write the tiny dataset"
RUN="$WORK/run" RUN3="$WORK/run3"
"$BIN" train --data "idx:$WORK/tiny8" --hidden 8 --epochs 1 --batch-size 8 --threads 2 --no-tensorboard \
    --out "$RUN" > /dev/null 2> "$WORK/train.err" || fail "training failed: $(cat "$WORK/train.err")"
"$BIN" train --data "idx:$WORK/three" --hidden 8 --epochs 1 --batch-size 8 --threads 2 --no-tensorboard \
    --out "$RUN3" > /dev/null 2> "$WORK/train.err" || fail "training failed: $(cat "$WORK/train.err")"

# Files for predict and the checkpoints: written by Python, nothing binary committed.
python3 - "$WORK" "$RUN/model.safetensors" <<'PY'
import json, os, struct, sys, zlib
work, model = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.environ["MIXREG_SOURCE_DIR"] + "/tests")
from make_image_folder import BEE_JPEG, png_bytes
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
open(f"{work}/small.png", "wb").write(png_bytes(5, 5, lambda x, y: (x * 40, y * 40, 0)))
open(f"{work}/right.png", "wb").write(png_bytes(8, 8, lambda x, y: (x * 30, y * 30, 9)))
open(f"{work}/right.jpg", "wb").write(BEE_JPEG)          # 16x16: not the model's 8x8
open(f"{work}/cut.jpg", "wb").write(BEE_JPEG[:200])
open(f"{work}/notes.txt", "w").write("not an image\n")
# 16384 x 16384 declared in a few dozen bytes (a 2^28-pixel image: 768 MiB decoded).
ihdr = struct.pack(">IIBBBBB", 16384, 16384, 8, 2, 0, 0, 0)
open(f"{work}/huge.png", "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
                                     chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))
# The run's checkpoint with its architecture renamed (header rewritten, tensors unchanged).
b = open(model, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
header = json.loads(b[8:8 + n])
spec = json.loads(header["__metadata__"]["mixreg.model"])
spec["arch"] = "mlp9000"
header["__metadata__"]["mixreg.model"] = json.dumps(spec)
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
os.makedirs(f"{work}/arch", exist_ok=True)
open(f"{work}/arch/model.safetensors", "wb").write(struct.pack("<Q", len(text)) + text + b[8 + n:])
os.makedirs(f"{work}/garbage", exist_ok=True)
open(f"{work}/garbage/model.safetensors", "wb").write(b"this is not a model")
PY
printf 'a 0\n' > "$WORK/map.txt"

# STATUS | what the message must mention | the command line (words split by the shell; $WORK expanded)
while IFS='|' read -r status pattern args; do
    case "$status" in ''|'#'*) continue ;; esac
    eval "set -- $args"
    expect_status "$status" "$pattern" -- "$@"
done <<'TABLE'
# usage: the command line itself
2|unknown command|frobnicate
2|unknown flag|train --frobnicate
2|missing RUN_DIR|eval
2|needs a value|eval "$RUN" --data
2|--data: unknown kind|eval "$RUN" --data foo:x
2|--data: unknown kind|predict "$RUN" --data foo:x
2|--data: unknown kind|analyze "$RUN" --data foo:x
2|--data: unknown kind|theta --alpha 1 --data foo:x
2|--data: unknown kind|bench --data foo:x
2|--data: unknown kind|train --data foo:x --out "$WORK/never"
2|.csv or .npy|eval "$RUN" --predictions "$WORK/p.txt"
2|.png or .svg|eval "$RUN" --reliability "$WORK/r.bmp"
2|--class-map needs an image folder|eval "$RUN" --class-map "$WORK/map.txt"
2|either IMAGE files or --data|predict "$RUN"
2|--mixup-alpha|train --mixup-alpha -1
# runtime: files, checkpoints, data against the model
1|no-run/model.safetensors|eval "$WORK/no-run"
1|garbage/model.safetensors|eval "$WORK/garbage"
1|arch/model.safetensors: unknown model 'mlp9000'|eval "$WORK/arch"
1|arch/model.safetensors|predict "$WORK/arch" "$WORK/right.png"
1|small.png is 5x5 but the model expects 8x8|predict "$RUN" "$WORK/small.png"
1|right.jpg is 16x16 but the model expects 8x8|predict "$RUN" "$WORK/right.jpg"
1|cut.jpg: truncated JPEG|predict "$RUN" "$WORK/cut.jpg"
1|notes.txt: not a JPEG or PNG image|predict "$RUN" "$WORK/notes.txt"
1|no-such.png|predict "$RUN" "$WORK/no-such.png"
1|huge.png: PNG image of 16384x16384 pixels (width x height) is over the limit of 67108864 pixels|predict "$RUN" "$WORK/huge.png"
1|does not fit|eval "$RUN" --data "idx:$WORK/tiny16"
1|does not fit|analyze "$RUN" --data "idx:$WORK/tiny16"
1|more (test): the data has 4 classes but the model 3|train --data "idx:$WORK/more" --hidden 8 --epochs 1 --log-every 1 --out "$WORK/more-run"
1|the data has 4 classes but the model 3|eval "$RUN3" --data "idx:$WORK/more"
1|the data has 4 classes but the model 3|predict "$RUN3" --data "idx:$WORK/more"
1|already holds a run|train --data "idx:$WORK/tiny8" --hidden 8 --max-steps 1 --out "$RUN"
1|no/such/dir|train --data "$WORK/no/such/dir" --out "$WORK/never"
TABLE
# An invalid limit in the environment is refused at start, whatever the command.
MIXREG_MAX_IMAGE_PIXELS=lots expect_status 2 "\$MIXREG_MAX_IMAGE_PIXELS: 'lots' is not a whole number" -- predict "$RUN" "$WORK/right.png"
MIXREG_MAX_IMAGE_PIXELS=0 expect_status 2 "'0' is not a whole number from 1 to 268435456" -- eval "$RUN"
# The test set that does not fit was found before any step: nothing was written.
check '[ ! -e "$WORK/more-run/log.jsonl" ]'
# A raised limit lets the huge PNG through to its (missing) pixel data.
MIXREG_MAX_IMAGE_PIXELS=268435456 expect_status 1 "huge.png: corrupt PNG" -- predict "$RUN" "$WORK/huge.png"
# A JPEG of the model's size would be read; this PNG is, and predicts.
check '"$BIN" predict "$RUN" "$WORK/right.png" | grep -q "right.png:"'
finish
