# Shared helpers for the CLI tests, sourced by each tests/cli_*.sh.
set -u
BIN=${MIXREG_BIN:?MIXREG_BIN must point at the mixreg binary}
TMP_BASE=${MIXREG_TEST_TMP:-/tmp}
mkdir -p "$TMP_BASE"
WORK=$(mktemp -d "$TMP_BASE/cli-XXXXXX")
FAILS=0
CHECKS=0

fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }

# expect_status CODE PATTERN -- ARGS...: runs mixreg, checks the exit status,
# that stderr is one line "mixreg: error: ..." (for non-zero codes) matching PATTERN.
expect_status() {
    local want=$1 pattern=$2
    shift 3
    CHECKS=$((CHECKS + 1))
    local err
    err=$("$BIN" "$@" 2>&1 >/dev/null)
    local got=$?
    if [ "$got" != "$want" ]; then fail "mixreg $* exited $got, expected $want (stderr: $err)"; return; fi
    if [ "$want" != 0 ]; then
        if [ "$(printf '%s\n' "$err" | wc -l)" != 1 ]; then fail "mixreg $*: expected one error line, got: $err"; return; fi
        case "$err" in "mixreg: error: "*) ;; *) fail "mixreg $*: error line lacks the prefix: $err"; return;; esac
        if ! printf '%s' "$err" | grep -q -- "$pattern"; then fail "mixreg $*: '$err' does not mention '$pattern'"; fi
    fi
}

# json_get FILE EXPR: evaluates a Python expression over the parsed JSON `j`.
json_get() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }

# tensors_equal A B: the two safetensors files hold bit-identical tensor data
# (their metadata, which names the run directory, may differ).
tensors_equal() {
    python3 - "$1" "$2" <<'PY'
import struct, sys
def data(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    return b[8 + n:]
sys.exit(0 if data(sys.argv[1]) == data(sys.argv[2]) else 1)
PY
}

check() { CHECKS=$((CHECKS + 1)); if ! eval "$1"; then fail "$1"; fi; }

# wait_for CONDITION [PID] [SECONDS]: polls until CONDITION (a shell expression)
# holds; fails (returns 1) when PID has ended first or after SECONDS (default 300;
# a generous bound, reached only when something is wrong). Tests wait for an
# event they can observe instead of sleeping a fixed time, so that a loaded
# machine makes them slower, never wrong.
wait_for() {
    local condition=$1 pid=${2:-} limit=${3:-300} start=$SECONDS
    until eval "$condition"; do
        if [ -n "$pid" ] && ! kill -0 "$pid" 2> /dev/null; then eval "$condition"; return; fi
        if [ $((SECONDS - start)) -ge "$limit" ]; then return 1; fi
        sleep 0.02
    done
}

# has_step_line LOG [N]: LOG holds a "step" line for step N or later (default 1).
has_step_line() {
    [ -f "$1" ] && python3 - "$1" "${2:-1}" <<'PY'
import json, sys
steps = []
for line in open(sys.argv[1]):
    try:
        j = json.loads(line)
    except ValueError:
        continue
    if j.get("type") == "step":
        steps.append(j["step"])
sys.exit(0 if steps and max(steps) >= int(sys.argv[2]) else 1)
PY
}

# catches_sigint PID: the process has installed its SIGINT handler (SigCgt in /proc).
catches_sigint() {
    local mask
    mask=$(awk '/^SigCgt:/ {print $2}' "/proc/$1/status" 2> /dev/null) || return 1
    [ -n "$mask" ] && [ $(( 0x$mask & 2 )) != 0 ]
}

finish() {
    rm -rf "$WORK"
    echo "$((CHECKS - FAILS)) passed, $FAILS failed"
    [ "$FAILS" = 0 ]
}
