#!/usr/bin/env python3
"""Writes the PyTorch reference fixtures for mixreg's CNNs (src/nn/cnn*.c),
compared by tests/test_cnn.c.

Run with Debian's PyTorch:  /usr/bin/python3 tests/make_cnn_fixtures.py
The outputs are committed, so the test suite itself never needs PyTorch.

tests/fixtures/cnn_state_dicts.txt: the state_dict (parameters, then buffers,
with dtype and shape) of each architecture's PyTorch module, for a few input
shapes; mixreg's parameter and buffer tables must hold exactly these names and
shapes, so its model.safetensors loads with load_state_dict(strict=True).
Format: "model ARCH C H W CLASSES PARAMS" then one line per tensor
"p|b NAME F32|I64 NDIM D0 D1 ...".

tests/fixtures/resnet20_step.safetensors: one training step of resnet20 (the
module of python/mixreg/torch.py) on 4 samples of 1x28x28, 10 classes
(and tests/fixtures/cnn_steps.safetensors the same for lenet5, preact18,
wrn-16-2 and resnet50 on small inputs, names prefixed "ARCH.", with the
gradients of the smaller tensors only):
  x, y                      inputs and soft (mixed) targets
  logits, loss              train-mode forward (batch statistics), soft-target
                            cross-entropy averaged over the batch
  grad.NAME                 every parameter's gradient
  buffer.NAME               every buffer after the forward (running stats
                            updated, num_batches_tracked + 1)
  eval_logits, eval_dx      eval mode afterwards (running stats): logits, and
                            d loss / d x (the input gradient mixreg analyze uses)
  eval_grad.NAME            (resnet50, instead of grad.NAME) the parameter
                            gradients of that eval-mode backward
The weights are not stored (they would double the file): every parameter and
buffer is a fixed function of its name, weight_value() below, which
test_cnn.c computes the same way (integer hashing, then IEEE double arithmetic
rounded once to float32). The network runs in float64 on those float32 values,
so the C side is compared with the exact answer to float precision.
"""
import json, os, struct, sys

import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F

from safetensors_writer import write_safetensors

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")


# ---- the architectures: python/mixreg/torch.py, the project's PyTorch twins ----

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from mixreg.torch import build  # noqa: E402


# ---- safetensors by hand (Debian's python3 has no safetensors module) ----

def save(path, tensors, meta):
    write_safetensors(path, tensors, meta)


# ---- the state_dict tables ----

STATE_DICT_CASES = [
    ("lenet5", 1, 28, 28, 10), ("lenet5", 3, 32, 32, 100), ("resnet20", 1, 28, 28, 10), ("resnet32", 3, 32, 32, 10),
    ("preact18", 1, 28, 28, 10), ("wrn-16-4", 3, 32, 32, 10), ("resnet50", 1, 28, 28, 10),
]
COUNT_ONLY = [("resnet56", 1, 28, 28, 10), ("resnet110", 1, 28, 28, 10), ("wrn-28-10", 1, 28, 28, 10),
              ("wrn-28-10", 3, 32, 32, 10), ("resnet50", 3, 224, 224, 1000), ("wrn-40-2", 1, 28, 28, 10)]


def write_state_dicts():
    lines = []
    for arch, cin, h, w, nc in STATE_DICT_CASES:
        m = build(arch, cin, nc, h, w)
        params = dict(m.named_parameters())
        count = sum(p.numel() for p in params.values())
        lines.append(f"model {arch} {cin} {h} {w} {nc} {count}")
        for name, t in m.state_dict().items():
            kind = "p" if name in params else "b"
            dtype = "I64" if t.dtype == torch.int64 else "F32"
            lines.append(" ".join([kind, name, dtype, str(t.dim())] + [str(d) for d in t.shape]))
    path = os.path.join(FIXTURES, "cnn_state_dicts.txt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{path}: {len(lines)} lines, {os.path.getsize(path)} bytes")
    for arch, cin, h, w, nc in STATE_DICT_CASES + COUNT_ONLY:
        m = build(arch, cin, nc, h, w)
        print(f"  {arch:10s} {cin}x{h}x{w} {nc:4d} classes: {sum(p.numel() for p in m.parameters()):,} parameters")



# ---- the resnet20 training step ----

def fnv1a(name):
    h = 2166136261
    for ch in name.encode():
        h = ((h ^ ch) * 16777619) & 0xFFFFFFFF
    return h


def uniforms(name, count):
    """u_i in [0, 1): murmur3's finaliser of i * golden + fnv1a(name), / 2^32 (as test_cnn.c)."""
    with np.errstate(over="ignore"):
        x = np.arange(count, dtype=np.uint32) * np.uint32(0x9E3779B1) + np.uint32(fnv1a(name))
        x ^= x >> np.uint32(16); x *= np.uint32(0x85EBCA6B)
        x ^= x >> np.uint32(13); x *= np.uint32(0xC2B2AE35)
        x ^= x >> np.uint32(16)
    return x.astype(np.float64) / 4294967296.0


def weight_value(name, shape):
    count = int(np.prod(shape)) if len(shape) else 1
    u = uniforms(name, count)
    if name.endswith("running_mean") or name.endswith(".bias"):
        v = 0.1 * (2 * u - 1)
    elif name.endswith("running_var"):
        v = 1.0 + 0.5 * u
    elif name.endswith(".weight") and len(shape) == 1:  # batch-norm gamma
        v = 1.0 + 0.2 * (2 * u - 1)
    else:  # conv / linear weight: PyTorch's default bound 1/sqrt(fan_in)
        v = (2 * u - 1) * (1.0 / np.sqrt(float(count // shape[0])))
    return torch.tensor(v.astype(np.float32).reshape(shape))


def step_tensors(arch, cin, h, w, nc, n, grad_limit=None, prefix="", train_grads=True):
    """One training step of `arch` from weight_value() weights (num_batches_tracked 3).
    train_grads=False stores the eval-mode parameter gradients (eval_grad.NAME)
    instead of the training-mode ones: training-mode batch norm makes a deep
    network's gradients ill-conditioned at initialisation (resnet50's differ by
    up to 20% between PyTorch's own float32 and float64), eval mode does not."""
    torch.manual_seed(20241125)
    model = build(arch, cin, nc, h, w)
    state = {}
    for name, t in model.state_dict().items():
        state[name] = torch.tensor(3, dtype=torch.int64) if t.dtype == torch.int64 else weight_value(name, tuple(t.shape))
    model.load_state_dict(state)
    model = model.double()
    x = torch.randn(n, cin, h, w, dtype=torch.float32)
    a, b = torch.randint(0, nc, (n,)), torch.randint(0, nc, (n,))
    lam = torch.rand(n, 1)
    y = lam * F.one_hot(a, nc).float() + (1 - lam) * F.one_hot(b, nc).float()
    out = {"x": x, "y": y}

    def xent(logits, target):
        return torch.sum(-target * F.log_softmax(logits, 1), 1).mean()

    model.train()
    logits = model(x.double())
    loss = xent(logits, y.double())
    loss.backward()
    out["logits"] = logits.float()
    out["loss"] = loss.float().reshape(1)
    def keep(name, p):
        return grad_limit is None or p.numel() <= grad_limit or name in ("fc.weight", "11.weight")

    for name, p in model.named_parameters():
        if train_grads and keep(name, p):
            out["grad." + name] = p.grad.float()
        p.grad = None
    for name, b in model.named_buffers():
        out["buffer." + name] = b if b.dtype == torch.int64 else b.float()
    model.eval()
    xd = x.double().requires_grad_(True)
    logits = model(xd)
    xent(logits, y.double()).backward()
    out["eval_logits"] = logits.float()
    out["eval_dx"] = xd.grad.float()
    for name, p in model.named_parameters():
        if not train_grads and keep(name, p):
            out["eval_grad." + name] = p.grad.float()
    print(f"  {arch} {cin}x{h}x{w} batch {n}: loss {loss.item():.6f}, "
          f"{sum('grad.' in k for k in out)} of {len(list(model.parameters()))} gradients stored")
    return {prefix + k: v.detach() for k, v in out.items()}


# The other architectures' steps (all in cnn_steps.safetensors, prefixed "ARCH."):
# small inputs, and the gradients of the tensors up to 4,608 entries (every
# batch norm, the small convolutions, the first and last layers) to stay small.
# test_cnn.c lists the same shapes.
STEP_CASES = [("lenet5", 2, 16, 16, 5, 3, True), ("preact18", 1, 12, 12, 10, 3, True),
              ("wrn-16-2", 3, 16, 16, 10, 3, True), ("resnet50", 3, 48, 48, 10, 2, False)]


def write_steps():
    path = os.path.join(FIXTURES, "resnet20_step.safetensors")
    save(path, step_tensors("resnet20", 1, 28, 28, 10, 4), {"generator": "tests/make_cnn_fixtures.py",
                                                            "torch": torch.__version__})
    print(f"{path}: {os.path.getsize(path)} bytes")
    out = {}
    for arch, cin, h, w, nc, n, train_grads in STEP_CASES:
        out.update(step_tensors(arch, cin, h, w, nc, n, 4608, arch + ".", train_grads))
    path = os.path.join(FIXTURES, "cnn_steps.safetensors")
    save(path, out, {"generator": "tests/make_cnn_fixtures.py", "torch": torch.__version__})
    print(f"{path}: {len(out)} tensors, {os.path.getsize(path)} bytes")


def main():
    os.makedirs(FIXTURES, exist_ok=True)
    write_state_dicts()
    write_steps()


if __name__ == "__main__":
    main()
