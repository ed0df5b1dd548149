"""Every task a benchmark can run, by name: lrtune's built-in tasks and the suite's recipes."""

from __future__ import annotations

from lrtune.optimizers import OPTIMIZERS
from lrtune.space import Space
from lrtune.tasks import TASKS, Task, get_task, task_space

from benchmarks.recipes import RECIPES, RecipeTask, get_recipe


def benchmark_names() -> list[str]:
    return [*TASKS, *sorted(RECIPES)]


def benchmark_task(name: str) -> Task:
    """The built-in task or suite recipe called ``name``."""
    return get_recipe(name) if name in RECIPES else get_task(name)


def search_range(task: Task) -> tuple[float, float]:
    """The LR range a search of ``task`` covers: the recipe's own, else the family's."""
    return (task.recipe.search_range if isinstance(task, RecipeTask)
            else OPTIMIZERS[task.optimizer].lr_range)


def search_space(task: Task) -> Space:
    """The task's own recipe (optimizer, schedule, weight decay) with the LR over its range."""
    if not isinstance(task, RecipeTask):
        return task_space(task)
    return Space(lr=search_range(task), optimizer=task.optimizer,
                 schedule=task.schedule(task.steps), weight_decay=task.weight_decay)
