"""Classify a finished (or stopped) run from its loss, gradient-norm and held-out loss history.

Pure NumPy on host arrays: the monitor collects the values, this module only reads them.
The rules compare the run against the untrained model's loss (chance level for a classifier),
read from its first few losses (:func:`untrained_loss`), so they hold for any loss scale and a
spike in the first steps cannot raise the start a run is measured from. A held-out loss, when
given, judges where the run ended: learning that does not carry over to held-out data counts for
nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lrtune.diagnostics._divergence import (
    divergence_finding, divergence_threshold, loss_scale, mad_sigma, sustained,
)
from lrtune.diagnostics._verdict import Diagnosis, Finding, Status

MIN_POINTS = 5
MIN_VAL_POINTS = 3
START_LOSSES = 5
SATURATED = 1e-6  # a final training loss this small a share of the untrained one is zero


@dataclass(frozen=True)
class Thresholds:
    """Knobs of the classifier; the defaults suit mini-batch training of small and large models."""

    explode_factor: float = 4.0  # diverged: loss above best by this many "initial loss scales"
    min_improvement: float = 0.1  # stagnant: the loss fell by less than this fraction of its start
    oscillation_amplitude: float = 0.1  # oscillating: late swings this large relative to the start
    rebound_fraction: float = 0.5  # oscillating: lost this fraction of the progress it had made
    collapse_rise: float = 0.1  # collapsed: rose this far above its start (in loss scales) first
    overfit_ratio: float = 2.0  # overfitting: the held-out loss ended this many times its best
    grad_explode_factor: float = 100.0  # gradient norm grew this many times over its start
    grad_vanish_factor: float = 1e-3  # gradient norm shrank to this fraction of its start


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average (no lag) with shrinking windows at the edges.

    From running sums, in time linear in the length (a convolution with a window of a twentieth
    of the run took 0.8 s at 200,000 steps and grew with the square); a non-finite value makes
    every window that holds it non-finite, as in a sum.
    """
    values = np.asarray(values, dtype=float)
    n = len(values)
    if window <= 1 or n < 3:
        return values.copy()
    at = np.arange(n)
    low, high = np.maximum(at - window // 2, 0), np.minimum(at + window // 2 + 1, n)

    def window_sums(x: np.ndarray) -> np.ndarray:
        running = np.concatenate(([0.0], np.cumsum(x, dtype=float)))
        return running[high] - running[low]

    finite = np.isfinite(values)
    sums = window_sums(np.where(finite, values, 0.0))
    if not finite.all():
        up, down = window_sums(values == np.inf) > 0, window_sums(values == -np.inf) > 0
        sums[up], sums[down] = np.inf, -np.inf
        sums[(window_sums(np.isnan(values)) > 0) | (up & down)] = np.nan
    return sums / (high - low)


def step_noise(values: np.ndarray) -> float:
    """Standard deviation of step-to-step noise (a difference of two steps has sqrt(2) of it)."""
    return mad_sigma(np.diff(values)) / math.sqrt(2)


def untrained_loss(losses: np.ndarray, noise: float) -> float:
    """The untrained model's loss: what the run is measured from.

    The first loss alone is one mini-batch's: on small noisy batches it sits well above or below
    the model's loss (a 32-sample MSE batch read 0.58 to 1.97 over seeds where the untrained
    validation loss was 1.35), so a run that barely moved looked as if it had learned, or one that
    learned as if it had fallen back to its start. The median of the first few losses is steadier,
    unless they climb more than two ``noise`` (the step noise) above the first (an early spike
    of a too-high LR): then the first one, which no update has touched.
    """
    first = float(losses[0])
    early = float(np.median(losses[:START_LOSSES]))
    return early if early <= first + 2 * noise else first


def classify(
    steps: np.ndarray,
    losses: np.ndarray,
    grad_steps: np.ndarray | None = None,
    grad_norms: np.ndarray | None = None,
    thresholds: Thresholds = Thresholds(),
    *,
    val_steps: np.ndarray | None = None,
    val_losses: np.ndarray | None = None,
) -> Diagnosis:
    """Diagnose a run from its (step, loss) history, and the optional (step, gradient norm)
    and (step, held-out loss) histories."""
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
    noise = step_noise(losses)
    initial = untrained_loss(losses, noise)
    final = float(np.mean(losses[-window:]))
    # standard error of a window mean: the minimum of a smoothed noisy curve sits about two of
    # them below the truth, so progress and rebounds are only counted beyond that
    margin = 2 * noise / math.sqrt(window)
    best_i = int(np.argmin(smoothed))
    best = float(smoothed[best_i])
    scale = float(loss_scale(initial, best))

    # the held-out loss of the final model, when given: what the run is worth, and, unlike the
    # training loss, it shows a network that memorised or was ruined yet still fits its batches
    vals = np.asarray(val_losses, dtype=float) if val_losses is not None else np.empty(0)
    held_out = float(vals[-1]) if len(vals) else None
    if held_out is not None and not math.isfinite(held_out):
        held_out = math.inf
    if not findings:
        exploded = _exploded(steps, losses, thresholds.explode_factor)
        if exploded:
            findings.append(exploded)
    progress = max(0.0, initial - best - margin) / scale
    if held_out is not None:  # learning that does not carry over to held-out data is none
        progress = min(progress, max(0.0, initial - held_out) / scale)
    collapsed = _collapse(steps, losses, smoothed, initial, final, held_out, scale, margin,
                          progress, thresholds) or _saturated(steps, losses, initial, final,
                                                              thresholds)
    if collapsed:
        findings.append(collapsed)
    rise = (_held_out_rise(np.asarray(val_steps), vals, steps, smoothed, thresholds)
            if len(vals) >= MIN_VAL_POINTS else None)
    if rise:
        findings.append(rise)
    end_loss = (float(np.median(vals[-MIN_VAL_POINTS:])) if len(vals) >= MIN_VAL_POINTS
                else final)
    if grad_norms is not None and len(grad_norms) >= MIN_POINTS:
        findings += _gradient_findings(
            np.asarray(grad_steps), np.asarray(grad_norms, dtype=float), end_loss, initial,
            thresholds,
        )
    unsettled = rise is not None and rise.status is Status.OSCILLATING
    oscillating = None if collapsed or unsettled else _oscillation(
        steps, losses, initial, best, final, best_i, scale, margin, thresholds)
    if oscillating:
        findings.append(oscillating)
    if (progress < thresholds.min_improvement and not oscillating and not collapsed
            and not unsettled):
        what = (f"best {best:.4g}" if held_out is None
                else f"best {best:.4g}, held-out {held_out:.4g}")
        length = int(steps[-1] - steps[0]) + 1
        fall = initial - best
        if fall >= thresholds.min_improvement * scale > fall - margin:  # a fall the noise hides
            # (a short run whose loss jumps from step to step: too few steps to tell a too-high
            # LR's noise from a too-low one's creep, so no direction is given)
            evidence = (f"the loss fell {initial:.4g} -> {what} in {length} steps, only "
                        f"{100 * progress:.1f}% beyond its step-to-step noise (sd {noise:.2g})")
            hint = ("Nothing learned beyond the noise: a loss that jumps from step to step "
                    "wants a lower LR (or larger batches), a flat one a higher LR.")
        else:
            evidence = (f"the loss fell only {100 * progress:.1f}% in {length} steps "
                        f"({initial:.4g} -> {what})")
            hint = "The LR is probably too small to make progress: try one that is 10x higher."
        findings.append(Finding(Status.STAGNANT, None, evidence, hint,
                                {"initial": initial, "best": best, "improvement": progress}))
    if not findings:
        ended = f"{final:.4g}" if held_out is None else f"{final:.4g}, held-out {held_out:.4g}"
        findings.append(Finding(
            Status.HEALTHY, None,
            f"the loss fell {100 * progress:.0f}% ({initial:.4g} -> {ended}) and settled",
            "No sign of a wrong LR in this run; only runs at other LRs (a study) can show "
            "whether another one does better.",
            {"initial": initial, "final": final, "improvement": progress},
        ))
    return Diagnosis(tuple(findings))


def _nonfinite(steps: np.ndarray, losses: np.ndarray) -> Finding | None:
    bad = ~np.isfinite(losses)
    if not bad.any():
        return None
    i = int(np.argmax(bad))
    return divergence_finding(int(steps[i]), float(losses[i]))


def _exploded(steps: np.ndarray, losses: np.ndarray, factor: float) -> Finding | None:
    # the rule the monitor applies online, against the first loss and the best so far
    best = np.minimum.accumulate(losses)
    limits = divergence_threshold(float(losses[0]), best, factor)
    i, _ = sustained(losses > limits)
    if i is None:
        return None
    return divergence_finding(int(steps[i]), float(losses[i]), float(best[i]), float(limits[i]))


COLLAPSED_HINT = ("The LR destroyed what the network had (or could have) learned: lower it "
                  "3-10x; a higher LR cannot help a run that already overshot.")
MEMORISED_HINT = ("Nothing the network learned carries over to held-out data (it memorised, or "
                  "a too-large step ruined it): lower the LR 3-10x or regularise more.")


def _collapse(
    steps: np.ndarray, losses: np.ndarray, smoothed: np.ndarray, initial: float, final: float,
    held_out: float | None, scale: float, margin: float, progress: float,
    thresholds: Thresholds,
) -> Finding | None:
    """A run that ended no better than its untrained start after it had left it (rose above it,
    or fell and came back, or fell while its held-out loss did not), or that rose and then
    learned too little to count: a too-high LR, unlike a too-low one that never moved (both end
    near the start, and they need opposite advice).

    A window mean of training losses is uncertain by ``margin``; a held-out loss is one
    evaluation of a whole set, so it is held to the progress threshold alone: with the margin,
    a 50-step RMSprop run on batches of 8 whose held-out loss fell from 0.73 to 0.27 was
    "collapsed", as was every run of a study's scan on that recipe.
    """
    end = final if held_out is None else held_out
    within = thresholds.min_improvement * scale
    at_chance = end >= initial - (within if held_out is not None else max(2 * margin, within))
    rise = max(2 * margin, thresholds.collapse_rise * scale)
    # a rise above the start that is a rise: up from a loss the run had reached. Where the loss
    # falls fast, the median ``initial`` is taken from lies far below the first losses, and the
    # run's own start read as a rise (the 9-step scan runs of a transformer that learned most
    # were "collapsed" at their first step)
    rose = bool(np.any((smoothed > initial + rise)
                       & (smoothed - np.minimum.accumulate(losses) > rise)))
    fell = initial - float(smoothed.min()) > max(4 * margin, 4 * thresholds.min_improvement * scale)
    if not (at_chance and (rose or fell) or rose and progress < thresholds.min_improvement):
        return None
    spike = int(np.argmax(losses - np.minimum.accumulate(losses)))  # the largest climb
    how = (f"after rising to {losses[spike]:.4g} at step {int(steps[spike])}" if rose
           else f"after falling to {smoothed.min():.4g}")
    what = "the loss" if held_out is None else "the held-out loss"
    if at_chance:
        evidence = (f"{what} ended at {end:.4g}, no better than the untrained model's "
                    f"{initial:.4g}, {how}")
    else:  # the share learned is the lesser of the training loss's (beyond its noise) and the
        # held-out loss's: say which ended where, not that the held-out loss fell that little
        ended = f"{final:.4g}" if held_out is None else f"{final:.4g}, held-out {held_out:.4g}"
        evidence = (f"the loss rose to {losses[spike]:.4g} at step {int(steps[spike])} and then "
                    f"learned only {100 * progress:.0f}% of the way beyond its noise "
                    f"({initial:.4g} -> {ended})")
    return Finding(
        Status.COLLAPSED, int(steps[spike]) if rose else None, evidence,
        COLLAPSED_HINT if held_out is None or rose else MEMORISED_HINT,
        {"initial": initial, "final": end, "peak": float(losses[spike])},
    )


def _saturated(steps: np.ndarray, losses: np.ndarray, initial: float, final: float,
               thresholds: Thresholds) -> Finding | None:
    """A loss that blew up (above the divergence limit, if not for long enough to count as
    diverged) and then fell to zero: a too-large step left the weights so large that the
    outputs saturate, and a classifier whose logits saturate fits its batches with a loss and a
    gradient of zero while it is worse than untrained on held-out data. A linear classifier
    under AdaGrad at 5-100x its best LR ends so (validation half of the suite: training loss 0,
    validation loss 1.3-11x chance), and a good run does not: a loss a millionth of its start
    right after a blow-up is no learning."""
    best = np.minimum.accumulate(losses)
    above = losses > divergence_threshold(float(losses[0]), best, thresholds.explode_factor)
    if not above.any() or final > SATURATED * initial:
        return None
    spike = int(np.argmax(losses))
    return Finding(
        Status.COLLAPSED, int(steps[spike]),
        f"the loss blew up to {losses[spike]:.4g} at step {int(steps[spike])}, then fell to "
        f"{final:.2g}: outputs saturated by a too-large step, not learning",
        COLLAPSED_HINT, {"initial": initial, "final": final, "peak": float(losses[spike])},
    )


def _held_out_rise(
    val_steps: np.ndarray, vals: np.ndarray, steps: np.ndarray, smoothed: np.ndarray,
    thresholds: Thresholds,
) -> Finding | None:
    """The held-out loss ended well above its best: overfitting while the training loss kept
    falling; otherwise the steps are too large to settle (the training loss did not fall either,
    so no memorising explains the rise).

    "Well above" is :attr:`Thresholds.overfit_ratio` times the best. A best at or below zero (a
    negative log-likelihood, an error rate that touched 0) has no ratio: the rise is then
    measured in the held-out loss's own scale (:func:`loss_scale` of its first value and best).
    """
    finite = np.isfinite(vals)
    vals = np.where(finite, vals, np.inf)
    best_i = int(np.argmin(vals))
    end = float(np.median(vals[-MIN_VAL_POINTS:]))  # one lucky or unlucky evaluation is not the end
    best = float(vals[best_i])
    ratio = thresholds.overfit_ratio
    if best > 0:
        limit, how_far = ratio * best, f"{end / best:.1f}x its best"
    else:
        first = float(vals[int(np.argmax(finite))])
        limit = best + (ratio - 1) * float(loss_scale(first, best))
        how_far = f"{end - best:.4g} above its best"
    if not end > limit:
        return None
    train_then = float(np.interp(val_steps[best_i], steps, smoothed))
    rose = (f"the held-out loss rose to {end:.4g}, {how_far} ({best:.4g} at step "
            f"{int(val_steps[best_i])}), while the training loss")
    values = {"best": best, "end": end, "best_step": int(val_steps[best_i])}
    if smoothed[-1] < train_then:
        return Finding(
            Status.OVERFITTING, int(val_steps[best_i]),
            f"{rose} fell from {train_then:.4g} to {smoothed[-1]:.4g}",
            "The run stopped generalising: lower the LR 3x, stop at the best held-out step, or "
            "regularise more.", values,
        )
    return Finding(
        Status.OSCILLATING, int(val_steps[best_i]),
        f"{rose} did not fall ({train_then:.4g} -> {smoothed[-1]:.4g})", OSCILLATING_HINT, values,
    )


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
    steps: np.ndarray, norms: np.ndarray, end_loss: float, initial_loss: float,
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
            f"the gradient norm grew {ratio[i]:.3g}x over its start ({start:.3g}) "
            f"by step {int(steps[i])}",
            "Lower the LR or clip the gradient norm (e.g. to 1.0).",
            {"start": start, "ratio": float(ratio[i])},
        ))
    end = float(np.median(norms[-window:]))
    # tiny gradients at a tiny loss are fine (the held-out loss, when reported, is the judge)
    still_learning = end_loss > 0.1 * abs(initial_loss)
    if end < thresholds.grad_vanish_factor * start and still_learning:
        found.append(Finding(
            Status.VANISHING_GRADIENTS, int(steps[-1]),
            f"the gradient norm shrank to {end / start:.2g} of its start "
            f"({start:.3g} -> {end:.3g})",
            "The network stopped learning (saturated or dead units, often after a too-large step): "
            "lower the LR, check initialisation and normalisation.",
            {"start": start, "end": end},
        ))
    return found
