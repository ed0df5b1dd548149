"""What `lrtune tune`, `find`, `show` and `report` say when a new user gets something plausible
but wrong: each message states what was seen, in the command line's words, and points the right
way. The entry point runs in-process (``main()`` with ``sys.argv`` set), as the ``lrtune``
script runs it."""

import contextlib

import pytest
from cli_runs import LINEAR_SETUP, one_line_error, run_main, user_folder

import lrtune

OBJECTIVES = '''
import math

import torch
from torch import nn


def healthy(trial):
    """A loss that falls with the steps; the run ends best at lr 0.01."""
    for step in range(trial.steps):
        trial.report(1.0 / (1 + step), step)
    return 0.1 + 0.01 * (math.log10(trial.lr) + 2) ** 2


def cliff(trial):
    """Blows up above lr 0.01, at its third step."""
    for step in range(trial.steps):
        trial.report(1e6 * step if trial.lr > 0.01 else 1.0 / (1 + step), step)
    return 0.1 + 0.01 * (math.log10(trial.lr) + 3) ** 2


def raises_high(trial):
    """A user's own guard: refuses LRs above 0.01."""
    if trial.lr > 0.01:
        raise ValueError("lr above what this model takes")
    for step in range(trial.steps):
        trial.report(1.0 / (1 + step), step)
    return 0.1 + 0.01 * (math.log10(trial.lr) + 3) ** 2


def lr_unused(trial):
    """Trains a model whose optimizer never sees trial.lr: every trial ends the same."""
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    x, y = torch.randn(32, 4), torch.randn(32, 1)
    for step in range(trial.steps):
        loss = nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        trial.report(loss, step)
    return nn.functional.mse_loss(model(x), y).item()


def broken(trial):
    """A bug every trial hits."""
    trial.report(1.0, 0)
    raise KeyError("features")


def too_long(trial):
    """Ignores trial.steps."""
    for step in range(trial.steps + 5):
        trial.report(1.0, step)
    return 1.0


def accuracy(trial):
    """Trains a linear classifier and returns its held-out accuracy: a score to maximise."""
    torch.manual_seed(0)
    w = torch.randn(8)
    x = torch.randn(512, 8)
    y = (x @ w > 0).long()
    model = nn.Linear(8, 2)
    opt = torch.optim.SGD(model.parameters(), lr=trial.lr)
    for step in range(trial.steps):
        batch = slice(32 * (step % 12), 32 * (step % 12 + 1))
        loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
        trial.report(loss, step)
    with torch.no_grad():
        return (model(x[384:]).argmax(1) == y[384:]).float().mean().item()
'''



@pytest.fixture
def lrtune_cli(monkeypatch, capsys, tmp_path):
    """Runs ``lrtune ARGS`` in ``tmp_path``, which holds the user's files of this module."""
    monkeypatch.delenv("LRTUNE_DEBUG", raising=False)
    files = {"mistakes_objectives.py": OBJECTIVES, "mistakes_setup.py": LINEAR_SETUP}
    with user_folder(monkeypatch, tmp_path, files):
        yield lambda *args: run_main(monkeypatch, capsys, args)


def _flat(text: str) -> str:
    return " ".join(text.split())  # rich wraps at 80 columns in a pipe


def test_budget_left_is_put_on_diverged_runs_only_when_a_run_stopped_early(lrtune_cli):
    # grid trains full runs: 2 of 2.5, and nothing diverges
    proc = lrtune_cli("tune", "mistakes_objectives.py:healthy", "--steps", "16", "--budget",
                      "2.5", "--strategy", "grid")
    assert proc.returncode == 0, proc.stderr
    out = _flat(proc.stdout)
    assert "0.50 runs left unspent: less than the next trial the 'grid' strategy would run" in out
    assert "stopped early" not in out and "diverged" not in out
    # of 3, one run blows up at its third step and gives back the rest of its steps
    proc = lrtune_cli("tune", "mistakes_objectives.py:cliff", "--steps", "16", "--budget", "3",
                      "--strategy", "grid")
    assert proc.returncode == 0, proc.stderr
    assert _flat(proc.stdout).endswith("0.75 runs left unspent: less than the next trial the "
                                       "'grid' strategy would run (1 run stopped early and gave "
                                       "back its steps)")


def test_the_resuming_line_says_the_stored_budget_and_never_precedes_a_refusal(lrtune_cli,
                                                                               tmp_path):
    study = ("mistakes_objectives.py:healthy", "--steps", "16", "--strategy", "grid",
             "--storage", f"sqlite:///{tmp_path / 's.db'}", "--study", "s")
    assert lrtune_cli("tune", *study, "--budget", "1").returncode == 0
    grown = lrtune_cli("tune", *study, "--budget", "2")
    assert grown.returncode == 0, grown.stderr
    assert grown.stdout.startswith("resuming: ") and "of 1 runs spent; the budget grows to 2 " \
        "runs" in grown.stdout.splitlines()[0]
    assert "Warning" not in grown.stderr  # said once, in the line above: no Python warning
    for refused in (("--budget", "1"), ("--budget", "2", "--seed", "1")):
        proc = lrtune_cli("tune", *study, *refused)
        one_line_error(proc)
        assert "resuming" not in proc.stdout


def test_a_study_that_is_not_kept_is_not_said_to_resume(lrtune_cli):
    line = one_line_error(lrtune_cli("tune", "mistakes_objectives.py:broken", "--steps", "16"))
    assert line.startswith("error: The objective failed the same way in all ")
    assert "no-name-" not in line and "run again to resume" not in line
    assert line.endswith("fix the objective and run the command again (nothing was kept to "
                         "resume: that needs --storage and --study).")


def test_a_broken_contract_names_the_target_not_tune(lrtune_cli):
    line = one_line_error(lrtune_cli("tune", "mistakes_objectives.py:too_long", "--steps", "16"))
    assert line.startswith("error: TARGET mistakes_objectives.py:too_long broke its contract in "
                           "trial 0: it trained past trial.steps")


def test_the_summary_warns_when_the_lr_changed_nothing_and_the_best_run_went_wrong(lrtune_cli):
    proc = lrtune_cli("tune", "mistakes_objectives.py:lr_unused", "--steps", "32",
                      "--optimizer", "sgd")
    assert proc.returncode == 0, proc.stderr
    out = _flat(proc.stdout)
    assert "warning: the best trial (" in out and ") was stagnant: the loss fell only" in out
    assert "completed trials returned" in out and "the LR changed nothing" in out
    assert "the more it returned" not in out  # equal values: no sign of a score


def test_an_answer_that_learned_nothing_beside_runs_that_trained_asks_whether_it_is_a_score(
        lrtune_cli, tmp_path):
    # a user returning accuracy: lrtune minimises, so the run that learned nothing wins; the
    # tune command's summary asks, and so does the recommendation of show (and the report)
    stored = ("--storage", f"sqlite:///{tmp_path / 's.db'}", "--study", "acc")
    proc = lrtune_cli("tune", "mistakes_objectives.py:accuracy", "--steps", "64", *stored)
    assert proc.returncode == 0, proc.stderr
    out = _flat(proc.stdout)
    assert ") was stagnant: " in out
    assert "; the lower a run's training loss ended, the more it returned: lrtune minimises " \
           "TARGET's value, so if it is a score to maximise (accuracy), return a loss " \
           "(1 - accuracy, or the validation loss)" in out
    shown = lrtune_cli("show", "acc", "--storage", stored[1])
    assert shown.returncode == 0, shown.stderr
    assert "Its run was stagnant: " in shown.stdout and "The lower a run's training loss " \
        "ended, the more its objective returned: lrtune minimises the objective's value, so if " \
        "it is a score to maximise (accuracy), return a loss (1 - accuracy, or the validation " \
        "loss)." in _flat(shown.stdout)


def test_the_summary_says_how_many_trials_failed_and_why(lrtune_cli):
    # a grid of 3 over 1e-6..0.1 (AdamW's range): the top one fails, the search goes on
    proc = lrtune_cli("tune", "mistakes_objectives.py:raises_high", "--steps", "16",
                      "--budget", "3", "--strategy", "grid")
    assert proc.returncode == 0, proc.stderr
    assert "warning: 1 of 3 trials failed, the last at lr 0.0147 with: ValueError: lr above " \
        "what this model takes (at mistakes_objectives.py:" in _flat(proc.stdout)


def test_a_range_above_the_cliff_is_told_where_to_search(lrtune_cli):
    line = one_line_error(lrtune_cli("tune", "mistakes_objectives.py:cliff", "--steps", "16",
                                     "--lr-min", "0.1", "--lr-max", "10"))
    assert line.startswith("error: No trial completed (")
    assert line.endswith("every LR tried diverged, down to 0.1: search below it, e.g. "
                         "--lr-max 0.01.")


@pytest.mark.parametrize("args, expected", [
    (("--workers", "2"), "error: --workers 2 needs --storage: the worker processes share the "
                         "study through it (e.g. sqlite:///lrtune.db)."),
    (("--schedule", "step"), "error: --schedule must be one of constant, cosine, linear, "
                             "polynomial, one-cycle, wsd; 'step' needs parameters beyond its "
                             "length (call lrtune.tune() with make_schedule('step', steps, ...) "
                             "from Python for it). Got 'step' instead."),
    (("--schedule", "cosin"), "error: --schedule must be one of constant, cosine, linear, "
                              "polynomial, one-cycle, wsd. Got 'cosin' instead."),
])
def test_options_the_command_line_cannot_use_are_refused_in_its_words(lrtune_cli, args,
                                                                      expected):
    proc = lrtune_cli("tune", "mistakes_objectives.py:healthy", "--steps", "16", *args)
    assert one_line_error(proc) == expected


def test_a_target_that_is_data_is_named_by_its_type_not_printed(lrtune_cli, tmp_path):
    (tmp_path / "mistakes_objectives.py").write_text("TABLE = list(range(100000))\n")
    line = one_line_error(lrtune_cli("tune", "mistakes_objectives.py:TABLE", "--steps", "16"))
    assert line == ("error: TARGET must be a function of one argument, the trial (it is of type "
                    "list). Got 'mistakes_objectives.py:TABLE' instead.")


def test_find_refuses_a_figure_format_before_the_test_and_names_its_options(lrtune_cli,
                                                                           tmp_path):
    line = one_line_error(lrtune_cli("find", "mistakes_setup.py:make_setup", "--iters", "50",
                                     "--out", "fig.txt"))
    assert line.startswith("error: --out 'fig.txt': matplotlib cannot write '.txt' figures")
    assert list(tmp_path.glob("fig*")) == []
    assert one_line_error(lrtune_cli("find", "--task", "mnist")) == (
        "error: --task must be one of 'charlm', 'diabetes', 'digits', 'mnist1d'. Got 'mnist' "
        "instead.")


def test_find_hints_name_the_options_to_change(lrtune_cli):
    # every LR from 100 up blows the linear regression up at once
    proc = lrtune_cli("find", "mistakes_setup.py:make_setup", "--iters", "50",
                      "--start-lr", "100", "--end-lr", "1e4")
    assert proc.returncode == 0, proc.stderr
    out = _flat(proc.stdout)
    assert "verdict: diverged immediately" in out and "lower --start-lr by a few decades" in out
    assert "start_lr" not in out


def test_show_marks_failed_trials_failed_and_points_up_to_their_errors(lrtune_cli, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"

    def fails_after_training(trial):
        for step in range(trial.steps):
            trial.report(1.0 / (1 + step), step)
        raise ValueError("the evaluation set is empty")

    with contextlib.suppress(lrtune.exceptions.ObjectiveFailedError):  # stopped, or not yet
        lrtune.tune(fails_after_training, steps=32, budget=2.0, storage=url, study_name="s")
    proc = lrtune_cli("show", "s", "--storage", url)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines() if line.split()[:1] == ["0"]]
    assert rows and "failed" in rows[0] and "healthy" not in rows[0]
    assert _flat(proc.stdout).endswith("read the failed trials' errors in the table.")


def test_report_refuses_an_html_file_named_as_a_figure(lrtune_cli, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert lrtune_cli("tune", "mistakes_objectives.py:healthy", "--steps", "16", "--budget", "1",
                      "--strategy", "grid", "--storage", url, "--study", "s").returncode == 0
    line = one_line_error(lrtune_cli("report", "s", "--storage", url, "-o", "out.png"))
    assert line == ("error: -o 'out.png' names a .png file, but --format html writes an HTML "
                    "file: give -o a .html name, or --format png and -o a folder for the "
                    "figures.")
    assert not (tmp_path / "out.png").exists()
