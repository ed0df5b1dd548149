"""Search strategies, one module each behind the small :class:`Strategy` base class.

``grid``, ``random`` and ``quasirandom`` spend the budget on full-length runs; ``bayes`` fits a
surrogate to choose each next full run; ``hyperband`` runs successive halving with the schedule
compressed to each rung; ``auto`` is specialised for the learning rate (see its module).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from lrtune._validation import check_choice
from lrtune.strategies._auto import AutoStrategy
from lrtune.strategies._base import Context, Proposal, Strategy
from lrtune.strategies._bayes import BayesStrategy
from lrtune.strategies._grid import GridStrategy
from lrtune.strategies._hyperband import HyperbandStrategy
from lrtune.strategies._random import QuasiRandomStrategy, RandomStrategy

STRATEGIES: Mapping[str, type[Strategy]] = MappingProxyType({
    cls.name: cls for cls in (AutoStrategy, BayesStrategy, GridStrategy, HyperbandStrategy,
                              QuasiRandomStrategy, RandomStrategy)
})


def make_strategy(strategy: str | Strategy) -> Strategy:
    """A strategy instance from its name (the error lists the names) or the instance itself."""
    if isinstance(strategy, Strategy):
        return strategy
    check_choice(strategy, "strategy", "tune()", STRATEGIES)
    return STRATEGIES[strategy]()


__all__ = ["STRATEGIES", "AutoStrategy", "BayesStrategy", "Context", "GridStrategy",
           "HyperbandStrategy", "Proposal", "QuasiRandomStrategy", "RandomStrategy", "Strategy",
           "make_strategy"]
