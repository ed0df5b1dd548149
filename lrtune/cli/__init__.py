"""The ``lrtune`` command line: a thin typed layer over the library.

Each command lives in its own module and registers itself on the shared ``app``. User mistakes
print one line and exit with status 2; set ``LRTUNE_DEBUG=1`` for a traceback.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console

from lrtune.cli import _demo, _find, _report, _tune, _worker  # noqa: F401  (each registers one)
from lrtune.cli._app import app
from lrtune.exceptions import LrtuneError


def main() -> None:
    """Entry point: runs the app, turning library errors into one-line messages."""
    try:
        app()
    except (LrtuneError, ValueError) as err:
        if os.environ.get("LRTUNE_DEBUG"):
            raise
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/] {err}")
        sys.exit(2)


__all__ = ["app", "main"]
