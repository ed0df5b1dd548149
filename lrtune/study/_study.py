"""A study: the space, the budget, the strategy and every trial, kept in an Optuna storage."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial

from lrtune._validation import fail
from lrtune.exceptions import StudyExtendedWarning
from lrtune.records import TrialRecord, TrialState
from lrtune.space import Space
from lrtune.strategies import Context, LrEstimate, Strategy, best_estimate, stored_strategy
from lrtune.strategies._base import recommendation_of
from lrtune.study._heartbeat import HEARTBEAT_SECONDS, RunningTrial
from lrtune.study._schema import (
    BEAT_ATTR, BUDGET_ATTR, CONFIG_ATTR, HEARTBEAT_ATTR, RANGE_TEST_ATTR, RETIRED_ATTR, attrs_of,
    distributions, is_retired, optuna_state, prefixed, record_from_optuna, to_storable,
)
from lrtune.study._storage import (
    STORAGE_ERRORS, StorageError, check_existing, open_storage, retrying, safe_url,
)

if TYPE_CHECKING:
    from lrtune.finder import FinderResult

__all__ = ["CONFIG_ATTR", "StoredStudy", "Study", "load_optuna_study"]  # CONFIG_ATTR: join_study
_RUNNING = (optuna.trial.TrialState.RUNNING,)
_UNFINISHED = (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna logs study creation at INFO; a library must not print, so lower it for the call."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


@dataclass(frozen=True)
class StoredStudy:
    """An Optuna study and the storage it was opened on (Optuna keeps a study's storage private,
    and lrtune writes trials through it)."""

    optuna: optuna.Study
    storage: BaseStorage

    @property
    def user_attrs(self) -> dict[str, Any]:
        return self.optuna.user_attrs


MAX_NAMES_SHOWN = 10  # the studies a 'no study named ...' error lists


def load_optuna_study(study_name: str, storage: str, read_only: bool = False) -> StoredStudy:
    """The stored Optuna study ``study_name``; a clear error when there is none.
    ``read_only``: for reading only (a SQLite file is opened read-only)."""
    check_existing(storage)
    backend = open_storage(storage, read_only)
    try:
        return StoredStudy(retrying(optuna.load_study, study_name=study_name, storage=backend),
                           backend)
    except KeyError:
        raise StorageError(f"No study named {study_name!r} in {safe_url(storage)}: "
                           f"{_held(backend)}.") from None


def _held(backend: optuna.storages.BaseStorage) -> str:
    """The studies a storage holds, so a mistyped name shows the right one beside it."""
    names = sorted(study.study_name for study in retrying(backend.get_all_studies))
    if not names:
        return "it holds no study"
    shown = ", ".join(repr(name) for name in names[:MAX_NAMES_SHOWN])
    more = f" and {len(names) - MAX_NAMES_SHOWN} more" if len(names) > MAX_NAMES_SHOWN else ""
    return f"it holds {shown}{more}"


class Study:
    """A persistent LR study. Create or reopen one with :func:`lrtune.tune` or :func:`load_study`.

    Its budget and heartbeat are stored with it and read from there, so every process that works
    on it agrees on them. ``heartbeat`` is the interval in seconds at which every worker's running
    trial beats; one silent for six intervals is declared lost and run again.
    """

    def __init__(self, stored: StoredStudy, space: Space, steps: int, strategy: Strategy,
                 seed: int, heartbeat: float = HEARTBEAT_SECONDS) -> None:
        self.optuna = stored.optuna
        self._storage = stored.storage
        self._study_id = retrying(self._storage.get_study_id_from_name, stored.optuna.study_name)
        self.space = space
        self.steps = steps
        self.strategy = strategy
        self.seed = seed
        self.heartbeat = heartbeat
        self._slots: list[TrialRecord | None] = []  # by trial number; None: a withdrawn claim
        self._open: set[int] = set()  # numbers of trials not finished at the last look
        self._ids: dict[int, int] = {}  # trial number -> storage id (a FrozenTrial's is private)

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(cls, *, storage: str | None, study_name: str | None, space: Space, steps: int,
             budget: float, strategy: Strategy, seed: int,
             heartbeat: float | None = None) -> Study:
        """Create the study, or reopen it when it exists with the same space, steps and strategy.

        A reopened study keeps its heartbeat (``None``: whatever it has; another value is
        refused) and its budget may grow (a larger ``budget`` extends it, with a warning) but
        never shrink. Every check runs before anything is written.
        """
        config = _settings(space, steps, strategy.name, seed)
        backend = open_storage(storage)
        with _quiet_optuna():
            study = retrying(optuna.create_study, storage=backend, study_name=study_name,
                             direction="minimize", load_if_exists=True)
        where = f"The study {study.study_name!r} in {safe_url(storage) if storage else 'memory'}"
        attrs = study.user_attrs
        stored = attrs.get(CONFIG_ATTR)
        if stored is None:
            _check_takeable(study, where)
        elif differ := _differences(stored, config):
            raise StorageError(f"{where} was created with other settings ({'; '.join(differ)}): "
                               "use another study name or the same settings.")
        old_budget = _check_budget(attrs, study.study_name, budget)
        beat = _check_heartbeat(attrs, study.study_name, heartbeat)
        if HEARTBEAT_ATTR not in attrs:  # every check passed: write what is new
            study.set_user_attr(HEARTBEAT_ATTR, beat)
        if old_budget is None or budget > old_budget:
            study.set_user_attr(BUDGET_ATTR, budget)
        if stored is None:
            study.set_user_attr(CONFIG_ATTR, config)  # last: it marks the study as lrtune's
        if old_budget is not None and budget > old_budget:
            warnings.warn(f"{where} had a budget of {old_budget:g} runs: extended to {budget:g}.",
                          StudyExtendedWarning, stacklevel=3)
        return cls(StoredStudy(study, backend), space, steps, strategy, seed, beat)

    def reopens_with(self, *, space: Space, steps: int, budget: float, strategy: str,
                     seed: int) -> bool:
        """Whether :meth:`open` with these settings goes on with this study (else it refuses
        them, naming each difference). False for a study lrtune did not create: :meth:`open`
        refuses it, or takes over an empty one, which is not going on."""
        stored = retrying(self._storage.get_study_user_attrs, self._study_id).get(CONFIG_ATTR)
        return (stored is not None and budget >= self.budget
                and not _differences(stored, _settings(space, steps, strategy, seed)))

    @classmethod
    def from_stored(cls, stored: StoredStudy, space: Space | None = None,
                    strategy: str | Strategy | None = None) -> Study:
        """The lrtune study behind an opened Optuna study, with the settings stored in it
        (``space`` and ``strategy`` stand in where the storage does not say)."""
        attrs = stored.user_attrs
        config = attrs.get(CONFIG_ATTR, {})
        return cls(stored, space if space is not None else Space.from_description(
                       config.get("space", {})),
                   config.get("steps", 1), stored_strategy(config.get("strategy"), strategy),
                   config.get("seed", 0), attrs.get(HEARTBEAT_ATTR, HEARTBEAT_SECONDS))

    # -- reading -------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.optuna.study_name

    @property
    def budget(self) -> float:
        """The compute the study may spend, in full runs (read from the storage: another process
        may have extended it)."""
        attrs = retrying(self._storage.get_study_user_attrs, self._study_id)
        return attrs.get(BUDGET_ATTR, math.nan)

    @property
    def trials(self) -> list[TrialRecord]:
        """Every trial, in order (claims withdrawn as concurrent duplicates are left out)."""
        for trial in retrying(self._changed):
            self._take(trial)
        return [record for record in self._slots if record is not None]

    def _changed(self) -> list[FrozenTrial]:
        """The trials that may have changed since the last look: those not finished then, and
        those created since. A finished trial never changes, so a worker that reads the study
        before every trial reads a few trials, not the whole history."""
        if not self._slots:
            return self._storage.get_all_trials(self._study_id, deepcopy=False)
        unfinished = {t.number: t for t in self._storage.get_all_trials(
            self._study_id, deepcopy=False, states=_UNFINISHED)}
        changed = [unfinished.get(n) or self._fetch(n) for n in sorted(self._open)]
        number = len(self._slots)
        while (trial := unfinished.get(number) or self._fetch(number)) is not None:
            changed.append(trial)  # numbers are dense: new trials follow the last one seen
            number += 1
        return [t for t in changed if t is not None]

    def _fetch(self, number: int) -> FrozenTrial | None:
        """Trial ``number``, or None while the storage has none (yet)."""
        try:
            return self._storage.get_trial(self._id_of(number))
        except KeyError:
            return None

    def _take(self, trial: FrozenTrial) -> None:
        number = trial.number
        self._open.update(range(len(self._slots), number))  # a gap: look again next time
        self._slots.extend([None] * (number + 1 - len(self._slots)))
        self._slots[number] = None if is_retired(trial) else record_from_optuna(
            self.space, trial, full_steps=self.steps)
        if trial.state.is_finished():
            self._open.discard(number)
        else:
            self._open.add(number)

    def record(self, trial_id: int) -> TrialRecord:
        return record_from_optuna(self.space, retrying(self._storage.get_trial, trial_id),
                                  full_steps=self.steps)

    def running_trials(self) -> list[RunningTrial]:
        """The trials the storage has RUNNING, with their raw attrs (for liveness checks)."""
        frozen = retrying(self._storage.get_all_trials, self._study_id, deepcopy=False,
                          states=_RUNNING)
        return [RunningTrial(self._id_of(t.number), t.number, attrs_of(t)) for t in frozen]

    def _id_of(self, number: int) -> int:
        if number not in self._ids:
            self._ids[number] = retrying(self._storage.get_trial_id_from_study_id_trial_number,
                                         self._study_id, number)
        return self._ids[number]

    def context(self) -> Context:
        return Context(self.space, self.steps, self.budget, self.seed, tuple(self.trials))

    @property
    def spent(self) -> float:
        """Compute counted against the budget so far, in full runs: each trial by the steps it
        trained (a running one by its length), except lost ones, whose configurations run again
        (so a study that lost trials ends as it would have without the loss)."""
        return self.context().spent_steps / self.steps

    @property
    def best(self) -> TrialRecord | None:
        """The strategy's answer: the trial whose LR (and params) to use."""
        return recommendation_of(self.strategy, self.context())

    @property
    def estimate(self) -> LrEstimate | None:
        """Where the full-length best LR lies, as every trial of the best's choice places it:
        an estimate with a 68% interval, and a flag when the answer sits at an end of the LR
        range (None while no trial completed)."""
        context = self.context()
        best = recommendation_of(self.strategy, context)
        return None if best is None else best_estimate(context, best)

    @property
    def range_test(self) -> dict[str, Any] | None:
        """The range test stored with the study (``FinderResult.to_dict()`` data), if any."""
        data = self.optuna.user_attrs.get(RANGE_TEST_ATTR)
        return data if isinstance(data, dict) and data.get("lr") else None

    # -- writing -------------------------------------------------------------------------------
    def store_range_test(self, result: FinderResult) -> None:
        """Keep the range test ``result`` with the study: its report shows the curve and band."""
        self.optuna.set_user_attr(RANGE_TEST_ATTR, result.to_dict())

    def start_trial(self, params: dict[str, Any], steps: int, tag: str,
                    worker: dict[str, Any]) -> tuple[int, int]:
        """Create a RUNNING trial owned by ``worker``, in one write; returns (trial id, number)."""
        template = optuna.trial.create_trial(
            state=optuna.trial.TrialState.RUNNING, params=to_storable(params),
            distributions=distributions(self.space, params),
            user_attrs=prefixed({"state": TrialState.RUNNING.value, "steps": steps, "tag": tag,
                                 "worker": worker, "beat": 0}),
        )
        trial_id = retrying(self._storage.create_new_trial, self._study_id,
                            template_trial=template)
        number = retrying(self._storage.get_trial_number_from_id, trial_id)
        self._ids[number] = trial_id
        return trial_id, number

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
            self._storage.set_trial_user_attr(trial_id, BEAT_ATTR, count)
        except UpdateFinishedTrialError:
            return False
        return True

    def report_progress(self, trial_id: int, step: int, loss: float) -> bool:
        """An intermediate value, so dashboards and Optuna's pruners see the curve.

        Best effort: a storage hiccup must not fail a training run. False when the trial was
        taken from its worker. Only the storage's errors are passed over: the trial's time-out,
        raised by its alarm wherever the objective is (a write that hangs here), must fail it.
        """
        try:
            self._storage.set_trial_intermediate_value(trial_id, step, loss)
        except UpdateFinishedTrialError:
            return False
        except STORAGE_ERRORS:  # the curve is informative, the run matters more
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
        retrying(self._storage.set_trial_user_attr, trial_id, RETIRED_ATTR, reason)
        self.fail_lost(trial_id)

    def __repr__(self) -> str:
        return (f"<Study {self.name!r}: {len(self.trials)} trials, "
                f"{self.spent:.2f}/{self.budget} runs>")


def _settings(space: Space, steps: int, strategy: str, seed: int) -> dict[str, Any]:
    """What a study is created with and reopened only with (its budget may grow)."""
    return {"steps": steps, "space": space.describe(), "strategy": strategy, "seed": seed}


def _differences(stored: dict[str, Any], given: dict[str, Any], within: str = "") -> list[str]:
    """Each setting of ``given`` that ``stored`` holds otherwise, with both values (a space by
    the dimensions that differ), so the user sees which argument to change back."""
    out = []
    for key in sorted(given.keys() | (stored.keys() if within else set())):
        old, new = stored.get(key), given.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            out += _differences(old, new, f"{within}{key}.")
        elif old != new:
            out.append(f"{within}{key}: {old!r} stored, {new!r} given")
    return out


def _check_budget(attrs: dict[str, Any], name: str, budget: float) -> float | None:
    """The stored budget (None for a new study); a smaller ``budget`` is refused."""
    stored = attrs.get(BUDGET_ATTR)
    if stored is not None and budget < stored:
        raise fail("budget", "tune()", f"at least {stored:g}, the budget of the stored study "
                   f"{name!r} (a study's budget can grow, not shrink)", budget)
    return stored


def _check_heartbeat(attrs: dict[str, Any], name: str, heartbeat: float | None) -> float:
    """The study's heartbeat: the stored one, else ``heartbeat`` or the default; a value other
    than the stored one is refused (a joiner beating faster would declare live trials lost)."""
    stored = attrs.get(HEARTBEAT_ATTR)
    if stored is None:
        return heartbeat if heartbeat is not None else HEARTBEAT_SECONDS
    if heartbeat is not None and heartbeat != stored:
        raise fail("heartbeat", "tune()", f"{stored:g} seconds, the heartbeat of the stored "
                   f"study {name!r} (every worker of a study beats alike), or None",
                   heartbeat)
    return stored


def _check_takeable(study: optuna.Study, where: str) -> None:
    """Refuse a study that lrtune did not create and that already holds something: taking it
    over would mix lrtune's trials with someone else's (and its report would fail)."""
    n = len(retrying(study.get_trials, deepcopy=False))
    if n or study.direction is not StudyDirection.MINIMIZE:
        raise StorageError(
            f"{where} is an Optuna study that lrtune did not create ({n} trials, direction "
            f"{study.direction.name.lower()}): use another study name, or "
            "optuna.delete_study() it first.")
