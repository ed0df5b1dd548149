"""The fault sweep: each fault ends in a clear error or a documented recovery, and the study
keeps what really happened (nothing RUNNING, every trained step counted)."""

from __future__ import annotations

import contextlib
import math
import os
import random
import re
import signal
import sqlite3
import threading
import time
import tracemalloc
import weakref
from pathlib import Path

import optuna
import pytest
import sqlalchemy
import torch
from torch import nn

import lrtune
from lrtune.exceptions import (InvalidParameterError, LrtuneError, ObjectiveError,
                               ObjectiveFailedError)
from lrtune.records import TrialState
from lrtune.strategies import Context, make_strategy
from lrtune.study import _storage
from lrtune.study import StorageError, StudyLostError
from lrtune.study._tune import MAX_BUDGET

SPACE = lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd")


def _train(trial, digits, model, steps):
    opt = trial.optimizer(model.parameters())
    step = 0
    while step < steps:
        for x, y in digits.train_loader(trial.seed):
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            trial.report(loss, step)
            step += 1
            if step == steps:
                break
    return digits.evaluate(model)


def test_a_bug_that_every_trial_hits_stops_the_study_at_the_users_line(tmp_path, digits):
    def objective(trial):
        torch.manual_seed(trial.seed)
        model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(16, 10))  # 32 != 16
        return _train(trial, digits, model, trial.steps)

    url = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(ObjectiveFailedError) as caught:
        lrtune.tune(objective, steps=100, budget=4.0, strategy="random", space=SPACE,
                    storage=url, study_name="bug", seed=0)
    message = str(caught.value)
    assert isinstance(caught.value, RuntimeError) and isinstance(caught.value, LrtuneError)
    ended = re.search(r"failed the same way in all (\d+) trials of the study 'bug' so far, at "
                      r"LRs from ([\d.e-]+) to ([\d.e-]+)", message)
    assert ended and int(ended[1]) >= 3 and float(ended[3]) >= 10 * float(ended[2])
    assert "RuntimeError: mat1 and mat2 shapes cannot be multiplied" in message
    line = _train.__code__.co_firstlineno + 5  # loss = ...(model(x), y): the user's line
    assert f"test_faults.py:{line} in _train: loss = nn.functional.cross_entropy" in message
    assert "torch" not in message.split(" (at ")[-1]  # torch's own frames are skipped
    assert isinstance(caught.value.__cause__, RuntimeError)
    trials = lrtune.load_study("bug", url).trials
    assert [t.state for t in trials] == [TrialState.FAILED] * int(ended[1])  # none running


def test_a_search_whose_first_trials_fail_at_the_top_of_the_range_goes_on():
    def objective(trial):  # auto's scan starts at 3.0, 1.39, 0.64: all fail alike
        if trial.lr > 0.5:
            raise MemoryError("too large for this machine")
        return (math.log10(trial.lr) + 2) ** 2

    study = lrtune.tune(objective, steps=64, budget=2.0, space=lrtune.Space(lr=(1e-4, 3.0)))
    assert [t.state for t in study.trials[:3]] == [TrialState.FAILED] * 3
    assert study.best is not None and study.best.lr < 0.5


def test_failures_a_decade_apart_in_the_upper_half_of_the_range_do_not_stop_the_search():
    def objective(trial):  # a user's NaN check, hit at every LR above 0.02
        if trial.lr > 0.02:
            raise FloatingPointError("loss is not finite")
        return (math.log10(trial.lr) + 3) ** 2

    study = lrtune.tune(objective, steps=64, budget=2.0, space=lrtune.Space(lr=(1e-5, 1.0)))
    failed = [t.lr for t in study.trials if t.state is TrialState.FAILED]
    assert len(failed) >= 4 and max(failed) >= 10 * min(failed)  # what stopped it before
    assert study.best is not None and study.best.lr < 0.02


def test_failures_at_some_lrs_only_are_verdicts_and_the_study_goes_on(digits):
    def objective(trial):
        if trial.lr > 0.05:
            raise RuntimeError("fails at high LRs only")
        torch.manual_seed(trial.seed)
        return _train(trial, digits, digits.make_model(trial.seed), trial.steps)

    study = lrtune.tune(objective, steps=60, budget=2.0, strategy="grid",
                        space=lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd"), seed=0)
    states = [t.state for t in study.trials]
    assert TrialState.FAILED in states and TrialState.COMPLETED in states
    assert study.best.lr <= 0.05


def test_an_objective_that_trains_past_trial_steps_stops_and_what_it_trained_counts(tmp_path,
                                                                                   digits):
    def objective(trial):  # ignores trial.steps: always 8 x 40 steps
        torch.manual_seed(trial.seed)
        return _train(trial, digits, digits.make_model(trial.seed), 320)

    url = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(ObjectiveError, match=r"trained past trial.steps: it reported step 319 "
                                             r"in a trial of 40 steps"):
        lrtune.tune(objective, steps=40, budget=2.0, strategy="random", space=SPACE,
                    storage=url, study_name="long", seed=0)
    study = lrtune.load_study("long", url)
    (trial,) = study.trials
    assert trial.state is TrialState.FAILED and trial.steps_done == 320
    assert study.spent == 8.0  # 8 full runs really trained, not the 0.1 asked for


def test_an_interrupted_trial_is_stored_lost_with_the_steps_it_trained(tmp_path, digits):
    def objective(trial):
        for step in range(trial.steps):
            trial.report(1.0, step)
            if step == 6:
                raise KeyboardInterrupt  # Ctrl-C during the seventh step
        return 1.0

    url = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(KeyboardInterrupt):
        lrtune.tune(objective, steps=40, budget=2.0, strategy="random", space=SPACE,
                    storage=url, study_name="ctrl-c", seed=0)
    (trial,) = lrtune.load_study("ctrl-c", url).trials
    assert trial.state is TrialState.LOST and trial.steps_done == 7
    assert trial.error == "lost: interrupted (KeyboardInterrupt)"
    assert [s for s, _ in trial.history] == list(range(7))


def test_case_1_a_worker_whose_study_vanished_stops_with_that_error(tmp_path):
    db = tmp_path / "s.db"

    def delete_the_database(study, record):  # as `rm lrtune.db` in another shell does, and
        for path in tmp_path.glob("s.db*"):  # the next connection opened finds no tables
            path.unlink()
        study.optuna._storage._backend.engine.dispose()

    def objective(trial):
        for step in range(trial.steps):
            trial.report(1.0, step)
        return abs(trial.lr - 0.01)

    with pytest.raises(StudyLostError, match=r"The study's tables are gone from its storage "
                                             r"\(OperationalError: .*no such table"):
        lrtune.tune(objective, steps=20, budget=4.0, strategy="random", space=SPACE,
                    storage=f"sqlite:///{db}", study_name="s", callbacks=[delete_the_database])
    assert issubclass(StudyLostError, StorageError)


def _fill_the_disk(engine, db: Path) -> None:
    """Let the SQLite file ``db`` grow no more, as on a full disk: a ballast table takes every
    free page up to the file's size, and each connection of ``engine`` caps the file there
    (``PRAGMA max_page_count`` holds per connection); SQLite then raises "database or disk is
    full" for any write that needs a page."""
    ballast = sqlite3.connect(db, isolation_level=None)
    ballast.execute("CREATE TABLE ballast (b BLOB)")
    pages = ballast.execute("PRAGMA page_count").fetchone()[0]
    ballast.execute(f"PRAGMA max_page_count = {pages}")
    for size in (4096, 512, 16):  # whole pages, then what is left in them
        with contextlib.suppress(sqlite3.OperationalError):
            while True:
                ballast.execute("INSERT INTO ballast VALUES (zeroblob(?))", (size,))
    ballast.close()

    @sqlalchemy.event.listens_for(engine, "connect")
    def cap(dbapi_connection, _record):
        size = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {size}")

    engine.dispose()  # the pooled connections reconnect, capped


def _free_the_disk(db: Path) -> None:
    with sqlite3.connect(db, isolation_level=None) as conn:
        conn.execute("DROP TABLE ballast")


def _trains_noisily(trial):
    """A loss curve of full-precision floats: its stored history needs new pages."""
    rng = random.Random(trial.lr)
    for step in range(trial.steps):
        trial.report(1.0 + rng.random(), step)
    return abs(math.log10(trial.lr) + 2)


FULL_DISK_STUDY = dict(steps=200, budget=4.0, strategy="random", space=SPACE, seed=0)


def test_case_6_a_full_disk_stops_the_worker_with_its_cause_and_the_next_one_reruns_its_trial(
        tmp_path, monkeypatch):
    monkeypatch.setenv("LRTUNE_STORAGE_OUTAGE", "0.2")
    monkeypatch.setattr(_storage, "FIRST_PAUSE", 0.01)
    db, seen = tmp_path / "s.db", {}
    url = f"sqlite:///{db}"

    def objective(trial):
        if trial.number == 1:  # while trial 1 trains the disk fills up
            _fill_the_disk(seen["study"].optuna._storage._backend.engine, db)
        return _trains_noisily(trial)

    with pytest.raises(StorageError) as caught:
        lrtune.tune(objective, storage=url, study_name="s", **FULL_DISK_STUDY,
                    callbacks=[lambda study, record: seen.setdefault("study", study)])
    assert re.fullmatch(r"The storage call set_trial_user_attr still failed after [\d.]+ s of "
                        r"retries: OperationalError: database or disk is full \(workers ride "
                        r"out an outage for \$LRTUNE_STORAGE_OUTAGE = 0.2 s\)",
                        str(caught.value))
    cause = caught.value.__cause__  # the storage's own error, chained
    assert isinstance(cause, sqlalchemy.exc.OperationalError)
    assert isinstance(cause.orig, sqlite3.OperationalError)
    stuck = [t.state for t in lrtune.load_study("s", url).trials]
    assert stuck == [TrialState.COMPLETED, TrialState.RUNNING]  # what it could not record

    _free_the_disk(db)  # the same call again takes over the trial the stopped worker left
    study = lrtune.tune(_trains_noisily, storage=url, study_name="s", **FULL_DISK_STUDY)
    states = [t.state for t in study.trials]
    assert states[:2] == [TrialState.COMPLETED, TrialState.LOST]
    assert TrialState.RUNNING not in states and states.count(TrialState.LOST) == 1
    expected = lrtune.tune(_trains_noisily, **FULL_DISK_STUDY)  # never interrupted
    done = [(t.params, t.value) for t in study.trials if t.state is TrialState.COMPLETED]
    assert done == [(t.params, t.value) for t in expected.trials]
    assert study.spent == expected.spent  # a lost trial is not counted: it runs again


def test_case_6_a_truncated_database_stops_the_worker_at_once_with_its_cause(tmp_path, caplog):
    db = tmp_path / "s.db"

    def truncate(study, record):  # as a copy cut short or a crashed disk leaves the file
        if record.number == 1:
            with contextlib.closing(sqlite3.connect(db)) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the file
            os.truncate(db, db.stat().st_size // 2)

    with pytest.raises(StorageError) as caught:
        lrtune.tune(_trains, steps=20, budget=8.0, strategy="random", space=SPACE,
                    storage=f"sqlite:///{db}", study_name="s", callbacks=[truncate])
    assert re.fullmatch(r"The storage call \w+ failed with an error that retrying cannot "
                        r"mend: DatabaseError: database disk image is malformed",
                        str(caught.value))
    assert isinstance(caught.value.__cause__, sqlalchemy.exc.DatabaseError)
    assert "retrying" not in caplog.text  # not taken for an outage


@pytest.mark.parametrize("value", ["soon", "-1", "inf"])
def test_case_6_the_outage_limit_must_be_seconds(tmp_path, monkeypatch, value):
    monkeypatch.setenv("LRTUNE_STORAGE_OUTAGE", value)
    db = tmp_path / "s.db"
    with pytest.raises(StorageError, match=re.escape(
            "$LRTUNE_STORAGE_OUTAGE must be the number of seconds a worker rides out a storage "
            f"outage (a finite number >= 0, e.g. 300); it is {value!r}.")):
        lrtune.tune(_trains, steps=20, budget=2.0, strategy="random", space=SPACE,
                    storage=f"sqlite:///{db}", study_name="s")
    assert not db.exists()


def _trains(trial):
    for step in range(trial.steps):
        trial.report(1.0, step)
    return abs(trial.lr - 0.01)


_LOCK = threading.Lock()  # what a closure may hold that no pickler can send to a process


@pytest.mark.parametrize("change, message", [
    (lambda db: dict(callbacks=print),
     "The 'callbacks' parameter of tune() must be a list of callables"),
    (lambda db: dict(storage=db),  # a pathlib.Path, not a URL
     "The 'storage' parameter of tune() must be a storage URL string such as "
     "'sqlite:///lrtune.db' (for a path: f'sqlite:///{path}') or None. Got PosixPath("),
    (lambda db: dict(storage="sqlite:///:memory:"),
     "The 'storage' parameter of tune() must be a SQLite file, not an in-memory SQLite database"),
    (lambda db: dict(storage="sqlite://runs/s.db"),  # two slashes: a host named runs
     "The 'storage' parameter of tune() must be a storage URL: a SQLite file is 'sqlite:///' and "
     "its path ('sqlite:///runs/s.db'; four slashes before an absolute path)"),
    (lambda db: dict(objective=lambda trial: _LOCK.locked() or _trains(trial), workers=2),
     "The 'objective' parameter of tune() must be picklable (by cloudpickle) to run in 2 worker "
     "processes; pickling failed with TypeError"),
    (lambda db: dict(budget=1e9, strategy="grid"),  # a grid of 1e9 points took 7.45 GiB
     "The 'budget' parameter of tune() must be a float in (0, 100000]. Got 1000000000.0"),
], ids=["callbacks=print", "storage=Path", "sqlite-memory", "sqlite-two-slashes", "unpicklable",
        "budget=1e9"])
def test_case_8_bad_input_is_refused_before_the_study_is_created(tmp_path, change, message):
    db = tmp_path / "s.db"
    settings = dict(objective=_trains, steps=20, budget=2.0, strategy="random", space=SPACE,
                    storage=f"sqlite:///{db}", study_name="s", seed=0)
    with pytest.raises(InvalidParameterError) as caught:
        lrtune.tune(**{**settings, **change(db)})
    assert str(caught.value).startswith(message)
    assert not db.exists()  # refused before anything was created


def test_case_8_a_grid_of_the_largest_budget_builds_its_points_one_by_one():
    context = Context(SPACE, 20, MAX_BUDGET, 0)
    tracemalloc.start()
    try:
        proposal = make_strategy("grid").ask(context)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert proposal.params["lr"] == SPACE.lr_range.value(0.5 / MAX_BUDGET)
    assert peak < 100_000  # bytes: not 100,000 configurations (tens of MB)


def test_case_9_a_choice_listed_twice_is_one_choice():
    space = lrtune.Space(lr=(1e-3, 1.0), optimizer=["sgd", "sgd"], warmup=[0.0, 0.1, 0.0])
    assert space.optimizer == ("sgd",) and space.warmup == (0.0, 0.1)
    study = lrtune.tune(_trains, steps=20, budget=2.0, strategy="random", space=space, seed=0)
    assert study.spent == 2.0  # both runs of the budget spent


def _deletes_the_database(trial):
    if trial.number == 0:  # `rm lrtune.db` in another shell while the workers run
        for path in Path(os.environ["STUDY_DIR"]).glob("s.db*"):
            path.unlink()
    return _trains(trial)


def test_case_1_workers_whose_database_file_was_deleted_do_not_report_success(tmp_path,
                                                                             monkeypatch):
    monkeypatch.setenv("STUDY_DIR", str(tmp_path))
    with pytest.raises(StudyLostError, match=r"The study's SQLite file .*s\.db was deleted or "
                                             r"replaced while the workers ran"):
        lrtune.tune(_deletes_the_database, steps=20, budget=4.0, strategy="random", space=SPACE,
                    storage=f"sqlite:///{tmp_path / 's.db'}", study_name="s", workers=2)


def _hangs_in_trial_1(trial):
    trial.report(1.0, 0)
    while trial.number == 1:
        time.sleep(0.05)  # a data loader waiting forever
    return abs(trial.lr - 0.01)


def test_case_9_a_trial_that_hangs_fails_after_trial_timeout_and_the_study_goes_on():
    study = lrtune.tune(_hangs_in_trial_1, steps=10, budget=3.0, strategy="random", space=SPACE,
                        seed=0, trial_timeout=2.0)
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETED, TrialState.FAILED, TrialState.COMPLETED]
    line = _hangs_in_trial_1.__code__.co_firstlineno + 3
    assert study.trials[1].error == (
        f"TrialTimeoutError: the trial ran longer than trial_timeout=2 s (at "
        f"tests/study/test_faults.py:{line} in _hangs_in_trial_1: "
        "time.sleep(0.05)  # a data loader waiting forever)")


def test_case_9_a_trial_whose_progress_write_hangs_fails_after_trial_timeout(monkeypatch):
    # the database stops answering (a network cut) while lrtune writes the trial's progress:
    # the alarm's error must fail the trial, not be taken for a storage hiccup and dropped
    monkeypatch.setattr(optuna.storages.InMemoryStorage, "set_trial_intermediate_value",
                        lambda *args: threading.Event().wait())
    study = lrtune.tune(_trains, steps=10, budget=1.0, strategy="random", space=SPACE, seed=0,
                        trial_timeout=0.5)
    (trial,) = study.trials
    assert trial.state is TrialState.FAILED
    assert trial.error.startswith("TrialTimeoutError: the trial ran longer than "
                                  "trial_timeout=0.5 s")


def _times_out_in_a_weakref_callback(trial):
    class Batch:
        pass

    batch = Batch()
    # the alarm lands where Python cannot raise (here at once, in a weakref's callback): it
    # printed "Exception ignored in ..." and the trial hung on, past its time-out
    ref = weakref.ref(batch, lambda _: signal.raise_signal(signal.SIGALRM))
    del batch
    for _ in range(3000):  # a loader that waits on for 30 s
        time.sleep(0.01)
    return float(ref() is None)


def test_case_9_a_time_out_swallowed_by_python_fires_again(capfd):
    study = lrtune.tune(_times_out_in_a_weakref_callback, steps=10, budget=1.0,
                        strategy="random", space=SPACE, seed=0, trial_timeout=600.0)
    (trial,) = study.trials
    assert trial.state is TrialState.FAILED
    assert trial.error.startswith("TrialTimeoutError: the trial ran longer than "
                                  "trial_timeout=600 s (at tests/study/test_faults.py:")
    assert "Exception ignored" not in capfd.readouterr().err  # fired again, quietly


def test_case_9_trial_timeout_must_be_a_positive_number():
    with pytest.raises(InvalidParameterError, match=r"The 'trial_timeout' parameter of tune\(\) "
                                                    r"must be a float in \(0, 1e\+09\]. Got -1 "
                                                    r"instead."):
        lrtune.tune(_trains, steps=10, budget=1.0, space=SPACE, trial_timeout=-1)
