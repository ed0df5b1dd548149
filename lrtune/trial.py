"""What the user's objective receives: the trial's configuration, budget and helpers."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from lrtune._validation import check_int, fail
from lrtune.diagnostics import Diagnosis, RunMonitor
from lrtune.exceptions import LrtuneError
from lrtune.optimizers import build_optimizer
from lrtune.schedules import Schedule, ScheduledLR
from lrtune.space import Space


class TrialStopped(LrtuneError):
    """Raised by :meth:`Trial.report` to end a trial early; the study records why.

    Do not catch it in the objective: let it propagate to the study.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # "diverged" or "pruned"


class Trial:
    """One training run the search asked for.

    Read ``lr``, ``params`` and ``steps`` (how long *this* trial trains), or let the trial build
    the optimizer and the schedule (compressed to ``steps``). Call :meth:`report` with the
    training loss as often as you like (every step, or every k-th): it stops the trial when the
    run diverges or the strategy gives up on it.
    """

    def __init__(
        self,
        number: int,
        params: dict[str, Any],
        steps: int,
        seed: int,
        space: Space,
        *,
        full_steps: int,
        checkpoint: Callable[[Trial], bool] | None = None,
    ) -> None:
        self.number = number
        self.params = dict(params)
        self.steps = steps
        self.seed = seed
        self.full_steps = full_steps
        self._every = _checkpoint_every(steps)
        self.monitor = RunMonitor(check_every=self._every, source="Trial.report()")
        self._space = space
        self._checkpoint = checkpoint
        self._last_step = -1
        self._next_checkpoint = self._every - 1  # the strategy looks once a step reaches it

    @property
    def lr(self) -> float:
        return self.params["lr"]

    @property
    def is_full_length(self) -> bool:
        """Whether this trial trains as long as a full run (e.g. the final run of ``auto``)."""
        return self.steps >= self.full_steps

    @property
    def steps_done(self) -> int:
        return self._last_step + 1

    def optimizer(self, params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
                  **options: Any) -> torch.optim.Optimizer:
        """The optimizer of this trial's family, LR, weight decay (and momentum when searched);
        ``options`` set the family's other keywords (``betas``, ``fused``, ...)."""
        momentum = self.params.get("momentum")
        searched: dict[str, Any] = {} if momentum is None else {"momentum": momentum}
        # what the search decides: overridden here, the trial would train with a value other
        # than the one recorded for it (a param group's own "lr" or "weight_decay" still wins)
        own = sorted({"lr", "weight_decay", *searched} & set(options))
        if own:
            raise fail("options", "Trial.optimizer()", "keywords other than lr, weight_decay "
                       "and a searched momentum (the trial's own: fix or search them in the "
                       "Space, or give a param group its own value)", own)
        return build_optimizer(self.params["optimizer"], params, self.lr,
                               self.params["weight_decay"], **searched, **options)

    def schedule(self) -> Schedule:
        """This trial's LR schedule (a factor of ``lr``), laid out over ``steps``."""
        return self._space.schedule_for(self.params, self.steps)

    def scheduler(self, optimizer: torch.optim.Optimizer) -> ScheduledLR:
        """A torch scheduler applying :meth:`schedule`; call ``step()`` after each optimizer
        step."""
        return ScheduledLR(optimizer, self.schedule())

    def report(self, loss: float | torch.Tensor, step: int | None = None,
               val_loss: float | torch.Tensor | None = None) -> None:
        """Record the training loss at ``step`` (default: the next step; a step may repeat, as
        under gradient accumulation, but never go back), and the held-out loss ``val_loss`` when
        you have one (it lets the verdict see overfitting).

        Report every step or every k-th step, as tensors or floats: values are read back in one
        batch every ``monitor.check_every`` reports (a bad value raises then, naming its step).
        Raises :class:`TrialStopped` when the run has diverged or the strategy prunes it.
        """
        # the per-step path: a few comparisons and a list append (benchmarks/report_overhead.py)
        if step is None:
            step = self._last_step + 1
        elif type(step) is not int or step < 0:
            step = check_int(step, "step", "Trial.report()", minimum=0)
        if step > self._last_step:
            self._last_step = step
        elif step < self._last_step:  # a counter reset each epoch: steps_done would undercount
            raise fail("step", "Trial.report()", f"at least the last step reported "
                       f"({self._last_step}): steps count the whole run, not one epoch", step)
        monitor = self.monitor
        monitor.update(step, loss, None, val_loss)
        if type(loss) is float and not math.isfinite(loss):
            monitor.flush()  # a non-finite host value needs no batching: stop now
        if monitor.divergence_ is not None:
            raise TrialStopped("diverged", str(monitor.divergence_))
        if step >= self._next_checkpoint:  # crossed, not hit: sparse reports reach it too
            self._next_checkpoint = (step + 1) // self._every * self._every + self._every - 1
            if self._checkpoint is not None and self._checkpoint(self):
                raise TrialStopped("pruned", f"pruned by the strategy at step {step}")

    def diagnose(self, value: float | None = None) -> Diagnosis:
        """The verdict on the run reported so far. ``value``, the objective's return value, is
        read as the final held-out loss in the reported loss's units (what the objective
        minimises), so the verdict sees a network that ends no better than untrained."""
        monitor = self.monitor
        if value is not None and math.isfinite(value) and not (
                len(monitor.val_losses) and monitor.val_losses[-1] == value):  # reported already
            monitor.update_validation(self._last_step, value)
        return monitor.diagnose()

    def __repr__(self) -> str:
        return f"<Trial {self.number}: lr={self.lr:.3g}, {self.steps} steps>"


def _checkpoint_every(steps: int) -> int:
    """Read back (and let the strategy look) about 50 times a run, at most every 16 steps."""
    return max(1, min(16, steps // 50))
