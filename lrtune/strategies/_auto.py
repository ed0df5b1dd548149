"""``auto``: a search made for the learning rate, at the cost of about two training runs.

What it uses (see docs/auto.md for the measurements behind each step):

1. Loss against log-LR is a basin with a cliff. A *scan* of short runs (the whole schedule
   compressed to ``T/16`` steps) walks down the LR range in steps of ``10**(1/3)`` from the top:
   runs above the cliff diverge within a few steps and cost little (where they cost half a
   finished run or more, the walk takes a decade at a time, as it does past a run the LR
   ruined without a blow-up, a *collapsed* one); the walk stops a decade below the best
   short-run LR.
2. Short runs prefer larger LRs than long ones (the horizon effect). A *refine* rung trains a
   few LRs at or below the scan's best for a longer ``T/r`` steps. Under a constant LR the
   basin's shift between the two lengths measures the effect and a power law carries it to the
   full length; under a decaying schedule the best LR hardly moves past ``T/16`` and not
   monotonically, so the two rungs are averaged as two noisy readings of it, each weighted by
   how finely it resolves its best, and held at the refine rung's edge where its best run lies
   there (the basin continues beyond it).
3. Noise: each rung's best LR is the vertex of a weighted quadratic fit over neighbouring LRs in
   log space, not the raw argmin.
4. A diverged run is an observation: nothing at or above the lowest diverged LR (divided by a
   safety factor) is ever proposed again.
5. The last trial trains at full length at the chosen LR: it is the user's model and the study's
   answer. A budget beyond two runs buys more full-length trials, a walk from that LR (a lattice
   step up, then on from the best, or between it and its better neighbour): only full-length
   runs measure the full-length basin, and the best of them is the answer.

Runs too short to shorten (under 16 steps) are scanned at full length: the scan is then the
search, and its best run the answer. With more choices, or shorter runs, than the budget can
scan (not one scan run each), the first choice is refined around its optimizer's default LR
instead (or trained at it, when not even a refine rung fits): a budget that small buys one
informed guess, not a search.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from lrtune.diagnostics import Status
from lrtune.optimizers import get_optimizer_spec
from lrtune.records import TrialRecord, TrialState
from lrtune.space import LogRange
from lrtune.strategies._base import FINISHED, WAIT, Answer, Context, Proposal, Strategy
from lrtune.strategies._estimate import NOISE_PRIOR, estimate_lr, schedule_decays

SPACING = 10 ** (1 / 3)  # scan grid: three LRs per decade
SCAN_LENGTH = 1 / 16  # scan runs, as a fraction of a full run (1/24 measured: too noisy)
SCAN_SHARE = 0.45  # most of the exploration budget the scan may take
REFINE_POINTS = 4  # three planned, one placed from their results
REFINE_MAX_LENGTH = 1 / 3
# a refine run is at least this many scan runs long: three points at 1.5x fit a basin's vertex
# where two at 2x only give an argmin (a 1.5-run budget: docs/auto.md, "Budget")
REFINE_MIN_RATIO = 1.5
PRIOR_HORIZON_EXPONENT = 0.5  # measured shifts run from 0 (mnist1d) to 1 (diabetes) per length
CLIFF_MARGIN = SPACING  # stay at least this factor below the lowest diverged LR
# the step of the walk of full-length runs: a lattice step (docs/auto.md: three fixed runs half a
# step apart never reached an LSTM whose full-length best lies 3-4x above its short runs')
FINAL_STEP = SPACING
WD_PROBE = 0.25  # weight-decay probes: this far from the midpoint, in units of its log range
DECAY_BY_PRODUCT = (torch.optim.SGD, torch.optim.AdamW)  # they decay weights by lr * wd a step


class AutoStrategy(Strategy):
    name = "auto"
    min_budget = 1.25

    def ask(self, context: Context) -> Answer:
        full = context.full_steps
        scan_steps = min(full, max(8, round(full * SCAN_LENGTH)))
        if 2 * scan_steps > full:  # runs too short to shorten (under 16 steps): a scan run
            scan_steps = full  # would cost most of a full run and say less
        # a scan of full runs is itself the search where the budget pays for two of them: it
        # takes the whole budget and its best run is the answer (one full run at its top LR
        # then a second at the same LR wasted the budget); with less, one informed guess below
        finals = 0 if scan_steps == full and context.budget >= 2 else final_count(context.budget)
        explore = (context.budget - finals) * full  # everything but the full-length runs
        combos = context.space.choices()
        space = context.space
        if not space.searches_lr and len(combos) == 1 and not isinstance(space.weight_decay,
                                                                           LogRange):
            # nothing to search: the one configuration's full run is the answer
            return FINISHED if context.tagged("final") else Proposal(
                self._config(context, space.lr_range.low, combos[0]), full, "final")
        scans = [scan_trials(context, i) for i in range(len(combos))]
        share = scan_share(explore, scan_steps, len(combos))
        # 1. scan every choice of the space
        for i, combo in enumerate(combos):
            lr = next_scan_lr(context, scans[i], scan_steps, share * explore / len(combos))
            if lr is not None:
                return Proposal(self._config(context, lr, combo), scan_steps, f"scan:{i}")
        if any(t.state is TrialState.RUNNING for t in context.live):
            return WAIT  # the next phases need every scan result
        # the choices by promise: the refine rung goes to the best one
        ranked = sorted(range(len(combos)), key=lambda i: _best_score(scans[i]))
        leader = ranked[0]
        scan, combo = scans[leader], combos[leader]
        cliff = _cliff(context.live, combo)
        scan_best = basin_vertex(scan)
        if scan_best is None:  # everything diverged, or nothing was scanned
            scan_best = _unscanned_lr(context, scan, combo)
        # 2. refine at a longer length around where the basin is expected to move
        refine = context.tagged("refine")
        refine_steps, points = refine_plan(context, scan_steps, finals)
        if refine_steps is not None and len(refine) < points:
            if len(refine) >= 3 and any(t.state is TrialState.RUNNING for t in refine):
                return WAIT  # the fourth point needs the others' results
            centre = scan_best * (refine_steps / scan_steps) ** -PRIOR_HORIZON_EXPONENT
            lr = _capped(next_refine_lr(centre, refine), cliff, context.space.lr_range)
            if all(t.lr != lr for t in refine):
                return Proposal(self._config(context, lr, combo), refine_steps, "refine")
        # 3. weight decay, when the space searches it: both sides of the midpoint at the refine
        # rung's best LR
        probe = weight_decay_probe(context, combo, refine)
        if probe is not None:
            return probe
        if any(t.state is TrialState.RUNNING and t.tag != "final" for t in context.live):
            return WAIT  # the estimate needs every rung's result
        # 4. the full-length runs: the estimate first, then around it; a runner-up choice that
        # the short runs cannot tell from the leader gets the second one
        # as many as the budget pays for (the worker ends the study when the next one does
        # not fit): a full run that diverged early gives its steps to another
        done = context.tagged("final")
        lr_range = context.space.lr_range
        # the full-length runs of this choice, a scan's too where its runs are full runs
        mine = [t for t in context.live if t.steps >= full and t.matches(combo)]
        rival = _rival(context, combos, scans, ranked)
        if rival is not None and finals >= 2 and mine and len(mine) == len(done):
            choice, lr, rival_cliff = rival
            return Proposal(self._config(context, _capped(lr, rival_cliff, lr_range), choice),
                            full, "final")
        if any(t.state is TrialState.RUNNING for t in mine):
            return WAIT  # the walk goes where the finished full-length runs point
        estimate = final_lr(scan, refine, scan_steps, full, _decays(context, combo),
                            fallback=min((t.lr for t in scan), default=scan_best))
        lr = next_final_lr(estimate, mine, lambda x: _capped(x, cliff, lr_range))
        if lr is None:
            return FINISHED
        return Proposal(self._config(context, lr, combo, chosen_weight_decay(context, lr)),
                        full, "final")

    @staticmethod
    def _config(context: Context, lr: float, combo: dict,
                weight_decay: float | None = None) -> dict:
        params = context.space.config(lr, **combo)
        if weight_decay is not None:
            params["weight_decay"] = weight_decay
        return params


def scan_share(explore_steps: float, scan_steps: int, choices: int) -> float:
    """The most of the exploration budget the scans may take: :data:`SCAN_SHARE`, or all of it
    when the rest would not pay for two refine runs :data:`REFINE_MIN_RATIO` times the scan's
    length (a budget not spent on a refine rung is spent on the scan, not left over)."""
    rest = (1 - SCAN_SHARE) * explore_steps
    return SCAN_SHARE if rest >= 2 * REFINE_MIN_RATIO * scan_steps else 1.0


def _rival(context: Context, combos: list[dict], scans: list[list[TrialRecord]],
           ranked: list[int]) -> tuple[dict, float, float] | None:
    """The runner-up choice, its LR and cliff, when its scan is within the noise of the
    leader's: short runs cannot tell them apart, so a full run compares them."""
    if len(ranked) < 2:
        return None
    lead, second = scans[ranked[0]], scans[ranked[1]]
    best, other = _best_score(lead), _best_score(second)
    if not (math.isfinite(best) and math.isfinite(other)):
        return None
    estimate = estimate_lr(lead, context.full_steps, context.space.lr_range, decays=False)
    noise = estimate.noise if estimate and estimate.noise else NOISE_PRIOR * abs(best)
    if other - best > 2 * noise:
        return None
    combo = combos[ranked[1]]
    lr = basin_vertex(second) or min(t.lr for t in second)
    return combo, lr, _cliff(context.live, combo)


def weight_decay_probe(context: Context, combo: dict,
                       refine: Sequence[TrialRecord]) -> Proposal | None:
    """The next weight-decay probe: at the refine rung's best LR and length, the weight decay a
    quarter of its log range below and above the midpoint the other runs use. None when the
    space fixes the weight decay, no refine rung ran, or both probes are proposed."""
    wd = context.space.weight_decay
    if not isinstance(wd, LogRange):
        return None
    done = [t for t in refine if t.state is TrialState.COMPLETED]
    if not done or any(t.state is TrialState.RUNNING for t in refine):
        return None
    anchor = min(done, key=lambda t: t.score)
    tried = [t.params for t in context.tagged("wd")]
    for unit in (0.5 - WD_PROBE, 0.5 + WD_PROBE):
        params = {**anchor.params, "weight_decay": wd.value(unit)}
        if params not in tried:
            return Proposal(params, anchor.steps, "wd")
    return None


def chosen_weight_decay(context: Context, lr: float) -> float | None:
    """The weight decay for a full run at ``lr``: the best of the probes and the refine run they
    surround; for optimizers that decay by ``lr * weight_decay`` each step (SGD, AdamW) the
    product is what was measured, so it is kept at the new LR. None without probes."""
    probes = [t for t in context.tagged("wd") if t.state is TrialState.COMPLETED]
    wd = context.space.weight_decay
    if not probes or not isinstance(wd, LogRange):
        return None
    anchor_lr = probes[0].lr
    anchors = [t for t in context.tagged("refine") if t.lr == anchor_lr
               and t.state is TrialState.COMPLETED]
    best = min([*probes, *anchors], key=lambda t: t.score)
    value = best.params["weight_decay"]
    if get_optimizer_spec(best.params["optimizer"]).cls in DECAY_BY_PRODUCT:
        value *= anchor_lr / lr
    return min(max(value, wd.low), wd.high)


def final_count(budget: float) -> int:
    """How many full-length runs: one, plus one per whole run of budget beyond two."""
    return max(1, int(budget + 1e-9) - 1)


def next_final_lr(estimate: float, finals: Sequence[TrialRecord],
                  capped: Callable[[float], float]) -> float | None:
    """The next full-length LR: the estimate first, then a walk on the full-length loss itself.

    From the best finished run: a :data:`FINAL_STEP` beyond it when it is the highest or the lowest
    LR tried (one step up after the first: the runs so far give no direction), else halfway (in
    log) towards its better neighbour. Where the cliff or the range blocks that LR, the other way.
    None when every candidate was tried. ``capped`` keeps an LR inside the range and below the
    cliff.
    """
    if not finals:
        return capped(estimate)
    tried = sorted({t.lr for t in finals})
    finite = [t for t in finals if math.isfinite(t.score)]
    if not finite:  # every full run diverged: below all of them
        return _untried([capped(tried[0] / FINAL_STEP)], tried)
    best = min(finite, key=lambda t: t.score).lr
    score = {t.lr: t.score if math.isfinite(t.score) else math.inf for t in finals}
    i = tried.index(best)
    if i == len(tried) - 1:  # the highest (or the only one): up
        candidates = [capped(best * FINAL_STEP), capped(tried[0] / FINAL_STEP)]
    elif i == 0:
        candidates = [capped(best / FINAL_STEP), capped(tried[-1] * FINAL_STEP)]
    else:
        lower, higher = tried[i - 1], tried[i + 1]
        near, far = (lower, higher) if score[lower] <= score[higher] else (higher, lower)
        candidates = [capped(math.sqrt(best * near)), capped(math.sqrt(best * far))]
    return _untried(candidates, tried)


def _untried(candidates: Sequence[float], tried: Sequence[float]) -> float | None:
    """The first candidate not within 1% of an LR already tried."""
    for lr in candidates:
        if all(abs(math.log(lr / t)) > 0.01 for t in tried):
            return lr
    return None


def scan_trials(context: Context, index: int) -> list[TrialRecord]:
    return context.tagged(f"scan:{index}")


def next_scan_lr(context: Context, scan: Sequence[TrialRecord], steps: int,
                 scan_budget: float) -> float | None:
    """The next LR of the scan over the lattice ``high / SPACING**k``, or None when it is done
    (or the next run would take it past ``scan_budget`` steps).

    Walk down a decade at a time from the top of the range (one lattice step at a time just
    after a divergence, to find the cliff) until the loss gets worse than the best seen; then
    fill in the lattice neighbours of the best until both of them are known. Through diverged
    runs that cost half a finished one or more, a decade at a time too: a run of 8 steps blows
    up within them, and lattice steps spent the scan of a short recipe above the cliff (a 60-step
    regression at 1.5 runs kept one finite point, next to the cliff, and its full run blew up).
    A run the LR destroyed (:func:`_destroyed`) is above the cliff too, and a whole run's cost.
    """
    lr_range = context.space.lr_range
    if not context.space.searches_lr:
        return None if scan else lr_range.low
    spent = sum(t.steps if t.state is TrialState.RUNNING else t.steps_done for t in scan)
    if spent + steps > scan_budget:
        return None
    last = int(math.log(lr_range.high / lr_range.low) / math.log(SPACING) + 1e-9)
    tried = {_lattice_index(lr_range.high, t.lr): t for t in scan}
    finite = {k: t for k, t in tried.items() if math.isfinite(t.score) and not _destroyed(t)}
    at = lambda k: max(lr_range.low, lr_range.high / SPACING**k)  # noqa: E731  (no float drift)
    if not finite:  # still above the cliff (or nothing yet): a lattice step down, or a decade
        # where a diverged run costs half a finished one or more
        if not tried:
            return at(0)
        blown = [t.steps_done for t in scan if t.diverged]
        costly = _destroyed(tried[max(tried)]) or blown and np.mean(blown) >= steps / 2
        k = min(max(tried) + (3 if costly else 1), last)
        return at(k) if k not in tried else None
    best = min(finite, key=lambda k: finite[k].score)
    lowest = max(tried)
    if lowest == best and lowest + 3 <= last:  # still improving downwards: next decade
        return at(lowest + 3)
    for k in (best - 1, best + 1, best + 2):  # the best's neighbours, then one more below
        if 0 <= k <= last and k not in tried:
            return at(k)
    return None


def _destroyed(trial: TrialRecord) -> bool:
    """Whether the LR ruined the run without a blow-up: diagnosed *collapsed* (it rose and
    learned next to nothing), and its value no better than its first reported loss, the
    untrained model's. Taken as the scan's best, such a run stopped the walk at the top of the
    range where the run a decade below learned nothing either and read a little worse by noise
    (the 9-step warm-up runs of a GroupNorm CNN under AdamW: answer 8x above the basin), so the
    walk treats it as it treats a diverged run. The value decides, not the verdict alone: a
    noisy-label MLP's scan runs spiked and were "collapsed" by their training loss while their
    held-out loss was the scan's best."""
    first = trial.history[0][1] if trial.history else None
    return (trial.verdict == Status.COLLAPSED.value and first is not None
            and trial.score >= first)


def _lattice_index(high: float, lr: float) -> int:
    return round(math.log(high / lr) / math.log(SPACING))


def next_refine_lr(centre: float, refine: Sequence[TrialRecord]) -> float:
    """Three lattice steps apart around ``centre``, then one chosen from their results:
    beyond the edge if the best is at an edge (the shift was larger or smaller than expected),
    else between the best and its better neighbour."""
    planned = [centre * SPACING ** (1 - k) for k in range(3)]
    if len(refine) < 3:
        return planned[len(refine)]
    ranked = sorted(refine, key=lambda t: t.lr)
    scores = [t.score for t in ranked]
    i = int(np.argmin(scores))
    if i == 0:
        return ranked[0].lr / SPACING
    if i == len(ranked) - 1:
        return ranked[-1].lr * SPACING
    j = i - 1 if scores[i - 1] <= scores[i + 1] else i + 1
    return math.sqrt(ranked[i].lr * ranked[j].lr)


def basin_vertex(trials: Sequence[TrialRecord]) -> float | None:
    """The best LR of one rung: vertex of a weighted quadratic fit of loss over log-LR.

    Fitted around the raw argmin (its neighbours within two grid steps, weighted by distance) so
    one noisy point does not decide; clamped to the fitted points' span. Where fewer than three
    points lie that near (a scan a decade apart), the parabola through the argmin and the nearest
    point on each side: which lattice point happened to be tried must not decide the answer.
    """
    finite = [t for t in trials if math.isfinite(t.score)]
    if not finite:
        return None
    x = np.log(np.array([t.lr for t in finite]))
    y = np.array([t.score for t in finite])
    i = int(np.argmin(y))
    if len(finite) < 3:
        return float(np.exp(x[i]))
    width = 2 * math.log(SPACING) + 1e-9
    near = np.abs(x - x[i]) <= width
    if near.sum() < 3:  # a sparse scan (a decade apart): the parabola through the bracket
        below, above = x < x[i], x > x[i]
        if not below.any() or not above.any():
            return float(np.exp(x[i]))
        near = ((x == x[i]) | (x == x[below].max()) | (x == x[above].min()))
        width = float(np.abs(x[near] - x[i]).max())
        xs, ys = x[near], _limit_cliff(x[near], y[near], x[i], y[i], high_only=True)
    else:
        xs, ys = x[near], _limit_cliff(x[near], y[near], x[i], y[i])
    w = np.exp(-0.5 * ((xs - x[i]) / width) ** 2)
    a, b, _ = np.polyfit(xs, ys, 2, w=np.sqrt(w))
    if a <= 0:
        return float(np.exp(x[i]))
    vertex = float(np.clip(-b / (2 * a), xs.min(), xs.max()))
    return float(np.exp(vertex))


def _limit_cliff(x: np.ndarray, y: np.ndarray, x_best: float, y_best: float,
                 high_only: bool = False) -> np.ndarray:
    """Cap each side's rise at three times the gentler side's (with ``high_only``, only the
    high-LR side's, at three times the low side's: for neighbours that are not equally far from
    the best, where a far point's larger rise is its distance, not a wall).

    Basins are steep on the high side (a network that blew up or died sits at chance level): a
    symmetric fit would read that wall as "go lower" by up to half a lattice step. A point past
    the cliff says "not there", not "how far".
    """
    left, right = y[x < x_best], y[x > x_best]
    if not len(left) or not len(right):
        return y
    low = left[np.argmax(x[x < x_best])] - y_best
    gentle = low if high_only else min(low, right[np.argmin(x[x > x_best])] - y_best)
    cap = y_best + 3 * max(gentle, 0.0)
    return np.where(x > x_best, np.minimum(y, cap), y) if high_only else np.minimum(y, cap)


def final_lr(scan: Sequence[TrialRecord], refine: Sequence[TrialRecord], scan_steps: int,
             full_steps: int, decays: bool, fallback: float) -> float:
    """The full-length LR from the two rungs' bests.

    Under a decaying schedule the best LR moves little and not monotonically past ``T/16``
    (docs/auto.md: mnist1d and charlm's ``T/6`` rungs prefer about half what the full run does,
    digits' a third of its ``T/16`` best), so the rungs are two noisy readings of one LR: their
    mean in log space, each weighted by its precision, one over the square of :func:`_gap` (equal
    where both rungs are a lattice step apart; 9:1 for the refine rung over a scan a decade
    apart, as a 1.5-run budget buys), held at the refine rung's edge where its best run is its
    highest or lowest (:func:`_held_at_edge`). Under a constant LR it moves with the length,
    most often down: the shift measured between the rungs is carried on to the full length as a
    power law, or the prior's (:data:`PRIOR_HORIZON_EXPONENT`) where no refine rung ran.
    ``fallback`` is the answer when neither rung has a finite loss.
    """
    scan_best = basin_vertex(scan)
    refine_best = basin_vertex(refine)
    if refine_best is None and scan_best is not None and not decays:
        # no second rung to measure the shift: the prior carries the scan's best instead
        return scan_best * (full_steps / scan_steps) ** -PRIOR_HORIZON_EXPONENT
    if refine_best is None or scan_best is None:
        return refine_best or scan_best or fallback
    if decays:
        weights = [_gap(rung) ** -2 for rung in (scan, refine)]
        if not sum(weights):
            weights = [1.0, 1.0]
        return _held_at_edge(math.exp((weights[0] * math.log(scan_best)
                                       + weights[1] * math.log(refine_best)) / sum(weights)),
                             refine)
    refine_steps = refine[0].steps
    beta = math.log(scan_best / refine_best) / math.log(refine_steps / scan_steps)
    beta = min(max(beta, 0.0), 1.0)
    return refine_best * (full_steps / refine_steps) ** -beta


def _held_at_edge(lr: float, refine: Sequence[TrialRecord]) -> float:
    """``lr``, held at the refine rung's edge where that rung's best run is its highest (lowest)
    LR: the rung then says only that its basin lies at or beyond that LR (a censored reading, as
    a diverged run is), and the mean with the scan's coarser reading would land on LRs the rung
    measured as worse. Given that bound, the scan's reading is most probable at the edge itself.
    A diverged run beyond the best brackets the basin: no bound then."""
    finite = [t for t in refine if math.isfinite(t.score)]
    if len(finite) < 3:  # two points: either is an edge, and neither says where the basin is
        return lr
    best = min(finite, key=lambda t: t.score).lr
    if best >= max(t.lr for t in refine):
        return max(lr, best)
    if best <= min(t.lr for t in refine):
        return min(lr, best)
    return lr


def _gap(trials: Sequence[TrialRecord]) -> float:
    """How finely a rung resolves its best LR: the wider of the two gaps (in log-LR) between its
    best finite point and the nearest finite point on each side (the one side at an edge; inf
    when it has no other finite point)."""
    finite = [t for t in trials if math.isfinite(t.score)]
    best = min(finite, key=lambda t: t.score)
    sides = [[abs(math.log(t.lr / best.lr)) for t in finite if (t.lr - best.lr) * sign > 0]
             for sign in (-1, 1)]
    gaps = [min(side) for side in sides if side]
    return max(gaps) if gaps else math.inf


def _decays(context: Context, combo: dict) -> bool:
    return schedule_decays(context.space, context.space.config(context.space.lr_range.low,
                                                               **combo), context.full_steps)


def refine_plan(context: Context, scan_steps: int, finals: int) -> tuple[int | None, int]:
    """The refine rung's length and number of points: what the scans and the full runs leave
    (the weight-decay probes included), split evenly over :data:`REFINE_POINTS`, or over fewer
    (down to two) when that many runs would not be :data:`REFINE_MIN_RATIO` times the scan's
    length.

    Read from the budget and the finished scans, not the steps remaining, so every call (and
    every worker) plans the same rung while it runs. ``(None, 0)`` when not even two fit.
    """
    probes = 2 if isinstance(context.space.weight_decay, LogRange) else 0
    scanned = sum(t.steps_done for t in context.live if t.tag.startswith("scan:"))
    left = context.budget_steps - scanned - finals * context.full_steps
    tried = context.tagged("refine")
    for points in range(REFINE_POINTS, 1, -1):
        steps = min(round(context.full_steps * REFINE_MAX_LENGTH), left // (points + probes))
        if tried:
            steps = tried[0].steps
        if steps >= REFINE_MIN_RATIO * scan_steps and steps * (points + probes) <= left:
            return steps, points
    return None, 0


def _unscanned_lr(context: Context, scan: Sequence[TrialRecord], combo: dict) -> float:
    """Where to look when the scan saw no finite loss: below the lowest LR it tried (all of
    them diverged), or at the optimizer's default LR when the budget paid for no scan run."""
    if scan:
        return min(t.lr for t in scan) / SPACING**2
    params = context.space.config(context.space.lr_range.low, **combo)
    return get_optimizer_spec(params["optimizer"]).default_lr


def _cliff(trials: Sequence[TrialRecord], combo: dict) -> float:
    """The lowest LR that diverged with this choice: each optimizer, schedule and warm-up has its
    own cliff (AdamW diverging at 0.3 says nothing of SGD there)."""
    diverged = [t.lr for t in trials if t.diverged and t.matches(combo)]
    return min(diverged) if diverged else math.inf


def _capped(lr: float, cliff: float, lr_range: LogRange) -> float:
    """Inside the space's range and a margin below the lowest LR that diverged."""
    return max(lr_range.low, min(lr, cliff / CLIFF_MARGIN, lr_range.high))


def _best_score(trials: Sequence[TrialRecord]) -> float:
    return min((t.score for t in trials), default=math.inf)
