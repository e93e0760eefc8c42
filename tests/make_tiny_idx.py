"""A tiny IDX dataset for the CLI tests: 1 x SIZE x SIZE images of noise with a
class-dependent bright square (4 classes, so models have something to learn),
train-* and t10k-* files in DIR.
usage: make_tiny_idx.py DIR SIZE TRAIN TEST SEED"""
import os
import random
import struct
import sys

out, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[5])
counts = {"train": int(sys.argv[3]), "t10k": int(sys.argv[4])}
os.makedirs(out, exist_ok=True)
rng = random.Random(seed)
for split, n in counts.items():
    labels = [i % 4 for i in range(n)]
    pixels = bytearray()
    for y in labels:
        img = [rng.randrange(0, 80) for _ in range(size * size)]
        r0, c0 = (y // 2) * size // 2, (y % 2) * size // 2
        for r in range(r0, r0 + size // 3):
            for c in range(c0, c0 + size // 3):
                img[r * size + c] = 255
        pixels += bytes(img)
    with open(os.path.join(out, f"{split}-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 2051, n, size, size) + pixels)
    with open(os.path.join(out, f"{split}-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 2049, n) + bytes(labels))
