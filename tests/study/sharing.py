"""An objective wrapper that makes worker processes share a study by construction.

With N workers, which of them records trials is scheduling luck: on a busy machine the first one
up can take every proposal before the others have imported torch. ``SharedWork`` holds each
worker's first trial until trials of ``workers`` processes have been claimed, so a test that
asserts the work was shared asserts what the workers did, not how fast they started. It lives in
its own module so worker processes import it by reference.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import optuna

import lrtune

WAIT_SECONDS = 120.0  # a worker that never comes turns into a failed assertion, not a hang


class SharedWork:
    def __init__(self, objective: Callable[[lrtune.Trial], float], storage: str,
                 study_name: str, workers: int = 2) -> None:
        self.objective, self.storage, self.study_name = objective, storage, study_name
        self.workers = workers
        self.waited = False  # per process: each worker unpickles its own copy

    def __call__(self, trial: lrtune.Trial) -> float:
        if not self.waited:
            self.waited = True
            deadline = time.monotonic() + WAIT_SECONDS
            while len(self.claimants()) < self.workers and time.monotonic() < deadline:
                time.sleep(0.05)
        return self.objective(trial)

    def claimants(self) -> set:
        """The worker processes that hold or recorded a trial (withdrawn claims do not count)."""
        trials = optuna.load_study(study_name=self.study_name, storage=self.storage).get_trials(
            deepcopy=False)
        return {(t.user_attrs["lrtune:worker"].get("kernel"), t.user_attrs["lrtune:worker"]["pid"])
                for t in trials
                if "lrtune:worker" in t.user_attrs and "lrtune:retired" not in t.user_attrs}
