"""The per-step run monitor: collects losses cheaply and calls divergence as soon as it shows.

Values may be given as tensors on any device. They are kept as given and read back to the host
every ``check_every`` updates (an accelerator's in one stacked transfer), so a CUDA run pays one
synchronisation per ``check_every`` steps instead of one per step, and a CPU run pays a list
append per step.
A bad value (a string, a tensor of several elements) is therefore reported at the read-back,
naming the step it was given at.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from lrtune._validation import check_float, check_int
from lrtune.diagnostics._classify import Thresholds, classify
from lrtune.diagnostics._divergence import divergence_finding, divergence_threshold, sustained
from lrtune.diagnostics._verdict import Diagnosis, Finding
from lrtune.exceptions import InvalidParameterError

Number = float | int | torch.Tensor


class RunMonitor:
    """Watches one training run and diagnoses it.

    Feed it ``update(step, loss, grad_norm=None, val_loss=None)`` as often as you like (every
    step is fine), and the held-out loss whenever you compute one; read :attr:`diverged` to stop
    a run that blew up, and :meth:`diagnose` for the verdict. ``source`` is the call that errors
    about bad values name (a :class:`~lrtune.trial.Trial` passes ``"Trial.report()"``).
    """

    def __init__(self, *, check_every: int = 16, thresholds: Thresholds | None = None,
                 source: str = "RunMonitor.update()") -> None:
        self.check_every = check_int(check_every, "check_every", "RunMonitor()")
        self.thresholds = thresholds or Thresholds()
        check_float(self.thresholds.explode_factor, "explode_factor", "Thresholds()", low=0.0)
        self.source = source
        self._pending: list[tuple[int, Any]] = []
        self._pending_grads: list[tuple[int, Any]] = []
        self._pending_vals: list[tuple[int, Any]] = []
        self._steps: list[int] = []
        self._losses: list[float] = []
        self._grad_steps: list[int] = []
        self._grads: list[float] = []
        self._val_steps: list[int] = []
        self._vals: list[float] = []
        self._initial: float | None = None
        self._best = np.inf
        self._above = 0  # values in a row above the divergence limit, at the end of the last batch
        self.divergence_: Finding | None = None

    # -- collecting --------------------------------------------------------------------------
    def update(self, step: int, loss: Number, grad_norm: Number | None = None,
               val_loss: Number | None = None) -> None:
        """Record the loss (and optionally the gradient norm, the held-out loss) of ``step``.

        The per-step path: no host sync, no checks here (see the module docstring).
        """
        self._pending.append((step, loss))
        if grad_norm is not None:
            self._pending_grads.append((step, grad_norm))
        if val_loss is not None:
            self._pending_vals.append((step, val_loss))
        if len(self._pending) >= self.check_every:
            self.flush()

    def update_validation(self, step: int, val_loss: Number) -> None:
        """Record a held-out loss measured at ``step`` (e.g. once an epoch)."""
        self._pending_vals.append((step, val_loss))

    def flush(self) -> None:
        """Read pending values back to the host (one sync per series) and check for divergence."""
        if self._pending:
            steps, losses = self._read(self._pending, "loss")
            self._watch(steps, losses)
            self._steps += steps
            self._losses += losses
        if self._pending_grads:
            steps, grads = self._read(self._pending_grads, "grad_norm")
            self._grad_steps += steps
            self._grads += grads
        if self._pending_vals:
            steps, vals = self._read(self._pending_vals, "val_loss")
            self._val_steps += steps
            self._vals += vals

    def _read(self, pending: list[tuple[int, Any]], name: str) -> tuple[list[int], list[float]]:
        steps = [s for s, _ in pending]
        values = [v for _, v in pending]
        pending.clear()
        return steps, _to_floats(steps, values, name, self.source)

    def _watch(self, steps: list[int], losses: list[float]) -> None:
        if self.divergence_ is not None:
            return
        if self._initial is not None and self._above == 0 and math.isfinite(sum(losses)):
            # fast path: the limit is piecewise linear in the best loss with one kink (where the
            # progress made overtakes |first loss|), so between the old and the new best it is
            # lowest at an end or at the kink; a batch below all three cannot diverge
            new_best = min(self._best, min(losses))
            kink = min(max(self._initial - abs(self._initial), new_best), self._best)
            factor = self.thresholds.explode_factor
            lowest = min(divergence_threshold(self._initial, b, factor)
                         for b in (new_best, self._best, kink))
            if max(losses) <= lowest:
                self._best = new_best
                return
        values = np.asarray(losses, dtype=float)
        finite = np.isfinite(values)
        end = len(values) if finite.all() else int(np.argmin(finite))
        head = values[:end]
        if len(head):
            if self._initial is None:
                self._initial = float(head[0])
            best = np.minimum.accumulate(np.concatenate(([self._best], head)))[1:]
            limits = divergence_threshold(self._initial, best, self.thresholds.explode_factor)
            first, self._above = sustained(head > limits, self._above)
            self._best = float(best[-1])
            if first is not None:
                self.divergence_ = divergence_finding(steps[first], float(head[first]),
                                                      float(best[first]), float(limits[first]))
                return
        if end < len(values):
            self.divergence_ = divergence_finding(steps[end], float(values[end]))

    # -- reading -----------------------------------------------------------------------------
    @property
    def diverged(self) -> bool:
        """Whether the run has diverged, as of the last read-back (at most ``check_every`` steps
        old)."""
        return self.divergence_ is not None

    @property
    def steps(self) -> np.ndarray:
        self.flush()
        return np.asarray(self._steps, dtype=np.int64)

    @property
    def losses(self) -> np.ndarray:
        self.flush()
        return np.asarray(self._losses, dtype=float)

    @property
    def grad_norms(self) -> np.ndarray:
        self.flush()
        return np.asarray(self._grads, dtype=float)

    @property
    def val_losses(self) -> np.ndarray:
        self.flush()
        return np.asarray(self._vals, dtype=float)

    def diagnose(self) -> Diagnosis:
        """Classify the run seen so far."""
        self.flush()
        grads = ((np.asarray(self._grad_steps), np.asarray(self._grads)) if self._grads
                 else (None, None))
        vals = (np.asarray(self._val_steps), np.asarray(self._vals)) if self._vals else (None, None)
        diagnosis = classify(np.asarray(self._steps), np.asarray(self._losses), grads[0], grads[1],
                             thresholds=self.thresholds, val_steps=vals[0], val_losses=vals[1])
        if self.divergence_ is not None and not diagnosis.diverged:  # seen online, keep it
            diagnosis = Diagnosis((self.divergence_, *diagnosis.findings))
        return diagnosis


_TEXT = (str, bytes, bytearray)


def _to_floats(steps: list[int], values: list[Any], name: str, source: str) -> list[float]:
    """Host floats of ``values``, with a clear error for a bad one.

    Tensors on an accelerator come back in one stacked transfer (one synchronisation); CPU
    tensors are read one by one, which costs a third of stacking them.
    """
    first = values[0]
    if isinstance(first, torch.Tensor) and not first.is_cpu:
        try:
            with torch.no_grad():
                stacked = torch.stack(values)
        except (RuntimeError, TypeError):  # shapes or devices differ: find the culprit below
            stacked = None
        if stacked is not None and stacked.numel() == len(values):
            return stacked.reshape(-1).float().cpu().tolist()
    try:
        if any(isinstance(v, _TEXT) for v in values):  # float("0.5") works, but is no loss
            raise TypeError
        return [float(v.item()) if isinstance(v, torch.Tensor) else float(v) for v in values]
    except (RuntimeError, TypeError, ValueError):  # a bad value: name its step below
        return [_to_float(step, value, name, source)
                for step, value in zip(steps, values, strict=False)]


def _to_float(step: int, value: Any, name: str, source: str) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() == 1:
            return float(value.detach().reshape(()).float())
        got = f"a tensor of shape {tuple(value.shape)}"
    elif isinstance(value, _TEXT):
        got = repr(value)
    else:
        try:
            return float(value)
        except (TypeError, ValueError):
            got = repr(value)
    raise InvalidParameterError(
        f"The '{name}' parameter of {source} must be a number or a one-element tensor. "
        f"Got {got} at step {step} instead.")
