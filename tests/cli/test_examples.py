"""Every example's documented command ("Run it with: ...") runs as written and finds a real LR."""

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lrtune.cli import app
from lrtune.optimizers import get_optimizer_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def documented_command(path: Path) -> list[str]:
    (line,) = re.findall(r"Run it with:\s+lrtune (.+)", path.read_text())
    return shlex.split(line)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_the_documented_command_runs_and_ends_inside_the_range(example, monkeypatch):
    monkeypatch.chdir(ROOT)
    command = documented_command(example)
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    best = float(re.search(r"best lr ([\d.e+-]+) \(value", result.output).group(1))
    family = command[command.index("--optimizer") + 1] if "--optimizer" in command else "adamw"
    low, high = get_optimizer_spec(family).lr_range
    assert low * 2 < best < high / 2  # a basin inside the searched range, not one of its ends
