"""Hugging Face ``transformers.Trainer``: search ``learning_rate`` (and warm-up) for a Trainer.

Build the Trainer as usual, with ``model_init`` (as for ``Trainer.hyperparameter_search``) so
each trial starts from a fresh model, and an ``eval_dataset``::

    trainer = Trainer(model_init=lambda: GPT2LMHeadModel(config), args=args,
                      train_dataset=train, eval_dataset=val)
    study = tune(trainer, budget=2, warmup=(0.0, 0.1))
    trainer.args.learning_rate, trainer.args.warmup_steps   # the answer, set on the trainer

Each trial trains with its own ``max_steps``: the Trainer's scheduler (``lr_scheduler_type``)
and a warm-up given as a fraction are laid out over it, so the whole schedule is compressed to
each trial. Every training loss reaches the trial, so a run that blows up stops at once and is
kept as "diverged at this LR". With the ``auto`` strategy
the last trial trains at full length at the chosen LR: afterwards ``trainer.model`` is that
model.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

try:
    from transformers import Trainer
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from transformers.trainer_utils import IntervalStrategy, SaveStrategy
except ImportError as err:  # an optional dependency: say how to get it
    raise ImportError("The Hugging Face integration needs transformers (and accelerate): "
                      "pip install transformers accelerate") from err

from lrtune._validation import fail
from lrtune.optimizers import OPTIMIZERS
from lrtune.schedules import InverseSqrt, Schedule
from lrtune.space import Space
from lrtune.strategies import Strategy
from lrtune.study import Study
from lrtune.study import tune as lrtune_tune
from lrtune.trial import Trial

#: The lrtune schedule of the same shape as each ``lr_scheduler_type`` (for the report and for
#: ``auto``, which asks whether the schedule decays).
SCHEDULES = {"linear": "linear", "cosine": "cosine", "cosine_with_restarts": "cosine",
             "cosine_with_min_lr": "cosine", "polynomial": "polynomial", "constant": "constant",
             "constant_with_warmup": "constant", "inverse_sqrt": "inverse-sqrt",
             "warmup_stable_decay": "wsd"}


@contextlib.contextmanager
def _reporting(trainer: Trainer, trial: Trial) -> Iterator[None]:
    """Report every training loss to ``trial`` (which stops a run that diverged).

    The Trainer gives callbacks only averaged, rounded losses, and only at logging steps; its
    ``compute_loss`` sees each batch's loss as a tensor, which the trial reads back in batches
    (no per-step device sync). So this trainer's ``compute_loss`` is wrapped while it trains.
    """
    compute_loss = trainer.compute_loss
    own = "compute_loss" in vars(trainer)  # the caller's own override, to put back as it was

    def reported(model: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        out = compute_loss(model, inputs, *args, **kwargs)
        if model.training:  # evaluation passes through here too
            loss = out[0] if isinstance(out, tuple) else out
            trial.report(loss.detach(), trainer.state.global_step)
        return out

    trainer.compute_loss = reported  # patched for the search only
    try:
        yield
    finally:
        if own:
            trainer.compute_loss = compute_loss  # put back
        else:
            del trainer.compute_loss  # back to the class's method


def tune(
    trainer: Trainer,
    *,
    steps: int | None = None,
    budget: float = 2.0,
    strategy: str | Strategy = "auto",
    lr: tuple[float, float] | None = None,
    warmup: float | Sequence[float] | None = None,
    metric: str = "eval_loss",
    storage: str | None = None,
    study_name: str | None = None,
    seed: int = 0,
    callbacks: list[Callable[..., None]] | None = None,
) -> Study:
    """Search ``learning_rate`` (and ``warmup``, fractions of a run, when given several) for
    ``trainer``; returns the study and leaves the best values in ``trainer.args``.

    ``steps`` (one full run) defaults to the Trainer's ``max_steps``, or its epochs times the
    steps per epoch. ``lr`` is the range to search (default: AdamW's, 1e-6 to 0.1); ``warmup``
    defaults to the Trainer's own (one as long as the run or longer is, as the Trainer trains it,
    a warm-up over the whole run). The objective is ``trainer.evaluate()[metric]``. The other
    arguments are :func:`lrtune.tune`'s.
    """
    owner = "tune()"
    if not isinstance(trainer, Trainer):
        raise fail("trainer", owner, "a transformers.Trainer", trainer)
    if trainer.model_init is None:
        raise fail("trainer", owner, "a Trainer built with model_init=... (each trial starts "
                   "from a fresh model)", "a Trainer without model_init")
    if trainer.eval_dataset is None:
        raise fail("trainer", owner, "a Trainer with an eval_dataset (the objective is its "
                   f"{metric!r})", "a Trainer without eval_dataset")
    base = trainer.args
    steps = steps if steps is not None else _full_steps(trainer)
    space = Space(lr=lr or OPTIMIZERS["adamw"].lr_range, optimizer="adamw",
                  schedule=_schedule(base, steps),
                  warmup=_warmup_fraction(base, steps) if warmup is None else warmup,
                  weight_decay=base.weight_decay)

    def objective(trial: Trial) -> float:
        trainer.args = _with(base, learning_rate=trial.lr, warmup_steps=trial.params["warmup"],
                             max_steps=trial.steps, eval_strategy=IntervalStrategy.NO,
                             save_strategy=SaveStrategy.NO)
        with _reporting(trainer, trial):
            trainer.train()
        value = trainer.evaluate()[metric]
        return value if math.isfinite(value) else math.inf

    printers = [cb for cb in trainer.callback_handler.callbacks
                if isinstance(cb, (PrinterCallback, ProgressCallback))]
    for printer in printers:  # one line per trial is the caller's to print, not per log
        trainer.remove_callback(printer)
    try:
        study = lrtune_tune(objective, steps=steps, budget=budget, strategy=strategy, space=space,
                            storage=storage, study_name=study_name, seed=seed, callbacks=callbacks)
    finally:
        for printer in printers:
            trainer.add_callback(printer)
        trainer.args = base
    best = study.best
    if best is not None:
        trainer.args = _with(base, learning_rate=best.lr, warmup_steps=best.params["warmup"])
    return study


def _with(args: Any, **changes: Any) -> Any:
    """A copy of TrainingArguments with ``changes``. Not ``dataclasses.replace``: that runs
    ``__post_init__`` again, which resets the accelerator state the Trainer holds."""
    args = copy.copy(args)
    for name, value in changes.items():
        setattr(args, name, value)
    return args


def _full_steps(trainer: Trainer) -> int:
    """One full run in optimizer steps, as the Trainer itself would count it."""
    args = trainer.args
    if args.max_steps > 0:
        return args.max_steps
    per_epoch = len(trainer.get_train_dataloader()) // args.gradient_accumulation_steps
    return max(1, math.ceil(args.num_train_epochs * per_epoch))


def _schedule(args: Any, steps: int) -> str | Schedule:
    """The lrtune schedule of the Trainer's ``lr_scheduler_type``: a name, or for the inverse
    square root (which has a parameter) the schedule itself, with the timescale
    ``get_scheduler`` gives it (the warm-up's steps, else 10,000)."""
    name = SCHEDULES.get(str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)),
                         "constant")
    if name != "inverse-sqrt":
        return name
    warmup = args.warmup_steps
    timescale = int(warmup if warmup >= 1 else math.ceil(warmup * steps)) or 10_000
    return InverseSqrt(steps, timescale=timescale)


def _warmup_fraction(args: Any, steps: int) -> float:
    """The Trainer's warm-up as a fraction of a run (it may be given in steps), read as
    ``TrainingArguments.get_warmup_steps`` reads it: below 1 a ratio, else ``int`` steps."""
    warmup = args.warmup_steps
    if warmup < 1:
        return float(warmup)
    if int(warmup) < steps:
        return int(warmup) / steps
    # As long as the run or longer: every scheduler of transformers' get_scheduler ramps the LR
    # (step / warmup_steps) while step < warmup_steps, so the Trainer warms up all the way and
    # never decays, to a peak short of learning_rate by a constant factor that the LR search
    # absorbs. Space takes a fraction below 1; this one the Trainer's ceil(fraction * max_steps)
    # turns into every trial's whole max_steps (t - t / (2 * steps) lies in (t - 1, t) for
    # t <= steps), so each trial trains that shape, compressed.
    return 1 - 1 / (2 * steps)


__all__ = ["SCHEDULES", "tune"]
