"""The walk of `auto`'s full-length runs on synthetic basins: where each next run goes, and
that a budget is spent."""

import math

import pytest

from lrtune.records import TrialRecord, TrialState
from lrtune.space import Space
from lrtune.strategies._auto import (
    FINAL_STEP, PRIOR_HORIZON_EXPONENT, SPACING, AutoStrategy, basin_vertex, final_lr,
    next_final_lr,
)
from lrtune.strategies._base import Context, Proposal, answer_of

FULL = 1000


def run(number, lr, loss):
    state = TrialState.COMPLETED if math.isfinite(loss) else TrialState.DIVERGED
    return TrialRecord(number, {"lr": lr}, FULL, state, loss if math.isfinite(loss) else None,
                       FULL, tag="final")


def walk(estimate, basin, count, cap=math.inf):
    capped = lambda lr: min(lr, cap)  # noqa: E731
    finals = []
    for number in range(count):
        lr = next_final_lr(estimate, finals, capped)
        if lr is None:
            break
        finals.append(run(number, lr, basin(lr)))
    return finals


def test_the_walk_climbs_to_a_best_lr_far_above_the_estimate():
    # the best full-length LR 4x above the estimate (an LSTM whose short runs read low): the
    # walk steps up while the loss falls, then halves the step between the best and its neighbour
    best = 0.016
    basin = lambda lr: 1 + (math.log(lr / best)) ** 2  # noqa: E731
    finals = walk(0.004, basin, 4)
    lrs = [t.lr for t in finals]
    assert lrs[:3] == pytest.approx([0.004, 0.004 * FINAL_STEP, 0.004 * FINAL_STEP**2])
    chosen = min(finals, key=lambda t: t.score).lr
    assert abs(math.log(chosen / best)) < math.log(FINAL_STEP) / 2


def test_a_worse_step_up_turns_the_walk_down_and_a_bracketed_best_is_refined():
    best = 0.01
    basin = lambda lr: 1 + (math.log(lr / best)) ** 2  # noqa: E731
    finals = walk(0.012, basin, 4)
    lrs = [t.lr for t in finals]
    assert lrs[1] == pytest.approx(0.012 * FINAL_STEP)
    assert lrs[2] == pytest.approx(0.012 / FINAL_STEP)
    assert lrs[3] == pytest.approx(math.sqrt(0.012 * 0.012 / FINAL_STEP))  # towards the better side


def test_the_cliff_turns_the_walk_and_every_run_goes_to_a_new_lr():
    # the estimate sits at the cap: the step up is blocked, so the budget buys LRs below it
    basin = lambda lr: 1 + (math.log(lr / 1.0)) ** 2  # noqa: E731
    finals = walk(2.0, basin, 3, cap=2.0)
    lrs = [t.lr for t in finals]
    assert len(set(lrs)) == 3 and max(lrs) == 2.0
    assert lrs[1] == pytest.approx(2.0 / FINAL_STEP)


def test_full_runs_that_all_diverged_send_the_next_one_below_them():
    finals = [run(0, 0.1, math.inf)]
    assert next_final_lr(0.1, finals, lambda lr: lr) == pytest.approx(0.1 / FINAL_STEP)


def study(space, full, budget, loss, cliff, blows_up_after=5, collapses_above=math.inf,
          untrained=math.inf):
    """Drive ``auto`` through the worker's budget rule on a synthetic basin: a run above
    ``cliff(steps)`` diverges after ``blows_up_after`` steps, any other ends at
    ``loss(lr, steps)``, diagnosed as collapsed above ``collapses_above``; each reports
    ``untrained`` first."""
    trials = []
    while isinstance(answer := answer_of(AutoStrategy(), Context(space, full, budget, 0,
                                                                 tuple(trials))), Proposal):
        lr, steps = answer.params["lr"], answer.steps
        if lr > cliff(steps):
            trials.append(TrialRecord(len(trials), answer.params, steps, TrialState.DIVERGED,
                                      None, min(blows_up_after, steps), answer.tag))
        else:
            diagnosis = {"status": "collapsed"} if lr > collapses_above else None
            trials.append(TrialRecord(len(trials), answer.params, steps, TrialState.COMPLETED,
                                      loss(lr, steps), steps, answer.tag, diagnosis,
                                      history=((0, untrained),)))
    return trials, AutoStrategy().recommend(Context(space, full, budget, 0, tuple(trials)))


SPACE = Space(lr=(1e-3, 10.0), optimizer="sgd-plain")


def basin(lr, steps):
    return 1 + (math.log(lr / 1.0)) ** 2 / steps


def test_a_full_run_that_diverged_early_gives_its_steps_to_one_below_it():
    # 40-step runs of plain SGD at 1.5 runs: the scan's best (1.0) survives 8 steps, and so
    # does the full run's first LR (0.45, the prior's shift below it) but not for 40 steps: it
    # blows up within a few; the budget pays for another, lower
    trials, _ = study(SPACE, 40, 1.5, basin, lambda steps: 6.0 if steps < 40 else 0.3)
    finals = [t for t in trials if t.tag == "final"]
    assert finals[0].state is TrialState.DIVERGED
    assert finals[-1].state is TrialState.COMPLETED and finals[-1].lr < 0.3
    spent = sum(t.steps_done for t in trials) / 40
    assert spent > 1.5 - 1 / 40 * 8  # what is left does not pay for another scan run


def test_an_lr_that_diverged_at_full_length_is_not_the_answer():
    # short runs do best at 4.6, where a full run blows up late, leaving no budget for another:
    # the answer falls back on the short runs, the best of them below the LR that diverged
    short_basin = lambda lr, steps: 1 + (math.log(lr / 4.6)) ** 2 / steps  # noqa: E731
    trials, answer = study(SPACE, 40, 2.0, short_basin,
                           lambda steps: 6.0 if steps < 40 else 0.9, blows_up_after=30)
    finals = [t for t in trials if t.tag == "final"]
    assert len(finals) == 1 and finals[0].state is TrialState.DIVERGED
    scanned = [t for t in trials if t.tag.startswith("scan") and t.value is not None]
    assert min(scanned, key=lambda t: t.value).lr >= finals[0].lr
    assert answer.lr < finals[0].lr
    assert answer == min((t for t in scanned if t.lr < finals[0].lr), key=lambda t: t.value)


@pytest.mark.parametrize("blows_up_after, first", [
    (8, [10.0, 1.0, 0.1]),  # a diverged 8-step run costs as much as a finished one: a decade
    (2, [10.0, 10 ** (2 / 3), 10 ** (1 / 3), 1.0]),  # a quarter of one: a lattice step
])
def test_the_scan_steps_down_a_decade_while_diverged_runs_cost_half_a_finished_one(
        blows_up_after, first):
    # a 60-step recipe at 1.5 runs scans with 8-step runs: walking down a lattice step at a
    # time from 10 through runs that each cost all 8 spent the scan on 4.6, 2.2 and 1.0 above the
    # cliff (0.2), and the full run, with no finite point to go by, blew up too
    space = Space(lr=(1e-4, 10.0), optimizer="sgd-plain")
    trials, answer = study(space, 60, 1.5, lambda lr, steps: 1 + math.log(lr / 0.05) ** 2,
                           lambda steps: 0.2, blows_up_after=blows_up_after)
    scan = [t for t in trials if t.tag.startswith("scan")]
    assert [t.lr for t in scan[:len(first)]] == pytest.approx(first)
    assert answer.tag == "final" and answer.state is TrialState.COMPLETED
    assert answer.lr < 0.2


@pytest.mark.parametrize("untrained, destroyed", [(2.3, True), (3.0, False)])
def test_the_scan_walks_down_a_decade_past_a_run_the_lr_destroyed(untrained, destroyed):
    # a warm-up schedule's 9-step scan runs learn nothing at the top of the range: the run at 1.0
    # collapsed (above the untrained loss), the one a decade below learned nothing either and
    # read a little worse by noise. Taking the collapsed run as the best stopped the walk there
    # and the answer landed 8x above the basin (a GroupNorm CNN under AdamW); a destroyed run
    # is above the cliff, as a diverged one is. A collapsed run whose value beat the untrained
    # loss learned something: the walk reads it as any finite point
    def loss(lr, steps):
        if lr > 0.2:
            return 2.59
        if lr > 0.05:
            return 2.61
        return 2.3 - 0.5 * math.exp(-math.log(lr / 0.01) ** 2)

    trials, answer = study(Space(lr=(1e-4, 1.0), optimizer="sgd-plain"), 150, 2.0, loss,
                           lambda steps: math.inf, collapses_above=0.2, untrained=untrained)
    scan = [t for t in trials if t.tag.startswith("scan")]
    if destroyed:
        assert [t.lr for t in scan[:3]] == pytest.approx([1.0, 0.1, 0.01])
        assert answer.tag == "final" and abs(math.log(answer.lr / 0.01)) < math.log(3)
    else:
        assert [t.lr for t in scan[:3]] == pytest.approx([1.0, 0.1, 1.0 / SPACING])


@pytest.mark.parametrize("lrs", [(0.01, 0.1, 0.2154), (0.004642, 0.04642, 0.1)])
def test_a_sparse_scan_reads_its_best_from_the_bracket_not_the_nearest_lattice_point(lrs):
    # scan points a decade apart around a basin at 0.04 (a 1.5-run scan fills in no neighbours):
    # the best lattice point alone answered 0.1 or 0.046 depending on where the lattice fell
    best = 0.04
    trials = [TrialRecord(i, {"lr": lr}, 10, TrialState.COMPLETED,
                          3 + 0.1 * math.log(lr / best) ** 2, 10, tag="scan:0")
              for i, lr in enumerate(lrs)]
    assert basin_vertex(trials) == pytest.approx(best, rel=0.01)


def test_a_best_at_the_edge_of_a_sparse_scan_is_not_extrapolated():
    trials = [TrialRecord(i, {"lr": lr}, 10, TrialState.COMPLETED, loss, 10, tag="scan:0")
              for i, (lr, loss) in enumerate([(1.0, 3.0), (0.1, 3.5), (0.01, 4.0)])]
    assert basin_vertex(trials) == pytest.approx(1.0)


def test_a_small_budget_refines_with_three_points_a_basin_can_be_fitted_to():
    # 1.5 runs of a 400-step recipe: 25-step scans leave about 120 steps. Two refine runs of 60
    # give an argmin of two, not a vertex, and a shift between the rungs measured from it (the
    # built-in diabetes task's answers landed 10-140x too high); three of 40 can be fitted
    best = lambda steps: 0.01 * (400 / steps) ** 0.5  # noqa: E731  (the horizon effect)
    trials, answer = study(Space(lr=(1e-5, 1.0), optimizer="sgd-plain"), 400, 1.5,
                           lambda lr, steps: 1 + math.log(lr / best(steps)) ** 2,
                           lambda steps: math.inf)
    refine = [t for t in trials if t.tag == "refine"]
    assert len(refine) == 3 and refine[0].steps >= 1.5 * 25
    assert answer.tag == "final"
    assert sum(t.steps_done for t in trials) / 400 > 1.5 - 25 / 400  # the budget is spent


def test_without_a_refine_rung_a_constant_lr_carries_the_scans_best_by_the_prior():
    # 60 steps at 1.5 runs: 8-step scans leave no room for a refine rung. Under a constant LR
    # the best falls with the length (here as the prior says), so the full run must not train
    # at the scan's best, as it did before
    best = lambda steps: 0.01 * (60 / steps) ** PRIOR_HORIZON_EXPONENT  # noqa: E731
    trials, answer = study(Space(lr=(1e-3, 0.1), optimizer="sgd-plain"), 60, 1.5,
                           lambda lr, steps: 1 + math.log(lr / best(steps)) ** 2,
                           lambda steps: math.inf)
    assert not [t for t in trials if t.tag == "refine"]
    scan = [t for t in trials if t.tag.startswith("scan")]
    assert answer.tag == "final"
    assert answer.lr == pytest.approx(basin_vertex(scan) * (60 / 8) ** -PRIOR_HORIZON_EXPONENT)
    assert answer.lr == pytest.approx(0.01, rel=0.01)


def rung(tag, steps, lrs, best):
    """A rung of runs on an exact quadratic basin in log-LR around ``best``."""
    return [TrialRecord(i, {"lr": lr}, steps, TrialState.COMPLETED,
                        1 + 0.1 * math.log(lr / best) ** 2, steps, tag=tag)
            for i, lr in enumerate(lrs)]


@pytest.mark.parametrize("scan_lrs, scan_weight", [
    ((0.8, 0.08, 0.008), 0.1),  # a scan a decade apart (1.5 runs): a ninth of the refine's weight
    ((0.08 * SPACING, 0.08, 0.08 / SPACING), 0.5),  # a lattice step apart, like the refine
])
def test_under_a_decaying_schedule_each_rung_counts_as_much_as_it_resolves(scan_lrs, scan_weight):
    scan = rung("scan:0", 10, scan_lrs, 0.08)
    refine = rung("refine", 30, [0.03 * SPACING, 0.03, 0.03 / SPACING], 0.03)
    assert basin_vertex(scan) == pytest.approx(0.08) and basin_vertex(refine) == pytest.approx(0.03)
    lr = final_lr(scan, refine, 10, 160, decays=True, fallback=1.0)
    expected = math.exp(scan_weight * math.log(0.08) + (1 - scan_weight) * math.log(0.03))
    assert lr == pytest.approx(expected)


def test_under_a_decaying_schedule_a_refine_rung_best_at_its_edge_bounds_the_answer():
    # the refine rung's best is its highest LR: its basin lies there or above, so the mean with a
    # scan that reads lower must not land on LRs the refine rung measured as worse
    scan = rung("scan:0", 10, (0.01 * SPACING, 0.01, 0.01 / SPACING), 0.01)
    refine = rung("refine", 30, [0.04 / SPACING**k for k in range(4)], 0.2)
    assert basin_vertex(refine) == pytest.approx(0.04)
    assert final_lr(scan, refine, 10, 160, decays=True, fallback=1.0) == pytest.approx(0.04)
    # and the other way round, below its lowest LR
    refine = rung("refine", 30, [0.001 * SPACING**k for k in range(4)], 1e-4)
    scan = rung("scan:0", 10, (0.1 * SPACING, 0.1, 0.1 / SPACING), 0.1)
    assert final_lr(scan, refine, 10, 160, decays=True, fallback=1.0) == pytest.approx(0.001)


def test_a_refine_rung_bracketed_by_a_divergence_or_a_worse_point_does_not_bound_the_answer():
    scan = rung("scan:0", 10, (0.01 * SPACING, 0.01, 0.01 / SPACING), 0.01)
    mean = math.sqrt(0.01 * 0.04)  # both rungs a lattice step apart: equal weights
    diverged = TrialRecord(9, {"lr": 0.04 * SPACING}, 30, TrialState.DIVERGED, None, 3,
                           tag="refine")
    refine = rung("refine", 30, [0.04 / SPACING**k for k in range(3)], 0.2) + [diverged]
    assert final_lr(scan, refine, 10, 160, decays=True, fallback=1.0) == pytest.approx(mean)
    inside = rung("refine", 30, [0.04 * SPACING, 0.04, 0.04 / SPACING], 0.04)
    assert final_lr(scan, inside, 10, 160, decays=True, fallback=1.0) == pytest.approx(mean)
