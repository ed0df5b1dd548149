"""One optimizer step of the user's training at a chosen LR: accumulation, AMP scaler, clipping.

One *step* of the range test is one optimizer update that really happened: ``accumulation_steps``
micro-batches, clipped, and not skipped by the GradScaler. Counting steps this way keeps the LR
schedule of the sweep (and its cost) independent of accumulation and of AMP's overflow skips.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch

from lrtune.exceptions import InvalidParameterError

MAX_SKIPS = 30  # consecutive GradScaler skips before the gradients count as non-finite for good
PROBE_SEED = 0  # every probe evaluation draws the same random numbers (dropout's masks)


class DataExhausted(Exception):
    """The data has no batch left: a fresh pass over it yielded nothing."""


class Batches:
    """Endless batches from a re-iterable loader: a new pass starts when one ends.

    :class:`DataExhausted` only when a fresh pass yields nothing (an empty loader, or a one-shot
    iterator that has run out); not ``StopIteration``, which the user's own code may raise (a
    ``next()`` on an empty iterator inside a forward) and which must reach the user as it is.
    """

    def __init__(self, data: Iterable[Any]) -> None:
        self.data = data
        self.iterator: Iterator[Any] = iter(data)
        self.served = 0  # batches handed out so far

    def __next__(self) -> Any:
        try:
            batch = next(self.iterator)
        except StopIteration:
            self.iterator = iter(self.data)
            try:
                batch = next(self.iterator)
            except StopIteration:
                raise DataExhausted from None
        self.served += 1
        return batch


class Stepper:
    """Trains one optimizer step at a time at an LR set by the caller.

    All param groups follow one common factor: group ``i`` gets ``lr * ratios[i]``, where the
    ratios are the groups' base LRs (see :func:`base_lrs`) relative to the first group's. With
    ``probe`` batches set, a step returns their loss after the update instead of the loss of the
    batches it trained on (see :meth:`probe_loss`).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        batches: Batches,
        compute_loss: Callable[[Any], torch.Tensor],
        *,
        accumulation_steps: int = 1,
        grad_clip: float | None = None,
        scaler: Any = None,
    ) -> None:
        self.optimizer, self.batches = optimizer, batches
        self.compute_loss = compute_loss
        self.accumulation_steps, self.grad_clip, self.scaler = accumulation_steps, grad_clip, scaler
        bases = base_lrs(optimizer)
        self.ratios = [b / bases[0] for b in bases]
        self.params = [p for g in optimizer.param_groups for p in g["params"]]
        self.probe: list[Any] = []

    def set_lr(self, lr: float) -> None:
        for group, ratio in zip(self.optimizer.param_groups, self.ratios, strict=False):
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr * ratio)
            else:
                group["lr"] = lr * ratio

    def step(self) -> float:
        """One optimizer update; returns its mean micro-batch loss (the probe's after it, when
        :attr:`probe` holds batches).

        Scaler-skipped updates are retried on the next batches (they did not train), up to
        :data:`MAX_SKIPS` in a row; a non-finite loss is returned at once, without a step.
        Raises :class:`DataExhausted` when the data has run out.
        """
        for _ in range(MAX_SKIPS):
            loss = self._accumulate()
            if not math.isfinite(loss):
                self.optimizer.zero_grad(set_to_none=True)
                return loss
            if self._update():
                return self.probe_loss() if self.probe else loss
        return math.nan  # the scaler never found finite gradients: the run has blown up

    def probe_loss(self) -> float:
        """The mean loss of the :attr:`probe` batches at the current weights, without gradients.

        The same batches with the same random draws every time (the global RNGs are forked and
        seeded, so dropout masks repeat and the caller's streams are untouched): the value moves
        only with the weights, not with which batch a step drew or which units dropout hid.
        """
        device = self.params[0].device
        with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda"
                                                    else []):
            torch.manual_seed(PROBE_SEED)
            losses = torch.stack([self.compute_loss(batch) for batch in self.probe])
        # one read-back a step, not one per batch; summed in float64 on the host, as before
        return float(losses.to("cpu", torch.float64).sum()) / len(self.probe)

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


def base_lrs(optimizer: torch.optim.Optimizer) -> list[float]:
    """Each group's base LR: ``initial_lr`` where a scheduler set one (a warm-up may have the
    current LR at 0), else its ``lr``."""
    return [float(g.get("initial_lr", g["lr"])) for g in optimizer.param_groups]


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
