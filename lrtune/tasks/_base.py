"""The :class:`Task` base class: a small, real training recipe with its data, model and defaults."""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable

import torch
from torch import nn

from lrtune.schedules import Schedule
from lrtune.tasks._data import Split, TensorLoader


class Task(abc.ABC):
    """A built-in training recipe: data, model, loss, and the optimizer and schedule it is known by.

    Subclasses set the class attributes and implement :meth:`load_data`, :meth:`build_model` and
    :meth:`schedule`. Data is loaded once per process; models are built from a seed.
    """

    name: str
    description: str
    steps: int  # one full training run
    batch_size: int
    optimizer: str  # family in lrtune.optimizers
    weight_decay: float = 0.0
    grad_clip: float | None = None

    @abc.abstractmethod
    def load_data(self) -> Split:
        """Build the data set (deterministic; no download)."""

    @abc.abstractmethod
    def build_model(self) -> nn.Module:
        """A freshly initialised model (call under a seeded RNG)."""

    @abc.abstractmethod
    def schedule(self, steps: int) -> Schedule:
        """The recipe's LR schedule laid out over ``steps`` steps."""

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(output, target)

    def forward_loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Loss of ``model`` on one batch; tasks whose output needs reshaping override this."""
        return self.loss(model(x), y)

    # -- shared machinery ------------------------------------------------------------------------
    @functools.cached_property
    def data(self) -> Split:
        return self.load_data()

    def make_model(self, seed: int) -> nn.Module:
        """The model initialised from ``seed`` (torch's global RNG is left as it was)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.build_model()

    def train_loader(self, seed: int) -> TensorLoader:
        return TensorLoader(self.data.x_train, self.data.y_train, self.batch_size, seed=seed)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.data.x_train) // self.batch_size

    def step_fn(
        self, model: nn.Module
    ) -> Callable[[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
        """A ``batch -> loss`` closure, the form the range test and user loops accept."""
        return lambda batch: self.forward_loss(model, *batch)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batch_size: int = 1024) -> float:
        """Mean validation loss of ``model``."""
        was_training = model.training
        model.eval()
        x, y = self.data.x_val, self.data.y_val
        total = 0.0
        for i in range(0, len(x), batch_size):
            xb, yb = x[i:i + batch_size], y[i:i + batch_size]
            total += float(self.forward_loss(model, xb, yb)) * len(xb)
        model.train(was_training)
        return total / len(x)

    def __repr__(self) -> str:
        return f"<Task {self.name!r}: {self.description}>"
