"""Shared fixtures: the built-in tasks load their data once per test session."""

import pytest
import torch

from lrtune.tasks import get_task

# Tiny models run fastest on one thread, and two threads per process oversubscribe a 2-core CI
# machine the moment a test starts a worker process.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits():
    return get_task("digits")


@pytest.fixture(scope="session")
def diabetes():
    return get_task("diabetes")


@pytest.fixture(autouse=True)
def _restore_torch_rng():
    """Tests must not leak global RNG state into each other."""
    state = torch.random.get_rng_state()
    yield
    torch.random.set_rng_state(state)
