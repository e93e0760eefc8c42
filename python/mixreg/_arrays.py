"""Argument checks shared by the NumPy-facing functions: the C library trusts
its sizes, so shapes, dtypes and label ranges are validated here, and arrays
are handed over as C-contiguous float32 / int32 copies when they are not
already."""
import ctypes

import numpy as np

from ._library import MixregArgumentError


def floats(name, a, ndim=None):
    """a as a C-contiguous float32 array (a copy unless it already is one)."""
    arr = np.asarray(a)
    if arr.dtype.kind != "f":
        raise TypeError(f"{name}: expected a float32 or float64 array, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def score_matrix(name, a):
    """An (n, classes) float32 matrix with n >= 1 and classes >= 1."""
    arr = floats(name, a, 2)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: expected an (n, classes) array with n, classes >= 1, got shape {arr.shape}")
    return arr


def labels(name, a, n, classes):
    """Integer labels, one per row, each in [0, classes), as int32."""
    arr = np.asarray(a)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected an integer array, got dtype {arr.dtype}")
    if arr.shape != (n,):
        raise ValueError(f"{name}: expected shape ({n},) (one label per row), got {arr.shape}")
    if n and (arr.min() < 0 or arr.max() >= classes):
        bad = arr[(arr < 0) | (arr >= classes)][0]
        raise ValueError(f"{name}: label {bad} is outside [0, {classes})")
    return np.ascontiguousarray(arr, dtype=np.int32)


def theta_bar(value):
    """theta_bar = E[max(lambda, 1 - lambda)] lies in [0.5, 1]."""
    t = float(value)
    if not 0.5 <= t <= 1.0:
        raise MixregArgumentError(f"theta_bar {value!r} is outside [0.5, 1] (it is E[max(lambda, 1 - lambda)])")
    return t


def f32p(arr):
    return arr.ctypes.data_as(ctypes.POINTER(ctypes.c_float))


def i32p(arr):
    return arr.ctypes.data_as(ctypes.POINTER(ctypes.c_int32))


def f64p(arr):
    return arr.ctypes.data_as(ctypes.POINTER(ctypes.c_double))


def sizep(arr):
    return arr.ctypes.data_as(ctypes.POINTER(ctypes.c_size_t))
