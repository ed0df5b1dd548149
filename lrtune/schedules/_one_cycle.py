"""The 1cycle policy (Smith & Topin), step for step as ``torch.optim.lr_scheduler.OneCycleLR``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from lrtune._validation import check_choice, check_float, fail
from lrtune.schedules._base import Schedule


@dataclass(frozen=True)
class OneCycle(Schedule):
    """Warm up from ``1/div_factor`` to 1, then anneal to ``1/(div_factor*final_div_factor)``.

    The factor is relative to the *peak* (torch's ``max_lr``) and equals
    ``OneCycleLR(max_lr=base_lr, total_steps=total_steps, cycle_momentum=False, ...)`` at every
    step ``0 .. total_steps - 1``, including torch's phase boundaries (``pct_start * T - 1``, ...).
    The last value is held afterwards (torch raises instead). ``three_phase`` needs
    ``pct_start < 0.5``: otherwise its second phase runs past the end of the run.
    """

    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    anneal: str = "cos"
    three_phase: bool = False
    # (end_step, start_factor, end_factor) per phase; derived, so not compared, hashed or shown.
    _phases: tuple[tuple[float, float, float], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = self._owner()
        if not isinstance(self.three_phase, bool):
            raise fail("three_phase", owner, "a bool", self.three_phase)
        high = 0.5 if self.three_phase else 1.0
        pct = check_float(
            self.pct_start, "pct_start", owner, low=0.0, high=high, high_inclusive=False
        )
        div = check_float(self.div_factor, "div_factor", owner, low=0.0)
        final = check_float(self.final_div_factor, "final_div_factor", owner, low=0.0)
        self._set("anneal", check_choice(self.anneal, "anneal", owner, ("cos", "linear")))
        self._set("pct_start", pct)
        self._set("div_factor", div)
        self._set("final_div_factor", final)
        total, start = self.total_steps, 1.0 / div
        low = start / final
        phases: tuple[tuple[float, float, float], ...]
        if self.three_phase:
            phases = (
                (pct * total - 1, start, 1.0),
                (2 * pct * total - 2, 1.0, start),
                (total - 1, start, low),
            )
        else:
            phases = ((pct * total - 1, start, 1.0), (total - 1, 1.0, low))
        self._set("_phases", phases)

    def _factor(self, t: int) -> float:
        t = min(t, self.total_steps - 1)  # torch's run ends at step T - 1
        begin = 0.0
        last = len(self._phases) - 1
        for i, (end, high, low) in enumerate(self._phases):
            if t <= end or i == last:
                # A phase shorter than one step (tiny runs) has no interior: take its end value.
                pct = (t - begin) / (end - begin) if end > begin else 1.0
                if self.anneal == "cos":
                    return low + (high - low) / 2.0 * (math.cos(math.pi * pct) + 1)
                return (low - high) * pct + high
            begin = end
        raise AssertionError("unreachable: the last phase always matches")
