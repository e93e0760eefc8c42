#!/usr/bin/env bash
# Data-parallel scaling on this machine, side by side in one run: for each
# model, training images/s of the whole job for
#   mixreg, 1 process x 1 thread
#   mixreg, mpirun -np 2, 1 thread each
#   mixreg, 1 process x 2 threads
#   PyTorch DistributedDataParallel (gloo), 2 processes x 1 thread (bench/torch_ddp_peer.py)
# the same global batch (128) of Fashion-MNIST with Mixup (alpha 1), ROUNDS
# alternating rounds, medians printed as a table (BENCHMARKS.md).
#
#   bench/mpi_scaling.sh [ROUNDS] [MODEL...]       e.g. bench/mpi_scaling.sh 3 mlp lenet5 resnet20
#
# mixreg's rate is measured inside training, without the warm-up steps: from
# the log's cumulative img_per_s at step WARMUP and at the last step (the
# evaluations at epoch ends and the rescale-statistics pass after training
# are not timed; a subset of 16,384 training and 2,048 test images keeps
# them short). The peer times the
# same steps. Environment: MIXREG_BIN (build/mixreg), MPIRUN (mpirun),
# PEER_PYTHON (bench/.venv/bin/python: PyTorch 2.x from PyPI, see BENCHMARKS.md),
# DATA (/usr/share/datasets/fashion-mnist), BATCH (128), STEPS_<model>, WARMUP.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
shift || true
MODELS=("$@")
[ ${#MODELS[@]} -gt 0 ] || MODELS=(mlp lenet5 resnet20)
BIN=${MIXREG_BIN:-build/mixreg}
MPIRUN=${MPIRUN:-mpirun}
PEER_PYTHON=${PEER_PYTHON:-bench/.venv/bin/python}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
BATCH=${BATCH:-128}
WARMUP=${WARMUP:-10}
MPI_FLAGS=()
[ "$(id -u)" = 0 ] && MPI_FLAGS+=(--allow-run-as-root)

steps_for() {
    local var="STEPS_$1"
    if [ -n "${!var:-}" ]; then echo "${!var}"; return; fi
    case "$1" in mlp) echo 300 ;; lenet5) echo 150 ;; *) echo 60 ;; esac
}

"$BIN" --version | grep -q "(MPI)" || { echo "bench/mpi_scaling.sh: $BIN is built without MPI" >&2; exit 1; }
[ -x "$PEER_PYTHON" ] || { echo "bench/mpi_scaling.sh: no $PEER_PYTHON (python3 -m venv bench/.venv && bench/.venv/bin/pip install torch numpy)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/mpi-scaling-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# A training subset (the first 16,384 images) and test subset (2,048) as IDX files.
python3 - "$DATA" "$WORK/data" <<'PY'
import gzip, os, struct, sys
src, dst = sys.argv[1:3]
os.makedirs(dst)
def read(stem):
    for name in (stem, stem + ".gz"):
        p = os.path.join(src, name)
        if os.path.exists(p):
            return (gzip.open if p.endswith(".gz") else open)(p, "rb").read()
    sys.exit(f"{stem} not found in {src}")
for split, n in (("train", 16384), ("t10k", 2048)):
    img, lab = read(f"{split}-images-idx3-ubyte"), read(f"{split}-labels-idx1-ubyte")
    rows, cols = struct.unpack(">II", img[8:16])
    with open(os.path.join(dst, f"{split}-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 2051, n, rows, cols) + img[16:16 + n * rows * cols])
    with open(os.path.join(dst, f"{split}-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 2049, n) + lab[8:8 + n])
PY

# mixreg_rate PROCS THREADS MODEL STEPS: images/s of the job between step WARMUP and the last.
mixreg_rate() {
    local procs=$1 threads=$2 model=$3 steps=$4 out="$WORK/run-$RANDOM$RANDOM"
    local cmd=("$BIN" train --data "idx:$WORK/data" --model "$model" --epochs 1000 --max-steps "$steps"
               --batch-size "$BATCH" --threads "$threads" --mixup-alpha 1 --no-tensorboard --log-every "$WARMUP"
               --keep 0 --seed 1 --out "$out")
    if [ "$procs" = 1 ]; then "${cmd[@]}" > "$WORK/out.txt" 2>&1
    else "$MPIRUN" "${MPI_FLAGS[@]}" -np "$procs" "${cmd[@]}" > "$WORK/out.txt" 2>&1; fi || {
        echo "mixreg failed:" >&2; cat "$WORK/out.txt" >&2; exit 1; }
    python3 - "$out/log.jsonl" "$BATCH" "$WARMUP" "$steps" <<'PY'
import json, sys
log, batch, warm, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rate = {}
for line in open(log):
    j = json.loads(line)
    if j.get("type") == "step":
        rate[j["step"]] = j["img_per_s"]
t_warm, t_end = warm * batch / rate[warm], steps * batch / rate[steps]
print(round((steps - warm) * batch / (t_end - t_warm), 1))
PY
    rm -rf "$out"
}

peer_rate() {
    local model=$1 steps=$2
    "$PEER_PYTHON" bench/torch_ddp_peer.py --model "$model" --procs 2 --threads 1 --batch "$BATCH" \
        --steps "$((steps - WARMUP))" --warmup "$WARMUP" --data "$WORK/data" 2> "$WORK/peer.err" |
        python3 -c "import json, sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['train_img_per_s'])" || {
        echo "peer failed:" >&2; cat "$WORK/peer.err" >&2; exit 1; }
}

echo "load before: $(uptime)"
RESULTS="$WORK/results.txt"
for round in $(seq "$ROUNDS"); do
    for model in "${MODELS[@]}"; do
        steps=$(steps_for "$model")
        a=$(mixreg_rate 1 1 "$model" "$steps")
        b=$(mixreg_rate 2 1 "$model" "$steps")
        c=$(mixreg_rate 1 2 "$model" "$steps")
        d=$(peer_rate "$model" "$steps")
        echo "round $round $model: mixreg 1x1 $a, 2x1 $b, 1x2 $c; ddp 2x1 $d" >&2
        for v in "$a" "$b" "$c" "$d"; do [ -n "$v" ] || { echo "bench/mpi_scaling.sh: a measurement failed" >&2; exit 1; }; done
        echo "$model $a $b $c $d" >> "$RESULTS"
    done
done
echo "load after: $(uptime)"
python3 - "$RESULTS" "$BATCH" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
print(f"\nimages/s of the whole job, global batch {sys.argv[2]}, medians of {len(rows) // len({r[0] for r in rows})} rounds\n")
print("| model | mixreg 1 x 1 | mixreg 2 x 1 (mpirun) | scaling | mixreg 1 x 2 | 2 x 1 / 1 x 2 | DDP gloo 2 x 1 | mixreg / DDP |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for model in dict.fromkeys(r[0] for r in rows):
    a, b, c, d = (statistics.median(float(r[k]) for r in rows if r[0] == model) for k in (1, 2, 3, 4))
    print(f"| {model} | {a:,.0f} | {b:,.0f} | {b / a:.2f}x | {c:,.0f} | {b / c:.2f}x | {d:,.0f} | {b / d:.2f}x |")
PY
