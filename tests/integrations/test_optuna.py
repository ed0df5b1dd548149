"""lrtune's strategies from plain Optuna code: the sampler and pruner on a real digits loop.

The objective is ordinary Optuna code (suggest ``lr``, train, report the validation loss every
ten steps, prune when asked); only the sampler and pruner lines differ from a TPE study.
"""

import itertools
import math
import threading

import optuna
import pytest
import torch
from torch import nn

import lrtune
from lrtune import InvalidParameterError
from lrtune.integrations.optuna import LrtunePruner, LrtuneSampler, planned_steps

# Where digits trains well: mean validation loss within 1.7x of the best LR's on the reference
# grid (benchmarks/out/grid_digits.json, 3 seeds a point): lr 0.0158 to 0.25.
GOOD = (0.015, 0.25)
TASK = lrtune.tasks.get_task("digits")
STEPS = TASK.steps


def objective(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-4, 3.0, log=True)
    trial.set_user_attr("planned", planned_steps(trial))
    model = TASK.make_model(0)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=TASK.weight_decay)
    decay = torch.optim.lr_scheduler.MultiStepLR(opt, [STEPS // 2, 3 * STEPS // 4], 0.1)
    step = 0
    while step < STEPS:
        for x, y in TASK.train_loader(0):
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            decay.step()
            if step % 10 == 9:
                trial.report(TASK.evaluate(model), step)
                if trial.should_prune():
                    raise optuna.TrialPruned()
            step += 1
            if step == STEPS:
                break
    return TASK.evaluate(model)


@pytest.fixture(autouse=True)
def _quiet_optuna():
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    yield
    optuna.logging.set_verbosity(level)


def test_sampler_and_pruner_follow_auto_and_find_a_good_lr(tmp_path):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    sampler = LrtuneSampler(steps=STEPS, budget=2.0, schedule=TASK.schedule(STEPS))
    study = optuna.create_study(sampler=sampler, pruner=LrtunePruner(), storage=storage,
                                study_name="optuna")
    study.optimize(objective, n_trials=100)
    trials = study.trials
    assert len(trials) < 25  # it stopped by itself when the budget was spent
    final = trials[-1]
    assert final.state is optuna.trial.TrialState.COMPLETE
    assert final.user_attrs["lrtune:tag"] == "final"
    assert GOOD[0] < final.params["lr"] < GOOD[1]
    assert final.value < 0.1  # the grid's best mean validation loss is 0.06
    spent = sum(t.user_attrs["lrtune:steps_done"] for t in trials) / STEPS
    assert spent <= 2.05  # short runs stop at the first report past their length
    # short runs were cut at their planned length, and the objective could read it
    scans = [t for t in trials if t.user_attrs["lrtune:tag"].startswith("scan")]
    assert all(t.user_attrs["planned"] == t.user_attrs["lrtune:steps"] < STEPS for t in scans)
    for t in scans:
        if t.user_attrs["lrtune:state"] == "completed":
            assert t.state is optuna.trial.TrialState.PRUNED
            assert t.user_attrs["lrtune:steps_done"] - t.user_attrs["lrtune:steps"] < 10
    # the runs above the cliff were stopped as diverged, not failed, and cost little
    diverged = [t for t in trials if t.user_attrs["lrtune:state"] == "diverged"]
    assert diverged and min(t.params["lr"] for t in diverged) > GOOD[1]
    # and lrtune reads the study: the same answer, and the short runs with their values
    reread = lrtune.load_study("optuna", storage)
    assert reread.best.number == final.number
    completed = {t.number: t.user_attrs["lrtune:state"] == "completed" for t in scans}
    assert any(completed.values())
    for t in reread.trials:
        if completed.get(t.number):
            assert t.state is lrtune.TrialState.COMPLETED and math.isfinite(t.value)


def test_pruner_alone_stops_a_run_as_soon_as_it_diverges():
    study = optuna.create_study(pruner=LrtunePruner())
    trial = study.ask()
    stopped_at = None
    for step, loss in enumerate([2.3, 2.0, 1.8, 40.0, 900.0, 1e5, 1e7, 1e9]):
        trial.report(loss, step)
        if trial.should_prune():
            stopped_at = step
            break
    assert stopped_at == 5  # three values in a row above the explosion limit
    assert planned_steps(trial, default=123) == 123  # without the sampler: the caller's


def test_the_lr_must_be_a_positive_float_range():
    study = optuna.create_study(sampler=LrtuneSampler(steps=100))
    with pytest.raises(InvalidParameterError, match="'lr' parameter"):
        study.optimize(lambda t: t.suggest_float("lr", 0.0, 1.0), n_trials=1)
    with pytest.raises(InvalidParameterError, match="'budget' parameter"):
        LrtuneSampler(steps=100, budget=1.0)
    assert math.isfinite(LrtuneSampler(steps=100).budget)


def test_the_returned_held_out_loss_reaches_the_verdict(memorise):
    # memorising shuffled labels: the reported training loss falls, the returned held-out loss
    # (true labels) ends above the untrained model's: collapsed, where the reports alone say healthy
    from lrtune.integrations.optuna import outcome

    study = optuna.create_study()
    trial = study.ask()
    held_out = memorise(lambda step, loss: trial.report(loss.item(), step))
    study.tell(trial, held_out)
    (frozen,) = study.trials
    done = optuna.trial.TrialState.COMPLETE
    assert outcome(frozen, done, 600)["diagnosis"]["status"] == "healthy"
    told = outcome(frozen, done, 600, held_out)["diagnosis"]
    assert told["status"] == "collapsed" and "held-out" in told["findings"][0]["evidence"]


@pytest.mark.parametrize(("directions", "name", "got"), [
    (["maximize"], "direction", "'maximize'"),
    (["minimize", "minimize"], "directions", r"\['minimize', 'minimize'\]"),
])
def test_a_study_that_maximises_or_has_several_objectives_is_refused_before_training(
        directions, name, got):
    # the strategies minimise one loss: a maximised score would pick the LR that blew up, and a
    # second objective crashed Optuna's after_trial once the first run had trained
    started = []

    def counted(trial: optuna.Trial) -> float:
        started.append(trial.number)
        return objective(trial)

    study = optuna.create_study(directions=directions, pruner=LrtunePruner(),
                                sampler=LrtuneSampler(steps=STEPS, schedule=TASK.schedule(STEPS)))
    with pytest.raises(InvalidParameterError, match=rf"^The '{name}' parameter of "
                       rf"optuna\.create_study\(\) must be .*'minimize'.* Got {got} instead\.$"):
        study.optimize(counted, n_trials=100)
    assert started == []  # refused before the objective ran
    (trial,) = study.trials
    assert trial.state is optuna.trial.TrialState.FAIL  # not left running in the storage


PARALLEL_STEPS = 240


def test_parallel_workers_never_train_the_same_proposal_nor_past_the_budget(tmp_path):
    # optimize(n_jobs=2): each thread's trial asks for its LR while the other's may be asking,
    # training, or just ending. Whatever the interleaving, every trial trains its own proposal
    # and the study stays within its budget (two threads once got the same LR, and an "extra"
    # full run followed a premature "done": 2.86 of 2 runs).
    both_started = threading.Barrier(2, timeout=60)

    def parallel_objective(trial: optuna.Trial) -> float:
        if trial.number < 2:
            both_started.wait()  # the first two trials ask for their LR at the same moment
        lr = trial.suggest_float("lr", 1e-4, 3.0, log=True)
        steps = planned_steps(trial, default=PARALLEL_STEPS)
        model = TASK.make_model(0)
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        batches = itertools.chain.from_iterable(TASK.train_loader(e) for e in itertools.count())
        for step, (x, y) in zip(range(steps), batches, strict=False):  # batches never end
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            cosine.step()
            trial.report(loss.item(), step)  # every step: a short run stops at its length
            if trial.should_prune():
                raise optuna.TrialPruned()
        return TASK.evaluate(model)

    storage = f"sqlite:///{tmp_path}/parallel.db"
    study = optuna.create_study(sampler=LrtuneSampler(steps=PARALLEL_STEPS, schedule="cosine"),
                                pruner=LrtunePruner(), storage=storage, study_name="parallel")
    study.optimize(parallel_objective, n_trials=100, n_jobs=2)
    reread = lrtune.load_study("parallel", storage)
    proposals = [(t.lr, t.steps, t.tag) for t in reread.trials]
    assert len(set(proposals)) == len(proposals), proposals
    assert reread.spent <= reread.budget + 1e-9
    assert "extra" not in {tag for _, _, tag in proposals}
    assert reread.best.tag == "final" and reread.best.steps == PARALLEL_STEPS
    # a trial whose thread asked once the budget was spent trained nothing, and lrtune skips it
    for t in study.trials:
        if "lrtune:steps" not in t.user_attrs:
            assert "lrtune:retired" in t.user_attrs and not t.intermediate_values
