"""``find()``: the LR range test itself: validate, snapshot, sweep, restore, analyse."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from lrtune._validation import check_float, check_int, fail
from lrtune.exceptions import InvalidParameterError
from lrtune.finder._analysis import analyse, divergence_onset
from lrtune.finder._result import FinderResult
from lrtune.finder._state import capture
from lrtune.finder._stepper import Batches, Stepper, base_lrs
from lrtune.schedules import Schedule

OWNER = "find()"
MIN_ITER = 20
MIN_PER_DECADE = 3  # the smoothing needs a few points per bandwidth


def find(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Iterable[Any],
    loss_fn: Callable[[Any, Any], torch.Tensor] | None = None,
    *,
    step_fn: Callable[[Any], torch.Tensor] | None = None,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_iter: int = 100,
    accumulation_steps: int = 1,
    grad_clip: float | None = None,
    scaler: torch.amp.GradScaler | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    schedule: Schedule | None = None,
    seed: int = 0,
) -> FinderResult:
    """Run an LR range test and suggest the LR to train with; everything is restored afterwards.

    The LR grows exponentially from ``start_lr`` to ``end_lr`` over ``num_iter`` optimizer steps
    and the sweep stops as soon as the loss diverges. Every param group is scaled by one common
    factor, so their ratios are kept; reported LRs are the first group's.

    Each step draws ``accumulation_steps`` batches from ``data`` (re-iterated when it runs out;
    pass a re-iterable loader, as a one-shot iterator is consumed for good) and computes the loss
    either as ``loss_fn(model(inputs), targets)`` for ``(inputs, targets,
    ...)`` batches (moved to the model's device), or as ``step_fn(batch)`` for anything else
    (dict batches, models that compute their own loss, autocast inside the closure). With a
    ``scaler`` (``torch.amp.GradScaler``) losses are scaled, steps the scaler skips are not
    counted, and ``grad_clip`` clips the unscaled gradient norm.

    Pass the ``schedule`` you will train with: a decaying schedule (or warm-up) lets the peak LR
    sit higher than a constant one (see :mod:`lrtune.finder._analysis` for the rule and the
    evidence). ``scheduler`` is only saved and restored, never stepped. ``seed`` drives the
    bootstrap behind the uncertainty band (no RNG of yours is used).

    Afterwards the weights, buffers, gradients, train/eval modes, optimizer, scheduler, scaler,
    Python/NumPy/torch(/CUDA) RNGs and the loader's shuffling generator are exactly as before,
    also when an error is raised. Bad input raises :class:`InvalidParameterError` before anything
    is touched.
    """
    lrs = _validate(model, optimizer, data, loss_fn, step_fn, start_lr, end_lr, num_iter,
                    accumulation_steps, grad_clip, scaler, scheduler, schedule, seed)
    if step_fn is not None:
        compute_loss = step_fn
    else:
        assert loss_fn is not None  # _validate: exactly one of loss_fn and step_fn
        compute_loss = _supervised(model, loss_fn)
    snapshot = capture(model, optimizer, scheduler=scheduler, scaler=scaler, loader=data)
    try:
        model.train()
        stepper = Stepper(optimizer, Batches(data), compute_loss,
                          accumulation_steps=accumulation_steps, grad_clip=grad_clip, scaler=scaler)
        losses, stop_reason = _sweep(stepper, lrs)
    finally:
        snapshot.restore()
    losses_array = np.asarray(losses, dtype=float)
    swept = lrs[: len(losses)]
    reading = analyse(swept, losses_array, schedule, seed=seed)
    return FinderResult(
        lrs=swept, losses=losses_array, smoothed=reading.smoothed, slope=reading.slope,
        usable=reading.usable, suggestion=reading.suggestion, band=reading.band,
        min_lr=reading.min_lr, diverged_lr=reading.diverged_lr,
        schedule_factor=reading.schedule_factor, verdict=reading.verdict, steps=len(losses),
        stop_reason=stop_reason,
    )


def _sweep(stepper: Stepper, lrs: np.ndarray) -> tuple[list[float], str]:
    """Step through ``lrs`` until the end, the divergence onset, or the end of the data."""
    losses: list[float] = []
    for lr in lrs:
        stepper.set_lr(float(lr))
        try:
            losses.append(stepper.step())
        except StopIteration:
            if not losses:
                raise fail("data", OWNER, "a non-empty iterable of batches",
                           "an empty one") from None
            return losses, "data exhausted"
        if not math.isfinite(losses[-1]) or divergence_onset(np.asarray(losses)) is not None:
            return losses, "diverged"
    return losses, "completed"


def _supervised(
    model: nn.Module, loss_fn: Callable[[Any, Any], torch.Tensor]
) -> Callable[[Any], torch.Tensor]:
    device = next(model.parameters()).device

    def compute(batch: Any) -> torch.Tensor:
        if not isinstance(batch, Sequence) or isinstance(batch, (str, bytes)) or len(batch) < 2:
            raise fail("data", OWNER,
                       "an iterable of (inputs, targets, ...) batches when loss_fn is given "
                       "(pass step_fn=... for other batches)", type(batch).__name__ + " batches")
        inputs, targets = (_to(v, device) for v in batch[:2])
        return loss_fn(model(inputs), targets)

    return compute


def _to(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, (list, tuple)):
        return type(value)(_to(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    return value


def _length(data: Any) -> int | None:
    try:
        return len(data)
    except TypeError:  # no __len__, or an iterable-style DataLoader that cannot tell
        return None


def _validate(
    model: Any, optimizer: Any, data: Any, loss_fn: Any, step_fn: Any, start_lr: Any, end_lr: Any,
    num_iter: Any, accumulation_steps: Any, grad_clip: Any, scaler: Any, scheduler: Any,
    schedule: Any, seed: Any,
) -> np.ndarray:
    """Check every argument before anything is touched; returns the LRs to sweep."""
    if not isinstance(model, nn.Module) or next(model.parameters(), None) is None:
        raise fail("model", OWNER, "a torch.nn.Module with parameters", model)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise fail("optimizer", OWNER, "a torch.optim.Optimizer", optimizer)
    first = base_lrs(optimizer)[0]
    if not first > 0:
        raise fail("optimizer", OWNER, "an optimizer whose first param group has a base lr > 0 "
                   "('initial_lr' if a scheduler set one, else 'lr'; the other groups keep their "
                   "ratio to it)", f"lr={first!r}")
    if not hasattr(data, "__iter__"):
        raise fail("data", OWNER, "an iterable of batches (a DataLoader or similar)", data)
    if _length(data) == 0:
        raise fail("data", OWNER, "a non-empty iterable of batches",
                   f"an empty {type(data).__name__}")
    if (loss_fn is None) == (step_fn is None):
        raise InvalidParameterError(
            "find() needs exactly one of 'loss_fn' (for (inputs, targets) batches) and 'step_fn' "
            f"(batch -> loss). Got loss_fn={loss_fn!r} and step_fn={step_fn!r} instead."
        )
    for name, fn in (("loss_fn", loss_fn), ("step_fn", step_fn)):
        if fn is not None and not callable(fn):
            raise fail(name, OWNER, "callable", fn)
    start_lr = check_float(start_lr, "start_lr", OWNER, low=0.0)
    end_lr = check_float(end_lr, "end_lr", OWNER, low=0.0)
    if end_lr <= start_lr:
        raise fail("end_lr", OWNER, f"a float > start_lr ({start_lr:g})", end_lr)
    decades = math.log10(end_lr / start_lr)
    least = max(MIN_ITER, math.ceil(MIN_PER_DECADE * decades) + 1)
    if isinstance(num_iter, bool) or not isinstance(num_iter, int) or num_iter < least:
        raise fail("num_iter", OWNER, f"an int >= {least} to read a curve over {decades:.1f} "
                   f"decades of LR (>= {MIN_ITER}, and {MIN_PER_DECADE} per decade)", num_iter)
    check_int(accumulation_steps, "accumulation_steps", OWNER)
    if grad_clip is not None:
        check_float(grad_clip, "grad_clip", OWNER, low=0.0)
    if scaler is not None and not all(hasattr(scaler, a)
                                      for a in ("scale", "step", "update", "unscale_")):
        raise fail("scaler", OWNER, "a torch.amp.GradScaler or None", scaler)
    if scheduler is not None and not all(hasattr(scheduler, a)
                                         for a in ("state_dict", "load_state_dict")):
        raise fail("scheduler", OWNER,
                   "an LR scheduler with state_dict()/load_state_dict() or None", scheduler)
    if schedule is not None and not isinstance(schedule, Schedule):
        raise fail("schedule", OWNER, "an lrtune Schedule (e.g. make_schedule('cosine', steps)) "
                   "or None", schedule)
    check_int(seed, "seed", OWNER, minimum=0)
    return np.geomspace(start_lr, end_lr, num_iter)
