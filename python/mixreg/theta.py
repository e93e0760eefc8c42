"""The paper's statistics of theta = max(lambda, 1 - lambda), lambda ~ Beta(alpha,
alpha), from the C library (include/mixreg/theta.h; `mixreg theta`)."""
import ctypes
from typing import NamedTuple

from . import _library


class ThetaStatistics(NamedTuple):
    """What `mixreg theta --json` prints: theta_bar = E[theta], theta_var =
    Var(theta) (sigma^2), gamma2 = E[(1 - theta)^2] (gamma^2) and the implied
    label smoothing 1 - theta_bar."""
    alpha: float
    mix_prob: float
    theta_bar: float
    theta_var: float
    gamma2: float
    label_smoothing: float


def theta_stats(alpha, mix_prob=1.0):
    """Statistics of theta for lambda ~ Beta(alpha, alpha); alpha = 0 is ERM
    (theta = 1). With mix_prob < 1 (`--mix-prob`, timm's mixup_prob) a
    sample is mixed at all only with that probability, theta = 1 otherwise.
    alpha outside [0, 1e6] or mix_prob outside [0, 1] raise
    MixregArgumentError with the library's message."""
    out = _library.ThetaStats()
    alpha, mix_prob = float(alpha), float(mix_prob)
    _library.call("mx_theta_stats_mixed", alpha, mix_prob, ctypes.byref(out))
    return ThetaStatistics(out.alpha, mix_prob, out.theta_bar, out.theta_var, out.gamma2, out.label_smoothing)
