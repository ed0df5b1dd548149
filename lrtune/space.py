"""The search space: the learning rate on a log scale, and what surrounds it.

Each dimension is either fixed (a single value) or searched: the LR and weight decay as a
``(low, high)`` range on a log scale, the others as a list of choices. When ``lr`` is not given
the range comes from the optimizer registry (the union of the ranges of the chosen families).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import MISSING, dataclass, fields
from numbers import Real
from typing import Any

from lrtune._validation import check_choice, check_float, fail
from lrtune.exceptions import LrtuneError
from lrtune.optimizers import OPTIMIZERS
from lrtune.schedules import SCHEDULES, Schedule, make_schedule, with_warmup
from lrtune.schedules._registry import _warmup_steps

_OWNER = "Space()"
CATEGORICAL = ("optimizer", "schedule", "warmup", "momentum")
# the registered schedules that need no parameter beyond their length (``step`` needs its
# ``step_size``: a Space of names has nowhere to carry it)
BUILT_BY_NAME = tuple(name for name, cls in SCHEDULES.items()
                      if all(f.name == "total_steps" or f.default is not MISSING
                             or f.default_factory is not MISSING for f in fields(cls) if f.init))


@dataclass(frozen=True)
class LogRange:
    """A positive range searched on a log scale."""

    low: float
    high: float

    def value(self, unit: float) -> float:
        """The value at position ``unit`` in [0, 1] of the log range (exactly its ends at 0 and
        1)."""
        if unit <= 0 or self.low == self.high:
            return self.low
        if unit >= 1:
            return self.high
        return math.exp(math.log(self.low) + unit * (math.log(self.high) - math.log(self.low)))

    def unit(self, value: float) -> float:
        """The position of ``value`` in [0, 1] (0 in a degenerate range: a fixed LR)."""
        if self.low == self.high:
            return 0.0
        return (math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))


@dataclass(frozen=True, init=False)
class Space:
    """What a study may vary: ``lr`` and, optionally, optimizer, schedule, warm-up, weight decay,
    momentum.

    >>> Space(lr=(1e-5, 1.0), optimizer="adamw", schedule="cosine", warmup=0.05)
    >>> Space(optimizer=["sgd", "adamw"], schedule=["cosine", "wsd"], weight_decay=(1e-5, 1e-1))
    """

    lr: LogRange | float
    optimizer: tuple[str, ...]
    schedule: tuple[str | Schedule, ...]
    warmup: tuple[float, ...]
    weight_decay: LogRange | tuple[float, ...]
    momentum: tuple[float | None, ...]

    def __init__(
        self,
        lr: float | tuple[float, float] | None = None,
        optimizer: str | Sequence[str] = "adamw",
        schedule: str | Schedule | Sequence[str | Schedule] = "constant",
        warmup: float | Sequence[float] = 0.0,
        weight_decay: float | tuple[float, float] | Sequence[float] = 0.0,
        momentum: float | Sequence[float] | None = None,
    ) -> None:
        # each value checked, and a name kept as a plain str, before duplicates are dropped
        optimizers = _unique(check_choice(name, "optimizer", _OWNER, OPTIMIZERS)
                             for name in _as_choices(optimizer, "optimizer"))
        schedules = _unique(_schedule_choice(s) for s in _as_choices(schedule, "schedule"))
        warmups = _unique(check_float(w, "warmup", _OWNER, low=0.0, high=1.0, low_inclusive=True,
                                      high_inclusive=False) for w in _as_choices(warmup, "warmup"))
        momenta = (None,) if momentum is None else _unique(
            check_float(m, "momentum", _OWNER, low=0.0, high=1.0, low_inclusive=True,
                        high_inclusive=False) for m in _as_choices(momentum, "momentum"))
        without = [name for name in optimizers if not OPTIMIZERS[name].takes("momentum")]
        if momentum is not None and without:
            raise fail("momentum", _OWNER, "None with an optimizer that has no momentum "
                       f"({', '.join(without)}: only the SGD and RMSprop families take it)",
                       momentum)
        nesterov = [name for name in optimizers if OPTIMIZERS[name].defaults.get("nesterov")]
        if nesterov and 0.0 in momenta:  # torch refuses it: every such trial would fail
            raise fail("momentum", _OWNER, f"> 0 with {', '.join(nesterov)} (Nesterov momentum "
                       "needs a momentum)", momentum)
        lr_dimension = _lr_dimension(lr, optimizers)
        weight_decay_dimension = _weight_decay_dimension(weight_decay)
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        set_("lr", lr_dimension)
        set_("optimizer", optimizers)
        set_("schedule", schedules)
        set_("warmup", warmups)
        set_("weight_decay", weight_decay_dimension)
        set_("momentum", momenta)

    # -- structure -----------------------------------------------------------------------------
    @property
    def lr_range(self) -> LogRange:
        """The LR range (a degenerate one when the LR is fixed)."""
        return self.lr if isinstance(self.lr, LogRange) else LogRange(self.lr, self.lr)

    @property
    def searches_lr(self) -> bool:
        return isinstance(self.lr, LogRange)

    def choices(self) -> list[dict[str, Any]]:
        """Every combination of the categorical dimensions (weight decay as a range excluded)."""
        dims = {name: getattr(self, name) for name in CATEGORICAL}
        if not isinstance(self.weight_decay, LogRange):
            dims["weight_decay"] = self.weight_decay
        return [dict(zip(dims, combo, strict=True)) for combo in itertools.product(*dims.values())]

    def config(self, lr: float, unit_weight_decay: float = 0.5, **choice: Any) -> dict[str, Any]:
        """A complete parameter dict: ``lr``, the given choices, and defaults for the rest.

        A choice the space does not hold, a misspelt keyword or an LR that is no positive
        float is refused here, in the strategy that asked, not later by the storage. (The LR
        is not held to the range: integrations read the LRs of trials lrtune did not propose.)
        """
        owner = "Space.config()"
        params = {name: getattr(self, name)[0] for name in CATEGORICAL}
        wd = self.weight_decay
        params["weight_decay"] = wd.value(unit_weight_decay) if isinstance(wd, LogRange) else wd[0]
        unknown = sorted(set(choice) - set(params))
        if unknown:
            raise fail("choice", owner, "keyword arguments among " + ", ".join(params), unknown)
        for name, value in choice.items():
            dimension = getattr(self, name)
            if isinstance(dimension, LogRange):
                params[name] = check_float(value, name, owner, low=dimension.low,
                                           high=dimension.high, low_inclusive=True)
            elif value in dimension:  # the space's own value: a str or float, not a NumPy one
                params[name] = dimension[dimension.index(value)]
            else:
                raise fail(name, owner, f"one of the space's choices {list(dimension)}", value)
        params["lr"] = check_float(lr, "lr", owner, low=0.0)
        return params

    def schedule_for(self, params: Mapping[str, Any], steps: int) -> Schedule:
        """The trial's schedule laid out over ``steps`` steps, warm-up included.

        Building a named schedule at the trial's own length *is* the compression: warm-up and
        decay keep their fractions of the run. A user's Schedule object is compressed, and gets
        the warm-up a named schedule would (make_schedule's rounding, which leaves the schedule
        a step even in a one-step trial).
        """
        schedule, warmup = params["schedule"], params["warmup"]
        if isinstance(schedule, Schedule):
            base = schedule.compressed(steps)
            warmup_steps = _warmup_steps(warmup, steps, "Space.schedule_for()")
            return base if warmup_steps == 0 else with_warmup(base, warmup_steps)
        return make_schedule(schedule, steps, warmup=warmup)

    def describe(self) -> dict[str, Any]:
        """Plain data for storage and reports (:meth:`from_description` reads it back)."""
        as_data = lambda d: {"log_range": [d.low, d.high]} if isinstance(d, LogRange) else d  # noqa: E731
        return {
            "lr": as_data(self.lr),
            "optimizer": list(self.optimizer),
            "schedule": [s if isinstance(s, str) else s.describe() for s in self.schedule],
            "warmup": list(self.warmup),
            "weight_decay": as_data(self.weight_decay) if isinstance(self.weight_decay, LogRange)
            else list(self.weight_decay),
            "momentum": list(self.momentum),
        }

    @classmethod
    def from_description(cls, data: Mapping[str, Any]) -> Space:
        """The space :meth:`describe` wrote, schedule objects included.

        A schedule this process cannot rebuild (a class of the user's that is not imported, or
        a study stored before schedules were stored in full) is left out, ``"constant"`` if none
        is left: callers that must run the study compare ``describe()`` with what was stored.
        """
        from_data = lambda d: tuple(d["log_range"]) if isinstance(d, dict) else d  # noqa: E731
        schedules = [rebuilt for s in data.get("schedule", ["constant"])
                     if (rebuilt := _schedule_from_data(s)) is not None]
        return cls(
            lr=from_data(data.get("lr")),
            optimizer=data.get("optimizer", "adamw"),
            schedule=schedules or "constant",
            warmup=data.get("warmup", 0.0),
            weight_decay=from_data(data.get("weight_decay", 0.0)),
            momentum=None if data.get("momentum") in (None, [None]) else data["momentum"],
        )


def _schedule_from_data(data: Any) -> str | Schedule | None:
    if isinstance(data, str):
        return data if data in SCHEDULES else None
    try:
        return Schedule.from_description(data)
    except (LrtuneError, TypeError):  # unknown class, or fields it no longer takes
        return None


def _as_choices(value: Any, name: str) -> tuple[Any, ...]:
    if isinstance(value, (str, Schedule)) or not isinstance(value, Sequence):
        return (value,)
    if len(value) == 0:
        raise fail(name, _OWNER, "a value or a non-empty list of values", value)
    return tuple(value)


def _unique(values: Iterable[Any]) -> tuple[Any, ...]:
    """The checked ``values`` in order, each once: a choice listed twice is one choice, not a run
    left unspent."""
    unique: list[Any] = []
    for value in values:
        if value not in unique:
            unique.append(value)
    return tuple(unique)


def _schedule_choice(value: Any) -> str | Schedule:
    if isinstance(value, Schedule):
        return value
    name = check_choice(value, "schedule", _OWNER, SCHEDULES)
    if name not in BUILT_BY_NAME:
        raise fail("schedule", _OWNER, "a schedule its name alone builds ("
                   f"{', '.join(BUILT_BY_NAME)}), or a Schedule object for one that needs "
                   f"parameters, e.g. make_schedule({name!r}, steps, ...)", value)
    return name


def _lr_dimension(lr: Any, optimizers: tuple[str, ...]) -> LogRange | float:
    if lr is None:
        ranges = [OPTIMIZERS[name].lr_range for name in optimizers]
        return LogRange(min(r[0] for r in ranges), max(r[1] for r in ranges))
    if isinstance(lr, tuple):
        return _log_range(lr, "lr")
    if isinstance(lr, Sequence) and not isinstance(lr, str):  # a list reads as choices: not here
        raise fail("lr", _OWNER, "a float > 0 or a (low, high) tuple to search between", lr)
    return check_float(lr, "lr", _OWNER, low=0.0)


def _weight_decay_dimension(value: Any) -> LogRange | tuple[float, ...]:
    if isinstance(value, tuple) and len(value) == 2:
        if isinstance(value[0], Real) and value[0] == 0:  # meant as "none up to high"
            raise fail("weight_decay", _OWNER, "a (low, high) tuple with 0 < low < high: a log "
                       "scale never reaches 0 (a list of choices such as [0.0, 1e-4, 1e-2] can "
                       "include none)", value)
        return _log_range(value, "weight_decay")
    return _unique(check_float(v, "weight_decay", _OWNER, low=0.0, low_inclusive=True)
                   for v in _as_choices(value, "weight_decay"))


def _log_range(value: tuple[Any, ...], name: str) -> LogRange:
    if len(value) != 2:
        raise fail(name, _OWNER, "a float > 0 or a (low, high) tuple", value)
    low, high = (check_float(v, name, _OWNER, low=0.0) for v in value)
    if low >= high:
        raise fail(name, _OWNER, "a (low, high) tuple with 0 < low < high (a single value fixes "
                   "it)", value)
    return LogRange(low, high)
