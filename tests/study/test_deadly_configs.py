"""A configuration that kills its worker each time it trains (the kernel's out-of-memory killer,
a crash in native code) is tried again a few times, then counts as failed: the study goes on
without it instead of repeating it until the workers' restarts run out."""

import dataclasses
import math
import os
import signal

import pytest

import lrtune
from lrtune.records import WORKER_DIED, TrialRecord, TrialState
from lrtune.strategies import Context
from lrtune.strategies._base import DEATHS_TO_FAIL

SPACE = lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd")


def _kills_its_worker_above_half(trial):
    for step in range(trial.steps):
        if step == 20 and trial.lr > 0.5:
            os.kill(os.getpid(), signal.SIGKILL)  # what the out-of-memory killer does
        trial.report((math.log10(trial.lr) + 2) ** 2 + 1 / (step + 1), step)
    return (math.log10(trial.lr) + 2) ** 2


@pytest.mark.slow  # each death restarts a worker process
def test_a_configuration_that_kills_its_worker_fails_after_three_deaths(tmp_path):
    study = lrtune.tune(_kills_its_worker_above_half, steps=32, budget=6.0, strategy="grid",
                        space=SPACE, storage=f"sqlite:///{tmp_path / 'study.db'}",
                        study_name="deadly", workers=2, seed=0)
    deadly = [t for t in study.trials if t.lr > 0.5]
    assert [t.state for t in deadly] == [TrialState.LOST] * DEATHS_TO_FAIL
    assert all(t.error.startswith(WORKER_DIED) for t in deadly)
    # what each trained before it died, from the progress it wrote: its first step at once,
    # step 15 too where the 16th step's check came a second later (a slow machine)
    assert all(t.steps_done in (1, 16) and t.history[-1][0] == t.steps_done - 1 for t in deadly)
    # the grid went on past it to every other point
    others = [t for t in study.trials if t.lr <= 0.5]
    assert len(others) >= 5 and all(t.state is TrialState.COMPLETED for t in others)
    assert study.best.lr < 0.5


def _lost(number, lr, error):
    return TrialRecord(number, SPACE.config(lr), 10, TrialState.LOST, error=error)


def test_only_deaths_of_the_same_configuration_count():
    died = f"{WORKER_DIED} (h, pid 1) died or went silent before the trial finished"
    trials = (
        *(_lost(i, 0.6, died) for i in range(DEATHS_TO_FAIL - 1)),
        _lost(10, 0.6, "lost: interrupted (KeyboardInterrupt)"),  # a Ctrl-C: not the config's
        _lost(11, 0.3, died),  # another configuration
        dataclasses.replace(_lost(12, 0.6, died), steps=20),  # the same one, at another length
    )
    context = Context(SPACE, full_steps=10, budget=4.0, seed=0, trials=trials)
    assert context.live == ()  # each is proposed again
    last = _lost(13, 0.6, died)
    context = Context(SPACE, full_steps=10, budget=4.0, seed=0, trials=(*trials, last))
    assert [(t.number, t.state) for t in context.live] == [(13, TrialState.FAILED)]
    assert context.live[0].error.startswith(
        f"its worker died each of the {DEATHS_TO_FAIL} times it trained this configuration")
