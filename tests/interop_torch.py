#!/usr/bin/env python3
"""Interoperability: a mixreg run directory read by the outside world.

  interop_torch.py RUN_DIR PREDICTIONS.npy DATA_DIR

1. Python's `safetensors` library reads model.safetensors (both its numpy and its
   torch loaders), with the metadata mixreg documents.
2. The weights load with `load_state_dict(strict=True)` into the PyTorch model of
   python/mixreg/torch.py's definition (nn.Sequential(Flatten, Linear, ReLU,
   ...)) after dropping the "mixreg." entries: the names need no map.
3. That PyTorch model, fed the test images normalised as the metadata says,
   gives the probabilities `mixreg eval --predictions` wrote, within 1e-5.
Exits non-zero on any mismatch.
"""
import gzip, json, os, struct, sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import load_file as load_numpy
from safetensors.torch import load_file as load_torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from mixreg.torch import build  # noqa: E402

TOLERANCE = 1e-5


def load_idx_images(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    n, rows, cols = struct.unpack(">III", data[4:16])
    return np.frombuffer(data, np.uint8, offset=16).reshape(n, 1, rows, cols)


def find(data_dir, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(data_dir, name)):
            return os.path.join(data_dir, name)
    sys.exit(f"{stem} not found in {data_dir}")


def main():
    run_dir, predictions, data_dir = sys.argv[1:4]
    path = os.path.join(run_dir, "model.safetensors")
    with safe_open(path, framework="numpy") as f:
        meta = f.metadata()
    for key in ("mixreg.model", "mixreg.normalize", "mixreg.theta_bar", "mixreg.config"):
        assert key in meta, f"metadata {key} missing"
    numpy_tensors = load_numpy(path)
    torch_tensors = load_torch(path)
    assert set(numpy_tensors) == set(torch_tensors)
    spec = json.loads(meta["mixreg.model"])
    norm = json.loads(meta["mixreg.normalize"])

    model = build(spec["arch"], spec["in_channels"], spec["num_classes"], spec["in_height"], spec["in_width"],
                  tuple(spec["hidden"]))
    state = {k: v for k, v in torch_tensors.items() if not k.startswith("mixreg.")}
    model.load_state_dict(state, strict=True)
    model.eval()

    images = load_idx_images(find(data_dir, "t10k-images-idx3-ubyte"))
    x = torch.tensor(images, dtype=torch.float32) / 255.0
    x = (x - norm["mean"][0]) / norm["std"][0]
    with torch.no_grad():
        probs = torch.softmax(model(x).double(), dim=1).numpy()

    pred = np.load(predictions)
    assert pred.shape == (len(images), 2 + spec["num_classes"]), pred.shape
    assert np.array_equal(pred[:, 0], np.arange(len(images))), "index column"
    diff = np.abs(pred[:, 2:] - probs).max()
    agree = (pred[:, 2:].argmax(1) == probs.argmax(1)).mean()
    print(f"safetensors read {len(numpy_tensors)} tensors; PyTorch vs mixreg probabilities: max |diff| {diff:.2e}, "
          f"top-1 agreement {agree:.4f}")
    if diff > TOLERANCE:
        sys.exit(f"probabilities differ by {diff} > {TOLERANCE}")


if __name__ == "__main__":
    main()
