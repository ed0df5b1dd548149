"""``tune(trial_timeout=seconds)``: a trial that runs longer fails, and the study goes on.

The objective runs in the main thread of its worker process (``tune`` itself, or a worker
started by ``workers=N``), so a real-time alarm (SIGALRM) interrupts it wherever it is: in a
loop, a sleep, a data loader waiting forever. The trial then fails with
:class:`TrialTimeoutError` raised at the line it was stuck on, which its record shows. A
call into C (one huge matrix product) is interrupted when it returns.
"""

from __future__ import annotations

import functools
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from lrtune._validation import fail
from lrtune.exceptions import LrtuneError
from lrtune.trial import Trial


REFIRE_SECONDS = 0.01  # a time-out swallowed where Python cannot raise fires again this soon


class TrialTimeoutError(LrtuneError, TimeoutError):
    """The objective ran longer than ``tune(trial_timeout=...)`` allows; its trial fails."""


def with_timeout(objective: Callable[[Trial], float],
                 seconds: float) -> Callable[[Trial], float]:
    """``objective``, failing any trial that runs longer than ``seconds``."""
    if threading.current_thread() is not threading.main_thread():
        raise fail("trial_timeout", "tune()", "None when tune() runs outside the main thread "
                   "(the time-out is a SIGALRM alarm, which only the main thread receives)",
                   seconds)

    @functools.wraps(objective)
    def timed(trial: Trial) -> float:
        def expire(signum: int, frame: object) -> None:  # the same words for every trial:
            # an objective that hangs alike in every trial stops the study (see _runner)
            raise TrialTimeoutError(f"the trial ran longer than trial_timeout={seconds:g} s")

        hook = sys.unraisablehook

        def again(unraisable: Any) -> None:
            """Where the alarm landed in code that cannot raise (a weakref callback, a
            ``__del__``), Python printed the time-out and went on: fire it again, quietly."""
            if isinstance(unraisable.exc_value, TrialTimeoutError):
                signal.setitimer(signal.ITIMER_REAL, REFIRE_SECONDS)
            else:
                hook(unraisable)

        previous = signal.signal(signal.SIGALRM, expire)
        sys.unraisablehook = again
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return objective(trial)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            sys.unraisablehook = hook

    return timed
