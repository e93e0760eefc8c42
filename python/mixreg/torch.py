"""The PyTorch twin of every mixreg architecture (src/nn/mlp.c, src/nn/cnn_arch.c).

Each module's state_dict has exactly the names and shapes mixreg writes to
model.safetensors (tests/fixtures/cnn_state_dicts.txt is checked against these
definitions), so a run's weights load with load_state_dict(strict=True):

    from mixreg.torch import from_run
    model = from_run("runs/20261124-221500")      # eval mode, weights loaded
    logits = model(x)                              # x normalised as the run's metadata says

The definitions are also the models of the benchmark peer (bench/torch_peer.py)
and of the reference fixtures (tests/make_cnn_fixtures.py).
"""
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .safetensors import read_safetensors


class Basic(nn.Module):
    """He et al. 2016's CIFAR basic block: conv-BN-ReLU-conv-BN, plus the
    shortcut (1x1 conv + BN where the shape changes), then ReLU."""

    def __init__(s, i, o, st):
        super().__init__()
        s.c1 = nn.Conv2d(i, o, 3, st, 1, bias=False); s.b1 = nn.BatchNorm2d(o)
        s.c2 = nn.Conv2d(o, o, 3, 1, 1, bias=False); s.b2 = nn.BatchNorm2d(o)
        s.sh = None if (st == 1 and i == o) else nn.Sequential(nn.Conv2d(i, o, 1, st, bias=False), nn.BatchNorm2d(o))

    def forward(s, x):
        o = F.relu(s.b1(s.c1(x))); o = s.b2(s.c2(o))
        return F.relu(o + (x if s.sh is None else s.sh(x)))


class ResNetCifar(nn.Module):
    """resnet<6n+2> (resnet20, 32, 56, 110): stem conv 16, three stages of n
    basic blocks of widths w, 2w, 4w (strides 1, 2, 2), average pool, fc."""

    def __init__(s, cin=1, nc=10, w=16, n=3):
        super().__init__()
        s.c = nn.Conv2d(cin, w, 3, 1, 1, bias=False); s.b = nn.BatchNorm2d(w); L = []; i = w
        for k, o in enumerate([w, 2 * w, 4 * w]):
            for j in range(n):
                L.append(Basic(i, o, 2 if (j == 0 and k > 0) else 1)); i = o
        s.L = nn.Sequential(*L); s.fc = nn.Linear(i, nc)

    def forward(s, x):
        x = s.L(F.relu(s.b(s.c(x))))
        return s.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class PreAct(nn.Module):
    """Pre-activation block (BN-ReLU-conv twice, the mixup reference code's),
    with WideResNet's dropout between the convolutions when p > 0."""

    def __init__(s, i, o, st, p=0.0):
        super().__init__()
        s.b1 = nn.BatchNorm2d(i); s.c1 = nn.Conv2d(i, o, 3, st, 1, bias=False)
        s.b2 = nn.BatchNorm2d(o); s.c2 = nn.Conv2d(o, o, 3, 1, 1, bias=False)
        s.sh = None if (st == 1 and i == o) else nn.Conv2d(i, o, 1, st, bias=False)
        s.p = p

    def forward(s, x):
        o = F.relu(s.b1(x)); sc = x if s.sh is None else s.sh(o)
        o = s.c1(o); o = F.relu(s.b2(o))
        o = F.dropout(o, s.p, s.training) if s.p else o
        return s.c2(o) + sc


class PreActResNet18(nn.Module):
    """preact18: stem conv 64, four stages of two pre-activation blocks of
    widths 64..512, average pool, fc (the mixup reference's CIFAR network)."""

    def __init__(s, cin=1, nc=10):
        super().__init__()
        s.c = nn.Conv2d(cin, 64, 3, 1, 1, bias=False); L = []; i = 64
        for k, o in enumerate([64, 128, 256, 512]):
            for j in range(2):
                L.append(PreAct(i, o, 2 if (j == 0 and k > 0) else 1)); i = o
        s.L = nn.Sequential(*L); s.fc = nn.Linear(512, nc)

    def forward(s, x):
        return s.fc(F.adaptive_avg_pool2d(s.L(s.c(x)), 1).flatten(1))


class WideResNet(nn.Module):
    """wrn-D-K[-P] (Zagoruyko & Komodakis): stem conv 16, three stages of
    (D-4)/6 pre-activation blocks of widths 16K, 32K, 64K (strides 1, 2, 2),
    a final BN-ReLU, average pool, fc; dropout P between the convolutions."""

    def __init__(s, cin=1, nc=10, depth=28, k=10, p=0.0):
        super().__init__()
        n = (depth - 4) // 6
        s.c = nn.Conv2d(cin, 16, 3, 1, 1, bias=False); L = []; i = 16
        for st, o in enumerate([16 * k, 32 * k, 64 * k]):
            for j in range(n):
                L.append(PreAct(i, o, 2 if (j == 0 and st > 0) else 1, p)); i = o
        s.L = nn.Sequential(*L); s.b = nn.BatchNorm2d(i); s.fc = nn.Linear(i, nc)

    def forward(s, x):
        return s.fc(F.adaptive_avg_pool2d(F.relu(s.b(s.L(s.c(x)))), 1).flatten(1))


def mlp(cin=1, nc=10, h=28, w=28, hidden=(512, 512)):
    """mlp / logreg (hidden = ()): Flatten, then Linear-ReLU pairs, then the
    output Linear; nn.Sequential's numbering gives mixreg's names 1.weight, 3.weight ..."""
    dims = [cin * h * w] + list(hidden) + [nc]
    layers = [nn.Flatten()]
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i + 2 < len(dims):
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def lenet5(cin=1, nc=10, h=28, w=28):
    """LeNet-5 with ReLU and max pooling; the flatten size follows the input."""
    fh, fw = (h // 2 - 4) // 2, (w // 2 - 4) // 2
    return nn.Sequential(nn.Conv2d(cin, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * fh * fw, 120), nn.ReLU(), nn.Linear(120, 84),
                         nn.ReLU(), nn.Linear(84, nc))


def resnet50(cin=3, nc=1000):
    """torchvision's ResNet-50 (its parameter names), with a stem for cin channels."""
    import torchvision
    m = torchvision.models.resnet50(weights=None, num_classes=nc)
    m.conv1 = nn.Conv2d(cin, 64, 7, 2, 3, bias=False)
    return m


def build(arch, cin=1, nc=10, h=28, w=28, hidden=(512, 512)):
    """The module for a mixreg architecture name (as `--model` takes it)."""
    if arch == "mlp":
        return mlp(cin, nc, h, w, hidden)
    if arch == "logreg":
        return mlp(cin, nc, h, w, ())
    if arch == "lenet5":
        return lenet5(cin, nc, h, w)
    if arch == "resnet50":
        return resnet50(cin, nc)
    if arch.startswith("resnet"):
        depth = int(arch[6:])
        if (depth - 2) % 6:
            raise ValueError(f"{arch}: depth must be 6n+2")
        return ResNetCifar(cin, nc, 16, (depth - 2) // 6)
    if arch == "preact18":
        return PreActResNet18(cin, nc)
    if arch.startswith("wrn-"):
        parts = arch.split("-")
        p = float(parts[3]) if len(parts) > 3 else 0.0
        return WideResNet(cin, nc, int(parts[1]), int(parts[2]), p)
    raise ValueError(f"unknown architecture {arch!r}")


def from_run(run_dir, checkpoint="model.safetensors"):
    """The PyTorch module of a mixreg run with its weights (eval mode). The
    input it expects is normalised as run metadata's mixreg.normalize says;
    model.mixreg_meta holds that metadata (x_bar/y_bar for the rescaled
    prediction are the tensors mixreg.rescale.*, in model.mixreg_rescale)."""
    arrays, meta = read_safetensors(os.path.join(run_dir, checkpoint))
    tensors = {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}
    spec = json.loads(meta["mixreg.model"])
    model = build(spec["arch"], spec["in_channels"], spec["num_classes"], spec["in_height"], spec["in_width"],
                  tuple(spec.get("hidden", ())))
    state = {k: v for k, v in tensors.items() if not k.startswith("mixreg.")}
    model.load_state_dict(state, strict=True)
    model.eval()
    model.mixreg_meta = meta
    model.mixreg_rescale = {k: v for k, v in tensors.items() if k.startswith("mixreg.rescale.")}
    return model
