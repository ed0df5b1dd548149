"""lrtune finds the best learning rate, schedule and optimizer for a PyTorch run, and says what it
saw."""

from lrtune import diagnostics, optimizers, schedules, tasks
from lrtune.diagnostics import Diagnosis, RunMonitor, Status
from lrtune.exceptions import (InvalidParameterError, LrtuneError, LrtuneWarning, ObjectiveError,
                               ObjectiveFailedError)
from lrtune.finder import FinderResult, find
from lrtune.optimizers import OPTIMIZERS, build_optimizer
from lrtune.records import TrialRecord, TrialState
from lrtune.schedules import Schedule, ScheduledLR, make_schedule
from lrtune.space import Space
from lrtune.study import Study, StorageError, load_study, tune
from lrtune.trial import Trial, TrialStopped

__version__ = "0.1.0.dev0"

__all__ = [
    "OPTIMIZERS",
    "Diagnosis",
    "FinderResult",
    "InvalidParameterError",
    "LrtuneError",
    "LrtuneWarning",
    "ObjectiveError",
    "ObjectiveFailedError",
    "RunMonitor",
    "Schedule",
    "ScheduledLR",
    "Space",
    "Status",
    "StorageError",
    "Study",
    "Trial",
    "TrialRecord",
    "TrialState",
    "TrialStopped",
    "build_optimizer",
    "diagnostics",
    "find",
    "load_study",
    "make_schedule",
    "optimizers",
    "schedules",
    "tasks",
    "tune",
]
