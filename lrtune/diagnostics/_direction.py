"""Whether a study's values read like a score to maximise: lrtune minimises what an objective
returns, so an objective that returns accuracy ranks the run that learned nothing first.

Seen from the trials alone: where the values rise as the runs' last training losses fall, the
value measures the opposite of the loss: a rank correlation of :data:`UPSIDE_DOWN` or below over
four or more completed trials. Measured on a linear classifier under ``auto`` at 2 runs (the
test of ``lrtune tune`` with an accuracy objective): -0.80 over its 7 completed trials returning
accuracy, +0.93 returning 1 - accuracy; the threshold leaves room above the one measured score.
"""

from __future__ import annotations

from collections.abc import Sequence

import scipy.stats

from lrtune.records import TrialRecord, TrialState

MIN_TRIALS = 4
UPSIDE_DOWN = -0.7  # the rank correlation at or below which the values read as a score


def reads_as_score(trials: Sequence[TrialRecord]) -> bool:
    """Whether the completed trials' values rise as their last training loss falls."""
    ended = [(t.history[-1][1], t.score) for t in trials
             if t.state is TrialState.COMPLETED and t.history and t.history[-1][1] is not None]
    if len(ended) < MIN_TRIALS or len({e[0] for e in ended}) < 2 or len({e[1] for e in ended}) < 2:
        return False
    return bool(scipy.stats.spearmanr(*zip(*ended, strict=True)).statistic <= UPSIDE_DOWN)


def score_hint(returned: str, minimised: str) -> str:
    """What to say when :func:`reads_as_score`: ``returned`` names what returned the values
    ("it", "its objective"), ``minimised`` what lrtune minimises ("TARGET's value")."""
    return (f"the lower a run's training loss ended, the more {returned} returned: lrtune "
            f"minimises {minimised}, so if it is a score to maximise (accuracy), return a loss "
            "(1 - accuracy, or the validation loss)")
