"""PyTorch Lightning: lrtune's range test as a callback, and the search over a LightningModule.

In place of Lightning's ``LearningRateFinder`` callback::

    finder = RangeTest()
    Trainer(callbacks=[finder], max_steps=2000).fit(module, datamodule=dm)  # at the suggestion
    finder.result.suggestion, finder.result.band

The search: each trial builds a fresh module, sets its LR attribute (``lr`` or
``learning_rate``, as Lightning's tuner does), trains it for the trial's length and returns the
logged validation metric::

    study = tune(lambda: MyModule(), steps=2000, datamodule=dm, monitor="val_loss")
    study.best.lr

Trials set ``max_steps`` to their own length: a module whose ``configure_optimizers`` lays its
schedule over ``self.trainer.max_steps`` (or ``estimated_stepping_batches``) gets it compressed
to each trial, which is what the ``auto`` strategy wants.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from numbers import Real
from typing import Any, cast

import torch

try:
    import lightning.pytorch as pl
    from lightning.pytorch.utilities.parsing import (
        lightning_getattr, lightning_hasattr, lightning_setattr,
    )
except ImportError as err:  # an optional dependency: say how to get it
    raise ImportError("The Lightning integration needs Lightning: pip install lightning") from err

from lrtune._validation import fail
from lrtune.exceptions import InvalidParameterError
from lrtune.finder import FinderResult, find
from lrtune.finder._find import check_sweep
from lrtune.finder._plan import PROBE_BATCHES
from lrtune.finder._stepper import base_lrs
from lrtune.space import Space
from lrtune.strategies import Strategy
from lrtune.study import Study
from lrtune.study import tune as lrtune_tune
from lrtune.trial import Trial

QUIET = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
         "enable_model_summary": False, "num_sanity_val_steps": 0}
# What each trial's Trainer gets from lrtune alone: its own length, and one validation at its end
OWNED = ("max_steps", "val_check_interval", "check_val_every_n_epoch")
RANGE_TEST = "RangeTest()"
# The LRs an optimizer and its schedulers keep, all laid out from the module's LR: a group's
# base LR ('initial_lr'; OneCycleLR's peak and floor too), and a scheduler's base LRs (CyclicLR's
# peaks, the last LRs get_last_lr() returns)
GROUP_LRS = ("lr", "initial_lr", "max_lr", "min_lr")
SCHEDULER_LRS = ("base_lrs", "max_lrs", "_last_lr")

@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Lightning logs its set-up ("GPU available: ...") at INFO for every Trainer: one search
    builds many, so hold those lines back while it runs (a library does not print)."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@contextlib.contextmanager
def _no_logging(module: Any) -> Iterator[None]:
    """``self.log`` calls in ``training_step`` are not allowed outside Lightning's own loops:
    make them no-ops while the range test calls ``training_step`` itself."""
    module.log = module.log_dict = lambda *args, **kwargs: None
    try:
        yield
    finally:
        del module.log, module.log_dict


def lr_attribute(module: Any, attr_name: str = "") -> str:
    """The module's LR attribute: ``attr_name``, else ``lr`` or ``learning_rate`` (on the module
    or its ``hparams``), as Lightning's own tuner looks for it."""
    names = (attr_name,) if attr_name else ("lr", "learning_rate")
    for name in names:
        if lightning_hasattr(module, name):
            return name
    raise InvalidParameterError(
        f"The LightningModule must have one of {', '.join(map(repr, names))} (on itself or its "
        "hparams) to carry the learning rate its configure_optimizers() uses. Got "
        f"{type(module).__name__} without it instead.")


def _loss_of(output: Any) -> torch.Tensor | None:
    """The loss a ``training_step`` returned (a tensor, or a dict with ``"loss"``)."""
    if isinstance(output, dict):
        output = output.get("loss")
    return output if isinstance(output, torch.Tensor) else None


def _check_attr_name(value: Any, owner: str) -> str:
    if not isinstance(value, str):
        raise fail("attr_name", owner, "a str (the module's LR attribute; '' looks for 'lr', then "
                   "'learning_rate')", value)
    return value


def _check_flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise fail(name, RANGE_TEST, "a bool", value)
    return value


def _reference_lr(attr_value: Any, optimizer: torch.optim.Optimizer) -> float:
    """The LR the suggestion takes the place of: the module's, which configure_optimizers() laid
    the groups and schedule out from (OneCycleLR's max_lr, say); the first group's base LR, as
    find() reads it, where the attribute holds no positive number."""
    if isinstance(attr_value, Real) and not isinstance(attr_value, bool):
        value = float(attr_value)
        if math.isfinite(value) and value > 0:
            return value
    return base_lrs(optimizer)[0]


def _rescale(trainer: pl.Trainer, suggestion: float, reference: float) -> None:
    """Every LR the optimizers and their schedulers keep, times ``suggestion / reference``:
    training goes on as if configure_optimizers() had been given the suggestion, the groups'
    ratios kept. Setting 'lr' alone left the schedulers' base LRs behind, so from their first
    step training went back to the old LR."""

    def scaled(value: Any) -> Any:
        return suggestion * (value / reference)  # exactly the suggestion where value == reference

    for optimizer in trainer.optimizers:
        for group in optimizer.param_groups:
            for key in GROUP_LRS:
                value = group.get(key)
                if isinstance(value, torch.Tensor):  # kept on its device (fused optimizers)
                    value.fill_(scaled(float(value)))
                elif isinstance(value, Real) and not isinstance(value, bool):
                    group[key] = scaled(value)
    for config in trainer.lr_scheduler_configs:
        _rescale_scheduler(config.scheduler, scaled)


def _rescale_scheduler(scheduler: Any, scaled: Callable[[Any], Any]) -> None:
    if not isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler):
        return  # another kind keeps its LRs where lrtune cannot know them
    for name in SCHEDULER_LRS:
        values = getattr(scheduler, name, None)
        if isinstance(values, list):  # a new list: SequentialLR shares _last_lr with its inner one
            setattr(scheduler, name, [scaled(v) for v in values])
    for inner in getattr(scheduler, "_schedulers", ()):  # SequentialLR, ChainedScheduler
        _rescale_scheduler(inner, scaled)


class RangeTest(pl.Callback):
    """Runs :func:`lrtune.find` when training starts, then trains at its suggestion.

    The sweep steps the module's first optimizer through its own ``training_step`` on the
    training data, accumulating gradients over the trainer's ``accumulate_grad_batches``;
    weights, optimizer state and RNGs are restored before training goes on. The suggestion
    replaces the module's LR attribute, and every LR the optimizers and their schedulers keep
    (param groups' ``lr`` and ``initial_lr``, OneCycleLR's ``max_lr``, schedulers' ``base_lrs``)
    is scaled by one factor, suggestion / the old attribute: training goes on as if
    ``configure_optimizers`` had been given the suggestion. Absolute floors (``eta_min``,
    ``min_lr`` of ReduceLROnPlateau) are kept. ``update_attr=False`` leaves the LR as it was;
    ``stop=True`` ends ``fit`` after the test (to run it alone). ``result`` holds the
    :class:`~lrtune.finder.FinderResult`. The fine passes read ``probe_batches`` fixed batches
    through ``training_step`` without gradients (see :func:`lrtune.find`). Arguments are checked
    by :func:`lrtune.find`'s rules when the callback is built.
    """

    def __init__(self, num_iter: int = 150, start_lr: float = 1e-7, end_lr: float = 10.0, *,
                 attr_name: str = "", update_attr: bool = True, stop: bool = False,
                 seed: int = 0, probe_batches: int = PROBE_BATCHES) -> None:
        self.options = check_sweep(start_lr, end_lr, num_iter, probe_batches, seed, RANGE_TEST)
        self.attr_name = _check_attr_name(attr_name, RANGE_TEST)
        self.update_attr = _check_flag(update_attr, "update_attr")
        self.stop = _check_flag(stop, "stop")
        self.result: FinderResult | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        attr = lr_attribute(pl_module, self.attr_name) if self.update_attr else ""
        optimizer = trainer.optimizers[0]
        optimizer = getattr(optimizer, "optimizer", optimizer)  # under a LightningOptimizer
        clip = trainer.gradient_clip_val

        def step_fn(batch: Any) -> torch.Tensor:
            loss = _loss_of(pl_module.training_step(trainer.strategy.batch_to_device(batch), 0))
            if loss is None:
                raise InvalidParameterError(
                    "RangeTest needs training_step() to return the loss (a tensor, or a dict "
                    "with 'loss'); manual optimization is not supported.")
            return loss

        with _no_logging(pl_module):
            self.result = find(pl_module, optimizer, cast(Any, trainer.train_dataloader),
                               step_fn=step_fn, grad_clip=float(clip) if clip else None,
                               accumulation_steps=trainer.accumulate_grad_batches,
                               **self.options)
        if self.update_attr:
            reference = _reference_lr(lightning_getattr(pl_module, attr), optimizer)
            lightning_setattr(pl_module, attr, self.result.suggestion)
            _rescale(trainer, self.result.suggestion, reference)
        if self.stop:
            trainer.should_stop = True


class _Report(pl.Callback):
    """Reports the training loss of each optimizer step to the lrtune trial (which stops a run
    that diverged), once the step is taken, at its step: under gradient accumulation the mean of
    its micro-batches (reporting each micro-batch at ``global_step - 1`` reported step -1 before
    the first optimizer step)."""

    def __init__(self, trial: Trial) -> None:
        self.trial = trial
        self.steps = 0  # optimizer steps reported
        self.losses: list[torch.Tensor] = []  # the micro-batches of the step under way

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = _loss_of(outputs)
        micro = trainer.accumulate_grad_batches
        if loss is not None:  # Lightning hands it on divided by accumulate_grad_batches
            self.losses.append(loss.detach() * micro if micro > 1 else loss.detach())
        if trainer.global_step > self.steps:
            self.steps = trainer.global_step
            if self.losses:  # one micro-batch (no accumulation): no tensor work on the step path
                losses = self.losses
                self.trial.report(losses[0] if len(losses) == 1 else torch.stack(losses).mean(),
                                  self.steps - 1)
            self.losses.clear()


def _user_callbacks(value: Any) -> list[pl.Callback]:
    """``trainer_kwargs['callbacks']`` as a list (Lightning takes one callback or a list)."""
    if value is None:
        return []
    callbacks = [value] if isinstance(value, pl.Callback) else value
    if not isinstance(callbacks, (list, tuple)) or not all(
            isinstance(c, pl.Callback) for c in callbacks):
        raise fail("trainer_kwargs", "tune()", "a dict whose 'callbacks' is a Lightning Callback "
                   "or a list of them", {"callbacks": value})
    return list(callbacks)


def _trainer_options(trainer_kwargs: Any) -> tuple[dict[str, Any], list[pl.Callback]]:
    """The options every Trainer gets, and the user's callbacks (each Trainer runs them with
    lrtune's own); what each trial sets itself is refused, not overridden in silence."""
    if trainer_kwargs is None:
        trainer_kwargs = {}
    if not isinstance(trainer_kwargs, Mapping) or not all(isinstance(k, str)
                                                          for k in trainer_kwargs):
        raise fail("trainer_kwargs", "tune()", "a dict of Trainer arguments or None",
                   trainer_kwargs)
    owned = {k: trainer_kwargs[k] for k in OWNED if k in trainer_kwargs}
    if owned:
        raise fail("trainer_kwargs", "tune()", "a dict without " + ", ".join(map(repr, OWNED))
                   + " (lrtune sets them for each trial: it trains for the trial's length, "
                   "given by steps=, and validates once at its end)", owned)
    options = {**QUIET, **trainer_kwargs}
    return options, _user_callbacks(options.pop("callbacks", None))


def tune(
    module_fn: Callable[[], Any],
    *,
    steps: int,
    budget: float = 2.0,
    strategy: str | Strategy = "auto",
    space: Space | None = None,
    monitor: str = "val_loss",
    attr_name: str = "",
    datamodule: Any = None,
    train_dataloaders: Any = None,
    val_dataloaders: Any = None,
    trainer_kwargs: dict[str, Any] | None = None,
    range_test: bool = True,
    storage: str | None = None,
    study_name: str | None = None,
    seed: int = 0,
    callbacks: list[Callable[..., None]] | None = None,
) -> Study:
    """Search the LR of the LightningModule that ``module_fn()`` builds; returns the study.

    ``steps`` is one full training run in optimizer steps. Each trial trains a fresh module for
    its own length with a ``Trainer(**trainer_kwargs)`` (logging, checkpoints and progress bars
    off unless you say otherwise), validates once at the end and returns ``monitor`` as logged
    by ``validation_step``. ``trainer_kwargs`` may not set what each trial sets itself
    (``max_steps``, ``val_check_interval``, ``check_val_every_n_epoch``); its ``callbacks`` run
    in every Trainer with lrtune's own, the same objects each time (a stateful one carries its
    state from trial to trial). With ``range_test`` a range test (150 steps) runs first and is
    kept with the study for its report. The other arguments are :func:`lrtune.tune`'s.
    """
    if not callable(module_fn):
        raise fail("module_fn", "tune()", "a callable that builds a LightningModule", module_fn)
    _check_attr_name(attr_name, "tune()")
    options, user_callbacks = _trainer_options(trainer_kwargs)
    data = {"datamodule": datamodule, "train_dataloaders": train_dataloaders,
            "val_dataloaders": val_dataloaders}
    data = {k: v for k, v in data.items() if v is not None}

    def trainer(max_steps: int, extra: list[Any]) -> pl.Trainer:
        return pl.Trainer(max_steps=max_steps, val_check_interval=max_steps,
                          check_val_every_n_epoch=None, callbacks=[*user_callbacks, *extra],
                          **options)

    def objective(trial: Trial) -> float:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(trial.seed)
            module = module_fn()
            lightning_setattr(module, lr_attribute(module, attr_name), trial.lr)
            fit = trainer(trial.steps, [_Report(trial)])
            fit.fit(module, **data)
        if monitor not in fit.callback_metrics:
            raise InvalidParameterError(
                f"The LightningModule logged no {monitor!r} in validation_step(): log it with "
                f"self.log({monitor!r}, loss) or pass monitor=... (logged: "
                f"{sorted(fit.callback_metrics) or 'nothing'}).")
        return float(fit.callback_metrics[monitor])

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        first = module_fn()
    lr_attribute(first, attr_name)  # a module that cannot take the LR fails here, not per trial
    with _quiet():
        finder = None
        if range_test:
            finder = RangeTest(stop=True, seed=seed, attr_name=attr_name, update_attr=False)
            with torch.random.fork_rng(devices=[]):
                trainer(steps, [finder]).fit(first, **data)
        study = lrtune_tune(objective, steps=steps, budget=budget, strategy=strategy, space=space,
                            storage=storage, study_name=study_name, seed=seed, callbacks=callbacks)
    if finder is not None and finder.result is not None:
        study.store_range_test(finder.result)
    return study


__all__ = ["RangeTest", "lr_attribute", "tune"]
