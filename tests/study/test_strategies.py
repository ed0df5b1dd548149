"""Every strategy runs a real study on the built-in tasks, within its budget."""

import dataclasses

import pytest

import lrtune
from lrtune.optimizers import get_optimizer_spec
from lrtune.records import TrialRecord, TrialState
from lrtune.schedules import Schedule
from lrtune.strategies import FINISHED, STRATEGIES, Context, Proposal, make_strategy
from lrtune.strategies._base import next_untried
from lrtune.tasks import objective, task_space


@pytest.mark.slow
@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_finds_a_working_lr_on_digits(strategy, digits):
    study = lrtune.tune(objective(digits), steps=digits.steps, budget=5.0, strategy=strategy,
                        space=task_space(digits), seed=0)
    best = study.best
    assert best is not None and best.state is TrialState.COMPLETED
    assert study.spent <= 5.0 + 1e-9
    low, high = task_space(digits).lr_range.low, task_space(digits).lr_range.high
    assert low <= best.lr <= high
    # the textbook recipe trains to a val loss of about 0.06 at its best LR; an untrained net is 2.3
    assert best.value < 0.5
    assert all(t.state.finished for t in study.trials)


def test_auto_is_close_to_the_grid_optimum_on_digits(digits):
    study = lrtune.tune(objective(digits), steps=digits.steps, budget=2.0, strategy="auto",
                        space=task_space(digits), seed=0)
    assert study.best.tag == "final" and study.best.steps == digits.steps
    assert study.spent <= 2.0 + 1e-9
    # the 3-seed grid optimum of this recipe is about 0.05 (benchmarks/RESULTS.md)
    assert 0.015 < study.best.lr < 0.15
    assert study.best.value < 0.08


def test_auto_spends_a_larger_budget_on_a_walk_of_full_length_runs_from_its_estimate(digits):
    def study(budget):
        return lrtune.tune(objective(digits), steps=digits.steps, budget=budget, strategy="auto",
                           space=task_space(digits), seed=0)

    two, four = study(2.0), study(4.0)
    explored = lambda s: [(t.tag, t.lr, t.steps) for t in s.trials if t.tag != "final"]  # noqa: E731
    assert explored(four) == explored(two)  # the same exploration, then 3 full runs, not 1
    finals = [t for t in four.trials if t.tag == "final"]
    assert len(finals) == 3 and all(t.steps == digits.steps for t in finals)
    assert finals[0].lr == pytest.approx([t for t in two.trials if t.tag == "final"][0].lr)
    # a walk on the full-length loss: a lattice step up, then on from the better of the two
    first, second, third = sorted(finals, key=lambda t: t.number)
    step = 10 ** (1 / 3)
    assert second.lr == pytest.approx(first.lr * step)
    onwards = second.lr * step if second.value < first.value else first.lr / step
    assert third.lr == pytest.approx(onwards)
    assert 3.5 < four.spent <= 4.0 + 1e-9
    assert four.best == min(finals, key=lambda t: t.value)


def test_diverged_trials_are_recorded_and_bound_the_search(digits):
    study = lrtune.tune(objective(digits), steps=digits.steps, budget=2.0, strategy="auto",
                        space=task_space(digits), seed=0)
    diverged = [t for t in study.trials if t.state is TrialState.DIVERGED]
    assert diverged, "the digits range reaches LRs that blow up"
    for t in diverged:
        assert t.diagnosis["status"] == "diverged"
        assert 0 <= t.diagnosis["findings"][0]["step"] < t.steps
        assert t.steps_done < t.steps  # stopped at once, cheap
    cliff = min(t.lr for t in diverged)
    after = [t for t in study.trials if t.number > max(d.number for d in diverged)
             and t.tag in ("refine", "final")]
    assert after and all(t.lr < cliff for t in after)


def test_bayes_never_proposes_at_or_above_a_diverged_lr(digits):
    study = lrtune.tune(objective(digits), steps=digits.steps, budget=4.0, strategy="bayes",
                        space=lrtune.Space(lr=(1e-3, 10.0), optimizer="sgd"), seed=1)
    trials = study.trials
    checked = 0
    for i, t in enumerate(trials):
        earlier = [d.lr for d in trials[:i] if d.diverged]
        if earlier and i >= 2:  # past the initial design, proposals respect the cliff
            assert t.lr < min(earlier)
            checked += 1
    assert checked >= 2  # trial 1 (lr 1.2) diverges: the rule was exercised, not vacuous


def test_hyperband_compresses_the_schedule_to_each_rung(digits):
    seen = []

    def spy(trial):
        seen.append((trial.steps, trial.schedule().total_steps, trial.schedule().milestones))
        return objective(digits)(trial)

    lrtune.tune(spy, steps=digits.steps, budget=3.0, strategy="hyperband",
                space=task_space(digits), seed=0)
    lengths = sorted({s for s, _, _ in seen})
    assert len(lengths) >= 2 and lengths[-1] == digits.steps
    for steps, total, milestones in seen:  # step decay at 50% and 75% of every rung
        assert total == steps
        assert milestones == (round(steps / 2), round(3 * steps / 4)) or \
            abs(milestones[0] - steps / 2) <= 1


def test_a_nan_and_an_exception_become_verdicts_not_crashes(digits):
    def flaky(trial):
        if trial.lr > 0.3:
            return float("nan")
        if trial.lr < 1e-2:
            raise RuntimeError("CUDA out of memory (simulated by the objective)")
        return objective(digits)(trial)

    study = lrtune.tune(flaky, steps=digits.steps, budget=3.0, strategy="grid",
                        space=lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd"), seed=0)
    states = {t.lr: t for t in study.trials}
    assert any(t.state is TrialState.FAILED and "CUDA out of memory" in t.error
               for t in states.values())
    assert any(t.state is TrialState.DIVERGED for t in states.values())
    assert any(t.state is TrialState.COMPLETED for t in states.values())
    assert study.best.state is TrialState.COMPLETED and 1e-2 <= study.best.lr <= 0.3


def test_auto_with_runs_too_short_to_refine_gives_the_scan_its_whole_budget(digits):
    # 16-step runs at budget 2: no refine rung fits (two runs of twice the scan's 8 steps), so
    # the scan takes the exploration budget instead of leaving it unspent
    study = lrtune.tune(objective(digits), steps=16, budget=2.0, strategy="auto",
                        space=task_space(digits), seed=0)
    *scan, final = study.trials
    assert len(scan) >= 2 and {t.tag for t in scan} == {"scan:0"} and not any(
        t.tag == "refine" for t in study.trials)
    assert final.tag == "final" and final.steps == 16 and study.spent > 1.9
    assert study.best == final and final.value < 1.5  # 16 steps from an untrained net's 2.3


def test_auto_with_more_choices_than_it_can_scan_trains_at_the_first_ones_default_lr(digits):
    # 16-step runs of nine choices at budget 1.25: not one scan run (8 steps) of each fits
    space = lrtune.Space(optimizer=["sgd", "adam", "adamw"],
                         schedule=["constant", "cosine", "linear"])
    study = lrtune.tune(objective(digits), steps=16, budget=1.25, strategy="auto", space=space,
                        seed=0)
    (final,) = study.trials  # one informed guess, at full length
    assert final.tag == "final" and final.steps == 16 and study.spent == 1.0
    assert final.lr == get_optimizer_spec("sgd").default_lr
    assert study.best == final and final.value < 1.5


@pytest.mark.parametrize("budget", [2.0, 4.0])
def test_auto_with_more_choices_than_it_can_scan_refines_the_first(digits, budget):
    space = lrtune.Space(optimizer=["sgd", "adam", "adamw"],
                         schedule=["constant", "cosine", "linear"])
    study = lrtune.tune(objective(digits), steps=120, budget=budget, strategy="auto",
                        space=space, seed=0)
    assert study.spent <= budget + 1e-9
    refine = [t for t in study.trials if t.tag == "refine"]
    assert len(refine) == 4 and not [t for t in study.trials if t.tag.startswith("scan")]
    # around sgd's default LR (0.1), the first choice, moved for the shorter runs
    assert all(t.params["optimizer"] == "sgd" and t.params["schedule"] == "constant"
               and 0.01 < t.lr < 0.3 for t in refine)
    finals = [t for t in study.trials if t.tag == "final"]
    assert len(finals) == int(budget) - 1 and all(t.steps == 120 for t in finals)
    assert study.best in finals and study.best.value < 0.15  # 120 steps train digits well


def test_next_untried_reads_candidates_up_to_the_first_untried_and_proposes_a_lost_one_again():
    space = lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd")
    configs = [space.config(lr) for lr in (0.001, 0.01, 0.1, 1.0)]
    trials = (TrialRecord(0, configs[0], 10, TrialState.COMPLETED, 1.0, 10, "grid"),
              TrialRecord(1, configs[1], 10, TrialState.LOST, None, 4, "grid"),
              TrialRecord(2, configs[2], 10, TrialState.RUNNING, None, 0, "grid"),
              TrialRecord(3, configs[3], 10, TrialState.COMPLETED, 1.0, 10, "other"))
    read = []

    def candidates():
        for config in configs:
            read.append(config)
            yield config

    context = Context(space, 10, 4.0, 0, trials)
    assert next_untried(context, candidates(), 10, "grid") == Proposal(configs[1], 10, "grid")
    assert read == configs[:2]  # the generator was not read past the answer
    assert next_untried(context, configs[2:3], 10, "grid") is FINISHED  # running: taken
    assert next_untried(context, configs[3:], 10, "grid").params == configs[3]  # by tag


@dataclasses.dataclass(frozen=True)
class _Knots(Schedule):
    """A user's schedule with a list field: it does not hash."""

    knots: list = dataclasses.field(default_factory=lambda: [1.0])

    def _factor(self, t: int) -> float:
        return self.knots[0]


@pytest.mark.parametrize("schedule", ["constant", _Knots(100)], ids=["hashable", "unhashable"])
def test_grid_proposes_its_points_in_order_and_a_proposal_is_the_callers_own(schedule):
    space = lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd", schedule=[schedule])
    grid, trials = make_strategy("grid"), []
    for number in range(4):
        proposal = grid.ask(Context(space, 10, 4.0, 0, tuple(trials)))
        expected = space.config(space.lr_range.value((number + 0.5) / 4))
        assert proposal.params == expected and proposal.steps == 10
        proposal.params["lr"] = -1.0  # changed by the caller: the grid's own point stays
        trials.append(TrialRecord(number, expected, 10, TrialState.COMPLETED, 1.0, 10, "grid"))
        if number == 1:  # a lost trial's point is proposed again, before the points after it
            lost = dataclasses.replace(trials[0], state=TrialState.LOST)
            again = grid.ask(Context(space, 10, 4.0, 0, (lost, trials[1])))
            assert again.params == trials[0].params
    assert grid.ask(Context(space, 10, 4.0, 0, tuple(trials))) is FINISHED
