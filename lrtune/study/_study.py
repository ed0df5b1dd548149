"""A study: the space, the budget, the strategy and every trial, kept in an Optuna storage."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial

from lrtune.space import Space
from lrtune.strategies import Context, Strategy, stored_strategy
from lrtune.records import TrialRecord, TrialState
from lrtune.study._heartbeat import HEARTBEAT_SECONDS
from lrtune.study._storage import (
    StorageError, check_existing, distributions, is_retired, open_storage, optuna_state, prefixed,
    record_from_optuna, retrying, safe_url, to_storable,
)

CONFIG_ATTR = "lrtune:config"
BUDGET_ATTR = "lrtune:budget"
HEARTBEAT_ATTR = "lrtune:heartbeat"


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna logs study creation at INFO; a library must not print, so lower it for the call."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def load_optuna_study(study_name: str, storage: str) -> optuna.Study:
    """The stored Optuna study ``study_name``; a clear error when there is none."""
    check_existing(storage)
    backend = open_storage(storage)
    try:
        return retrying(optuna.load_study, study_name=study_name, storage=backend)
    except KeyError:
        raise StorageError(f"No study named {study_name!r} in {safe_url(storage)}.") from None


class Study:
    """A persistent LR study. Create or reopen one with :func:`lrtune.tune` or :func:`load_study`.

    ``heartbeat`` is the study's heartbeat interval in seconds: every worker's running trial
    beats that often, and one silent for six intervals is declared lost and run again.
    """

    def __init__(self, optuna_study: optuna.Study, space: Space, steps: int, budget: float,
                 strategy: Strategy, seed: int, heartbeat: float = HEARTBEAT_SECONDS) -> None:
        self.optuna = optuna_study
        self.space = space
        self.steps = steps
        self.budget = budget
        self.strategy = strategy
        self.seed = seed
        self.heartbeat = heartbeat
        self._finished: dict[int, TrialRecord] = {}  # trial id -> record, for finished trials

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(cls, *, storage: str | None, study_name: str | None, space: Space, steps: int,
             budget: float, strategy: Strategy, seed: int,
             heartbeat: float = HEARTBEAT_SECONDS) -> Study:
        """Create the study, or reopen it when it exists with the same space, steps and strategy."""
        config = {"steps": steps, "space": space.describe(), "strategy": strategy.name,
                  "seed": seed}
        backend = open_storage(storage)
        with _quiet_optuna():
            study = retrying(optuna.create_study, storage=backend, study_name=study_name,
                             direction="minimize", load_if_exists=True)
        stored = study.user_attrs.get(CONFIG_ATTR)
        if stored is None:
            study.set_user_attr(CONFIG_ATTR, config)
        elif {k: stored.get(k) for k in config} != config:
            differ = sorted(k for k in config if stored.get(k) != config[k])
            where = safe_url(storage) if storage else "memory"
            raise StorageError(
                f"The study {study.study_name!r} in {where} was created with other settings "
                f"({', '.join(differ)}): use another study name or the same settings."
            )
        study.set_user_attr(BUDGET_ATTR, budget)  # a reopened study may get a larger budget
        study.set_user_attr(HEARTBEAT_ATTR, heartbeat)
        return cls(study, space, steps, budget, strategy, seed, heartbeat)

    @classmethod
    def from_stored(cls, stored: optuna.Study, space: Space | None = None,
                    strategy: str | Strategy | None = None) -> Study:
        """The lrtune study behind an opened Optuna study, with the settings stored in it
        (``space`` and ``strategy`` stand in where the storage does not say)."""
        attrs = stored.user_attrs
        config = attrs.get(CONFIG_ATTR, {})
        return cls(stored, space if space is not None else Space.from_description(
                       config.get("space", {})),
                   config.get("steps", 1), attrs.get(BUDGET_ATTR, float("nan")),
                   stored_strategy(config.get("strategy"), strategy), config.get("seed", 0),
                   attrs.get(HEARTBEAT_ATTR, HEARTBEAT_SECONDS))

    # -- reading -------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.optuna.study_name

    @property
    def trials(self) -> list[TrialRecord]:
        """Every trial, in order (claims withdrawn as concurrent duplicates are left out)."""
        frozen = retrying(self.optuna.get_trials, deepcopy=False)
        return [self._record_of(t) for t in frozen if not is_retired(t)]

    def _record_of(self, trial: FrozenTrial) -> TrialRecord:
        """The record of ``trial``; a finished trial never changes, so its record is kept (a
        worker reads the whole study before every trial: long studies stay cheap)."""
        record = self._finished.get(trial._trial_id)
        if record is None:
            record = record_from_optuna(self.space, trial)
            if trial.state.is_finished():
                self._finished[trial._trial_id] = record
        return record

    def record(self, trial_id: int) -> TrialRecord:
        return record_from_optuna(self.space, retrying(self._storage.get_trial, trial_id))

    def running_trials(self) -> list[FrozenTrial]:
        """The trials the storage has RUNNING, with their raw attrs (for liveness checks)."""
        return retrying(self.optuna.get_trials, deepcopy=False,
                        states=(optuna.trial.TrialState.RUNNING,))

    def context(self) -> Context:
        return Context(self.space, self.steps, self.budget, self.seed, tuple(self.trials))

    @property
    def spent(self) -> float:
        """Compute consumed so far, in full runs."""
        return self.context().spent_steps / self.steps

    @property
    def best(self) -> TrialRecord | None:
        """The strategy's answer: the trial whose LR (and params) to use."""
        return self.strategy.recommend(self.context())

    # -- writing -------------------------------------------------------------------------------
    @property
    def _storage(self) -> optuna.storages.BaseStorage:
        return self.optuna._storage

    def start_trial(self, params: dict[str, Any], steps: int, tag: str,
                    worker: dict[str, Any]) -> tuple[int, int]:
        """Create a RUNNING trial owned by ``worker``, in one write; returns (trial id, number)."""
        template = optuna.trial.create_trial(
            state=optuna.trial.TrialState.RUNNING, params=to_storable(params),
            distributions=distributions(self.space, params),
            user_attrs=prefixed({"state": TrialState.RUNNING.value, "steps": steps, "tag": tag,
                                 "worker": worker, "beat": 0}),
        )
        trial_id = retrying(self._storage.create_new_trial, self.optuna._study_id,
                            template_trial=template)
        return trial_id, retrying(self._storage.get_trial_number_from_id, trial_id)

    def finish_trial(self, trial_id: int, state: TrialState, value: float | None,
                     **attrs: Any) -> bool:
        """Record how the trial ended. False when another worker had already failed it as lost
        (this worker was presumed dead): the storage keeps that verdict, the result is dropped."""
        values = [value] if state is TrialState.COMPLETED else None
        try:
            for key, item in prefixed({**attrs, "state": state.value}).items():  # state last
                retrying(self._storage.set_trial_user_attr, trial_id, key, item)
            retrying(self._storage.set_trial_state_values, trial_id, optuna_state(state), values)
        except UpdateFinishedTrialError:
            return self.record(trial_id).state is state  # a retried call may have landed twice
        return True

    def beat(self, trial_id: int, count: int) -> bool:
        """One heartbeat of a running trial; False when the trial was taken from its worker."""
        try:
            self._storage.set_trial_user_attr(trial_id, "lrtune:beat", count)
        except UpdateFinishedTrialError:
            return False
        return True

    def report_progress(self, trial_id: int, step: int, loss: float) -> bool:
        """An intermediate value, so dashboards and Optuna's pruners see the curve.

        Best effort: a storage hiccup must not fail a training run. False when the trial was
        taken from its worker.
        """
        try:
            self._storage.set_trial_intermediate_value(trial_id, step, loss)
        except UpdateFinishedTrialError:
            return False
        except Exception:  # noqa: BLE001 - the curve is informative, the run matters more
            pass
        return True

    def fail_lost(self, trial_id: int) -> bool:
        """Fail a running trial whose worker is dead (it reads as lost); False if it had ended."""
        try:
            return retrying(self._storage.set_trial_state_values, trial_id,
                            optuna.trial.TrialState.FAIL)
        except UpdateFinishedTrialError:
            return False

    def retire(self, trial_id: int, reason: str) -> None:
        """Withdraw a claim that must not train (a concurrent duplicate); it leaves no record."""
        retrying(self._storage.set_trial_user_attr, trial_id, "lrtune:retired", reason)
        self.fail_lost(trial_id)

    def __repr__(self) -> str:
        return (f"<Study {self.name!r}: {len(self.trials)} trials, "
                f"{self.spent:.2f}/{self.budget} runs>")
