"""Constant learning rate."""

from __future__ import annotations

from dataclasses import dataclass

from lrtune.schedules._base import Schedule


@dataclass(frozen=True)
class Constant(Schedule):
    """Factor 1 at every step: the base learning rate throughout (the usual warm-up target)."""

    def _factor(self, t: int) -> float:
        return 1.0
