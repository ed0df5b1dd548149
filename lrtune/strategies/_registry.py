"""Strategies by name: the built-in ones, those registered in this process, and entry points.

A study stores its strategy's name; a process that reopens it (``lrtune worker``, a report)
rebuilds the strategy from that name, so a custom one must be findable by it here.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import TypeVar

from lrtune._validation import fail
from lrtune.exceptions import UnknownStrategyError
from lrtune.strategies._auto import AutoStrategy
from lrtune.strategies._base import Strategy
from lrtune.strategies._bayes import BayesStrategy
from lrtune.strategies._grid import GridStrategy
from lrtune.strategies._hyperband import HyperbandStrategy
from lrtune.strategies._random import QuasiRandomStrategy, RandomStrategy

ENTRY_POINT_GROUP = "lrtune.strategies"
HOW_TO_REGISTER = (f"decorate its class with @lrtune.strategies.register in a module this "
                   f"process imports, or declare it in the {ENTRY_POINT_GROUP!r} entry-point group")

STRATEGIES: Mapping[str, type[Strategy]] = MappingProxyType({
    cls.name: cls for cls in (AutoStrategy, BayesStrategy, GridStrategy, HyperbandStrategy,
                              QuasiRandomStrategy, RandomStrategy)
})
_registered: dict[str, type[Strategy]] = {}
S = TypeVar("S", bound=type[Strategy])


def register(cls: S) -> S:
    """Make the strategy class ``cls`` known by its ``name`` (usable as a class decorator).

    Studies created with it can then be reopened by name: ``lrtune worker`` and ``lrtune
    report`` rebuild it as ``cls()``, so every constructor argument needs a default.
    """
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise fail("cls", "register()", "a subclass of lrtune.strategies.Strategy", cls)
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise fail("cls", "register()", "a Strategy class with a non-empty str 'name'", cls)
    known = STRATEGIES.get(name) or _registered.get(name)
    if known is not None and _qualname(known) != _qualname(cls):
        raise fail("cls", "register()", f"a class whose name is not taken (the strategy "
                   f"{name!r} is {_qualname(known)})", cls)
    _registered[name] = cls  # the same class again (a module imported twice) replaces itself
    return cls


def strategy_class(name: str) -> type[Strategy] | None:
    """The class of the strategy called ``name``, or None when no one here knows it."""
    found = STRATEGIES.get(name) or _registered.get(name)
    if found is None:
        for point in entry_points(group=ENTRY_POINT_GROUP, name=name):
            found = register(point.load())
    return found


def make_strategy(strategy: str | Strategy, owner: str = "tune()") -> Strategy:
    """A strategy instance from its name (the error lists the names) or the instance itself."""
    if isinstance(strategy, Strategy):
        return strategy
    cls = strategy_class(strategy) if isinstance(strategy, str) else None
    if cls is None:
        names = ", ".join(repr(n) for n in sorted({*STRATEGIES, *_registered}))
        raise fail("strategy", owner, f"a Strategy or one of {names}; a custom strategy is "
                   f"found by its name once registered ({HOW_TO_REGISTER})", strategy)
    return cls()


def stored_strategy(name: str | None, given: str | Strategy | None = None) -> Strategy:
    """The strategy of a stored study, whose config names it ``name`` (None: it does not say):
    ``given`` when that is the same strategy (an instance of a custom one, say), else rebuilt
    from the name. ``given`` stands in when the study does not say; a different one is refused."""
    owner = "load_study()"
    if name is None:
        return make_strategy(given if given is not None else "auto", owner)
    given_name = given.name if isinstance(given, Strategy) else given
    if given_name is not None and given_name != name:
        raise fail("strategy", owner, f"None or the study's own strategy {name!r}", given_name)
    if isinstance(given, Strategy):
        return given
    cls = strategy_class(name)
    if cls is None:
        raise UnknownStrategyError(
            f"The study was created with the strategy {name!r}, which this process does not "
            f"know. To rebuild it, {HOW_TO_REGISTER}; from Python, pass it "
            f"(load_study(..., strategy=...)); from the command line, --strategy "
            f"module:Class or file.py:Class imports and registers it.")
    return cls()


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
