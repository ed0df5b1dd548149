"""The typer application and console that every command module registers on."""

from __future__ import annotations

import os

import typer
from rich.console import Console

app = typer.Typer(
    name="lrtune",
    help="Find the best learning rate (and schedule, warm-up, optimizer) for a PyTorch run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# a pipe or a file has no width of its own, and rich's 80 columns stacked each row of `lrtune
# show`'s table over eight lines (`lrtune show | less`, `> trials.txt`); COLUMNS still decides
PIPE_WIDTH = 160


def _console() -> Console:
    console = Console(highlight=False, soft_wrap=True)  # logs keep one line per record
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPE_WIDTH
    return console


console = _console()


@app.callback()
def _root() -> None:
    """Find the best learning rate (and schedule, warm-up, optimizer) for a PyTorch run."""
