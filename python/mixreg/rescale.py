"""The paper's rescaled prediction (docs/method.md section 4) for any model:

    x' = x_bar + theta_bar (x - x_bar)            rescale_inputs
    h  = y_bar + (f(x') - y_bar) / theta_bar      rescale_logits

x_bar is the mean training input in the network's input space (after
normalisation), y_bar the training class frequencies, theta_bar =
E[max(lambda, 1 - lambda)] (theta_stats(alpha).theta_bar). Both steps run in
the C library (mx_rescale_inputs, mx_rescale_logits), in float32 as mixreg's
own evaluation does."""
import ctypes

import numpy as np

from . import _arrays, _library


def _stats(theta_bar, x_bar=None, y_bar=None):
    s = _library.RescaleStats()
    s.theta_bar = _arrays.theta_bar(theta_bar)
    if x_bar is not None:
        s.input_size = x_bar.size
        s.x_bar = _arrays.f32p(x_bar)
    if y_bar is not None:
        s.num_classes = y_bar.size
        s.y_bar = _arrays.f32p(y_bar)
    return s


def rescale_inputs(x, x_bar, theta_bar):
    """x' = x_bar + theta_bar (x - x_bar) for a batch x of shape (n, *x_bar.shape)
    (or one sample of x_bar's shape; a flat x_bar fits any sample of its size).
    Returns a new float32 array of x's shape."""
    x_bar = _arrays.floats("x_bar", x_bar)
    arr = _arrays.floats("x", x)
    if x_bar.size == 0:
        raise ValueError("x_bar: empty")
    if arr.shape == x_bar.shape:
        n = 1
    elif arr.ndim >= 1 and (arr.shape[1:] == x_bar.shape or (x_bar.ndim == 1 and arr[:1].size == x_bar.size)):
        n = arr.shape[0]
    else:
        raise ValueError(f"x: shape {arr.shape} is not a batch of x_bar's shape {x_bar.shape}")
    out = np.empty_like(arr)
    stats = _stats(theta_bar, x_bar=x_bar)
    if n:
        _library.call_void("mx_rescale_inputs", ctypes.byref(stats), _arrays.f32p(arr), n, _arrays.f32p(out))
    return out


def rescale_logits(logits, y_bar, theta_bar):
    """h = y_bar + (logits - y_bar) / theta_bar for logits of shape (n, classes)
    (or one row of y_bar's shape): the network's output on rescale_inputs(x)
    becomes the rescaled prediction's logits. Returns a new float32 array."""
    y_bar = _arrays.floats("y_bar", y_bar, 1)
    arr = _arrays.floats("logits", logits)
    if y_bar.size == 0:
        raise ValueError("y_bar: empty")
    if arr.shape == y_bar.shape:
        n = 1
    elif arr.ndim == 2 and arr.shape[1] == y_bar.size:
        n = arr.shape[0]
    else:
        raise ValueError(f"logits: shape {arr.shape} is not (n, {y_bar.size}) for y_bar of {y_bar.size} classes")
    out = arr.copy()
    stats = _stats(theta_bar, y_bar=y_bar)
    if n:
        _library.call_void("mx_rescale_logits", ctypes.byref(stats), _arrays.f32p(out), n)
    return out


def training_statistics(batches, num_classes):
    """(x_bar, y_bar) of a training set given as an iterable of (inputs,
    labels) batches, inputs already normalised as the network sees them, no
    mixing: x_bar the per-coordinate mean input (float32, a sample's shape),
    y_bar the class frequencies (float32, num_classes). Accumulated in
    float64. For a PyTorch DataLoader: training_statistics(((x.numpy(),
    y.numpy()) for x, y in loader), num_classes)."""
    total = None
    counts = np.zeros(int(num_classes), dtype=np.float64)
    n = 0
    for inputs, labels in batches:
        x = np.asarray(inputs, dtype=np.float64)
        y = _arrays.labels("labels", np.asarray(labels).reshape(-1), x.shape[0], num_classes)
        total = x.sum(axis=0) if total is None else total + x.sum(axis=0)
        counts += np.bincount(y, minlength=num_classes)
        n += x.shape[0]
    if n == 0:
        raise ValueError("training_statistics: no samples")
    return (total / n).astype(np.float32), (counts / n).astype(np.float32)
