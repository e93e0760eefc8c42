#!/usr/bin/env bash
# Input-pipeline throughput per core, mixreg against torchvision in one run:
# writes a folder of JPEGs (500x375, quality 90, as ImageNet photos are
# stored), then times decode + RandomResizedCrop(224) + flip + normalise on
# both, and the CIFAR pad-crop-flip recipe. Needs build/pipeline_bench and
# Debian's python3-torchvision. usage: bench/pipeline.sh [IMAGES]
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${1:-200}
DIR=$(mktemp -d /tmp/mixreg-pipeline-XXXXXX)
trap 'rm -rf "$DIR"' EXIT
/usr/bin/python3 - "$DIR" "$IMAGES" <<'PY'
import os, sys
import numpy as np
from PIL import Image
root, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
for k in range(n):
    cls = os.path.join(root, "train", f"class{k % 4}")
    os.makedirs(cls, exist_ok=True)
    # smooth gradients plus noise: compresses like a photo, not like noise
    y, x = np.mgrid[0:375, 0:500]
    base = np.stack([(x * (k % 7 + 1)) % 256, (y * (k % 5 + 1)) % 256, (x + y) % 256], -1).astype(np.float32)
    img = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(os.path.join(cls, f"{k:05d}.jpg"), quality=90)
PY
echo "mixreg:"
./build/pipeline_bench "$DIR" 224
echo "torchvision $(/usr/bin/python3 -c 'import torchvision; print(torchvision.__version__)'):"
/usr/bin/python3 bench/torchvision_pipeline.py "$DIR" 224
