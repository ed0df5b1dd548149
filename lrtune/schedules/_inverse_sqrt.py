"""Inverse square-root decay (the original Transformer schedule, without its warm-up)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lrtune._validation import check_int
from lrtune.schedules._base import Schedule, steps_field


@dataclass(frozen=True)
class InverseSqrt(Schedule):
    """``1 / sqrt(max(1, t / timescale))``: flat for ``timescale`` steps, then ``~ 1/sqrt(t)``.

    Usually combined with a warm-up of about ``timescale`` steps (see :class:`Warmup`).
    """

    timescale: int = steps_field()

    def __post_init__(self) -> None:
        super().__post_init__()
        self._set("timescale", check_int(self.timescale, "timescale", self._owner()))

    def _factor(self, t: int) -> float:
        return 1.0 / math.sqrt(max(1.0, t / self.timescale))
