# The progress bar in a real terminal (a pty of 40, 80 and 200 columns): every
# redraw fits on one line, so the screen does not fill with wrapped bars; the
# widest terminal shows the bar itself. And the summary lines: counts agree in
# number ("1 epoch"), and a resumed run with nothing left to train reports no
# speed instead of "0 img/s".
. "$(dirname "$0")/cli_lib.sh"

python3 "$MIXREG_SOURCE_DIR/tests/make_tiny_idx.py" "$WORK/tiny" 16 3000 20 9 || fail "could not write the tiny dataset"
for cols in 40 80 200; do
    CHECKS=$((CHECKS + 1))
    python3 - "$cols" "$BIN" train --model mlp --hidden 256 --data "idx:$WORK/tiny" --epochs 6 --batch-size 8 --threads 1 \
        --no-tensorboard --out "$WORK/run-$cols" > "$WORK/pty-$cols.txt" 2>&1 <<'PY' || fail "$cols columns: $(cat "$WORK/pty-$cols.txt")"
import fcntl, os, pty, re, struct, sys, termios
cols = int(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.environ.pop("COLUMNS", None)
    os.execv(sys.argv[2], sys.argv[2:])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, cols, 0, 0))
out = b""
while True:
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
_, status = os.waitpid(pid, 0)
text = out.decode("utf-8", "replace")
# Each redraw is "\r\033[K" + the bar; other output is whole lines.
bars = [seg for seg in re.split(r"\r\n|\r|\n", text.replace("\x1b[K", "")) if seg.startswith("epoch ") and "ETA" in seg]
if os.waitstatus_to_exitcode(status) != 0:
    sys.exit(f"training failed: {text[-300:]}")
if len(bars) < 2:
    sys.exit(f"only {len(bars)} redraws seen")
too_wide = [b for b in bars if len(b) >= cols]
if too_wide:
    sys.exit(f"{len(too_wide)} of {len(bars)} redraws are {len(too_wide[0])} wide or more: {too_wide[0]!r}")
if cols == 200 and not any("[" in b and "img/s" in b for b in bars):
    sys.exit(f"no full bar at 200 columns: {bars[-1]!r}")
print(f"{cols} columns: {len(bars)} redraws, widest {max(map(len, bars))}: {bars[-1]}")
PY
done

"$BIN" train --model logreg --data "idx:$WORK/tiny" --epochs 1 --max-steps 1 --batch-size 16 --no-tensorboard --threads 1 \
    --out "$WORK/one" > "$WORK/one.out" 2> "$WORK/one.err" || fail "one-step run failed: $(cat "$WORK/one.err")"
check 'grep -q "1 epoch, batch 16" "$WORK/one.out"'
check 'grep -q "^test set after 1 epoch (1 step, [0-9]* img/s)" "$WORK/one.out"'
"$BIN" train --resume "$WORK/one" > "$WORK/again.out" 2>&1 || fail "resuming a finished run failed: $(cat "$WORK/again.out")"
check 'grep -q "^test set after 1 epoch (1 step), run directory" "$WORK/again.out"'
check '! grep -q "0 img/s" "$WORK/again.out"'
finish
