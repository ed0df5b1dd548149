"""One optimizer step of the user's training at a chosen LR: accumulation, AMP scaler, clipping.

The range test and the probes both drive training through :class:`Stepper`, so gradient
accumulation, GradScaler skips and clipping are counted the same way everywhere: one *step* is
one optimizer update that really happened (``accumulation_steps`` micro-batches, not skipped by
the scaler).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn

from lrtune.exceptions import InvalidParameterError

MAX_SKIPS = 30  # consecutive GradScaler skips before the gradients count as non-finite for good


class Batches:
    """Endless batches from a re-iterable loader; starts a new pass when one ends."""

    def __init__(self, data: Iterable[Any]) -> None:
        self.data = data
        self.iterator: Iterator[Any] = iter(data)
        self.exhausted = False  # a new pass yielded nothing (a one-shot iterator ran out)

    def __next__(self) -> Any:
        try:
            return next(self.iterator)
        except StopIteration:
            self.iterator = iter(self.data)
            try:
                return next(self.iterator)
            except StopIteration:
                self.exhausted = True
                raise


class Stepper:
    """Trains ``model`` one optimizer step at a time at an LR set by the caller.

    All param groups follow one common factor: group ``i`` gets ``lr * ratios[i]``, where the
    ratios are the groups' LRs relative to the first group when the stepper was built.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        batches: Batches,
        compute_loss: Callable[[Any], torch.Tensor],
        *,
        accumulation_steps: int = 1,
        grad_clip: float | None = None,
        scaler: Any = None,
    ) -> None:
        self.model, self.optimizer, self.batches = model, optimizer, batches
        self.compute_loss = compute_loss
        self.accumulation_steps, self.grad_clip, self.scaler = accumulation_steps, grad_clip, scaler
        base = float(optimizer.param_groups[0]["lr"])
        self.ratios = [float(g["lr"]) / base for g in optimizer.param_groups]
        self.params = [p for g in optimizer.param_groups for p in g["params"]]

    def set_lr(self, lr: float) -> None:
        for group, ratio in zip(self.optimizer.param_groups, self.ratios):
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr * ratio)
            else:
                group["lr"] = lr * ratio

    def step(self) -> float:
        """One optimizer update; returns its mean micro-batch loss.

        Scaler-skipped updates are retried on the next batches (they did not train), up to
        :data:`MAX_SKIPS` in a row; a non-finite loss is returned at once, without a step.
        Raises ``StopIteration`` when the data has run out.
        """
        for _ in range(MAX_SKIPS):
            loss = self._accumulate()
            if not math.isfinite(loss):
                self.optimizer.zero_grad(set_to_none=True)
                return loss
            if self._update():
                return loss
        return math.nan  # the scaler never found finite gradients: the run has blown up

    def _accumulate(self) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for _ in range(self.accumulation_steps):
            loss = self.compute_loss(next(self.batches))
            check_loss(loss)
            scaled = loss / self.accumulation_steps
            if not torch.isfinite(scaled.detach()):
                return float(loss.detach())
            (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            total += float(loss.detach())
        return total / self.accumulation_steps

    def _update(self) -> bool:
        """Clip and step; whether the update happened (a GradScaler may skip it)."""
        scaler = self.scaler
        if self.grad_clip is not None:
            if scaler is not None:
                scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        if scaler is None:
            self.optimizer.step()
            return True
        before = scaler.get_scale()
        scaler.step(self.optimizer)
        scaler.update()
        return not scaler.get_scale() < before  # the scale backs off exactly when a step is skipped


def check_loss(loss: Any) -> None:
    """The closure must return a scalar tensor that autograd can differentiate."""
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise InvalidParameterError(
            "The loss returned by the loss function or step_fn of find() must be a scalar tensor "
            f"(one element). Got {shape} instead: reduce it, e.g. with .mean()."
        )
    if not loss.requires_grad:
        raise InvalidParameterError(
            "The loss returned by the loss function or step_fn of find() must require grad "
            "(be computed from the model's parameters). Got a tensor without a graph instead."
        )
