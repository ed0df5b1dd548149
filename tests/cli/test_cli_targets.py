"""What the CLI does with the user's targets and output paths: a target that cannot be called the
way the command calls it, and an output file in a folder that does not exist yet.

The entry point runs in-process (``main()`` with ``sys.argv`` set), as the ``lrtune`` script
runs it."""

import inspect
import json

import pytest
from cli_runs import LINEAR_SETUP, one_line_error, run_main, user_folder


TARGETS = '''
objective = 3


def no_args():
    return 1.0


unreadable = max  # a builtin whose signature inspect cannot read: max(trial) raises TypeError
'''



@pytest.fixture
def lrtune_cli(monkeypatch, capsys, tmp_path):
    """Runs ``lrtune ARGS`` in ``tmp_path``, which holds the user's files of this module."""
    files = {"targets_setup.py": LINEAR_SETUP, "targets_objectives.py": TARGETS}
    with user_folder(monkeypatch, tmp_path, files):
        yield lambda *args: run_main(monkeypatch, capsys, args)


def test_find_writes_the_figure_and_history_into_folders_it_creates(lrtune_cli, tmp_path):
    figure, history = tmp_path / "figs" / "run1" / "fig.png", tmp_path / "out" / "history.json"
    proc = lrtune_cli("find", "targets_setup.py:make_setup", "--iters", "50",
                      "--out", str(figure), "--json", str(history))
    assert proc.returncode == 0, proc.stderr
    assert figure.read_bytes().startswith(b"\x89PNG")
    suggestion = json.loads(history.read_text())["suggestion"]
    assert f"Suggested lr: {suggestion:.3g}" in proc.stdout


def test_find_fails_before_the_test_when_the_output_folder_cannot_be_made(lrtune_cli, tmp_path):
    (tmp_path / "taken").write_text("a file where the folder would be")
    line = one_line_error(lrtune_cli("find", "targets_setup.py:make_setup", "--iters", "50",
                                     "--out", "taken/fig.png"))
    assert line == "error: --out: cannot create the folder 'taken' (File exists)."


@pytest.mark.parametrize("name, why", [("objective", "it is of type int"),
                                       ("no_args", "too many positional arguments")])
def test_tune_refuses_a_target_that_cannot_take_the_trial_before_any_study(
        lrtune_cli, tmp_path, name, why):
    target = f"targets_objectives.py:{name}"
    line = one_line_error(lrtune_cli("tune", target, "--steps", "16",
                                     "--storage", f"sqlite:///{tmp_path / 's.db'}",
                                     "--study", "s"))
    assert line == (f"error: TARGET must be a function of one argument, the trial ({why}). Got "
                    f"{target!r} instead.")
    assert not (tmp_path / "s.db").exists()  # refused before a study was created


def test_worker_refuses_a_target_that_cannot_take_the_trial(lrtune_cli, tmp_path):
    target = "targets_objectives.py:no_args"
    line = one_line_error(lrtune_cli("worker", target, "--storage",
                                     f"sqlite:///{tmp_path / 's.db'}", "--study", "s"))
    assert line == ("error: TARGET must be a function of one argument, the trial (too many "
                    f"positional arguments). Got {target!r} instead.")


def test_a_target_without_a_readable_signature_runs_and_fails_outside_lrtunes_wrapper(
        lrtune_cli):
    with pytest.raises(ValueError):  # the premise: the check has to let this one through
        inspect.signature(max)
    line = one_line_error(lrtune_cli("tune", "targets_objectives.py:unreadable",
                                     "--steps", "16"))
    assert line.startswith("error: The objective failed the same way in all ")
    assert "TypeError: 'Trial' object is not iterable" in line
    assert "progress.py" not in line  # the progress wrapper's call is not the failure's place
