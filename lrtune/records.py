"""What a study remembers of each trial, independent of how it is stored."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any


class TrialState(str, enum.Enum):
    RUNNING = "running"
    COMPLETED = "completed"
    DIVERGED = "diverged"  # stopped by the run monitor: information for the search, not an error
    PRUNED = "pruned"  # stopped by the strategy
    FAILED = "failed"  # the objective raised or returned something that is not a number
    LOST = "lost"  # its worker died; the strategy proposes the config again

    @property
    def finished(self) -> bool:
        return self not in (TrialState.RUNNING, TrialState.LOST)


@dataclass(frozen=True)
class TrialRecord:
    """One trial: its configuration and budget, and how it ended."""

    number: int
    params: dict[str, Any]
    steps: int  # the budget it was given (one full run = the study's steps)
    state: TrialState
    value: float | None = None  # the objective's return value, for completed trials
    steps_done: int = 0  # what it actually trained: the compute it cost
    tag: str = ""  # which phase of the strategy proposed it
    diagnosis: dict[str, Any] | None = None
    error: str | None = None
    # None: non-finite
    history: tuple[tuple[int, float | None], ...] = field(default=(), repr=False)
    wall_time: float | None = None

    @property
    def lr(self) -> float:
        return self.params["lr"]

    def matches(self, params: Mapping[str, Any]) -> bool:
        """Whether the trial ran with these values of these parameters (a choice of the space)."""
        return all(self.params.get(k) == v for k, v in params.items())

    @cached_property
    def params_key(self) -> tuple[tuple[str, Any], ...]:
        """The params as a set key, kept: strategies that look up every tried configuration on
        each ask (grid, random) hash a record once, not once per ask. TypeError when a value
        does not hash (a user's schedule object)."""
        return params_key(self.params)

    @property
    def diverged(self) -> bool:
        return self.state is TrialState.DIVERGED

    @property
    def score(self) -> float:
        """What strategies rank by: the value if completed, +inf for a run that blew up."""
        if self.state is TrialState.COMPLETED and self.value is not None:
            return self.value
        return math.inf

    @property
    def verdict(self) -> str:
        """The diagnosis status when there is one, else the state."""
        if self.diagnosis:
            return self.diagnosis["status"]
        return self.state.value


# the error of a trial lost because its worker died or went silent (not a Ctrl-C, nor a trial
# Ray Tune ended): what the strategies count towards failing a configuration that kills workers
WORKER_DIED = "lost: its worker"


def params_key(params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """``params`` as a hashable key: equal for equal dicts, whatever their order."""
    key = tuple(sorted(params.items()))
    hash(key)  # an unhashable value fails here, where it is made, not at a later lookup
    return key
