"""Fixtures for the study tests: a real PostgreSQL server, and an audit of a stored study."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
import torch

from processes import kill_if_frozen
from processes import wait_dead as _wait_dead

import lrtune
from lrtune.records import TrialState

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_SCRIPT = ROOT / "scripts" / "postgres.sh"
OWN_LOOP = f"{ROOT / 'examples' / 'own_loop.py'}:objective"  # a real objective: an MLP on digits
SPACE = lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd")
# successive halving: 9 configs at 30 steps, 3 promoted to 90, 1 to 270 (13 trials)
HALVING = dict(steps=270, budget=3.0, strategy="hyperband", space=SPACE, seed=0)


@pytest.fixture(scope="session")
def halving():
    """Settings of a small successive-halving study of the own-loop objective."""
    return dict(HALVING)


@pytest.fixture(scope="session")
def postgres_script():
    return POSTGRES_SCRIPT


@pytest.fixture(scope="session")
def postgres_url():
    """The URL of a PostgreSQL server: $LRTUNE_TEST_POSTGRES_URL (what .ci/run starts), else one
    started here through scripts/postgres.sh and stopped after the session."""
    url = os.environ.get("LRTUNE_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    proc = subprocess.run([str(POSTGRES_SCRIPT), "start"], capture_output=True, text=True)
    if proc.returncode == 3:
        pytest.skip(f"PostgreSQL cannot be installed on this machine: {proc.stderr.strip()}")
    assert proc.returncode == 0, f"scripts/postgres.sh start failed:\n{proc.stderr}"
    exports = dict(shlex.split(line.removeprefix("export "))[0].split("=", 1)
                   for line in proc.stdout.splitlines() if line.startswith("export "))
    yield exports["LRTUNE_TEST_POSTGRES_URL"]
    subprocess.run([str(POSTGRES_SCRIPT), "stop", exports["LRTUNE_TEST_POSTGRES_DIR"]], check=True)


@dataclass(frozen=True)
class Audit:
    """What a stored study holds, counted from the storage itself."""

    finished: dict  # (tag, lr, steps) -> value of every finished trial
    duplicates: int  # finished trials whose configuration had already finished
    lost: list  # records of lost trials
    retired: int  # claims withdrawn before training (concurrent duplicates)
    workers: set  # (kernel, pid) of every worker that recorded a trial
    spent: float
    best: tuple | None  # (lr, value) of the study's answer


def audit_study(storage: str, name: str) -> Audit:
    study = lrtune.load_study(name, storage)
    raw = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    records = study.trials
    done = [t for t in records if t.state.finished]
    keys = Counter((t.tag, t.lr, t.steps) for t in done)
    owners = {t.number: t.user_attrs.get("lrtune:worker", {}) for t in raw}
    return Audit(
        finished={(t.tag, t.lr, t.steps): t.value for t in done},
        duplicates=sum(n - 1 for n in keys.values()),
        lost=[t for t in records if t.state is TrialState.LOST],
        retired=sum("lrtune:retired" in t.user_attrs for t in raw),
        workers={(owners[t.number].get("kernel"), owners[t.number].get("pid")) for t in done},
        spent=study.spent,
        best=_best(study),
    )


@pytest.fixture(scope="session")
def own_loop():
    """The objective of examples/own_loop.py, loaded as the CLI loads it."""
    from lrtune.cli._loading import load_object

    return load_object(OWN_LOOP)


@pytest.fixture(scope="session")
def own_loop_spec():
    return OWN_LOOP


@pytest.fixture(autouse=True)
def _one_thread_per_worker(monkeypatch):
    """Worker processes train with one thread, like the in-process references: the same float
    arithmetic, so their values compare exactly."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture
def wait_dead():
    return _wait_dead


@pytest.fixture
def kill_frozen():
    return kill_if_frozen


@pytest.fixture
def audit():
    return audit_study


def reference(objective, **settings) -> Audit:
    """The same study run by one worker in this process, never interrupted, with one thread
    like the worker processes of the tests (the same float arithmetic, so values compare
    exactly)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        study = lrtune.tune(objective, **settings)
    finally:
        torch.set_num_threads(threads)
    done = [t for t in study.trials if t.state.finished]
    return Audit({(t.tag, t.lr, t.steps): t.value for t in done}, 0, [], 0, set(), study.spent,
                 _best(study))


def _best(study: lrtune.Study) -> tuple | None:
    best = study.best
    return (best.lr, best.value) if best is not None else None


@pytest.fixture
def fault_free():
    return reference
