"""Lag-free smoothing of a range-test curve in log-LR, with its slope.

A local-linear Gaussian-kernel regression in ``log10(lr)``: centred, so it does not lag behind
the curve the way the exponential moving average of other finders does (that lag pushes their
steepest-slope point up the LR axis), and its bandwidth is in decades of LR, so the same
bandwidth smooths the same stretch of curve whatever the number of iterations. It is a linear
operator on the losses, so a bootstrap smooths hundreds of resampled curves with one product.
"""

from __future__ import annotations

import numpy as np

BANDWIDTH = 0.15  # kernel standard deviation, in decades of LR


def smoother(log_lrs: np.ndarray, bandwidth: float = BANDWIDTH) -> tuple[np.ndarray, np.ndarray]:
    """Matrices ``(V, D)``: ``V @ y`` is the smoothed curve, ``D @ y`` its slope d y / d
    log10(lr)."""
    dx = log_lrs[None, :] - log_lrs[:, None]  # row i: offsets of every point from point i
    w = np.exp(-0.5 * (dx / bandwidth) ** 2)
    s0 = w.sum(axis=1, keepdims=True)
    s1 = (w * dx).sum(axis=1, keepdims=True)
    s2 = (w * dx * dx).sum(axis=1, keepdims=True)
    det = np.maximum(s0 * s2 - s1 * s1, 1e-300)
    values = w * (s2 - s1 * dx) / det
    slopes = w * (s0 * dx - s1) / det
    return values, slopes

