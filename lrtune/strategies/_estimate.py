"""Where the full-length basin is, and how sure the study's trials make it: the estimator.

A model fitted to every trial of one choice (optimizer, schedule, ...), whatever phase ran it:

- each run length ``T`` (a *rung*) sees a quadratic basin in log-LR, near its best points:
  ``loss = c_T + a_T * (log lr - m_T)**2`` with its own level and curvature;
- the rungs' vertices move with the length as a power law (the horizon effect): ``m_T = m +
  beta * log(T_full / T)``, ``m`` the full-length best log-LR. The prior on ``beta`` comes from
  the schedule: about 0.4 under a constant LR (the literature and docs/auto.md put it between 0
  and 1), about 0 under one that decays (the best LR hardly moves past short runs);
- noise is one unknown level for the study, estimated from the fits' residuals with a weak prior
  (a pseudo-observation of :data:`NOISE_PRIOR` of the loss), integrated out;
- a diverged run is censored: the basin of its length lies below its LR;
- a rung's vertex lies within about a window of the LRs it tried (a prior: beyond them a nearly
  flat fit would place it anywhere).

The posterior of ``m`` on a grid over the LR range gives the estimate (its median) and a 68%
interval (its 16% and 84% quantiles). The phase plan (:mod:`lrtune.strategies._auto`) decides what
to run; this module only reads trials, so either can be replaced.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np

from lrtune.records import TrialRecord, TrialState
from lrtune.space import LogRange, Space

if TYPE_CHECKING:
    from lrtune.strategies._base import Context

WINDOW = 2 * math.log(10) / 3  # a rung's fit uses the points within 2/3 decade of its best one
NOISE_PRIOR = 0.01  # prior noise, as a fraction of the loss (seed-to-seed spread of final losses)
NOISE_PSEUDO_COUNT = 2.0  # how many observations that prior weighs
SHIFT_PRIOR = {False: (0.4, 0.25), True: (0.0, 0.2)}  # (mean, sd) of beta; key: schedule decays
SHIFTS = np.linspace(-0.5, 1.0, 31)
GRID_STEP = 0.01  # of the posterior's grid, in log-LR
# What the fit cannot see: a basin that is no quadratic, a horizon that is no power law, a study
# of one seed against the best LR of many (in a flat basin the grid's best is itself a noisy pick).
# A log-normal spread of the answer around the fit's, its standard deviation in log-LR chosen on
# the development half of benchmarks/recipes (0.35, set before any measurement, held the grid's
# best LR on 18 of 40 (recipe, seed) pairs at 2 runs at commit 127dccd; 0.8 holds it on 27 of 40).
# RESULTS.md has the calibration on both halves (`benchmarks/tune_benchmark.py --score-estimates`).
MODEL_ERROR = 0.8
LEVEL = 0.68


EDGE = 10 ** (1 / 3)  # an answer within a third of a decade of an end of the range is at it
WIDER = 10.0  # the wider range suggested: a decade further at that end


@dataclass(frozen=True)
class LrEstimate:
    """The full-length best LR as the study's trials place it: ``lr`` with a 68% interval
    ``low``-``high`` and the noise of a final loss (its standard deviation). When no rung had the
    three finite points a basin fit needs, ``lr`` is the best trial's, the interval is the
    search's resolution around it and ``noise`` is None; the interval is None only when the
    space fixes the LR.

    ``edge`` is ``"low"`` or ``"high"`` when the answer sits at that end of the searched range:
    a wider range (``wider_range`` suggests one) may hold a better LR. ``shift_assumed`` is True
    when the fit, under a constant LR, had one run length shorter than the full run to read: how
    far the best LR moves with the run's length (each recipe's own, from rising to falling as
    ``1/T``: docs/auto.md, section 2) was then the prior's, not measured.
    """

    lr: float
    low: float | None
    high: float | None
    noise: float | None
    edge: str | None = None
    wider_range: tuple[float, float] | None = None
    shift_assumed: bool = False

    def contains(self, lr: float) -> bool:
        return self.low is not None and self.high is not None and self.low <= lr <= self.high

    def describe(self) -> str:
        """``0.012 (68% interval 0.008-0.02)``; without a basin fit, says the interval is only
        the search's resolution (rungs too sparse: a scan a decade apart, two refine points)."""
        text = f"{self.lr:.3g}"
        if self.low is not None and self.high is not None:
            text += f" (68% interval {self.low:.3g}-{self.high:.3g})"
            if self.noise is None:
                text += (", the search's resolution alone: no run length had three points near "
                         "its best to fit a basin to")
        return text

    def edge_warning(self) -> str | None:
        if self.edge is None or self.wider_range is None:
            return None
        low, high = self.wider_range
        return (f"the best LR sits at the {self.edge} end of the searched range: a better one "
                f"may lie beyond it; search a wider range, e.g. {low:.3g} - {high:.3g}")

    def shift_warning(self) -> str | None:
        if not self.shift_assumed:
            return None
        return ("at a constant LR the best LR moves with the run's length, by an amount of each "
                "recipe's own; the basin fit had one shorter length to read, so that move was "
                "assumed, not measured: runs of a second length, or full-length ones, measure "
                "it (a larger budget buys them)")

    def notices(self) -> list[tuple[str, str]]:
        """What is said beside the estimate (by ``lrtune tune`` and the report), as (kind,
        sentence): a ``"warning"`` when the answer sits at an edge of the range, a ``"note"``
        when a constant LR's move with the run's length was assumed."""
        found = [("warning", self.edge_warning()), ("note", self.shift_warning())]
        return [(kind, text) for kind, text in found if text is not None]

    def to_dict(self) -> dict[str, Any]:
        return {"lr": self.lr, "low": self.low, "high": self.high, "noise": self.noise,
                "edge": self.edge,
                "wider_range": list(self.wider_range) if self.wider_range else None,
                "shift_assumed": self.shift_assumed}


def best_estimate(context: Context, best: TrialRecord) -> LrEstimate:
    """The estimate for the study's answer ``best``: fitted to the trials of its choice."""
    space = context.space
    choice = {k: best.params.get(k) for k in space.choices()[0]}
    same = [t for t in context.live if t.matches(choice)]
    lr_range = space.lr_range
    posterior = (estimate_lr(same, context.full_steps, lr_range,
                             schedule_decays(space, best.params, context.full_steps))
                 if space.searches_lr else None)
    edge = _edge(best.lr, posterior.lr if posterior else best.lr, lr_range) \
        if space.searches_lr else None
    wider = None
    if edge == "low":
        wider = (lr_range.low / WIDER, lr_range.high)
    elif edge == "high":
        wider = (lr_range.low, lr_range.high * WIDER)
    if posterior is None:
        low, high = (_resolution_interval(best, same, lr_range) if space.searches_lr
                     else (None, None))
        return LrEstimate(best.lr, low, high, None, edge, wider)
    return replace(posterior, edge=edge, wider_range=wider)


def _resolution_interval(best: TrialRecord, trials: Sequence[TrialRecord],
                         lr_range: LogRange) -> tuple[float, float]:
    """The 68% interval when no basin could be fitted: the answer is known to the resolution of
    the search around it (the log distance to the nearest other LR tried on its less explored
    side: a point tried close on one side says nothing of the other; a decade when there is
    none), widened by :data:`MODEL_ERROR`, and kept below the lowest LR that diverged."""
    x = math.log(best.lr)
    below = [x - math.log(t.lr) for t in trials if t.lr < best.lr]
    above = [math.log(t.lr) - x for t in trials if t.lr > best.lr]
    gaps = [min(side) for side in (below, above) if side]
    spread = math.hypot(MODEL_ERROR, max(gaps, default=math.log(10)))
    z = NormalDist().inv_cdf(1 - (1 - LEVEL) / 2)
    cliff = min((t.lr for t in trials if t.diverged and t.lr > best.lr), default=math.inf)
    low = max(lr_range.low, best.lr * math.exp(-z * spread))
    high = min(lr_range.high, cliff, best.lr * math.exp(z * spread))
    return low, max(high, best.lr)


def _edge(chosen: float, estimated: float, lr_range: LogRange) -> str | None:
    if min(chosen, estimated) <= lr_range.low * EDGE:
        return "low"
    if max(chosen, estimated) >= lr_range.high / EDGE:
        return "high"
    return None


def schedule_decays(space: Space, params: Mapping[str, Any], full_steps: int) -> bool:
    """Whether the schedule anneals the LR to half or less by the end of the run (then the best
    LR hardly moves with the run's length)."""
    return space.schedule_for(params, full_steps).factor(full_steps) <= 0.5


@dataclass(frozen=True)
class _Rung:
    x: np.ndarray  # log LR of the points near the rung's best
    y: np.ndarray
    shift: float  # log(T_full / T)


def estimate_lr(trials: Sequence[TrialRecord], full_steps: int, lr_range: LogRange,
                decays: bool, model_error: float = MODEL_ERROR) -> LrEstimate | None:
    """The posterior of the full-length best LR from ``trials`` (one choice of the space),
    widened by ``model_error`` (the standard deviation, in log-LR, of what the model misses).

    None when no rung has the three finite points a basin needs.
    """
    rungs, cliffs = _rungs(trials, full_steps)
    if not rungs:
        return None
    low, high = math.log(lr_range.low), math.log(lr_range.high)
    grid = np.linspace(low, high, max(2, math.ceil((high - low) / GRID_STEP) + 1))
    log_post, noise = _log_posterior(rungs, cliffs, grid, decays)
    allowed = np.isfinite(log_post)
    if not allowed.any():
        return None
    post = np.exp(log_post - log_post.max())
    if model_error > 0:  # the spread stops at a cliff as the fit does
        post = _blurred(post, model_error / (grid[1] - grid[0])) * allowed
    cdf = np.cumsum(post) / post.sum()
    tail = (1 - LEVEL) / 2
    q = lambda p: float(math.exp(grid[min(int(np.searchsorted(cdf, p)), len(grid) - 1)]))  # noqa: E731
    shifts = {r.shift for r in rungs}
    assumed = not decays and len(shifts) < 2 and 0.0 not in shifts
    return LrEstimate(q(0.5), q(tail), q(1 - tail), noise, shift_assumed=assumed)


def _blurred(density: np.ndarray, sd: float) -> np.ndarray:
    """``density`` convolved with a Gaussian of ``sd`` grid steps, kept on the grid (the mass
    that would leave the range stays at its ends: the answer is inside it)."""
    # past the grid's own span a kernel only moves mass to the ends: on a range narrower than
    # its sd (lr=(0.01, 0.0100001)) 3 sd took 480,000 points and a hundred seconds
    half = min(math.ceil(3 * sd), len(density))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sd) ** 2)
    padded = np.pad(density, half, mode="constant")
    out = np.convolve(padded, kernel, mode="same")
    out[half] += out[:half].sum()
    out[-half - 1] += out[-half:].sum()
    return out[half:-half]


def _rungs(trials: Sequence[TrialRecord],
           full_steps: int) -> tuple[list[_Rung], list[tuple[float, float]]]:
    """Each length's points near its best (three or more), and the (log LR, shift) of each
    diverged run."""
    by_length: dict[int, list[TrialRecord]] = {}
    cliffs = []
    for t in trials:
        shift = math.log(full_steps / t.steps)
        if t.diverged:
            cliffs.append((math.log(t.lr), shift))
        elif t.state is TrialState.COMPLETED and math.isfinite(t.score):
            by_length.setdefault(t.steps, []).append(t)
    rungs = []
    for steps, done in by_length.items():
        x = np.log([t.lr for t in done])
        y = np.array([t.score for t in done])
        best = int(np.argmin(y))
        near = np.abs(x - x[best]) <= WINDOW + 1e-9
        if len(set(x[near].tolist())) >= 3:
            rungs.append(_Rung(x[near], _limit_wall(x[near], y[near], x[best], y[best]),
                               math.log(full_steps / steps)))
    return rungs, cliffs


def _limit_wall(x: np.ndarray, y: np.ndarray, x_best: float, y_best: float) -> np.ndarray:
    """Cap the rise above the best LR at what a quadratic through the low side allows.

    Basins are steep on the high side (a network that blew up or died sits at chance level): a
    quadratic would read that wall as "go lower". A point past the cliff says "not there", not
    "how far". The low side (underfitting) is smooth: its steepest rise per squared distance,
    three times over, bounds the high side's.
    """
    below, above = x < x_best, x > x_best
    if not below.any() or not above.any():
        return y
    rise = max(float(np.max((y[below] - y_best) / (x_best - x[below]) ** 2)), 0.0)
    bound = y_best + 3 * rise * (x - x_best) ** 2
    return np.where(above, np.minimum(y, np.maximum(bound, y_best)), y)


def _log_posterior(rungs: Sequence[_Rung], cliffs: Sequence[tuple[float, float]],
                   grid: np.ndarray, decays: bool) -> tuple[np.ndarray, float]:
    """log p(m) on ``grid`` (beta and the noise integrated out), and the noise at the mode."""
    mean, sd = SHIFT_PRIOR[decays]
    prior = -0.5 * ((SHIFTS - mean) / sd) ** 2  # (beta,)
    m = grid[:, None]  # (m, 1) against (1, beta)
    rss = np.zeros((len(grid), len(SHIFTS)))
    outside = np.zeros_like(rss)  # how far each rung's vertex lies beyond the LRs it tried
    for rung in rungs:
        vertex = m + SHIFTS[None, :] * rung.shift
        rss += _rung_rss(rung, vertex)
        outside += (np.maximum(rung.x.min() - vertex, 0) + np.maximum(vertex - rung.x.max(), 0)
                    ) ** 2
    allowed = np.ones_like(rss, dtype=bool)
    for x_div, shift in cliffs:  # the basin of a diverged run's length lies below its LR
        allowed &= m + SHIFTS[None, :] * shift < x_div
    n = sum(len(r.x) for r in rungs)
    dof = NOISE_PSEUDO_COUNT + n - 2 * len(rungs)
    scale = NOISE_PRIOR * float(np.median(np.abs(np.concatenate([r.y for r in rungs])))) or 1e-6
    prior_ss = NOISE_PSEUDO_COUNT * scale**2
    log_like = -0.5 * dof * np.log(prior_ss + rss)  # the noise variance integrated out
    # a vertex far beyond a rung's points is a flat fit's guess, not a measurement: a prior
    # keeps it within about a window of them
    log_prior = prior[None, :] - 0.5 * outside / WINDOW**2
    log_joint = np.where(allowed, log_like + log_prior, -np.inf)
    i, j = np.unravel_index(int(np.argmax(log_joint)), log_joint.shape)
    noise = math.sqrt((prior_ss + rss[i, j]) / max(dof - len(rungs), 1.0))  # vertices fitted
    top = log_joint.max(axis=1, keepdims=True)
    finite = np.isfinite(top[:, 0])
    log_post = np.full(len(grid), -np.inf)
    log_post[finite] = (top[finite, 0] + np.log(np.exp(log_joint[finite] - top[finite]).sum(1)))
    return log_post, noise


def _rung_rss(rung: _Rung, vertex: np.ndarray) -> np.ndarray:
    """Residual sum of squares of the best basin ``c + a (x - vertex)**2`` with ``a >= 0``, for
    each vertex (any shape): least squares in (c, a), closed form."""
    d = (rung.x[(None,) * vertex.ndim] - vertex[..., None]) ** 2  # (..., points)
    y = rung.y
    n = len(y)
    sd, sy, sdd, sdy = d.sum(-1), y.sum(), (d * d).sum(-1), (d * y).sum(-1)
    det = n * sdd - sd**2
    a = np.where(det > 1e-12, (n * sdy - sd * sy) / np.where(det > 1e-12, det, 1.0), 0.0)
    a = np.maximum(a, 0.0)  # an upside-down basin says nothing about where its bottom is
    c = (sy - a * sd) / n
    resid = y - c[..., None] - a[..., None] * d
    return (resid**2).sum(-1)
