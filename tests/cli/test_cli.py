"""The command line, run for real in-process."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lrtune.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_demo_tunes_digits_and_explains_its_choice():
    result = runner.invoke(app, ["demo", "--seed", "0"])
    assert result.exit_code == 0, result.output
    epochs = re.findall(r"epoch +(\d+) +step +\d+ +lr ([\d.e+-]+) +train loss ([\d.]+)"
                        r" +val loss ([\d.]+)",
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
    proc = subprocess.run([sys.executable, "-m", "lrtune.cli", "tune", "nomodule:f",
                           "--steps", "10"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: TARGET: cannot import 'nomodule' (No module named 'nomodule')."]
    assert "Traceback" not in proc.stderr


SIBLING = '''
import torch
from torch import nn

from lrtune.tasks import get_task

TASK = get_task("digits")


def make_model(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
'''

SETUP = '''
import torch
from torch import nn

from digits_net import TASK, make_model  # a module beside this file


def make_setup():
    model = make_model(0)
    return (model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9),
            TASK.train_loader(0), nn.functional.cross_entropy)
'''

OBJECTIVE = '''
import torch
from torch import nn

from digits_net import TASK, make_model  # a module beside this file


def objective(trial):
    model = make_model(trial.seed)
    opt = torch.optim.SGD(model.parameters(), lr=trial.lr, momentum=0.9)
    step = 0
    while step < trial.steps:
        for x, y in TASK.train_loader(trial.seed):
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            trial.report(loss, step)
            step += 1
            if step == trial.steps:
                break
    return TASK.evaluate(model)
'''


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A user's folder: a setup file and an objective file that import a sibling module."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "digits_net.py").write_text(SIBLING)
    (folder / "setup.py").write_text(SETUP)
    (folder / "objective.py").write_text(OBJECTIVE)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the loader adds the folder: undo it
    yield folder
    for name in ("digits_net", "setup", "objective"):
        sys.modules.pop(name, None)


def test_find_runs_a_setup_file_that_imports_a_sibling_module(project, monkeypatch):
    monkeypatch.chdir(project)  # as docs/cli.md shows it: lrtune find setup.py:make_setup
    result = runner.invoke(app, ["find", "setup.py:make_setup", "--iters", "100"])
    assert result.exit_code == 0, result.output
    suggested = float(re.search(r"Suggested lr: ([\d.e+-]+)", result.output).group(1))
    assert 1e-3 < suggested < 3  # SGD with momentum on a digits MLP
    assert re.search(r"diverged at lr [\d.e+-]+", result.output)  # swept up to 10: it blew up


def test_tune_runs_an_objective_file_that_imports_a_sibling_module(project, tmp_path):
    # run from elsewhere: the file's own folder, not the current directory, makes the import work
    result = runner.invoke(app, ["tune", str(project / "objective.py") + ":objective",
                                 "--steps", "200", "--budget", "2", "--optimizer", "sgd",
                                 "--storage", f"sqlite:///{tmp_path / 'cli.db'}", "--study", "s"])
    assert result.exit_code == 0, result.output
    best = float(re.search(r"best lr ([\d.e+-]+) \(value", result.output).group(1))
    assert 0.005 < best < 0.5


def test_tune_notes_when_its_budget_could_not_measure_a_constant_lr_horizon():
    result = runner.invoke(app, ["tune", str(ROOT / "examples/own_loop.py") + ":objective",
                                 "--steps", "600", "--budget", "1.5", "--optimizer", "sgd"])
    assert result.exit_code == 0, result.output
    assert re.search(r"note: at a constant LR the best LR moves with the run's length.*"
                     r"a larger budget buys them", " ".join(result.output.split()))


def test_tune_states_its_interval_and_warns_when_the_answer_sits_at_the_edge():
    # the own-loop MLP on digits trains best with SGD around 0.1: a range up to 1e-3 is too low
    result = runner.invoke(app, ["tune", str(ROOT / "examples/own_loop.py") + ":objective",
                                 "--steps", "300", "--budget", "2", "--optimizer", "sgd",
                                 "--lr-min", "1e-5", "--lr-max", "1e-3"])
    assert result.exit_code == 0, result.output
    low, lr, high = (float(x) for x in re.search(
        r"estimated full-length best lr ([\d.e+-]+) \(68% interval ([\d.e+-]+)-([\d.e+-]+)\)",
        result.output).group(2, 1, 3))
    assert low <= lr <= high <= 1e-3
    assert re.search(r"warning: the best LR sits at the high end of the searched range.*"
                     r"1e-05 - 0\.01", result.output.replace("\n", " "))


def test_a_study_too_small_to_fit_a_basin_says_its_interval_is_the_resolution_alone():
    # 1.5 runs of this 300-step recipe buy a scan a decade apart and two refine points (three
    # would be shorter than 1.5 scan runs): no length has three points near its best, so the
    # interval is how far apart the LRs tried were, not a measured uncertainty
    result = runner.invoke(app, ["tune", str(ROOT / "examples/own_loop.py") + ":objective",
                                 "--steps", "300", "--budget", "1.5", "--optimizer", "sgd"])
    assert result.exit_code == 0, result.output
    line = result.output.replace("\n", " ").split("estimated")[1]
    assert re.match(r" full-length best lr [\d.e+-]+ \(68% interval [\d.e+-]+-[\d.e+-]+\), the "
                    r"search's resolution alone", line)


def test_output_to_a_pipe_or_a_file_is_wide_enough_for_a_trial_row_unless_columns_says(
        monkeypatch):
    # rich gives a pipe 80 columns: `lrtune show | less` stacked each trial's row over 8 lines
    import io

    from lrtune.cli._app import PIPE_WIDTH, _console

    monkeypatch.setattr(sys, "stdout", io.StringIO())
    monkeypatch.delenv("COLUMNS", raising=False)
    assert _console().width == PIPE_WIDTH
    monkeypatch.setenv("COLUMNS", "100")
    assert _console().width == 100
