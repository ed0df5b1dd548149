"""The strategy extension point: what to try next, with how many steps, and when to give up.

A strategy is a pure function of the study's history (the :class:`Context`): it keeps no state
of its own between calls. That makes studies resumable after a crash and lets several workers
share one study: each asks with the same history and gets the next unclaimed proposal.

The contract, in full: :meth:`Strategy.ask` answers with one of three things:

- a :class:`Proposal`: train these params for this many steps;
- :data:`WAIT`: nothing to propose until a running trial ends (a phase needs its result);
- :data:`FINISHED`: nothing more to run, whatever else finishes.

The worker enforces the budget, once, for every strategy (:func:`answer_of`): a proposal longer
than the steps left is not run and the study ends, so a strategy may propose without counting.
"""

from __future__ import annotations

import abc
import enum
import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, ClassVar, Final, Literal, Union

import numpy as np

from lrtune._failure import describe
from lrtune._validation import check_float, check_int, fail
from lrtune.exceptions import InvalidParameterError, StrategyError
from lrtune.records import WORKER_DIED, TrialRecord, TrialState, params_key
from lrtune.space import CATEGORICAL, Space


@dataclass(frozen=True)
class Proposal:
    """A configuration to train, for how many steps, and which phase of the strategy asked."""

    params: dict[str, Any]  # every parameter of the space: ``context.space.config(lr, ...)``
    steps: int  # this trial's length, 1 to a full run (``Context.full_steps``)
    tag: str = ""


class Signal(enum.Enum):
    """What :meth:`Strategy.ask` answers when it proposes no trial."""

    WAIT = "wait"
    FINISHED = "finished"

    def __repr__(self) -> str:
        return self.name


WAIT: Final = Signal.WAIT
FINISHED: Final = Signal.FINISHED
Answer = Union[Proposal, Literal[Signal.WAIT, Signal.FINISHED]]


DEATHS_TO_FAIL = 3  # a configuration lost this often with its worker dead counts as failed


@dataclass(frozen=True)
class Context:
    """Everything a strategy may read: the space, the budget and every trial so far."""

    space: Space
    full_steps: int  # the length of one full run
    budget: float  # in full runs
    seed: int
    trials: tuple[TrialRecord, ...] = field(default=())

    # A context never changes, so what is derived from every trial is derived once: a strategy
    # and the worker read these several times an ask, and a study may hold thousands of trials.
    @cached_property
    def live(self) -> tuple[TrialRecord, ...]:
        """Trials that count: finished or running. A lost one is proposed again, but a
        configuration whose worker died :data:`DEATHS_TO_FAIL` times while training it counts as
        failed from then on: it kills its worker (out of memory, a crash in native code), and a
        study run again after each death would otherwise repeat it forever."""
        deaths: dict[Hashable, int] = {}
        live = []
        for t in self.trials:
            if t.state is not TrialState.LOST:
                live.append(t)
            elif (t.error or "").startswith(WORKER_DIED):  # not a Ctrl-C: the config's doing
                key = (t.steps, key_of(t.params) or repr(t.params))
                deaths[key] = deaths.get(key, 0) + 1
                if deaths[key] >= DEATHS_TO_FAIL:
                    live.append(replace(t, state=TrialState.FAILED, error=(
                        f"its worker died each of the {deaths[key]} times it trained this "
                        f"configuration (last: {t.error})")))
        return tuple(live)

    @cached_property
    def running(self) -> tuple[TrialRecord, ...]:
        return tuple(t for t in self.trials if t.state is TrialState.RUNNING)

    @cached_property
    def spent_steps(self) -> int:
        """Steps consumed, counting running trials at their full budget (they will spend it)."""
        return sum(t.steps if t.state is TrialState.RUNNING else t.steps_done for t in self.live)

    @property
    def budget_steps(self) -> int:
        """The budget in steps, rounded down (never more than was granted; the tolerance keeps
        a product such as 2.3 * 100 = 229.99999999999997 at 230)."""
        return math.floor(self.budget * self.full_steps + 1e-9)

    @property
    def remaining_steps(self) -> int:
        return self.budget_steps - self.spent_steps

    def tagged(self, tag: str) -> list[TrialRecord]:
        return [t for t in self.live if t.tag == tag]


@dataclass(frozen=True)
class RunningTrial:
    """What :meth:`Strategy.should_stop` sees of the trial being trained (a read-only copy)."""

    number: int
    params: dict[str, Any]
    steps: int  # this trial's length
    steps_done: int
    losses: tuple[tuple[int, float], ...]  # (step, training loss) reported so far

    @classmethod
    def of(cls, trial: Any) -> RunningTrial:
        """The view of an :class:`lrtune.Trial` while it trains."""
        steps, losses = trial.monitor.steps, trial.monitor.losses
        return cls(trial.number, dict(trial.params), trial.steps, trial.steps_done,
                   tuple(zip(np.asarray(steps, int).tolist(), np.asarray(losses, float).tolist(),
                             strict=True)))


class Strategy(abc.ABC):
    """Base class: implement :meth:`ask`; override :meth:`should_stop` and :meth:`recommend`
    if useful.

    ``name`` is stored with the study: a strategy not built in is rebuilt from it (by a worker,
    a report) once registered with :func:`lrtune.strategies.register`.
    """

    name: ClassVar[str]
    min_budget: ClassVar[float] = 1.0  # in full runs: less cannot run one useful trial

    @abc.abstractmethod
    def ask(self, context: Context) -> Answer:
        """The next trial to run (a :class:`Proposal`), :data:`WAIT` while a phase needs the
        results of running trials, or :data:`FINISHED` when the search is over."""

    def should_stop(self, context: Context, trial: RunningTrial) -> bool:
        """Whether to prune a running trial; called about 50 times a run. Default: never."""
        return False

    def recommend(self, context: Context) -> TrialRecord | None:
        """The study's answer: the best completed full-length trial, else the best completed
        one whose LR lies below every LR that diverged at full length with the same other
        parameters (a short run's best there is no answer), else the best completed."""
        done = [t for t in context.live if t.state is TrialState.COMPLETED]
        full = [t for t in done if t.steps >= context.full_steps]
        blown = [t for t in context.live if t.diverged and t.steps >= context.full_steps]
        below = [t for t in done if not any(_same_but_lr(t, d) and t.lr >= d.lr for d in blown)]
        pool = full or below or done
        return min(pool, key=lambda t: t.score) if pool else None


def _same_but_lr(a: TrialRecord, b: TrialRecord) -> bool:
    return {k: v for k, v in a.params.items() if k != "lr"} == \
        {k: v for k, v in b.params.items() if k != "lr"}


def answer_of(strategy: Strategy, context: Context) -> Answer:
    """The strategy's answer with the budget applied: a proposal longer than the remaining steps
    becomes :data:`FINISHED` (the one place the budget is enforced). A caller still waits for
    running trials before ending: a trial that stops early gives back steps, a lost one runs
    again. A broken answer, or an exception from ``ask``, is a :class:`StrategyError` that
    names the strategy, raised before anything is written."""
    try:
        answer = strategy.ask(context)
    except Exception as err:  # noqa: BLE001 - whatever it raised, the strategy is the culprit
        raise StrategyError(f"The strategy {strategy.name!r} raised in ask(): "
                            f"{describe(err)}") from err
    if isinstance(answer, Proposal):
        answer = _runnable(strategy, answer, context)
        return answer if answer.steps <= context.remaining_steps else FINISHED
    if answer is WAIT and not context.running:
        raise StrategyError(f"The strategy {strategy.name!r} answered WAIT while no trial runs: "
                            "nothing would ever change. Answer FINISHED when the search is over.")
    if not isinstance(answer, Signal):
        raise StrategyError(f"The strategy {strategy.name!r} answered {answer!r} from ask(); it "
                            "must return a Proposal, WAIT or FINISHED (lrtune.strategies).")
    return answer


def recommendation_of(strategy: Strategy, context: Context) -> TrialRecord | None:
    """The strategy's :meth:`~Strategy.recommend`: None or one of the study's own trials, else
    a :class:`StrategyError` naming the strategy (a record of another study, or a dict, would
    reach ``study.best`` and the report as the study's answer)."""
    try:
        best = strategy.recommend(context)
    except Exception as err:  # noqa: BLE001 - whatever it raised, the strategy is the culprit
        raise StrategyError(f"The strategy {strategy.name!r} raised in recommend(): "
                            f"{describe(err)}") from err
    live = context.live  # the same object, as every built-in answers; else an equal one
    if best is not None and all(t is not best for t in live) and best not in live:
        raise StrategyError(f"The strategy {strategy.name!r} recommended {best!r}: it must answer "
                            "None or one of context.live, the study's trials.")
    return best


def stop_of(strategy: Strategy, context: Context, trial: RunningTrial) -> bool:
    """The strategy's :meth:`~Strategy.should_stop` for a running trial; a
    :class:`StrategyError` naming the strategy when it raises or answers other than True or
    False (a str "no" would prune every trial, None none): its bug, not the objective's."""
    try:
        stop = strategy.should_stop(context, trial)
    except Exception as err:  # noqa: BLE001 - whatever it raised, the strategy is the culprit
        raise StrategyError(f"The strategy {strategy.name!r} raised in should_stop(): "
                            f"{describe(err)}") from err
    if not isinstance(stop, bool | np.bool_):
        raise StrategyError(f"The strategy {strategy.name!r} answered should_stop() with "
                            f"{stop!r}: it must answer True or False.")
    return bool(stop)


def _runnable(strategy: Strategy, proposal: Proposal, context: Context) -> Proposal:
    """``proposal`` as the worker runs and stores it (plain ints and floats, the space's own
    choices), or a StrategyError when it cannot run as asked. Checked here, not by the storage
    or the trial: a length under one step would spend no budget (the study would never end), a
    negative one would give budget back, and params that are not the space's would fail deep in
    Optuna, or be stored filled in and never match the proposal again (proposed forever)."""
    owner = "Proposal()"
    try:
        steps = check_int(proposal.steps, "steps", owner, maximum=context.full_steps)
        if not isinstance(proposal.tag, str):
            raise fail("tag", owner, "a str", proposal.tag)
        params = _space_params(context.space, proposal.params)
    except InvalidParameterError as err:
        raise StrategyError(f"The strategy {strategy.name!r} answered a Proposal that cannot "
                            f"run (full runs are {context.full_steps} steps): {err}") from None
    return replace(proposal, params=params, steps=steps)


def _space_params(space: Space, params: object) -> dict[str, Any]:
    """``params`` checked against ``space``: every one of its parameters, each a value it holds
    (the LR inside its range: the storage refuses any other)."""
    names = {"lr", "weight_decay", *CATEGORICAL}
    if not isinstance(params, dict) or params.keys() != names:
        wrong = "; ".join(f"{what} {', '.join(sorted(keys))}" for what, keys in (
            ("without", names - set(params)), ("with", set(params) - names)) if keys
        ) if isinstance(params, dict) else "not a dict"
        raise fail("params", "Proposal()", "a dict of the space's parameters, built with "
                   f"context.space.config(lr) ({wrong})", params)
    lr_range = space.lr_range
    lr = check_float(params["lr"], "lr", "Proposal()", low=lr_range.low, high=lr_range.high,
                     low_inclusive=True)
    return space.config(lr, **{k: v for k, v in params.items() if k != "lr"})


def full_run_count(context: Context) -> int:
    """How many full-length runs the budget pays for."""
    return max(1, math.floor(context.budget + 1e-9))


def next_untried(context: Context, candidates: Iterable[dict[str, Any]], steps: int,
                 tag: str) -> Proposal | Literal[Signal.FINISHED]:
    """The first candidate with no live trial of this tag yet (so workers never duplicate one,
    and a lost trial's candidate is proposed again); FINISHED when every one has one.

    ``candidates`` may be a generator: it is read only up to the first untried one. Each ask
    costs one pass over the study's trials (a set of what was tried), not one per candidate."""
    return first_untried(context, ((c, key_of(c)) for c in candidates), steps, tag)


def first_untried(context: Context, keyed: Iterable[tuple[dict[str, Any], Hashable | None]],
                  steps: int, tag: str) -> Proposal | Literal[Signal.FINISHED]:
    """:func:`next_untried` for candidates paired with their :func:`key_of` (a strategy that
    keeps them between asks saves making them again)."""
    keys, unhashable = set(), []  # equal dicts hash alike, or are both unhashable
    for trial in context.tagged(tag):
        try:
            keys.add(trial.params_key)
        except TypeError:  # a value that does not hash (a user's schedule object)
            unhashable.append(trial.params)
    for params, key in keyed:
        if (params not in unhashable) if key is None else (key not in keys):
            return Proposal(dict(params), steps, tag)  # a copy: the strategy may keep its own
    return FINISHED


def key_of(params: dict[str, Any]) -> Hashable | None:
    """:func:`params_key`, or None where a value does not hash."""
    try:
        return params_key(params)
    except TypeError:
        return None


def by_value(trials: Sequence[TrialRecord]) -> list[TrialRecord]:
    return sorted(trials, key=lambda t: (t.score, t.number))
