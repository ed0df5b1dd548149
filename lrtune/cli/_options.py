"""Library messages in the command line's words: the option the user typed (``--lr-min``), not
the Python parameter it sets (``the 'lr' parameter of Space()``)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from lrtune.exceptions import InvalidParameterError

# the option of `lrtune tune` / `lrtune demo` that sets each parameter of tune() and Space()
OPTION_OF = {"objective": "TARGET", "target": "TARGET", "steps": "--steps", "budget": "--budget",
             "strategy": "--strategy", "lr": "--lr-min/--lr-max", "optimizer": "--optimizer",
             "schedule": "--schedule", "warmup": "--warmup", "weight_decay": "--weight-decay",
             "storage": "--storage", "study_name": "--study", "seed": "--seed",
             "workers": "--workers", "trial_timeout": "--trial-timeout"}
# `lrtune find`: its options, and the parts of what SETUP returns that find() checks
FIND_OPTION_OF = {"task": "--task", "setup": "SETUP",
                  **{key: f"SETUP's {key}" for key in (
                      "model", "optimizer", "data", "loss_fn", "step_fn", "schedule",
                      "scheduler", "scaler", "grad_clip", "accumulation_steps")}}
# the sweep's parameters, named in the range test's hints ("raise num_iter for more passes")
SWEEP_OPTION_OF = {"num_iter": "--iters", "start_lr": "--start-lr", "end_lr": "--end-lr",
                   "probe_batches": "--probe-batches"}
# the library's own functions and commands, which a message names as a parameter's owner
_PARAMETER = re.compile(r"The '(\w+)' parameter of (?:[\w.]+\(\)|lrtune \w+) (?=must be)")


def as_option(err: InvalidParameterError,
              options: Mapping[str, str] = OPTION_OF) -> InvalidParameterError:
    """``err`` with its parameter replaced by the option in ``options`` that sets it."""
    match = _PARAMETER.match(str(err))
    if match is None or match.group(1) not in options:
        return err
    return InvalidParameterError(f"{options[match.group(1)]} {str(err)[match.end():]}")


def find_words(text: str) -> str:
    """A hint of the range test with its parameters named as the options of ``lrtune find``
    (``raise --iters``, not ``raise num_iter``)."""
    for name, option in SWEEP_OPTION_OF.items():
        text = re.sub(rf"\b{name}\b", option, text)
    return text.replace("lrtune.tune", "lrtune tune")


def objective_words(message: str, target: str, kept: bool) -> str:
    """A message of the study about the objective in the command line's words: the TARGET the
    user named, not "the objective passed to tune()"; a study that is not kept (no --storage
    and --study) is neither named by its generated name nor said to resume."""
    message = message.replace("The objective passed to tune()", f"TARGET {target}")
    if kept:
        return message
    message = re.sub(r" of the study 'no-name-[0-9a-f-]+'", "", message)
    return message.replace("fix the objective and run again to resume",
                           "fix the objective and run the command again (nothing was kept to "
                           "resume: that needs --storage and --study)")
