"""Every calibration metric `mixreg eval` reports, computed by the same C code
(include/mixreg/metrics.h, calibration.h): accuracy, top-5 accuracy (more
than 5 classes), NLL, ECE, adaptive (equal-mass) ECE, MCE, Brier score and
the reliability data, over `bins` equal-width confidence bins (15 by
default, as `eval --bins`); and temperature scaling: fit_temperature,
temperature_nll, softmax."""
import ctypes

import numpy as np

from . import _arrays, _library

DEFAULT_BINS = 15


def _metrics(function, scores, labels, bins):
    bins = int(bins)
    if bins < 1:
        raise ValueError(f"bins: {bins}, expected at least 1")
    n, classes = scores.shape
    labels = _arrays.labels("labels", labels, n, classes)
    m = _library.Metrics()
    conf, acc = np.zeros(bins), np.zeros(bins)
    count = np.zeros(bins, dtype=np.uintp)
    _library.call(function, _arrays.f32p(scores), _arrays.i32p(labels), n, classes, bins, ctypes.byref(m),
                  _arrays.f64p(conf), _arrays.f64p(acc), _arrays.sizep(count))
    out = {"accuracy": m.accuracy}
    if m.top5 >= 0:  # reported only with more than 5 classes, as the CLI does
        out["top5"] = m.top5
    out.update({"nll": m.nll, "ece": m.ece, "ece_adaptive": m.ece_adaptive, "mce": m.mce, "brier": m.brier,
                "n": int(m.n), "reliability": {"confidence": conf.tolist(), "accuracy": acc.tolist(),
                                               "count": [int(c) for c in count]}})
    return out


def metrics_from_logits(logits, labels, bins=DEFAULT_BINS, temperature=1.0):
    """The metrics of softmax(logits / temperature) against integer labels, as a
    dict with the keys of `mixreg eval --json` (accuracy, top5 with more than 5
    classes, nll, ece, ece_adaptive, mce, brier, n) plus "reliability"
    (per-bin mean confidence, accuracy and count). logits: (n, classes).
    Softmax and NLL in double from the log-softmax, as mixreg's evaluation."""
    scores = _arrays.score_matrix("logits", logits)
    if temperature != 1.0:
        t = float(temperature)
        if not (t > 0 and np.isfinite(t)):
            raise ValueError(f"temperature {temperature!r}: expected a finite value > 0")
        scores = scores.copy()  # never the caller's array
        # Scaled in float32 in place, exactly as eval's temperature modes do.
        _library.call_void("mx_logits_scale", _arrays.f32p(scores), scores.size, t)
    return _metrics("mx_metrics_from_logits", scores, labels, bins)


def metrics_from_probs(probs, labels, bins=DEFAULT_BINS):
    """The same metrics from probabilities (rows summing to 1), e.g. a
    predictions file's columns 2.. or another framework's softmax; NLL uses
    -log(max(p, 1e-12))."""
    return _metrics("mx_metrics_from_probs", _arrays.score_matrix("probs", probs), labels, bins)


def fit_temperature(logits, labels):
    """The temperature T in [0.05, 20] minimising the mean NLL of
    softmax(logits / T) (mx_temperature_fit; eval's --temperature fit). Fit
    it on held-out data, then report metrics_from_logits(test_logits,
    test_labels, temperature=T)."""
    scores = _arrays.score_matrix("logits", logits)
    n, classes = scores.shape
    labels = _arrays.labels("labels", labels, n, classes)
    t = ctypes.c_double(1.0)
    _library.call("mx_temperature_fit", _arrays.f32p(scores), _arrays.i32p(labels), n, classes, ctypes.byref(t))
    return t.value


def temperature_nll(logits, labels, temperature):
    """The mean NLL of softmax(logits / temperature), in double."""
    scores = _arrays.score_matrix("logits", logits)
    n, classes = scores.shape
    labels = _arrays.labels("labels", labels, n, classes)
    out = ctypes.c_double()
    _library.call("mx_temperature_nll", _arrays.f32p(scores), _arrays.i32p(labels), n, classes,
                  float(temperature), ctypes.byref(out))
    return out.value


def softmax(logits, temperature=1.0):
    """softmax(logits / temperature) row by row (in double, stored float32)."""
    scores = _arrays.score_matrix("logits", logits)
    t = float(temperature)
    if not (t > 0 and np.isfinite(t)):
        raise ValueError(f"temperature {temperature!r}: expected a finite value > 0")
    out = np.empty_like(scores)
    _library.call_void("mx_softmax_temperature", _arrays.f32p(scores), scores.shape[0], scores.shape[1], t,
                       _arrays.f32p(out))
    return out
