"""Read a range-test curve: where it diverged, the suggestion and its uncertainty, the verdict.

The rule, and the evidence behind it. Reference: the best LR of full runs on a log grid (5 points
per decade, 3 seeds each, ``benchmarks/reference.py``). Rules 1-3 and 6 were found on single
sweeps of 0.1 and 0.2 full runs from 1e-7 to 10 from each task's fresh model, seeds 0-4, and kept
for the passes of :mod:`lrtune.finder._plan`; ratios are LR / grid-best LR.

1. **The knee of the lag-free curve is the feature to read**: where the passes' smoothed mean
   has made 80% of its fall from its first point to its minimum (:data:`FALL_LEFT`). Its first
   form was the minimum, not the steepest slope: at 0.2 runs the minimum of the centred log-LR
   smoothing sits at 0.57-1.44x on the tiny transformer (AdamW, warm-up + cosine), 0.71-1.24x on
   the 1-D CNN (Adam, cosine) and 3.9-5.3x on the digits MLP (SGD + momentum, step decay), and
   halving the sweep moves it 1.7x (median; 2.7x at most), while the steepest slope sits at
   0.12-0.23x on the two Adam tasks and moves 2.4x (median; 5.9x at most): a sweep that spends
   more steps per decade makes progress at lower LRs. Short probes from the same snapshot (40
   steps at each of several fixed LRs) land where the minimum does at 4-8x the cost per
   candidate, so the sweep is kept. But the bottom of the passes' mean is flat, or dips twice
   after a partial blow-up, and the minimum wanders over it with the batches (a BatchNorm CNN
   under Adam has a plateau a decade wide, the noisy-label MLP a second dip). The knee lies on the
   steep side of the basin, where noise moves a crossing by little (noise / slope), and below a
   second dip. Read on the same saved passes it narrowed the spread over budgets and seeds on
   most recipes and lowered the median regret on both halves of the suite, but read the AdamW
   char-LM too low, whose loss falls gradually over two decades (benchmarks/RESULTS.md, "LR
   range test: the knee instead of the minimum (notes)").
2. **A constant-LR run wants the knee divided by** :data:`KNEE_MARGIN` (0.8, so 1.25x above
   it). The minimum's margin was 2.5 (on constant-LR variants of the built-in tasks the grid's
   best sat 1.2x, ~1x and 4.5x below the median curve minimum: a long run needs headroom below
   the edge of stability that a short sweep sees, most of all with SGD). The knee lies below
   the minimum; on the training batches' losses, which answer an LR one step late (1.33x at
   eight steps per decade), 1.25 was chosen. On the probe's losses, which answer the step just
   taken (:mod:`lrtune.finder._plan`, rule 3), 0.8 was chosen the same way: on the dev half's
   saved passes (``python -m benchmarks.finder_spread --suite dev --reread``, regret read off
   the grids between their points), among 0.7-1.25, as the value with the lowest worst-recipe
   regret at an unchanged median (median 0.000 at 0.8 and 0.9, 0.004 at 1.0, 0.012 at 0.7;
   worst 0.244, 0.278, 0.318, 0.217: the LSTM), and not refitted on the validation half.
3. **A decaying schedule raises the peak by** ``1 / sqrt(mean factor)``. Where the best LR is
   limited by stability, the peak is what matters and the schedule changes nothing (digits: best
   0.063 with step decay and with a constant LR; CNN: 0.025 with cosine and constant); where it
   is limited by the distance travelled, the *integral* of the LR matters (noisy regression:
   cosine's best is 2.5x constant's; transformer: warm-up + cosine 1.6x constant). The square
   root of the inverse mean factor (1.41 for a cosine) is the geometric middle of the two regimes
   and matches the mean of the four measured ratios (1.41).
4. **The curve read is the mean of the fine passes** (:mod:`lrtune.finder._plan`), each
   counted at the untrained model's loss after it blew up, and **the uncertainty is their
   spread**: :data:`BOOTSTRAP` resamples of the passes, each mean curve smoothed and its knee
   interpolated between the two sample points it falls between (a pass samples a decade at
   eight LRs); the suggestion is their median, the band their 10th-90th percentiles. With fewer
   than :data:`MIN_REPLICATES` passes there is no spread to resample, and the residuals around
   the smoothed curve get random signs in blocks instead (a block wild bootstrap); such a
   reading is never "clear". A probe's curve is smooth, so those residuals miss how passes
   differ: on the dev half's 1000-step tests, the band of one pass held that test's answer on
   58% of passes, of two on 60%. Such a band spans at least :data:`FEW_PASS_SPREAD` (1.15x)
   either side of the suggestion: 78% and 84% (chosen there for about 80%, a 10-90% band's
   share); read once on the validation half, 51% -> 60% and 63% -> 78% (``python -m
   benchmarks.finder_probe``, over the passes ``benchmarks.finder_spread`` saved).
   "Clear" also needs the band within :data:`CLEAR_BAND` (3x); a
   clear descent with a wider band is ``wide band``.
5. **Heavy-ball momentum is read where a long run would feel it** (:func:`momentum_lag`). The
   passes sweep at a fixed rate, so the loss's lag behind the LR is the same for every budget
   and :data:`KNEE_MARGIN` absorbs it, except for momentum: its velocity builds over about
   ``1 / (1 - b)`` steps, so a sweep sees the blow-up 3.3x too high for SGD's 0.9 at eight steps
   per decade. With the correction the recipes under SGD with momentum read as well as the
   plain-SGD one, which needs none: regret at most 0.003 on the Nesterov CNN, the linear
   regression, the GroupNorm CNN and the plain-SGD MLP; but 0.03 on a Nesterov MLP and 0.41 on
   a BatchNorm MLP at a large batch, whose grid best (0.63) lies 15x above the suggestion
   (``python -m benchmarks.finder_spread --suite dev`` and ``--suite validation``, RESULTS.md).
   Adam's and RMSprop's averages do not scale the step, so they count as no momentum.
6. **The curve is read up to the first point where its smoothed loss is back above its start**
   (after a descent of more than :data:`NOISE_RATIO` noise standard deviations), even when the
   divergence rule of :func:`divergence_onset` has not fired yet. A network that blew up can
   settle again at a still higher LR (the 1-D CNN of ``mnist1d`` under Adam came back to a
   minimum at 8.3 after blowing up past 0.1; the noisy-label MLP dipped again at 0.2), and such
   a second minimum is no LR a training run can use: before this cut they gave suggestions 500x
   and 20x above the others of their task. For the same reason no bootstrap reading lies past
   the divergence LR the result reports (the median of the passes' blow-ups): past it the mean
   is mostly passes counted at the floor, and a pass that ran on alone can dip there: on the
   built-in diabetes task, whose passes show no clear descent, the guard took the spread over
   num_iter and seeds from 588 to 46 and changed no other task of the suite or the built-in
   ones (RESULTS.md, ``python -m benchmarks.finder_spread --reread``, against the same section
   at commit e62d56d).

What no training-loss curve can see: a run that overfits. The noisy regression (40 epochs of a
small data set at a constant LR) is best at 1.6e-4, 90-950x below its curve minimum, because
its optimum is set by the validation loss of a run ten times longer than the sweep. Its training
curve, its gradient noise scale (0.8-1.1, like digits' 0.8) and short probes' training losses all
look like a task that trains well at 1e-2. Held-out loss measured during the same sweep does not
tell either (``python -m benchmarks.finder_heldout``, seeds 0-9): the training loss at the
validation minimum is 0.00-0.42 of its fall above its own minimum on the regression, 0.00-0.02 on
digits and 0.00-0.27 on the CNN; two regression sweeps in ten show nothing and one CNN sweep
looks like overfitting, so no rule built on it is trustworthy. Such a task needs
runs of its own length: ``lrtune.tune`` (``auto`` lands within 1.5-3.5x of its best).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lrtune.diagnostics._divergence import SUSTAINED, divergence_threshold, mad_sigma, sustained
from lrtune.finder._smoothing import BANDWIDTH, smoother
from lrtune.schedules import Schedule

MARGIN = 2.5  # the safe and aggressive choices lie this factor either side of the suggestion
FALL_LEFT = 0.2  # the knee: where the smoothed curve has made 80% of its fall (rule 1)
KNEE_MARGIN = 0.8  # knee / best constant LR (rule 2)
DIVERGE_FACTOR = 1.0  # a sweep has diverged once the loss is above best + 1 loss scale (its start)
BOOTSTRAP = 200
BAND = (10.0, 90.0)
START_POINTS = 5  # the sweep's starting loss is the median of this many
MIN_POINTS = 10  # usable (pre-divergence) points needed to read a curve
CLEAR_BAND = 3.0  # "clear" needs the band's high / low within this
NOISE_RATIO = 3.0  # the descent must exceed this many noise standard deviations to be "clear"
NOISE_FLOOR = 1e-3  # the noise is taken as at least this share of the starting loss
RISE_SIGMAS = 5.0  # a loss this many noise sd above the curve's best is harm, not noise
MIN_REPLICATES = 3  # fine passes needed before the band is their spread and "clear" can be given
FEW_PASS_SPREAD = 1.15  # a band from fewer passes spans at least this factor either side (rule 4)


class Verdict(str, enum.Enum):
    """How far the curve can be trusted."""

    CLEAR = "clear"
    NO_CLEAR_DESCENT = "no clear descent"
    RANGE_TOO_NARROW = "range too narrow"
    DIVERGED_IMMEDIATELY = "diverged immediately"
    WIDE_BAND = "wide band"


HINTS = {
    Verdict.CLEAR: "The loss fell clearly before it diverged; the suggestion is usable as is.",
    Verdict.NO_CLEAR_DESCENT: (
        "The loss did not fall clearly above its noise within a pass: the model may need longer "
        "than a short sweep to show what helps (then tune with full-length runs: lrtune.tune), "
        "the steps may be too noisy (accumulate gradients), or the LR range may miss it (widen "
        "it); check that the model can learn."
    ),
    Verdict.RANGE_TOO_NARROW: (
        "The curve has no minimum inside the range: raise end_lr (the loss was still falling) "
        "or lower start_lr (it was already falling at the start)."
    ),
    Verdict.WIDE_BAND: (
        "The loss fell clearly, but the suggestion is uncertain (its band spans more than 3x, or "
        "fewer than three passes gave no spread to judge it by): raise num_iter for more passes, "
        "or accumulate gradients for less noisy steps."
    ),
    Verdict.DIVERGED_IMMEDIATELY: (
        "The loss blew up within the first iterations: lower start_lr by a few decades, and "
        "check the data, the loss and the initialisation for NaN/inf."
    ),
}


@dataclass(frozen=True)
class Analysis:
    """Everything read from one curve (see :class:`~lrtune.finder.FinderResult`)."""

    usable: int  # points before the divergence onset
    diverged_lr: float | None
    smoothed: np.ndarray  # over the usable points
    slope: np.ndarray  # d smoothed / d log10(lr)
    min_lr: float
    knee_lr: float  # where the curve made 80% of its fall (rule 1): the suggestion's reading
    suggestion: float
    band: tuple[float, float]
    schedule_factor: float
    verdict: Verdict
    curve: np.ndarray  # the passes' mean loss at each LR read (past a blow-up: the floor)


def _finite_end(losses: np.ndarray) -> int:
    """How many losses come before the first non-finite one."""
    finite = np.isfinite(losses)
    return len(losses) if finite.all() else int(np.argmin(finite))


def divergence_onset(
    losses: np.ndarray, factor: float = DIVERGE_FACTOR, *, probe: bool = False
) -> int | None:
    """Index where the loss first became non-finite or started the 3-value run that exploded
    (with ``probe``, the first value above the limit: see below).

    The rule of :mod:`lrtune.diagnostics` (above ``best + factor * scale`` three times in a
    row) with a tighter factor: in a sweep the LR only grows, so a loss back above its start
    is gone. The start is the median of the first :data:`START_POINTS` losses: one lucky first
    batch (0.58 on a noisy regression whose next four were 0.8-2.2) would make the ordinary
    losses after it look like a blow-up at the sweep's lowest LR. The best is that of the running
    median of :data:`START_POINTS` losses: the lowest of hundreds of noisy batch losses lies far
    below what the model reached, and three ordinary batches in a row above it were read as a
    blow-up at 1e-5 in a 1000-step sweep of a linear regression.

    A probe's losses (:mod:`lrtune.finder._plan`, rule 3) have no batch noise to excuse a
    value above the limit: once is a blow-up. Waiting for three let an Adam-trained BatchNorm
    CNN (built-in mnist1d) run on past a spike to 180x its start, back to chance level and on
    to a second spike, and the pass's mean read past them.
    """
    end = _finite_end(losses)
    if end == 0:
        return 0
    head = losses[:end]
    best = np.minimum.accumulate(_running_median(head, START_POINTS))
    start = float(np.median(head[:START_POINTS]))
    above = head > divergence_threshold(start, best, factor)
    if probe and above.any():
        return int(np.argmax(above))
    exploded, _ = sustained(above)
    if exploded is not None:
        return exploded - (SUSTAINED - 1)  # where the run above the limit began
    return None if end == len(losses) else end


def rise_onset(losses: np.ndarray) -> int | None:
    """Index of the first loss clearly above the best the curve had reached: more than
    :data:`RISE_SIGMAS` noise standard deviations above the running minimum of its running
    median (or non-finite). Where the LR starts to do harm; a blow-up comes later."""
    end = _finite_end(losses)
    head = np.asarray(losses[:end], dtype=float)
    if len(head) > 1:
        best = np.minimum.accumulate(_running_median(head, START_POINTS))
        sigma = _noise(head, float(np.median(head[:START_POINTS])))
        above = np.flatnonzero(head > best + RISE_SIGMAS * sigma)
        if len(above):
            return int(above[0])
    return None if end == len(losses) else end


def _running_median(values: np.ndarray, window: int) -> np.ndarray:
    """The median of each value and the ``window - 1`` before it (fewer at the start)."""
    padded = np.concatenate([np.full(window - 1, np.nan), values])
    return np.nanmedian(np.lib.stride_tricks.sliding_window_view(padded, window), axis=1)


def schedule_factor(schedule: Schedule | None) -> float:
    """How much higher than the best constant LR the schedule's *base* LR can go (see rule 3)."""
    if schedule is None:
        return 1.0
    factors = schedule.values()
    peak = float(factors.max())
    return 1.0 / (math.sqrt(float(factors.mean()) / peak) * peak)


def momentum_lag(momentum: float, growth: float) -> float:
    """How much farther a heavy-ball step reaches in a long run than in the sweep at one LR.

    With momentum ``b`` a long run at a fixed LR moves ``lr / (1 - b)`` per unit of gradient, but
    in a sweep whose LR grows by ``growth`` a step, the velocity has collected only the smaller
    LRs before it: ``lr / (1 - b / growth)``. So the sweep sees the blow-up at an LR that much too
    high (3.3x for SGD's 0.9 at 8 steps per decade; 1 without momentum).
    """
    return (1.0 - momentum / growth) / (1.0 - momentum)


def pad_passes(
    passes: Sequence[np.ndarray], length: int, floor: float, *, probe: bool = False
) -> tuple[np.ndarray, list[int]]:
    """Every pass on the whole window, as a ``(passes, length)`` matrix, and where each ended.

    A pass ends at its divergence onset (or where its data ran out); from there on it counts as
    ``floor``, the untrained model's loss: a pass that blew up at an LR did no better there than
    not training, and the losses of a blow-up would drown the other passes' in the mean.
    ``probe``: the passes' losses are a probe's (see :func:`divergence_onset`).
    """
    rows, ends = np.full((len(passes), length), floor, dtype=float), []
    for row, losses in zip(rows, passes, strict=True):
        y = np.asarray(losses, dtype=float)[:length]
        onset = divergence_onset(y, probe=probe)
        end = len(y) if onset is None else onset
        row[:end] = y[:end]
        ends.append(end)
    return rows, ends


def analyse(
    lrs: np.ndarray,
    passes: Sequence[np.ndarray],
    schedule: Schedule | None = None,
    *,
    floor: float | None = None,
    momentum: float = 0.0,
    seed: int = 0,
    bandwidth: float = BANDWIDTH,
    probe: bool = False,
) -> Analysis:
    """Apply the rule of the module docstring to the passes of one sweep over ``lrs``.

    Each pass holds the losses of a prefix of ``lrs`` (it stopped where it blew up); ``floor``
    is what a pass counts as after that (default: the first pass's starting loss);
    ``momentum`` the optimizer's heavy-ball coefficient (see :func:`momentum_lag`); ``probe``:
    the losses are a probe's (see :func:`divergence_onset`).
    """
    first = np.asarray(passes[0], dtype=float)
    if floor is None:
        floor = float(np.median(first[:START_POINTS])) if len(first) else math.nan
    rows, ends = pad_passes(passes, len(lrs), floor, probe=probe)
    curve = rows.mean(axis=0)
    usable = max(ends)
    onsets = [e for e, p in zip(ends, passes, strict=True) if e < len(p)]  # those that blew up
    rebound = None if usable < MIN_POINTS else _rebound(
        np.log10(lrs[:usable]), curve[:usable], bandwidth)
    if rebound is not None:
        usable = rebound
    diverged = [float(lrs[min(e, len(lrs) - 1)]) for e in onsets]
    if rebound is not None and not diverged:
        diverged = [float(lrs[min(rebound, len(lrs) - 1)])]
    diverged_lr = float(np.median(diverged)) if diverged else None
    factor = schedule_factor(schedule)
    if usable < MIN_POINTS:
        low = float(lrs[0]) / MARGIN * factor
        verdict = Verdict.NO_CLEAR_DESCENT if diverged_lr is None else Verdict.DIVERGED_IMMEDIATELY
        return Analysis(usable, diverged_lr, rows[0, :usable].copy(), np.zeros(usable),
                        float(lrs[0]), float(lrs[0]), low, (low, low), factor, verdict, curve)
    x, rows, y = np.log10(lrs[:usable]), rows[:, :usable], curve[:usable]
    values, slopes = smoother(x, bandwidth)
    smoothed, slope = values @ y, slopes @ y
    i_min = int(np.argmin(smoothed))
    curves = (_replicate_curves(rows, values, seed) if len(rows) >= MIN_REPLICATES
              else _bootstrap_curves(x, y, smoothed, values, bandwidth, seed))
    verdict = _verdict(smoothed, y, i_min, x, bandwidth, diverged=diverged_lr is not None)
    to_suggestion = factor / KNEE_MARGIN / momentum_lag(momentum, float(lrs[1] / lrs[0]))
    readings = _knee(x, curves)
    if diverged_lr is not None:  # where later passes ran on after most blew up: no LR to use
        readings = np.minimum(readings, math.log10(diverged_lr))
    knee_low, knee, knee_high = 10.0 ** np.percentile(readings, (BAND[0], 50.0, BAND[1]))
    low, mid, high = knee_low * to_suggestion, knee * to_suggestion, knee_high * to_suggestion
    if len(rows) < MIN_REPLICATES:  # the residuals of a smooth probe curve miss how passes differ
        low, high = min(low, mid / FEW_PASS_SPREAD), max(high, mid * FEW_PASS_SPREAD)
    if verdict is Verdict.CLEAR and (high / low > CLEAR_BAND or len(rows) < MIN_REPLICATES):
        verdict = Verdict.WIDE_BAND
    return Analysis(usable, diverged_lr, smoothed, slope, float(lrs[i_min]), float(knee),
                    float(mid), (float(low), float(high)), factor, verdict, curve)


def _replicate_curves(rows: np.ndarray, values: np.ndarray, seed: int) -> np.ndarray:
    """The smoothed mean curves of :data:`BOOTSTRAP` resamples of the passes: the passes are
    replicates of one experiment, so their spread is the measurement's uncertainty."""
    picks = np.random.default_rng(seed).integers(0, len(rows), size=(BOOTSTRAP, len(rows)))
    return rows[picks].mean(axis=1) @ values.T


def _rebound(x: np.ndarray, y: np.ndarray, bandwidth: float) -> int | None:
    """Where the smoothed loss first climbs back above its start after a clear descent (rule 6).

    What follows is not read: a network that blew up there can settle again at a still higher LR
    (BatchNorm, Adam's bounded steps), and a minimum found after the rebound is not the one a
    training run could use.
    """
    values, _ = smoother(x, bandwidth)
    smoothed = values @ y
    drop = smoothed[0] - np.minimum.accumulate(smoothed)
    clear = drop > NOISE_RATIO * _noise(y, float(smoothed[0]))
    above = np.flatnonzero(clear & (smoothed > smoothed[0]))
    return int(above[0]) + 1 if len(above) else None


def _noise(y: np.ndarray, start: float) -> float:
    """The standard deviation of one loss, from the differences of neighbours (robust, floored).

    Not from the residuals around the smoothed curve: where a short sweep places about one point
    per bandwidth, the smoothing follows the points and its residuals all but vanish. At least
    :data:`NOISE_FLOOR` of the start: a probe's curve has no batch noise, and float rounding
    alone must not make a descent "clear".
    """
    steps = np.diff(y)
    return max(mad_sigma(steps - np.median(steps)) / math.sqrt(2.0), NOISE_FLOOR * abs(start),
               1e-12)


def _bootstrap_curves(
    x: np.ndarray, y: np.ndarray, smoothed: np.ndarray, values: np.ndarray, bandwidth: float,
    seed: int,
) -> np.ndarray:
    """:data:`BOOTSTRAP` noisy copies of the curve, smoothed (for a single pass).

    A block *wild* bootstrap: each residual stays where it was and is multiplied by a random
    sign shared by its block. Keeping residuals in place keeps the noise level of each region
    (a range test is far noisier near divergence than at tiny LRs, where moved residuals would
    dig false minima); blocks of one bandwidth keep neighbouring residuals correlated.
    """
    residuals = y - smoothed
    n = len(y)
    block = _points(x, bandwidth)
    signs = np.random.default_rng(seed).choice((-1.0, 1.0), size=(BOOTSTRAP, -(-n // block)))
    return (smoothed + residuals * np.repeat(signs, block, axis=1)[:, :n]) @ values.T


def _knee(x: np.ndarray, curves: np.ndarray) -> np.ndarray:
    """Where each curve has made all but :data:`FALL_LEFT` of its fall from its first point to
    its minimum: the first crossing of that level, interpolated between the sample points.

    Read on the steep side of the basin, where noise moves a crossing by little (noise / slope),
    and never past the first basin, as the minimum of a flat or twice-dipping bottom can be.
    """
    lowest = curves.min(axis=1)
    level = lowest + FALL_LEFT * np.maximum(curves[:, 0] - lowest, 0.0)
    i = np.argmax(curves <= level[:, None], axis=1)  # the minimum itself always qualifies
    rows, prev = np.arange(len(curves)), np.maximum(i - 1, 0)
    before, at = curves[rows, prev], curves[rows, i]
    falls = (i > 0) & (before > at)
    share = np.where(falls, (before - level) / np.where(falls, before - at, 1.0), 1.0)
    return x[prev] + np.clip(share, 0.0, 1.0) * (x[i] - x[prev])


def _verdict(
    smoothed: np.ndarray, y: np.ndarray, i_min: int, x: np.ndarray, bandwidth: float,
    diverged: bool,
) -> Verdict:
    start = float(smoothed[0])
    drop = start - float(smoothed[i_min])
    if drop <= NOISE_RATIO * _noise(y, start):
        return Verdict.NO_CLEAR_DESCENT
    still_falling = i_min >= len(smoothed) - 1 - _points(x, bandwidth) and not diverged
    falling_at_start = smoothed[0] - smoothed[min(_points(x, bandwidth), i_min)] > 0.5 * drop
    if still_falling or falling_at_start:
        return Verdict.RANGE_TOO_NARROW
    return Verdict.CLEAR


def _points(x: np.ndarray, bandwidth: float) -> int:
    """How many points span one bandwidth of log-LR."""
    return max(1, round(bandwidth * (len(x) - 1) / max(x[-1] - x[0], 1e-12)))
