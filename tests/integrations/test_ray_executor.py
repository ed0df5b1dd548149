"""``tune(executor="ray")`` given what a user gets wrong: a relative SQLite path, a storage a
node cannot reach, resources no node holds, an objective that cannot be sent, an address where
no cluster runs. Each is refused at once with what to do, or works as meant; none waits forever
or leaves the study empty. (The executor's trials, deaths and interrupts: tests/study/test_ray.py.)
"""

import math
import socket
import sys
import threading

import cloudpickle
import pytest

import lrtune
from lrtune.exceptions import LrtuneError
from lrtune.records import TrialState
from lrtune.study._processes import worker_job
from lrtune.study._storage import StorageError

ray = pytest.importorskip("ray", reason='Ray is not installed: pip install "lrtune[ray]"')
import lrtune.study._ray as ray_executor  # noqa: E402

pytestmark = pytest.mark.ray  # in a process of its own (see the marker)
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the Ray workers get this module's
# objective by value: they cannot import a test module
GRID = dict(steps=10, budget=1.0, strategy="grid")  # one trial


@pytest.fixture(scope="module")
def started_in(ray_env, tmp_path_factory):
    """A one-node Ray cluster with two CPUs and no GPU for this module, stopped at its end; its
    workers run in the folder it returns (where it was started), not in the tests' folder."""
    folder = tmp_path_factory.mktemp("cluster")
    with pytest.MonkeyPatch.context() as here:
        here.chdir(folder)
        try:
            ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False,
                     log_to_driver=False)
        except Exception as err:  # noqa: BLE001 - whatever stops Ray here is the skip reason
            pytest.skip(f"Ray cannot start on this machine: {type(err).__name__}: {err}")
    try:
        yield folder
    finally:
        ray.shutdown()


def _objective(trial):
    for step in range(trial.steps):
        trial.report(abs(math.log10(trial.lr) + 2.5) + 1 / (step + 1), step)
    return abs(math.log10(trial.lr) + 2.5)


def test_a_relative_sqlite_path_is_the_drivers(started_in, tmp_path, monkeypatch):
    # the workers opened rel.db in their own folder: the driver's study ended with no trial
    monkeypatch.chdir(tmp_path)
    study = lrtune.tune(_objective, storage="sqlite:///rel.db", executor="ray", workers=1,
                        **GRID)
    assert [t.state for t in study.trials] == [TrialState.COMPLETED]
    assert not (started_in / "rel.db").exists()


def test_resources_no_node_holds_are_refused_instead_of_waited_for(started_in, tmp_path):
    # Ray held the worker as infeasible and tune() waited forever
    url = f"sqlite:///{tmp_path / 'gpu.db'}"
    with pytest.raises(lrtune.InvalidParameterError,
                       match=r"The 'resources' parameter of tune\(\) must be what one node of "
                             r"the Ray cluster holds .* its nodes have \[\{'CPU': 2\.0, 'GPU': "
                             r"0\.0\}\]\. Got \{'num_gpus': 1\.0\} instead\."):
        lrtune.tune(_objective, storage=url, study_name="gpu", executor="ray",
                    resources={"num_gpus": 1}, **GRID)
    assert lrtune.load_study("gpu", url).trials == []
    assert ray.is_initialized()  # the caller's connection is kept


def test_cpu_and_gpu_by_ray_s_resource_names_are_refused_before_the_study(tmp_path):
    # Ray refused them at the first task, with the study created and a cluster started
    with pytest.raises(lrtune.InvalidParameterError,
                       match=r"The 'resources' parameter of tune\(\) must be keyed 'num_cpus' "
                             r"and 'num_gpus' .* Got \{'GPU': 1\} instead\."):
        lrtune.tune(_objective, storage=f"sqlite:///{tmp_path / 'gpu.db'}", executor="ray",
                    resources={"GPU": 1}, **GRID)
    assert not (tmp_path / "gpu.db").exists()


def test_workers_that_ask_for_nothing_need_a_number(tmp_path):
    # "as many as the cluster places" is unbounded: min() of nothing raised a bare ValueError
    with pytest.raises(lrtune.InvalidParameterError,
                       match=r"The 'workers' parameter of tune\(\) must be a number when "
                             r"resources ask for nothing"):
        lrtune.tune(_objective, storage=f"sqlite:///{tmp_path / 'zero.db'}", executor="ray",
                    resources={"num_cpus": 0}, **GRID)


def test_an_objective_that_cannot_be_sent_is_refused_before_ray_is_reached(tmp_path,
                                                                          monkeypatch):
    def connected(address):
        raise AssertionError("Ray was reached")

    monkeypatch.setattr(ray_executor, "connected", connected)
    lock = threading.Lock()  # cloudpickle cannot send a lock
    with pytest.raises(lrtune.InvalidParameterError,
                       match=r"The 'objective' parameter of tune\(\) must be picklable \(by "
                             r"cloudpickle\) to run in worker processes; .* "
                             r"cannot pickle '_thread\.lock' object"):
        lrtune.tune(lambda trial: (lock, 1.0)[1], storage=f"sqlite:///{tmp_path / 'p.db'}",
                    executor="ray", **GRID)
    assert not (tmp_path / "p.db").exists()  # refused before the study was created


def test_a_worker_that_cannot_reach_the_storage_says_so(tmp_path):
    # on a node without the driver's disk, the worker created another study there and ran it
    url = f"sqlite:///{tmp_path / 'study.db'}"
    driver = lrtune.tune(_objective, storage=url, study_name="s", **GRID)
    job = worker_job(driver, _objective, url, 1)
    elsewhere = tmp_path / "node" / "study.db"
    with pytest.raises(StorageError, match=r"A Ray worker on .* cannot reach the study's "
                                           r"storage: No storage at .* does not exist\. Every "
                                           r"node must reach it"):
        ray_executor._ray_worker(job, f"sqlite:///{elsewhere}")
    assert not elsewhere.parent.exists()


def test_an_address_where_no_cluster_listens_fails_at_once(monkeypatch):
    # Ray retried the connection for over 12 minutes, printing only its own warnings
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"  # nothing listens once it is closed
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: pytest.fail("ray.init was called"))
    monkeypatch.setenv("RAY_ADDRESS", address)
    for given in (address, None):  # the CLI's --ray ADDRESS; tune() with $RAY_ADDRESS
        with pytest.raises(LrtuneError, match=rf"No Ray cluster at {address}: .*ray start"):
            with ray_executor.connected(given):
                pytest.fail("connected")
