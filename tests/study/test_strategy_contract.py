"""The strategy contract: a strategy written by a user runs through tune() and load_study(), the
worker enforces the budget once for every strategy, and a broken answer is a clear error."""

import dataclasses
import sys

import pytest
from plugins import install_strategy

import lrtune
from lrtune.exceptions import InvalidParameterError, StrategyError, UnknownStrategyError
from lrtune.records import TrialState
from lrtune.strategies import (
    FINISHED, WAIT, Context, Proposal, RunningTrial, Strategy, make_strategy, register,
)
from lrtune.study import join_study
from lrtune.study._study import Study
from lrtune.tasks import objective

STEPS = 60  # digits runs short enough for a test, long enough to train (val loss < 1)
SPACE = lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd")


class Decades(Strategy):
    """Full runs a decade apart from the top of the range down, until the loss gets worse."""

    name = "test-decades"

    def ask(self, context: Context):
        runs = context.tagged("decade")
        if context.running:
            return WAIT  # the next LR depends on this one's result
        if len(runs) >= 2 and runs[-1].score > runs[-2].score:
            return FINISHED  # past the bottom of the basin
        lr = context.space.lr_range.high / 10 ** len(runs)
        if lr < context.space.lr_range.low:
            return FINISHED
        return Proposal(context.space.config(lr), context.full_steps, "decade")


def _tune(digits, strategy, budget=5.0, name=None, storage=None, steps=STEPS):
    return lrtune.tune(objective(digits), steps=steps, budget=budget, strategy=strategy,
                       space=SPACE, seed=0, storage=storage, study_name=name)


def _plan(study):
    return [(t.tag, t.lr, t.steps, t.state) for t in study.trials]


def test_a_user_strategy_runs_through_tune_and_reopens_with_load_study(tmp_path, digits):
    url = f"sqlite:///{tmp_path}/mine.db"
    study = _tune(digits, Decades(), name="mine", storage=url)
    lrs = [t.lr for t in study.trials]
    assert lrs[:3] == pytest.approx([1.0, 0.1, 0.01])  # its own plan, in its order
    values = [t.score for t in study.trials]
    assert values[-1] > values[-2] and min(values[:-1]) == min(values)  # stopped past the basin
    assert len(lrs) < 5 and study.best.value == min(values) < 1.0  # it trained, far from 2.3
    # reopened in another "process": unregistered, the stored name alone cannot rebuild it ...
    with pytest.raises(UnknownStrategyError, match=r"'test-decades'.*@lrtune.strategies.register"):
        lrtune.load_study("mine", url)
    # ... the instance can, and the study reads the same
    again = lrtune.load_study("mine", url, strategy=Decades())
    assert isinstance(again.strategy, Decades) and _plan(again) == _plan(study)
    assert again.best.number == study.best.number
    with pytest.raises(InvalidParameterError, match="strategy 'test-decades'"):
        lrtune.load_study("mine", url, strategy="grid")  # not the strategy it was created with


def test_a_registered_strategy_is_rebuilt_by_name_and_joined(tmp_path, digits):
    @register
    class Registered(Decades):
        name = "test-registered"

    url = f"sqlite:///{tmp_path}/registered.db"
    Study.open(storage=url, study_name="joined", space=SPACE, steps=STEPS, budget=5.0,
               strategy=Registered(), seed=0)  # created, nothing run yet
    joined = join_study(objective(digits), storage=url, study_name="joined")
    assert isinstance(joined.strategy, Registered)
    reference = _tune(digits, Decades())  # the same plan, run by tune() in memory
    assert [(t.lr, t.value) for t in joined.trials] == [(t.lr, t.value) for t in reference.trials]
    assert isinstance(lrtune.load_study("joined", url).strategy, Registered)
    assert make_strategy("test-registered").name == "test-registered"


class Forever(Strategy):
    """Proposes another run at a lower LR every time: it never counts the budget."""

    name = "test-forever"

    def __init__(self, steps: int | None = None) -> None:
        self.steps = steps

    def ask(self, context: Context):
        lr = 0.3 / 2 ** len(context.trials)
        return Proposal(context.space.config(lr), self.steps or context.full_steps, "more")


@pytest.mark.parametrize("steps, budget, runs, spent", [
    (None, 2.5, 2, 2.0),  # a third full run does not fit in the half run left
    (25, 1.0, 2, 50 / 60),  # nor a third 25-step run in the 10 steps left
])
def test_the_worker_stops_a_strategy_at_the_budget(digits, steps, budget, runs, spent):
    study = _tune(digits, Forever(steps), budget=budget)
    assert len(study.trials) == runs and study.spent == pytest.approx(spent)
    assert all(t.state is TrialState.COMPLETED for t in study.trials)


class Halves(Strategy):
    """Two full runs, each stopped at half its length; keeps what it saw of the running trial."""

    name = "test-halves"

    def __init__(self) -> None:
        self.seen: list[RunningTrial] = []

    def ask(self, context: Context):
        if len(context.trials) == 2:
            return FINISHED
        return Proposal(context.space.config((0.05, 0.01)[len(context.trials)]),
                        context.full_steps, "half")

    def should_stop(self, context: Context, trial: RunningTrial) -> bool:
        self.seen.append(trial)
        return trial.steps_done >= trial.steps // 2


def test_should_stop_sees_the_running_trial_and_prunes_it(digits):
    strategy = Halves()
    study = _tune(digits, strategy)
    assert [t.state for t in study.trials] == [TrialState.PRUNED] * 2
    assert [t.steps_done for t in study.trials] == [STEPS // 2] * 2  # asked after every step
    last = strategy.seen[-1]
    assert last.params["lr"] == 0.01 and last.steps == STEPS and last.steps_done == STEPS // 2
    assert [s for s, _ in last.losses] == list(range(STEPS // 2))
    assert 2.0 < last.losses[0][1] < 2.6 and last.losses[-1][1] < last.losses[0][1]  # ln 10
    with pytest.raises(dataclasses.FrozenInstanceError):
        last.steps_done = 0  # a view: the strategy cannot change the trial


class Stuck(Strategy):
    name = "test-stuck"

    def __init__(self, answer) -> None:
        self.answer = answer

    def ask(self, context: Context):
        return self.answer


@pytest.mark.parametrize("answer, message", [
    (WAIT, "answered WAIT while no trial runs"),
    (None, "answered None from ask\\(\\); it must return a Proposal, WAIT or FINISHED"),
])
def test_a_broken_answer_is_a_clear_error_before_any_trial(digits, answer, message):
    with pytest.raises(StrategyError, match=message):
        _tune(digits, Stuck(answer))


def test_finished_at_once_runs_nothing(digits):
    study = _tune(digits, Stuck(FINISHED))
    assert study.trials == [] and study.best is None


def test_register_refuses_what_it_cannot_rebuild():
    with pytest.raises(InvalidParameterError, match="subclass of lrtune.strategies.Strategy"):
        register(dict)
    with pytest.raises(InvalidParameterError, match="the strategy 'grid' is lrtune"):
        register(type("Grid", (Decades,), {"name": "grid"}))


def test_an_entry_point_strategy_is_found_by_name(tmp_path, monkeypatch):
    """A package that declares ``[project.entry-points."lrtune.strategies"]``, installed as pip
    would (its dist-info on sys.path), is found without being imported first."""
    install_strategy(tmp_path, monkeypatch, "ep_strategy", "Plugged", "test-plugged",
                     "test-plugged")
    strategy = make_strategy("test-plugged")
    assert type(strategy).__name__ == "Plugged" and "ep_strategy" in sys.modules
