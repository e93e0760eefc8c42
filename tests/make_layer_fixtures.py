#!/usr/bin/env python3
"""Writes tests/fixtures/layers.safetensors: PyTorch reference values for the
reference CNN layers (include/mixreg/layers.h), compared by tests/test_layers_torch.c.

Run with Debian's PyTorch:  /usr/bin/python3 tests/make_layer_fixtures.py
The output is committed, so the test suite itself never needs PyTorch.

Inputs are drawn in float32; the layers then run in float64 on those exact
values (same PyTorch ops, less rounding), and the results are stored as
float32, so the C side is compared with the exact answer to float precision.
Max pooling runs in float32 (it only selects) so its tie-breaking is the
float kernel's. Each case PREFIX has PREFIX.x, the parameters, PREFIX.y, a
random upstream gradient PREFIX.dy and the gradients PREFIX.dx, .dw, .db...;
the hyper-parameters (stride, padding) are listed in test_layers_torch.c.
"""
import json, os, struct
import torch, torch.nn.functional as F

from safetensors_writer import write_safetensors

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "layers.safetensors")


def save(path, tensors, meta):
    write_safetensors(path, tensors, meta)


out = {}


def f32(shape, scale=1.0, shift=0.0):
    return torch.randn(*shape, dtype=torch.float32) * scale + shift


def store(prefix, **tensors):
    for k, v in tensors.items():
        if v is not None:
            out[prefix + "." + k] = v.detach().to(torch.int64 if v.dtype == torch.int64 else torch.float32)


def leaf(t):
    return t.detach().double().requires_grad_(True)


def conv(prefix, n, cin, cout, h, w, k, stride, pad, bias):
    x, wt = f32((n, cin, h, w)), f32((cout, cin, k, k), 0.5)
    b = f32((cout,)) if bias else None
    xd, wd = leaf(x), leaf(wt)
    bd = leaf(b) if bias else None
    y = F.conv2d(xd, wd, bd, stride=stride, padding=pad)
    dy = f32(tuple(y.shape))
    y.backward(dy.double())
    store(prefix, x=x, w=wt, b=b, y=y, dy=dy, dx=xd.grad, dw=wd.grad, db=bd.grad if bias else None)


def batchnorm(prefix, n, c, h, w):
    x, gamma, beta = f32((n, c, h, w), 2.0, 0.5), f32((c,), 0.5, 1.0), f32((c,))
    rm, rv = f32((c,)), torch.rand(c) + 0.5
    xd, gd, bd = leaf(x), leaf(gamma), leaf(beta)
    rmd, rvd = rm.double(), rv.double()
    y = F.batch_norm(xd, rmd, rvd, gd, bd, training=True, momentum=0.1, eps=1e-5)  # updates rmd, rvd
    dy = f32(tuple(y.shape))
    y.backward(dy.double())
    store(prefix, x=x, gamma=gamma, beta=beta, running_mean0=rm, running_var0=rv, y=y, running_mean=rmd,
          running_var=rvd, dy=dy, dx=xd.grad, dgamma=gd.grad, dbeta=bd.grad)
    # Eval mode, with the updated running statistics, on a fresh input.
    x2 = f32((n, c, h, w), 2.0, 0.5)
    xd, gd, bd = leaf(x2), leaf(gamma), leaf(beta)
    y = F.batch_norm(xd, rmd, rvd, gd, bd, training=False, eps=1e-5)
    dy = f32(tuple(y.shape))
    y.backward(dy.double())
    store(prefix + "_eval", x=x2, y=y, dy=dy, dx=xd.grad, dgamma=gd.grad, dbeta=bd.grad)


def maxpool(prefix, x, k, stride, pad):
    xd = x.detach().clone().requires_grad_(True)
    y, idx = F.max_pool2d(xd, k, stride, pad, return_indices=True)
    dy = f32(tuple(y.shape))
    y.backward(dy)
    store(prefix, x=x, y=y, argmax=idx, dy=dy, dx=xd.grad)


def avgpool(prefix, n, c, h, w, k, stride, pad, include_pad):
    x = f32((n, c, h, w))
    xd = leaf(x)
    y = F.avg_pool2d(xd, k, stride, pad, count_include_pad=include_pad)
    dy = f32(tuple(y.shape))
    y.backward(dy.double())
    store(prefix, x=x, y=y, dy=dy, dx=xd.grad)


def global_avgpool(prefix, n, c, h, w):
    x = f32((n, c, h, w))
    xd = leaf(x)
    y = F.adaptive_avg_pool2d(xd, 1).flatten(1)
    dy = f32(tuple(y.shape))
    y.backward(dy.double())
    store(prefix, x=x, y=y, dy=dy, dx=xd.grad)


def linear(prefix, n, fin, fout):
    x, wt, b = f32((n, fin)), f32((fout, fin), 0.5), f32((fout,))
    xd, wd, bd = leaf(x), leaf(wt), leaf(b)
    y = F.linear(xd, wd, bd)
    dy = f32(tuple(y.shape))
    y.backward(dy.double())
    store(prefix, x=x, w=wt, b=b, y=y, dy=dy, dx=xd.grad, dw=wd.grad, db=bd.grad)


def relu(prefix, shape):
    x = f32(shape)
    xd = leaf(x)
    y = F.relu(xd)
    dy = f32(tuple(y.shape))
    y.backward(dy.double())
    store(prefix, x=x, y=y, dy=dy, dx=xd.grad)


def main():
    torch.manual_seed(20240601)
    conv("conv_s1p1", 2, 3, 4, 7, 6, 3, 1, 1, True)
    conv("conv_s2p1", 2, 3, 4, 9, 8, 3, 2, 1, False)
    conv("conv_1x1s2", 2, 4, 6, 7, 7, 1, 2, 0, False)
    conv("conv_5x5p2", 2, 1, 3, 12, 12, 5, 1, 2, True)
    batchnorm("bn", 4, 3, 5, 5)
    maxpool("maxpool_k3s2p1", f32((2, 3, 7, 7)), 3, 2, 1)
    maxpool("maxpool_k2s2", f32((2, 2, 8, 6)), 2, 2, 0)
    # Small integers: many ties, so PyTorch's tie rule is what is compared.
    maxpool("maxpool_ties", torch.round(f32((2, 2, 7, 7), 0.7)), 3, 2, 1)
    avgpool("avgpool_k3s2p1", 2, 3, 7, 6, 3, 2, 1, True)
    avgpool("avgpool_k3s2p1_excl", 2, 3, 7, 6, 3, 2, 1, False)
    avgpool("avgpool_k2s2", 2, 2, 8, 6, 2, 2, 0, True)
    global_avgpool("gap", 2, 3, 5, 5)
    linear("linear", 5, 7, 4)
    relu("relu", (3, 4, 5))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save(OUT, out, {"generator": "tests/make_layer_fixtures.py", "torch": torch.__version__})
    print(f"{OUT}: {len(out)} tensors, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
