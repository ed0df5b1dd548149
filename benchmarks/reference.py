"""The dense-grid reference every LR benchmark is scored against, cached on disk.

For each built-in task and each recipe of the suite (``benchmarks/recipes``), full training runs
(the task's own optimizer, schedule and length) on a log-spaced LR grid, several seeds per point.
The best grid LR is the target a cheap method must reach; :func:`normalised_regret` says how much
of the gap between the best LR and a random guess a method leaves on the table.

Every run is cached in ``benchmarks/out/grid_<task>.json`` keyed by (lr, seed) and by a version of
the task (lrtune's version and a hash of the code that defines the task and its training loop;
for a recipe, its row of the suite and the modules that build it: :meth:`Recipe.version`; and
the two ``lrtune.diagnostics`` modules that decide what counts as diverged),
so re-runs are cheap and a changed task never reuses stale numbers. Runs use one torch thread:
results depend on the thread count (reduction order), so a cache must come from one setting.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmarks.recipes import RECIPES
from benchmarks.results_md import OUT
from benchmarks.tasks import benchmark_task
import lrtune
from lrtune.diagnostics import _divergence, _monitor
from lrtune.tasks import _base, _data, _training, get_task, train

SEEDS = (0, 1, 2)

# Six decades per built-in task (a recipe's grid spans its search range), placed so the good
# region sits in the middle-upper part of the range and the divergence cliff inside it (the known
# rough best LRs: digits ~0.05, diabetes ~3e-4, mnist1d ~0.02, charlm ~0.03).
GRID_RANGES: dict[str, tuple[float, float]] = {
    "digits": (1e-4, 1e2),
    "diabetes": (1e-6, 1e0),
    "mnist1d": (1e-5, 1e1),
    "charlm": (1e-5, 1e1),
}


@dataclass(frozen=True)
class GridReference:
    """Final validation losses of full runs over a log grid of LRs (``inf`` where a run
    diverged)."""

    task: str
    lrs: np.ndarray  # (n,)
    seeds: tuple[int, ...]
    per_seed: np.ndarray  # (n, len(seeds))

    @property
    def losses(self) -> np.ndarray:
        """Mean over seeds per LR; ``inf`` where any seed diverged (the best LR must train on
        all)."""
        return self.per_seed.mean(axis=1)

    @property
    def best_index(self) -> int:
        return int(np.argmin(self.losses))

    @property
    def best_lr(self) -> float:
        return float(self.lrs[self.best_index])

    @property
    def best_loss(self) -> float:
        return float(self.losses[self.best_index])

    @property
    def worst_finite(self) -> float:
        """The worst loss of any run on the grid that did not diverge: the cost of a diverged
        run."""
        finite = self.per_seed[np.isfinite(self.per_seed)]
        return float(finite.max())

    def capped(self, losses: np.ndarray | Sequence[float] | float) -> float:
        """Mean of per-seed losses with diverged (non-finite) runs counted at
        :attr:`worst_finite`."""
        values = np.atleast_1d(np.asarray(losses, dtype=float))
        return float(np.where(np.isfinite(values), values, self.worst_finite).mean())

    @property
    def random_loss(self) -> float:
        """Expected loss of an LR drawn log-uniformly over the grid's range (the grid is
        log-even)."""
        return float(np.mean([self.capped(row) for row in self.per_seed]))

    def to_dict(self) -> dict:
        return {
            "task": self.task, "seeds": list(self.seeds), "lrs": self.lrs.tolist(),
            "per_seed": [[_json_loss(v) for v in row] for row in self.per_seed],
            "best_lr": self.best_lr, "best_loss": self.best_loss,
        }


def normalised_regret(loss: float | Sequence[float], reference: GridReference) -> float:
    """``(loss - best) / (random - best)``: 0 at the grid's best LR, 1 for a random log-uniform LR.

    ``loss`` is one final validation loss or the per-seed losses of runs at one LR. A diverged run
    (``inf``) is counted at the worst finite loss seen on the grid: an infinite penalty would make
    every mean infinite and hide how often a method lands well, while any finite run is at least
    as useful as a diverged one, so the worst trainable run is the fair lower bound on its cost.
    The random baseline uses the same convention, so the scale stays comparable across tasks.
    """
    best = reference.best_loss
    return (reference.capped(loss) - best) / (reference.random_loss - best)


def grid_range(task_name: str) -> tuple[float, float]:
    """Where the task's grid lies: :data:`GRID_RANGES`, or a recipe's search range."""
    return RECIPES[task_name].search_range if task_name in RECIPES else GRID_RANGES[task_name]


def grid_lrs(task_name: str, points_per_decade: int = 5) -> np.ndarray:
    """The task's log-spaced grid: ``points_per_decade`` LRs per decade over :func:`grid_range`."""
    low, high = grid_range(task_name)
    decades = math.log10(high / low)
    return np.logspace(math.log10(low), math.log10(high), round(decades * points_per_decade) + 1)


def grid_reference(
    task_name: str, seeds: Iterable[int] = SEEDS, points_per_decade: int = 5
) -> GridReference:
    """Full runs of ``task_name`` at every grid LR and seed (from the cache where present)."""
    seeds = tuple(seeds)
    lrs = grid_lrs(task_name, points_per_decade)
    cache = run_cache(task_name)
    per_seed = np.array([[cache.val_loss(float(lr), s) for s in seeds] for lr in lrs])
    return GridReference(task_name, lrs, seeds, per_seed)


def full_run_loss(task_name: str, lr: float, seeds: Iterable[int] = SEEDS) -> float:
    """Mean over ``seeds`` of the final validation loss of a full run at ``lr`` (``inf`` if any
    diverged)."""
    cache = run_cache(task_name)
    return float(np.mean([cache.val_loss(float(lr), s) for s in seeds]))


def per_seed_losses(task_name: str, lr: float, seeds: Iterable[int] = SEEDS) -> list[float]:
    """Final validation loss of a full run at ``lr`` for each seed (cached)."""
    cache = run_cache(task_name)
    return [cache.val_loss(float(lr), s) for s in seeds]


def task_version(task_name: str) -> str:
    """lrtune's version plus a hash of the source that defines the task and how it is trained,
    and one of the diagnostics modules whose monitor decides which runs count as diverged."""
    if task_name in RECIPES:
        return f"{RECIPES[task_name].version()}+{_monitor_version()}"
    modules = (inspect.getmodule(type(get_task(task_name))), _base, _data, _training)
    digest = hashlib.sha256()
    for module in modules:
        digest.update(Path(inspect.getfile(module)).read_bytes())
    return f"{lrtune.__version__}+{digest.hexdigest()[:12]}+{_monitor_version()}"


def _monitor_version() -> str:
    """A hash of the modules that decide when a run has diverged (and is stopped); the verdicts'
    wording and the classifier's other findings do not change a cached loss."""
    digest = hashlib.sha256()
    for module in (_monitor, _divergence):
        digest.update(Path(inspect.getfile(module)).read_bytes())
    return digest.hexdigest()[:8]


_caches: dict[str, RunCache] = {}


def run_cache(task_name: str) -> RunCache:
    """The one cache of ``task_name`` in this process (two would overwrite each other's runs)."""
    if task_name not in _caches:
        _caches[task_name] = RunCache(task_name)
    return _caches[task_name]


class RunCache:
    """Final validation losses of full runs of one task, persisted as JSON after each new run."""

    def __init__(self, task_name: str) -> None:
        self.task_name = task_name
        self.version = task_version(task_name)
        self.path = OUT / f"grid_{task_name}.json"
        self.runs: dict[str, float | None] = {}
        if self.path.exists():
            saved = json.loads(self.path.read_text())
            if saved.get("version") == self.version:
                self.runs = saved["runs"]

    def val_loss(self, lr: float, seed: int) -> float:
        key = f"{lr:.6e}|{seed}"
        if key not in self.runs:
            torch.set_num_threads(1)
            result = train(benchmark_task(self.task_name), lr, seed=seed)
            self.runs[key] = _json_loss(result.val_loss)
            self._save()
        value = self.runs[key]
        return math.inf if value is None else float(value)

    def _save(self) -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": self.version, "runs": self.runs}, indent=0))
        os.replace(tmp, self.path)


def _json_loss(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


if __name__ == "__main__":
    import sys

    for name in sys.argv[1:] or GRID_RANGES:
        ref = grid_reference(name)
        print(f"{name}: best lr {ref.best_lr:.3g} (loss {ref.best_loss:.4f}), "
              f"random {ref.random_loss:.4f}, worst finite {ref.worst_finite:.4f}")
        for lr, row, mean in zip(ref.lrs, ref.per_seed, ref.losses, strict=False):
            print(f"  {lr:9.3g}  {mean:9.4f}  " + "  ".join(f"{v:8.4f}" for v in row))
