#!/usr/bin/env bash
# Side-by-side training-step benchmark: mixreg against the PyTorch peer
# (bench/torch_peer.py, run with Debian's python3-torch or PEER_PYTHON) in one run,
# alternating them ROUNDS times; prints each JSON line with the peak RSS of the
# process added, then the median ratio.
#   bench/run.sh [MODEL] [ROUNDS]      e.g. bench/run.sh mlp 3
# Environment: THREADS (2), STEPS (200), WARMUP (20), MIXREG_BIN, MIXREG_FLAGS (e.g. "--backend ref"),
# PEER, PEER_PYTHON, PEER_FLAGS (e.g. "--channels-last", "--compile").
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-mlp}
ROUNDS=${2:-3}
THREADS=${THREADS:-2}
BIN=${MIXREG_BIN:-build/mixreg}
PEER=${PEER:-bench/torch_peer.py}
PEER_PYTHON=${PEER_PYTHON:-/usr/bin/python3}  # e.g. bench/.venv/bin/python for PyTorch 2.x
PEER_FLAGS=${PEER_FLAGS:-}
MIXREG_FLAGS=${MIXREG_FLAGS:-}
STEPS=${STEPS:-200}
WARMUP=${WARMUP:-20}

# Runs a command, appends "peak_rss_mib" (the child's maximum resident set) to its JSON line.
with_rss() {
    /usr/bin/python3 - "$@" <<'PY'
import json, resource, subprocess, sys
out = subprocess.run(sys.argv[1:], check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
rec = json.loads(out)
rec["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
print(json.dumps(rec))
PY
}

results=$(mktemp)
for _ in $(seq "$ROUNDS"); do
    # shellcheck disable=SC2086
    with_rss "$BIN" bench --model "$MODEL" --threads "$THREADS" --batch 128 --steps "$STEPS" --warmup "$WARMUP" $MIXREG_FLAGS | tee -a "$results"
    # shellcheck disable=SC2086
    with_rss "$PEER_PYTHON" "$PEER" --model "$MODEL" --threads "$THREADS" --batch 128 --steps "$STEPS" --warmup "$WARMUP" $PEER_FLAGS | tee -a "$results"
done
/usr/bin/python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ours = [r for r in rows if r["peer"] == "mixreg"]; peer = [r for r in rows if r["peer"] == "pytorch"]
for key in ("train_img_per_s", "eval_img_per_s", "peak_rss_mib"):
    a = statistics.median(r[key] for r in ours); b = statistics.median(r[key] for r in peer)
    print(f"{key:16s} mixreg {a:10.1f}  pytorch {b:10.1f}  ratio {a / b:5.2f}")
PY
rm -f "$results"
