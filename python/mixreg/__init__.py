"""mixreg from Python: the C library's Mixup statistics, rescaled prediction
and calibration metrics on NumPy arrays (through ctypes: no compiled
extension), and reading run directories.

    import mixreg
    mixreg.theta_stats(1.0).theta_bar                      # 0.75 for alpha = 1
    x_r = mixreg.rescale_inputs(x, x_bar, theta_bar)       # the paper's rescaled prediction,
    logits = mixreg.rescale_logits(model(x_r), y_bar, theta_bar)   # for any model
    mixreg.metrics_from_logits(logits, labels)             # what `mixreg eval` reports
    run = mixreg.load_run("runs/20261124-221500")          # config, metrics, weights

libmixreg.so is found through $MIXREG_LIBRARY, then next to this package,
then the system loader's path (mixreg/_library.py; docs/python.md).
mixreg.torch (needs PyTorch) builds the PyTorch module of a run.
"""
from ._library import (LibraryNotFoundError, MixregArgumentError, MixregError, MixregMemoryError,
                       MixregNumericError, library_path)
from .calibration import (DEFAULT_BINS, fit_temperature, metrics_from_logits, metrics_from_probs, softmax,
                          temperature_nll)
from .rescale import rescale_inputs, rescale_logits, training_statistics
from .run import Run, load_run, read_config, read_metrics
from .safetensors import FormatError, read_safetensors
from .theta import ThetaStatistics, theta_stats

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_BINS", "FormatError", "LibraryNotFoundError", "MixregArgumentError", "MixregError", "MixregMemoryError",
    "MixregNumericError", "Run", "ThetaStatistics", "fit_temperature", "library_path", "load_run",
    "metrics_from_logits", "metrics_from_probs", "read_config", "read_metrics", "read_safetensors",
    "rescale_inputs", "rescale_logits", "softmax", "temperature_nll", "theta_stats", "training_statistics",
]
