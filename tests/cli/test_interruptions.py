"""Ctrl-C and SIGTERM in ``lrtune tune``: say what was kept, leave no trial RUNNING, resume.

The objective announces that it is training (a file per process) and then hangs; the test
signals only once every announcement is there, so the signal lands mid-trial every time."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lrtune
from lrtune.records import TrialState

pytestmark = pytest.mark.timeout(300)  # each test starts `lrtune tune` twice, torch and all

OBJECTIVE = '''
import os
import time
from pathlib import Path


def objective(trial):
    hang = os.environ.get("HANG_AT")
    for step in range(trial.steps):
        trial.report(1.0 / (1.0 + step * trial.lr), step)
        if step == 5 and hang in ("all", str(trial.number)):
            Path(os.environ["MARKERS"], str(os.getpid())).write_text(str(trial.number))
            while True:
                time.sleep(0.05)
    return abs(trial.lr - 0.01)
'''


# `python -m lrtune.cli` as a terminal starts it. A test run started in the background (`make test
# &`, some CI runners) has SIGINT ignored, its children inherit that, and a Python started so
# never turns SIGINT into KeyboardInterrupt: Ctrl-C would be tested on a process deaf to it.
LAUNCH = ("import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
          "runpy.run_module('lrtune.cli', run_name='__main__', alter_sys=True)")


def _start(tmp_path, *extra, hang):
    (tmp_path / "hangs.py").write_text(OBJECTIVE)
    markers = tmp_path / f"markers-{hang}"
    markers.mkdir(exist_ok=True)
    env = {**os.environ, "HANG_AT": hang, "MARKERS": str(markers),
           "PYTHONFAULTHANDLER": "1"}  # SIGABRT prints every thread's stack: see _ended
    command = [sys.executable, "-c", LAUNCH, "tune", "hangs.py:objective", "--steps", "40",
               "--budget", "3", "--strategy", "random", "--optimizer", "sgd",
               "--storage", f"sqlite:///{tmp_path / 's.db'}", "--study", "s", *extra]
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own group: _ended can kill it whole
    return proc, markers


def _wait_for(markers, count, proc, timeout=240):
    deadline = time.monotonic() + timeout
    while len(list(markers.iterdir())) < count:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the objective never started training"
        time.sleep(0.05)
    return [int(p.name) for p in markers.iterdir()]


def _signal_mid_trial(tmp_path, sig, *extra, hang, trainers=1):
    """Run `lrtune tune`, send ``sig`` once ``trainers`` processes hang mid-trial; what it says."""
    proc, markers = _start(tmp_path, *extra, hang=hang)
    pids = _wait_for(markers, trainers, proc)
    proc.send_signal(sig)
    out, err = _ended(proc)
    return proc.returncode, out, err, pids


def _ended(proc, timeout=90):
    """``proc``'s output once it has exited; one that has not within ``timeout`` seconds is
    aborted, and the error shows where each of its threads stood."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # workers it left behind hold the pipes open
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        raise AssertionError(f"lrtune did not exit within {timeout} s of the signal:\n{out}\n"
                             f"{err}") from None


def _trials(tmp_path):
    return lrtune.load_study("s", f"sqlite:///{tmp_path / 's.db'}").trials


def test_ctrl_c_says_what_was_kept_and_the_rerun_resumes(tmp_path):
    code, out, err, _ = _signal_mid_trial(tmp_path, signal.SIGINT, hang="1")
    assert code == 130, err
    assert "interrupted: 1 trials kept; run the same command to resume" in out
    first, lost = _trials(tmp_path)
    assert first.state is TrialState.COMPLETED
    assert lost.state is TrialState.LOST and lost.steps_done == 6  # steps 0-5 trained

    proc, _ = _start(tmp_path, hang="none")
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    assert out.startswith("resuming: 1 trials, 1.00 of 3 runs spent\n")
    states = [t.state for t in _trials(tmp_path)]
    assert states.count(TrialState.COMPLETED) == 3 and TrialState.RUNNING not in states


def test_sigterm_marks_the_running_trial_lost(tmp_path):
    code, out, err, _ = _signal_mid_trial(tmp_path, signal.SIGTERM, hang="0")
    assert code == 143, err
    assert "interrupted: 0 trials kept; run the same command to resume" in out
    (trial,) = _trials(tmp_path)
    assert trial.state is TrialState.LOST and trial.steps_done == 6


def test_sigterm_to_the_workers_parent_stops_every_worker(tmp_path):
    code, out, err, children = _signal_mid_trial(tmp_path, signal.SIGTERM, "--workers", "2",
                                                 hang="all", trainers=2)
    assert code == 143, err
    assert "interrupted: 0 trials kept; run the same command to resume" in out
    for pid in children:  # the parent waited for them: they are gone, not finishing the study
        assert not Path(f"/proc/{pid}").exists()
    trials = _trials(tmp_path)
    assert len(trials) == 2
    assert all(t.state is TrialState.LOST and t.steps_done == 6 for t in trials)
    assert "Traceback" not in err
