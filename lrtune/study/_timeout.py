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
import threading
from collections.abc import Callable

from lrtune._validation import fail
from lrtune.exceptions import LrtuneError
from lrtune.trial import Trial


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

        previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return objective(trial)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    return timed
