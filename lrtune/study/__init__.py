"""Studies: persistent, resumable LR searches on Optuna's storage layer."""

from lrtune.study._storage import StorageError
from lrtune.study._study import Study
from lrtune.study._tune import load_study, tune

__all__ = ["StorageError", "Study", "load_study", "tune"]
