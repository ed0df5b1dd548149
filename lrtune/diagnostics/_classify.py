"""Classify a finished (or stopped) run from its loss and gradient-norm history.

Pure NumPy on host arrays: the monitor collects the values, this module only reads them.
The rules compare the run against its own start, so they hold for any loss scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lrtune.diagnostics._verdict import Diagnosis, Finding, Status

MIN_POINTS = 5


@dataclass(frozen=True)
class Thresholds:
    """Knobs of the classifier; the defaults suit mini-batch training of small and large models."""

    explode_factor: float = 4.0  # diverged: loss above best by this many "initial loss scales"
    min_improvement: float = 0.05  # stagnant: the loss fell by less than this fraction of its start
    oscillation_amplitude: float = 0.1  # oscillating: late swings this large relative to the start
    rebound_fraction: float = 0.5  # oscillating: lost this fraction of the progress it had made
    grad_explode_factor: float = 100.0  # gradient norm grew this many times over its start
    grad_vanish_factor: float = 1e-3  # gradient norm shrank to this fraction of its start


def loss_scale(initial: float, best: float | np.ndarray) -> float | np.ndarray:
    """The unit in which a rise of the loss is measured: the larger of |start| and the progress made."""
    return np.maximum(np.maximum(abs(initial), initial - best), 1e-12)


def divergence_threshold(
    initial: float, best: float | np.ndarray, explode_factor: float
) -> float | np.ndarray:
    """The loss above which a run counts as diverged."""
    return best + explode_factor * loss_scale(initial, best)


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average (no lag) with shrinking windows at the edges."""
    if window <= 1 or len(values) < 3:
        return values.astype(float)
    kernel = np.ones(window)
    sums = np.convolve(values, kernel, mode="same")
    counts = np.convolve(np.ones_like(values), kernel, mode="same")
    return sums / counts


def step_noise(values: np.ndarray) -> float:
    """Standard deviation of step-to-step noise, from the median absolute difference: robust to
    the spikes and trends the rules look for."""
    return 1.4826 * float(np.median(np.abs(np.diff(values)))) / math.sqrt(2)


def classify(
    steps: np.ndarray,
    losses: np.ndarray,
    grad_steps: np.ndarray | None = None,
    grad_norms: np.ndarray | None = None,
    thresholds: Thresholds = Thresholds(),
) -> Diagnosis:
    """Diagnose a run from its (step, loss) history and optional (step, gradient norm) history."""
    steps = np.asarray(steps, dtype=np.int64)
    losses = np.asarray(losses, dtype=float)
    findings = [f for f in (_nonfinite(steps, losses),) if f]
    finite = np.isfinite(losses)
    if findings:  # keep only the history before the blow-up for the other rules
        cut = int(np.argmin(finite))
        steps, losses = steps[:cut], losses[:cut]
    if len(losses) < MIN_POINTS:
        if not findings:
            findings.append(Finding(
                Status.INCONCLUSIVE, None, f"only {len(losses)} loss values were reported",
                f"Report the loss at least {MIN_POINTS} times per run to get a diagnosis.",
            ))
        return Diagnosis(tuple(findings))

    window = max(3, len(losses) // 20) | 1
    smoothed = smooth(losses, window)
    initial = float(np.mean(losses[:window]))
    final = float(np.mean(losses[-window:]))
    # standard error of a window mean: the minimum of a smoothed noisy curve sits about two of
    # them below the truth, so progress and rebounds are only counted beyond that
    margin = 2 * step_noise(losses) / math.sqrt(window)
    best_i = int(np.argmin(smoothed))
    best = float(smoothed[best_i])
    scale = float(loss_scale(initial, best))

    if not findings:
        exploded = _exploded(steps, losses, thresholds.explode_factor)
        if exploded:
            findings.append(exploded)
    if grad_norms is not None and len(grad_norms) >= MIN_POINTS:
        findings += _gradient_findings(
            np.asarray(grad_steps), np.asarray(grad_norms, dtype=float), final, initial, thresholds
        )
    progress = max(0.0, initial - best - margin) / scale
    oscillating = _oscillation(steps, losses, initial, best, final, best_i, scale, margin,
                               thresholds)
    if oscillating:
        findings.append(oscillating)
    if progress < thresholds.min_improvement and not oscillating:
        findings.append(Finding(
            Status.STAGNANT, None,
            f"the loss fell only {100 * progress:.1f}% in {int(steps[-1] - steps[0]) + 1} steps "
            f"({initial:.4g} -> best {best:.4g})",
            "The LR is probably too small to make progress: try one that is 10x higher.",
            {"initial": initial, "best": best, "improvement": progress},
        ))
    if not findings:
        findings.append(Finding(
            Status.HEALTHY, None,
            f"the loss fell {100 * progress:.0f}% ({initial:.4g} -> {final:.4g}) and settled",
            "Nothing to fix at this LR.",
            {"initial": initial, "final": final, "improvement": progress},
        ))
    return Diagnosis(tuple(findings))


DIVERGED_HINT = "The LR is above the stability limit: lower it 3-10x, add warm-up, or clip gradients."


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


def _nonfinite(steps: np.ndarray, losses: np.ndarray) -> Finding | None:
    bad = ~np.isfinite(losses)
    if not bad.any():
        return None
    i = int(np.argmax(bad))
    return divergence_finding(int(steps[i]), float(losses[i]))


def _exploded(steps: np.ndarray, losses: np.ndarray, factor: float) -> Finding | None:
    # the same rule the monitor applies online: against the first loss and the best so far,
    # three values in a row above the limit (one noisy batch is not a divergence)
    best = np.minimum.accumulate(losses)
    limits = divergence_threshold(float(losses[0]), best, factor)
    above = losses > limits
    run = np.convolve(above.astype(int), np.ones(3, dtype=int), mode="valid") == 3
    if not run.any():
        return None
    i = int(np.argmax(run)) + 2
    return divergence_finding(int(steps[i]), float(losses[i]), float(best[i]), float(limits[i]))


def _oscillation(
    steps: np.ndarray, losses: np.ndarray, initial: float, best: float, final: float,
    best_i: int, scale: float, margin: float, thresholds: Thresholds,
) -> Finding | None:
    progress = initial - best - margin
    # a run that never made real progress cannot lose it: that is noise around a stagnant loss
    rebound = (progress > thresholds.min_improvement * scale
               and (final - best) > max(thresholds.rebound_fraction * progress, 2 * margin))
    if rebound:
        return Finding(
            Status.OSCILLATING, int(steps[best_i]),
            f"the loss rose from its best {best:.4g} at step {int(steps[best_i])} to {final:.4g} "
            "at the end", OSCILLATING_HINT, {"best": best, "final": final},
        )
    # Swings: block means of the second half that rise by more than mini-batch noise explains
    # (3 standard errors of a difference of two block means), at least twice, by a visible amount.
    late = losses[len(losses) // 2:]
    size = max(5, len(late) // 8)
    count = len(late) // size
    if count < 4:
        return None
    means = late[: count * size].reshape(count, size).mean(axis=1)
    noise = step_noise(late)
    rises = int((np.diff(means) > 3 * noise * math.sqrt(2 / size)).sum())
    amplitude = float(means.max() - means.min()) / scale
    if rises < 2 or amplitude < thresholds.oscillation_amplitude:
        return None
    return Finding(
        Status.OSCILLATING, None,
        f"in the second half the loss rose {rises} times beyond its noise, swinging by "
        f"{100 * amplitude:.0f}% of its scale", OSCILLATING_HINT,
        {"rises": rises, "amplitude": amplitude},
    )


OSCILLATING_HINT = "The LR is too high to settle: lower it 2-3x or decay it earlier."


def _gradient_findings(
    steps: np.ndarray, norms: np.ndarray, final_loss: float, initial_loss: float,
    thresholds: Thresholds,
) -> list[Finding]:
    window = max(3, len(norms) // 20) | 1
    start = float(np.median(norms[:window]))
    if not np.isfinite(start) or start <= 0:
        return []
    finite = np.isfinite(norms)
    ratio = smooth(np.where(finite, norms, np.inf), window) / start
    found = []
    if (~finite).any() or ratio.max() > thresholds.grad_explode_factor:
        i = int(np.argmax(~finite)) if (~finite).any() else int(np.argmax(ratio))
        found.append(Finding(
            Status.EXPLODING_GRADIENTS, int(steps[i]),
            f"the gradient norm grew {ratio[i]:.3g}x over its start ({start:.3g}) by step {int(steps[i])}",
            "Lower the LR or clip the gradient norm (e.g. to 1.0).",
            {"start": start, "ratio": float(ratio[i])},
        ))
    end = float(np.median(norms[-window:]))
    still_learning = final_loss > 0.1 * abs(initial_loss)  # tiny gradients at a tiny loss are fine
    if end < thresholds.grad_vanish_factor * start and still_learning:
        found.append(Finding(
            Status.VANISHING_GRADIENTS, int(steps[-1]),
            f"the gradient norm shrank to {end / start:.2g} of its start ({start:.3g} -> {end:.3g})",
            "The network stopped learning (saturated or dead units, often after a too-large step): "
            "lower the LR, check initialisation and normalisation.",
            {"start": start, "end": end},
        ))
    return found
