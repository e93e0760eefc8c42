"""Compares two safetensors files of the same run: every float tensor to a
relative tolerance (its largest difference over its largest magnitude),
every integer tensor exactly. Prints the largest relative difference seen.
With --global, the float tensors are taken together instead: the L2 norm of
all differences over the L2 norm of all values (tensors whose values are near
zero, like batch norm's shifts after a few steps, then weigh by their size).
usage: compare_weights.py [--global] A B TOL [NAME_REGEX]   (exit 1 when over TOL)"""
import json
import re
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8, "U64": np.uint64}


def load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    body = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(body[a:b], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    return out


args = sys.argv[1:]
whole = args[0] == "--global"
if whole:
    args = args[1:]
a, b, tol = load(args[0]), load(args[1]), float(args[2])
pick = re.compile(args[3]) if len(args) > 3 else None
if sorted(a) != sorted(b):
    sys.exit(f"tensor names differ: {sorted(set(a) ^ set(b))}")
worst, worst_name, bad = 0.0, "", []
diff2 = norm2 = 0.0
for name in sorted(a):
    if pick and not pick.search(name):
        continue
    x, y = a[name], b[name]
    if x.shape != y.shape:
        bad.append(f"{name}: shape {x.shape} vs {y.shape}")
        continue
    if np.issubdtype(x.dtype, np.floating):
        x64, y64 = x.astype(np.float64), y.astype(np.float64)
        diff2 += float(((x64 - y64) ** 2).sum())
        norm2 += float((x64 ** 2).sum())
        if whole:
            continue
        scale = max(np.abs(x64).max(initial=0.0), np.abs(y64).max(initial=0.0))
        rel = np.abs(x64 - y64).max(initial=0.0) / scale if scale > 0 else 0.0
        if rel > worst:
            worst, worst_name = rel, name
        if not rel <= tol:
            bad.append(f"{name}: relative difference {rel:.3g} > {tol:g}")
    elif not np.array_equal(x, y):
        bad.append(f"{name}: integer values differ")
if whole:
    rel = (diff2 / norm2) ** 0.5 if norm2 > 0 else 0.0
    print(f"relative L2 difference of all float tensors {rel:.3g}")
    if not rel <= tol:
        bad.append(f"relative L2 difference {rel:.3g} > {tol:g}")
else:
    print(f"largest relative difference {worst:.3g} ({worst_name or 'all equal'})")
for line in bad[:8] + ([f"... {len(bad) - 8} more"] if len(bad) > 8 else []):
    print("  " + line, file=sys.stderr)
sys.exit(1 if bad else 0)
