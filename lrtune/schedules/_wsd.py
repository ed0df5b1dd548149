"""Warmup-Stable-Decay ("trapezoidal") schedule: flat, then a short final decay."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lrtune._validation import check_choice, check_float
from lrtune.schedules._base import Schedule

DECAY_SHAPES = ("linear", "cosine", "sqrt")


@dataclass(frozen=True)
class WarmupStableDecay(Schedule):
    """1 during the stable phase, then down to ``min_factor`` over the last ``decay_fraction``.

    ``decay_shape`` is ``"linear"``, ``"cosine"`` or ``"sqrt"`` (``1 - sqrt(progress)``, as in the
    WSD literature, e.g. Hägele et al. 2024). The decay starts at the fractional step
    ``(1 - decay_fraction) * total_steps`` (not rounded) so the shape survives compression
    exactly. The warm-up comes from :class:`Warmup`, as for every other schedule.
    """

    decay_fraction: float = 0.2
    decay_shape: str = "linear"
    min_factor: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = self._owner()
        fraction = check_float(self.decay_fraction, "decay_fraction", owner, low=0.0, high=1.0)
        self._set("decay_fraction", fraction)
        self._set("decay_shape", check_choice(self.decay_shape, "decay_shape", owner, DECAY_SHAPES))
        low = check_float(
            self.min_factor, "min_factor", owner, low=0.0, high=1.0, low_inclusive=True
        )
        self._set("min_factor", low)

    def _factor(self, t: int) -> float:
        decay = self.decay_fraction * self.total_steps
        progress = (t - (self.total_steps - decay)) / decay
        if progress <= 0.0:
            return 1.0
        if self.decay_shape == "linear":
            shape = 1.0 - progress
        elif self.decay_shape == "cosine":
            shape = (1.0 + math.cos(math.pi * progress)) / 2.0
        else:
            shape = 1.0 - math.sqrt(progress)
        return self.min_factor + (1.0 - self.min_factor) * shape
