"""Linear and polynomial decay."""

from __future__ import annotations

from dataclasses import dataclass

from lrtune._validation import check_float
from lrtune.schedules._base import Schedule


@dataclass(frozen=True)
class Linear(Schedule):
    """Straight line from ``start_factor`` to ``end_factor`` at ``total_steps``.

    Equal to ``LinearLR(start_factor, end_factor, total_iters=total_steps)``; unlike torch,
    ``start_factor`` may be 0 because the factor is computed in closed form, not recursively.
    """

    start_factor: float = 1.0
    end_factor: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("start_factor", "end_factor"):
            value = check_float(
                getattr(self, name), name, self._owner(), low=0.0, high=1.0, low_inclusive=True
            )
            self._set(name, value)

    def _factor(self, t: int) -> float:
        start = self.start_factor
        return start + (self.end_factor - start) * t / self.total_steps


@dataclass(frozen=True)
class Polynomial(Schedule):
    """``(1 - t / total_steps) ** power``: equal to ``PolynomialLR(total_iters=total_steps)``."""

    power: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self._set("power", check_float(self.power, "power", self._owner(), low=0.0))

    def _factor(self, t: int) -> float:
        return (1.0 - t / self.total_steps) ** self.power
