"""Whether a study's values read like a score to maximise (lrtune minimises)."""

import pytest

from lrtune.diagnostics._direction import reads_as_score
from lrtune.records import TrialRecord, TrialState


def ended(pairs, state=TrialState.COMPLETED):
    """Trials whose last training loss and value are the given pairs."""
    return [TrialRecord(i, {"lr": 10.0 ** -i}, 64, state, value, 64,
                        history=((0, 2.3), (63, loss)))
            for i, (loss, value) in enumerate(pairs)]


@pytest.mark.parametrize("pairs, score", [
    ([(0.2, 0.95), (0.5, 0.9), (1.0, 0.7), (2.2, 0.5)], True),  # accuracy: up as the loss falls
    ([(0.2, 0.05), (0.5, 0.1), (1.0, 0.3), (2.2, 0.5)], False),  # a loss: down with it
    ([(0.2, 0.95), (0.5, 0.9), (1.0, 0.7)], False),  # three trials say too little
    ([(0.2, 0.9), (0.5, 0.9), (1.0, 0.9), (2.2, 0.9)], False),  # the LR changed nothing
])
def test_values_that_rise_as_the_training_loss_falls_read_as_a_score(pairs, score):
    assert reads_as_score(ended(pairs)) is score


def test_only_completed_trials_count():
    pairs = [(0.2, 0.95), (0.5, 0.9), (1.0, 0.7), (2.2, 0.5)]
    assert not reads_as_score(ended(pairs[:3]) + ended(pairs[3:], TrialState.PRUNED))
