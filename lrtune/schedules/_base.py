"""The :class:`Schedule` base class: a learning-rate schedule as a pure function of the step.

A schedule returns a *factor* of the base (peak) learning rate rather than a learning rate, so one
schedule object serves every learning rate a search tries and every param group keeps its ratio
to the others. Schedules are frozen dataclasses: constructors only store and validate (as in
scikit-learn), and everything shared (step checks, clamping after the end, plot data,
compression to another run length, a plain description for checkpoints) lives here once.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from numbers import Integral
from typing import Any

import numpy as np

from lrtune._validation import check_float, check_int, fail

_KIND = "lrtune.kind"  # dataclass-field metadata key telling compressed() how to rescale a field
_SMALLEST_RATE = math.ulp(0.0)  # the smallest positive float


def steps_field(*, minimum: int = 1, below_total: bool = False, default: Any = MISSING) -> Any:
    """A field that counts steps: rescaled by new/old length (rounded) when compressed.

    ``minimum`` is the smallest valid value, ``below_total`` caps it at ``total_steps - 1``.
    """
    meta = {_KIND: "steps", "minimum": minimum, "below_total": below_total}
    return field(default=default, metadata=meta)


def milestones_field() -> Any:
    """A strictly increasing tuple of step indices in [1, total_steps]: rescaled when compressed."""
    return field(metadata={_KIND: "milestones"})


def rate_field(*, default: Any = MISSING) -> Any:
    """A per-step rate ``r``: compressed to ``r ** (old / new)`` so the total change is kept."""
    return field(default=default, metadata={_KIND: "rate"})


@dataclass(frozen=True)
class Schedule(ABC):
    """A multiplicative factor of the base learning rate as a pure function of the step.

    Subclasses implement :meth:`_factor` for ``0 <= t <= total_steps``; :meth:`factor` validates
    the step and clamps it, so after the end every schedule holds its end value.
    ``total_steps`` is the run length the schedule is laid out for.
    """

    total_steps: int

    def __post_init__(self) -> None:
        self._set("total_steps", check_int(self.total_steps, "total_steps", self._owner()))

    @classmethod
    def _owner(cls, method: str = "") -> str:
        return f"{cls.__name__}.{method}()" if method else f"{cls.__name__}()"

    def _set(self, name: str, value: Any) -> None:
        """Store a normalised value on the frozen instance (used only while validating)."""
        object.__setattr__(self, name, value)

    @abstractmethod
    def _factor(self, t: int) -> float:
        """The factor at step ``t``, already validated and clamped to ``0 <= t <= total_steps``."""

    def factor(self, step: int) -> float:
        """Multiplier of the base learning rate at ``step`` (an int >= 0).

        On the per-step path, so it stays plain Python: one type check, one comparison.
        """
        if type(step) is not int:
            if isinstance(step, bool) or not isinstance(step, Integral):
                raise fail("step", self._owner("factor"), "an int >= 0", step)
            step = int(step)
        if step < 0:
            raise fail("step", self._owner("factor"), "an int >= 0", step)
        return self._factor(step if step < self.total_steps else self.total_steps)

    def lr_at(self, step: int, base_lr: float = 1.0) -> float:
        """The learning rate at ``step`` for a run whose base (peak) learning rate is ``base_lr``.

        Equal to ``base_lr * factor(step)``.
        """
        base_lr = check_float(base_lr, "base_lr", self._owner("lr_at"), low=0.0)
        return base_lr * self.factor(step)

    def values(self, base_lr: float = 1.0) -> np.ndarray:
        """Learning rates for steps ``0 .. total_steps - 1`` (plot data)."""
        base_lr = check_float(base_lr, "base_lr", self._owner("values"), low=0.0)
        f = self._factor
        n = self.total_steps
        return base_lr * np.fromiter((f(t) for t in range(n)), dtype=np.float64, count=n)

    def compressed(self, total_steps: int) -> Schedule:
        """The same shape laid out over ``total_steps`` steps (shorter or longer).

        Generic over subclasses: step-count fields (see :func:`steps_field`,
        :func:`milestones_field`) are rescaled and rounded, per-step rates (:func:`rate_field`)
        become ``rate ** (old / new)``, nested schedules are compressed recursively, and
        everything else (fractions, shapes, factors) is kept.
        """
        new = check_int(total_steps, "total_steps", self._owner("compressed"))
        old = self.total_steps
        if new == old:
            return self
        kwargs: dict[str, Any] = {}
        for f in fields(self):
            if not f.init:
                continue
            value = getattr(self, f.name)
            kind = f.metadata.get(_KIND)
            if f.name == "total_steps":
                value = new
            elif isinstance(value, Schedule):
                value = value.compressed(max(1, _rescale(value.total_steps, old, new)))
            elif kind == "steps":
                value = _rescale_steps(value, old, new, f.metadata)
            elif kind == "milestones":
                value = self._rescale_milestones(value, old, new)
            elif kind == "rate":
                # A big total decay over few steps underflows to 0.0, which no rate may be;
                # the smallest positive float keeps a valid schedule that decays to ~0 too.
                value = max(value ** (old / new), _SMALLEST_RATE)
            kwargs[f.name] = value
        return type(self)(**kwargs)

    def _rescale_milestones(
        self, milestones: tuple[int, ...], old: int, new: int
    ) -> tuple[int, ...]:
        """Rescale, then nudge apart so they stay strictly increasing inside [1, new]."""
        if new < len(milestones):
            raise fail(
                "total_steps",
                self._owner("compressed"),
                f"an int >= {len(milestones)} (one step per milestone)",
                new,
            )
        out = [min(new, max(1, _rescale(m, old, new))) for m in milestones]
        for i in range(1, len(out)):
            out[i] = max(out[i], out[i - 1] + 1)
        out[-1] = min(out[-1], new)
        for i in range(len(out) - 2, -1, -1):
            out[i] = min(out[i], out[i + 1] - 1)
        return tuple(out)

    def describe(self) -> dict[str, Any]:
        """Plain-data description (type name and parameters, nested schedules included).

        Used by :class:`ScheduledLR` checkpoints to check that a saved state belongs to the same
        schedule; plain lists and numbers so it survives ``torch.load(weights_only=True)``/JSON.
        """
        out: dict[str, Any] = {"type": type(self).__name__}
        for f in fields(self):
            if f.compare:
                out[f.name] = _plain(getattr(self, f.name))
        return out

    @staticmethod
    def from_description(data: Mapping[str, Any]) -> Schedule:
        """The schedule :meth:`describe` wrote, nested schedules included (any schedule class
        imported in this process, so a user's own subclass too).

        Unknown and missing keys are refused, naming the valid ones, and so is a derived value
        (Warmup's ``total_steps``) that disagrees with the rest.
        """
        known = {c.__name__: c for c in _subclasses(Schedule)}
        kind = data.get("type") if isinstance(data, Mapping) else None
        if kind not in known:
            raise fail("data", "Schedule.from_description()",
                       f"a description from Schedule.describe() with a 'type' among "
                       f"{sorted(known)} (a class of your own must be imported first)", data)
        cls = known[kind]
        _check_keys(cls, data)
        params = {f.name: _unplain(data[f.name]) for f in fields(cls)
                  if f.init and f.name in data}
        schedule = cls(**params)
        _check_derived(schedule, data)
        return schedule


def _check_keys(cls: type[Schedule], data: Mapping[str, Any]) -> None:
    """Only keys that describe() writes, and every required parameter: a misspelt key dropped
    silently would rebuild another schedule than the one described."""
    described = [f for f in fields(cls) if f.compare]
    required = ["type"] + [f.name for f in described if f.init and f.default is MISSING
                           and f.default_factory is MISSING]
    optional = [f.name for f in described if f.name not in required]
    unknown = [k for k in data if k not in required and k not in optional]
    missing = [k for k in required if k not in data]
    if not unknown and not missing:
        return
    keys = ", ".join(map(repr, required)) + (
        " and optionally " + ", ".join(map(repr, optional)) if optional else "")
    problem = "; ".join(f"{label}: {', '.join(map(repr, names))}"
                        for label, names in (("unknown", unknown), ("missing", missing)) if names)
    requirement = f"a description of a {cls.__name__}, with the keys {keys} ({problem})"
    raise fail("data", "Schedule.from_description()", requirement, data)


def _check_derived(schedule: Schedule, data: Mapping[str, Any]) -> None:
    """A described field that the constructor derives (Warmup's total_steps) must agree."""
    for f in fields(schedule):
        if f.compare and not f.init and f.name in data:
            value = _plain(getattr(schedule, f.name))
            if data[f.name] != value:
                requirement = (f"a description of a {type(schedule).__name__} whose {f.name!r} "
                               f"is {value!r}, as its other keys give")
                raise fail("data", "Schedule.from_description()", requirement, data)


def _rescale(value: int, old: int, new: int) -> int:
    """``round(value * new / old)`` with halves rounded up, in exact integer arithmetic."""
    return (2 * value * new + old) // (2 * old)


def _rescale_steps(value: int, old: int, new: int, meta: Any) -> int:
    scaled = _rescale(value, old, new)
    if value >= 1:
        scaled = max(scaled, 1)  # a step count that was positive stays positive
    scaled = max(scaled, meta["minimum"])
    if meta["below_total"]:
        scaled = min(scaled, new - 1)
    return scaled


def _subclasses(cls: type) -> list[type]:
    subs: list[type] = cls.__subclasses__()
    return [c for sub in subs for c in (sub, *_subclasses(sub))]


def _unplain(value: Any) -> Any:
    """Inverse of :func:`_plain`: descriptions back to schedules, lists back to tuples."""
    if isinstance(value, Mapping) and "type" in value:
        return Schedule.from_description(value)
    if isinstance(value, list):
        return tuple(_unplain(v) for v in value)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Schedule):
        return value.describe()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        # A numpy scalar left in a field (a subclass of one's own may keep one) would make a
        # checkpoint that torch.load(weights_only=True) refuses.
        return value.item()
    return value
