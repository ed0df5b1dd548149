"""The per-step run monitor: collects losses cheaply and calls divergence as soon as it shows.

Values may be given as tensors on any device. They are kept as tensors and read back to the
host in one batch every ``check_every`` updates, so a CUDA run pays one synchronisation per
``check_every`` steps instead of one per step.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from lrtune._validation import check_float, check_int
from lrtune.diagnostics._classify import (
    Thresholds, classify, divergence_finding, divergence_threshold,
)
from lrtune.diagnostics._verdict import Diagnosis, Finding

Number = float | int | torch.Tensor


class RunMonitor:
    """Watches one training run and diagnoses it.

    Feed it ``update(step, loss, grad_norm=None)`` as often as you like (every step is fine);
    read :attr:`diverged` to stop a run that blew up, and :meth:`diagnose` for the verdict.
    """

    def __init__(self, *, check_every: int = 16, thresholds: Thresholds | None = None) -> None:
        self.check_every = check_int(check_every, "check_every", "RunMonitor()")
        self.thresholds = thresholds or Thresholds()
        check_float(self.thresholds.explode_factor, "explode_factor", "Thresholds()", low=0.0)
        self._pending: list[tuple[int, Any, Any]] = []
        self._steps: list[int] = []
        self._losses: list[float] = []
        self._grad_steps: list[int] = []
        self._grads: list[float] = []
        self._initial: float | None = None
        self._best = math.inf
        self._above = 0  # consecutive values above the divergence limit
        self.divergence_: Finding | None = None

    # -- collecting --------------------------------------------------------------------------
    def update(self, step: int, loss: Number, grad_norm: Number | None = None) -> None:
        """Record the loss (and optionally the gradient norm) of ``step``; no host sync here."""
        if isinstance(loss, torch.Tensor):
            loss = loss.detach()
        if isinstance(grad_norm, torch.Tensor):
            grad_norm = grad_norm.detach()
        self._pending.append((step, loss, grad_norm))
        if len(self._pending) >= self.check_every:
            self.flush()

    def flush(self) -> None:
        """Read pending values back to the host (one sync) and check for divergence."""
        if not self._pending:
            return
        steps = [p[0] for p in self._pending]
        losses = _to_floats([p[1] for p in self._pending])
        grads = [(s, g) for s, _, g in self._pending if g is not None]
        self._pending.clear()
        for step, loss in zip(steps, losses):
            self._watch(step, loss)
        self._steps += steps
        self._losses += losses
        if grads:
            self._grad_steps += [s for s, _ in grads]
            self._grads += _to_floats([g for _, g in grads])

    def _watch(self, step: int, loss: float) -> None:
        if self.divergence_ is not None:
            return
        if not math.isfinite(loss):
            self.divergence_ = divergence_finding(step, loss)
            return
        if self._initial is None:
            self._initial = loss
        self._best = min(self._best, loss)
        limit = float(divergence_threshold(self._initial, self._best, self.thresholds.explode_factor))
        self._above = self._above + 1 if loss > limit else 0
        if self._above >= 3:
            self.divergence_ = divergence_finding(step, loss, self._best, limit)

    # -- reading -----------------------------------------------------------------------------
    @property
    def diverged(self) -> bool:
        """Whether the run has diverged, as of the last read-back (at most ``check_every`` steps old)."""
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

    def diagnose(self) -> Diagnosis:
        """Classify the run seen so far."""
        self.flush()
        grads = (np.asarray(self._grad_steps), np.asarray(self._grads)) if self._grads else (None, None)
        diagnosis = classify(np.asarray(self._steps), np.asarray(self._losses), *grads,
                             thresholds=self.thresholds)
        if self.divergence_ is not None and not diagnosis.diverged:  # seen online, keep it
            diagnosis = Diagnosis((self.divergence_, *diagnosis.findings))
        return diagnosis


def _to_floats(values: list[Any]) -> list[float]:
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    if not tensors:
        return [float(v) for v in values]
    if len(tensors) == len(values):  # the common case: one stack, one transfer
        return torch.stack([t.reshape(()).float() for t in values]).cpu().tolist()
    return [float(v) for v in values]
