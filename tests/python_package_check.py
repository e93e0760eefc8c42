#!/usr/bin/env python3
"""The installed Python package against the CLI's own numbers (run by
tests/cli_python.sh, which made every file named below).

  python_package_check.py WORK

WORK holds: run/ (a small Mixup MLP run on data/, an IDX set with noisy
labels), data/ and trainset/ (data's training split as its test split),
eval.json (`eval --json --temperature fit --val-split 0.25`), plain.npy and
rescaled.npy (`eval --predictions` of the test split), train_plain.npy and
train_rescaled.npy (the same of the training split), theta-*.json (`theta
--json`). Exits non-zero on the first mismatch.
"""
import ctypes
import glob
import json
import os
import struct
import sys

import numpy as np

import mixreg

METRIC_TOLERANCE = 1e-6       # the CLI prints metrics with 6 decimals
PROB_TOLERANCE = 1e-5         # NumPy's float32 forward against mixreg's
CHECKS = 0


def check(condition, what):
    global CHECKS
    CHECKS += 1
    if not condition:
        sys.exit(f"FAIL: {what}")


def expect_error(kind, needle, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except kind as e:
        check(needle in str(e) and "\n" not in str(e), f"{kind.__name__} '{e}' should mention '{needle}'")
        return
    except Exception as e:  # noqa: BLE001 - a wrong kind of error is a failure too
        check(False, f"expected {kind.__name__} mentioning '{needle}', got {type(e).__name__}: {e}")
    check(False, f"expected {kind.__name__} mentioning '{needle}', got no error")


def idx(path):
    raw = open(path, "rb").read()
    (magic,) = struct.unpack(">I", raw[:4])
    if magic == 2051:
        n, h, w = struct.unpack(">III", raw[4:16])
        return np.frombuffer(raw, np.uint8, offset=16).reshape(n, 1, h, w)
    return np.frombuffer(raw, np.uint8, offset=8).astype(np.int64)


def same_metrics(got, want, what):
    for key in ("accuracy", "nll", "ece", "ece_adaptive", "mce", "brier"):
        check(abs(got[key] - want[key]) <= METRIC_TOLERANCE,
              f"{what}: {key} {got[key]:.9f}, the CLI's {want[key]:.6f}")
    check(got["n"] == want["n"], f"{what}: n {got['n']} != {want['n']}")


def mlp_forward(weights, hidden_layers, x):
    """mixreg's mlp in NumPy: Linear-ReLU pairs named 1, 3, ..., then the output."""
    h = x.reshape(len(x), -1).astype(np.float32)
    for k in range(hidden_layers + 1):
        name = str(2 * k + 1)
        h = h @ weights[name + ".weight"].T + weights[name + ".bias"]
        if k < hidden_layers:
            h = np.maximum(h, 0)
    return h


def softmax64(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def c_struct_fields(header, name):
    """[(member, type)] of `typedef struct { ... } name;` in a public header, in order."""
    import re
    text = open(os.path.join(os.environ["MIXREG_SOURCE_DIR"], "include", "mixreg", header)).read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    body = re.search(r"typedef struct \{([^}]*)\} " + name + ";", text).group(1)
    fields = []
    for declaration in body.split(";"):
        m = re.match(r"\s*(\w+)\s+(.*)", declaration, re.S)
        if m:
            for member in m.group(2).split(","):
                fields.append((member.replace("*", "").strip(), m.group(1) + "*" * member.count("*")))
    return fields


def ctypes_fields(mirror):
    names = {ctypes.c_double: "double", ctypes.c_size_t: "size_t", ctypes.POINTER(ctypes.c_float): "float*"}
    return [(f, names.get(t, repr(t))) for f, t in mirror._fields_]


def main():
    work = sys.argv[1]
    # The ctypes mirrors of the C structs follow the public headers, member for member.
    from mixreg import _library
    for header, name, mirror in (("metrics.h", "mx_metrics", _library.Metrics),
                                 ("theta.h", "mx_theta_stats", _library.ThetaStats),
                                 ("rescale.h", "mx_rescale_stats", _library.RescaleStats)):
        fields = c_struct_fields(header, name)
        check(fields == ctypes_fields(mirror), f"{name} in {header} is {fields}: update mixreg/_library.py")
    run_dir = os.path.join(work, "run")
    check(os.path.realpath(mixreg.__file__).startswith(os.path.realpath(sys.prefix)),
          f"mixreg imported from {mixreg.__file__}, not the venv {sys.prefix}")

    # Theta statistics: the same C code as `mixreg theta --json`, so equal to the last bit printed.
    for path in sorted(glob.glob(os.path.join(work, "theta-*.json"))):
        want = json.load(open(path))
        got = mixreg.theta_stats(want["alpha"], want["mix_prob"])._asdict()
        for key in ("alpha", "mix_prob", "theta_bar", "theta_var", "gamma2", "label_smoothing"):
            check(abs(got[key] - want[key]) <= 1e-15, f"{path}: {key} {got[key]!r} != {want[key]!r}")
    check(mixreg.theta_stats(1.0).theta_bar == 0.75, "theta_bar(1) = 3/4")
    check(mixreg.theta_stats(0).theta_bar == 1.0 and mixreg.theta_stats(0).gamma2 == 0, "alpha 0 is ERM")

    # Reading the run.
    run = mixreg.load_run(run_dir)
    config = json.load(open(os.path.join(run_dir, "config.json")))
    check(run.config == config == mixreg.read_config(run_dir), "config is config.json")
    epochs = [m for m in run.metrics if m.get("type") == "epoch"]
    check(len(epochs) == config["epochs"] and epochs[-1]["epoch"] == config["epochs"], "one log record per epoch")
    check(run.metrics == mixreg.read_metrics(run_dir), "read_metrics is Run.metrics")
    check(run.result is not None and run.result["plain"]["n"] == epochs[-1]["test"]["plain"]["n"], "result.json")
    hidden = config["hidden"]
    dims = [int(np.prod(run.x_bar.shape))] + hidden + [run.model["num_classes"]]
    names = [f"{2 * k + 1}.{p}" for k in range(len(dims) - 1) for p in ("weight", "bias")]
    check(sorted(run.weights) == sorted(names), f"weights {sorted(run.weights)}")
    check(run.weights["1.weight"].shape == (dims[1], dims[0]) and run.weights["1.weight"].dtype == np.float32,
          "weight shapes follow the model")
    check(run.model["arch"] == "mlp" and run.y_bar.shape == (run.model["num_classes"],), "model spec")
    check(run.theta_bar == mixreg.theta_stats(config["mixup_alpha"]).theta_bar, "the run's theta_bar")
    check(run.step == epochs[-1]["step"], "the checkpoint's step")

    # The data, normalised as the run says.
    data = os.path.join(work, "data")
    x_test = idx(os.path.join(data, "t10k-images-idx3-ubyte")).astype(np.float32) / 255.0
    y_test = idx(os.path.join(data, "t10k-labels-idx1-ubyte"))
    x_train = idx(os.path.join(data, "train-images-idx3-ubyte")).astype(np.float32) / 255.0
    y_train = idx(os.path.join(data, "train-labels-idx1-ubyte"))
    mean, std = run.normalize["mean"][0], run.normalize["std"][0]
    x_test, x_train = (x_test - mean) / std, (x_train - mean) / std

    # The run's rescale statistics are the package's training_statistics of its training set.
    x_bar, y_bar = mixreg.training_statistics(((x_train[i:i + 50], y_train[i:i + 50])
                                               for i in range(0, len(x_train), 50)), run.model["num_classes"])
    check(x_bar.shape == run.x_bar.shape and np.abs(x_bar - run.x_bar).max() < 1e-5, "x_bar of the training set")
    check(np.abs(y_bar - run.y_bar).max() < 1e-6, "y_bar of the training set")

    # Predictions files: the plain and the rescaled probabilities of the test split.
    plain, rescaled = np.load(os.path.join(work, "plain.npy")), np.load(os.path.join(work, "rescaled.npy"))
    labels = plain[:, 1].astype(np.int64)
    check(np.array_equal(labels, y_test) and np.array_equal(rescaled[:, 1].astype(np.int64), y_test), "labels")
    p_plain, p_rescaled = plain[:, 2:], rescaled[:, 2:]
    check(np.abs(p_plain - p_rescaled).max() > 1e-2, "rescaling changes the probabilities (a meaningful comparison)")

    # The rescaled prediction, the user's way: their own model (here mixreg's
    # MLP in NumPy) on rescale_inputs, then rescale_logits.
    layers = len(hidden)
    x_r = mixreg.rescale_inputs(x_test, run.x_bar, run.theta_bar)
    check(x_r.shape == x_test.shape and x_r.dtype == np.float32, "rescale_inputs keeps the shape")
    check(np.abs(x_r - (run.x_bar + np.float32(run.theta_bar) * (x_test - run.x_bar))).max() < 1e-6,
          "rescale_inputs is x_bar + theta_bar (x - x_bar)")
    f = mlp_forward(run.weights, layers, x_r)
    h = mixreg.rescale_logits(f, run.y_bar, run.theta_bar)
    check(np.abs(h - (run.y_bar + (f - run.y_bar) / run.theta_bar)).max() < 1e-5,
          "rescale_logits is y_bar + (f - y_bar) / theta_bar")
    check(np.array_equal(run.rescale_logits(f), h) and np.array_equal(run.rescale_inputs(x_test), x_r),
          "Run.rescale_* use the run's statistics")
    diff = np.abs(softmax64(h) - p_rescaled).max()
    print(f"rescaled prediction from Python vs mixreg eval: max |probability difference| {diff:.2e}")
    check(diff < PROB_TOLERANCE, f"rescaled probabilities differ by {diff}")
    diff = np.abs(softmax64(mlp_forward(run.weights, layers, x_test)) - p_plain).max()
    check(diff < PROB_TOLERANCE, f"plain probabilities differ by {diff}")
    check(np.abs(mixreg.softmax(h) - softmax64(h)).max() < 1e-6, "softmax")

    # Every metric the CLI reports, from the same predictions, both ways in.
    cli = json.load(open(os.path.join(work, "eval.json")))
    for mode, p in (("plain", p_plain), ("rescaled", p_rescaled)):
        from_probs = mixreg.metrics_from_probs(p, labels)
        same_metrics(from_probs, cli[mode], f"{mode} from probabilities")
        # log p is the logits less a per-row constant, which softmax ignores.
        same_metrics(mixreg.metrics_from_logits(np.log(p.astype(np.float64)), labels), cli[mode],
                     f"{mode} from logits")
        rel = from_probs["reliability"]
        check(len(rel["count"]) == mixreg.DEFAULT_BINS and sum(rel["count"]) == len(labels), "15 bins, all counted")
        check("top5" not in from_probs, "no top-5 with 4 classes")
    check(0.3 < cli["plain"]["accuracy"] < 0.95, "a model neither perfect nor useless (a meaningful comparison)")

    # With 10 classes (top-5 reported), against a NumPy computation of the definitions.
    rng = np.random.default_rng(3)
    z = (rng.normal(size=(300, 10)) * 2).astype(np.float32)
    y = rng.integers(0, 10, 300)
    got = mixreg.metrics_from_logits(z, y, bins=12)
    p = softmax64(z)
    conf, correct = p.max(1), p.argmax(1) == y
    bins = np.clip(np.ceil(conf * 12).astype(int) - 1, 0, 11)
    gaps = [abs(correct[bins == b].mean() - conf[bins == b].mean()) for b in range(12) if (bins == b).any()]
    order = np.argsort(conf, kind="stable")
    groups = [order[b * 300 // 12:(b + 1) * 300 // 12] for b in range(12)]
    want = {"accuracy": correct.mean(), "top5": np.mean([y[i] in np.argsort(-z[i])[:5] for i in range(300)]),
            "nll": -np.mean(np.log(p[np.arange(300), y])),
            "brier": np.mean(((p - np.eye(10)[y]) ** 2).sum(1)),
            "ece": sum((bins == b).mean() * abs(correct[bins == b].mean() - conf[bins == b].mean())
                       for b in range(12) if (bins == b).any()),
            "mce": max(gaps),
            "ece_adaptive": sum(len(g) / 300 * abs(correct[g].mean() - conf[g].mean()) for g in groups)}
    for key, value in want.items():
        check(abs(got[key] - value) < 1e-9, f"10 classes: {key} {got[key]} != NumPy's {value}")
    check(got["reliability"]["count"] == [int((bins == b).sum()) for b in range(12)], "reliability counts")

    # The temperature fit: on the same held-out split the CLI used (the run's
    # seed, the hold-out stream, 25% of the training set), via the library's
    # own generator.
    lib = ctypes.CDLL(mixreg.library_path())

    class Rng(ctypes.Structure):
        _fields_ = [("words", ctypes.c_uint32 * 11)]

    rng = Rng()
    n_train = len(y_train)
    perm = (ctypes.c_uint32 * n_train)()
    lib.mx_rng_init(ctypes.byref(rng), ctypes.c_uint64(config["seed"]), ctypes.c_uint64(6))
    lib.mx_rng_permutation(ctypes.byref(rng), perm, ctypes.c_size_t(n_train))
    held = np.array(perm[:int(0.25 * n_train)])
    check(cli["temperature_fit"]["n"] == len(held), "held-out size")
    for mode, base, train_file, p_test in (("temperature", "plain", "train_plain.npy", p_plain),
                                           ("rescaled+temperature", "rescaled", "train_rescaled.npy", p_rescaled)):
        train_pred = np.load(os.path.join(work, train_file))
        check(np.array_equal(train_pred[:, 1].astype(np.int64), y_train), "training labels")
        val_logits = np.log(train_pred[held, 2:].astype(np.float64))
        t = mixreg.fit_temperature(val_logits, y_train[held])
        want_t = cli[mode]["temperature"]
        print(f"{mode}: T {t:.7f}, the CLI's {want_t:.6f}")
        check(abs(t - want_t) <= 1e-6 and t != 1.0, f"{mode}: T {t} != the CLI's {want_t}")
        nll = [mixreg.temperature_nll(val_logits, y_train[held], s) for s in (t * 0.99, t, t * 1.01)]
        check(nll[1] < nll[0] and nll[1] < nll[2], "the fitted T minimises the held-out NLL")
        same_metrics(mixreg.metrics_from_logits(np.log(p_test.astype(np.float64)), labels, temperature=t),
                     cli[mode], f"{mode} metrics")
        check(abs(cli[mode]["nll"] - cli[base]["nll"]) > 1e-4, "the temperature changes the NLL")

    # Errors: clear, one line, the C library's message where it has one.
    expect_error(mixreg.MixregArgumentError, "alpha", mixreg.theta_stats, -1.0)
    expect_error(ValueError, "alpha", mixreg.theta_stats, float("nan"))
    expect_error(mixreg.MixregArgumentError, "mix", mixreg.theta_stats, 1.0, 1.5)
    expect_error(ValueError, "outside [0, 4)", mixreg.metrics_from_probs, p_plain, labels + 1)
    expect_error(ValueError, "shape", mixreg.metrics_from_probs, p_plain, labels[:-1])
    expect_error(ValueError, "dimensions", mixreg.metrics_from_logits, p_plain[0], labels)
    expect_error(TypeError, "integer", mixreg.metrics_from_logits, p_plain, labels.astype(np.float32))
    expect_error(TypeError, "float", mixreg.metrics_from_logits, labels.reshape(-1, 1), labels * 0)
    expect_error(ValueError, "bins", mixreg.metrics_from_logits, p_plain, labels, bins=0)
    expect_error(ValueError, "temperature", mixreg.metrics_from_logits, p_plain, labels, temperature=-1)
    bad = np.log(p_plain.astype(np.float64))
    bad[3, 1] = np.nan
    expect_error(mixreg.MixregNumericError, "non-finite logit", mixreg.fit_temperature, bad, labels)
    expect_error(ValueError, "theta_bar", mixreg.rescale_logits, f, run.y_bar, 0.2)
    expect_error(ValueError, "x_bar", mixreg.rescale_inputs, x_test[:, :, :4], run.x_bar, run.theta_bar)
    expect_error(ValueError, "y_bar", mixreg.rescale_logits, f[:, :3], run.y_bar, run.theta_bar)
    check(mixreg.rescale_inputs(x_test[0], run.x_bar, 1.0).shape == x_test[0].shape, "one sample")
    check(np.array_equal(mixreg.rescale_logits(f, run.y_bar, 1.0), f), "theta_bar 1 is the identity")

    # A hostile checkpoint is refused with the file's name, not a crash.
    path = os.path.join(run_dir, "model.safetensors")
    good = open(path, "rb").read()
    (n,) = struct.unpack("<Q", good[:8])
    header = json.loads(good[8:8 + n])
    cases = {"truncated.safetensors": (good[:len(good) - 4], "cover"),
             "short.safetensors": (good[:5], "too short"),
             "length.safetensors": (struct.pack("<Q", len(good)) + good[8:], "header length")}
    names = [k for k in header if k != "__metadata__"]

    def rewrite(mutate):
        h = json.loads(good[8:8 + n])
        mutate(h[names[1]])
        text = json.dumps(h).encode()
        return struct.pack("<Q", len(text)) + text + good[8 + n:]

    def overlap(entry):
        begin, end = entry["data_offsets"]
        entry["data_offsets"] = [0, end - begin]

    cases["overlap.safetensors"] = (rewrite(overlap), "overlap")
    cases["dtype.safetensors"] = (rewrite(lambda e: e.update(dtype="F16")), "dtype")
    cases["shape.safetensors"] = (rewrite(lambda e: e.update(shape=[1 << 40])), "bytes")
    for name, (content, needle) in cases.items():
        target = os.path.join(work, name)
        open(target, "wb").write(content)
        expect_error(mixreg.FormatError, needle, mixreg.read_safetensors, target)
        check(name in str(_error_of(mixreg.read_safetensors, target)), f"{name}: the error names the file")

    print(f"{CHECKS} checks passed")


def _error_of(fn, *args):
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001
        return e
    return None


if __name__ == "__main__":
    main()
