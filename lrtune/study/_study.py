"""A study: the space, the budget, the strategy and every trial, kept in an Optuna storage."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import optuna

from lrtune.space import Space
from lrtune.strategies import Context, Strategy, make_strategy
from lrtune.records import TrialRecord, TrialState
from lrtune.study._storage import (
    StorageError, distributions, open_storage, optuna_state, record_from_optuna, safe_url,
    set_attrs, to_storable,
)

_CONFIG_ATTR = "lrtune:config"
_BUDGET_ATTR = "lrtune:budget"


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna logs study creation at INFO; a library must not print, so lower it for the call."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


class Study:
    """A persistent LR study. Create or reopen one with :func:`lrtune.tune` or :func:`load_study`."""

    def __init__(self, optuna_study: optuna.Study, space: Space, steps: int, budget: float,
                 strategy: Strategy, seed: int) -> None:
        self.optuna = optuna_study
        self.space = space
        self.steps = steps
        self.budget = budget
        self.strategy = strategy
        self.seed = seed

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(cls, *, storage: str | None, study_name: str | None, space: Space, steps: int,
             budget: float, strategy: Strategy, seed: int) -> Study:
        """Create the study, or reopen it when it exists with the same space, steps and strategy."""
        config = {"steps": steps, "space": space.describe(), "strategy": strategy.name, "seed": seed}
        backend = open_storage(storage)
        with _quiet_optuna():
            study = optuna.create_study(storage=backend, study_name=study_name,
                                        direction="minimize", load_if_exists=True)
        stored = study.user_attrs.get(_CONFIG_ATTR)
        if stored is None:
            study.set_user_attr(_CONFIG_ATTR, config)
        elif {k: stored.get(k) for k in config} != config:
            differ = sorted(k for k in config if stored.get(k) != config[k])
            where = safe_url(storage) if storage else "memory"
            raise StorageError(
                f"The study {study.study_name!r} in {where} was created with other settings "
                f"({', '.join(differ)}): use another study name or the same settings."
            )
        study.set_user_attr(_BUDGET_ATTR, budget)  # a reopened study may get a larger budget
        return cls(study, space, steps, budget, strategy, seed)

    # -- reading -------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.optuna.study_name

    @property
    def trials(self) -> list[TrialRecord]:
        return [record_from_optuna(self.space, t) for t in self.optuna.get_trials(deepcopy=False)]

    def record(self, trial_id: int) -> TrialRecord:
        return record_from_optuna(self.space, self.optuna._storage.get_trial(trial_id))

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
    def start_trial(self, params: dict[str, Any], steps: int, tag: str) -> tuple[int, int]:
        """Create a RUNNING trial; returns (optuna trial id, number)."""
        storage = self.optuna._storage
        template = optuna.trial.create_trial(
            state=optuna.trial.TrialState.RUNNING, params=to_storable(params),
            distributions=distributions(self.space, params),
        )
        trial_id = storage.create_new_trial(self.optuna._study_id, template_trial=template)
        set_attrs(storage, trial_id, state=TrialState.RUNNING.value, steps=steps, tag=tag)
        return trial_id, storage.get_trial_number_from_id(trial_id)

    def finish_trial(self, trial_id: int, state: TrialState, value: float | None,
                     **attrs: Any) -> None:
        storage = self.optuna._storage
        set_attrs(storage, trial_id, state=state.value, **attrs)
        storage.set_trial_state_values(trial_id, optuna_state(state),
                                       [value] if state is TrialState.COMPLETED else None)

    def report_progress(self, trial_id: int, step: int, loss: float) -> None:
        """An intermediate value, so dashboards and Optuna's pruners see the curve."""
        self.optuna._storage.set_trial_intermediate_value(trial_id, step, loss)

    def mark_lost(self) -> list[int]:
        """Mark trials left RUNNING by a process that died as lost; returns their numbers."""
        lost = []
        for t in self.optuna.get_trials(deepcopy=False,
                                        states=(optuna.trial.TrialState.RUNNING,)):
            self.finish_trial(t._trial_id, TrialState.LOST, None,
                              error="lost: its process stopped before the trial finished")
            lost.append(t.number)
        return lost

    def __repr__(self) -> str:
        return f"<Study {self.name!r}: {len(self.trials)} trials, {self.spent:.2f}/{self.budget} runs>"
