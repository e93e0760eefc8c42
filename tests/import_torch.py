#!/usr/bin/env python3
"""`mixreg import` against torchvision: the weights of a randomly initialised
torchvision resnet50 (its batch norm running statistics moved off their
initial values by a few training-mode passes), saved as PyTorch users save
them, must give mixreg the logits torchvision gives.

  import_torch.py make WORK
      writes WORK/weights.safetensors, WORK/weights.pt (torch.save of the
      state dict), WORK/weights-f16-ckpt.pt (a training checkpoint: the state
      dict in float16 under "state_dict" with nn.DataParallel's "module."
      prefix, next to an epoch and an accuracy), WORK/weights-bf16.safetensors
      and an image folder WORK/images/{train,val}/<class>/*.png of 3 classes,
      73x73 images: mixreg's evaluation recipe for 64x64 (resize the shorter
      side to round(64 * 256 / 224) = 73, centre crop 64) is then the crop
      [4:68, 4:68], which this script applies itself.
  import_torch.py check WORK WEIGHTS,PREDICTIONS.npy[,RUN_DIR] ...
      each PREDICTIONS.npy is `mixreg eval --predictions` on WORK/images (val)
      (several in one call: torch starts once). Without
      RUN_DIR: the plain prediction, from torchvision's resnet50 with WEIGHTS'
      tensors (converted to float32 as mixreg converts them). With RUN_DIR (an
      import with --rescale-from WORK/images --alpha 1): the rescaled one, after
      checking the run's x_bar (the mean normalised training crop), y_bar (the
      class frequencies) and theta_bar (0.75 for alpha 1) against this script's.
Logits are compared through log-softmax (softmax removes a common shift):
max |difference| within TOLERANCE, and the same top-1 class. Exits non-zero
on any mismatch.
"""
import json, os, sys

import numpy as np
import torch
import torchvision
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

TOLERANCE = 1e-4  # float32 through two different convolution implementations, 53 layers deep
CLASSES = ["ant", "bee", "cow"]
MEAN = np.array([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1)


def images(work, split):
    """(normalised 3x64x64 crops, labels) of a split, in mixreg's order (classes, then files, sorted)."""
    xs, ys = [], []
    for label, cls in enumerate(CLASSES):
        d = os.path.join(work, "images", split, cls)
        for name in sorted(os.listdir(d)):
            pixels = np.asarray(Image.open(os.path.join(d, name)).convert("RGB"), np.float32).transpose(2, 0, 1)
            xs.append((pixels[:, 4:68, 4:68] / 255.0 - MEAN) / STD)
            ys.append(label)
    return torch.tensor(np.stack(xs)), np.array(ys)


def make(work):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    for split, per_class in (("train", 3), ("val", 2)):
        for label, cls in enumerate(CLASSES):
            os.makedirs(os.path.join(work, "images", split, cls), exist_ok=True)
            for k in range(per_class + label % 2):  # unequal classes: y_bar is not uniform
                pixels = rng.integers(0, 256, (73, 73, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(os.path.join(work, "images", split, cls, f"{k}.png"))
    model = torchvision.models.resnet50(weights=None, num_classes=len(CLASSES))
    model.train()
    with torch.no_grad():
        for _ in range(3):  # running statistics that are not 0 and 1
            model(torch.randn(4, 3, 64, 64) * 1.5 + 0.2)
        model.eval()
        x, _ = images(work, "val")
        logits = model(x)
        model.fc.weight.mul_(2.0 / float(logits.std()))  # logits of a few units: softmax far from one-hot
        model.fc.bias.normal_(0, 0.5)
    state = model.state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, os.path.join(work, "weights.safetensors"))
    torch.save(state, os.path.join(work, "weights.pt"))
    half = {"module." + k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    torch.save({"epoch": 90, "best_acc1": 0.5, "state_dict": half}, os.path.join(work, "weights-f16-ckpt.pt"))
    save_file({k: (v.bfloat16() if v.is_floating_point() else v).contiguous() for k, v in state.items()},
              os.path.join(work, "weights-bf16.safetensors"))


def load_weights(path):
    if path.endswith(".safetensors"):
        state = load_file(path)
    else:
        state = torch.load(path)
        state = state.get("state_dict", state)
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def check(work, weights, predictions, run_dir=None):
    """None, or what is wrong."""
    model = torchvision.models.resnet50(weights=None, num_classes=len(CLASSES))
    model.load_state_dict(load_weights(weights), strict=True)
    model.eval()
    x, labels = images(work, "val")
    with torch.no_grad():
        if run_dir is None:
            logits = model(x).double()
        else:
            path = os.path.join(run_dir, "model.safetensors")
            with safe_open(path, "pt") as f:
                theta = float(f.metadata()["mixreg.theta_bar"])
                x_bar, y_bar = f.get_tensor("mixreg.rescale.x_bar"), f.get_tensor("mixreg.rescale.y_bar")
            train_x, train_y = images(work, "train")
            freq = torch.tensor(np.bincount(train_y, minlength=len(CLASSES)) / len(train_y), dtype=torch.float32)
            problems = []
            if abs(theta - 0.75) > 1e-9:
                problems.append(f"theta_bar {theta}, expected 0.75 for alpha 1")
            if (x_bar - train_x.mean(0)).abs().max() > 1e-5:
                problems.append(f"x_bar differs from the mean training crop by {(x_bar - train_x.mean(0)).abs().max()}")
            if (y_bar - freq).abs().max() > 1e-6:
                problems.append(f"y_bar {y_bar.tolist()} is not the class frequencies {freq.tolist()}")
            if problems:
                return "; ".join(problems)
            shrunk = x_bar + theta * (x - x_bar)
            logits = (y_bar + (model(shrunk) - y_bar) / theta).double()
    expect = torch.log_softmax(logits, 1).numpy()
    pred = np.load(predictions)
    if pred.shape != (len(labels), 2 + len(CLASSES)):
        return f"predictions of shape {pred.shape}, expected {(len(labels), 2 + len(CLASSES))}"
    if not np.array_equal(pred[:, 1], labels):
        return f"labels {pred[:, 1]} differ from {labels}"
    got = np.log(pred[:, 2:].astype(np.float64))
    diff = np.abs(got - expect).max()
    same_top = (got.argmax(1) == expect.argmax(1)).all()
    print(f"{os.path.basename(weights)}{' rescaled' if run_dir else ''}: torchvision vs mixreg log-softmax max |diff| "
          f"{diff:.2e} (logits spread {float(logits.std()):.2f}), same top-1: {same_top}")
    if not diff <= TOLERANCE or not same_top:
        return f"mixreg's predictions differ from torchvision's by {diff} (tolerance {TOLERANCE})"
    return None


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        problems = [(spec, check(sys.argv[2], *spec.split(","))) for spec in sys.argv[3:]]
        problems = [f"{spec}: {p}" for spec, p in problems if p]
        if problems or len(sys.argv) < 4:
            sys.exit("\n".join(problems) or "nothing to check")
