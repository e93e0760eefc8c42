#!/usr/bin/env python3
"""Writes the PyTorch reference fixtures the C tests compare against.

Run with Debian's PyTorch:  /usr/bin/python3 tests/make_fixtures.py
The outputs are committed, so the test suite itself never needs PyTorch.

mlp_step.safetensors: a small MLP (12-5-4-3, as mixreg's nn.Sequential names),
a batch of inputs and soft targets, the logits, the soft-target cross-entropy,
every parameter gradient, and the parameters after one SGD step with Nesterov
momentum 0.9, weight decay 5e-4 and lr 0.1 (two steps, so the momentum buffer
matters).
"""
import json, os, struct
import torch, torch.nn as nn, torch.nn.functional as F

from safetensors_writer import write_safetensors

HERE = os.path.dirname(os.path.abspath(__file__))


def save_safetensors(path, tensors):
    write_safetensors(path, tensors)


def mlp_step():
    torch.manual_seed(1234)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    x = torch.randn(6, 1, 4, 3)
    y = torch.softmax(torch.randn(6, 3) * 2, dim=1)
    out = {"x": x, "y": y}
    for name, p in model.state_dict().items():
        out["param." + name] = p.clone()
    logits = model(x)
    loss = torch.sum(-y * F.log_softmax(logits, 1), 1).mean()
    loss.backward()
    out["logits"] = logits
    out["loss"] = loss.reshape(1)
    for name, p in model.named_parameters():
        out["grad." + name] = p.grad.clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    opt.step()
    # A second step with the same gradients exercises the momentum buffer.
    opt.step()
    for name, p in model.named_parameters():
        out["after2." + name] = p.detach().clone()
    save_safetensors(os.path.join(HERE, "fixtures", "mlp_step.safetensors"), out)


if __name__ == "__main__":
    os.makedirs(os.path.join(HERE, "fixtures"), exist_ok=True)
    mlp_step()
    print("fixtures written")
