"""Studies persist in Optuna storage, reopen, survive a killed process, and reject bad input."""

import sqlite3
import subprocess
import sys
import textwrap
import time

import optuna
import pytest

import lrtune
from lrtune.exceptions import InvalidParameterError, ObjectiveError
from lrtune.records import TrialState
from lrtune.study import join_study
from lrtune.tasks import objective, task_space

RUNNER = textwrap.dedent("""
    import sys, lrtune
    from lrtune.tasks import get_task, objective, task_space
    task = get_task("digits")
    lrtune.tune(objective(task), steps=task.steps, budget=2.0, strategy="auto",
                space=task_space(task), storage=sys.argv[1], study_name="killed", seed=0)
""")


def _completed(db: str) -> int:
    try:
        with sqlite3.connect(db, timeout=0.5) as conn:  # a stopped writer may hold the lock
            return conn.execute(
                "SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _finished(db: str) -> int | None:
    """Trials no longer running, or None while a writer holds the file's lock."""
    try:
        with sqlite3.connect(db, timeout=0.5) as conn:
            return conn.execute(
                "SELECT COUNT(*) FROM trials WHERE state != 'RUNNING'").fetchone()[0]
    except sqlite3.OperationalError:
        return None


@pytest.mark.slow
def test_killed_study_resumes_without_losing_or_repeating_trials(tmp_path, digits, kill_frozen):
    # the result of a study that is never killed
    clean = lrtune.tune(objective(digits), steps=digits.steps, budget=2.0, strategy="auto",
                        space=task_space(digits), seed=0)
    db = tmp_path / "study.db"
    url = f"sqlite:///{db}"
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, url])
    def midway() -> bool:
        finished = _finished(db)
        return _completed(db) >= 4 and finished is not None and finished < len(clean.trials)

    # killed with 4 trials completed and some left to run, as seen while it is stopped
    while _completed(db) < 4 or not kill_frozen(proc.pid, midway):
        assert proc.poll() is None, "the study ended before it was killed"
        time.sleep(0.05)
    proc.wait()
    before = lrtune.load_study("killed", url).trials
    done_before = [(t.tag, t.lr, t.steps) for t in before if t.state.finished]
    assert 4 <= len(done_before) < len(clean.trials)

    study = lrtune.tune(objective(digits), steps=digits.steps, budget=2.0, strategy="auto",
                        space=task_space(digits), storage=url, study_name="killed", seed=0)
    after = study.trials
    finished = [(t.tag, t.lr, t.steps) for t in after if t.state.finished]
    assert finished[: len(done_before)] == done_before  # nothing lost, nothing rewritten
    assert len(set(finished)) == len(finished)  # nothing repeated
    assert sorted(finished) == sorted((t.tag, t.lr, t.steps) for t in clean.trials)
    assert study.best.lr == clean.best.lr and study.best.value == clean.best.value
    lost = [t for t in after if t.state is TrialState.LOST]
    assert all("lost" in t.error for t in lost)


def test_study_opens_in_optuna_and_reopens_for_reading(tmp_path, digits):
    url = f"sqlite:///{tmp_path / 'o.db'}"
    study = lrtune.tune(objective(digits), steps=digits.steps, budget=1.0, strategy="grid",
                        space=task_space(digits), storage=url, study_name="shared", seed=0)
    plain = optuna.load_study(study_name="shared", storage=url)
    assert plain.best_trial.params["lr"] == study.best.lr
    assert plain.best_value == study.best.value
    reread = lrtune.load_study("shared", url)
    assert [t.value for t in reread.trials] == [t.value for t in study.trials]
    assert reread.trials[0].history and reread.trials[0].diagnosis["status"] == "healthy"


def test_reopening_with_other_settings_is_refused(tmp_path, digits):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    lrtune.tune(objective(digits), steps=digits.steps, budget=1.0, strategy="grid",
                space=task_space(digits), storage=url, study_name="s", seed=0)
    with pytest.raises(lrtune.StorageError, match=r"created with other settings \(steps\)"):
        lrtune.tune(objective(digits), steps=100, budget=1.0, strategy="grid",
                    space=task_space(digits), storage=url, study_name="s", seed=0)


def test_objective_returning_a_non_number_stops_the_study_with_a_clear_error():
    with pytest.raises(ObjectiveError, match=r"must return a number .* it returned 'oops'"):
        lrtune.tune(lambda trial: "oops", steps=10, budget=2.0, strategy="grid",
                    space=lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd"))


def test_reading_a_missing_sqlite_file_is_an_error_and_creates_nothing(tmp_path):
    missing = tmp_path / "typo.db"
    for read in (lambda url: lrtune.load_study("s", url),
                 lambda url: join_study(lambda t: 1.0, storage=url, study_name="s")):
        with pytest.raises(lrtune.StorageError, match=f"No storage at sqlite:///{missing}: the "
                                                      f"file {missing} does not exist"):
            read(f"sqlite:///{missing}")
        assert not missing.exists()
    with pytest.raises(lrtune.StorageError, match="'no url' is not a storage URL"):
        lrtune.load_study("s", "no url")


def test_storage_url_errors_hide_the_password():
    with pytest.raises(lrtune.StorageError) as err:
        lrtune.tune(lambda t: 1.0, steps=10, storage="postgresql://alice:s3cret@127.0.0.1:9/db")
    assert "s3cret" not in str(err.value) and "alice:***@127.0.0.1:9/db" in str(err.value)


@pytest.mark.parametrize("kwargs, message", [
    ({"objective": 3}, r"The 'objective' parameter of tune\(\) must be a callable"),
    ({"steps": 0}, r"The 'steps' parameter of tune\(\) must be an int >= 1\. Got 0"),
    ({"budget": -1.0}, r"The 'budget' parameter of tune\(\) must be a float > 0\. Got -1"),
    ({"strategy": "tpe"}, r"The 'strategy' parameter of tune\(\) must be a Strategy or one of "
                          r"'auto', 'bayes', 'grid', 'hyperband', 'quasirandom', 'random'; a "
                          r"custom strategy is found by its name once registered \(decorate "
                          r"its class with @lrtune.strategies.register .*\)\. Got 'tpe' instead\."),
    ({"budget": 1.0}, r"The 'budget' parameter of tune\(\) must be at least 1.25 full runs for "
                      r"the 'auto' strategy"),
    ({"space": {"lr": 1}}, r"The 'space' parameter of tune\(\) must be an lrtune.Space"),
])
def test_bad_tune_input_fails_before_any_training(kwargs, message):
    calls = []
    args = {"objective": lambda trial: calls.append(trial) or 1.0, "steps": 10, **kwargs}
    with pytest.raises(InvalidParameterError, match=message):
        lrtune.tune(**args)
    assert calls == []


@pytest.mark.parametrize("kwargs, message", [
    ({"lr": (1.0, 0.1)}, r"The 'lr' parameter of Space\(\) must be a \(low, high\) tuple "
                         r"with 0 < low < high"),
    ({"lr": (0.0, 1.0)}, r"The 'lr' parameter of Space\(\) must be a float > 0\. Got 0\.0"),
    ({"lr": -3}, r"The 'lr' parameter of Space\(\) must be a float > 0\. Got -3"),
    ({"optimizer": "lamb"}, r"The 'optimizer' parameter of Space\(\) must be one of 'adagrad'"),
    ({"schedule": "cyclic"}, r"The 'schedule' parameter of Space\(\) must be one of 'constant'"),
    ({"warmup": 1.0},
     r"The 'warmup' parameter of Space\(\) must be a float in \[0, 1\)\. Got 1\.0"),
    ({"optimizer": []},
     r"The 'optimizer' parameter of Space\(\) must be a value or a non-empty list"),
])
def test_bad_space_input(kwargs, message):
    with pytest.raises(InvalidParameterError, match=message):
        lrtune.Space(**kwargs)
