"""Studies worked by Ray tasks on a real two-node Ray cluster started here: the same trials and
values as one local worker on SQLite and on PostgreSQL, nothing lost or counted twice when a
worker process or a whole node dies mid-trial, Ctrl-C on the driver marks the trials lost, and
the README's commands run as written."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import cloudpickle
import pytest

import lrtune
from lrtune.records import TrialState

ray = pytest.importorskip("ray", reason='Ray is not installed: pip install "lrtune[ray]"')
from ray.cluster_utils import Cluster  # noqa: E402

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the Ray workers get this module's
# objective wrappers by value: they cannot import a test module
ROOT = Path(__file__).resolve().parents[2]
OWN_LOOP_DIR = ROOT / "examples"  # the driver process unpickles the own-loop objective from it
AT_STEP = 20  # the step after which the trial that a test interrupts waits to be killed

# in a process of their own (see the marker); the module took 100 s beside two busy loops, its
# slowest test 38 s, with the Ray workers at the normal priority (conftest.py's RAY_TEST_ENV)
pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def cluster(ray_env):
    """A head and one more node with two CPUs each, on this machine (on its own address: Ray
    rewrites a loopback address to it when connecting); the test process is the driver.
    Stopped at the end of the module."""
    try:
        nodes = Cluster(initialize_head=True,
                        head_node_args={"num_cpus": 2, "include_dashboard": False})
        nodes.add_node(num_cpus=2)
        ray.init(address=nodes.address, include_dashboard=False, log_to_driver=False)
    except Exception as err:  # noqa: BLE001 - whatever stops Ray here is the skip reason
        pytest.skip(f"a Ray cluster cannot start on this machine: {type(err).__name__}: {err}")
    try:
        yield nodes
    finally:
        ray.shutdown()
        nodes.shutdown()


class WaitsToBeKilled:
    """The objective, except that the first trial (on the node ``node_id``, when given) to
    report step AT_STEP writes its worker's PID and its number to ``marker`` and then waits,
    in training, until it is killed. Every other trial, its re-run included, trains as usual."""

    def __init__(self, objective, marker: Path, node_id: str | None = None,
                 deaf: bool = False):
        self.objective, self.marker, self.node_id = objective, marker, node_id
        self.deaf = deaf  # swallows the KeyboardInterrupt of a Ray cancel, as a bare except does

    def __call__(self, trial):
        report = trial.report

        def reporting(loss, step=None):
            report(loss, step)
            if step == AT_STEP and self._first():
                self._signal(trial.number)
                for _ in range(6000):  # runs Python as training does (Ray's cancel is an
                    try:  # exception raised between bytecodes); killed long before 600 s
                        time.sleep(0.1)
                    except KeyboardInterrupt:
                        if not self.deaf:
                            raise
                raise AssertionError("the test never killed this worker")

        trial.report = reporting
        return self.objective(trial)

    def _first(self) -> bool:
        if self.node_id and ray.get_runtime_context().get_node_id() != self.node_id:
            return False
        try:
            os.close(os.open(f"{self.marker}.claim", os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return False
        return True

    def _signal(self, number: int) -> None:
        partial = self.marker.with_suffix(".partial")
        partial.write_text(f"{os.getpid()} {number}")
        partial.rename(self.marker)  # atomic: the test reads all of it or nothing


def read_marker(marker: Path, driver: subprocess.Popen | None = None,
                timeout: float = 500) -> tuple[int, int]:
    """(PID, trial number) that a WaitsToBeKilled wrote, once it is there; an error at once when
    the ``driver`` process ends first (with what it printed), and after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if driver is not None and driver.poll() is not None:
            raise AssertionError(f"the driver ended first: {driver.communicate()}")
        assert time.monotonic() < deadline, "no trial reached the step at which it is killed"
        time.sleep(0.05)
    pid, number = marker.read_text().split()
    return int(pid), int(number)


def in_background(action):
    """Run ``action`` in a thread; returns a function that joins it and re-raises its error."""
    errors = []

    def run():
        try:
            action()
        except BaseException as err:  # noqa: BLE001 - handed to the test's thread
            errors.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join():
        thread.join()
        if errors:
            raise errors[0]
    return join


def _name():
    return f"ray-{uuid.uuid4().hex[:8]}"


def _same_as_one_local_worker(result, expected, trials=13):
    assert len(result.finished) == trials
    assert result.finished == expected.finished  # same configs, same values (seeds by study)
    assert result.duplicates == 0
    assert result.best == expected.best and result.spent == pytest.approx(expected.spent)


def _readme_commands(**replace):
    """The README's Ray commands, one per line, with ``replace`` applied (placeholders)."""
    text = (ROOT / "README.md").read_text().split("<!-- ray-commands:", 1)[1]
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1).replace("\\\n", " ")
    for old, new in replace.items():
        assert old in block, f"the README's Ray commands no longer hold {old!r}"
        block = block.replace(old, new)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


def test_the_readme_commands_run_a_study_on_a_two_node_cluster(tmp_path, own_loop,
                                                               own_loop_spec, audit,
                                                               fault_free, ray_env):
    """First in this module: ``ray stop`` stops every Ray process on the machine, so it runs
    before the module's own cluster starts."""
    url, port = f"sqlite:///{tmp_path / 'readme.db'}", str(_free_port())
    commands = _readme_commands(**{
        "6379": port, "HEAD": ray.util.get_node_ip_address(), "train.py:objective": own_loop_spec,
        "--steps 2000 --budget 8": "--steps 60 --budget 3",
        "postgresql://lrtune:PASSWORD@dbhost/lrtune": url, "--gpus 1": "--gpus 0"})
    env = dict(os.environ, OMP_NUM_THREADS="1",  # ray_env set; `ray`, `lrtune` of this venv
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    outputs = []
    try:
        for command in commands:
            proc = subprocess.run(command, shell=True, capture_output=True, text=True, env=env,
                                  cwd=tmp_path, timeout=600)
            assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"
            outputs.append(proc.stdout)
    finally:
        subprocess.run(["ray", "stop", "--force"], capture_output=True, env=env)
    space = lrtune.Space(optimizer="adamw", schedule="constant")  # the CLI's defaults
    result = audit(url, "resnet-lr")
    expected = fault_free(own_loop, steps=60, budget=3.0, strategy="hyperband", space=space,
                          seed=0)
    assert result.finished == expected.finished and result.best == expected.best
    assert result.duplicates == 0 and result.lost == [] and len(result.workers) >= 2
    tune_output = outputs[2]
    assert len(re.findall(r"^trial +\d+ ", tune_output, re.M)) == len(expected.finished)
    assert f"best lr {expected.best[0]:.4g}" in tune_output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_four_ray_workers_find_what_one_local_worker_finds(cluster, backend, tmp_path, request,
                                                           own_loop, audit, fault_free, halving):
    url = (f"sqlite:///{tmp_path / 'ray.db'}" if backend == "sqlite"
           else request.getfixturevalue("postgres_url"))
    name, reported = _name(), []
    lrtune.tune(own_loop, storage=url, study_name=name, executor="ray", workers=4,
                callbacks=[lambda study, record: reported.append(record.number)], **halving)
    result = audit(url, name)
    _same_as_one_local_worker(result, fault_free(own_loop, **halving))
    assert result.lost == []
    assert len(result.workers) >= 2  # the work was shared by several Ray worker processes
    assert sorted(reported) == [t.number for t in lrtune.load_study(name, url).trials]


def test_a_ray_worker_killed_mid_trial_loses_nothing(cluster, tmp_path, own_loop, audit,
                                                     fault_free, halving, wait_dead):
    url, name, marker = f"sqlite:///{tmp_path / 'kill.db'}", _name(), tmp_path / "killed"

    def kill_the_worker():
        pid, _ = read_marker(marker)
        os.kill(pid, signal.SIGKILL)

    join = in_background(kill_the_worker)
    lrtune.tune(WaitsToBeKilled(own_loop, marker), storage=url, study_name=name,
                executor="ray", workers=4, **halving)
    join()
    pid, number = read_marker(marker)
    wait_dead(pid)
    result = audit(url, name)
    (lost,) = result.lost
    assert lost.number == number and lost.error.startswith("lost:")  # the killed trial ...
    assert (lost.tag, lost.lr, lost.steps) in result.finished  # ... ran again, by another worker
    _same_as_one_local_worker(result, fault_free(own_loop, **halving))


def test_a_node_stopped_mid_study_loses_nothing(cluster, tmp_path, own_loop, audit, fault_free,
                                                halving, wait_dead):
    url, name, marker = f"sqlite:///{tmp_path / 'node.db'}", _name(), tmp_path / "node"
    (victim,) = cluster.worker_nodes
    stopped = []

    def stop_the_node():
        pid, _ = read_marker(marker)
        cluster.remove_node(victim, allow_graceful=False)  # its raylet and its workers
        wait_dead(pid)
        stopped.append(pid)

    join = in_background(stop_the_node)
    try:
        lrtune.tune(WaitsToBeKilled(own_loop, marker, victim.node_id), storage=url,
                    study_name=name, executor="ray", workers=4, **halving)
        join()
    finally:
        if not cluster.worker_nodes:  # the next tests get two nodes again
            cluster.add_node(num_cpus=2)
    _, number = read_marker(marker)
    assert stopped, "the node was not stopped"
    result = audit(url, name)
    # the node's two workers die with it: the waiting trial, and the other's when it was training
    # one (beside two busy loops it was; on an idle machine it had finished)
    assert number in {t.number for t in result.lost} and len(result.lost) <= 2
    assert all((t.tag, t.lr, t.steps) in result.finished for t in result.lost)  # each ran again
    _same_as_one_local_worker(result, fault_free(own_loop, **halving))


DRIVER = """
import signal, sys, ray, lrtune, cloudpickle
import lrtune.study._ray
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (see below)
ray.init(address=sys.argv[1], log_to_driver=False)
objective, settings = cloudpickle.loads(open(sys.argv[2], "rb").read())
lrtune.study._ray.STOP_SECONDS = float(sys.argv[3])
lrtune.tune(objective, executor="ray", workers=4, **settings)
"""


@pytest.mark.slow
@pytest.mark.parametrize("deaf, stop_seconds, how", [
    # the worker marks its own trial; beside a busy test suite one once did not end in 30 s and
    # its trial was left running: now it is killed and the driver marks the trial, as below
    (False, 30.0, ("lost: interrupted (KeyboardInterrupt)", "lost: its worker")),
    # an objective that swallows the interrupt: its worker is killed when the wait runs out and
    # the driver marks the trial lost
    (True, 3.0, ("lost: its worker",)),
])
def test_ctrl_c_on_the_driver_stops_the_workers_and_marks_their_trials_lost(
        cluster, tmp_path, own_loop, halving, deaf, stop_seconds, how):
    url, name, marker = f"sqlite:///{tmp_path / 'int.db'}", _name(), tmp_path / "int"
    job = tmp_path / "job.pkl"
    job.write_bytes(cloudpickle.dumps((WaitsToBeKilled(own_loop, marker, deaf=deaf),
                                       dict(halving, storage=url, study_name=name))))
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, cluster.address, str(job),
                               str(stop_seconds)],
                              stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=str(OWN_LOOP_DIR)))
    try:
        pid, number = read_marker(marker, driver)
        driver.send_signal(signal.SIGINT)
        _, err = driver.communicate(timeout=120)
    finally:
        driver.kill()
    assert driver.returncode != 0 and "KeyboardInterrupt" in err
    trials = {t.number: t for t in lrtune.load_study(name, url).trials}
    assert trials[number].state is TrialState.LOST
    assert trials[number].error.startswith(how)
    assert not any(t.state is TrialState.RUNNING for t in trials.values())  # none left behind


def test_bad_ray_settings_fail_before_anything_starts(tmp_path):
    url = f"sqlite:///{tmp_path / 'bad.db'}"
    with pytest.raises(lrtune.InvalidParameterError,
                       match=r"The 'storage' parameter of tune\(\) must be a storage URL every "
                             r"Ray node reaches .* Got None instead\."):
        lrtune.tune(lambda trial: 1.0, steps=10, strategy="grid", executor="ray")
    with pytest.raises(lrtune.InvalidParameterError,
                       match=r"The 'resources' parameter of tune\(\) must be a dict of resource "
                             r"names to numbers >= 0.* Got \{'num_gpus': -1\} instead\."):
        lrtune.tune(lambda trial: 1.0, steps=10, strategy="grid", executor="ray", storage=url,
                    resources={"num_gpus": -1})
    with pytest.raises(lrtune.InvalidParameterError,
                       match=r"The 'executor' parameter of tune\(\) must be one of 'local', "
                             r"'ray'\. Got 'dask' instead\."):
        lrtune.tune(lambda trial: 1.0, steps=10, strategy="grid", executor="dask", storage=url)
    assert not (tmp_path / "bad.db").exists()  # nothing was created
