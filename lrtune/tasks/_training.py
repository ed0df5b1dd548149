"""Training loops over a built-in task: a plain run at a given LR, and a search objective."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from lrtune._validation import check_float, check_int
from lrtune.diagnostics import Diagnosis, RunMonitor
from lrtune.optimizers import OPTIMIZERS, build_optimizer
from lrtune.schedules import Schedule, ScheduledLR
from lrtune.tasks._base import Task

if TYPE_CHECKING:
    from lrtune.space import Space
    from lrtune.trial import Trial


@dataclass(frozen=True)
class EpochLog:
    """What people print per epoch: the LR in force, the mean training loss and the validation
    loss."""

    epoch: int
    step: int
    lr: float
    train_loss: float
    val_loss: float


@dataclass(frozen=True)
class TrainResult:
    """The outcome of one training run."""

    task: str
    lr: float
    steps: int  # planned
    steps_done: int
    val_loss: float  # inf when the run diverged
    diagnosis: Diagnosis
    losses: np.ndarray = field(repr=False)  # training loss per step
    epochs: tuple[EpochLog, ...] = field(default=(), repr=False)

    @property
    def diverged(self) -> bool:
        return self.diagnosis.diverged


def fit(
    task: Task,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    steps: int,
    seed: int,
    report: Callable[[int, torch.Tensor], bool],
    on_epoch: Callable[[int, int, float, float], None] | None = None,
) -> int:
    """The training loop shared by every run: ``report(step, loss)`` returns True to stop.

    ``on_epoch(epoch, step, lr, mean_train_loss)`` is called after each epoch. Returns the number
    of steps trained. Dropout and other random layers draw from torch's global RNG, seeded here
    with ``seed`` so that a run repeats exactly; the caller's RNG state is restored afterwards.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _fit(task, model, optimizer, scheduler, steps, seed, report, on_epoch)


def _fit(
    task: Task,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    steps: int,
    seed: int,
    report: Callable[[int, torch.Tensor], bool],
    on_epoch: Callable[[int, int, float, float], None] | None,
) -> int:
    loader = task.train_loader(seed)
    step, epoch = 0, 0
    while step < steps:
        epoch_loss, epoch_steps, epoch_lr = torch.zeros(()), 0, optimizer.param_groups[0]["lr"]
        stop = False
        for batch in loader:
            loss = task.forward_loss(model, *batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if task.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), task.grad_clip)
            optimizer.step()
            scheduler.step()
            epoch_loss += loss.detach()
            epoch_steps += 1
            stop = report(step, loss)
            step += 1
            if stop or step >= steps:
                break
        epoch += 1
        if on_epoch is not None:
            on_epoch(epoch, step, epoch_lr, float(epoch_loss) / epoch_steps)
        if stop:
            break
    return step


def train(
    task: Task,
    lr: float,
    *,
    steps: int | None = None,
    seed: int = 0,
    optimizer: str | None = None,
    schedule: Schedule | None = None,
    weight_decay: float | None = None,
    monitor: RunMonitor | None = None,
    on_epoch: Callable[[EpochLog], None] | None = None,
) -> TrainResult:
    """Train ``task`` for ``steps`` steps (default: its full run) at peak learning rate ``lr``.

    The schedule defaults to the task's own recipe laid out over ``steps``; a run that diverges
    stops at once and scores ``inf``.
    """
    check_float(lr, "lr", "train()", low=0.0)
    steps = check_int(steps if steps is not None else task.steps, "steps", "train()")
    check_int(seed, "seed", "train()", minimum=0)
    schedule = schedule if schedule is not None else task.schedule(steps)
    monitor = monitor if monitor is not None else RunMonitor()
    model = task.make_model(seed)
    opt = build_optimizer(optimizer or task.optimizer, model.parameters(), lr,
                          task.weight_decay if weight_decay is None else weight_decay)
    epochs: list[EpochLog] = []

    params = [p for p in model.parameters() if p.requires_grad]

    def report(step: int, loss: torch.Tensor) -> bool:
        # the gradient norm costs a pass over the parameters: sample it at the monitor's rate
        grad_norm = (torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
                     if step % monitor.check_every == 0 else None)
        monitor.update(step, loss, grad_norm)
        return monitor.diverged

    def log_epoch(epoch: int, step: int, epoch_lr: float, train_loss: float) -> None:
        assert on_epoch is not None  # log_epoch is passed to fit only when on_epoch is given
        monitor.flush()
        val = math.inf if monitor.diverged else task.evaluate(model)
        epochs.append(EpochLog(epoch, step, epoch_lr, train_loss, val))
        on_epoch(epochs[-1])

    done = fit(task, model, opt, ScheduledLR(opt, schedule), steps, seed, report,
               log_epoch if on_epoch is not None else None)
    diagnosis = monitor.diagnose()
    val_loss = math.inf if diagnosis.diverged else task.evaluate(model)
    if not math.isfinite(val_loss):
        val_loss = math.inf
    return TrainResult(task.name, lr, steps, done, val_loss, diagnosis, monitor.losses,
                       tuple(epochs))


def objective(
    task: Task,
    seed: int | None = None,
    on_epoch: Callable[[Trial, EpochLog], None] | None = None,
) -> Callable[[Trial], float]:
    """The objective for :func:`lrtune.tune` that trains ``task`` the way the trial asks.

    ``seed`` fixes initialisation and data order (default: the trial's seed); ``on_epoch``, if
    given, receives each epoch's log (the validation loss is then computed every epoch).
    """

    def run(trial: Trial) -> float:
        run_seed = trial.seed if seed is None else seed
        model = task.make_model(run_seed)
        opt = trial.optimizer(model.parameters())

        def log_epoch(epoch: int, step: int, lr: float, train_loss: float) -> None:
            assert on_epoch is not None  # log_epoch is passed to fit only when on_epoch is given
            on_epoch(trial, EpochLog(epoch, step, lr, train_loss, task.evaluate(model)))

        def report(step: int, loss: torch.Tensor) -> bool:
            trial.report(loss, step)  # a diverged trial raises TrialStopped from here
            return False

        fit(task, model, opt, trial.scheduler(opt), trial.steps, run_seed, report,
            log_epoch if on_epoch is not None else None)
        return task.evaluate(model)

    return run


def task_space(task: Task) -> Space:
    """The search space of ``task``'s own recipe: its optimizer and schedule, the LR searched."""
    from lrtune.space import Space

    spec = OPTIMIZERS[task.optimizer]
    return Space(lr=spec.lr_range, optimizer=task.optimizer, schedule=task.schedule(task.steps),
                 weight_decay=task.weight_decay)
