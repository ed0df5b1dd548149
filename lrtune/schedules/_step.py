"""Piecewise-constant decay: every ``step_size`` steps, or at given milestones."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from numbers import Integral

from lrtune._validation import check_float, check_int, fail
from lrtune.schedules._base import Schedule, milestones_field, steps_field


@dataclass(frozen=True)
class Step(Schedule):
    """``gamma ** (t // step_size)``: equal to ``torch.optim.lr_scheduler.StepLR``."""

    step_size: int = steps_field()
    gamma: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = self._owner()
        self._set("step_size", check_int(self.step_size, "step_size", owner))
        self._set("gamma", check_float(self.gamma, "gamma", owner, low=0.0, high=1.0))

    def _factor(self, t: int) -> float:
        return self.gamma ** (t // self.step_size)


@dataclass(frozen=True)
class MultiStep(Schedule):
    """``gamma ** bisect_right(milestones, t)``: equal to ``torch.optim.lr_scheduler.MultiStepLR``.

    Milestones must be strictly increasing and inside ``[1, total_steps]``: a milestone past the
    end would never fire, which is almost always a mistake in the run length.
    """

    milestones: tuple[int, ...] = milestones_field()
    gamma: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = self._owner()
        value = self.milestones
        try:
            value = tuple(value)
        except TypeError:
            pass
        if not _valid_milestones(value, self.total_steps):
            requirement = (
                f"a non-empty, strictly increasing sequence of ints in [1, {self.total_steps}]"
            )
            raise fail("milestones", owner, requirement, value)
        self._set("milestones", tuple(int(m) for m in value))
        self._set("gamma", check_float(self.gamma, "gamma", owner, low=0.0, high=1.0))

    def _factor(self, t: int) -> float:
        return self.gamma ** bisect_right(self.milestones, t)


def _valid_milestones(value: object, total_steps: int) -> bool:
    if not isinstance(value, tuple) or not value:
        return False
    if not all(isinstance(m, Integral) and not isinstance(m, bool) for m in value):
        return False
    increasing = all(a < b for a, b in zip(value, value[1:], strict=False))
    return increasing and 1 <= value[0] and value[-1] <= total_steps
