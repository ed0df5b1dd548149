"""Tabular recipes' data (scikit-learn's shipped and generated sets) and models (MLP, linear)."""

from __future__ import annotations

import functools

import torch
from torch import nn

from lrtune.tasks import Split
from lrtune.tasks._digits import standardised_split

VAL_FRACTION = 0.3


@functools.cache
def classification(name: str, label_noise: float = 0.0) -> Split:
    """A shipped (``load_<name>``) or generated (``make_<name>``) classification set.

    ``label_noise`` replaces that share of the *training* labels by random classes (validation
    stays clean), so the best LR is set by how much of the noise a run memorises.
    """
    from sklearn import datasets

    if name == "moons":
        x, y = datasets.make_moons(n_samples=1000, noise=0.3, random_state=0)
    elif name == "classification":
        x, y = datasets.make_classification(n_samples=6000, n_features=20, n_informative=8,
                                            n_classes=4, flip_y=0.05, random_state=0)
    else:
        x, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    split = standardised_split(x, y, VAL_FRACTION, torch.long)
    if label_noise == 0.0:
        return split
    generator = torch.Generator().manual_seed(1)
    flip = torch.rand(len(split.y_train), generator=generator) < label_noise
    noisy = torch.randint(int(split.y_train.max()) + 1, split.y_train.shape, generator=generator)
    return Split(split.x_train, torch.where(flip, noisy, split.y_train), split.x_val, split.y_val)


@functools.cache
def regression(name: str) -> Split:
    """A regression set with standardised targets: ``diabetes`` (shipped) or a generated one."""
    from sklearn import datasets

    if name == "diabetes":
        x, y = datasets.load_diabetes(return_X_y=True)
    elif name == "friedman1":
        x, y = datasets.make_friedman1(n_samples=1500, noise=1.0, random_state=0)
    else:  # "linear": many weak features and noise, where a linear model is the right one
        x, y = datasets.make_regression(n_samples=600, n_features=40, n_informative=10,
                                        noise=20.0, random_state=0)
    split = standardised_split(x, y, VAL_FRACTION, torch.float32)
    mean, std = split.y_train.mean(), split.y_train.std()
    return Split(split.x_train, (split.y_train - mean) / std,
                 split.x_val, (split.y_val - mean) / std)


def outputs(split: Split) -> int:
    """Number of model outputs: the classes of an integer target, else one regression output."""
    return int(split.y_train.max()) + 1 if split.y_train.dtype == torch.long else 1


def mlp(split: Split, width: int = 64, depth: int = 2, dropout: float = 0.0,
        batch_norm: bool = False) -> nn.Module:
    layers: list[nn.Module] = []
    size = split.x_train.shape[1]
    for _ in range(depth):
        layers += [nn.Linear(size, width), *([nn.BatchNorm1d(width)] if batch_norm else []),
                   nn.ReLU(), *([nn.Dropout(dropout)] if dropout else [])]
        size = width
    return nn.Sequential(*layers, nn.Linear(size, outputs(split)))


def linear(split: Split) -> nn.Module:
    return nn.Linear(split.x_train.shape[1], outputs(split))
