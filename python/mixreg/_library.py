"""Finding and calling libmixreg.so through ctypes (no compiled extension).

The library is looked for, in this order:

1. the path in the environment variable MIXREG_LIBRARY (a file; when set, no
   other place is tried, so a wrong path is reported rather than passed over);
2. next to the package: mixreg/libmixreg.so* (copied there before building a
   wheel, or put there by hand);
3. the system loader's path: "libmixreg.so" as dlopen finds it
   (LD_LIBRARY_PATH, /etc/ld.so.cache after `cmake --install` and `ldconfig`,
   the default directories), then ctypes.util.find_library("mixreg").

It is loaded on the first call that needs it, so reading runs and
mixreg.torch work without it. Every C function returning an mx_status is
checked: a failure raises MixregError (or a subclass) with the library's own
one-line message (mx_error_message()).
"""
import ctypes
import ctypes.util
import glob
import os
import threading

ENV_VARIABLE = "MIXREG_LIBRARY"

# mx_status (include/mixreg/error.h)
MX_OK, MX_ERR_ARG, MX_ERR_IO, MX_ERR_FORMAT, MX_ERR_NOMEM, MX_ERR_NUMERIC = range(6)


class MixregError(RuntimeError):
    """A call into the mixreg library failed; str() is the library's message,
    .status its mx_status code."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class LibraryNotFoundError(MixregError, OSError):
    """libmixreg.so could not be found or loaded."""


class MixregArgumentError(MixregError, ValueError):
    """The library refused an argument (MX_ERR_ARG)."""


class MixregNumericError(MixregError, ArithmeticError):
    """NaN, infinity or another numerical failure (MX_ERR_NUMERIC)."""


class MixregMemoryError(MixregError, MemoryError):
    """The library ran out of memory (MX_ERR_NOMEM)."""


for _cls in (MixregError, LibraryNotFoundError, MixregArgumentError, MixregNumericError, MixregMemoryError):
    _cls.__module__ = "mixreg"  # shown as mixreg.MixregError, where users import it from

_ERROR_CLASSES = {MX_ERR_ARG: MixregArgumentError, MX_ERR_NUMERIC: MixregNumericError,
                  MX_ERR_NOMEM: MixregMemoryError}


class ThetaStats(ctypes.Structure):
    """mx_theta_stats (include/mixreg/theta.h)."""
    _fields_ = [("alpha", ctypes.c_double), ("theta_bar", ctypes.c_double), ("theta_var", ctypes.c_double),
                ("gamma2", ctypes.c_double), ("label_smoothing", ctypes.c_double)]


class Metrics(ctypes.Structure):
    """mx_metrics (include/mixreg/metrics.h)."""
    _fields_ = [("n", ctypes.c_size_t), ("accuracy", ctypes.c_double), ("nll", ctypes.c_double),
                ("ece", ctypes.c_double), ("mce", ctypes.c_double), ("brier", ctypes.c_double),
                ("top5", ctypes.c_double), ("ece_adaptive", ctypes.c_double)]


class RescaleStats(ctypes.Structure):
    """mx_rescale_stats (include/mixreg/rescale.h)."""
    _fields_ = [("theta_bar", ctypes.c_double), ("input_size", ctypes.c_size_t), ("num_classes", ctypes.c_size_t),
                ("x_bar", ctypes.POINTER(ctypes.c_float)), ("y_bar", ctypes.POINTER(ctypes.c_float))]


_f32p = ctypes.POINTER(ctypes.c_float)
_i32p = ctypes.POINTER(ctypes.c_int32)
_f64p = ctypes.POINTER(ctypes.c_double)
_sizep = ctypes.POINTER(ctypes.c_size_t)
_size = ctypes.c_size_t
_double = ctypes.c_double
_status = ctypes.c_int

# name: (restype, argtypes); restype _status is checked after every call.
_SIGNATURES = {
    "mx_error_message": (ctypes.c_char_p, []),
    "mx_error_clear": (None, []),
    "mx_theta_stats_compute": (_status, [_double, ctypes.POINTER(ThetaStats)]),
    "mx_theta_stats_mixed": (_status, [_double, _double, ctypes.POINTER(ThetaStats)]),
    "mx_metrics_from_logits": (_status, [_f32p, _i32p, _size, _size, _size, ctypes.POINTER(Metrics), _f64p, _f64p,
                                         _sizep]),
    "mx_metrics_from_probs": (_status, [_f32p, _i32p, _size, _size, _size, ctypes.POINTER(Metrics), _f64p, _f64p,
                                        _sizep]),
    "mx_temperature_fit": (_status, [_f32p, _i32p, _size, _size, _f64p]),
    "mx_temperature_nll": (_status, [_f32p, _i32p, _size, _size, _double, _f64p]),
    "mx_softmax_temperature": (None, [_f32p, _size, _size, _double, _f32p]),
    "mx_logits_scale": (None, [_f32p, _size, _double]),
    "mx_rescale_inputs": (None, [ctypes.POINTER(RescaleStats), _f32p, _size, _f32p]),
    "mx_rescale_logits": (None, [ctypes.POINTER(RescaleStats), _f32p, _size]),
}

_lock = threading.Lock()
_library = None
_library_path = None


def _candidates_next_to_package():
    here = os.path.dirname(os.path.abspath(__file__))
    # libmixreg.so first, then versioned names (libmixreg.so.0.1, ...), shortest first.
    return sorted(glob.glob(os.path.join(here, "libmixreg.so*")), key=len)


def _not_found(why):
    return LibraryNotFoundError(
        f"mixreg: libmixreg.so {why}: set {ENV_VARIABLE} to its path (e.g. build/libmixreg.so), put it next to "
        f"the package ({os.path.dirname(os.path.abspath(__file__))}), or install it where the system loader finds "
        f"it (cmake --install, then ldconfig)")


def _open():
    path = os.environ.get(ENV_VARIABLE)
    if path:
        if not os.path.isfile(path):
            raise _not_found(f"not found at {ENV_VARIABLE}={path}")
        try:
            return ctypes.CDLL(os.path.abspath(path)), os.path.abspath(path)
        except OSError as e:
            raise _not_found(f"at {ENV_VARIABLE}={path} could not be loaded ({e})") from None
    errors = []
    for candidate in _candidates_next_to_package():
        try:
            return ctypes.CDLL(candidate), candidate
        except OSError as e:
            errors.append(str(e))
    for name in ("libmixreg.so", ctypes.util.find_library("mixreg")):
        if not name:
            continue
        try:
            return ctypes.CDLL(name), name
        except OSError as e:
            errors.append(str(e))
    # A library that exists but does not load (a missing dependency) says why.
    broken = [e for e in errors if "cannot open shared object file" not in e or "libmixreg" not in e]
    raise _not_found(f"could not be loaded ({broken[0]})" if broken else "not found") from None


def _bind(lib):
    for name, (restype, argtypes) in _SIGNATURES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise LibraryNotFoundError(f"mixreg: {_library_path} lacks {name}: it is older than this package; "
                                       f"rebuild the library") from None
        fn.restype = restype
        fn.argtypes = argtypes


def library():
    """The loaded ctypes.CDLL of libmixreg (loaded on the first call)."""
    global _library, _library_path
    with _lock:
        if _library is None:
            lib, path = _open()
            _library_path = path
            _bind(lib)
            _library = lib
    return _library


def library_path():
    """Where libmixreg was loaded from (loading it if not yet done)."""
    library()
    return _library_path


def call(name, *args):
    """Calls an mx_status function; raises MixregError with the C message on failure."""
    lib = library()
    status = getattr(lib, name)(*args)
    if status != MX_OK:
        message = lib.mx_error_message()
        text = message.decode("utf-8", "replace") if message else f"{name} failed"
        raise _ERROR_CLASSES.get(status, MixregError)(text, status)


def call_void(name, *args):
    return getattr(library(), name)(*args)
