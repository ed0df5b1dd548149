"""The CLI's promise: a mistake prints one line, ``error: ...``, and exits with status 2.

The entry point runs in-process (``main()`` with ``sys.argv`` set), as the ``lrtune`` script
runs it."""

import contextlib
import os
import sqlite3
import sys
from pathlib import Path

import pytest
from cli_runs import one_line_error, run_main

import lrtune
from lrtune.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def lrtune_cli(monkeypatch, capsys):
    def run(*args, cwd=ROOT):
        monkeypatch.chdir(cwd)
        return run_main(monkeypatch, capsys, args)

    return run


@pytest.mark.parametrize("args, expected", [
    (["tune", "x:y", "--stpes", "3"],
     "error: No such option: --stpes (Possible options: --seed, --steps, --storage); "
     "see 'lrtune tune --help'."),
    (["tune", "x:y"], "error: Missing option '--steps'; see 'lrtune tune --help'."),
    (["nosuch"], "error: No such command 'nosuch'; see 'lrtune --help'."),
    (["tune", "x:y", "--steps", "3", "--lr-max", "-1"],
     "error: --lr-max must be a float > 0. Got -1.0 instead."),
    (["tune", "x:y", "--steps", "3", "--warmup", "1.5"],
     "error: --warmup must be a float in [0, 1). Got 1.5 instead."),
    (["tune", "x:y", "--steps", "3", "--optimizer", "sgd", "--lr-max", "1e-9"],
     "error: --lr-min must be below --lr-max (a bound not given is the family's default, "
     "0.0001 - 3). Got 0.0001 - 1e-09 instead."),
    (["tune", "examples/own_loop.py:objective", "--steps", "3", "--budget", "-1"],
     "error: --budget must be a float in (0, 100000]. Got -1.0 instead."),
])
def test_parse_errors_and_bad_values_name_the_option_in_one_line(lrtune_cli, args, expected):
    assert one_line_error(lrtune_cli(*args)) == expected


def test_a_module_that_does_not_import_is_one_line_at_the_users_line(lrtune_cli, tmp_path):
    (tmp_path / "missing.py").write_text("import os\nimport not_installed_anywhere\n")
    (tmp_path / "broken.py").write_text("def objective(trial:\n    return 1.0\n")
    assert one_line_error(lrtune_cli("tune", "missing.py:objective", "--steps", "3",
                                     cwd=tmp_path)) == (
        "error: ModuleNotFoundError: No module named 'not_installed_anywhere' (at missing.py:2 "
        "in <module>: import not_installed_anywhere)")
    line = one_line_error(lrtune_cli("tune", "broken.py:objective", "--steps", "3", cwd=tmp_path))
    assert line.startswith(f"error: cannot import {tmp_path / 'broken.py'}: ")
    assert line.endswith("(line 1)")


def test_the_debug_variable_lets_the_exception_through(tmp_path, monkeypatch):
    (tmp_path / "missing.py").write_text("import not_installed_anywhere\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LRTUNE_DEBUG", "1")
    monkeypatch.setattr(sys, "argv", ["lrtune", "tune", "missing.py:objective", "--steps", "3"])
    with pytest.raises(ModuleNotFoundError, match="not_installed_anywhere"):
        main()


OBJECTIVES = '''
import math


def diverges(trial):
    trial.report(1.0, 0)
    return math.nan


def lr_is_loss(trial):
    for step in range(trial.steps):
        trial.report(1.0, step)
    return abs(math.log(trial.lr / 0.01))
'''


def test_no_trial_completed_is_one_line_with_what_happened(lrtune_cli, tmp_path):
    (tmp_path / "objectives.py").write_text(OBJECTIVES)
    line = one_line_error(lrtune_cli("tune", "objectives.py:diverges", "--steps", "10",
                                     "--budget", "1", "--strategy", "random", cwd=tmp_path))
    assert line.startswith("error: No trial completed (1 diverged). ")


def test_lr_max_alone_takes_the_lower_bound_of_the_family_and_repeated_warmup_is_a_choice(
        lrtune_cli, tmp_path):
    (tmp_path / "objectives.py").write_text(OBJECTIVES)
    url = f"sqlite:///{tmp_path / 's.db'}"
    proc = lrtune_cli("tune", "objectives.py:lr_is_loss", "--steps", "10", "--budget", "4",
                      "--strategy", "grid", "--optimizer", "sgd", "--lr-max", "0.05",
                      "--warmup", "0", "--warmup", "0.1", "--storage", url, "--study", "s",
                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    study = lrtune.load_study("s", url)
    low, high = lrtune.optimizers.get_optimizer_spec("sgd").lr_range
    assert (study.space.lr_range.low, study.space.lr_range.high) == (low, 0.05)
    assert study.space.warmup == (0.0, 0.1)
    assert {t.params["warmup"] for t in study.trials} == {0.0, 0.1}
    assert all(low <= t.lr <= 0.05 for t in study.trials)


def test_find_on_a_setup_function_that_needs_an_argument_is_one_line(lrtune_cli, tmp_path):
    (tmp_path / "needs.py").write_text("def make_setup(width):\n    raise AssertionError\n")
    assert one_line_error(lrtune_cli("find", "needs:make_setup", cwd=tmp_path)) == (
        "error: SETUP must be a function of no arguments (missing a required argument: "
        "'width'). Got 'needs:make_setup' instead.")


def test_a_worker_on_a_damaged_database_says_why_in_one_line(lrtune_cli, tmp_path):
    (tmp_path / "objectives.py").write_text(OBJECTIVES)
    db = tmp_path / "s.db"
    proc = lrtune_cli("tune", "objectives.py:lr_is_loss", "--steps", "10", "--budget", "4",
                      "--strategy", "grid", "--storage", f"sqlite:///{db}", "--study", "s",
                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the file
    os.truncate(db, db.stat().st_size // 2)  # a copy cut short: the file is damaged for good
    line = one_line_error(lrtune_cli("worker", "objectives.py:lr_is_loss", "--storage",
                                     f"sqlite:///{db}", "--study", "s", cwd=tmp_path))
    assert line.endswith("DatabaseError: database disk image is malformed")
    assert "max length" not in line  # Optuna's generic message for a failed commit
