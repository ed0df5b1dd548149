"""Drive a torch optimizer with a :class:`Schedule`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lrtune._validation import check_int, fail
from lrtune.schedules._base import Schedule

_STATE_KEYS = ("last_epoch", "_step_count", "base_lrs", "schedule")


class ScheduledLR(LRScheduler):
    """A ``torch.optim.lr_scheduler.LRScheduler`` that follows ``schedule``.

    Every param group's lr is set to its initial lr times ``schedule.factor(step)``: one factor
    for all groups, so their ratios are kept. The lr is computed in closed form at every step
    (never by multiplying the previous lr), so it cannot drift and resuming is exact.
    Being a real ``LRScheduler`` lets Lightning, HF Trainer and ``isinstance`` checks accept it.
    """

    def __init__(self, optimizer: Optimizer, schedule: Schedule, last_step: int = -1) -> None:
        owner = "ScheduledLR()"
        if not isinstance(optimizer, Optimizer):
            raise fail("optimizer", owner, "a torch.optim.Optimizer", optimizer)
        if not isinstance(schedule, Schedule):
            raise fail("schedule", owner, "an lrtune Schedule", schedule)
        last_step = check_int(last_step, "last_step", owner, minimum=-1)
        if last_step >= 0 and any("initial_lr" not in g for g in optimizer.param_groups):
            requirement = "-1 unless every param group has an 'initial_lr' (from a checkpoint)"
            raise fail("last_step", owner, requirement, last_step)
        self.schedule = schedule
        super().__init__(optimizer, last_step)

    @property
    def last_step(self) -> int:
        """Index of the step whose learning rate is now set (torch calls it ``last_epoch``)."""
        return self.last_epoch

    def get_lr(self) -> list[float | Tensor]:
        """Learning rates for ``last_epoch``: initial lr of each group times one factor.

        ``last_epoch`` is -1 in a member of torch's ``SequentialLR`` whose turn has not come (it
        undoes their first step); like torch's schedulers it then holds the lrs of its first step.
        """
        factor = self.schedule.factor(max(self.last_epoch, 0))
        return [base * factor for base in self.base_lrs]

    _get_closed_form_lr = get_lr  # used by torch's deprecated ``step(epoch)``

    def state_dict(self) -> dict[str, Any]:
        """Plain data: step counters, base lrs and a description of the schedule."""
        return {
            "last_epoch": self.last_epoch,
            "_step_count": self._step_count,
            "base_lrs": [float(b) for b in self.base_lrs],
            "schedule": self.schedule.describe(),
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict`; like torch's schedulers, leave the optimizer's lrs.

        The optimizer's own ``state_dict`` restores its lrs: inside torch's ``SequentialLR`` or
        ``ChainedScheduler`` another scheduler may have set them, and writing ours would clobber
        them. Refuses a state saved for another schedule (a silent mismatch would change the lr
        curve mid-run).
        """
        owner = "ScheduledLR.load_state_dict()"
        if not isinstance(state_dict, Mapping) or any(k not in state_dict for k in _STATE_KEYS):
            requirement = "a dict from ScheduledLR.state_dict() with keys " + ", ".join(
                repr(k) for k in _STATE_KEYS
            )
            raise fail("state_dict", owner, requirement, state_dict)
        saved = state_dict["schedule"]
        if saved != self.schedule.describe():
            requirement = f"the state of a ScheduledLR following {self.schedule!r}"
            raise fail("state_dict", owner, requirement, saved)
        base_lrs = list(state_dict["base_lrs"])
        groups = self.optimizer.param_groups
        if len(base_lrs) != len(groups):
            requirement = f"the state of a ScheduledLR over {len(groups)} param groups"
            raise fail("state_dict", owner, requirement, f"{len(base_lrs)} base lrs")
        self.last_epoch = int(state_dict["last_epoch"])
        self._step_count = int(state_dict["_step_count"])
        self.base_lrs = [float(b) for b in base_lrs]
        # What our last step set, exactly (closed form), typed like each group's lr as torch's are.
        self._last_lr = [
            torch.full_like(g["lr"], float(lr)) if isinstance(g["lr"], Tensor) else lr
            for g, lr in zip(groups, self.get_lr(), strict=True)
        ]
