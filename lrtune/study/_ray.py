"""``tune(executor="ray")``: the study's workers as Ray tasks, placed by Ray on any cluster.

Each task is one :func:`run_worker` on the study's storage, so claims, heartbeats and the reaper
work as for ``lrtune worker`` processes, and a study can mix both. The objective travels the way
``workers=N`` sends it (cloudpickle, by value where its module is not importable); data paths
and the Python environment on the nodes are the user's, as everywhere with Ray. The storage is
the driver's: a relative SQLite path is made absolute (Ray's workers run in another folder), and
a worker on a node without that file stops with an error instead of creating another study.

Recovery is lrtune's, not Ray's: the trial of a worker process or node that dies stays RUNNING
in the storage until another worker's reaper fails it as lost (at once on the same host, which
sees the PID is gone; after six silent heartbeats from another host), and the strategy proposes
its configuration again, with the same seed. Ray's task retry only replaces the dead worker, as
the parent of ``workers=N`` does, so the study keeps its pace. Ray re-running the trial itself
would not work: a retried task does not know which claim it held, and only the storage knows
which claims are alive, including those of workers Ray never started.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from numbers import Real
from pathlib import Path
from typing import Any, cast

import sqlalchemy

from lrtune._validation import fail
from lrtune.exceptions import LrtuneError
from lrtune.study._heartbeat import Reaper, WorkerId
from lrtune.study._processes import RESTARTS_PER_WORKER, open_job, report_finished, worker_job
from lrtune.study._storage import StorageError, check_existing
from lrtune.study._study import Study
from lrtune.study._worker import POLL_SECONDS, Callback, run_worker
from lrtune.trial import Trial

_log = logging.getLogger("lrtune.study")
RAY_HINT = 'Ray is not installed: pip install "lrtune[ray]" (or "ray[tune]")'
OPTIONS = ("num_cpus", "num_gpus", "memory")  # Ray's own task options; other keys are custom
STOP_SECONDS = 30.0  # how long interrupted workers get to mark their trials lost
KILL_SECONDS = 30.0  # how long killed ones get to end before their trials are failed here
CONNECT_SECONDS = 10.0  # how long a "host:port" address gets to answer before Ray is asked
# Ray's name for each of its task options, in a node's resources
RAY_NAMES = {"num_cpus": "CPU", "num_gpus": "GPU", "memory": "memory"}
# where the Ray cluster launcher puts the config of an autoscaling cluster (Ray Tune's test too):
# there, a worker that no node holds yet makes the autoscaler add one
AUTOSCALER_CONFIG = "~/ray_bootstrap_config.yaml"


def import_ray() -> Any:
    """The ``ray`` module, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError as err:
        raise ImportError(RAY_HINT) from err
    return ray


def check_resources(resources: Any, owner: str) -> dict[str, float]:
    """``resources`` as Ray task options: numbers >= 0 by resource name (a copy)."""
    if resources is None:
        return {}
    if not isinstance(resources, Mapping) or not all(
            isinstance(k, str) and isinstance(v, Real) and not isinstance(v, bool)
            and math.isfinite(v) and cast(float, v) >= 0 for k, v in resources.items()):
        raise fail("resources", owner, "a dict of resource names to numbers >= 0, such as "
                   "{'num_gpus': 1, 'num_cpus': 4}", resources)
    if {"CPU", "GPU"} & resources.keys():  # Ray refuses them, once the study and cluster exist
        raise fail("resources", owner, "keyed 'num_cpus' and 'num_gpus' for CPUs and GPUs (Ray's "
                   "task options), not 'CPU' and 'GPU'", resources)
    return {k: float(v) for k, v in resources.items()}


@contextmanager
def connected(address: str | None) -> Iterator[Any]:
    """Ray, connected as ``ray.init(address)`` connects ("auto": the cluster running here,
    "host:port"; "local": a new local cluster; None: $RAY_ADDRESS, else the cluster running
    here, else a new local one), disconnected on exit. A connection the caller made earlier
    (``ray.init(runtime_env=...)``) is used as it is."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    _check_listening(address if address is not None else os.environ.get("RAY_ADDRESS"))
    ray.init(address=address, log_to_driver=True, include_dashboard=False,
             configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def _check_listening(address: str | None) -> None:
    """Refuse a "host:port" address where nothing listens: Ray's connect would retry for many
    minutes, printing only its own warnings. "auto", "local" and "ray://..." are Ray's to judge."""
    if address is None or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as err:
        raise LrtuneError(f"No Ray cluster at {address}: {err.strerror or err}. Start one there "
                          "(`ray start --head`), or name the address of a running one.") from None


def asked_per_worker(resources: Mapping[str, float]) -> dict[str, float]:
    """What one worker asking ``resources`` takes, by Ray's names (a CPU unless told)."""
    return {RAY_NAMES.get(k, k): v for k, v in {"num_cpus": 1.0, **resources}.items() if v > 0}


def capacity(ray: Any, asked: Mapping[str, float]) -> int:
    """How many workers asking ``asked`` each (not empty) the cluster's nodes hold at once."""
    return sum(int(min(node["Resources"].get(k, 0.0) // v for k, v in asked.items()))
               for node in ray.nodes() if node["Alive"])


def task_options(resources: Mapping[str, float]) -> dict[str, Any]:
    options: dict[str, Any] = {k: v for k, v in resources.items() if k in OPTIONS}
    custom = {k: v for k, v in resources.items() if k not in OPTIONS}
    if custom:
        options["resources"] = custom
    return {**options, "max_retries": RESTARTS_PER_WORKER}


def run_ray(study: Study, objective: Callable[[Trial], float], *, storage: str,
            workers: int | None, resources: Mapping[str, float],
            callbacks: Sequence[Callback] = (), address: str | None = None) -> None:
    """Run ``workers`` Ray tasks (None: as many as the cluster places) on ``study`` until done."""
    asked = asked_per_worker(resources)
    if workers is None and not asked:
        raise fail("workers", "tune()", "a number when resources ask for nothing (num_cpus=0): "
                   "the cluster would place any number of such workers", workers)
    # the workers run in other folders than this process: a relative SQLite path is this one's
    storage = absolute_sqlite(storage)
    # packed before a cluster starts: an objective that cannot be sent is refused first
    job = worker_job(study, objective, storage, workers)
    with connected(address) as ray:
        places = capacity(ray, asked) if asked else 1  # asking nothing: placed anywhere
        if not places and not Path(AUTOSCALER_CONFIG).expanduser().exists():
            nodes = [{k: node["Resources"].get(k, 0.0) for k in asked}
                     for node in ray.nodes() if node["Alive"]]
            raise fail("resources", "tune()", "what one node of the Ray cluster holds (Ray "
                       f"would wait for such a node forever); its nodes have {nodes}",
                       dict(resources))
        count = workers if workers is not None else max(1, places)
        job_ref = ray.put(job)
        task = ray.remote(_ray_worker).options(**task_options(resources))
        pending = [task.remote(job_ref, storage) for _ in range(count)]
        reported = {t.number for t in study.trials if t.state.finished}
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=POLL_SECONDS)
                report_finished(study, reported, callbacks)
                for ref in done:
                    _result(ray, ref, study)
            report_finished(study, reported, callbacks)
        finally:
            _stop(ray, pending, study)


def absolute_sqlite(storage: str) -> str:
    """``storage`` with a relative SQLite path made absolute, as this process resolves it."""
    url = sqlalchemy.engine.make_url(storage)
    if url.get_backend_name() != "sqlite" or not url.database or Path(url.database).is_absolute():
        return storage
    return url.set(database=str(Path(url.database).resolve())).render_as_string(
        hide_password=False)


def _result(ray: Any, ref: Any, study: Study) -> int:
    """What a finished task returned; raises what stopped it."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as err:  # the worker's own error (the objective's)
        cause = err.cause if isinstance(err.cause, BaseException) else err
        raise cause from None
    except ray.exceptions.RayError as err:  # its process or node kept dying: retries spent
        raise LrtuneError(
            f"Ray workers kept dying ({type(err).__name__}: {err}); the study {study.name!r} "
            "is incomplete: run tune() again to resume.") from None


def _stop(ray: Any, pending: list[Any], study: Study) -> None:
    """Interrupt the workers still running (each marks its trial lost), then wait for them;
    kill those that do not end in time and fail their trials as lost here."""
    if not pending:
        return
    for ref in pending:
        ray.cancel(ref)  # a KeyboardInterrupt in the task: run_worker marks its trial lost
    _, stuck = ray.wait(pending, num_returns=len(pending), timeout=STOP_SECONDS)
    if not stuck:
        return
    for ref in stuck:
        ray.cancel(ref, force=True)
    # killed (an objective that swallows the interrupt; once, beside a busy test suite, a worker
    # for a reason not established): their trials would stay running until a later worker's
    # reaper. Lost now where their processes can be checked (this host); on other hosts, once
    # their heartbeats fall silent.
    ray.wait(stuck, num_returns=len(stuck), timeout=KILL_SECONDS)
    Reaper(study, WorkerId.of_this_process()).reap()


def _ray_worker(job: bytes, storage: str) -> int:
    """The body of one Ray task: the job ``tune()`` packed, worked until the study is done."""
    logging.basicConfig(level=logging.WARNING, format="lrtune worker %(process)d: %(message)s")
    try:  # on a node without the driver's disk a SQLite path would create another study
        check_existing(storage)
    except StorageError as err:
        raise StorageError(
            f"A Ray worker on {socket.gethostname()} cannot reach the study's storage: {err} "
            "Every node must reach it at the same address: a database server "
            "(postgresql://...) across nodes, a SQLite file only on one node.") from None
    return run_worker(*open_job(job, extend_path=True))  # the driver's modules are importable
