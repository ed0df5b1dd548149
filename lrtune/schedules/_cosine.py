"""Cosine annealing (SGDR without restarts)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lrtune._validation import check_float
from lrtune.schedules._base import Schedule


@dataclass(frozen=True)
class Cosine(Schedule):
    """Half a cosine from 1 down to ``min_factor``, reached at ``total_steps``.

    Equal to ``CosineAnnealingLR(T_max=total_steps, eta_min=base_lr * min_factor)``.
    """

    min_factor: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        value = check_float(
            self.min_factor, "min_factor", self._owner(), low=0.0, high=1.0, low_inclusive=True
        )
        self._set("min_factor", value)

    def _factor(self, t: int) -> float:
        low = self.min_factor
        return low + (1.0 - low) * (1.0 + math.cos(math.pi * t / self.total_steps)) / 2.0
