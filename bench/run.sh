#!/usr/bin/env bash
# Side-by-side training and evaluation benchmark: mixreg against every PyTorch
# peer installed (Debian's 1.13 eager, 2.x eager and 2.x + torch.compile from
# bench/.venv), rows mlp, lenet5, resnet20 (fp32, bf16), preact18, resnet50
# (fp32, bf16), alternating ROUNDS rounds; prints markdown tables of the
# medians with their spread, mixreg's ratio to the best peer, and GFLOP/s
# against the machine's peak (bench/harness.py does the work; BENCHMARKS.md
# explains the columns).
#   bench/run.sh [ROWS] [ROUNDS] [--rows R,R] [--rounds N] [--steps N] [--dry-run] [--json FILE]
#   e.g. bench/run.sh                          every row, 3 rounds (2 for resnet50)
#        STEPS=10 bench/run.sh resnet20,preact18 2
#        bench/run.sh --dry-run                the commands, none run
# bench/run.sh --help lists the environment variables.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${HARNESS_PYTHON:-python3}" bench/harness.py "$@"
