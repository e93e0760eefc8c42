#!/usr/bin/env python3
"""The peer of bench/mpi_scaling.sh: the same data-parallel training in PyTorch,
DistributedDataParallel over the gloo backend (CPU, TCP on this machine).

Starts PROCS processes of THREADS threads each; each trains on its share of
the global batch of Fashion-MNIST (IDX files), with Mixup (one lambda ~ Beta(1, 1)
per batch, the partner from a permutation of the process's share, soft-target
cross-entropy) and SGD as mixreg trains by default (lr 0.05, momentum 0.9,
weight decay 5e-4). DDP sums the gradients in buckets overlapped with the
backward pass; batch norm keeps per-process statistics (DDP's default, as
mixreg's without --sync-bn). Rank 0 prints one JSON line: images/s of the
whole job over the timed steps.

  torch_ddp_peer.py --model resnet20 --procs 2 --threads 1 --batch 128 --steps 60

Models (mixreg's architectures, src/nn/mlp.c and src/nn/cnn_arch.c):
  mlp       784-512-512-10, ReLU
  lenet5    conv5x5(6, pad 2)-relu-maxpool2-conv5x5(16)-relu-maxpool2-fc120-relu-fc84-relu-fc10
  resnet20  He et al. 2016's CIFAR ResNet: conv3x3(16)-BN-ReLU, 3 stages of 3 basic
            blocks (16/32/64 channels, strides 1/2/2, 1x1 conv + BN projection where
            the shape changes), global average pool, fc
"""
import argparse
import gzip
import json
import os
import socket
import struct
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic = struct.unpack(">I", raw[:4])[0]
    if magic == 2051:
        n, rows, cols = struct.unpack(">III", raw[4:16])
        return np.frombuffer(raw, np.uint8, offset=16).reshape(n, 1, rows, cols)
    n = struct.unpack(">I", raw[4:8])[0]
    return np.frombuffer(raw, np.uint8, offset=8)


def find(data_dir, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(data_dir, name)):
            return os.path.join(data_dir, name)
    raise SystemExit(f"{stem} not found in {data_dir}")


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        return F.relu(h + (x if self.shortcut is None else self.shortcut(x)))


class CifarResNet(nn.Module):
    def __init__(self, blocks_per_stage=3, in_channels=1, classes=10):
        super().__init__()
        self.c = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.b = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for stage, cout in enumerate((16, 32, 64)):
            for j in range(blocks_per_stage):
                layers.append(BasicBlock(cin, cout, 2 if j == 0 and stage > 0 else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.layers(F.relu(self.b(self.c(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))


def lenet5():
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


MODELS = {"mlp": mlp, "lenet5": lenet5, "resnet20": CifarResNet}


def worker(rank, args, port):
    torch.set_num_threads(args.threads)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=args.procs)
    images = torch.from_numpy(read_idx(find(args.data, "train-images-idx3-ubyte")).copy()).float() / 255.0
    labels = torch.from_numpy(read_idx(find(args.data, "train-labels-idx1-ubyte")).copy()).long()
    images = (images - images.mean()) / images.std()
    torch.manual_seed(0)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    model = DistributedDataParallel(MODELS[args.model]())
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    beta = torch.distributions.Beta(args.alpha, args.alpha)
    share = args.batch // args.procs + (rank < args.batch % args.procs)
    gen = torch.Generator().manual_seed(1000 + rank)
    model.train()
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            dist.barrier()
            start = time.perf_counter()
        idx = torch.randint(0, len(images), (share,), generator=gen)
        x, y = images[idx], F.one_hot(labels[idx], 10).float()
        lam = beta.sample()
        perm = torch.randperm(share, generator=gen)
        x = lam * x + (1 - lam) * x[perm]
        y = lam * y + (1 - lam) * y[perm]
        loss = torch.sum(-y * F.log_softmax(model(x), 1), 1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    dist.barrier()
    seconds = time.perf_counter() - start
    if rank == 0:
        print(json.dumps({"peer": "pytorch-ddp-gloo", "version": torch.__version__, "model": args.model,
                          "procs": args.procs, "threads": args.threads, "batch": args.batch, "steps": args.steps,
                          "train_img_per_s": round(args.steps * args.batch / seconds, 1),
                          "final_loss": round(loss.item(), 4)}), flush=True)
    dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet20", choices=MODELS)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128, help="the global batch, over all processes")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--alpha", type=float, default=1.0)
    args = ap.parse_args()
    mp.spawn(worker, args=(args, free_port()), nprocs=args.procs, join=True)


if __name__ == "__main__":
    main()
