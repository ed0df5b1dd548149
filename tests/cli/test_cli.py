"""The command line, run for real in-process."""

import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from lrtune.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_demo_tunes_digits_and_explains_its_choice():
    result = runner.invoke(app, ["demo", "--seed", "0"])
    assert result.exit_code == 0, result.output
    epochs = re.findall(r"epoch +(\d+) +step +\d+ +lr ([\d.e+-]+) +train loss ([\d.]+) +val loss ([\d.]+)",
                        result.output)
    assert len(epochs) >= 25  # the final full run, epoch by epoch
    lrs = [float(lr) for _, lr, _, _ in epochs]
    assert lrs[0] > lrs[-1] * 50  # the step decay is visible: two drops of 10x
    recommended = float(re.search(r"Recommended lr: ([\d.e+-]+)", result.output).group(1))
    assert 0.015 < recommended < 0.15
    assert "diverged from lr=" in result.output


def test_tune_runs_a_user_objective_from_a_file(tmp_path):
    db = tmp_path / "cli.db"
    result = runner.invoke(app, ["tune", str(ROOT / "examples/own_loop.py") + ":objective",
                                 "--steps", "300", "--budget", "2", "--optimizer", "sgd",
                                 "--storage", f"sqlite:///{db}", "--study", "cli"])
    assert result.exit_code == 0, result.output
    assert len(re.findall(r"^trial +\d+ ", result.output, flags=re.M)) >= 5
    best = float(re.search(r"best lr ([\d.e+-]+) \(value", result.output).group(1))
    assert 0.005 < best < 0.5
    assert db.exists()


def test_user_mistakes_print_one_line_and_exit_2():
    proc = subprocess.run([sys.executable, "-m", "lrtune.cli", "tune", "nomodule:f", "--steps", "10"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: TARGET: cannot import 'nomodule' (No module named 'nomodule')."]
    assert "Traceback" not in proc.stderr
