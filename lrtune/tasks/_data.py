"""In-memory data sets and a light batch loader for the built-in tasks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Split:
    """A task's data: training and validation tensors (inputs and targets)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor


class TensorLoader:
    """Shuffled mini-batches over in-memory tensors; iterating once is one epoch.

    Behaves like a ``DataLoader`` (``len``, ``iter``, yields ``(x, y)``) without its per-batch
    collation cost, which dominates on models this small. The shuffle order comes from its own
    generator, so it never touches torch's global RNG.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int = 0) -> None:
        self.x, self.y, self.batch_size = x, y, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.x) // self.batch_size  # full batches only: equal-sized steps

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self.x), generator=self.generator)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield self.x[idx], self.y[idx]
