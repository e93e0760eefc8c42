#!/usr/bin/env bash
# Installs everything mixreg needs to build, test and run on Debian 12, from
# Debian's packages. Safe to run again.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
PACKAGES=(
    build-essential cmake pkg-config      # compiler and build
    libopenblas-dev                        # GEMM for the dense layers
    zlib1g-dev                             # gzip-compressed IDX files
    libcjson-dev                           # JSON configs and safetensors headers
    libomp-dev                             # OpenMP runtime headers (GCC uses libgomp)
    dataset-fashion-mnist                  # the default dataset, /usr/share/datasets/fashion-mnist
    python3                                # the CLI tests read JSON with it
)
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" > /dev/null
echo "mixreg: dependencies installed"
