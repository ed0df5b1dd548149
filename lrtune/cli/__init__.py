"""The ``lrtune`` command line: a thin typed layer over the library.

Each command lives in its own module and registers itself on the shared ``app``. A mistake (an
option typed wrong, a bad value, an objective that does not import, a study that cannot go on)
prints one line, ``error: ...``, and exits with status 2; set ``LRTUNE_DEBUG=1`` for the
traceback instead.
"""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console
from typer._click import exceptions as _parsing  # typer's own click: its parse errors
from rich.markup import escape

from lrtune._failure import describe
from lrtune.cli import _demo, _find, _report, _tune, _worker  # noqa: F401  (each registers one)
from lrtune.cli._app import app
from lrtune.exceptions import LrtuneError

DEBUG_VARIABLE = "LRTUNE_DEBUG"


def main() -> None:
    """Entry point: runs the app, turning mistakes into one-line messages."""
    try:
        code = app(standalone_mode=False, prog_name="lrtune")
    except _parsing.NoArgsIsHelpError as err:
        err.show()
        sys.exit(2)
    except _parsing.UsageError as err:  # a parse error: one line, not typer's box
        command = err.ctx.command_path if err.ctx is not None else "lrtune"
        _fail(f"{err.format_message().rstrip('.')}; see '{command} --help'.")
    except typer.Abort:
        sys.exit(130)
    except (LrtuneError, ValueError) as err:
        _fail(str(err), err)
    except SyntaxError as err:  # in the user's module, imported by the command
        _fail(f"cannot import {err.filename}: {err.msg} (line {err.lineno})", err)
    except ImportError as err:  # the user's module imports something missing, or an extra
        _fail(describe(err), err)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, err: BaseException | None = None) -> None:
    if err is not None and os.environ.get(DEBUG_VARIABLE):
        raise err
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]error:[/] {escape(message)}")
    sys.exit(2)


__all__ = ["app", "main"]
