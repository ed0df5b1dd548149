"""Random search over the space, full-length runs: log-uniform or quasi-random (scrambled Sobol)."""

from __future__ import annotations

import math

import numpy as np

from lrtune.strategies._base import Answer, Context, Strategy, full_run_count, next_untried


def unit_samples(count: int, dims: int, seed: int, quasi: bool) -> np.ndarray:
    """``count`` points in the unit cube; Sobol points cover it more evenly than i.i.d. ones."""
    if quasi:  # draw a power of two (Sobol's balanced sizes), keep the first ``count``
        from scipy.stats import qmc  # here, not at the top: scipy.stats costs 1.6 s to import

        return qmc.Sobol(dims, scramble=True, seed=seed).random_base2(
            max(0, math.ceil(math.log2(count))))[:count]
    return np.random.default_rng(seed).random((count, dims))


def sample_configs(context: Context, count: int, quasi: bool) -> list[dict]:
    """``count`` configurations: log-uniform LR (and weight-decay range), uniform choices."""
    space = context.space
    combos = space.choices()
    units = unit_samples(count, 3, context.seed, quasi)
    return [
        space.config(space.lr_range.value(u[0]), unit_weight_decay=u[1],
                     **combos[min(int(u[2] * len(combos)), len(combos) - 1)])
        for u in units
    ]


class RandomStrategy(Strategy):
    name = "random"
    quasi = False

    def ask(self, context: Context) -> Answer:
        candidates = sample_configs(context, full_run_count(context), self.quasi)
        return next_untried(context, candidates, context.full_steps, self.name)


class QuasiRandomStrategy(RandomStrategy):
    name = "quasirandom"
    quasi = True
