#!/usr/bin/env python3
"""mixreg.torch against mixreg (run by tests/cli_python_torch.sh).

  python_torch_check.py WORK ARCH:SIZE...

For each ARCH, WORK/ARCH is a run trained one step on WORK/folderSIZE (an
image folder whose val images, SIZE * 256 / 224 pixels square, are also in
WORK/valSIZE.npy as uint8 N x 3 x H x W in the folder's order) and
WORK/ARCH.npy is `mixreg eval --rescale off --predictions` of that split.
mixreg.torch.from_run(WORK/ARCH), fed the same images (the centre SIZE x SIZE
crop, normalised as the run's metadata says), must give eval's predictions:
its log-softmax (the logits up to a per-row constant) within 2e-5 of the
log of eval's probabilities, the probabilities within 1e-5.
"""
import os
import sys

import numpy as np
import torch

import mixreg
from mixreg.torch import from_run

LOG_TOLERANCE = 2e-5
PROB_TOLERANCE = 1e-5


def main():
    work = sys.argv[1]
    failures = 0
    for spec in sys.argv[2:]:
        arch, size = spec.split(":")
        size = int(size)
        images = np.load(os.path.join(work, f"val{size}.npy"))
        side = images.shape[-1]
        off = round((side - size) / 2)  # torchvision's CenterCrop: halves to even
        x = images[:, :, off:off + size, off:off + size].astype(np.float32) / 255.0
        run_dir = os.path.join(work, arch)
        model = from_run(run_dir)
        run = mixreg.load_run(run_dir)
        mean = np.array(run.normalize["mean"], np.float32).reshape(1, -1, 1, 1)
        std = np.array(run.normalize["std"], np.float32).reshape(1, -1, 1, 1)
        with torch.no_grad():
            logits = model(torch.from_numpy((x - mean) / std)).double()
        log_probs = torch.log_softmax(logits, 1).numpy()
        pred = np.load(os.path.join(work, f"{arch}.npy"))
        assert pred.shape == (len(x), 2 + run.model["num_classes"]), pred.shape
        log_diff = np.abs(np.log(pred[:, 2:].astype(np.float64)) - log_probs).max()
        prob_diff = np.abs(pred[:, 2:] - np.exp(log_probs)).max()
        spread = np.ptp(log_probs, axis=1).max()
        ok = (run.model["arch"] == arch and not model.training and log_diff < LOG_TOLERANCE
              and prob_diff < PROB_TOLERANCE and spread > 1e-3)
        print(f"{arch} on {len(x)} images 3x{size}x{size}: max |log p difference| {log_diff:.2e}, "
              f"max |p difference| {prob_diff:.2e} (log p spread {spread:.3f}) {'ok' if ok else 'MISMATCH'}")
        failures += not ok
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
