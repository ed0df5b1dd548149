"""The CLI's entry point run in-process (``main()`` with ``sys.argv`` set), as the ``lrtune``
script runs it, and the one line a mistake prints."""

import sys
from dataclasses import dataclass

import pytest

from lrtune.cli import main


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run_main(monkeypatch, capsys, args) -> Ran:
    monkeypatch.setattr(sys, "argv", ["lrtune", *args])
    with pytest.raises(SystemExit) as ended:
        main()
    out, err = capsys.readouterr()
    return Ran(ended.value.code, out, err)


def one_line_error(proc: Ran) -> str:
    """The mistake's message: one line, ``error: ...``, status 2, no traceback or rich box."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "╭" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: ")
    return line
