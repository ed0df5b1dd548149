"""A noisy regression: scikit-learn's diabetes data, an MLP, AdamW at a constant LR.

Few samples and noisy targets: long runs overfit, so the best LR of a full run is lower than a
short run suggests (the horizon effect the search has to handle).
"""

from __future__ import annotations

import torch
from torch import nn

from lrtune.schedules import Constant, Schedule
from lrtune.tasks._base import Task
from lrtune.tasks._data import Split
from lrtune.tasks._digits import standardised_split


class DiabetesRegression(Task):
    name = "diabetes"
    description = "MLP regression on scikit-learn diabetes (noisy), AdamW, constant LR"
    steps = 400
    batch_size = 32
    optimizer = "adamw"
    weight_decay = 1e-2

    def load_data(self) -> Split:
        from sklearn.datasets import load_diabetes

        x, y = load_diabetes(return_X_y=True)
        split = standardised_split(x, y, 0.25, torch.float32)
        mean, std = split.y_train.mean(), split.y_train.std()
        return Split(split.x_train, (split.y_train - mean) / std,
                     split.x_val, (split.y_val - mean) / std)

    def build_model(self) -> nn.Module:
        return nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                             nn.Linear(64, 1), nn.Flatten(0))

    def schedule(self, steps: int) -> Schedule:
        return Constant(total_steps=steps)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(output, target)
