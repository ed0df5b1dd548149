"""Strategies by name: the built-in ones, those registered in this process, and entry points.

A study stores its strategy's name; a process that reopens it (``lrtune worker``, a report)
rebuilds the strategy from that name, so a custom one must be findable by it here.
"""

from __future__ import annotations

import inspect
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
    name = _name_of(cls, "cls", "register()")
    known = STRATEGIES.get(name) or _registered.get(name)
    if known is not None and _qualname(known) != _qualname(cls):
        raise fail("cls", "register()", f"a class whose name is not taken (the strategy "
                   f"{name!r} is {_qualname(known)})", cls)
    if inspect.isabstract(cls):
        raise fail("cls", "register()", "a Strategy class that implements ask(context)", cls)
    try:  # rebuilt by name as cls(): found out now, not when a worker reopens the study
        inspect.signature(cls).bind()
    except TypeError:
        raise fail("cls", "register()", "a Strategy class whose constructor arguments all have "
                   f"defaults (workers and reports rebuild {name!r} as {cls.__name__}())",
                   cls) from None
    _registered[name] = cls  # the same class again (a module imported twice) replaces itself
    return cls


def strategy_class(name: str) -> type[Strategy] | None:
    """The class of the strategy called ``name``, or None when no one here knows it."""
    found = STRATEGIES.get(name) or _registered.get(name)
    if found is None:
        for point in entry_points(group=ENTRY_POINT_GROUP, name=name):
            loaded = point.load()
            if getattr(loaded, "name", None) != name:  # its studies would store another name
                raise fail("value", f"the entry point {name!r} of {ENTRY_POINT_GROUP!r}",
                           f"a Strategy class named {name!r}", loaded)
            found = register(loaded)
    return found


def make_strategy(strategy: str | Strategy, owner: str = "tune()") -> Strategy:
    """A strategy instance from its name (the error lists the names) or the instance itself."""
    if isinstance(strategy, Strategy):
        _check_instance(strategy, owner)
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
    given_name = _check_instance(given, owner) if isinstance(given, Strategy) else given
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


def _name_of(cls: type[Strategy], parameter: str, owner: str) -> str:
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise fail(parameter, owner, "a Strategy class with a non-empty str 'name'", cls)
    return name


def _check_instance(strategy: Strategy, owner: str) -> str:
    """The name of ``strategy``, refused when it stands for another class (a built-in's, say,
    taken by a class of the user's): the study stores the name, and workers and reports rebuild
    that class from it. A subclass that keeps its parent's name and only prunes (overrides
    should_stop) still plans and answers as the rebuilt parent does."""
    cls = type(strategy)
    name = _name_of(cls, "strategy", owner)
    known = STRATEGIES.get(name) or _registered.get(name)
    if known is not None and _qualname(known) != _qualname(cls) and not (
            issubclass(cls, known) and cls.ask is known.ask
            and cls.recommend is known.recommend):
        raise fail("strategy", owner, f"a Strategy whose name is its own (the strategy {name!r} "
                   f"is {_qualname(known)}: the study stores the name, and workers and reports "
                   "would rebuild that class from it)", strategy)
    return name


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
