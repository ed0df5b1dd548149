"""``tune(workers=N)``: N local worker processes on one study, and the parent that watches them.

Processes, not threads: training holds the GIL between torch calls, so threads would take
turns. Each worker is a fresh interpreter (``python -m lrtune.study._child``) that receives the
objective by value (cloudpickle), so objectives defined in a script, a notebook or a closure work
without an ``if __name__ == "__main__"`` guard. The parent trains nothing: it calls the
callbacks for every trial any worker finishes, replaces a worker that dies (a SIGKILL, the OOM
killer) so the study keeps its pace, and raises the error of a worker that stopped on one (an
objective that broke its contract). Each worker gets ``cores / N`` threads unless
``OMP_NUM_THREADS`` is set, so N workers do not oversubscribe the CPU, and its own GPU when
there are several: worker k sees only the k-th visible device (round-robin over
``CUDA_VISIBLE_DEVICES``, or over every device when that is unset), as device ``cuda:0``.

SIGTERM to the parent (a scheduler's preemption) stops it the way Ctrl-C does: it forwards the
signal to its workers, which mark their running trials lost (they run again on resume), and
waits for them; no worker is left training on its own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import cloudpickle
import sqlalchemy

from lrtune._validation import fail
from lrtune.exceptions import LrtuneError
from lrtune.study._storage import StudyLostError
from lrtune.study._study import Study, load_optuna_study
from lrtune.study._worker import POLL_SECONDS, Callback, interrupt_on_sigterm
from lrtune.trial import Trial

_log = logging.getLogger("lrtune.study")
RESTARTS_PER_WORKER = 3  # then an objective that kills its interpreter stops the study


def run_processes(study: Study, objective: Callable[[Trial], float], *, storage: str,
                  workers: int, callbacks: Sequence[Callback] = ()) -> None:
    """Run ``workers`` worker processes on ``study`` until it is done."""
    job = worker_job(study, objective, storage, workers)
    database = _DatabaseFile(storage)
    reported = {t.number for t in study.trials if t.state.finished}
    restarts = RESTARTS_PER_WORKER * workers
    with (_sigterm_stops_the_workers(),
          tempfile.TemporaryDirectory(prefix="lrtune-workers-") as tmp):
        job_file = Path(tmp, "job.pkl")
        job_file.write_bytes(job)
        procs = {slot: _start(job_file, tmp, slot, workers) for slot in range(workers)}
        try:
            while procs:
                time.sleep(POLL_SECONDS)
                with _signals_after_reads():
                    database.check()
                    report_finished(study, reported, callbacks)
                for slot, proc in list(procs.items()):
                    code = proc.poll()
                    if code is None:
                        continue
                    del procs[slot]
                    if code == 0:
                        continue
                    error = _error_of(tmp, slot)
                    if error is not None:
                        raise error
                    if not restarts:
                        raise LrtuneError(
                            f"Worker processes kept dying (the last exit status was {code}); "
                            f"the study {study.name!r} is incomplete: run tune() again to resume.")
                    restarts -= 1
                    _log.warning("worker process %d died (exit status %d); starting another",
                                 proc.pid, code)
                    procs[slot] = _start(job_file, tmp, slot, workers)
            with _signals_after_reads():
                database.check()
                report_finished(study, reported, callbacks)
        finally:
            _stop(procs.values())


def check_picklable(objective: Callable[[Trial], float], workers: int | None) -> bytes:
    """``objective`` pickled by cloudpickle, or the error that says it cannot go to workers
    (``workers`` None: as many as a Ray cluster places)."""
    try:
        return cloudpickle.dumps(objective)
    except Exception as err:  # noqa: BLE001 - whatever the pickler raises, the objective is why
        where = "worker processes" if workers is None else f"{workers} worker processes"
        raise fail("objective", "tune()", f"picklable (by cloudpickle) to run in {where}; "
                   f"pickling failed with {type(err).__name__}: {err}", objective) from None


def worker_job(
    study: Study, objective: Callable[[Trial], float], storage: str, workers: int | None
) -> bytes:
    settings: dict[str, Any] = {"storage": storage, "study_name": study.name,
                                "space": study.space, "strategy": study.strategy}
    job = {"objective": check_picklable(objective, workers),
           "settings": cloudpickle.dumps(settings)}
    return pickle.dumps({"sys_path": list(sys.path), "job": job})


def open_job(job: bytes, extend_path: bool = False) -> tuple[Study, Callable[[Trial], float]]:
    """The study and objective a worker process gets from :func:`worker_job`: the driver's
    ``sys.path`` replaces its own (``extend_path``: is added to it), so the objective's modules
    import. The study is opened as stored, not with the driver's settings again: the driver
    checked those, and another process may have extended the budget since (a worker started
    in place of a dead one must not find the driver's budget too small)."""
    outer = pickle.loads(job)
    if extend_path:
        sys.path.extend(p for p in outer["sys_path"] if p not in sys.path)
    else:
        sys.path[:] = outer["sys_path"]
    objective = cloudpickle.loads(outer["job"]["objective"])
    settings = cloudpickle.loads(outer["job"]["settings"])
    stored = load_optuna_study(settings["study_name"], settings["storage"])
    return Study.from_stored(stored, settings["space"], settings["strategy"]), objective


class _DatabaseFile:
    """The SQLite file of the study, watched by the parent: deleted or replaced while workers
    run, it is gone for good (their open connections write on into the deleted file without an
    error), and the study must not end as if it had succeeded."""

    def __init__(self, storage: str) -> None:
        url = sqlalchemy.engine.make_url(storage)
        sqlite = url.get_backend_name() == "sqlite" and url.database not in (None, "")
        self.path = Path(cast(str, url.database)) if sqlite else None  # sqlite: not None
        self.identity = self._identity()

    def _identity(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self.path)  # type: ignore[arg-type]  # None: TypeError, caught below
        except (FileNotFoundError, TypeError):  # deleted, or not a file-backed study
            return None
        return stat.st_dev, stat.st_ino

    def check(self) -> None:
        if self.path is not None and self._identity() != self.identity:
            raise StudyLostError(
                f"The study's SQLite file {self.path} was deleted or replaced while the workers "
                "ran: what they recorded is lost. Restore the file, or start the study again.")


@contextlib.contextmanager
def _sigterm_stops_the_workers() -> Iterator[None]:
    """While the workers run, SIGTERM raises SystemExit in the parent (whose ``finally`` stops
    them) instead of killing it outright; a handler the program installed itself is kept."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return
    interrupt_on_sigterm()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def _signals_after_reads() -> Iterator[None]:
    """Ctrl-C and SIGTERM held while the parent reads the storage, then raised as it ends:
    raised inside a read, they left SQLAlchemy to log a traceback as it closed a cursor on the
    database the interruption had closed ("Cannot operate on a closed database")."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    handlers = {signum: signal.signal(signum, lambda number, frame: held.append(number))
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        if held:
            signal.raise_signal(held[0])  # now, to the handler it was meant for


def worker_environment(slot: int, workers: int, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of worker ``slot`` of ``workers``: its share of the cores, and its GPU."""
    env = dict(environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    devices = _visible_gpus(environ)
    if len(devices) > 1:
        env["CUDA_VISIBLE_DEVICES"] = devices[slot % len(devices)]
    return env


def _visible_gpus(environ: Mapping[str, str]) -> list[str]:
    if "CUDA_VISIBLE_DEVICES" in environ:
        return [d.strip() for d in environ["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def _start(job_file: Path, tmp: str, slot: int, workers: int) -> subprocess.Popen:
    env = worker_environment(slot, workers, os.environ)
    error_file = Path(tmp, f"error-{slot}.pkl")
    error_file.unlink(missing_ok=True)
    return subprocess.Popen([sys.executable, "-m", "lrtune.study._child", str(job_file),
                             str(error_file)], env=env)


def _error_of(tmp: str, slot: int) -> BaseException | None:
    path = Path(tmp, f"error-{slot}.pkl")
    return pickle.loads(path.read_bytes()) if path.exists() else None


def report_finished(study: Study, reported: set[int], callbacks: Sequence[Callback]) -> None:
    """Call the callbacks for trials finished since the last look, in trial order."""
    if not callbacks:
        return
    for record in study.trials:
        if record.state.finished and record.number not in reported:
            reported.add(record.number)
            for callback in callbacks:
                callback(study, record)


def _stop(procs: Any) -> None:
    """Ask the remaining workers to stop with SIGTERM (their running trials are marked lost),
    then wait for them."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
