"""Ray Tune: lrtune's ``auto`` as the search algorithm of a ``Tuner``, on a local Ray cluster
started here, reaches the answer ``lrtune.tune`` reaches with the same seed, trial for trial.

(Not ``test_ray.py``: tests/study has that module name, and test folders are not packages.)"""

import math

import pytest
import torch

import lrtune
from lrtune.records import TrialState
from lrtune.tasks import objective as task_objective
from lrtune.tasks import task_space

ray = pytest.importorskip("ray", reason='Ray is not installed: pip install "lrtune[ray]"')
from ray import tune  # noqa: E402

from lrtune.integrations.ray import LrtuneSearcher  # noqa: E402

pytestmark = pytest.mark.ray  # in a process of its own (see the marker)


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
