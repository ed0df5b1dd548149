"""Image recipes: scikit-learn's 8x8 digits as one-channel images, small 2-D CNNs."""

from __future__ import annotations

import functools

from torch import nn

from lrtune.tasks import Split
from benchmarks.recipes._tabular import classification


@functools.cache
def digit_images() -> Split:
    flat = classification("digits")
    as_image = lambda x: x.reshape(-1, 1, 8, 8)  # noqa: E731
    return Split(as_image(flat.x_train), flat.y_train, as_image(flat.x_val), flat.y_val)


def cnn2d(split: Split, norm: str = "batch", width: int = 16) -> nn.Module:
    """Two 3x3 convolutions (the second strided) with BatchNorm or GroupNorm, pooled, linear."""
    def normed(channels: int) -> nn.Module:
        return nn.BatchNorm2d(channels) if norm == "batch" else nn.GroupNorm(4, channels)

    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), normed(width), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), normed(2 * width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(8 * width, 10),
    )
