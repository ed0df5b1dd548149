"""Trial.report: sparse reporting reaches the strategy's checkpoint; bad values fail the trial."""

import math

import pytest
import torch

import lrtune
from lrtune.exceptions import InvalidParameterError
from lrtune.records import TrialState
from lrtune.strategies import GridStrategy
from lrtune.tasks._training import fit
from lrtune.trial import Trial

STEPS = 800  # a trial this long reads back (and lets the strategy look) every 16 steps
EVERY = 10  # the objective reports every 10th step: (step + 1) % 16 == 0 never holds


def _trial(checkpoint=None, steps=STEPS):
    space = lrtune.Space(lr=0.05, optimizer="sgd")
    return Trial(0, space.config(0.05), steps, 0, space, full_steps=steps, checkpoint=checkpoint)


def _sparse_objective(task):
    def run(trial):
        model = task.make_model(trial.seed)
        opt = trial.optimizer(model.parameters())
        fit(task, model, opt, trial.scheduler(opt), trial.steps, trial.seed,
            lambda step, loss: (trial.report(loss, step) if step % EVERY == EVERY - 1 else None)
            or False)
        return task.evaluate(model)
    return run


class StopWithoutProgress(GridStrategy):
    """Prunes a trial whose loss has not fallen 1% below its first report by a checkpoint."""

    def should_stop(self, context, trial):  # trial: a read-only RunningTrial
        losses = [loss for _, loss in trial.losses]
        return len(losses) >= 2 and losses[-1] > 0.99 * losses[0]


def test_every_checkpoint_fires_once_when_reports_skip_its_step():
    looked = []
    trial = _trial(checkpoint=lambda t: looked.append(t.steps_done - 1) or False)
    assert trial.monitor.check_every == 16
    reports = range(EVERY - 1, STEPS, EVERY)
    for step in reports:
        trial.report(1.0, step)
    # the first report at or past each checkpoint (steps 15, 31, 47, ...) lets the strategy look
    expected = sorted({min(s for s in reports if s >= c) for c in range(15, STEPS, 16)
                       if c <= reports[-1]})
    assert looked == expected and looked[:3] == [19, 39, 49]


def test_sparse_reports_store_intermediate_values_and_get_pruned(tmp_path, digits):
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = lrtune.tune(_sparse_objective(digits), steps=STEPS, budget=2.0,
                        strategy=StopWithoutProgress(), storage=url, study_name="sparse",
                        space=lrtune.Space(lr=(1e-8, 1e-6), optimizer="sgd"), seed=0)
    trials = study.trials
    assert len(trials) == 2
    for record, frozen in zip(trials, study.optuna.get_trials(), strict=True):
        assert record.state is TrialState.PRUNED
        assert record.steps_done == 2 * EVERY  # stopped at the first report past step 15
        assert list(frozen.intermediate_values) == [2 * EVERY - 1]
        assert frozen.intermediate_values[2 * EVERY - 1] == pytest.approx(record.history[-1][1])


@pytest.mark.parametrize("bad, got", [
    (torch.ones(3), r"Got a tensor of shape \(3,\) at step 2 instead"),
    ("abc", r"Got 'abc' at step 2 instead"),
    ("0.5", r"Got '0.5' at step 2 instead"),  # float() reads it, but text is no loss
    (b"0.5", r"Got b'0.5' at step 2 instead"),
])
def test_a_bad_value_is_named_at_the_read_back(bad, got):
    trial = _trial()
    for step, value in enumerate([torch.tensor(2.0), 1.5, bad]):
        trial.report(value, step)  # the per-step path does not look at the value
    with pytest.raises(InvalidParameterError,
                       match=r"The 'loss' parameter of Trial\.report\(\) must be a number or a "
                             r"one-element tensor\. " + got):
        trial.monitor.flush()


@pytest.mark.parametrize("bad", [torch.ones(3), "abc"])
def test_a_bad_value_fails_the_trial_and_leaves_nothing_running(digits, bad):
    def objective(trial):
        for step in range(5):
            trial.report(bad if step == 3 else torch.tensor(2.0 - step / 10), step)
        return 1.0

    study = lrtune.tune(objective, steps=STEPS, budget=2.0, strategy="grid",
                        space=lrtune.Space(lr=(1e-3, 1e-1), optimizer="sgd"), seed=0)
    assert [t.state for t in study.trials] == [TrialState.FAILED, TrialState.FAILED]
    assert all("Trial.report()" in t.error and "at step 3" in t.error for t in study.trials)


def test_held_out_loss_reaches_the_diagnosis():
    trial = _trial(steps=200)
    for step in range(200):
        # the training loss keeps falling while the held-out loss, every 20 steps, climbs from
        # its best at step 39 to 4x that by the end (still well below the untrained 2.01)
        val = None if step % 20 != 19 else (0.25 if step == 39 else 1.0)
        trial.report(2.0 * math.exp(-step / 40) + 0.01, step, val_loss=val)
    diagnosis = trial.diagnose(1.0)  # the objective returns the last held-out loss: kept once
    assert list(trial.monitor.val_losses) == [1.0, 0.25] + [1.0] * 8
    assert diagnosis.status.value == "overfitting" and diagnosis.primary.step == 39


@pytest.mark.parametrize("step", [-1, 2.5, "3"])
def test_bad_step_is_rejected_before_anything_changes(step):
    trial = _trial()
    with pytest.raises(InvalidParameterError,
                       match=r"The 'step' parameter of Trial\.report\(\) must be an int >= 0"):
        trial.report(1.0, step)
    assert trial.steps_done == 0 and len(trial.monitor.losses) == 0


def test_steps_may_repeat_but_not_go_back():
    trial = _trial()
    for step in (0, 1, 1, 2):  # a step reported again: micro-batches of gradient accumulation
        trial.report(1.0, step)
    # a counter reset each epoch would hide how long the trial trained (steps_done)
    with pytest.raises(InvalidParameterError,
                       match=r"The 'step' parameter of Trial\.report\(\) must be at least the "
                             r"last step reported \(2\): steps count the whole run, not one "
                             r"epoch\. Got 0 instead"):
        trial.report(1.0, 0)
    assert trial.steps_done == 3 and list(trial.monitor.steps) == [0, 1, 1, 2]


@pytest.mark.parametrize("option", ["lr", "weight_decay", "momentum"])
def test_the_optimizer_trains_with_the_values_recorded_for_the_trial(option):
    space = lrtune.Space(lr=0.05, optimizer="sgd", weight_decay=1e-4, momentum=[0.5, 0.9])
    trial = Trial(0, space.config(0.05, momentum=0.5), 10, 0, space, full_steps=10)
    model = torch.nn.Linear(3, 2)
    with pytest.raises(InvalidParameterError,
                       match=r"The 'options' parameter of Trial\.optimizer\(\) must be keywords "
                             r"other than lr, weight_decay and a searched momentum .*"
                             rf"Got \['{option}'\] instead"):
        trial.optimizer(model.parameters(), **{option: 0.01})
    # a param group's own weight decay (none for the biases) is the way to vary it
    opt = trial.optimizer([{"params": [model.weight]},
                           {"params": [model.bias], "weight_decay": 0.0}], nesterov=True)
    assert [(g["lr"], g["weight_decay"], g["momentum"], g["nesterov"])
            for g in opt.param_groups] == [(0.05, 1e-4, 0.5, True), (0.05, 0.0, 0.5, True)]
    # unsearched, the family's default momentum is the user's to change
    assert _trial().optimizer(model.parameters(), momentum=0.5).defaults["momentum"] == 0.5


@pytest.mark.slow
def test_the_objectives_return_value_reaches_the_verdict_as_the_held_out_loss(digits):
    def returns(held_out):
        def run(trial):
            model = digits.make_model(trial.seed)
            opt = trial.optimizer(model.parameters())
            fit(digits, model, opt, trial.scheduler(opt), trial.steps, trial.seed,
                lambda step, loss: trial.report(loss, step) or False)
            return held_out(model)
        return run

    space = lrtune.Space(lr=(0.01, 0.1), optimizer="sgd")
    study = lrtune.tune(returns(digits.evaluate), steps=300, budget=2.0, strategy="grid",
                        space=space, seed=0)
    for trial in study.trials:  # learned: healthy, quoting the held-out loss it returned
        assert trial.diagnosis["status"] == "healthy"
        assert f"held-out {trial.value:.4g}" in trial.diagnosis["findings"][0]["evidence"]
    # the same runs judged by an untrained model's held-out loss: nothing carried over
    untrained = digits.evaluate(digits.make_model(1))
    study = lrtune.tune(returns(lambda model: untrained), steps=300, budget=2.0,
                        strategy="grid", space=space, seed=0)
    assert [t.diagnosis["status"] for t in study.trials] == ["collapsed", "collapsed"]
