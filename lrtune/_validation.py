"""Input checks that raise :class:`InvalidParameterError` with one message shape.

``The '<name>' parameter of <owner> must be <requirement>. Got <value> instead.``
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any

from lrtune.exceptions import InvalidParameterError


def fail(name: str, owner: str, requirement: str, value: Any) -> InvalidParameterError:
    """Build (not raise) the error for parameter ``name`` of ``owner``."""
    return InvalidParameterError(
        f"The '{name}' parameter of {owner} must be {requirement}. Got {value!r} instead."
    )


def check_int(
    value: Any, name: str, owner: str, *, minimum: int = 1, maximum: int | None = None
) -> int:
    """An integer ``>= minimum`` (and ``<= maximum``; bools are rejected: ``True`` is not a
    step count)."""
    number = int(value) if isinstance(value, Integral) and not isinstance(value, bool) else None
    if number is None or number < minimum or (maximum is not None and number > maximum):
        bounds = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        raise fail(name, owner, f"an int {bounds}", value)
    return number


def check_float(
    value: Any,
    name: str,
    owner: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = False,
    high_inclusive: bool = True,
) -> float:
    """A finite real number inside the given (optionally open) bounds."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value >= low if low_inclusive else value > low
    if ok and high is not None:
        ok = value <= high if high_inclusive else value < high
    if not ok:
        raise fail(name, owner, _describe_interval(low, high, low_inclusive, high_inclusive), value)
    return float(value)


def check_choice(value: Any, name: str, owner: str, choices: Iterable[str]) -> str:
    """One of ``choices`` as a plain ``str``; the message lists the valid names.

    A str subclass such as numpy's ``np.str_`` is converted: stored as given it would leak into
    checkpoints that ``torch.load(weights_only=True)`` then refuses. ``str.__str__``, not
    ``str()``: ``str()`` of a ``(str, Enum)`` member is its qualified name, not its value.
    Anything else is refused before ``in`` compares it: an array's ``==`` has no truth value.
    """
    options = sorted(choices)
    if not isinstance(value, str) or value not in options:
        raise fail(name, owner, "one of " + ", ".join(repr(o) for o in options), value)
    return str.__str__(value)


def _describe_interval(
    low: float | None, high: float | None, low_inclusive: bool, high_inclusive: bool
) -> str:
    if low is None and high is None:
        return "a finite float"
    if high is None:
        return f"a float {'>=' if low_inclusive else '>'} {low:g}"
    if low is None:
        return f"a float {'<=' if high_inclusive else '<'} {high:g}"
    left = "[" if low_inclusive else "("
    right = "]" if high_inclusive else ")"
    return f"a float in {left}{low:g}, {high:g}{right}"
