"""Build schedules by name: ``make_schedule("cosine", 1000, warmup=0.05)``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, fields
from numbers import Integral, Real
from types import MappingProxyType
from typing import Any, cast

from lrtune._validation import check_choice, check_float, check_int, fail
from lrtune.exceptions import InvalidParameterError
from lrtune.schedules._base import Schedule
from lrtune.schedules._constant import Constant
from lrtune.schedules._cosine import Cosine
from lrtune.schedules._exponential import Exponential
from lrtune.schedules._inverse_sqrt import InverseSqrt
from lrtune.schedules._linear import Linear, Polynomial
from lrtune.schedules._one_cycle import OneCycle
from lrtune.schedules._step import MultiStep, Step
from lrtune.schedules._warmup import WARMUP_SHAPES, Warmup
from lrtune.schedules._wsd import WarmupStableDecay

#: Registry name -> schedule class (read-only).
SCHEDULES: Mapping[str, type[Schedule]] = MappingProxyType(
    {
        "constant": Constant,
        "step": Step,
        "multistep": MultiStep,
        "exponential": Exponential,
        "cosine": Cosine,
        "linear": Linear,
        "polynomial": Polynomial,
        "inverse-sqrt": InverseSqrt,
        "one-cycle": OneCycle,
        "wsd": WarmupStableDecay,
    }
)


def make_schedule(
    name: str,
    total_steps: int,
    *,
    warmup: int | float = 0,
    warmup_shape: str = "linear",
    warmup_start: float = 0.0,
    **params: Any,
) -> Schedule:
    """The schedule registered as ``name`` over ``total_steps`` steps, with an optional warm-up.

    ``warmup`` is a number of steps (int) or a fraction of ``total_steps`` (float in [0, 1),
    rounded to the nearest step); a warm-up of 0 returns the bare schedule. ``params`` go to the
    schedule's constructor; unknown or missing ones are reported with the valid names.
    """
    owner = "make_schedule()"
    name = check_choice(name, "name", owner, SCHEDULES)
    total_steps = check_int(total_steps, "total_steps", owner)
    cls = SCHEDULES[name]
    accepted = [f for f in fields(cls) if f.init and f.name != "total_steps"]
    names = [f.name for f in accepted]
    for key, value in params.items():
        if key not in names:
            valid = ", ".join(repr(n) for n in names) if names else "it takes none"
            raise fail(key, owner, f"a parameter of the {name!r} schedule ({valid})", value)
    for f in accepted:
        if f.default is MISSING and f.default_factory is MISSING and f.name not in params:
            raise fail(f.name, owner, f"given: the {name!r} schedule requires it", None)
    steps = _warmup_steps(warmup, total_steps, owner)
    warmup_shape = check_choice(warmup_shape, "warmup_shape", owner, WARMUP_SHAPES)
    warmup_start = check_float(
        warmup_start, "warmup_start", owner, low=0.0, high=1.0, low_inclusive=True
    )
    schedule = cls(total_steps, **params)
    if steps == 0:
        return schedule
    try:
        return Warmup(schedule, steps, warmup_start, warmup_shape)
    except InvalidParameterError as error:
        # Everything else was checked above: the warm-up leaves the schedule too few steps.
        left = total_steps - steps
        requirement = (
            f"a warm-up that leaves the {name!r} schedule enough steps "
            f"(a warm-up of {steps} of the {total_steps} steps leaves it {left}: too few)"
        )
        raise fail("warmup", owner, requirement, warmup) from error


def _warmup_steps(warmup: Any, total_steps: int, owner: str) -> int:
    """Warm-up length in steps: an int as given, a fraction rounded to the nearest step."""
    requirement = (
        f"an int in [0, {total_steps - 1}] or a float fraction in [0, 1) "
        "(no warm-up longer than the schedule)"
    )
    if isinstance(warmup, bool) or not isinstance(warmup, Real):
        raise fail("warmup", owner, requirement, warmup)
    if isinstance(warmup, Integral):
        steps = int(warmup)
    elif 0.0 <= cast(float, warmup) < 1.0:  # numbers.Real has no comparisons in typeshed
        # Round half up, not floor: 0.29 * 100 is 28.999..., which means 29 steps.
        steps = min(int(cast(float, warmup) * total_steps + 0.5), total_steps - 1)
    else:
        steps = -1
    if not 0 <= steps < total_steps:
        raise fail("warmup", owner, requirement, warmup)
    return steps
