"""The textbook recipe: an MLP on scikit-learn's 8x8 digits, SGD + momentum, step decay."""

from __future__ import annotations

import torch
from torch import nn

from lrtune.schedules import MultiStep, Schedule
from lrtune.tasks._base import Task
from lrtune.tasks._data import Split


def standardised_split(x, y, val_fraction: float, y_dtype: torch.dtype) -> Split:
    """A fixed shuffled split, inputs standardised with the training statistics."""
    x = torch.as_tensor(x, dtype=torch.float32)
    y = torch.as_tensor(y, dtype=y_dtype)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    n_val = int(len(x) * val_fraction)
    x_train, x_val = x[n_val:], x[:n_val]
    mean, std = x_train.mean(0), x_train.std(0)
    std[std < 1e-3] = 1.0  # constant columns (blank pixels) stay as they are
    return Split((x_train - mean) / std, y[n_val:], (x_val - mean) / std, y[:n_val])


class DigitsMLP(Task):
    name = "digits"
    description = "MLP on scikit-learn digits, SGD + momentum, step decay"
    steps = 600
    batch_size = 64
    optimizer = "sgd"
    weight_decay = 5e-4

    def load_data(self) -> Split:
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        return standardised_split(x, y, 0.25, torch.long)

    def build_model(self) -> nn.Module:
        return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))

    def schedule(self, steps: int) -> Schedule:
        return MultiStep(total_steps=steps, milestones=(steps // 2, (3 * steps) // 4), gamma=0.1)
