"""Why the rescaled prediction helps a network or not: three measurements on
trained Fashion-MNIST runs (docs/paper.md, "The paper on a ResNet").

  1. The shrinkage the model prefers: the rescaled prediction with T in place
     of theta_bar, for T from 0.6 to 1, split into its two steps: the input
     step alone (f(x'), x' = x_bar + T (x - x_bar)) and the logit step alone
     (y_bar + (f(x) - y_bar) / T, a temperature), beside both together.
  2. Batch norm under shrunk inputs: each batch norm's running variance (what
     training left, from mixed inputs for a Mixup run) against the variance
     of its input on the test images, plain and shrunk by theta_bar: mean over
     channels of log2(test / running), first layer and all layers.
  3. x_bar and batch norm: the rescaled prediction with x_bar taken over
     clean training images instead of the stored one (which sees the
     training augmentation, padded crops included); then the running
     statistics recomputed from 10,000 clean training images (a cumulative
     average, no mixing, no augmentation) and the plain and the rescaled
     prediction again.

Needs PyTorch and NumPy (bench/.venv has both) and mixreg's library for the
metrics (build/libmixreg.so):

    MIXREG_LIBRARY=build/libmixreg.so PYTHONPATH=python bench/.venv/bin/python \\
        experiments/rescale_probe.py RUN_DIR... [--json OUT.json] [--data-dir IDX_DIR]

Prints one Markdown table per measurement; --json writes every number.
"""
import argparse
import gzip
import json
import os
import sys

import numpy as np
import torch

import mixreg
from mixreg.torch import from_run

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
SWEEP = (0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)


def read_idx(path):
    """An IDX file, gzipped (PATH.gz, as Debian ships Fashion-MNIST) or not."""
    if os.path.exists(path + ".gz"):
        with gzip.open(path + ".gz", "rb") as f:
            data = f.read()
    else:
        with open(path, "rb") as f:
            data = f.read()
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_split(data_dir, split, normalize):
    prefix = "t10k" if split == "test" else "train"
    x = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte")).astype(np.float32) / 255.0
    y = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
    mean, std = np.float32(normalize["mean"][0]), np.float32(normalize["std"][0])
    return ((x - mean) / std)[:, None, :, :], y


def logits_of(model, x, batch=500):
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(model(torch.from_numpy(x[i:i + batch])).numpy())
    return np.concatenate(out)


def metrics(logits, labels):
    m = mixreg.metrics_from_logits(logits.astype(np.float32), labels.astype(np.int32))
    return {"accuracy": 100 * m["accuracy"], "nll": m["nll"], "ece": 100 * m["ece"]}


def bn_log_ratios(model, x):
    """Per batch norm: mean over channels of log2(variance of its input on x /
    its running variance)."""
    layers = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    sums = [None] * len(layers)
    counts = [0] * len(layers)

    def hook(k):
        def run(_module, inputs, _output):
            v = inputs[0].double()
            s = (v.sum((0, 2, 3)), (v * v).sum((0, 2, 3)))
            sums[k] = s if sums[k] is None else (sums[k][0] + s[0], sums[k][1] + s[1])
            counts[k] += v.shape[0] * v.shape[2] * v.shape[3]
        return run

    handles = [layer.register_forward_hook(hook(k)) for k, layer in enumerate(layers)]
    logits = logits_of(model, x)
    for h in handles:
        h.remove()
    ratios = []
    for k, layer in enumerate(layers):
        mean = sums[k][0] / counts[k]
        var = sums[k][1] / counts[k] - mean * mean
        ratios.append(float(torch.log2(var / layer.running_var.double()).mean()))
    return ratios, logits


def recalibrate(model, x, batch=128):
    """Running statistics recomputed from x: a cumulative average over its
    batches in training mode, nothing else changed."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        for i in range(0, len(x) - batch + 1, batch):
            model(torch.from_numpy(x[i:i + batch]))
    model.eval()


def probe(run_dir, x_test, y_test, x_train):
    model = from_run(run_dir)
    theta_bar = float(model.mixreg_meta["mixreg.theta_bar"])
    x_bar = model.mixreg_rescale["mixreg.rescale.x_bar"].numpy()
    y_bar = model.mixreg_rescale["mixreg.rescale.y_bar"].numpy()
    shrink = lambda t: x_bar + np.float32(t) * (x_test - x_bar)
    undo = lambda h, t: y_bar + (h - y_bar) / np.float32(t)
    plain = logits_of(model, x_test)
    sweep = []
    for t in SWEEP:
        shrunk = plain if t == 1.0 else logits_of(model, shrink(t))
        sweep.append({"T": t, "both": metrics(undo(shrunk, t), y_test), "input": metrics(shrunk, y_test),
                      "logit": metrics(undo(plain, t), y_test)})
    bn_shrunk, shrunk_logits = bn_log_ratios(model, shrink(theta_bar))
    bn = {"plain": bn_log_ratios(model, x_test)[0], "shrunk": bn_shrunk}
    rescaled = metrics(undo(shrunk_logits, theta_bar), y_test)
    clean_x_bar = x_train.mean(0, dtype=np.float64).astype(np.float32)
    clean = metrics(undo(logits_of(model, clean_x_bar + np.float32(theta_bar) * (x_test - clean_x_bar)), theta_bar),
                    y_test)
    x_bar_gap = float(np.abs(clean_x_bar - x_bar).max())
    if any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()):
        recalibrate(model, x_train)
        recal = {"plain": metrics(logits_of(model, x_test), y_test),
                 "rescaled": metrics(undo(logits_of(model, shrink(theta_bar)), theta_bar), y_test),
                 "bn": bn_log_ratios(model, x_test)[0]}
    else:  # nothing to recalibrate
        recal = {"plain": metrics(plain, y_test), "rescaled": rescaled, "bn": []}
    return {"run": run_dir, "theta_bar": theta_bar, "rescaled": rescaled, "sweep": sweep, "bn_log2_ratio": bn, "recalibrated": recal,
            "clean_x_bar": {"rescaled": clean, "max_abs_difference": x_bar_gap}}


def bn_cell(values, first=False):
    """A log2 ratio for the table; a dash for a network without batch norm."""
    if not values:
        return "—"
    return f"{values[0] if first else np.mean(values):+.3f}"


def fmt(m):
    return f"{m['accuracy']:.2f} / {m['nll']:.4f} / {m['ece']:.2f}"


def report(results):
    print("## 1. The shrinkage each model prefers (accuracy % / NLL / ECE %)\n")
    for r in results:
        print(f"{r['run']} (theta_bar {r['theta_bar']:.4f})\n")
        print("| T | input + logit steps | input step alone | logit step alone |")
        print("|---|---|---|---|")
        for s in r["sweep"]:
            print(f"| {s['T']:.2f} | {fmt(s['both'])} | {fmt(s['input'])} | {fmt(s['logit'])} |")
        best = min(r["sweep"], key=lambda s: s["both"]["nll"])
        print(f"\nlowest NLL of both steps at T = {best['T']:.2f}\n")
    print("## 2. Batch-norm input variance on test images against the running variance (mean log2 ratio)\n")
    print("| run | first layer, plain | first layer, shrunk | all layers, plain | all layers, shrunk |")
    print("|---|---|---|---|---|")
    for r in results:
        p, s = r["bn_log2_ratio"]["plain"], r["bn_log2_ratio"]["shrunk"]
        print(f"| {os.path.basename(r['run'])} | {bn_cell(p, True)} | {bn_cell(s, True)} | {bn_cell(p)} | {bn_cell(s)} |")
    print("\n## 3. x_bar over clean images; batch norm recalibrated on clean training images (accuracy % / NLL / ECE %)\n")
    print("| run | plain | rescaled | rescaled, clean x_bar (max change of x_bar) | recalibrated, plain | "
          "recalibrated, rescaled | all layers log2 ratio after |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        base = {s["T"]: s for s in r["sweep"]}
        rc = r["recalibrated"]
        label = fmt(r["rescaled"])
        cx = r["clean_x_bar"]
        print(f"| {os.path.basename(r['run'])} | {fmt(base[1.0]['both'])} | {label} | {fmt(cx['rescaled'])} "
              f"({cx['max_abs_difference']:.3f}) | {fmt(rc['plain'])} | {fmt(rc['rescaled'])} | {bn_cell(rc['bn'])} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--json")
    ap.add_argument("--train-images", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-dir", default=FASHION_MNIST,
                    help="the runs' IDX files (train-*, t10k-*, gzipped or not; default Fashion-MNIST's)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    results = []
    for run in a.runs:
        meta = json.loads(from_run(run).mixreg_meta["mixreg.normalize"])
        x_test, y_test = load_split(a.data_dir, "test", meta)
        x_train, _ = load_split(a.data_dir, "train", meta)
        # Evenly spaced, so every class is there (the file is shuffled anyway).
        x_train = x_train[:: max(1, len(x_train) // a.train_images)][: a.train_images]
        results.append(probe(run, x_test, y_test, x_train))
        print(f"probed {run}", file=sys.stderr)
    report(results)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
