"""The divergence rule, shared by the classifier, the online monitor and the range test.

A run has diverged once its loss is non-finite, or :data:`SUSTAINED` values in a row sit above
``best + factor * scale`` (``scale``: the larger of |first loss| and the progress made). One
noisy batch above the limit is not a divergence; three are.
"""

from __future__ import annotations

from typing import overload

import numpy as np

from lrtune.diagnostics._verdict import Finding, Status

SUSTAINED = 3  # values in a row above the limit that make a divergence
DIVERGED_HINT = (
    "The LR is above the stability limit: lower it 3-10x, add warm-up, or clip gradients."
)


def loss_scale(initial: float, best: float | np.ndarray) -> float | np.ndarray:
    """The unit in which a rise of the loss is measured: the larger of |start| and the progress
    made."""
    if isinstance(best, float):  # the monitor's per-batch check: no NumPy scalar work
        return max(abs(initial), initial - best, 1e-12)
    return np.maximum(np.maximum(abs(initial), initial - best), 1e-12)


@overload
def divergence_threshold(initial: float, best: float, explode_factor: float) -> float: ...
@overload
def divergence_threshold(initial: float, best: np.ndarray, explode_factor: float) -> np.ndarray: ...
def divergence_threshold(
    initial: float, best: float | np.ndarray, explode_factor: float
) -> float | np.ndarray:
    """The loss above which a run counts as diverged."""
    return best + explode_factor * loss_scale(initial, best)


def sustained(above: np.ndarray, run_before: int = 0) -> tuple[int | None, int]:
    """Where ``above`` first completes :data:`SUSTAINED` True values in a row (counting the
    ``run_before`` True values that ended the previous batch), and the run it ends with."""
    carried = min(run_before, SUSTAINED - 1)
    flags = np.concatenate((np.ones(carried, dtype=int), above.astype(int)))
    hits = np.convolve(flags, np.ones(SUSTAINED, dtype=int), mode="valid") == SUSTAINED
    first = int(np.argmax(hits)) + SUSTAINED - 1 - carried if hits.any() else None
    below = np.flatnonzero(~above)
    trailing = len(above) - 1 - int(below[-1]) if len(below) else run_before + len(above)
    return first, trailing


def divergence_finding(step: int, loss: float, best: float | None = None,
                       limit: float | None = None) -> Finding:
    """The finding for a run that blew up at ``step`` (non-finite, or above ``limit``)."""
    if limit is None:
        return Finding(Status.DIVERGED, step, f"the loss became {loss} at step {step}",
                       DIVERGED_HINT, {"loss": loss})
    return Finding(
        Status.DIVERGED, step,
        f"the loss exploded to {loss:.4g} at step {step} (best {best:.4g}, limit {limit:.4g})",
        DIVERGED_HINT, {"loss": loss, "best": best, "limit": limit},
    )


def mad_sigma(deviations: np.ndarray) -> float:
    """A standard deviation estimated from the median absolute deviation (robust to the spikes
    and trends the rules look for): 1.4826 * median |deviation| for Gaussian noise."""
    return 1.4826 * float(np.median(np.abs(deviations)))
