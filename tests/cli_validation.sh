# Numbers and stored settings, end to end: the one number parser's outcomes on
# the command line (not a number / out of range, no spaces around a number),
# and a run whose stored config was tampered with refused by every command
# that reads it, exit 1, one line naming the setting, nothing written.
. "$(dirname "$0")/cli_lib.sh"

# Numbers too large for their type are out of range, not accepted and not "not a number".
expect_status 2 "--save-every must be in 1\.\.1099511627776, got 99999999999999999999" -- train --save-every 99999999999999999999steps
expect_status 2 "--save-every must be in" -- train --save-every 0steps
expect_status 2 "--schedule step must be in \[0, 100000\], got 99999999999999999999" -- train --schedule step:99999999999999999999
expect_status 2 "--lr must be in .* got 1e400" -- train --lr 1e400
expect_status 2 "--lr must be in .* got 5e-324" -- train --lr 5e-324
expect_status 2 "--weight-decay must be in .*range of a double" -- train --weight-decay 5e-324
expect_status 2 "--epochs must be in 1\.\.100000, got 99999999999999999999" -- train --epochs 99999999999999999999
expect_status 2 "--hidden must be in 1\.\.65536" -- train --hidden 64,99999999999999999999
expect_status 2 "--seed must be in" -- train --seed 18446744073709551616
expect_status 2 "--normalize: '1e400' in '0.5/1e400' is out of range" -- train --normalize 0.5/1e400
expect_status 2 "--threads must be in 1\.\.1024, got 0" -- train --threads 0
# Not numbers: spaces on either side, hex, inf, nan, trailing junk.
expect_status 2 "--epochs: ' 1' is not a whole number" -- train --epochs " 1"
expect_status 2 "--epochs: '1 ' is not a whole number" -- train --epochs "1 "
expect_status 2 "--lr: ' 0.1' is not a number" -- train --lr " 0.1"
expect_status 2 "--lr: '0.1 ' is not a number" -- train --lr "0.1 "
expect_status 2 "--lr: '0x10' is not a number" -- train --lr 0x10
expect_status 2 "--lr: 'inf' is not a number" -- train --lr inf
expect_status 2 "--lr: 'nan' is not a number" -- train --lr nan
expect_status 2 "--lr: '0.1x' is not a number" -- train --lr 0.1x
expect_status 2 "--batch-size: '1e2' is not a whole number" -- train --batch-size 1e2
expect_status 2 "--save-every: '5 steps' is not N, Nepochs or Nsteps" -- train --save-every "5 steps"
expect_status 2 "--schedule step: ' 10' is not a number" -- train --schedule "step:5, 10"
expect_status 2 "--bins: ' 10' is not a whole number" -- eval "$WORK" --bins " 10"

# An experiment file with a value out of range is refused when checked, before anything runs.
printf 'epochs = 2\n[a]\nbatch-size = 0\n' > "$WORK/bad.conf"
expect_status 2 "bad.conf:3: --batch-size must be in 1\.\.65536, got 0" -- experiment "$WORK/bad.conf" --out "$WORK/never"
printf '[a]\nsave-every = 99999999999999999999steps\n' > "$WORK/bad.conf"
expect_status 2 "bad.conf:2: --save-every must be in" -- experiment "$WORK/bad.conf" --out "$WORK/never"
check '[ ! -e "$WORK/never" ]'

# A tiny run to tamper with.
python3 "$MIXREG_SOURCE_DIR/tests/make_tiny_idx.py" "$WORK/data" 8 40 20 3 || fail "could not write the tiny dataset"
"$BIN" train --data "idx:$WORK/data" --hidden 4 --epochs 2 --batch-size 10 --max-steps 3 --threads 1 \
    --no-tensorboard --log-every 1 --save-every 1steps --out "$WORK/run" > /dev/null 2> "$WORK/train.err" \
    || fail "training the tiny run failed: $(cat "$WORK/train.err")"

# tamper KEY JSON_VALUE: a copy of the run, WORK/t, whose checkpoint and config.json hold KEY = JSON_VALUE.
tamper() {
    rm -rf "$WORK/t"
    cp -r "$WORK/run" "$WORK/t"
    python3 - "$WORK/t" "$1" "$2" <<'PY'
import json, struct, sys
run, key, value = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
path = run + "/model.safetensors"
b = open(path, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
header = json.loads(b[8:8 + n])
config = json.loads(header["__metadata__"]["mixreg.config"])
config[key] = value
text = json.dumps(config, indent=1)
header["__metadata__"]["mixreg.config"] = text
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
open(path, "wb").write(struct.pack("<Q", len(h)) + h + b[8 + n:])
open(run + "/config.json", "w").write(text)
PY
}

# The cases that crashed or were accepted: division by zero, a heap overread, nonsense accepted.
for case in "batch_size 0 --batch-size" "save_every 0 --save-every" "val_split -1 --val-split" \
            "lr -1 --lr" "momentum 5 --momentum" "label_smoothing 2 --label-smoothing" \
            "epochs 100001 --epochs" "threads 99999 --threads" "hidden [0] --hidden"; do
    set -- $case
    tamper "$1" "$2"
    before=$(cd "$WORK/t" && find . -type f ! -name '*lock*' -exec md5sum {} + | sort)
    expect_status 1 "model.safetensors: config: $1: $3 must be in" -- train --resume "$WORK/t"
    check '[ "$before" = "$(cd "$WORK/t" && find . -type f ! -name "*lock*" -exec md5sum {} + | sort)" ]'
done
# The checks across settings hold for a loaded config too.
tamper mixup_inputs false
python3 - "$WORK/t" <<'PY'
import json, struct, sys
path = sys.argv[1] + "/model.safetensors"
b = open(path, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
c = json.loads(h["__metadata__"]["mixreg.config"]); c["mixup_labels"] = False
h["__metadata__"]["mixreg.config"] = json.dumps(c); hb = json.dumps(h).encode(); hb += b" " * (-len(hb) % 8)
open(path, "wb").write(struct.pack("<Q", len(hb)) + hb + b[8 + n:])
PY
expect_status 1 "config: --mixup-only-inputs and --mixup-only-labels exclude each other" -- train --resume "$WORK/t"
# Every reader of the run refuses it the same way.
tamper batch_size 0
expect_status 1 "config: batch_size: --batch-size must be in" -- eval "$WORK/t"
expect_status 1 "config: batch_size: --batch-size must be in" -- analyze "$WORK/t"
# Numeric metadata of the checkpoint goes through the same parser.
python3 - "$WORK/t/model.safetensors" <<'PY'
import json, struct, sys
path = sys.argv[1]
b = open(path, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
c = json.loads(h["__metadata__"]["mixreg.config"]); c["batch_size"] = 10
h["__metadata__"]["mixreg.config"] = json.dumps(c)
h["__metadata__"]["mixreg.step"] = "99999999999999999999"
hb = json.dumps(h).encode(); hb += b" " * (-len(hb) % 8)
open(path, "wb").write(struct.pack("<Q", len(hb)) + hb + b[8 + n:])
PY
expect_status 1 "metadata mixreg.step must be in" -- train --resume "$WORK/t"
# The untampered run still resumes (to its end).
check '"$BIN" train --resume "$WORK/run" > /dev/null 2>&1'
finish
