"""Where a trial stands against the basin its study has mapped: the verdict in context.

A single run can only say what it saw. Inside a study the trials at other LRs say more: a run
that "fell and settled" at 3x the best LR found, ending at twice the best's loss, was too high.
A trial is compared with its peers, the completed trials of the same length and optimizer (a
short scan run and a full run are not comparable). It is near the best only when it is close
in both of two measures: the gap against how far the untrained model was from the best (0.1:
"a tenth of the way back to chance"), and the ratio of the losses (what a person compares; for
a classifier at 0.08, 0.29 is a tenth of the way back to 2.3 yet 3.8x the best's loss).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np

from lrtune.records import TrialRecord, TrialState

MIN_PEERS = 3  # completed peers needed before the study's basin says anything
NEAR_GAP = 0.1  # normalised gap below which a trial is as good as the best ...
NEAR_RATIO = 1.5  # ... if its loss is also within this factor of the best's


@dataclass(frozen=True)
class Standing:
    """A trial against the best of its peers: LR ratio, loss ratio and normalised gap."""

    verdict: str  # "best", "near the best", "too high" or "too low"
    lr_ratio: float  # trial LR / best LR
    loss_ratio: float | None  # trial value / best value (None: diverged, or no finite value)
    gap: float  # (value - best) / (untrained loss - best); inf for a run that blew up
    best: TrialRecord

    def __str__(self) -> str:
        if self.verdict == "best":
            return "the best LR among the runs of its length"  # a short rung has its own best
        where = (f"{_times(self.lr_ratio)} above" if self.lr_ratio >= 1
                 else f"{_times(1 / self.lr_ratio)} below")
        outcome = ("diverged" if math.isinf(self.gap)
                   else f"final loss {_times(self.loss_ratio)} the best's"
                   if self.loss_ratio is not None
                   else f"final loss {self.gap:.2f} of the way back to the untrained loss")
        return f"{where} the best LR found; {outcome}: {self.verdict}"


def standing(trial: TrialRecord, trials: Sequence[TrialRecord]) -> Standing | None:
    """Where ``trial`` stands among ``trials`` (the study's); None until the study has mapped
    enough of the basin (:data:`MIN_PEERS` completed peers) or for a trial that did not run."""
    if trial.state not in (TrialState.COMPLETED, TrialState.DIVERGED):
        return None
    basin = _Basin.of([t for t in trials if _key(t) == _key(trial) and _finished(t)])
    return basin.place(trial) if basin is not None else None


def standings(trials: Sequence[TrialRecord]) -> dict[int, Standing | None]:
    """:func:`standing` of every trial, by number, reading each group of peers once (a report's
    table of thousands of trials called :func:`standing` per row: quadratic)."""
    groups: dict[tuple[int, object], list[TrialRecord]] = {}
    for t in trials:
        if _finished(t):
            groups.setdefault(_key(t), []).append(t)
    basins = {key: _Basin.of(peers) for key, peers in groups.items()}
    return {t.number: basin.place(t) if (basin := basins.get(_key(t))) is not None
            and t.state in (TrialState.COMPLETED, TrialState.DIVERGED) else None
            for t in trials}


@dataclass(frozen=True)
class _Basin:
    """The best of a group of comparable peers, and how far the untrained model was from it."""

    best: TrialRecord
    best_value: float
    distance: float

    @classmethod
    def of(cls, peers: Sequence[TrialRecord]) -> _Basin | None:
        if len(peers) < MIN_PEERS:
            return None
        best = min(peers, key=lambda t: (t.value, t.number))
        value = cast(float, best.value)  # every peer has a finite value
        return cls(best, value, _distance_to_chance(peers, value))

    def place(self, trial: TrialRecord) -> Standing:
        best, best_value = self.best, self.best_value
        lr_ratio = trial.lr / best.lr
        if trial.number == best.number:
            return Standing("best", 1.0, 1.0, 0.0, best)
        if (trial.state is TrialState.DIVERGED or trial.value is None
                or not math.isfinite(trial.value)):
            return Standing("too high" if lr_ratio > 1 else "too low", lr_ratio, None, math.inf,
                            best)
        gap = (trial.value - best_value) / self.distance
        loss_ratio = trial.value / best_value if best_value > 0 else None
        near = gap < NEAR_GAP and (loss_ratio is None or loss_ratio <= NEAR_RATIO)
        verdict = ("near the best" if near
                   else "too high" if lr_ratio > 1 else "too low")
        return Standing(verdict, lr_ratio, loss_ratio, gap, best)


def _times(ratio: float) -> str:
    return f"{ratio:.1f}x" if ratio < 10 else f"{ratio:.0f}x"


def _key(trial: TrialRecord) -> tuple[int, object]:
    """Comparable trials share it: the same length and optimizer (a short scan run and a full
    run are not comparable)."""
    return trial.steps, trial.params.get("optimizer")


def _finished(trial: TrialRecord) -> bool:
    return (trial.state is TrialState.COMPLETED and trial.value is not None
            and math.isfinite(trial.value))


def _distance_to_chance(peers: Sequence[TrialRecord], best: float) -> float:
    """How far the untrained model (the first loss of each peer's history) was from the best;
    the spread of the peers' values where no history was kept."""
    starts = [t.history[0][1] for t in peers if t.history and t.history[0][1] is not None]
    chance = float(np.median(starts)) if starts else max(cast(float, t.value) for t in peers)
    return max(chance - best, 1e-12 * max(abs(best), 1.0))
