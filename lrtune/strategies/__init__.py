"""Search strategies, one module each behind the small :class:`Strategy` base class.

``grid``, ``random`` and ``quasirandom`` spend the budget on full-length runs; ``bayes`` fits a
surrogate to choose each next full run; ``hyperband`` runs successive halving with the schedule
compressed to each rung; ``auto`` is specialised for the learning rate (see its module). Write
your own with :class:`Strategy` and :func:`register` (docs/api.md, "Write a strategy").
"""

from __future__ import annotations

from lrtune.strategies._auto import AutoStrategy
from lrtune.strategies._base import (
    FINISHED, WAIT, Answer, Context, Proposal, RunningTrial, Signal, Strategy,
)
from lrtune.strategies._bayes import BayesStrategy
from lrtune.strategies._estimate import LrEstimate, best_estimate, estimate_lr
from lrtune.strategies._grid import GridStrategy
from lrtune.strategies._hyperband import HyperbandStrategy
from lrtune.strategies._random import QuasiRandomStrategy, RandomStrategy
from lrtune.strategies._registry import (
    ENTRY_POINT_GROUP, STRATEGIES, make_strategy, register, stored_strategy, strategy_class,
)

__all__ = ["ENTRY_POINT_GROUP", "FINISHED", "STRATEGIES", "WAIT", "Answer", "AutoStrategy",
           "BayesStrategy", "Context", "GridStrategy", "HyperbandStrategy", "LrEstimate",
           "Proposal",
           "QuasiRandomStrategy", "RandomStrategy", "RunningTrial", "Signal", "Strategy",
           "best_estimate", "estimate_lr", "make_strategy", "register", "stored_strategy",
           "strategy_class"]
