"""Studies: persistent, resumable LR searches on Optuna's storage layer, shared by any number
of worker processes on any number of hosts."""

from lrtune.study._storage import StorageError, StudyLostError
from lrtune.study._study import Study
from lrtune.study._timeout import TrialTimeoutError
from lrtune.study._tune import load_study, tune
from lrtune.study._worker import join_study

__all__ = ["StorageError", "Study", "StudyLostError", "TrialTimeoutError", "join_study",
           "load_study", "tune"]
