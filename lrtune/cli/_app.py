"""The typer application and console that every command module registers on."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    name="lrtune",
    help="Find the best learning rate (and schedule, warm-up, optimizer) for a PyTorch run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(highlight=False, soft_wrap=True)  # logs keep one line per record


@app.callback()
def _root() -> None:
    """Find the best learning rate (and schedule, warm-up, optimizer) for a PyTorch run."""
