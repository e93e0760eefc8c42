# The progress bar in a real terminal (a pty of 40, 80 and 200 columns): every
# redraw fits on one line, so the screen does not fill with wrapped bars; the
# widest terminal shows the bar itself. And the summary lines: counts agree in
# number ("1 epoch"), and a resumed run with nothing left to train reports no
# speed instead of "0 img/s". The end-of-epoch evaluation shows its own line
# ("eval test 1,000/2,000  ETA 0:01") on a terminal, never in a log.
. "$(dirname "$0")/cli_lib.sh"

python3 "$MIXREG_SOURCE_DIR/tests/make_tiny_idx.py" "$WORK/tiny" 16 3000 2000 9 || fail "could not write the tiny dataset"
for cols in 40 80 200; do
    CHECKS=$((CHECKS + 1))
    python3 - "$cols" "$BIN" train --model mlp --hidden 1024 --data "idx:$WORK/tiny" --epochs 6 --batch-size 8 --threads 1 \
        --no-tensorboard --out "$WORK/run-$cols" > "$WORK/pty-$cols.txt" 2>&1 <<'PY' || fail "$cols columns: $(cat "$WORK/pty-$cols.txt")"
import os, re, sys
sys.path.insert(0, os.path.join(os.environ["MIXREG_SOURCE_DIR"], "tests"))
from pty_run import run
cols = int(sys.argv[1])
code, text = run(sys.argv[2:], cols)
# Each redraw is "\r\033[K" + the bar; other output is whole lines.
bars = [seg for seg in re.split(r"\r\n|\r|\n", text.replace("\x1b[K", "")) if seg.startswith("epoch ") and "ETA" in seg]
if code != 0:
    sys.exit(f"training failed: {text[-300:]}")
if len(bars) < 2:
    sys.exit(f"only {len(bars)} redraws seen")
too_wide = [b for b in bars if len(b) >= cols]
if too_wide:
    sys.exit(f"{len(too_wide)} of {len(bars)} redraws are {len(too_wide[0])} wide or more: {too_wide[0]!r}")
if cols == 200 and not any("[" in b and "img/s" in b for b in bars):
    sys.exit(f"no full bar at 200 columns: {bars[-1]!r}")
# The evaluation's line: drawn as each of the 6 end-of-epoch evaluations
# starts, then as it goes, on the same line, narrower than the terminal.
segments = re.split(r"\r\n|\r|\n", text.replace("\x1b[K", ""))
evals = [seg for seg in segments if seg.startswith("eval ")]
if sum(seg == "eval test 0/2,000" for seg in evals) != 6:
    sys.exit(f"not one start line per epoch's evaluation: {evals!r}")
bad = [seg for seg in evals if not re.fullmatch(r"eval test [0-9,]+/2,000(  ETA [0-9:]+)?", seg) or len(seg) >= cols]
if bad:
    sys.exit(f"malformed or too wide evaluation lines: {bad[:3]!r}")
# Each is replaced by the epoch's summary line ("\r\033[K" first), not left beside it.
if re.search(r"eval test [^\r\n]*\n", text):
    sys.exit("an evaluation line was left on the screen")
print(f"{cols} columns: {len(bars)} redraws, widest {max(map(len, bars))}: {bars[-1]}; {len(evals)} evaluation lines")
PY
done

# An evaluation long enough to be seen going (2,000 samples through two
# 2048-wide layers, twice: 38 GFLOP, well over the 0.1 s between redraws):
# its line counts up and shows an ETA.
CHECKS=$((CHECKS + 1))
python3 - "$BIN" train --model mlp --hidden 2048,2048 --data "idx:$WORK/tiny" --epochs 1 --max-steps 20 --batch-size 8 \
    --threads 1 --no-tensorboard --out "$WORK/slow-eval" > "$WORK/pty-eval.txt" 2>&1 <<'PY' || fail "evaluation progress: $(cat "$WORK/pty-eval.txt")"
import os, re, sys
sys.path.insert(0, os.path.join(os.environ["MIXREG_SOURCE_DIR"], "tests"))
from pty_run import run
code, text = run(sys.argv[1:], 80)
if code != 0:
    sys.exit(f"training failed: {text[-300:]}")
evals = [s for s in re.split(r"\r\n|\r|\n", text.replace("\x1b[K", "")) if s.startswith("eval ")]
going = [s for s in evals if re.fullmatch(r"eval test [1-9][0-9,]*/2,000  ETA [0-9]+:[0-9]{2}", s)]
if evals[:1] != ["eval test 0/2,000"] or not going:
    sys.exit(f"no evaluation progress with an ETA: {evals!r}")
print(f"evaluation lines: {evals}")
PY

"$BIN" train --model logreg --data "idx:$WORK/tiny" --epochs 1 --max-steps 1 --batch-size 16 --no-tensorboard --threads 1 \
    --out "$WORK/one" > "$WORK/one.out" 2> "$WORK/one.err" || fail "one-step run failed: $(cat "$WORK/one.err")"
check 'grep -q "1 epoch, batch 16" "$WORK/one.out"'
check '! grep -q "eval test" "$WORK/one.err"'   # not a terminal: no evaluation line
check 'grep -q "^test set after 1 epoch (1 step, [0-9]* img/s)" "$WORK/one.out"'
"$BIN" train --resume "$WORK/one" > "$WORK/again.out" 2>&1 || fail "resuming a finished run failed: $(cat "$WORK/again.out")"
check 'grep -q "^test set after 1 epoch (1 step), run directory" "$WORK/again.out"'
check '! grep -q "0 img/s" "$WORK/again.out"'
finish
