"""Small real training tasks that train in seconds on a CPU: for the demo, tests and benchmarks.

>>> from lrtune.tasks import get_task, train
>>> result = train(get_task("digits"), lr=0.05)
>>> result.val_loss, result.diagnosis.status
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from lrtune._validation import check_choice
from lrtune.tasks._base import Task
from lrtune.tasks._charlm import CharLM
from lrtune.tasks._data import Split, TensorLoader
from lrtune.tasks._diabetes import DiabetesRegression
from lrtune.tasks._digits import DigitsMLP
from lrtune.tasks._mnist1d import Mnist1dCNN
from lrtune.tasks._training import EpochLog, TrainResult, fit, objective, task_space, train

TASKS: Mapping[str, type[Task]] = MappingProxyType(
    {cls.name: cls for cls in (DigitsMLP, Mnist1dCNN, DiabetesRegression, CharLM)}
)
"""Every built-in task class, by name."""

_instances: dict[str, Task] = {}


def get_task(name: str) -> Task:
    """The built-in task ``name`` (one shared instance per process, so its data loads once)."""
    check_choice(name, "name", "get_task()", TASKS)
    if name not in _instances:
        _instances[name] = TASKS[name]()
    return _instances[name]


__all__ = ["TASKS", "EpochLog", "Split", "Task", "TensorLoader", "TrainResult", "fit", "get_task",
           "objective", "task_space", "train"]
