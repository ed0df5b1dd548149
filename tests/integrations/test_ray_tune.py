"""Ray Tune: lrtune's ``auto`` as the search algorithm of a ``Tuner``, on a local Ray cluster
started here, reaches the answer ``lrtune.tune`` reaches with the same seed, trial for trial,
and stops where it stops (an objective that breaks its contract or always fails).

(Not ``test_ray.py``: tests/study has that module name, and test folders are not packages.)"""

import math
import sys

import pytest
import torch

import lrtune
from lrtune.records import TrialState
from lrtune.tasks import objective as task_objective
from lrtune.tasks import task_space

ray = pytest.importorskip("ray", reason='Ray is not installed: pip install "lrtune[ray]"')
from ray import cloudpickle, tune  # noqa: E402

from lrtune.integrations.ray import LrtuneSearcher  # noqa: E402

pytestmark = pytest.mark.ray  # in a process of its own (see the marker)
# Ray's own cloudpickle sends a Tuner's trainable: the Ray workers get this module's objectives by
# value, as they cannot import a test module
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def local_ray(ray_env):
    """A one-node Ray cluster with two CPUs for this module, stopped at its end."""
    try:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as err:  # noqa: BLE001 - whatever stops Ray here is the skip reason
        pytest.skip(f"Ray cannot start on this machine: {type(err).__name__}: {err}")
    try:
        yield
    finally:
        ray.shutdown()


def _key(record):
    return (record.tag, record.lr, record.steps, record.state, record.value)


@pytest.mark.slow
def test_auto_inside_a_tuner_reaches_the_answer_of_lrtune_tune(local_ray, digits, tmp_path):
    # auto's smallest budget: a scan across the cliff (diverged trials among them) and a final
    # full run, 5 trials in all
    settings = dict(steps=digits.steps, budget=1.25, strategy="auto", space=task_space(digits),
                    seed=0)
    searcher = LrtuneSearcher(**settings)
    # reuse_actors: a new worker process per trial took 124 s of the 120 s limit beside two
    # busy loops, one process for all 38 s
    tuner = tune.Tuner(
        searcher.trainable(task_objective(digits)),
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=-1,
                                    max_concurrent_trials=1, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0))
    grid = tuner.fit()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the Ray worker trains: the same float arithmetic
    try:
        expected = lrtune.tune(task_objective(digits), **settings)
    finally:
        torch.set_num_threads(threads)
    ran = searcher.study.trials
    assert [_key(t) for t in ran] == [_key(t) for t in expected.trials]  # trial for trial
    assert searcher.best.lr == expected.best.lr and searcher.best.value == expected.best.value
    assert searcher.study.spent == pytest.approx(expected.spent) and expected.spent <= 1.25
    # the scan crossed the cliff: some trials diverged, were stopped early and told Tune so
    diverged = [t for t in ran if t.state is TrialState.DIVERGED]
    assert diverged and all(t.steps_done < t.steps for t in diverged)
    losses = sorted(r.metrics["loss"] for r in grid)
    assert len(grid) == len(ran) and math.isinf(losses[-1])
    assert losses[0] == min(t.value for t in ran if t.value is not None)


def test_bad_searcher_settings_fail_at_once():
    with pytest.raises(lrtune.InvalidParameterError,
                       match=r"The 'steps' parameter of LrtuneSearcher\(\) must be an int >= 1\."):
        LrtuneSearcher(steps=0)
    # a budget too small for one trial would end the Tuner at once, without a trial
    with pytest.raises(lrtune.InvalidParameterError,
                       match=r"The 'budget' parameter of LrtuneSearcher\(\) must be at least 1.25 "
                             r"full runs for the 'auto' strategy to run one trial\. Got 1\.0"):
        LrtuneSearcher(steps=10, budget=1.0)
    with pytest.raises(lrtune.InvalidParameterError, match=r"'budget' .* in \(0, 100000\]"):
        LrtuneSearcher(steps=10, budget=1e9)
    with pytest.raises(lrtune.InvalidParameterError,
                       match=r"The 'space' parameter of LrtuneSearcher\(\) must be an "
                             r"lrtune\.Space"):
        LrtuneSearcher(steps=10, space={"lr": (1e-4, 1e-1)})
    with pytest.raises(lrtune.InvalidParameterError, match=r"'metric' .* other than lrtune_state"):
        LrtuneSearcher(steps=10, metric="lrtune_state")


def test_a_trial_tune_ends_before_it_reports_is_lost_not_failed():
    # Tune ends a pending trial (it stops) with on_trial_complete(trial_id) alone: recorded as
    # "the Ray Tune trial raised an error", a failure of its config
    searcher = LrtuneSearcher(steps=10, budget=2.0, strategy="grid")
    searcher.suggest("pending")
    searcher.on_trial_complete("pending")
    (trial,) = searcher.study.trials
    assert trial.state is TrialState.LOST and trial.error.startswith("lost: Ray Tune ended it")


def _fit(searcher, objective, tmp_path, **tuner):
    """``Tuner.fit`` of ``objective`` driven by ``searcher``: a trial at a time, in one process."""
    return tune.Tuner(
        searcher.trainable(objective),
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=-1,
                                    max_concurrent_trials=1, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0), **tuner).fit()


def _lr_loss(trial):
    """A quick objective: the distance of log10(lr) from -2.5, reported at every step."""
    for step in range(trial.steps):
        trial.report(abs(math.log10(trial.lr) + 2.5) + 1 / (step + 1), step)
    return abs(math.log10(trial.lr) + 2.5) + 1 / trial.steps


def _returns_a_tensor(trial):
    _lr_loss(trial)
    return torch.tensor([1.0, 2.0])  # a loss per sample, not the loss


def _raises(trial):
    raise ValueError("a bug in the objective")


def test_a_param_space_is_refused_before_any_trial(local_ray, tmp_path):
    # its keys reached the objective's trial as parameters the space does not have: every trial
    # failed with a KeyError in its worker
    searcher = LrtuneSearcher(steps=10, budget=1.0, strategy="grid")
    with pytest.raises(lrtune.InvalidParameterError,
                       match=r"The 'param_space' parameter of Tuner\(\) with an LrtuneSearcher "
                             r"must be empty: .* Got \{'batch': 32\} instead\."):
        _fit(searcher, _lr_loss, tmp_path, param_space={"batch": 32})
    assert searcher.study.trials == []


def test_an_objective_that_breaks_its_contract_ends_the_tuner_as_it_ends_tune(local_ray,
                                                                             tmp_path):
    # it went on to the end of the budget, every trial failed as "see its log"
    searcher = LrtuneSearcher(steps=10, budget=3.0, strategy="grid")
    with pytest.raises(lrtune.ObjectiveError, match=r"broke its contract in trial 0: .*tensor"):
        _fit(searcher, _returns_a_tensor, tmp_path)
    (trial,) = searcher.study.trials  # the worker's record, not a generic error
    assert trial.state is TrialState.FAILED and "it returned tensor([1., 2.])" in trial.error
    assert trial.steps_done == 10


def test_an_objective_that_always_fails_ends_the_tuner_where_tune_stops(local_ray, tmp_path):
    settings = dict(steps=20, budget=1.25, strategy="auto", seed=0)  # 4 trials, a decade apart
    searcher = LrtuneSearcher(**settings)
    with pytest.raises(lrtune.ObjectiveFailedError, match=r"failed the same way in all"):
        _fit(searcher, _raises, tmp_path)
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    with pytest.raises(lrtune.ObjectiveFailedError):
        lrtune.tune(_raises, storage=url, study_name="fails", **settings)
    trials = searcher.study.trials  # the same trials as tune's, then the same stop
    assert [t.lr for t in trials] == [t.lr for t in lrtune.load_study("fails", url).trials]
    assert all(t.state is TrialState.FAILED and "a bug in the objective" in t.error
               for t in trials)
