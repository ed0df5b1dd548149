"""lrtune's strategies inside plain Optuna code: a sampler that proposes the LR and a pruner
that ends each trial where the strategy wanted it to end.

Switch one line of an existing Optuna study::

    study = optuna.create_study(sampler=LrtuneSampler(steps=2000), pruner=LrtunePruner())
    study.optimize(objective, n_trials=100)   # stops by itself when the budget is spent
    lrtune.load_study(name, storage).best      # the answer: the best full-length run

The objective stays as it is: it suggests ``"lr"`` with ``trial.suggest_float("lr", low, high,
log=True)``, trains up to ``steps`` steps, calls ``trial.report(loss, step)`` with the step
index and ``trial.should_prune()`` as it goes. The sampler asks the strategy (``auto`` by
default) for the next LR and run length; the pruner stops a short run at its length (its last
reported value is its result) and any run the moment it diverges, and the sampler keeps such a
run as "diverged at this LR", not as a failure. Read :func:`planned_steps` to lay your schedule
over a trial's own length: ``auto`` is at its best when short runs train the whole schedule
compressed. The study is also an lrtune study: ``lrtune.load_study`` opens it (and gives the
same answer) when the LR parameter is called ``"lr"``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import threading
import time
from collections.abc import Sequence
from typing import Any, cast

import optuna
from optuna.distributions import BaseDistribution, FloatDistribution
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState as OptunaState

from lrtune._validation import check_float, check_int, fail
from lrtune.diagnostics import RunMonitor
from lrtune.exceptions import InvalidParameterError
from lrtune.records import TrialRecord, TrialState
from lrtune.schedules import Schedule
from lrtune.space import Space
from lrtune.strategies import Context, Proposal, Strategy, make_strategy
from lrtune.strategies._base import answer_of, recommendation_of
from lrtune.study._schema import (
    BUDGET_ATTR, CONFIG_ATTR, PREFIX, RETIRED_ATTR, attrs_of, downsample_history, prefixed,
    record_from_optuna,
)

# how often to look again while other processes' trials block the strategy (a trial of this
# process wakes the waiting ones when it ends)
WAIT_SECONDS = 1.0


class LrtuneSampler(BaseSampler):
    """Proposes the learning rate (parameter ``lr_param``) the way an lrtune strategy would.

    ``steps`` is one full training run in the unit of the steps you report (optimizer steps,
    best); ``budget`` the total compute in full runs. ``schedule`` is the shape of your LR
    schedule (an lrtune schedule name, or a Schedule over ``steps``): ``auto`` uses it to judge
    how the best LR moves with run length. Other parameters go to ``independent_sampler``
    (default: random).

    The study must minimise one objective, a loss. Its threads (``optimize(n_jobs=...)``) share
    the strategy: each trial claims its proposal before it trains, so no two train the same one.
    """

    def __init__(self, steps: int, *, budget: float = 2.0, strategy: str | Strategy = "auto",
                 lr_param: str = "lr", schedule: str | Schedule = "constant", seed: int = 0,
                 independent_sampler: BaseSampler | None = None) -> None:
        owner = "LrtuneSampler()"
        self.steps = check_int(steps, "steps", owner)
        self.budget = check_float(budget, "budget", owner, low=0.0)
        self.strategy = make_strategy(strategy)
        if self.budget < self.strategy.min_budget:
            raise fail("budget", owner, f"at least {self.strategy.min_budget:g} full runs for the "
                       f"{self.strategy.name!r} strategy", budget)
        self.lr_param = lr_param
        self.schedule = schedule
        self.seed = check_int(seed, "seed", owner, minimum=0)
        self.independent_sampler = independent_sampler or RandomSampler(seed=seed)
        check = Space(schedule=schedule)  # fail now, not at the first trial
        check.schedule_for(check.config(1.0), self.steps)
        # one proposal or stop decision at a time (n_jobs > 1); notified when a trial ends
        self._lock = threading.Condition()
        self._told: dict[tuple[int, int], TrialRecord] = {}  # told trials Optuna has not stored

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)  # a lock does not pickle: a copy makes its own
        del state["_lock"]
        state["_told"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Condition()

    # -- Optuna's sampler interface ------------------------------------------------------------
    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Refuse a study lrtune's strategies cannot serve, before its first trial trains."""
        error = _direction_error(study)
        if error is not None:
            # ask() has created the trial already: end it, or the storage keeps it running
            study._storage.set_trial_state_values(trial._trial_id, OptunaState.FAIL)
            raise error

    def infer_relative_search_space(self, study: optuna.Study,
                                    trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return {}

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        if param_name != self.lr_param:
            return self.independent_sampler.sample_independent(study, trial, param_name,
                                                               param_distribution)
        dist = param_distribution
        if not isinstance(dist, FloatDistribution) or dist.low <= 0 or dist.step is not None:
            raise fail(self.lr_param, "LrtuneSampler", "suggested as a continuous float range "
                       "with low > 0 (trial.suggest_float(name, low, high, log=True))", dist)
        space = self._space(dist)
        self._write_config(study, space)
        return self._propose(study, trial, space)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: OptunaState,
                    values: Sequence[float] | None) -> None:
        """Record the trial the way lrtune sees it; stop the study when the strategy is done."""
        planned = attrs_of(trial).get("steps")
        if planned is None:  # this trial never asked for the LR
            return
        told = outcome(trial, state, planned, values[0] if values else None)
        _set_attrs(study, trial, **told)
        finished = copy.copy(trial)  # as it will be stored once Optuna records its end
        finished.state, finished.values = state, values
        finished.user_attrs = {**trial.user_attrs, **prefixed(told)}
        # a trial with planned steps had its LR from sample_independent: a FloatDistribution
        space = self._space(cast(FloatDistribution, trial.distributions[self.lr_param]))
        with self._lock:  # two trials ending at once each see the other as ended
            self._told[_key(study, trial)] = self._record(finished, space)
            self._lock.notify_all()  # trials waiting for this one ask again now
            context = self._context(study, space)
            waiting = any(t.state is TrialState.RUNNING for t in context.live)
            if not waiting and not isinstance(answer_of(self.strategy, context), Proposal):
                study.stop()  # the budget is spent: the strategy has its answer

    # -- the strategy's view of the study ------------------------------------------------------
    def _space(self, dist: FloatDistribution) -> Space:
        return Space(lr=(dist.low, dist.high) if dist.high > dist.low else dist.low,
                     schedule=self.schedule)

    def _write_config(self, study: optuna.Study, space: Space) -> None:
        """What ``lrtune.load_study`` reads, so the study opens in lrtune's report."""
        if CONFIG_ATTR not in study.user_attrs:
            study.set_user_attr(BUDGET_ATTR, self.budget)
            study.set_user_attr(CONFIG_ATTR, {
                "steps": self.steps, "space": space.describe(), "strategy": self.strategy.name,
                "seed": self.seed})

    def _context(self, study: optuna.Study, space: Space, skip: int | None = None) -> Context:
        """The strategy's view: every trial this sampler claimed, but ``skip`` (the trial being
        sampled); one told in :meth:`after_trial` that Optuna still has running, as told.
        Call it holding the lock (it forgets told trials once Optuna has stored them)."""
        records = []
        for t in study.get_trials(deepcopy=False):
            key = _key(study, t)
            if t.state is not OptunaState.RUNNING:
                self._told.pop(key, None)
            if key in self._told:
                records.append(self._told[key])
            elif t.number != skip and self._claimed(t):
                records.append(self._record(t, space))
        return Context(space, self.steps, self.budget, self.seed, tuple(records))

    def _claimed(self, t: FrozenTrial) -> bool:
        return PREFIX + "steps" in t.user_attrs and \
            (self.lr_param in t.params or PREFIX + "lr" in t.user_attrs)

    def _lr_of(self, t: FrozenTrial) -> float:
        """A claimed trial's LR: its param, or the claim's until Optuna stores the param."""
        return t.params[self.lr_param] if self.lr_param in t.params else t.user_attrs[PREFIX + "lr"]

    def _record(self, t: FrozenTrial, space: Space) -> TrialRecord:
        """A trial as lrtune sees it: its LR in ``space`` (the user's other params are not the
        strategy's). A short run Optuna calls PRUNED at its planned length is stored as
        completed (see :func:`outcome`), with Optuna's value for it, its last reported one."""
        return record_from_optuna(space, t, params=space.config(self._lr_of(t)))

    def _propose(self, study: optuna.Study, trial: FrozenTrial, space: Space) -> float:
        """The LR of the strategy's next proposal, claimed for ``trial``; waits while running
        trials block the strategy. Asking and claiming hold the lock, so the trials of this
        process's other threads are in the strategy's view from the moment they are claimed."""
        with self._lock:
            while True:
                context = self._context(study, space, skip=trial.number)
                proposal = answer_of(self.strategy, context)
                if isinstance(proposal, Proposal):
                    return self._claim(study, trial, proposal, space)
                if not context.running:  # FINISHED; WAIT and FINISHED wait for running trials
                    return self._after_the_end(study, trial, context, space)
                # woken when a trial of this process ends; another process's, seen on a timer
                self._lock.wait(WAIT_SECONDS)

    def _after_the_end(self, study: optuna.Study, trial: FrozenTrial, context: Context,
                       space: Space) -> float:
        """A trial that asks once the strategy is done and nothing runs."""
        if getattr(study, "_stop_flag", False):  # stopped in this optimize() call (n_jobs > 1)
            # Another thread's trial ended the study after this one started: the budget is
            # spent, so it trains nothing (retired: lrtune's reader leaves it out).
            study._storage.set_trial_user_attr(trial._trial_id, RETIRED_ATTR,
                                               "the study finished before this trial started")
            raise optuna.TrialPruned("lrtune: the budget is spent; nothing is left to train")
        # Done, but asked for more (a finished study optimized again): train the answer again.
        study.stop()
        best = recommendation_of(self.strategy, context)
        lr = best.lr if best is not None else space.lr_range.low
        return self._claim(study, trial, Proposal(space.config(lr), self.steps, "extra"), space)

    def _claim(self, study: optuna.Study, trial: FrozenTrial, proposal: Proposal,
               space: Space) -> float:
        """Record ``proposal`` as ``trial``'s, LR included (Optuna stores the param only once
        this sampler returns), so the next ask sees it running; ``steps`` last: it marks a
        complete claim."""
        lr = min(max(proposal.params["lr"], space.lr_range.low), space.lr_range.high)
        _set_attrs(study, trial, state=TrialState.RUNNING.value, tag=proposal.tag, lr=lr,
                   steps=proposal.steps)
        return lr


class LrtunePruner(BasePruner):
    """Stops a trial the moment its loss diverges, and a short run when it reaches its length.

    Pair it with :class:`LrtuneSampler` (alone, it only stops diverged runs).
    """

    def __init__(self) -> None:
        self._watched: dict[int, _Watch] = {}  # by trial id: values are fed in once each

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        values = trial.intermediate_values
        if not values:
            return False
        watch = self._watched.get(trial._trial_id)
        if watch is None:
            full = study.user_attrs.get(CONFIG_ATTR, {}).get("steps")
            planned = _stored(study._storage, trial._trial_id, "steps")
            length = planned if planned is not None and full is not None and planned < full \
                else None  # a full run ends by itself: its result is what it returns
            watch = self._watched[trial._trial_id] = _Watch(RunMonitor(check_every=1), length)
        for step in sorted(s for s in values if s > watch.seen):
            watch.monitor.update(step, values[step])
            watch.seen = step
        if watch.monitor.diverged:
            return True
        return watch.length is not None and watch.seen + 1 >= watch.length


@dataclasses.dataclass
class _Watch:
    """What the pruner keeps of one running trial."""

    monitor: RunMonitor
    length: int | None  # where to stop a short run (None: let it run)
    seen: int = -1  # the last step fed to the monitor


def planned_steps(trial: optuna.Trial, default: int | None = None) -> int | None:
    """How long this trial should train, once ``lr`` was suggested (``default`` before, or
    without :class:`LrtuneSampler`). Lay the LR schedule over it to compress it to the run."""
    planned = _stored(trial.study._storage, trial._trial_id, "steps")
    return default if planned is None else planned


def outcome(trial: FrozenTrial, state: OptunaState, planned: int,
            value: float | None = None) -> dict[str, Any]:
    """lrtune's record of a finished Optuna trial: state, compute, history and diagnosis.

    A run pruned at its planned length completed its rung (its last reported value is its
    result); one whose losses diverged, or that failed on a non-finite loss, diverged. ``value``,
    what the objective returned, is read as the run's final held-out loss, as ``lrtune.tune``
    reads it (a network that ends no better than untrained is collapsed, not healthy).
    """
    values = trial.intermediate_values
    steps = sorted(values)
    monitor = RunMonitor(check_every=1)
    for step in steps:
        monitor.update(step, values[step])
    if steps and value is not None and math.isfinite(value):
        monitor.update_validation(steps[-1], value)
    diagnosis = monitor.diagnose() if steps else None
    # a run that returned trained its whole length; one that stopped, up to its last report
    done = planned if state is OptunaState.COMPLETE else (steps[-1] + 1 if steps else 1)
    blew_up = monitor.diverged or (bool(steps) and not math.isfinite(values[steps[-1]]))
    if blew_up:
        lrtune_state = TrialState.DIVERGED
    elif state is OptunaState.COMPLETE or (state is OptunaState.PRUNED and done >= planned):
        lrtune_state = TrialState.COMPLETED
    else:
        lrtune_state = TrialState.PRUNED if state is OptunaState.PRUNED else TrialState.FAILED
    wall = (time.time() - trial.datetime_start.timestamp()) if trial.datetime_start else None
    return {
        "state": lrtune_state.value,
        "steps_done": max(done, 1),
        "diagnosis": diagnosis.to_dict() if diagnosis is not None else None,
        "history": downsample_history(steps, [values[s] for s in steps]),
        "wall_time": wall,
        "error": "the objective raised or returned a non-number" if lrtune_state is
        TrialState.FAILED else None,
    }


def _direction_error(study: optuna.Study) -> InvalidParameterError | None:
    """Why LrtuneSampler cannot serve ``study``: its strategies minimise one loss."""
    directions = study.directions
    owner = "optuna.create_study()"
    if len(directions) > 1:
        return fail("directions", owner, "a single direction, 'minimize', with LrtuneSampler "
                    "(lrtune's strategies minimise one loss: return that loss, and keep other "
                    "measures with trial.set_user_attr)", [d.name.lower() for d in directions])
    if directions[0] is not StudyDirection.MINIMIZE:
        return fail("direction", owner, "'minimize' with LrtuneSampler (lrtune's strategies "
                    "minimise a loss: return a loss, or negate the score you maximise)",
                    directions[0].name.lower())
    return None


def _key(study: optuna.Study, trial: FrozenTrial) -> tuple[int, int]:
    """A trial's key among every storage this sampler serves."""
    return id(study._storage), trial._trial_id


def _stored(storage: optuna.storages.BaseStorage, trial_id: int, key: str) -> Any:
    """An attr this sampler set on a running trial (read from storage: an ``optuna.Trial``'s
    own ``user_attrs`` is a copy made when it started)."""
    return storage.get_trial_user_attrs(trial_id).get(PREFIX + key)


def _set_attrs(study: optuna.Study, trial: FrozenTrial, **attrs: Any) -> None:
    for key, value in prefixed(attrs).items():
        study._storage.set_trial_user_attr(trial._trial_id, key, value)


__all__ = ["LrtunePruner", "LrtuneSampler", "outcome", "planned_steps"]
