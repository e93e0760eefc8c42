#!/usr/bin/env bash
# Installs everything mixreg needs to build, test and run on Debian 12: Debian's
# packages, and a Python environment (.venv, from PyPI) for the interoperability
# tests that read mixreg's files with safetensors, PyTorch and TensorBoard.
# Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
PACKAGES=(
    build-essential cmake pkg-config      # compiler and build
    libopenblas-dev                        # GEMM for the dense layers
    libdnnl-dev                            # oneDNN: the "cpu" backend's conv/BN/pool/linear kernels
    zlib1g-dev                             # gzip-compressed IDX files
    libcjson-dev                           # JSON configs and safetensors headers
    libcairo2-dev fonts-dejavu-core        # PNG/SVG figures
    libjpeg62-turbo-dev libpng-dev         # image-folder datasets: JPEG (libjpeg-turbo) and PNG decoding
    openmpi-bin libopenmpi-dev             # data-parallel training across processes and machines (mpirun)
    dataset-fashion-mnist                  # the default dataset, /usr/share/datasets/fashion-mnist
    python3 python3-venv python3-numpy     # CLI tests; the interop environment below
    python3-torch python3-torchvision      # interop tests (PyTorch loads mixreg's weights) and import tests (torchvision's resnet50)
    python3-pip python3-setuptools python3-wheel  # tests/cli_python.sh: pip install ./python, offline
    clang libclang-rt-14-dev libomp-dev    # libFuzzer targets (scripts/fuzz.sh; libomp: the library built with clang)
)
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" > /dev/null
if ! .venv/bin/python -c "import safetensors, tensorboard" 2> /dev/null; then
    /usr/bin/python3 -m venv --system-site-packages .venv
    .venv/bin/pip install -q --disable-pip-version-check safetensors tensorboard
fi
echo "mixreg: dependencies installed"
