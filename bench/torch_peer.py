#!/usr/bin/env python3
"""mixreg's PyTorch peer: the same training step as `mixreg bench`, for side-by-side ratios.

One step: a batch drawn at random, Mixup with one lambda ~ Beta(alpha, alpha)
per batch and the partner from a random permutation, soft-target cross-entropy
averaged over the batch, backward, SGD with Nesterov momentum 0.9 and weight
decay 5e-4. Evaluation: forward passes in eval mode without gradients. Prints
one JSON line (the keys `mixreg bench` prints, "peer": "pytorch").

  bench/torch_peer.py --model resnet20 --threads 2 --batch 128 --steps 60 [--channels-last] [--bf16] [--compile]
  bench/torch_peer.py --model resnet50 --data synthetic:3x224x224 --classes 1000 --batch 32

The models are python/mixreg/torch.py's, the twins of mixreg's architectures.
Compare against PyTorch's best setting: for CNNs on a CPU that is
--channels-last (fp32) and --channels-last --bf16 (mixed precision), and with
PyTorch 2.x also --compile (its compilation happens in the warm-up steps).
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from mixreg.torch import build  # noqa: E402

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
EVAL_DISTINCT_BATCHES = 64


def read_idx(path):
    """An IDX file (optionally gzipped) as a uint8 array: images [n, 1, h, w] or labels [n]."""
    with (gzip.open(path) if path.endswith(".gz") else open(path, "rb")) as f:
        raw = f.read()
    dims = raw[3]
    shape = struct.unpack(">" + "I" * dims, raw[4:4 + 4 * dims])
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * dims)
    return data.reshape(shape[0], 1, shape[1], shape[2]) if dims == 3 else data


def load_data(spec, classes, count):
    """(x, y): Fashion-MNIST's training set normalised, or `synthetic:CxHxW`
    (standard normal images, uniform labels; enough for timing)."""
    if spec.startswith("synthetic:"):
        c, h, w = (int(v) for v in spec[len("synthetic:"):].split("x"))
        g = torch.Generator().manual_seed(0)
        return torch.randn(count, c, h, w, generator=g), torch.randint(0, classes, (count,), generator=g)
    def find(stem):
        for name in (stem, stem + ".gz"):
            if os.path.exists(os.path.join(spec, name)):
                return os.path.join(spec, name)
        sys.exit(f"torch_peer.py: {stem} not found in {spec}")
    x = torch.tensor(read_idx(find("train-images-idx3-ubyte"))).float() / 255.0
    y = torch.tensor(read_idx(find("train-labels-idx1-ubyte")).astype(np.int64))
    return (x - x.mean()) / x.std(), y


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet20", help="any mixreg architecture name (mlp, lenet5, resnet20, preact18, wrn-16-4, resnet50, ...)")
    ap.add_argument("--data", default=FASHION_MNIST, help="an IDX directory or synthetic:CxHxW")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--eval-batches", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--channels-last", action="store_true", help="NHWC activations (PyTorch's fastest CPU layout for CNNs)")
    ap.add_argument("--bf16", action="store_true", help="bfloat16 autocast, float32 master weights")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (PyTorch 2.x)")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    # The evaluation goes round at most 64 distinct batches (as mixreg bench
    # does), so that a longer evaluation holds no more images.
    eval_distinct = min(a.eval_batches, EVAL_DISTINCT_BATCHES)
    pool = max(a.batch * max(eval_distinct, 4), 1024)
    x_all, y_all = load_data(a.data, a.classes, pool)
    c, h, w = x_all.shape[1:]
    model = build(a.model, c, a.classes, h, w)
    fmt = torch.channels_last if a.channels_last and x_all.dim() == 4 else torch.contiguous_format
    model = model.to(memory_format=fmt)
    run = torch.compile(model) if a.compile else model
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    beta = torch.distributions.Beta(a.alpha, a.alpha)

    def step():
        idx = torch.randint(0, len(x_all), (a.batch,))
        x, y = x_all[idx], F.one_hot(y_all[idx], a.classes).float()
        lam, perm = beta.sample(), torch.randperm(a.batch)
        x = (lam * x + (1 - lam) * x[perm]).contiguous(memory_format=fmt)
        y = lam * y + (1 - lam) * y[perm]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            logits = run(x)
        loss = torch.sum(-y * F.log_softmax(logits.float(), 1), 1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    model.train()
    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    train_ips = a.steps * a.batch / (time.perf_counter() - t0)

    model.eval()
    xe = x_all[:a.batch * eval_distinct].contiguous(memory_format=fmt)
    distinct = max(1, len(xe) // a.batch)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
        for _ in range(2):  # warm-up (and compilation of the eval graph)
            run(xe[:a.batch])
        t0 = time.perf_counter()
        for k in range(a.eval_batches):
            j = k % distinct
            run(xe[j * a.batch:(j + 1) * a.batch])
    eval_ips = a.eval_batches * a.batch / (time.perf_counter() - t0)
    print(json.dumps({"peer": "pytorch", "version": torch.__version__, "model": a.model, "threads": a.threads,
                      "channels_last": a.channels_last, "bf16": a.bf16, "compile": a.compile, "batch": a.batch,
                      "train_img_per_s": round(train_ips, 1), "eval_img_per_s": round(eval_ips, 1),
                      "final_loss": round(loss.item(), 4)}))


if __name__ == "__main__":
    main()
