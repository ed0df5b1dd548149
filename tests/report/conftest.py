"""Studies to report on: the digits task tuned for real by ``auto`` (budget 2) with a range
test, and a hostile one whose strings carry markup."""

import math

import optuna
import pytest
import torch

import lrtune
from lrtune.finder import find
from lrtune.tasks import get_task, objective, task_space


@pytest.fixture(scope="session")
def digits_study(tmp_path_factory):
    """(study, storage URL): reopen it with ``lrtune.load_study("digits", url)``."""
    url = f"sqlite:///{tmp_path_factory.mktemp('report')}/digits.db"
    task = get_task("digits")
    study = lrtune.tune(objective(task), steps=task.steps, budget=2.0, space=task_space(task),
                        storage=url, study_name="digits", seed=0)
    model = task.make_model(0)
    optimizer = lrtune.build_optimizer("sgd", model.parameters(), 1e-3, task.weight_decay)
    result = find(model, optimizer, task.train_loader(0), torch.nn.functional.cross_entropy,
                  schedule=task.schedule(task.steps), num_iter=100)
    study.store_range_test(result)
    return study, url


EVIL = "<script>alert('x')</script>"


@pytest.fixture
def hostile_study(tmp_path):
    """A study whose name, a parameter name, a phase tag and an error message carry markup."""
    url = f"sqlite:///{tmp_path}/evil.db"

    def objective(trial: lrtune.Trial) -> float:
        if trial.lr > 0.5:
            raise RuntimeError(f"{EVIL} & <img src=x onerror=alert(1)>")
        for step in range(trial.steps):
            trial.report((math.log10(trial.lr) + 2) ** 2 + 1.0 / (step + 1), step)
        return (math.log10(trial.lr) + 2) ** 2

    lrtune.tune(objective, steps=64, budget=2.0, storage=url, study_name=EVIL,
                space=lrtune.Space(lr=(1e-4, 3.0)))
    optuna.load_study(study_name=EVIL, storage=url).add_trial(optuna.trial.create_trial(
        params={"lr": 0.01, EVIL: 1.0},  # a trial written by someone else's code
        distributions={"lr": optuna.distributions.FloatDistribution(1e-4, 3.0, log=True),
                       EVIL: optuna.distributions.FloatDistribution(0.0, 2.0)},
        value=0.5, user_attrs={"lrtune:steps": 64, "lrtune:state": "completed",
                               "lrtune:tag": EVIL, "lrtune:steps_done": 64}))
    return lrtune.load_study(EVIL, url)
