"""``find()``: the LR range test itself: validate, snapshot, sweep, restore, analyse."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from numbers import Integral
from typing import Any

import numpy as np
import torch
from torch import nn

from lrtune._validation import check_float, check_int, fail
from lrtune.exceptions import InvalidParameterError
from lrtune.finder._analysis import (
    START_POINTS, Analysis, analyse, divergence_onset, rise_onset,
)
from lrtune.finder._plan import PROBE_BATCHES, coarse_lrs, fine_lrs, least_iterations
from lrtune.finder._result import FinderResult, Pass
from lrtune.finder._state import capture
from lrtune.finder._stepper import Batches, DataExhausted, Stepper, base_lrs
from lrtune.schedules import Schedule

OWNER = "find()"


def find(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Iterable[Any],
    loss_fn: Callable[[Any, Any], torch.Tensor] | None = None,
    *,
    step_fn: Callable[[Any], torch.Tensor] | None = None,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_iter: int = 150,
    accumulation_steps: int = 1,
    grad_clip: float | None = None,
    scaler: torch.amp.GradScaler | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    schedule: Schedule | None = None,
    probe_batches: int = PROBE_BATCHES,
    seed: int = 0,
) -> FinderResult:
    """Run an LR range test and suggest the LR to train with; everything is restored afterwards.

    ``num_iter`` is the budget of optimizer steps. A coarse sweep from ``start_lr`` to ``end_lr``
    finds where the loss blows up; then fine passes, each from the state you passed in, sweep at
    a fixed rate from well below that edge until they blow up, as many as the budget pays for
    (see :mod:`lrtune.finder._plan`). The suggestion is read from their mean curve, so a larger
    budget narrows its band but does not move it. A fine pass records, after each step, the
    loss of ``probe_batches`` fixed batches drawn once from ``data`` (no gradient, the same
    dropout masks each time), not the noisy loss of the batch it trained on: each probe costs a
    forward pass per step (``0`` reads the training batches' losses instead, at no extra cost).
    Every param group is scaled by one common factor, so their ratios are kept; reported LRs are
    the first group's.

    Each step draws ``accumulation_steps`` batches from ``data`` (re-iterated when it runs out;
    pass a re-iterable loader, as a one-shot iterator is consumed for good) and computes the loss
    either as ``loss_fn(model(inputs), targets)`` for ``(inputs, targets,
    ...)`` batches (moved to the model's device), or as ``step_fn(batch)`` for anything else
    (dict batches, models that compute their own loss, autocast inside the closure). With a
    ``scaler`` (``torch.amp.GradScaler``) losses are scaled, steps the scaler skips are not
    counted, and ``grad_clip`` clips the unscaled gradient norm.

    Pass the ``schedule`` you will train with: a decaying schedule (or warm-up) lets the peak LR
    sit higher than a constant one (see :mod:`lrtune.finder._analysis` for the rule and the
    evidence). ``scheduler`` is only saved and restored, never stepped. ``seed`` seeds the
    global RNGs (Python's, NumPy's, torch's) for the test's own training steps and drives the
    bootstrap behind the uncertainty band: dropout's masks and any random augmentation in your
    ``step_fn`` are the seed's, so the same inputs and seed give the same result whatever your
    program drew before, and your RNG streams are put back afterwards.

    Afterwards the weights, buffers, gradients, train/eval modes, optimizer, scheduler, scaler,
    Python/NumPy/torch(/CUDA) RNGs and the loader's shuffling generator are exactly as before,
    also when an error is raised. Bad input raises :class:`InvalidParameterError` before anything
    is touched.
    """
    _validate(model, optimizer, data, loss_fn, step_fn, start_lr, end_lr, num_iter,
              accumulation_steps, grad_clip, scaler, scheduler, schedule, probe_batches, seed)
    if step_fn is not None:
        compute_loss = step_fn
    else:
        assert loss_fn is not None  # _validate: exactly one of loss_fn and step_fn
        compute_loss = _supervised(model, loss_fn)
    num_iter, seed = int(num_iter), int(seed)  # NumPy integers pass the checks too
    snapshot = capture(model, optimizer, scheduler=scheduler, scaler=scaler, loader=data)
    try:
        _seed_rngs(seed)
        model.train()
        stepper = Stepper(optimizer, Batches(data), compute_loss,
                          accumulation_steps=accumulation_steps, grad_clip=grad_clip, scaler=scaler)
        with torch.enable_grad():  # the test trains, also when called under torch.no_grad()
            passes, exhausted = _passes(stepper, snapshot.rewind, start_lr, end_lr, num_iter,
                                        probe_batches)
    finally:
        snapshot.restore()
    probed = len(stepper.probe) if len(passes) > 1 else 0  # no fine pass: nothing read on them
    lrs, curve, reading = read_passes(passes, schedule, momentum=momentum_of(optimizer), seed=seed,
                                      probe=probed > 0)
    return FinderResult(
        lrs=lrs, losses=curve, passes=tuple(passes), smoothed=reading.smoothed,
        slope=reading.slope, usable=reading.usable, suggestion=reading.suggestion,
        band=reading.band, min_lr=reading.min_lr, knee_lr=reading.knee_lr,
        diverged_lr=reading.diverged_lr,
        schedule_factor=reading.schedule_factor, verdict=reading.verdict,
        steps=sum(len(p.losses) for p in passes), probe_batches=probed,
        stop_reason="data exhausted" if exhausted else "completed",
    )


def _seed_rngs(seed: int) -> None:
    """Seed every global RNG for the test's steps (the snapshot puts the caller's back): dropout
    drew from whatever the caller's program had drawn before, so a test of a dropout model gave
    another coarse sweep in each process that ran other work first."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also every CUDA device's


def read_passes(
    passes: Sequence[Pass], schedule: Schedule | None, *, momentum: float = 0.0, seed: int = 0,
    probe: bool = False,
) -> tuple[np.ndarray, np.ndarray, Analysis]:
    """The curve the passes read (its LRs and mean losses) and its analysis: the fine passes'
    (``probe``: read on probe batches), or the coarse sweep's where there is no fine pass."""
    coarse, fine = passes[0], passes[1:]
    floor = float(np.median(coarse.losses[:START_POINTS]))  # the untrained model's loss
    read = fine if fine else (coarse,)
    lrs = max(read, key=lambda p: len(p.lrs)).lrs  # past the longest pass the mean is the floor
    reading = analyse(lrs, [p.losses for p in read], schedule, floor=floor, momentum=momentum,
                      seed=seed, probe=probe and bool(fine))
    return lrs, reading.curve, reading


def _passes(stepper: Stepper, rewind: Callable[[], None], start_lr: float, end_lr: float,
            num_iter: int, probe_batches: int) -> tuple[list[Pass], bool]:
    """The coarse sweep, then as many whole fine passes as ``num_iter`` pays for (see
    :mod:`lrtune.finder._plan`), each from the snapshot and read on the probe batches; and
    whether the data ran out."""
    coarse = _sweep(stepper, coarse_lrs(start_lr, end_lr))
    if not coarse.losses.size:
        served = stepper.batches.served
        if served:  # fewer than one optimizer step accumulates
            raise fail("data", OWNER, f"an iterable of at least {stepper.accumulation_steps} "
                       "batches (one optimizer step accumulates accumulation_steps of them)",
                       f"{served} batch{'es' if served > 1 else ''}")
        raise fail("data", OWNER, "a non-empty iterable of batches", "an empty one")
    passes, left = [coarse], num_iter - len(coarse.losses)
    exhausted = coarse.stop_reason == "data exhausted"
    onset = divergence_onset(coarse.losses)
    if onset is not None and onset < START_POINTS:  # blew up at once: nothing to refine
        return passes, exhausted
    harm = [i for i in (rise_onset(coarse.losses), onset) if i is not None]
    edge = float(coarse.lrs[min(min(harm), len(coarse.lrs) - 1)]) if harm else end_lr
    lrs = fine_lrs(edge, start_lr, end_lr)
    stepper.probe = _draw(stepper.batches, probe_batches)
    while left >= len(lrs) and not exhausted:
        rewind()
        fine = _sweep(stepper, lrs)
        exhausted = fine.stop_reason == "data exhausted"
        if fine.losses.size:  # a one-shot iterator may run out before a pass's first step
            passes.append(fine)
        left -= len(fine.losses)
    return passes, exhausted


def _draw(batches: Batches, count: int) -> list[Any]:
    """The next ``count`` batches, or as many as a one-shot iterator has left."""
    drawn: list[Any] = []
    for _ in range(count):
        try:
            drawn.append(next(batches))
        except DataExhausted:
            break
    return drawn


def _sweep(stepper: Stepper, lrs: np.ndarray) -> Pass:
    """Step through ``lrs`` until the end, the divergence onset, or the end of the data."""
    losses: list[float] = []
    reason = "completed"
    for lr in lrs:
        stepper.set_lr(float(lr))
        try:
            losses.append(stepper.step())
        except DataExhausted:
            reason = "data exhausted"
            break
        if (not math.isfinite(losses[-1])
                or divergence_onset(np.asarray(losses), probe=bool(stepper.probe)) is not None):
            reason = "diverged"
            break
    return Pass(lrs[: len(losses)], np.asarray(losses, dtype=float), reason)


def momentum_of(optimizer: torch.optim.Optimizer) -> float:
    """The heavy-ball coefficient of the first param group (SGD's and RMSprop's ``momentum``;
    Adam's ``betas`` average the gradient but its step stays about ``lr``, so they count as 0)."""
    momentum = optimizer.param_groups[0].get("momentum", 0.0)
    return float(momentum) if isinstance(momentum, (int, float)) and 0 <= momentum < 1 else 0.0


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
    schedule: Any, probe_batches: Any, seed: Any,
) -> None:
    """Check every argument before anything is touched."""
    if not isinstance(model, nn.Module) or next(model.parameters(), None) is None:
        raise fail("model", OWNER, "a torch.nn.Module with parameters", model)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise fail("optimizer", OWNER, "a torch.optim.Optimizer", optimizer)
    try:
        first = base_lrs(optimizer)[0]
    except (KeyError, TypeError, ValueError):  # no 'lr', or lr=None (Adafactor's relative step)
        raise fail("optimizer", OWNER, "an optimizer whose param groups each have a numeric "
                   "'lr' (the sweep sets it)",
                   f"lr={[g.get('lr', 'missing') for g in optimizer.param_groups]!r}") from None
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
    if torch.is_inference_mode_enabled():
        raise InvalidParameterError("find() trains the model, which torch.inference_mode() "
                                    "forbids: call it outside that block.")
    check_sweep(start_lr, end_lr, num_iter, probe_batches, seed, OWNER)
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


def check_sweep(start_lr: Any, end_lr: Any, num_iter: Any, probe_batches: Any, seed: Any,
                owner: str) -> dict[str, Any]:
    """The sweep's own arguments, checked by find()'s rules for ``owner`` (find() or a callback
    that runs it), as find() takes them."""
    start_lr = check_float(start_lr, "start_lr", owner, low=0.0)
    end_lr = check_float(end_lr, "end_lr", owner, low=0.0)
    if end_lr <= start_lr:
        raise fail("end_lr", owner, f"a float > start_lr ({start_lr:g})", end_lr)
    least = least_iterations(start_lr, end_lr)
    if isinstance(num_iter, bool) or not isinstance(num_iter, Integral) or num_iter < least:
        decades = math.log10(end_lr) - math.log10(start_lr)
        raise fail("num_iter", owner, f"an int >= {least} (the coarse sweep over {decades:.1f} "
                   "decades of LR and one fine pass)", num_iter)
    return {"start_lr": start_lr, "end_lr": end_lr, "num_iter": int(num_iter),
            "probe_batches": check_int(probe_batches, "probe_batches", owner, minimum=0),
            "seed": check_int(seed, "seed", owner, minimum=0, maximum=2**32 - 1)}  # NumPy's
