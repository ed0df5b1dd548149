"""What a user would run instead of lrtune, each as ``(task_name, budget_runs, seed) -> Choice``.

Every peer uses its library's defaults, so the benchmark measures what users get, not what a
tuned peer could do:

- ``optuna-tpe`` / ``optuna-gp``: Optuna's ``TPESampler(seed=seed)`` / ``GPSampler(seed=seed)``
  with default arguments (both sample their first 10 trials at random), ``floor(budget)`` full
  runs, LR log-uniform over the task's search range (``benchmarks.tasks.search_range``: the
  optimizer family's ``OPTIMIZERS[...].lr_range``, or a suite recipe's own). A diverged run
  returns NaN, which Optuna records as a FAIL (what happens to a user's loop whose loss blew up).
  Both draw their startup trials from ``RandomSampler(seed)``, so up to 10 trials they pick the
  same LRs, and so does TPE + Hyperband until its pruner stops a trial.
- ``optuna-tpe-hyperband``: ``TPESampler(seed=seed)`` + ``HyperbandPruner(min_resource=1,
  max_resource=<reports per run>, reduction_factor=3)`` as in Optuna's own Hyperband example.
  Trials train with the task's full-length schedule (truncated, never compressed) and report the
  validation loss about once an epoch (at least 10 times a run); the budget counts the training
  steps actually run, and the trial that would overrun it is cut at the budget (recorded PRUNED).
- ``random-search`` / ``grid-search``: ``floor(budget)`` full runs at log-uniform (NumPy, seeded)
  LRs, or at the centres of ``floor(budget)`` equal log-width cells of the same range;
  ``grid-search-phase`` shifts that grid by a seeded random fraction of a cell.
- ``torch-lr-finder``: torch-lr-finder's exponential range test over the same range (its default
  100 iterations, smoothing and divergence threshold) and its "steepest gradient" suggestion.
- ``lrtune-find``: lrtune's own range test (``lrtune.finder.find``) over the same range, its
  default budget of 150 steps, given the task's schedule and gradient clipping as its API asks.
- ``prodigy`` / ``schedulefree-adamw``: one full run of ``prodigyopt.Prodigy(lr=1.0)`` with the
  task's schedule, and of ``schedulefree.AdamWScheduleFree`` (its default lr and warm-up, no
  schedule); both take the task's weight decay and gradient clipping. They choose no LR: their
  result is their own run.

A range-test suggestion is only a model after a full run at it, so its cost is the test's steps
plus one full run; that run is the scoring's business, not trained here.
Every training run here (the range tests aside) watches for divergence with lrtune's
``RunMonitor``, the rule the reference grid uses, so a run counts as diverged in the same cases
there and here; a diverged run ends at once, which also spares the Hyperband budget.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import optuna
import torch
from torch import nn

from lrtune.diagnostics import RunMonitor
from lrtune.optimizers import build_optimizer
from lrtune.schedules import ScheduledLR
from lrtune.tasks import Task, train

from benchmarks.tasks import benchmark_task, search_range


@dataclass(frozen=True)
class Choice:
    """What one method picked for one task and seed, and what it cost.

    ``lr`` is ``None`` when the method picks no LR: an LR-free optimizer (its own run is its
    result) or a search whose every trial failed. ``val_loss`` is the final validation loss of the
    method's own run at its choice (``inf`` if that run diverged, ``None`` if it trained none).
    """

    method: str
    task: str
    seed: int
    lr: float | None
    val_loss: float | None
    runs_spent: float  # training steps consumed / task.steps, including any final run
    # lrtune's estimate of the full-length best LR and its 68% interval, where it states one
    estimate: float | None = None
    interval: tuple[float, float] | list[float] | None = None


Peer = Callable[[str, float, int], Choice]
PEERS: dict[str, Peer] = {}
"""Every peer method, by name."""


def peer(name: str) -> Callable[[Callable[[Task, float, int], Choice]], Peer]:
    """Register ``fn(task, budget, seed)`` as the peer ``name``, called with a task *name*."""

    def register(fn: Callable[[Task, float, int], Choice]) -> Peer:
        def run(task_name: str, budget_runs: float, seed: int) -> Choice:
            return fn(benchmark_task(task_name), budget_runs, seed)

        run.__doc__ = fn.__doc__
        PEERS[name] = run
        return run

    return register


# -- training ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """The outcome of :func:`run_training`."""

    val_loss: float  # inf when the run diverged; nan when it was stopped before its end
    steps_done: int


def run_training(
    task: Task,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    seed: int,
    *,
    steps: int | None = None,
    scheduler: ScheduledLR | None = None,
    eval_every: int = 0,
    on_eval: Callable[[int, float], bool] | None = None,
) -> Run:
    """Train with any optimizer (lrtune's own loop only builds registry optimizers).

    ``on_eval(index, val_loss)`` sees the validation loss every ``eval_every`` steps and returns
    True to stop the run there (a pruner's decision), in which case ``val_loss`` is nan. Dropout
    draws from torch's global RNG, seeded with ``seed`` as lrtune's own loop does: unseeded, a
    run's result depended on whatever the process ran before it.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _train(task, model, optimizer, seed, task.steps if steps is None else steps,
                      scheduler, eval_every, on_eval)


def _train(
    task: Task, model: nn.Module, optimizer: torch.optim.Optimizer, seed: int, steps: int,
    scheduler: ScheduledLR | None, eval_every: int, on_eval: Callable[[int, float], bool] | None,
) -> Run:
    monitor, loader, step = RunMonitor(), task.train_loader(seed), 0
    _set_mode(optimizer, train=True)
    while step < steps and not monitor.diverged:
        for x, y in loader:
            loss = task.forward_loss(model, x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if task.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), task.grad_clip)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            monitor.update(step, loss)
            step += 1
            if eval_every and on_eval is not None and step % eval_every == 0 and step < steps:
                monitor.flush()
                if monitor.diverged:
                    break
                if on_eval(step // eval_every - 1, _evaluate(task, model, optimizer)):
                    return Run(math.nan, step)
            if step >= steps or monitor.diverged:
                break
    monitor.flush()
    val_loss = math.inf if monitor.diverged else _evaluate(task, model, optimizer)
    return Run(val_loss if math.isfinite(val_loss) else math.inf, step)


def _set_mode(optimizer: torch.optim.Optimizer, *, train: bool) -> None:
    """Schedule-free optimizers keep two weight sequences and must be told which one to expose."""
    switch = getattr(optimizer, "train" if train else "eval", None)
    if callable(switch):
        switch()


def _evaluate(task: Task, model: nn.Module, optimizer: torch.optim.Optimizer) -> float:
    _set_mode(optimizer, train=False)
    try:
        return task.evaluate(model)
    finally:
        _set_mode(optimizer, train=True)


def _lr_range(task: Task) -> tuple[float, float]:
    return search_range(task)


# -- searches over full runs ------------------------------------------------------------------


def _best_of_full_runs(method: str, task: Task, seed: int, lrs: Sequence[float]) -> Choice:
    """Train one full run per LR and keep the best that did not diverge."""
    losses = [train(task, float(lr), seed=seed).val_loss for lr in lrs]
    best = int(np.argmin(losses))
    if not math.isfinite(losses[best]):
        return Choice(method, task.name, seed, None, math.inf, float(len(lrs)))
    return Choice(method, task.name, seed, float(lrs[best]), losses[best], float(len(lrs)))


@peer("random-search")
def random_search(task: Task, budget: float, seed: int) -> Choice:
    """``floor(budget)`` full runs at log-uniform LRs."""
    low, high = np.log(_lr_range(task))
    lrs = np.exp(np.random.default_rng(seed).uniform(low, high, int(budget)))
    return _best_of_full_runs("random-search", task, seed, lrs)


@peer("grid-search")
def grid_search(task: Task, budget: float, seed: int) -> Choice:
    """``floor(budget)`` full runs at the centres of equal log-width cells of the range.

    Centres, not ``geomspace`` end points: the ends of the registry range are a decade beyond
    where the family trains, so a 2-point grid on the ends would waste both runs.
    """
    return _best_of_full_runs("grid-search", task, seed, _grid(task, int(budget), 0.5))


@peer("grid-search-phase")
def grid_search_phase(task: Task, budget: float, seed: int) -> Choice:
    """The same grid shifted by a seeded random fraction of a cell.

    Where a fixed grid's points fall relative to a task's best LR is luck of the range's round
    numbers (the Adam range's cell centre 0.013 sits next to two tasks' best 0.025); a random
    phase per seed measures what grid search gets on average over ranges users might pick.
    """
    phase = float(np.random.default_rng(seed).uniform())
    return _best_of_full_runs("grid-search-phase", task, seed, _grid(task, int(budget), phase))


def _grid(task: Task, n: int, phase: float) -> np.ndarray:
    """``n`` LRs one equal log-width cell apart over the task's range, ``phase`` into each cell."""
    low, high = np.log(_lr_range(task))
    return np.exp(low + (np.arange(n) + phase) / n * (high - low))


def _optuna_full_runs(method: str, sampler: optuna.samplers.BaseSampler, task: Task,
                      budget: float, seed: int) -> Choice:
    """Optuna's usual protocol: ``study.optimize`` with ``floor(budget)`` full-run trials."""
    low, high = _lr_range(task)

    def objective(trial: optuna.Trial) -> float:
        loss = train(task, trial.suggest_float("lr", low, high, log=True), seed=seed).val_loss
        return loss if math.isfinite(loss) else math.nan  # NaN: Optuna records a FAIL

    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=int(budget))
    return _best_trial_choice(method, task, seed, study, float(int(budget)))


def _best_trial_choice(method: str, task: Task, seed: int, study: optuna.Study,
                       runs_spent: float) -> Choice:
    """The best COMPLETE trial; else the best intermediate value of a PRUNED one; else none.

    A FAIL trial's early values are not candidates: it diverged later at that LR.
    """
    states = optuna.trial.TrialState
    complete = study.get_trials(deepcopy=False, states=(states.COMPLETE,))
    if complete:
        best = min(complete, key=lambda t: t.value)
        return Choice(method, task.name, seed, best.params["lr"], best.value, runs_spent)
    pruned = study.get_trials(deepcopy=False, states=(states.PRUNED,))
    reported = [(v, t.params["lr"]) for t in pruned for v in t.intermediate_values.values()
                if math.isfinite(v)]
    if reported:
        value, lr = min(reported)
        return Choice(method, task.name, seed, lr, value, runs_spent)
    return Choice(method, task.name, seed, None, math.inf, runs_spent)


@peer("optuna-tpe")
def optuna_tpe(task: Task, budget: float, seed: int) -> Choice:
    """Optuna's default sampler; random for its first 10 trials."""
    return _optuna_full_runs("optuna-tpe", optuna.samplers.TPESampler(seed=seed), task, budget,
                             seed)


@peer("optuna-gp")
def optuna_gp(task: Task, budget: float, seed: int) -> Choice:
    """Optuna's Gaussian-process sampler; random for its first 10 trials."""
    return _optuna_full_runs("optuna-gp", optuna.samplers.GPSampler(seed=seed), task, budget,
                             seed)


@peer("optuna-tpe-hyperband")
def optuna_tpe_hyperband(task: Task, budget: float, seed: int) -> Choice:
    """TPE + Hyperband on truncated full-schedule runs until ``budget`` runs' steps are spent."""
    every = max(1, min(task.steps_per_epoch, task.steps // 10))
    pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=task.steps // every,
                                            reduction_factor=3)
    # Hyperband puts a trial in a bracket by a hash of the study's name: a random name (Optuna's
    # default) made the pruning, and so the choice, differ run to run
    study = optuna.create_study(study_name=f"{task.name}-{seed}", pruner=pruner,
                                sampler=optuna.samplers.TPESampler(seed=seed))
    low, high = _lr_range(task)
    budget_steps, spent = round(budget * task.steps), 0
    while spent < budget_steps:
        trial = study.ask()
        run = _hyperband_trial(task, trial, trial.suggest_float("lr", low, high, log=True), seed,
                            every, min(task.steps, budget_steps - spent))
        spent += run.steps_done
        _tell(study, trial, run, task.steps)
    return _best_trial_choice("optuna-tpe-hyperband", task, seed, study, spent / task.steps)


def _hyperband_trial(task: Task, trial: optuna.Trial, lr: float, seed: int, every: int,
                  steps: int) -> Run:
    """Train at ``lr`` with the full-length schedule for ``steps`` steps, asking the pruner."""
    model = task.make_model(seed)
    optimizer = build_optimizer(task.optimizer, model.parameters(), lr, task.weight_decay)

    def report(index: int, val_loss: float) -> bool:
        trial.report(val_loss, index)
        return trial.should_prune()

    return run_training(task, model, optimizer, seed, steps=steps, eval_every=every,
                        scheduler=ScheduledLR(optimizer, task.schedule(task.steps)),
                        on_eval=report)


def _tell(study: optuna.Study, trial: optuna.Trial, run: Run, full_steps: int) -> None:
    """Diverged: FAIL; stopped by the pruner or cut by the budget: PRUNED; else the final loss."""
    states = optuna.trial.TrialState
    if math.isinf(run.val_loss):
        study.tell(trial, state=states.FAIL)
    elif math.isnan(run.val_loss) or run.steps_done < full_steps:
        study.tell(trial, state=states.PRUNED)
    else:
        study.tell(trial, run.val_loss)


# -- range tests ------------------------------------------------------------------------------


class _Passthrough(nn.Module):
    """Hands the batch input to the criterion, so torch-lr-finder can drive ``task.forward_loss``.

    torch-lr-finder computes ``criterion(model(x), y)``; tasks such as charlm reshape the output
    inside ``forward_loss``. The real model is a submodule, so the finder still saves and
    restores its weights.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@peer("torch-lr-finder")
def torch_lr_finder(task: Task, budget: float, seed: int) -> Choice:
    """Range test over the registry range, torch-lr-finder's "steepest gradient" suggestion.

    The suggestion is torch-lr-finder's own (it is only exposed through ``plot``, drawn here on
    an off-screen figure). No gradient clipping: torch-lr-finder has no option for it.
    """
    from matplotlib.figure import Figure
    from torch_lr_finder import LRFinder, TrainDataLoaderIter

    low, high = _lr_range(task)
    wrapper = _Passthrough(task.make_model(seed))
    optimizer = build_optimizer(task.optimizer, wrapper.parameters(), low, task.weight_decay)
    finder = LRFinder(wrapper, optimizer, lambda x, y: task.forward_loss(wrapper.model, x, y),
                      device="cpu")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        finder.range_test(TrainDataLoaderIter(task.train_loader(seed)), end_lr=high)
        try:
            _, lr = finder.plot(ax=Figure().add_subplot(), suggest_lr=True)
        except ValueError:  # too few points before the test stopped on divergence
            lr = None
    cost = len(finder.history["lr"]) / task.steps + 1.0
    return Choice("torch-lr-finder", task.name, seed, None if lr is None else float(lr), None,
                  cost)


@peer("lrtune-find")
def lrtune_find(task: Task, budget: float, seed: int) -> Choice:
    """lrtune's range test over the registry range (its default 150 steps), told the schedule.

    It gets what lrtune's API asks for: the task's gradient clipping and schedule (its
    suggestion accounts for a decaying schedule), and the training step as ``step_fn``.
    """
    from lrtune.finder import find

    low, high = _lr_range(task)
    model = task.make_model(seed)
    optimizer = build_optimizer(task.optimizer, model.parameters(), low, task.weight_decay)
    result = find(model, optimizer, task.train_loader(seed), step_fn=task.step_fn(model),
                  start_lr=low, end_lr=high, grad_clip=task.grad_clip,
                  schedule=task.schedule(task.steps), seed=seed)
    lr = result.suggestion if math.isfinite(result.suggestion) else None
    return Choice("lrtune-find", task.name, seed, lr, None, result.steps / task.steps + 1.0)


# -- LR-free optimizers -----------------------------------------------------------------------


def _own_run(method: str, task: Task, seed: int, model: nn.Module,
             optimizer: torch.optim.Optimizer, scheduler: ScheduledLR | None) -> Choice:
    """One full run of an LR-free optimizer: its result is the run itself."""
    run = run_training(task, model, optimizer, seed, scheduler=scheduler)
    return Choice(method, task.name, seed, None, run.val_loss, run.steps_done / task.steps)


@peer("prodigy")
def prodigy(task: Task, budget: float, seed: int) -> Choice:
    """Prodigy at lr=1.0 (it estimates the step size) under the task's schedule."""
    from prodigyopt import Prodigy

    model = task.make_model(seed)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints a note when weight decay is set
        optimizer = Prodigy(model.parameters(), lr=1.0, weight_decay=task.weight_decay)
    scheduler = ScheduledLR(optimizer, task.schedule(task.steps))
    return _own_run("prodigy", task, seed, model, optimizer, scheduler)


@peer("schedulefree-adamw")
def schedulefree_adamw(task: Task, budget: float, seed: int) -> Choice:
    """Schedule-free AdamW at its default lr and warm-up; it replaces the schedule."""
    from schedulefree import AdamWScheduleFree

    model = task.make_model(seed)
    optimizer = AdamWScheduleFree(model.parameters(), weight_decay=task.weight_decay)
    return _own_run("schedulefree-adamw", task, seed, model, optimizer, None)
