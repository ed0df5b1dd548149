"""Watching, stopping and killing the processes of a study from a test, at observed moments.

A kill meant to land "mid-trial" is made one by construction: the process is stopped (SIGSTOP)
while the test looks at the storage, so nothing it does can fall between the look and the kill.
Every wait has a time-out that turns a hang into an error saying what never happened.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

WAIT_SECONDS = 60.0
SETTLE_SECONDS = 2.0  # a try that fails is retried, so this bounds no outcome


def stat(pid: int) -> tuple[str, int]:
    """(state letter, process group) of ``pid`` in proc(5); ("X", 0) once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[2])
    except (OSError, IndexError, ValueError):
        return "X", 0


def wait_for_state(pid: int, states: str, what: str, timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while stat(pid)[0] not in states:
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} {what} within {timeout:g} s")
        time.sleep(0.01)


def wait_dead(pid: int) -> None:
    """Until process ``pid`` is gone or a zombie: it can write nothing more."""
    wait_for_state(pid, "ZX", "did not die")


def group(pgid: int) -> list[int]:
    """The live processes of process group ``pgid``."""
    return [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
            if stat(pid)[1] == pgid]


def stop_group(pgid: int) -> None:
    """SIGSTOP every process of group ``pgid``, and wait until each is stopped.

    A parent caught inside ``vfork()`` (``subprocess`` starting a worker) waits in state D until
    its child has exec'd, and the child is stopped too, so it would never stop: when the group does
    not settle, it is let go (SIGCONT) and stopped again."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        os.killpg(pgid, signal.SIGSTOP)
        try:
            for pid in group(pgid):
                wait_for_state(pid, "TtZX", "did not stop", timeout=SETTLE_SECONDS)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise AssertionError(f"process group {pgid} did not stop within "
                                     f"{WAIT_SECONDS:g} s") from None
            os.killpg(pgid, signal.SIGCONT)


def kill_if_frozen(pid: int, holds: Callable[[], bool]) -> bool:
    """SIGKILL ``pid`` if ``holds()`` is true of the storage while it is stopped; else let it go
    on. False, too, when it ended on its own first."""
    os.kill(pid, signal.SIGSTOP)
    wait_for_state(pid, "TtZX", "did not stop")
    if stat(pid)[0] in "ZX":
        return False
    if holds():
        os.kill(pid, signal.SIGKILL)
        wait_dead(pid)
        return True
    os.kill(pid, signal.SIGCONT)
    return False
