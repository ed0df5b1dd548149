"""Warm-up in front of any schedule, the way nanoGPT and ``SequentialLR`` lay it out."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from lrtune._validation import check_choice, check_float, check_int, fail
from lrtune.exceptions import InvalidParameterError
from lrtune.schedules._base import Schedule, steps_field

WARMUP_SHAPES = ("cosine", "linear")


@dataclass(frozen=True)
class Warmup(Schedule):
    """Ramp up for ``warmup_steps`` steps, then run ``schedule`` over the remaining steps.

    Same run length as the wrapped schedule (``total_steps = schedule.total_steps``). Steps
    ``0 .. W-1`` ramp from ``start_factor * first`` to ``first`` (``first`` = the wrapped
    schedule's first value), linearly or along a half cosine; from step ``W`` on, the wrapped
    schedule compressed to ``total_steps - W`` runs, so a cosine still reaches its floor at the
    end. This equals ``SequentialLR([LinearLR(start_factor, 1, W), inner(T - W)], [W])``.
    """

    total_steps: int = field(init=False)
    schedule: Schedule
    warmup_steps: int = steps_field(minimum=0, below_total=True)
    start_factor: float = 0.0
    shape: str = "linear"
    # Derived once here (not per call): the compressed inner schedule and its first value.
    _rest: Schedule = field(init=False, repr=False, compare=False)
    _first: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        owner = self._owner()
        if not isinstance(self.schedule, Schedule):
            raise fail("schedule", owner, "a Schedule", self.schedule)
        self._set("total_steps", self.schedule.total_steps)
        super().__post_init__()
        total = self.total_steps
        steps = check_int(self.warmup_steps, "warmup_steps", owner, minimum=0)
        if steps >= total:
            requirement = (
                f"an int in [0, {total - 1}] (the schedule has {total} steps; "
                "no warm-up longer than the schedule)"
            )
            raise fail("warmup_steps", owner, requirement, steps)
        start = check_float(
            self.start_factor, "start_factor", owner, low=0.0, high=1.0, low_inclusive=True
        )
        self._set("shape", check_choice(self.shape, "shape", owner, WARMUP_SHAPES))
        self._set("warmup_steps", steps)
        self._set("start_factor", start)
        rest = self._compress_rest(total, steps)
        self._set("_rest", rest)
        self._set("_first", rest.factor(0))

    def _compress_rest(self, total: int, steps: int) -> Schedule:
        """The wrapped schedule over the steps left after the warm-up.

        Its own error would name its compressed() and a length the user never passed.
        """
        try:
            return self.schedule.compressed(total - steps)
        except InvalidParameterError as error:
            requirement = (
                f"an int that leaves the wrapped {type(self.schedule).__name__} enough steps "
                f"(a warm-up of {steps} of the {total} steps leaves it {total - steps}: too few)"
            )
            raise fail("warmup_steps", self._owner(), requirement, steps) from error

    def compressed(self, total_steps: int) -> Schedule:
        """See :meth:`Schedule.compressed`; a length too short for the warm-up and the wrapped
        schedule is reported as this call's ``total_steps``, the number the user passed."""
        owner = self._owner("compressed")
        new = check_int(total_steps, "total_steps", owner)
        try:
            return super().compressed(new)
        except InvalidParameterError as error:
            requirement = (
                f"an int long enough for the warm-up and the wrapped "
                f"{type(self.schedule).__name__} after it"
            )
            raise fail("total_steps", owner, requirement, new) from error

    def _factor(self, t: int) -> float:
        steps = self.warmup_steps
        if t >= steps:
            return self._rest._factor(t - steps)
        progress = t / steps
        if self.shape == "cosine":
            progress = (1.0 - math.cos(math.pi * progress)) / 2.0
        start = self.start_factor
        return self._first * (start + (1.0 - start) * progress)


def with_warmup(
    schedule: Schedule, warmup_steps: int, start_factor: float = 0.0, shape: str = "linear"
) -> Warmup:
    """``schedule`` preceded by a warm-up of ``warmup_steps`` steps (see :class:`Warmup`)."""
    return Warmup(schedule, warmup_steps, start_factor, shape)
