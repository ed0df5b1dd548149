"""Shared fixtures: the built-in tasks load their data once per test session."""

import pytest
import torch

from lrtune.tasks import get_task

# Tiny models run fastest on one thread, and two threads per process oversubscribe a 2-core CI
# machine the moment a test starts a worker process.
torch.set_num_threads(1)


# The environment of every Ray cluster a test starts: no usage stats, no token, and workers at
# the normal priority. Ray starts its workers at nice 15, and beside two CPU-bound processes
# they got 4% of a core: the docs' Ray Tune example took 184 s instead of 12 s (20 s at nice 0).
RAY_TEST_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
                "RAY_worker_niceness": "0"}


@pytest.fixture(scope="session")
def ray_env():
    """Sets RAY_TEST_ENV in this process (clusters it starts inherit it) for the session and
    returns it, for the environment of the processes a test starts."""
    with pytest.MonkeyPatch.context() as env:
        for key, value in RAY_TEST_ENV.items():
            env.setenv(key, value)
        yield dict(RAY_TEST_ENV)


@pytest.fixture(scope="session")
def digits():
    return get_task("digits")


@pytest.fixture(scope="session")
def diabetes():
    return get_task("diabetes")


@pytest.fixture(scope="session")
def memorise(digits):
    """``memorise(report) -> held-out loss``: Adam at 0.003 for 600 steps on digits with shuffled
    labels, ``report(step, loss)`` after each step. The training loss falls (the labels are
    memorised) while the held-out loss, on the true labels, ends above the untrained model's."""
    from lrtune.tasks._base import TensorLoader

    def run(report) -> float:
        model = digits.make_model(0)
        opt = torch.optim.Adam(model.parameters(), lr=0.003)
        labels = digits.data.y_train[torch.randperm(len(digits.data.y_train),
                                                    generator=torch.Generator().manual_seed(0))]
        step = 0
        while step < 600:
            for x, y in TensorLoader(digits.data.x_train, labels, 64, seed=step):
                loss = digits.loss(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                report(step, loss)
                step += 1
        return digits.evaluate(model)
    return run


@pytest.fixture(autouse=True)
def _restore_torch_rng():
    """Tests must not leak global RNG state into each other."""
    state = torch.random.get_rng_state()
    yield
    torch.random.set_rng_state(state)
