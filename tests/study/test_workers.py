"""Several workers on one SQLite study: the same results as one worker, nothing lost or counted
twice when workers are SIGKILLed, dead and silent workers detected, races settled by claims."""

import json
import os
import pickle
import random
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import optuna
import pytest
from processes import stop_group
from sharing import SharedWork

import lrtune
from lrtune.records import TrialState
from lrtune.strategies import make_strategy
from lrtune.study import Study, join_study
from lrtune.study._claims import claim
from lrtune.study._heartbeat import SILENT_BEATS, Reaper, WorkerId
from lrtune.study._schema import CONFIG_ATTR
from lrtune.study._tune import local_worker_limit
from lrtune.tasks import objective as task_objective
from lrtune.tasks import task_space

SPACE = lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd")
ELSEWHERE = {"host": "elsewhere", "pid": 1, "kernel": "another-machine", "started": 0,
             "token": "remote"}


def sqlite_url(tmp_path, name="study.db"):
    return f"sqlite:///{tmp_path / name}"


@pytest.mark.slow
def test_auto_with_three_workers_stays_in_budget_and_finds_the_basin(tmp_path, digits, audit):
    url = sqlite_url(tmp_path)
    shared = SharedWork(task_objective(digits), url, "auto", workers=2)
    study = lrtune.tune(shared, steps=digits.steps, budget=2.0, strategy="auto",
                        space=task_space(digits), storage=url, study_name="auto", workers=3)
    result = audit(url, "auto")
    assert result.duplicates == 0 and result.lost == []
    assert result.spent <= 2.0 + 1e-9
    assert study.best.tag == "final" and study.best.steps == digits.steps
    assert 0.015 < study.best.lr < 0.15  # the 3-seed grid optimum is about 0.05
    assert len(result.workers) >= 2


FAULTY_RUN = textwrap.dedent("""
    import pickle, sys, lrtune
    from lrtune.cli._loading import load_object
    lrtune.tune(load_object(sys.argv[2]), storage=sys.argv[1], study_name="faults", workers=3,
                **pickle.loads(bytes.fromhex(sys.argv[3])))
""")


def _running_trials(db, states=("RUNNING",), timeout=30.0):
    """(number, worker PID) of the trials in ``states``, read straight from the SQLite file."""
    try:
        with sqlite3.connect(db, timeout=timeout) as conn:
            rows = conn.execute(
                "SELECT t.number, a.value_json FROM trial_user_attributes a JOIN trials t "
                "ON a.trial_id = t.trial_id WHERE a.key = 'lrtune:worker' AND t.state IN "
                f"({', '.join('?' * len(states))})", states).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    return [(number, json.loads(value)["pid"]) for number, value in rows]


def _is_worker_process(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"lrtune.study._child" in f.read()
    except OSError:
        return False


@pytest.mark.slow
def test_sigkilled_workers_lose_nothing_and_the_best_is_unchanged(tmp_path, own_loop,
                                                                   own_loop_spec, audit,
                                                                   fault_free, halving,
                                                                   kill_frozen):
    db = tmp_path / "faults.db"
    url = f"sqlite:///{db}"
    settings = dict(halving)  # 13 trials: 9 configs at 30 steps, 3 promoted to 90, 1 to 270
    proc = subprocess.Popen([sys.executable, "-c", FAULTY_RUN, url, own_loop_spec,
                             pickle.dumps(settings).hex()])
    rng, hit = random.Random(5), set()
    while len(hit) < 2 and proc.poll() is None:
        time.sleep(rng.uniform(0.05, 0.2))  # a random moment of the study's first rungs
        victims = [(n, pid) for n, pid in _running_trials(db) if _is_worker_process(pid)]
        if victims:
            number, pid = rng.choice(victims)
            # killed while it is seen (stopped) holding that trial RUNNING: killed mid-trial. A
            # short read time-out: a stopped writer may hold the file's lock, then look again
            if kill_frozen(pid, lambda n=number, p=pid: (n, p) in _running_trials(db, timeout=0.5)):
                hit.add(number)
    assert proc.wait(timeout=300) == 0  # the parent replaced the dead and finished the study
    assert len(hit) == 2, "the study ended before two trials were killed"
    result, expected = audit(url, "faults"), fault_free(own_loop, **settings)
    assert {t.number for t in result.lost} == hit  # exactly the trials killed mid-way ...
    for lost in result.lost:
        assert lost.error.startswith("lost:")
        assert (lost.tag, lost.lr, lost.steps) in result.finished  # ... ran again
    assert result.duplicates == 0
    assert result.finished == expected.finished  # every trial accounted for, with its value
    assert result.best == expected.best and result.spent == pytest.approx(expected.spent)


def test_a_silent_worker_on_another_host_loses_its_trial_after_six_heartbeats(tmp_path,
                                                                                own_loop,
                                                                                monkeypatch):
    url, heartbeat = sqlite_url(tmp_path), 0.25
    settings = dict(steps=60, budget=3.0, strategy="grid", space=SPACE, seed=0)
    study = Study.open(storage=url, study_name="hb", heartbeat=heartbeat,
                       **dict(settings, strategy=make_strategy("grid")))
    # two workers on another machine claimed the first two configs: one then went silent (its
    # host died), the other keeps beating and finishes its trial after a while
    silent, _ = study.start_trial(**_next(study), worker=ELSEWHERE)
    alive, alive_number = study.start_trial(**_next(study), worker=dict(ELSEWHERE, token="live"))

    # the live one beats before every look of this worker's reaper, 12 times, then finishes:
    # alive at every look however slowly this machine runs (a beating thread could be starved
    # past the 1.5 s grace)
    beats, reap = iter(range(1, 13)), Reaper.reap

    def live_remote_worker_then_reap(reaper):
        beat = next(beats, None)
        if beat is not None:
            study.beat(alive, beat)
        elif study.record(alive).state is TrialState.RUNNING:
            study.finish_trial(alive, TrialState.COMPLETED, 0.5, steps_done=60)
        return reap(reaper)

    monkeypatch.setattr(Reaper, "reap", live_remote_worker_then_reap)
    start = time.monotonic()
    result = lrtune.tune(own_loop, storage=url, study_name="hb", heartbeat=heartbeat, **settings)
    waited = time.monotonic() - start
    trials = {t.number: t for t in result.trials}
    assert trials[0].state is TrialState.LOST and "elsewhere" in trials[0].error
    assert waited >= SILENT_BEATS * heartbeat  # declared dead only after six silent beats
    assert trials[alive_number].state is TrialState.COMPLETED and trials[alive_number].value == 0.5
    done = [t for t in result.trials if t.state.finished]
    assert len(done) == 3 and len({t.lr for t in done}) == 3  # the lost config ran again, once
    assert trials[0].lr in {t.lr for t in done if t.number != alive_number}


def _next(study):
    proposal = study.strategy.ask(study.context())
    return {"params": proposal.params, "steps": proposal.steps, "tag": proposal.tag}


@pytest.mark.parametrize("reports", [True, False], ids=["stops-at-next-report", "late-result"])
def test_a_worker_presumed_dead_drops_its_result(tmp_path, digits, reports):
    url, sabotaged, reported = sqlite_url(tmp_path), [], []
    train = task_objective(digits)

    def objective(trial):
        if not sabotaged:  # another worker declares this one dead while it trains
            study = lrtune.load_study("zombie", url)
            (running,) = study.running_trials()
            assert study.fail_lost(running.trial_id)
            sabotaged.append(trial.lr)
        return train(trial) if reports else 1.0

    study = lrtune.tune(objective, storage=url, study_name="zombie", steps=60, budget=2.0,
                        strategy="grid", space=SPACE,
                        callbacks=[lambda _study, record: reported.append(record.number)])
    first, *rest = study.trials
    assert first.state is TrialState.LOST and first.lr == sabotaged[0] and first.value is None
    assert [t.state for t in rest] == [TrialState.COMPLETED] * 2
    assert first.lr in [t.lr for t in rest] and len({t.lr for t in rest}) == 2  # ran again, once
    assert reported == [t.number for t in rest]  # the dropped result reached no callback


def _rival_claims_first(study, params, steps, tag):
    """Make the next claim of this process lose a race: just before its write, a worker on
    another host claims ``params`` (after the pre-check, so only the re-read can catch it)."""
    start = study.start_trial

    def racing(*args, **kwargs):
        study.start_trial = start
        start(params, steps, tag, ELSEWHERE)
        return start(*args, **kwargs)

    study.start_trial = racing


def _withdrawn(study):
    return sum("lrtune:retired" in t.user_attrs for t in study.optuna.get_trials())


def test_a_claim_that_lost_a_race_is_withdrawn_before_training(tmp_path):
    study = Study.open(storage=sqlite_url(tmp_path), study_name="race", space=SPACE, steps=60,
                       budget=2.0, strategy=make_strategy("grid"), seed=0)
    me, seen = WorkerId.of_this_process(), study.context()
    proposal = study.strategy.ask(seen)
    _rival_claims_first(study, proposal.params, proposal.steps, proposal.tag)
    assert claim(study, proposal, seen, me) is None
    assert [t.number for t in study.trials] == [0] and _withdrawn(study) == 1  # no record
    # asked again, with the rival's claim in view, the strategy proposes the next config
    again = study.context()
    following = study.strategy.ask(again)
    assert following.params != proposal.params and claim(study, following, again, me)
    # a strategy that repeats a config it has seen is not stopped: only races are
    assert claim(study, proposal, study.context(), me) is not None
    # a claim whose strategy missed a newer trial asks again before writing anything
    stale = study.context()
    study.start_trial(SPACE.config(0.5), 60, "grid", ELSEWHERE)
    assert claim(study, proposal, stale, me) is None and _withdrawn(study) == 1


def test_a_claim_that_would_overspend_with_a_concurrent_one_is_withdrawn(tmp_path):
    study = Study.open(storage=sqlite_url(tmp_path), study_name="budget", space=SPACE,
                       steps=60, budget=1.0, strategy=make_strategy("grid"), seed=0)
    seen = study.context()  # one full run left
    proposal = study.strategy.ask(seen)
    _rival_claims_first(study, SPACE.config(0.5), 60, "grid")  # another config, the last run
    assert claim(study, proposal, seen, WorkerId.of_this_process()) is None
    assert study.spent == 1.0 and _withdrawn(study) == 1  # not 2.0


def _cli(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "lrtune.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def _wait_for_study(db, name, timeout=120):
    """Until ``tune`` has created the study in full: its config is written last, and a worker
    that joins before it is refused (the study is not lrtune's yet)."""
    deadline = time.time() + timeout
    query = ("SELECT 1 FROM studies s JOIN study_user_attributes a ON a.study_id = s.study_id "
             "WHERE s.study_name = ? AND a.key = ?")
    while time.time() < deadline:
        try:
            with sqlite3.connect(db, timeout=30) as conn:
                if conn.execute(query, (name, CONFIG_ATTR)).fetchone():
                    return
        except sqlite3.OperationalError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"study {name} never appeared")


@pytest.mark.slow
def test_lrtune_worker_joins_a_study_that_lrtune_tune_runs_with_workers(tmp_path, own_loop_spec,
                                                                        audit):
    db = tmp_path / "cli.db"
    url = f"sqlite:///{db}"
    tune = _cli("tune", own_loop_spec, "--steps", "60", "--budget", "16", "--strategy", "grid",
                "--optimizer", "sgd", "--lr-min", "1e-3", "--lr-max", "1", "--storage", url,
                "--study", "cli", "--workers", "2", start_new_session=True)
    try:
        _wait_for_study(db, "cli")
        # hold `tune` and its workers while the joiner starts: 16 short trials could all end
        # before a fresh interpreter has imported torch, and the joiner would have none to run
        _freeze_with_work_left(tune.pid, db, trials=16)
        worker = _cli("worker", own_loop_spec, "--storage", url, "--study", "cli")
        while not any(pid == worker.pid for _, pid in _running_trials(db, CLAIMED)):
            assert worker.poll() is None, worker.communicate()
            time.sleep(0.05)
    finally:
        os.killpg(tune.pid, signal.SIGCONT)
    worker_out, worker_err = worker.communicate(timeout=300)
    tune_out, tune_err = tune.communicate(timeout=300)
    assert tune.returncode == 0, tune_err
    assert worker.returncode == 0, worker_err
    result = audit(url, "cli")
    assert len(result.finished) == 16 and result.duplicates == 0 and result.lost == []
    assert len(re.findall(r"^trial +\d+ ", tune_out, re.M)) == 16  # every worker's trials
    ran = int(re.search(r"this worker ran (\d+) trials", worker_out).group(1))
    assert ran >= 1 and len(re.findall(r"^trial +\d+ ", worker_out, re.M)) == ran
    assert ran == _trials_of(url, "cli", worker.pid)  # what it says is what the storage holds


CLAIMED = ("RUNNING", "COMPLETE", "PRUNED", "FAIL")


def _freeze_with_work_left(pgid, db, trials):
    """Stop process group ``pgid`` at a moment where none of it holds the SQLite file's lock
    (the joiner must be able to write) and fewer than ``trials`` trials are claimed."""
    while True:
        stop_group(pgid)
        with sqlite3.connect(db, timeout=0, isolation_level=None) as conn:
            try:
                conn.execute("BEGIN EXCLUSIVE")  # granted only when nobody holds any lock
            except sqlite3.OperationalError:
                claimed = None
            else:
                claimed = conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
                conn.execute("ROLLBACK")
        if claimed is not None:
            assert claimed < trials, "the study ended before the worker could join it"
            return
        os.killpg(pgid, signal.SIGCONT)
        time.sleep(0.02)


def _trials_of(url, name, pid):
    import optuna

    return sum(1 for t in optuna.load_study(study_name=name, storage=url).trials
               if t.state.is_finished() and "lrtune:retired" not in t.user_attrs
               and t.user_attrs.get("lrtune:worker", {}).get("pid") == pid)


def test_a_worker_joins_a_study_whose_space_holds_a_schedule_object(tmp_path, digits):
    url = sqlite_url(tmp_path)
    space = task_space(digits)  # its recipe's MultiStep object, not a schedule name
    Study.open(storage=url, study_name="recipe", space=space, steps=digits.steps, budget=2.0,
               strategy=make_strategy("grid"), seed=0)
    applied = []

    def objective(trial):
        applied.append(trial.schedule())
        return task_objective(digits)(trial)

    study = join_study(objective, storage=url, study_name="recipe")
    assert applied == [digits.schedule(digits.steps)] * 2  # step decay, not a constant LR
    assert study.space == space and all(t.state is TrialState.COMPLETED for t in study.trials)


def test_joining_a_study_with_a_schedule_class_this_process_lacks_is_refused(tmp_path, digits):
    url = sqlite_url(tmp_path)
    Study.open(storage=url, study_name="custom", space=task_space(digits), steps=digits.steps,
               budget=2.0, strategy=make_strategy("grid"), seed=0)
    stored = optuna.load_study(study_name="custom", storage=url)
    config = stored.user_attrs["lrtune:config"]
    config["space"]["schedule"] = [{"type": "MyCyclic", "total_steps": digits.steps}]
    stored.set_user_attr("lrtune:config", config)  # as a user's own, unimported class leaves it
    with pytest.raises(lrtune.StorageError, match=r"cannot be rebuilt here .*'MyCyclic'"):
        join_study(task_objective(digits), storage=url, study_name="custom")
    assert stored.trials == []


def test_a_terminated_worker_marks_its_trial_lost_at_once(tmp_path, own_loop_spec):
    db = tmp_path / "term.db"
    url = f"sqlite:///{db}"
    Study.open(storage=url, study_name="term", space=SPACE, steps=20000, budget=2.0,
               strategy=make_strategy("grid"), seed=0)
    worker = _cli("worker", own_loop_spec, "--storage", url, "--study", "term")
    while not _reported_a_loss(db):  # inside the objective's training loop
        assert worker.poll() is None, worker.communicate()
        time.sleep(0.05)
    worker.send_signal(signal.SIGTERM)
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 128 + signal.SIGTERM, (out, err)
    assert "marked lost and will run again" in out
    (trial,) = lrtune.load_study("term", url).trials
    assert trial.state is TrialState.LOST and trial.error == "lost: interrupted (SystemExit)"


def _reported_a_loss(db):
    """Whether a running trial has stored an intermediate loss (its first ``trial.report``)."""
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return conn.execute(
                "SELECT 1 FROM trial_intermediate_values v JOIN trials t ON v.trial_id = "
                "t.trial_id WHERE t.state = 'RUNNING'").fetchone() is not None
    except sqlite3.OperationalError:  # not created yet
        return False


def test_joining_a_study_that_does_not_exist_says_so(tmp_path, own_loop_spec):
    def join(url):
        proc = subprocess.run([sys.executable, "-m", "lrtune.cli", "worker", own_loop_spec,
                               "--storage", url, "--study", "nope"], capture_output=True, text=True)
        assert proc.returncode == 2
        return re.sub(r"\s+", "", proc.stderr)  # rich wraps long lines

    db = tmp_path / "typo.db"
    url = f"sqlite:///{db}"
    assert join(url) == re.sub(r"\s+", "", f"error: No storage at {url}: the file {db} does not "
                                           "exist.")
    assert not db.exists()
    optuna.create_study(storage=url, study_name="other")
    assert join(url) == re.sub(r"\s+", "", f"error: No study named 'nope' in {url}: it holds "
                                           "'other'.")


EXTENDED = dict(steps=10, strategy="random", space=SPACE, study_name="e", seed=0)


def _first_to_create(path):
    """True in the one process, of any number racing, that creates the file ``path``."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _extends_then_dies(trial):
    """In the first trial after trial 0 to train, once: `lrtune tune --budget 6` in another
    shell extends the study, then the OOM killer takes this worker process. Not "in trial 1":
    two workers claiming at the same moment leave a retired number that never trains."""
    marker = os.path.join(os.environ["STUDY_DIR"], "extended")
    if trial.number >= 1 and _first_to_create(marker):
        with pytest.warns(lrtune.exceptions.StudyExtendedWarning):
            Study.open(storage=sqlite_url(Path(os.environ["STUDY_DIR"])), budget=6.0,
                       **{**EXTENDED, "strategy": make_strategy("random")})
        os.kill(os.getpid(), signal.SIGKILL)
    for step in range(trial.steps):
        trial.report(1.0, step)
    return abs(trial.lr - 0.01)


def test_a_worker_replacing_a_dead_one_works_on_a_study_extended_meanwhile(tmp_path,
                                                                          monkeypatch):
    # the replacement opens the study as stored: with the driver's budget of 4 it was refused
    # (a budget cannot shrink), and the run stopped
    monkeypatch.setenv("STUDY_DIR", str(tmp_path))
    study = lrtune.tune(_extends_then_dies, storage=sqlite_url(tmp_path), budget=4.0,
                        workers=2, **EXTENDED)
    states = [t.state for t in study.trials]
    assert states.count(TrialState.LOST) == 1 and TrialState.RUNNING not in states
    assert study.budget == 6.0 and study.spent == 6.0


@pytest.mark.parametrize("kwargs, message", [
    ({"workers": 2}, r"The 'workers' parameter of tune\(\) must be 1 when storage is None"),
    ({"workers": 0}, r"The 'workers' parameter of tune\(\) must be an int >= 1\. Got 0"),
    ({"heartbeat": 0}, r"The 'heartbeat' parameter of tune\(\) must be a float in \(0, 1e\+09\]\. "
                       r"Got 0"),
])
def test_bad_worker_settings_fail_before_any_training(kwargs, message):
    with pytest.raises(lrtune.InvalidParameterError, match=message):
        lrtune.tune(lambda trial: 1.0, steps=10, strategy="grid", **kwargs)


def test_more_local_workers_than_the_machine_can_run_are_refused_before_any_process(tmp_path):
    # `workers=1000` (a typo, or a count meant for a cluster) forked a thousand processes
    most = local_worker_limit()
    with pytest.raises(lrtune.InvalidParameterError,
                       match=rf"The 'workers' parameter of tune\(\) must be at most {most} \(4 "
                             rf"per CPU this process may use\).* Got {most + 1} instead"):
        lrtune.tune(lambda trial: 1.0, steps=10, strategy="grid", storage=sqlite_url(tmp_path),
                    workers=most + 1)
    assert not (tmp_path / "study.db").exists()


def test_an_objective_that_cannot_be_sent_to_workers_is_refused(tmp_path):
    lock = threading.Lock()
    with pytest.raises(lrtune.InvalidParameterError,
                       match=r"The 'objective' parameter of tune\(\) must be picklable"):
        lrtune.tune(lambda trial: lock.locked() or 1.0, steps=10, strategy="grid",
                    storage=sqlite_url(tmp_path), workers=2)
