"""Snapshot and exact restore of everything a range test touches.

A range test trains for real, so afterwards the model, optimizer, scheduler, GradScaler, RNGs and
the data loader's shuffling generator must be put back bit for bit: a run started after
``find()`` has to be the run the user would have had without it. Copies live on the CPU so a
large model's snapshot does not compete with training for accelerator memory.

What is restored and how:

- parameters and *all* buffers (non-persistent ones too, which ``state_dict`` skips) are copied
  back in place, so the tensors the optimizer holds stay the same objects, and so is every
  tensor the optimizer steps that is not in the model (``SGD(list(m.parameters()) + [t])``);
  ``.grad`` is put back (``None`` stays ``None``); every module's ``training`` flag is put back;
- optimizer, scheduler and GradScaler through their own ``state_dict``/``load_state_dict``
  (the scheduler before the optimizer, whose param groups carry the exact learning rates); a
  tensor in a param group (a tensor ``lr``, on the device a fused or capturable optimizer
  wants) gets its value back in place, as the same object, not the CPU copy ``load_state_dict``
  would leave there;
- Python ``random``, NumPy's global RNG, torch's CPU RNG and every CUDA device's RNG (when CUDA
  is available);
- the ``torch.Generator`` a loader shuffles with (``loader.generator``,
  ``loader.sampler.generator``), since iterating the loader during the test advances it.

Not restored: what the user's own code changes on the side, such as an EMA of the weights
updated by an optimizer step hook (``register_step_post_hook``) or a module outside the model.
That state is the user's: take a copy before ``find()`` and put it back after, or register the
hook after the range test.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn


def to_cpu(value: Any) -> Any:
    """A deep copy of ``value`` with every tensor cloned to the CPU (containers rebuilt)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_cpu(v) for v in value)
    return value


@dataclass
class Snapshot:
    """CPU copies of the training state, taken by :func:`capture` and put back by
    :meth:`restore`."""

    tensors: list[tuple[torch.Tensor, torch.Tensor]]  # (live tensor, CPU copy)
    grads: list[tuple[torch.Tensor, torch.Tensor | None]]
    modes: list[tuple[nn.Module, bool]]
    optimizer: torch.optim.Optimizer
    group_tensors: list[tuple[int, str, torch.Tensor]]  # (group, key, the live tensor)
    optimizer_state: dict[str, Any]
    scheduler: Any
    scheduler_state: dict[str, Any] | None
    scaler: Any
    scaler_state: dict[str, Any] | None
    generators: list[tuple[torch.Generator, torch.Tensor]]
    python_rng: Any
    numpy_rng: Any
    torch_rng: torch.Tensor
    cuda_rng: list[torch.Tensor] | None

    @torch.no_grad()
    def rewind(self) -> None:
        """Put the training state back (weights, buffers, optimizer, scaler) for another pass,
        leaving the data stream and the RNGs running, so each pass sees other batches.

        The optimizer gets copies: ``load_state_dict`` keeps the tensors it is given where their
        device and dtype already match, and the next pass's in-place steps would overwrite the
        snapshot.
        """
        for live, saved in self.tensors:
            live.copy_(saved)
        self._load_optimizer(to_cpu(self.optimizer_state))
        if self.scaler is not None:
            self.scaler.load_state_dict(to_cpu(self.scaler_state))

    @torch.no_grad()
    def restore(self) -> None:
        """Put every captured piece of state back exactly as it was."""
        for live, saved in self.tensors:
            live.copy_(saved)
        for param, grad in self.grads:
            param.grad = None if grad is None else grad.to(param.device, copy=True)
        for module, mode in self.modes:
            module.training = mode
        if self.scheduler is not None:
            self.scheduler.load_state_dict(self.scheduler_state)
        self._load_optimizer(self.optimizer_state)
        if self.scaler is not None:
            self.scaler.load_state_dict(self.scaler_state)
        for generator, state in self.generators:
            generator.set_state(state)
        random.setstate(self.python_rng)
        np.random.set_state(self.numpy_rng)
        torch.set_rng_state(self.torch_rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)


    def _load_optimizer(self, state: dict[str, Any]) -> None:
        """``load_state_dict``, then each param-group tensor back as the object it was."""
        self.optimizer.load_state_dict(state)
        groups = self.optimizer.param_groups
        for index, key, live in self.group_tensors:
            live.copy_(groups[index][key])
            groups[index][key] = live


def capture(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    scheduler: Any = None,
    scaler: Any = None,
    loader: Any = None,
) -> Snapshot:
    """Copy the state of a training setup to the CPU (see the module docstring for what is kept)."""
    params = _distinct([*model.parameters(),
                        *(p for group in optimizer.param_groups for p in group["params"])])
    tensors = _distinct([*params, *model.buffers()])
    return Snapshot(
        tensors=[(t, t.detach().to("cpu", copy=True)) for t in tensors],
        grads=[(p, None if p.grad is None else p.grad.detach().to("cpu", copy=True))
               for p in params],
        modes=[(m, m.training) for m in model.modules()],
        optimizer=optimizer,
        group_tensors=[(i, key, value) for i, group in enumerate(optimizer.param_groups)
                       for key, value in group.items()
                       if key != "params" and isinstance(value, torch.Tensor)],
        optimizer_state=to_cpu(optimizer.state_dict()),
        scheduler=scheduler,
        scheduler_state=None if scheduler is None else to_cpu(scheduler.state_dict()),
        scaler=scaler,
        scaler_state=None if scaler is None else to_cpu(scaler.state_dict()),
        generators=[(g, g.get_state()) for g in loader_generators(loader)],
        python_rng=random.getstate(),
        numpy_rng=np.random.get_state(),
        torch_rng=torch.get_rng_state(),
        cuda_rng=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    )


def _distinct(tensors: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    """``tensors`` without repeats (by identity: equal values are different tensors)."""
    return list({id(t): t for t in tensors}.values())


def loader_generators(loader: Any) -> list[torch.Generator]:
    """The distinct ``torch.Generator`` objects a loader (or its sampler) shuffles with."""
    holders: Iterable[Any] = (
        loader,
        getattr(loader, "sampler", None),
        getattr(getattr(loader, "batch_sampler", None), "sampler", None),
    )
    found: list[torch.Generator] = []
    for holder in holders:
        generator = getattr(holder, "generator", None)
        if isinstance(generator, torch.Generator) and all(generator is not g for g in found):
            found.append(generator)
    return found
