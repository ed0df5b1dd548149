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
from collections.abc import Callable, Iterator
from typing import Any, cast

import torch

try:
    import lightning.pytorch as pl
    from lightning.pytorch.utilities.parsing import lightning_hasattr, lightning_setattr
except ImportError as err:  # an optional dependency: say how to get it
    raise ImportError("The Lightning integration needs Lightning: pip install lightning") from err

from lrtune._validation import fail
from lrtune.exceptions import InvalidParameterError
from lrtune.finder import FinderResult, find
from lrtune.finder._plan import PROBE_BATCHES
from lrtune.space import Space
from lrtune.strategies import Strategy
from lrtune.study import Study
from lrtune.study import tune as lrtune_tune
from lrtune.trial import Trial

QUIET = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
         "enable_model_summary": False, "num_sanity_val_steps": 0}


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


class RangeTest(pl.Callback):
    """Runs :func:`lrtune.find` when training starts, then trains at its suggestion.

    The sweep steps the module's first optimizer through its own ``training_step`` on the
    training data; weights, optimizer state and RNGs are restored before training goes on.
    ``update_attr=False`` leaves the LR as it was; ``stop=True`` ends ``fit`` after the test (to
    run it alone). ``result`` holds the :class:`~lrtune.finder.FinderResult`. The fine passes
    read ``probe_batches`` fixed batches through ``training_step`` without gradients (see
    :func:`lrtune.find`).
    """

    def __init__(self, num_iter: int = 150, start_lr: float = 1e-7, end_lr: float = 10.0, *,
                 attr_name: str = "", update_attr: bool = True, stop: bool = False,
                 seed: int = 0, probe_batches: int = PROBE_BATCHES) -> None:
        self.options: dict[str, Any] = {"num_iter": num_iter, "start_lr": start_lr,
                                        "end_lr": end_lr, "seed": seed,
                                        "probe_batches": probe_batches}
        self.attr_name, self.update_attr, self.stop = attr_name, update_attr, stop
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
                               **self.options)
        if self.update_attr:
            lightning_setattr(pl_module, attr, self.result.suggestion)
            for opt in trainer.optimizers:
                for group in opt.param_groups:
                    group["lr"] = self.result.suggestion
        if self.stop:
            trainer.should_stop = True


class _Report(pl.Callback):
    """Reports each training loss to the lrtune trial (which stops a run that diverged)."""

    def __init__(self, trial: Trial) -> None:
        self.trial = trial

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = _loss_of(outputs)
        if loss is not None:
            self.trial.report(loss.detach(), trainer.global_step - 1)


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
    by ``validation_step``. With ``range_test`` a range test (150 steps) runs first and is kept
    with the study for its report. The other arguments are :func:`lrtune.tune`'s.
    """
    if not callable(module_fn):
        raise fail("module_fn", "tune()", "a callable that builds a LightningModule", module_fn)
    data = {"datamodule": datamodule, "train_dataloaders": train_dataloaders,
            "val_dataloaders": val_dataloaders}
    data = {k: v for k, v in data.items() if v is not None}
    options = {**QUIET, **(trainer_kwargs or {})}

    def trainer(max_steps: int, extra: list[Any]) -> pl.Trainer:
        return pl.Trainer(max_steps=max_steps, val_check_interval=max_steps,
                          check_val_every_n_epoch=None, callbacks=extra, **options)

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
