"""Grid search: log-spaced LRs (crossed with every choice of the space), full-length runs.

A weight-decay range is searched with the LR: each LR cell gets its own weight-decay cell, in a
seeded random order (a Latin hypercube), so ``n`` runs try ``n`` LRs and ``n`` weight decays.
Compute the grid leaves (a diverged run stops early and costs little) buys more full runs,
halfway in log-LR between the best finite point and its better neighbour, below the cliff.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Hashable, Iterator
from typing import Any

import numpy as np

from lrtune.records import TrialRecord, TrialState
from lrtune.space import Space
from lrtune.strategies._base import (
    FINISHED, WAIT, Answer, Context, Proposal, Strategy, first_untried, full_run_count, key_of,
)


class GridStrategy(Strategy):
    name = "grid"

    def ask(self, context: Context) -> Answer:
        space = context.space
        per_combo = max(1, full_run_count(context) // len(space.choices()))
        try:
            cells: _Cells = _cells_of(space, per_combo, context.seed)
        except TypeError:  # a space that does not hash (a user's schedule object): not kept
            cells = _Cells(space, per_combo, context.seed)
        answer = first_untried(context, cells, context.full_steps, "grid")
        if answer is not FINISHED or context.remaining_steps < context.full_steps:
            return answer
        if context.running:
            return WAIT  # where the next point goes depends on every grid result
        return fill_in(context)


class _Cells:
    """The grid's points in order, each with its key, made as far as asks have read them (a
    large budget allocates nothing) and kept for the next ask: making them again, on every ask,
    was most of what an ask cost in a study of thousands of trials."""

    def __init__(self, space: Space, per_combo: int, seed: int | None) -> None:
        self._made: list[tuple[dict[str, Any], Hashable | None]] = []
        self._source = _points(space, per_combo, seed)
        self._lock = threading.Lock()  # a generator advances in one thread at a time

    def __iter__(self) -> Iterator[tuple[dict[str, Any], Hashable | None]]:
        i = 0
        while True:
            if i == len(self._made):
                with self._lock:
                    if i == len(self._made):
                        point = next(self._source, None)
                        if point is None:
                            return
                        self._made.append((point, key_of(point)))
            yield self._made[i]
            i += 1


@functools.lru_cache(maxsize=8)
def _cells_of(space: Space, per_combo: int, seed: int | None) -> _Cells:
    return _Cells(space, per_combo, seed)


def _points(space: Space, per_combo: int, seed: int | None) -> Iterator[dict[str, Any]]:
    """Points at the centres of equal log-width LR cells (never the extremes of the range),
    crossed with every choice; a weight-decay range pairs each LR cell with one weight-decay
    cell (a Latin hypercube)."""
    lr, wd_cell = space.lr_range, _permutation(per_combo, seed)
    for combo in space.choices():
        for i in range(per_combo):
            yield space.config(lr.value((i + 0.5) / per_combo),
                               unit_weight_decay=(wd_cell(i) + 0.5) / per_combo, **combo)


def fill_in(context: Context) -> Proposal | Answer:
    """A full run halfway (in log-LR) between the best finished run and its better neighbour
    of the same choice, not at or above that choice's lowest diverged LR; FINISHED when every
    such gap is already filled."""
    done = [t for t in context.live if t.state.finished and t.steps >= context.full_steps]
    finite = sorted((t for t in done if math.isfinite(t.score)), key=lambda t: t.score)
    tried = [t.params for t in context.live]
    for best in finite:
        same = _same_choice(done, best.params)
        cliff = min((t.lr for t in same if t.diverged), default=math.inf)
        for lr in _gaps(best, same):
            params = {**best.params, "lr": lr}
            if lr < cliff and params not in tried:
                return Proposal(params, context.full_steps, "grid")
    return FINISHED


def _same_choice(trials: list[TrialRecord], params: dict[str, Any]) -> list[TrialRecord]:
    return [t for t in trials if all(t.params.get(k) == v for k, v in params.items()
                                     if k not in ("lr", "weight_decay"))]


def _gaps(best: TrialRecord, same: list[TrialRecord]) -> list[float]:
    """The log-midpoints between ``best`` and its neighbours in LR, the better neighbour's first
    (a diverged neighbour counts as the worst)."""
    lrs = sorted({t.lr for t in same})
    i = lrs.index(best.lr)
    neighbours = [lrs[j] for j in (i - 1, i + 1) if 0 <= j < len(lrs)]
    score = {t.lr: t.score if t.state is TrialState.COMPLETED else math.inf for t in same}
    neighbours.sort(key=lambda lr: score[lr])
    return [math.sqrt(best.lr * lr) for lr in neighbours]


def _permutation(n: int, seed: int | None) -> Callable[[int], int]:
    """A seeded permutation of ``range(n)`` as a function, ``i -> (a * i + b) mod n`` with ``a``
    coprime to ``n``: no array of ``n`` entries."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(1, n, size=64).tolist() if n > 1 else []
    a = next((a for a in draws if math.gcd(a, n) == 1), 1)
    b = int(rng.integers(n))
    return lambda i: (a * i + b) % n


