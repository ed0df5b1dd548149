"""The strategy extension point: what to try next, with how many steps, and when to give up.

A strategy is a pure function of the study's history (the :class:`Context`): it keeps no state
of its own between calls. That makes studies resumable after a crash and lets several workers
share one study: each asks with the same history and gets the next unclaimed proposal.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lrtune.space import Space
from lrtune.records import TrialRecord, TrialState


@dataclass(frozen=True)
class Proposal:
    """A configuration to train, for how many steps, and which phase of the strategy asked."""

    params: dict[str, Any]
    steps: int
    tag: str = ""


@dataclass(frozen=True)
class Context:
    """Everything a strategy may read: the space, the budget and every trial so far."""

    space: Space
    steps: int  # one full run
    budget: float  # in full runs
    seed: int
    trials: tuple[TrialRecord, ...] = field(default=())

    @property
    def live(self) -> tuple[TrialRecord, ...]:
        """Trials that count: finished or running (lost ones are proposed again)."""
        return tuple(t for t in self.trials if t.state is not TrialState.LOST)

    @property
    def spent_steps(self) -> int:
        """Steps consumed, counting running trials at their full budget (they will spend it)."""
        return sum(t.steps if t.state is TrialState.RUNNING else t.steps_done for t in self.live)

    @property
    def remaining_steps(self) -> int:
        return int(round(self.budget * self.steps)) - self.spent_steps

    def tagged(self, tag: str) -> list[TrialRecord]:
        return [t for t in self.live if t.tag == tag]


class Strategy(abc.ABC):
    """Base class: implement :meth:`ask`; override :meth:`should_stop` / :meth:`recommend` if useful."""

    name: ClassVar[str]
    min_budget: ClassVar[float] = 1.0  # in full runs: less cannot run one useful trial

    @abc.abstractmethod
    def ask(self, context: Context) -> Proposal | None:
        """The next trial to run, or None when the strategy is done (or waits for running trials)."""

    def should_stop(self, context: Context, trial: Any) -> bool:
        """Whether to prune a running trial; called about 50 times a run. Default: never."""
        return False

    def recommend(self, context: Context) -> TrialRecord | None:
        """The answer of the study: the best completed full-length trial, else the best completed."""
        done = [t for t in context.live if t.state is TrialState.COMPLETED]
        full = [t for t in done if t.steps >= context.steps]
        pool = full or done
        return min(pool, key=lambda t: t.score) if pool else None


def full_run_count(context: Context) -> int:
    """How many full-length runs the budget pays for."""
    return max(1, math.floor(context.budget + 1e-9))


def next_untried(
    context: Context, candidates: Sequence[dict[str, Any]], steps: int, tag: str
) -> Proposal | None:
    """The first candidate with no live trial of this tag yet (so workers never duplicate one,
    and a lost trial's candidate is proposed again)."""
    if steps > context.remaining_steps:
        return None
    tried = [t.params for t in context.tagged(tag)]
    return next((Proposal(c, steps, tag) for c in candidates if c not in tried), None)


def by_value(trials: Sequence[TrialRecord]) -> list[TrialRecord]:
    return sorted(trials, key=lambda t: (t.score, t.number))

