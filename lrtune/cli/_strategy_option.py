"""``--strategy module:Class``: how ``lrtune worker``, ``report`` and ``show`` find a custom one.

A study stores its strategy's name; these commands rebuild it from the registry, which knows the
built-in strategies, entry points and classes registered by modules already imported (the
objective's file, say). The option imports and registers one more.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from lrtune.cli._loading import load_object
from lrtune.strategies import register

StrategyOption = Annotated[Optional[str], typer.Option(
    "--strategy", help="The study's custom strategy class, as module:Class or file.py:Class, "
                       "to import and register (not needed for built-in or registered ones).")]


def register_strategy(spec: str | None) -> None:
    """Import the strategy class named by ``spec`` (if any) and register it by its name."""
    if spec is not None:
        register(load_object(spec, "--strategy"))
