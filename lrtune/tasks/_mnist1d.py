"""A 1-D CNN on MNIST-1D (generated locally by the mnist1d package), Adam + cosine decay."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lrtune.schedules import Cosine, Schedule
from lrtune.tasks._base import Task
from lrtune.tasks._data import Split


class Mnist1dCNN(Task):
    name = "mnist1d"
    description = "1-D CNN on MNIST-1D (generated locally), Adam, cosine decay"
    steps = 500
    batch_size = 128
    optimizer = "adam"

    def load_data(self) -> Split:
        try:
            from mnist1d.data import get_dataset_args, make_dataset
        except ImportError as err:  # optional dependency
            raise ImportError(
                "The 'mnist1d' task needs the mnist1d package: pip install 'lrtune[tasks]'"
            ) from err
        state = np.random.get_state()  # make_dataset reseeds NumPy's global RNG; give it back
        try:
            data = make_dataset(get_dataset_args())
        finally:
            np.random.set_state(state)
        as_x = lambda a: torch.as_tensor(a, dtype=torch.float32).unsqueeze(1)  # noqa: E731
        as_y = lambda a: torch.as_tensor(a, dtype=torch.long)  # noqa: E731
        return Split(as_x(data["x"]), as_y(data["y"]), as_x(data["x_test"]), as_y(data["y_test"]))

    def build_model(self) -> nn.Module:
        return nn.Sequential(
            nn.Conv1d(1, 32, 5, padding=2), nn.ReLU(),
            nn.Conv1d(32, 32, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv1d(32, 32, 5, stride=2, padding=2), nn.ReLU(),
            nn.Flatten(), nn.Linear(32 * 10, 10),
        )

    def schedule(self, steps: int) -> Schedule:
        return Cosine(total_steps=steps)
