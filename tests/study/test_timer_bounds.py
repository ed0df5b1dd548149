"""``heartbeat`` and ``trial_timeout`` are waits on the OS's timers: one past what those hold
(``MAX_SECONDS``) is refused before the study is created, instead of killing the heartbeat
thread or failing every trial with an OverflowError."""

from __future__ import annotations

import re

import pytest

import lrtune
from lrtune.exceptions import InvalidParameterError
from lrtune.study._tune import MAX_SECONDS

SPACE = lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd")


def _trains(trial):
    for step in range(trial.steps):
        trial.report(1.0, step)
    return abs(trial.lr - 0.01)


@pytest.mark.parametrize("name", ["heartbeat", "trial_timeout"])
@pytest.mark.parametrize("value", [1e10, 1e300])
def test_a_wait_past_the_os_timers_is_refused_before_the_study_is_created(tmp_path, name, value):
    db = tmp_path / "s.db"
    with pytest.raises(InvalidParameterError, match=re.escape(
            f"The '{name}' parameter of tune() must be a float in (0, 1e+09]. Got {value!r} "
            "instead.")):
        lrtune.tune(_trains, steps=10, budget=2.0, strategy="random", space=SPACE,
                    storage=f"sqlite:///{db}", study_name="s", **{name: value})
    assert not db.exists()


def test_the_longest_waits_allowed_run_a_study():
    study = lrtune.tune(_trains, steps=10, budget=2.0, strategy="random", space=SPACE,
                        heartbeat=MAX_SECONDS, trial_timeout=MAX_SECONDS)
    assert [t.state.value for t in study.trials] == ["completed", "completed"]
