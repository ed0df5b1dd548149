"""Hyperband / successive halving with the schedule compressed to each rung's budget.

A rung trains each survivor from scratch for ``steps / eta**k`` steps with the *whole* schedule
(warm-up and decay) laid over that length, instead of cutting a long run short: a truncated
cosine never decays, so it ranks LRs as if the schedule were constant.
Each bracket costs ``(s + 1)`` full runs (``eta**s`` configs at ``steps/eta**s``, ...,
one at full length); brackets from the most aggressive one that fits are run until the budget
is spent, as in Hyperband.
"""

from __future__ import annotations

import math

from lrtune.strategies._base import (
    FINISHED, WAIT, Answer, Context, Proposal, Strategy, by_value, key_of, next_untried,
)
from lrtune.strategies._random import sample_configs


class HyperbandStrategy(Strategy):
    name = "hyperband"
    eta = 3

    def brackets(self, context: Context) -> list[int]:
        """Bracket sizes ``s`` (each costs s + 1 full runs) that fit the budget, largest first."""
        remaining, sizes = context.budget, []
        s = min(max(0, math.floor(remaining + 1e-9) - 1), self._max_rungs(context))
        while s >= 0 and remaining >= s + 1 - 1e-9:
            sizes.append(s)
            remaining -= s + 1
            s = min(s, max(0, math.floor(remaining + 1e-9) - 1))
        return sizes

    def _max_rungs(self, context: Context) -> int:
        # at least 8 steps per rung
        return max(0, int(math.log(max(context.full_steps / 8, 1), self.eta)))

    def ask(self, context: Context) -> Answer:
        for b, s in enumerate(self.brackets(context)):
            configs = sample_configs_for(context, b, self.eta ** s)
            keys = [key_of(c) for c in configs]  # None: a value that does not hash
            distinct = len(configs) if None in keys else len(set(keys))
            for rung in range(s + 1):
                tag = f"b{b}r{rung}"
                keep = self.eta ** (s - rung)
                steps = max(1, round(context.full_steps / self.eta ** (s - rung)))
                if rung == 0:
                    candidates = configs
                else:
                    below = context.tagged(f"b{b}r{rung - 1}")
                    # a rung holds eta**k configs, or all the distinct ones there are (a
                    # space with a fixed LR samples one config eta**s times)
                    if len(below) < min(self.eta ** (s - rung + 1), distinct) or not all(
                            t.state.finished for t in below):
                        return WAIT  # the rung below is not finished yet
                    candidates = [t.params for t in by_value(below)[:keep]]
                proposal = next_untried(context, candidates, steps, tag)
                if isinstance(proposal, Proposal):
                    return proposal
        return FINISHED


def sample_configs_for(context: Context, bracket: int, count: int) -> list[dict]:
    """Quasi-random configurations of one bracket (each bracket gets its own scramble)."""
    shifted = Context(context.space, context.full_steps, context.budget,
                      context.seed + 7919 * bracket)
    return sample_configs(shifted, count, quasi=True)
