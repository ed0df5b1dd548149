"""The built-in tasks train for real, deterministically, and leave global state alone."""

import numpy as np
import pytest
import torch

from lrtune.exceptions import InvalidParameterError
from lrtune.tasks import TASKS, get_task, train

GOOD_LR = {"digits": 0.05, "mnist1d": 0.01, "diabetes": 1e-3, "charlm": 0.03}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_task_learns_at_a_good_lr(name):
    task = get_task(name)
    steps = min(task.steps, 120)
    result = train(task, GOOD_LR[name], steps=steps, seed=0)
    untrained = task.evaluate(task.make_model(0))
    assert result.steps_done == steps
    assert result.val_loss < 0.8 * untrained  # it generalises, not only fits
    assert result.losses[-10:].mean() < 0.8 * result.losses[:10].mean()


def test_runs_are_reproducible_and_seeds_differ(digits):
    a, b = (train(digits, 0.05, steps=60, seed=1) for _ in range(2))
    c = train(digits, 0.05, steps=60, seed=2)
    np.testing.assert_array_equal(a.losses, b.losses)
    assert not np.array_equal(a.losses, c.losses)


def test_runs_with_dropout_repeat_whatever_the_global_rng_holds():
    from torch import nn

    from lrtune.tasks._digits import DigitsMLP

    class DigitsDropout(DigitsMLP):
        def build_model(self) -> nn.Module:
            return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.5),
                                 nn.Linear(128, 10))

    task = DigitsDropout()
    torch.manual_seed(1)
    a = train(task, 0.05, steps=40, seed=3)
    torch.manual_seed(2)  # dropout masks must not come from here
    b = train(task, 0.05, steps=40, seed=3)
    np.testing.assert_array_equal(a.losses, b.losses)
    assert a.val_loss == b.val_loss


def test_tasks_do_not_touch_global_rngs():
    np.random.seed(123)
    torch.manual_seed(123)
    expected_np, expected_torch = np.random.rand(), torch.rand(())
    np.random.seed(123)
    torch.manual_seed(123)
    task = type(get_task("mnist1d"))()  # a fresh instance generates its data again
    _ = task.data
    train(get_task("digits"), 0.05, steps=20)
    assert np.random.rand() == expected_np
    assert torch.rand(()) == expected_torch


def test_epoch_log_reports_lr_and_losses(digits):
    logs = []
    train(digits, 0.1, on_epoch=logs.append)
    assert len(logs) == int(np.ceil(digits.steps / digits.steps_per_epoch))
    assert logs[0].lr == pytest.approx(0.1) and logs[-1].lr == pytest.approx(0.001)  # step decay
    assert logs[-1].val_loss < logs[0].val_loss


@pytest.mark.parametrize("call, message", [
    (lambda: get_task("cifar"), r"The 'name' parameter of get_task\(\) must be one of 'charlm', "
                                r"'diabetes', 'digits', 'mnist1d'\. Got 'cifar' instead\."),
    (lambda: train(get_task("digits"), -0.1),
     r"The 'lr' parameter of train\(\) must be a float > 0"),
    (lambda: train(get_task("digits"), 0.1, steps=0),
     r"The 'steps' parameter of train\(\) must be an int >= 1"),
    (lambda: train(get_task("digits"), 0.1, seed=-1),
     r"The 'seed' parameter of train\(\) must be an int >= 0"),
    (lambda: train(get_task("digits"), float("nan")),
     r"The 'lr' parameter of train\(\) must be a float > 0\. Got nan"),
])
def test_bad_task_input(call, message):
    with pytest.raises(InvalidParameterError, match=message):
        call()
