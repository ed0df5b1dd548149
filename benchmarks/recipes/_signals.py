"""Signal recipes: MNIST-1D (generated locally by the mnist1d package), 1-D CNNs and an LSTM."""

from __future__ import annotations

import functools

import torch
from torch import nn

from lrtune.tasks import Split, get_task


@functools.cache
def mnist1d(train_size: int = 4000) -> Split:
    """The built-in task's MNIST-1D split (4000 training, 1000 test signals of length 40)."""
    data = get_task("mnist1d").data
    return Split(data.x_train[:train_size], data.y_train[:train_size], data.x_val, data.y_val)


def cnn1d(split: Split, norm: str = "batch", width: int = 16) -> nn.Module:
    def normed(channels: int) -> nn.Module:
        return nn.BatchNorm1d(channels) if norm == "batch" else nn.GroupNorm(4, channels)

    return nn.Sequential(
        nn.Conv1d(1, width, 5, padding=2), normed(width), nn.ReLU(),
        nn.Conv1d(width, width, 5, stride=2, padding=2), normed(width), nn.ReLU(),
        nn.Conv1d(width, width, 5, stride=2, padding=2), normed(width), nn.ReLU(),
        nn.Flatten(), nn.Linear(width * 10, 10),
    )


class SequenceClassifier(nn.Module):
    """An LSTM over the signal read in chunks of ``chunk`` samples; its last state classifies."""

    def __init__(self, chunk: int = 4, hidden: int = 32) -> None:
        super().__init__()
        self.chunk = chunk
        self.lstm = nn.LSTM(chunk, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sequence = x.reshape(len(x), -1, self.chunk)  # (batch, 1, 40) -> (batch, 10, chunk)
        _, (h, _) = self.lstm(sequence)
        return self.head(h[-1])


def lstm(split: Split) -> nn.Module:
    return SequenceClassifier()
