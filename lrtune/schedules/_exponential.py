"""Exponential decay."""

from __future__ import annotations

from dataclasses import dataclass

from lrtune._validation import check_float
from lrtune.schedules._base import Schedule, rate_field


@dataclass(frozen=True)
class Exponential(Schedule):
    """``gamma ** t``: equal to ``torch.optim.lr_scheduler.ExponentialLR``.

    ``gamma`` is a per-step rate, so compressing the schedule changes it to keep the total decay
    ``gamma ** total_steps`` of the run.
    """

    gamma: float = rate_field()

    def __post_init__(self) -> None:
        super().__post_init__()
        self._set("gamma", check_float(self.gamma, "gamma", self._owner(), low=0.0, high=1.0))

    def _factor(self, t: int) -> float:
        return self.gamma**t
