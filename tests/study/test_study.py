"""Studies persist in Optuna storage, reopen, survive a killed process, and reject bad input."""

import math
import re
import sqlite3
import subprocess
import sys
import textwrap
import time
import warnings

import optuna
import pytest
import torch

import lrtune
from lrtune.exceptions import InvalidParameterError, ObjectiveError, StudyExtendedWarning
from lrtune.records import TrialState
from lrtune.report import report_data
from lrtune.strategies import make_strategy
from lrtune.study import Study, join_study
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
    with pytest.raises(lrtune.StorageError, match=r"created with other settings \(steps: "
                                                  r"600 stored, 100 given\)"):
        lrtune.tune(objective(digits), steps=100, budget=1.0, strategy="grid",
                    space=task_space(digits), storage=url, study_name="s", seed=0)


def test_objective_returning_a_non_number_stops_the_study_with_a_clear_error():
    with pytest.raises(ObjectiveError, match=r"must return a number .* it returned 'oops'"):
        lrtune.tune(lambda trial: "oops", steps=10, budget=2.0, strategy="grid",
                    space=lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd"))


def test_an_objective_may_return_its_loss_tensor_but_not_a_loss_per_sample():
    def objective(trial):
        loss = torch.tensor([abs(math.log10(trial.lr) + 2)], requires_grad=True) * 2
        return loss if trial.lr < 0.5 else loss.expand(3)  # `return loss`, as reported

    space = lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd")
    study = lrtune.tune(objective, steps=10, budget=1.0, strategy="grid", space=space)
    assert study.trials[0].value == pytest.approx(2 * abs(math.log10(study.trials[0].lr) + 2))
    with pytest.raises(ObjectiveError,
                       match=r"must return a number .* it returned tensor\(\[3\.7782, "):
        lrtune.tune(objective, steps=10, budget=1.0, strategy="grid",
                    space=lrtune.Space(lr=(0.6, 1.0), optimizer="sgd"))


def test_an_objective_returning_a_number_past_the_floats_diverged():
    study = lrtune.tune(lambda trial: 10 ** 400, steps=10, budget=1.0, strategy="grid",
                        space=lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd"))
    (trial,) = study.trials
    assert trial.state is TrialState.DIVERGED  # like inf, not an OverflowError in lrtune
    assert trial.error == "the objective returned a number too large for a float"


@pytest.mark.parametrize("change, differs", [
    (dict(space=lrtune.Space(lr=(1e-4, 1.0), optimizer="sgd")),
     "space.lr.log_range: [0.001, 1.0] stored, [0.0001, 1.0] given"),
    (dict(strategy="grid", seed=3), "seed: 0 stored, 3 given; strategy: 'random' stored, "
                                    "'grid' given"),
], ids=["space", "strategy-and-seed"])
def test_reopening_with_other_settings_names_each_one_with_both_values(tmp_path, change,
                                                                      differs):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    settings = dict(steps=10, budget=1.0, strategy="random", storage=url, study_name="s",
                    space=lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd"), seed=0)
    lrtune.tune(lambda trial: trial.lr, **settings)
    with pytest.raises(lrtune.StorageError) as caught:
        lrtune.tune(lambda trial: trial.lr, **{**settings, **change})
    assert str(caught.value) == (f"The study 's' in {url} was created with other settings "
                                 f"({differs}): use another study name or the same settings.")


@pytest.mark.parametrize("change", [
    {}, dict(budget=2.0), dict(budget=0.5), dict(steps=20), dict(seed=3),
    dict(strategy="grid"), dict(space=lrtune.Space(lr=(1e-4, 1.0), optimizer="sgd")),
], ids=["same", "larger-budget", "smaller-budget", "steps", "seed", "strategy", "space"])
def test_reopens_with_says_whether_tune_goes_on_with_the_stored_study(tmp_path, change):
    # the CLI prints "resuming: ..." from it before tune() runs
    url = f"sqlite:///{tmp_path / 'r.db'}"
    settings = dict(steps=10, budget=1.0, strategy="random", storage=url, study_name="s",
                    space=lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd"), seed=0)
    lrtune.tune(lambda trial: trial.lr, **settings)
    given = {**settings, **change}
    predicted = lrtune.load_study("s", url).reopens_with(
        space=given["space"], steps=given["steps"], budget=given["budget"],
        strategy=given["strategy"], seed=given["seed"])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StudyExtendedWarning)
            lrtune.tune(lambda trial: trial.lr, **given)
        went_on = True
    except (lrtune.StorageError, InvalidParameterError):
        went_on = False
    assert predicted == went_on
    assert went_on == (change in ({}, dict(budget=2.0)))


def test_a_study_lrtune_did_not_create_is_not_reopened(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    plain = optuna.create_study(study_name="s", storage=url)
    plain.optimize(lambda trial: trial.suggest_float("lr", 1e-3, 1.0, log=True), n_trials=1)
    space = lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd")
    assert not lrtune.load_study("s", url).reopens_with(space=space, steps=10, budget=1.0,
                                                         strategy="random", seed=0)
    with pytest.raises(lrtune.StorageError, match="an Optuna study that lrtune did not create"):
        lrtune.tune(lambda trial: trial.lr, steps=10, budget=1.0, strategy="random",
                    storage=url, study_name="s", space=space, seed=0)


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
    with pytest.raises(lrtune.StorageError, match=r"'sqlite://typo\.db' is not a storage URL: a "
                                                  r"SQLite file is 'sqlite:///' and its path "
                                                  r"\('sqlite:///typo\.db'"):
        lrtune.load_study("s", "sqlite://typo.db")


def test_storage_url_errors_hide_the_password():
    with pytest.raises(lrtune.StorageError) as err:
        lrtune.tune(lambda t: 1.0, steps=10, storage="postgresql://alice:s3cret@127.0.0.1:9/db")
    assert "s3cret" not in str(err.value) and "alice:***@127.0.0.1:9/db" in str(err.value)


@pytest.mark.parametrize("kwargs, message", [
    ({"objective": 3}, r"The 'objective' parameter of tune\(\) must be a callable"),
    ({"steps": 0}, r"The 'steps' parameter of tune\(\) must be an int >= 1\. Got 0"),
    ({"budget": -1.0},
     r"The 'budget' parameter of tune\(\) must be a float in \(0, 100000\]\. Got -1"),
    ({"strategy": "tpe"}, r"The 'strategy' parameter of tune\(\) must be a Strategy or one of "
                          r"'auto', 'bayes', (.*, )?'grid', 'hyperband', 'quasirandom', 'random'"
                          r"(, '[^;]*)?; a "  # strategies other tests registered may be listed
                          r"custom strategy is found by its name once registered \(decorate "
                          r"its class with @lrtune.strategies.register .*\)\. Got 'tpe' instead\."),
    ({"budget": 1.0}, r"The 'budget' parameter of tune\(\) must be at least 1.25 full runs for "
                      r"the 'auto' strategy"),
    ({"space": {"lr": 1}}, r"The 'space' parameter of tune\(\) must be an lrtune.Space"),
    ({"study_name": 5}, r"The 'study_name' parameter of tune\(\) must be a non-empty str or "
                        r"None\. Got 5"),
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
    ({"schedule": "step"}, r"The 'schedule' parameter of Space\(\) must be a schedule its name "
                           r"alone builds \(constant, .*make_schedule\('step', steps, ...\)"),
    ({"optimizer": ["sgd", "adam"], "momentum": [0.8, 0.9]},
     r"The 'momentum' parameter of Space\(\) must be None with an optimizer that has no "
     r"momentum \(adam: only the SGD and RMSprop families take it\)"),
])
def test_bad_space_input(kwargs, message):
    with pytest.raises(InvalidParameterError, match=message):
        lrtune.Space(**kwargs)


def _snapshot(url: str, name: str) -> tuple:
    """Everything stored of study ``name``: its attrs and every trial as Optuna has it."""
    stored = optuna.load_study(study_name=name, storage=url)
    return stored.user_attrs, [(t.number, t.state, t.params, t.value, t.user_attrs)
                               for t in stored.get_trials()]


def test_a_plain_optuna_study_of_the_same_name_is_not_taken_over(tmp_path, digits):
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    plain = optuna.create_study(study_name="mine", storage=url)
    plain.optimize(lambda trial: (trial.suggest_float("x", -1, 1) - 0.3) ** 2, n_trials=3)
    before = _snapshot(url, "mine")
    with pytest.raises(lrtune.StorageError, match=r"The study 'mine' in sqlite:///.*plain.db is an "
                       r"Optuna study that lrtune did not create \(3 trials, direction minimize\)"):
        lrtune.tune(objective(digits), steps=digits.steps, budget=1.0, strategy="grid",
                    space=task_space(digits), storage=url, study_name="mine")
    assert _snapshot(url, "mine") == before


def test_a_plain_optuna_study_is_read_with_the_space_standing_in(tmp_path, digits):
    """Its trials name only the LR and have no length: the space's fixed dimensions fill in the
    rest and each counts as a full run (estimate, show and report failed on both)."""
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    x, y = digits.data.x_train[:256], digits.data.y_train[:256]

    def train(trial):  # 30 full-batch SGD steps of a linear model on digits
        torch.manual_seed(0)
        model = torch.nn.Linear(64, 10)
        optimizer = torch.optim.SGD(model.parameters(), lr=trial.suggest_float("lr", 1e-3, 3.0,
                                                                               log=True))
        for _ in range(30):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
        return float(loss)

    optuna.create_study(study_name="mine", storage=url,
                        sampler=optuna.samplers.RandomSampler(seed=0)).optimize(train, n_trials=8)
    study = lrtune.load_study("mine", url, space=lrtune.Space(lr=(1e-3, 3.0), optimizer="sgd"))
    assert all(t.steps == t.steps_done == study.steps for t in study.trials)
    estimate = study.estimate
    assert estimate is not None and estimate.low <= estimate.lr <= estimate.high
    assert "Train with lr" in report_data(study).recommendation


def test_an_lr_range_narrower_than_the_estimates_resolution_is_estimated(digits):
    """The posterior's blur took 3 sd in grid steps: 2.4e9 points here (it ran out of memory)."""
    study = lrtune.tune(objective(digits), steps=60, budget=2.0, strategy="grid", seed=0,
                        space=lrtune.Space(lr=(0.05, 0.05 * (1 + 1e-9)), optimizer="sgd",
                                           schedule="constant"))
    estimate = study.estimate
    assert estimate is not None and 0.05 <= estimate.lr <= 0.05 * (1 + 1e-9)


@pytest.fixture
def spent_three_runs(tmp_path, digits):
    """A stored grid study of three short digits runs (60 steps each), spent."""
    url = f"sqlite:///{tmp_path / 'spent.db'}"
    settings = dict(steps=60, strategy="grid", space=task_space(digits), storage=url,
                    study_name="spent", seed=0)
    study = lrtune.tune(objective(digits), budget=3.0, **settings)
    assert study.spent == 3.0 and study.budget == 3.0
    return url, settings


def test_a_smaller_budget_is_refused_and_changes_nothing(spent_three_runs, digits):
    url, settings = spent_three_runs
    before = _snapshot(url, "spent")
    calls = []
    with pytest.raises(InvalidParameterError, match=r"The 'budget' parameter of tune\(\) must be "
                       r"at least 3, the budget of the stored study 'spent' \(a study's budget "
                       r"can grow, not shrink\)\. Got 1\.0 instead\."):
        lrtune.tune(lambda trial: calls.append(trial) or 1.0, budget=1.0, **settings)
    assert calls == [] and _snapshot(url, "spent") == before
    assert lrtune.load_study("spent", url).budget == 3.0


def test_a_larger_budget_extends_the_study_and_says_so(spent_three_runs, digits):
    url, settings = spent_three_runs
    reader = lrtune.load_study("spent", url)  # another process's view, opened before
    with pytest.warns(StudyExtendedWarning, match=r"had a budget of 3 runs: extended to 4"):
        study = lrtune.tune(objective(digits), budget=4.0, **settings)
    assert study.spent == 4.0 and len(study.trials) == 4
    assert reader.budget == 4.0 and reader.spent == 4.0  # one budget, read from the storage


def test_a_joiner_with_another_heartbeat_is_refused_and_the_stored_one_holds(tmp_path, digits):
    url = f"sqlite:///{tmp_path / 'beat.db'}"
    settings = dict(steps=60, budget=1.0, strategy="grid", space=task_space(digits),
                    storage=url, study_name="beat", seed=0)
    Study.open(**{**settings, "strategy": make_strategy("grid")})  # created with the default
    before = _snapshot(url, "beat")
    assert before[0]["lrtune:heartbeat"] == 5.0
    calls = []
    with pytest.raises(InvalidParameterError, match=r"The 'heartbeat' parameter of tune\(\) must "
                       r"be 5 seconds, the heartbeat of the stored study 'beat'.* Got 0\.1 "):
        lrtune.tune(lambda trial: calls.append(trial) or 1.0, heartbeat=0.1, **settings)
    assert calls == [] and _snapshot(url, "beat") == before
    # a joiner that names no heartbeat beats at the study's
    study = lrtune.tune(objective(digits), **settings)
    assert study.heartbeat == 5.0 and study.spent == 1.0


def test_a_reader_reads_only_what_changed_and_sees_what_a_fresh_reader_sees(tmp_path):
    url = f"sqlite:///{tmp_path / 'inc.db'}"
    space = lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd")
    writer = lrtune.tune(lambda trial: (math.log10(trial.lr) + 1.5) ** 2, steps=8, budget=4.0,
                         strategy="grid", space=space, storage=url, study_name="inc")
    reader = lrtune.load_study("inc", url)
    assert [t.value for t in reader.trials] == [t.value for t in writer.trials]
    whole_reads = []
    storage = reader._storage
    read_all = storage.get_all_trials
    storage.get_all_trials = lambda *a, **k: (whole_reads.append(k.get("states")) or
                                             read_all(*a, **k))
    worker = {"host": "h", "pid": 1}
    running, n_running = writer.start_trial(space.config(0.1), 8, "x", worker)
    assert reader.trials[-1].state is TrialState.RUNNING  # seen running ...
    writer.finish_trial(running, TrialState.COMPLETED, 0.25, steps_done=8)  # ... then finished
    quick, _ = writer.start_trial(space.config(0.2), 8, "x", worker)  # created and finished
    writer.finish_trial(quick, TrialState.DIVERGED, None, steps_done=3)  # between two reads
    dup, _ = writer.start_trial(space.config(0.3), 8, "x", worker)
    writer.retire(dup, "a concurrent duplicate")
    seen = [(t.number, t.state, t.value, t.steps_done) for t in reader.trials]
    fresh = [(t.number, t.state, t.value, t.steps_done)
             for t in lrtune.load_study("inc", url).trials]
    assert seen == fresh and seen[-2:] == [(n_running, TrialState.COMPLETED, 0.25, 8),
                                           (n_running + 1, TrialState.DIVERGED, None, 3)]
    assert None not in whole_reads  # never the whole history again: only unfinished trials


def test_a_mistyped_study_name_is_shown_beside_the_names_the_storage_holds(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    for i in range(12):
        optuna.create_study(storage=url, study_name=f"run-{i:02d}")
    listed = ", ".join(f"'run-{i:02d}'" for i in range(10))
    with pytest.raises(lrtune.StorageError, match=re.escape(
            f"No study named 'run-1' in {url}: it holds {listed} and 2 more.")):
        lrtune.load_study("run-1", url)
