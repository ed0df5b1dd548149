"""Learning-rate schedules as pure functions of the step.

A :class:`Schedule` returns a *factor* of the base (peak) learning rate, so one schedule serves
every learning rate a search tries; :meth:`Schedule.compressed` lays the same shape over a
shorter or longer run; :class:`ScheduledLR` drives a torch optimizer with it.

>>> from lrtune.schedules import make_schedule
>>> schedule = make_schedule("cosine", 1000, warmup=0.05)
>>> round(schedule.lr_at(50, base_lr=3e-4), 6)
0.0003
"""

from lrtune.schedules._base import Schedule
from lrtune.schedules._constant import Constant
from lrtune.schedules._cosine import Cosine
from lrtune.schedules._exponential import Exponential
from lrtune.schedules._inverse_sqrt import InverseSqrt
from lrtune.schedules._linear import Linear, Polynomial
from lrtune.schedules._one_cycle import OneCycle
from lrtune.schedules._registry import SCHEDULES, make_schedule
from lrtune.schedules._step import MultiStep, Step
from lrtune.schedules._torch import ScheduledLR
from lrtune.schedules._warmup import Warmup, with_warmup
from lrtune.schedules._wsd import WarmupStableDecay

__all__ = [
    "SCHEDULES",
    "Constant",
    "Cosine",
    "Exponential",
    "InverseSqrt",
    "Linear",
    "MultiStep",
    "OneCycle",
    "Polynomial",
    "Schedule",
    "ScheduledLR",
    "Step",
    "Warmup",
    "WarmupStableDecay",
    "make_schedule",
    "with_warmup",
]
