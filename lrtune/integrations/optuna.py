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
import math
import dataclasses
import time
from collections.abc import Sequence
from typing import Any, cast

import optuna
from optuna.distributions import BaseDistribution, FloatDistribution
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import FrozenTrial
from optuna.trial import TrialState as OptunaState

from lrtune._validation import check_float, check_int, fail
from lrtune.diagnostics import RunMonitor
from lrtune.records import TrialRecord, TrialState
from lrtune.schedules import Schedule
from lrtune.space import Space
from lrtune.strategies import Context, Proposal, Strategy, make_strategy
from lrtune.strategies._base import answer_of
from lrtune.study._schema import (
    BUDGET_ATTR, CONFIG_ATTR, PREFIX, attrs_of, downsample_history, prefixed, record_from_optuna,
)

WAIT_SECONDS = 1.0  # how often to look again while other workers' trials block the strategy


class LrtuneSampler(BaseSampler):
    """Proposes the learning rate (parameter ``lr_param``) the way an lrtune strategy would.

    ``steps`` is one full training run in the unit of the steps you report (optimizer steps,
    best); ``budget`` the total compute in full runs. ``schedule`` is the shape of your LR
    schedule (an lrtune schedule name, or a Schedule over ``steps``): ``auto`` uses it to judge
    how the best LR moves with run length. Other parameters go to ``independent_sampler``
    (default: random).
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

    # -- Optuna's sampler interface ------------------------------------------------------------
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
        proposal = self._propose(study, trial, space)
        _set_attrs(study, trial, state=TrialState.RUNNING.value, steps=proposal.steps,
                   tag=proposal.tag)
        return min(max(proposal.params["lr"], dist.low), dist.high)

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
        context = self._context(study, space, finished=self._record(finished, space))
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

    def _context(self, study: optuna.Study, space: Space, skip: int | None = None,
                 finished: TrialRecord | None = None) -> Context:
        """The strategy's view: every trial this sampler proposed, but ``skip`` (the trial being
        sampled), with ``finished`` in place of the trial it describes (told, not yet stored)."""
        records = []
        for t in study.get_trials(deepcopy=False):
            if finished is not None and t.number == finished.number:
                records.append(finished)
            elif t.number != skip and PREFIX + "steps" in t.user_attrs \
                    and self.lr_param in t.params:
                records.append(self._record(t, space))
        return Context(space, self.steps, self.budget, self.seed, tuple(records))

    def _record(self, t: FrozenTrial, space: Space) -> TrialRecord:
        """A trial as lrtune sees it: its LR in ``space`` (the user's other params are not the
        strategy's). A short run Optuna calls PRUNED at its planned length is stored as
        completed (see :func:`outcome`), with Optuna's value for it, its last reported one."""
        return record_from_optuna(space, t, params=space.config(t.params[self.lr_param]))

    def _propose(self, study: optuna.Study, trial: FrozenTrial, space: Space) -> Proposal:
        """The strategy's next proposal; waits while other processes' trials block it."""
        while True:
            context = self._context(study, space, skip=trial.number)
            proposal = answer_of(self.strategy, context)
            if isinstance(proposal, Proposal):
                return proposal
            if not context.running:  # FINISHED; WAIT and FINISHED wait for running trials
                break
            time.sleep(WAIT_SECONDS)
        # Done, but asked for more (n_trials larger than the budget): train the answer again.
        study.stop()
        best = self.strategy.recommend(context)
        lr = best.lr if best is not None else space.lr_range.low
        return Proposal(space.config(lr), self.steps, "extra")


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


def _stored(storage: optuna.storages.BaseStorage, trial_id: int, key: str) -> Any:
    """An attr this sampler set on a running trial (read from storage: an ``optuna.Trial``'s
    own ``user_attrs`` is a copy made when it started)."""
    return storage.get_trial_user_attrs(trial_id).get(PREFIX + key)


def _set_attrs(study: optuna.Study, trial: FrozenTrial, **attrs: Any) -> None:
    for key, value in prefixed(attrs).items():
        study._storage.set_trial_user_attr(trial._trial_id, key, value)


__all__ = ["LrtunePruner", "LrtuneSampler", "outcome", "planned_steps"]
