"""Strategies that break the contract the way users' strategies do: each is a StrategyError or an
InvalidParameterError that names the strategy and what it did, before anything is written;
never a hang, an error from deep inside Optuna, or a study that silently does something else."""

import dataclasses
import math
import sys

import numpy as np
import pytest
from plugins import install_strategy

import lrtune
from lrtune.exceptions import InvalidParameterError, StrategyError
from lrtune.records import TrialState
from lrtune.strategies import (
    FINISHED, Context, GridStrategy, Proposal, RandomStrategy, Strategy, make_strategy, register,
    strategy_class,
)

STEPS = 8
SPACE = lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd")


def objective(trial):
    """A loss that depends on the LR alone, reported every step: no training, no randomness."""
    loss = 1.0
    for step in range(trial.steps):
        loss = abs(math.log10(trial.lr) + 1) + 1 / (step + 1)
        trial.report(loss)
    return loss


def _tune(strategy, budget=3.0, **settings):
    return lrtune.tune(objective, steps=STEPS, budget=budget, strategy=strategy, space=SPACE,
                       seed=0, **settings)


class Answers(Strategy):
    """Answers what ``answer(context)`` returns, once; FINISHED after its first trial."""

    name = "test-answers"

    def __init__(self, answer=None) -> None:
        self.answer = answer

    def ask(self, context: Context):
        return self.answer(context) if not context.trials else FINISHED


def _config(**changes):
    return {**SPACE.config(0.1), **changes}


def _without(key):
    return {k: v for k, v in SPACE.config(0.1).items() if k != key}


@pytest.mark.parametrize("proposal, message", [
    (Proposal(_config(), 0), r"'steps' parameter of Proposal\(\) must be an int from 1 to 8\. "
                             r"Got 0"),  # spent nothing: the study never ended
    (Proposal(_config(), -4), "Got -4"),  # gave budget back
    (Proposal(_config(), 4.5), "Got 4.5"),
    (Proposal(_config(), True), "Got True"),
    (Proposal(_config(), "8"), "Got '8'"),
    (Proposal(_config(), 2 * STEPS), "Got 16"),  # longer than a full run
    (Proposal(_config(), STEPS, 3), r"'tag' parameter of Proposal\(\) must be a str"),
    (Proposal(_without("lr"), STEPS), r"space's parameters.*\(without lr\)"),
    (Proposal({"lr": 0.1}, STEPS), r"\(without momentum, optimizer, schedule, warmup, "
                                   r"weight_decay\)"),
    (Proposal(_config(batch=32), STEPS), r"\(with batch\)"),
    (Proposal([("lr", 0.1)], STEPS), r"\(not a dict\)"),
    (Proposal(_config(optimizer="adam"), STEPS), "'optimizer' parameter.*Got 'adam'"),
    (Proposal(_config(lr=math.nan), STEPS), r"'lr' parameter of Proposal\(\) must be a float in "
                                            r"\[0\.001, 1\]\. Got nan"),
    (Proposal(_config(lr=0.0), STEPS), "Got 0.0"),
    (Proposal(_config(lr=-0.1), STEPS), "Got -0.1"),
    (Proposal(_config(lr="0.1"), STEPS), "Got '0.1'"),
    (Proposal(_config(lr=50.0), STEPS), "Got 50.0"),  # outside the range: Optuna refused it
])
def test_a_proposal_that_cannot_run_is_refused_before_any_trial(tmp_path, proposal, message):
    url = f"sqlite:///{tmp_path}/bad.db"
    with pytest.raises(StrategyError, match="The strategy 'test-answers' answered a Proposal "
                                            "that cannot run .*" + message):
        _tune(Answers(lambda context: proposal), storage=url, study_name="bad")
    assert lrtune.load_study("bad", url, strategy=Answers()).trials == []


def test_an_exception_in_ask_names_the_strategy_and_the_line():
    def broken(context):
        return context.tagged("scan")[-1]  # the user's bug: no scan ran yet

    with pytest.raises(StrategyError, match=r"The strategy 'test-answers' raised in ask\(\): "
                       r"IndexError: list index out of range \(at .*test_strategy_misuse\.py:"
                       r"\d+ in broken: return context\.tagged") as raised:
        _tune(Answers(broken))
    assert isinstance(raised.value.__cause__, IndexError)  # the traceback leads to the line


def test_numpy_values_of_a_proposal_run_and_are_stored_as_plain_numbers(tmp_path):
    url = f"sqlite:///{tmp_path}/np.db"
    proposal = Proposal(_config(lr=np.float64(0.1)), np.int64(STEPS), "np")
    study = _tune(Answers(lambda context: proposal), storage=url, study_name="np")
    (trial,) = lrtune.load_study("np", url, strategy=Answers()).trials
    assert trial.state is TrialState.COMPLETED and trial.steps == STEPS and trial.lr == 0.1
    assert type(trial.steps) is int and study.spent == 1.0


class Same(Strategy):
    """The same configuration every time: only the budget ends it."""

    name = "test-same"

    def ask(self, context: Context):
        return Proposal(context.space.config(0.1), 3, "same")


def test_a_strategy_that_repeats_itself_stops_at_the_budget():
    study = _tune(Same(), budget=2.0)
    assert len(study.trials) == 5 and study.spent == pytest.approx(15 / STEPS)  # 1 step left


class Grid2(GridStrategy):
    def ask(self, context: Context):  # plans otherwise, yet would be stored as 'grid'
        return FINISHED


class Pruning(GridStrategy):
    def should_stop(self, context, trial):  # plans and answers as grid does
        return False


class PruneBadly(GridStrategy):
    def __init__(self, answer: object = None):
        self.answer = answer

    def should_stop(self, context, trial):
        if self.answer is None:
            raise KeyError("losses")
        return self.answer


def careless(trial):
    """An objective that catches whatever reporting raises, and trains on."""
    loss = 1.0
    for step in range(trial.steps):
        loss = abs(math.log10(trial.lr) + 1) + 1 / (step + 1)
        try:
            trial.report(loss)
        except Exception:  # noqa: BLE001 - what a careless objective does
            pass
    return loss


@pytest.mark.parametrize("answer, said", [
    (None, r"raised in should_stop\(\): KeyError: 'losses'"),
    ("no", r"answered should_stop\(\) with 'no': it must answer True or False"),  # pruned all
])
@pytest.mark.parametrize("train", [objective, careless])
def test_a_should_stop_that_breaks_its_contract_stops_the_study_not_the_trial(tmp_path, answer,
                                                                            said, train):
    # it failed the trial instead, and three such failures blamed the objective
    url = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(StrategyError, match=r"^The strategy 'grid' " + said):
        lrtune.tune(train, steps=4 * STEPS, budget=3.0, strategy=PruneBadly(answer),
                    space=SPACE, seed=0, storage=url, study_name="s")
    trials = lrtune.load_study("s", url, strategy=PruneBadly(answer)).trials
    assert [(t.state, t.error) for t in trials] == [
        (TrialState.LOST, "lost: the strategy failed while it trained")]  # it runs again


class RecommendBadly(GridStrategy):
    name = "test-recommend-badly"  # grid's plan, its own answer: a name of its own

    def __init__(self, answer: object = None):
        self.answer = answer

    def recommend(self, context):
        if self.answer is None:
            raise ValueError("no trials")
        return self.answer


def test_a_recommend_that_breaks_its_contract_is_said_where_the_answer_is_read(tmp_path):
    # another study's trial (or a dict) went out as study.best, and on into the report
    url = f"sqlite:///{tmp_path / 's.db'}"
    other = _tune("grid").trials[0]
    study = _tune(RecommendBadly(), storage=url, study_name="s")
    for answer, said in ((None, r"raised in recommend\(\): ValueError: no trials"),
                         ({"lr": 0.1}, r"recommended \{'lr': 0.1\}: it must answer None or "
                                       r"one of context.live"),
                         (dataclasses.replace(other, number=99), r"recommended TrialRecord")):
        reopened = lrtune.load_study("s", url, strategy=RecommendBadly(answer))
        for read in ("best", "estimate"):
            with pytest.raises(StrategyError, match=r"^The strategy 'test-recommend-badly' "
                                                    + said):
                getattr(reopened, read)
    own = dataclasses.replace(study.trials[1])  # an equal copy of its own trial is its own
    assert lrtune.load_study("s", url, strategy=RecommendBadly(own)).best == study.trials[1]


class Random(Strategy):
    name = "random"  # taken by the built-in

    def ask(self, context: Context):
        return FINISHED


class Nameless(Strategy):
    def ask(self, context: Context):
        return FINISHED


@pytest.mark.parametrize("strategy, message", [
    (Grid2(), "name is its own \\(the strategy 'grid' is lrtune.strategies._grid.GridStrategy"),
    (Random(), "the strategy 'random' is lrtune.strategies._random.RandomStrategy"),
    (Nameless(), "a Strategy class with a non-empty str 'name'"),
])
def test_an_instance_whose_name_would_rebuild_another_strategy_is_refused(strategy, message):
    with pytest.raises(InvalidParameterError, match=r"'strategy' parameter of tune\(\).*"
                       + message):
        _tune(strategy)


def test_a_subclass_that_only_prunes_may_keep_its_parents_name(tmp_path):
    url = f"sqlite:///{tmp_path}/pruning.db"
    assert make_strategy(Pruning()).name == "grid"
    _tune(Pruning(), budget=1.0, storage=url, study_name="p")
    for other in (Grid2(), Nameless()):
        with pytest.raises(InvalidParameterError, match="'strategy' parameter of load_study"):
            lrtune.load_study("p", url, strategy=other)
    assert isinstance(lrtune.load_study("p", url).strategy, GridStrategy)


class NeedsWidth(Strategy):
    name = "test-needs-width"

    def __init__(self, width: int) -> None:
        self.width = width

    def ask(self, context: Context):
        return FINISHED


class NoAsk(Strategy):
    name = "test-no-ask"


@pytest.mark.parametrize("cls, message", [
    (NeedsWidth, "constructor arguments all have defaults .*'test-needs-width' as "
                 r"NeedsWidth\(\)"),
    (NoAsk, r"implements ask\(context\)"),
    (type("Random2", (RandomStrategy,), {}), "the strategy 'random' is lrtune"),
])
def test_register_refuses_a_class_it_could_not_rebuild_by_name(cls, message):
    with pytest.raises(InvalidParameterError, match=r"'cls' parameter of register\(\).*" + message):
        register(cls)
    assert strategy_class(cls.name) is not cls


def test_an_entry_point_must_name_its_class_by_its_name(tmp_path, monkeypatch):
    install_strategy(tmp_path, monkeypatch, "ep_misnamed", "Misnamed", "test-other-name",
                     "test-misnamed")
    with pytest.raises(InvalidParameterError, match="entry point 'test-misnamed' of "
                       "'lrtune.strategies' must be a Strategy class named 'test-misnamed'"):
        make_strategy("test-misnamed")
    assert strategy_class("test-other-name") is None and "ep_misnamed" in sys.modules
