"""Which worker runs a trial, whether it is still alive, and what happens to trials of dead ones.

A running trial carries its worker's identity and a beat counter that the worker's heartbeat
thread increments every ``heartbeat`` seconds. Another worker declares the trial *lost* (fails it
in the storage, so its configuration is proposed again) when

- the owner ran on the same kernel and PID namespace and that process is gone (a SIGKILL, an
  OOM kill, a crash on this machine is noticed at the next look, not after a timeout), or
- the owner was a worker of this very process that has ended (it gave up on a failing
  storage, or an error stopped it): a later ``tune`` in the same session takes its trial at once,
- the counter has not moved for ``SILENT_BEATS`` heartbeats while the other worker watched (and
  could read the storage: an outage it sat through itself is no one's silence).

The second rule measures silence with the watcher's own monotonic clock, never by comparing
timestamps written on different hosts, so clock skew between machines cannot make a live trial
look dead. It works on every Optuna storage. A worker that was declared dead while it was only
stalled (a paused VM, a network cut) finds out at its next beat and drops its trial: the storage
refuses the late result, so nothing is counted twice.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, Protocol

from lrtune.study._storage import last_recovery

_log = logging.getLogger("lrtune.study")
_ENDED: set[str] = set()  # tokens of this process's workers that have stopped working
HEARTBEAT_SECONDS = 5.0  # default interval between two beats of a running trial
SILENT_BEATS = 6  # a trial whose counter stood still this many intervals is lost


@dataclass(frozen=True)
class RunningTrial:
    """A trial the storage has RUNNING: its storage id, number and lrtune attrs (unprefixed)."""

    trial_id: int
    number: int
    attrs: dict[str, Any]


class Liveness(Protocol):
    """What heartbeats and the reaper need of a study (:class:`~lrtune.study.Study` has it)."""

    @property
    def heartbeat(self) -> float:
        """Seconds between two beats of a running trial."""

    def beat(self, trial_id: int, count: int) -> bool:
        """Record beat ``count``; False when the trial was taken from its worker."""

    def running_trials(self) -> list[RunningTrial]:
        """The trials the storage has RUNNING."""

    def fail_lost(self, trial_id: int) -> bool:
        """Fail a running trial whose worker is dead; False if it had already ended."""


@dataclass(frozen=True)
class WorkerId:
    """Who runs a trial. ``kernel`` names the boot and PID namespace: two workers with the same
    ``kernel`` see the same process table, so one can check whether the other's PID is alive."""

    host: str
    pid: int
    kernel: str  # "" where unknown (not Linux): heartbeats alone decide
    started: int  # process start time in clock ticks since boot: tells a reused PID apart
    token: str  # random, unique to this process

    @classmethod
    def of_this_process(cls) -> WorkerId:
        return cls(socket.gethostname(), os.getpid(), _kernel_id(), _start_time(os.getpid()) or 0,
                   secrets.token_hex(8))

    def as_attr(self) -> dict[str, Any]:
        return asdict(self)

    def end(self) -> None:
        """This worker stopped: what it left running is an orphan for any later worker here."""
        _ENDED.add(self.token)


def _kernel_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        return f"{boot}/{os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return ""


def _start_time(pid: int) -> int | None:
    """The start time of process ``pid``, or None when no live process has that PID."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    state, started = fields[0], int(fields[19])  # fields 3 and 22 of proc(5)
    return None if state in ("Z", "X") else started  # a zombie has already died


def owner_is_dead(owner: dict[str, Any], me: WorkerId) -> bool:
    """Whether ``owner`` surely died: it ran where its PID can be checked, and it is gone."""
    if not me.kernel or owner.get("kernel") != me.kernel:
        return False
    return _start_time(int(owner.get("pid", -1))) != owner.get("started")


class Heartbeat:
    """A daemon thread that beats for one running trial until the ``with`` block ends.

    Storage errors are logged and the next beat tried: a database that blips must not make a
    live trial look dead. ``taken`` turns True when the storage refuses the beat because the
    trial was finished by someone else (declared lost): the trial should stop at once.
    """

    def __init__(self, study: Liveness, trial_id: int) -> None:
        self._study = study
        self._trial_id = trial_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lrtune-heartbeat-{trial_id}",
                                        daemon=True)
        self.taken = False

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        beat = 0
        while not self._stop.wait(self._study.heartbeat):
            beat += 1
            try:
                if not self._study.beat(self._trial_id, beat):
                    self.taken = True
                    return
            except Exception as err:  # noqa: BLE001 - keep beating: the next one may get through
                _log.warning("heartbeat of trial id %d failed: %s", self._trial_id, err)


class Reaper:
    """Finds running trials whose worker died and fails them, so their configurations run again."""

    def __init__(self, study: Liveness, me: WorkerId) -> None:
        self._study = study
        self._me = me
        self._watch: dict[int, tuple[Any, float]] = {}  # trial id -> (beat seen, since when)

    @property
    def grace(self) -> float:
        """Seconds of silence after which a trial is lost."""
        return SILENT_BEATS * self._study.heartbeat

    def reap(self) -> list[int]:
        """Mark the lost trials; returns their numbers. Called between trials: a running trial
        of this very process is an orphan (a claim or an interrupted call left it behind)."""
        now = time.monotonic()
        running = self._study.running_trials()
        ids = {t.trial_id for t in running}
        self._watch = {k: v for k, v in self._watch.items() if k in ids}
        lost = []
        for trial in running:
            if "state" not in trial.attrs:
                continue  # written by plain Optuna code: Optuna's own heartbeat handles it
            if self._dead(trial.trial_id, trial.attrs, now) \
                    and self._study.fail_lost(trial.trial_id):
                lost.append(trial.number)
        if lost:
            _log.warning("trials %s lost their worker; their configurations run again", lost)
        return lost

    def _dead(self, trial_id: int, attrs: dict[str, Any], now: float) -> bool:
        owner = attrs.get("worker") or {}
        if owner.get("token") in (self._me.token, *_ENDED) or owner_is_dead(owner, self._me):
            return True
        beat = attrs.get("beat")
        seen, since = self._watch.get(trial_id, (None, None))
        if since is None or seen != beat:
            self._watch[trial_id] = (beat, now)
            return False
        return now - max(since, last_recovery()) > self.grace
