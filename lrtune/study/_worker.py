"""A worker: the loop every process runs, alone or beside others on any number of hosts.

Each turn it fails the trials of dead workers (so they are proposed again), asks the strategy
with the whole history, claims the proposal and trains it. The strategy answers WAIT while a
phase needs the results of running trials, and FINISHED when it is done; a proposal that does
not fit in the remaining budget also finishes the study (the budget is enforced here, once).
While trials run the worker polls, even after FINISHED: a running trial may stop early and give
steps back, or be lost and need running again. When nothing runs, the worker returns.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable, Sequence

from lrtune.records import TrialRecord
from lrtune.space import Space
from lrtune.strategies import Proposal, Strategy
from lrtune.strategies._base import answer_of
from lrtune.study._claims import claim
from lrtune.study._heartbeat import Reaper, WorkerId
from lrtune.study._runner import run_trial
from lrtune.study._storage import StorageError, safe_url
from lrtune.study._study import CONFIG_ATTR, Study, load_optuna_study
from lrtune.trial import Trial

POLL_SECONDS = 0.5  # how often a waiting worker looks again
Callback = Callable[[Study, TrialRecord], None]


def run_worker(study: Study, objective: Callable[[Trial], float],
               callbacks: Sequence[Callback] = ()) -> int:
    """Run trials of ``study`` until it is done; returns how many this worker recorded."""
    me = WorkerId.of_this_process()
    reaper = Reaper(study, me)
    try:
        return _work(study, objective, callbacks, me, reaper)
    except (KeyboardInterrupt, SystemExit):  # maybe between two storage calls of a claim:
        reaper.reap()  # this process's running trials are orphans now: lost, to run again
        raise
    finally:  # a trial it could not finish (the storage failed) goes to the next worker here
        me.end()


def _work(study: Study, objective: Callable[[Trial], float], callbacks: Sequence[Callback],
          me: WorkerId, reaper: Reaper) -> int:
    ran, next_reap, losses = 0, 0.0, 0
    while True:
        if time.monotonic() >= next_reap:  # at most twice a second: a look costs a query
            reaper.reap()
            next_reap = time.monotonic() + POLL_SECONDS
        context = study.context()
        proposal = answer_of(study.strategy, context)
        if not isinstance(proposal, Proposal):  # WAIT, or FINISHED (WAIT needs running trials)
            if not context.running:
                return ran
            time.sleep(POLL_SECONDS)
            continue
        started = time.monotonic()
        claimed = claim(study, proposal, context, me)
        if claimed is None:  # another worker claimed first: ask again, seeing its claim, after
            losses += 1  # a random pause that grows with the losses, so that the workers that
            time.sleep(random.uniform(0, losses * (time.monotonic() - started)))  # lost
            continue  # together do not race again for the next proposal
        losses = 0
        record = run_trial(study, objective, proposal, *claimed)
        if record is not None:
            ran += 1
            for callback in callbacks:
                callback(study, record)


def join_study(objective: Callable[[Trial], float], *, storage: str, study_name: str,
               callbacks: Sequence[Callback] = (), strategy: Strategy | None = None) -> Study:
    """Work on the stored study ``study_name`` with the settings it was created with, until it
    is done (its budget spent, nothing left running). Start as many as you like, on any host
    that reaches ``storage``; :func:`lrtune.tune` creates the study. The strategy is rebuilt
    from its stored name (a custom one must be registered: :func:`lrtune.strategies.register`)
    unless ``strategy`` gives it."""
    stored = load_optuna_study(study_name, storage)
    config = stored.user_attrs.get(CONFIG_ATTR)
    where = f"The study {study_name!r} in {safe_url(storage)}"
    if config is None:
        raise StorageError(f"{where} was not created by lrtune: it has no search space (or "
                           "lrtune tune is creating it this moment: start the worker again).")
    space = Space.from_description(config["space"])
    if space.describe() != config["space"]:
        raise StorageError(
            f"{where} was created with a search space that cannot be rebuilt here "
            f"(schedules {config['space']['schedule']}: a schedule class this process has not "
            "imported, or a study stored before schedule objects were). Join it from Python: "
            "lrtune.tune(objective, ...) with the same space, storage and study name.")
    study = Study.from_stored(stored, space, strategy)
    run_worker(study, objective, callbacks)
    return study


def interrupt_on_sigterm() -> None:
    """Stop on SIGTERM (a scheduler's preemption) the way Ctrl-C stops: the running trial is
    marked lost at once, so it runs again, instead of lingering until its heartbeat falls
    silent. It raises SystemExit(143) (the shell's code for SIGTERM), not KeyboardInterrupt,
    whose exit status CPython may turn into a SIGINT death."""
    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
