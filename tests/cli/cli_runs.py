"""The CLI's entry point run in-process (``main()`` with ``sys.argv`` set), as the ``lrtune``
script runs it, and the one line a mistake prints."""

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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


# a user's range-test setup for `lrtune find file.py:make_setup`: a linear regression, its
# optimizer, its data and its loss
LINEAR_SETUP = '''
import torch
from torch import nn


def make_setup():
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y = x @ torch.randn(8, 1)
    model = nn.Linear(8, 1)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    return model, torch.optim.SGD(model.parameters(), lr=1e-3), data, nn.functional.mse_loss
'''


@contextmanager
def user_folder(monkeypatch, folder: Path, files: Mapping[str, str]) -> Iterator[None]:
    """The CLI run from ``folder`` holding the user's ``files`` (name: source), as a user runs
    it from a project; the modules the loader imported from them are forgotten afterwards."""
    for name, source in files.items():
        (folder / name).write_text(source)
    monkeypatch.chdir(folder)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the loader adds the folder: undo it
    try:
        yield
    finally:
        for name in files:
            sys.modules.pop(Path(name).stem, None)
