"""One recipe of the development suite: a declarative row (data, model, optimizer, schedule, run)
and the :class:`~lrtune.tasks.Task` it trains as, so every lrtune tool and benchmark runs it."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

import lrtune
from lrtune.optimizers import OPTIMIZERS
from lrtune.schedules import Schedule, make_schedule
from lrtune.tasks import Split, Task, _base, _data, _training

PROJECT_PACKAGES = ("lrtune", "benchmarks")  # whose code a recipe's cache key covers

LOSSES: Mapping[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "cross_entropy": nn.functional.cross_entropy,
    "mse": lambda output, target: nn.functional.mse_loss(output.reshape(target.shape), target),
    # sequence models: (batch, time, vocab) logits against (batch, time) next tokens
    "token_cross_entropy": lambda logits, target: nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), target.reshape(-1)),
}


@dataclass(frozen=True)
class Recipe:
    """A training recipe: ``data()`` builds the split, ``model(split)`` a fresh network.

    ``schedule`` is a name in :data:`lrtune.schedules.SCHEDULES` with ``schedule_args``;
    ``milestones`` there are fractions of the run, so the shape survives any run length.
    ``lr_range`` is where the reference grid and the searches look (default: the family's range).
    """

    name: str
    regime: str  # what limits the best LR, for the reader of RESULTS.md
    data: Callable[[], Split]
    model: Callable[[Split], nn.Module]
    optimizer: str
    schedule: str
    steps: int
    batch_size: int
    schedule_args: tuple[tuple[str, Any], ...] = ()
    warmup: float = 0.0
    weight_decay: float = 0.0
    grad_clip: float | None = None
    loss: str = "cross_entropy"
    lr_range: tuple[float, float] | None = field(default=None)

    @property
    def search_range(self) -> tuple[float, float]:
        return self.lr_range or OPTIMIZERS[self.optimizer].lr_range

    def task(self) -> RecipeTask:
        return RecipeTask(self)

    def version(self) -> str:
        """lrtune's version and a hash of this row and of the code that builds and trains it."""
        digest = hashlib.sha256(repr(self._fields()).encode())
        modules = {_base, _data, _training, *_code_of(Recipe)}
        for builder in (self.data, self.model):
            modules |= _code_of(getattr(builder, "func", builder))  # a partial: its function
        for path in sorted({inspect.getfile(m) for m in modules}):
            digest.update(Path(path).read_bytes())
        return f"{lrtune.__version__}+{digest.hexdigest()[:12]}"

    def _fields(self) -> tuple:
        """The row with its builders named rather than as objects (whose repr has an address)."""
        return tuple(_name_of(getattr(self, f)) if callable(getattr(self, f)) else getattr(self, f)
                     for f in self.__dataclass_fields__)


def _code_of(obj: object) -> set[ModuleType]:
    """The module defining ``obj`` and the project modules it takes names from (one level)."""
    home = inspect.getmodule(obj)
    found = {home}
    for value in vars(home).values():
        module = value if inspect.ismodule(value) else inspect.getmodule(value)
        if module is not None and module.__name__.partition(".")[0] in PROJECT_PACKAGES:
            found.add(module)
    return found


def _name_of(fn: Callable) -> str:
    inner = getattr(fn, "func", fn)  # functools.partial: its function and bound arguments
    bound = (getattr(fn, "args", ()), sorted(getattr(fn, "keywords", {}).items()))
    return f"{inner.__module__}.{inner.__qualname__}{bound}"


class RecipeTask(Task):
    """A :class:`Recipe` as a task: what ``lrtune.tasks.train`` and the benchmarks run."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self.name = recipe.name
        self.description = recipe.regime
        self.steps = recipe.steps
        self.batch_size = recipe.batch_size
        self.optimizer = recipe.optimizer
        self.weight_decay = recipe.weight_decay
        self.grad_clip = recipe.grad_clip

    def load_data(self) -> Split:
        return self.recipe.data()

    def build_model(self) -> nn.Module:
        return self.recipe.model(self.data)

    def schedule(self, steps: int) -> Schedule:
        params = dict(self.recipe.schedule_args)
        if "milestones" in params:
            params["milestones"] = tuple(max(1, round(f * steps)) for f in params["milestones"])
        return make_schedule(self.recipe.schedule, steps, warmup=self.recipe.warmup, **params)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return LOSSES[self.recipe.loss](output, target)
