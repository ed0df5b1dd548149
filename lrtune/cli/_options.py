"""Library messages in the command line's words: the option the user typed (``--lr-min``), not
the Python parameter it sets (``the 'lr' parameter of Space()``)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from lrtune.exceptions import InvalidParameterError

# the option of `lrtune tune` / `lrtune demo` that sets each parameter of tune() and Space()
OPTION_OF = {"objective": "TARGET", "steps": "--steps", "budget": "--budget",
             "strategy": "--strategy", "lr": "--lr-min/--lr-max", "optimizer": "--optimizer",
             "schedule": "--schedule", "warmup": "--warmup", "weight_decay": "--weight-decay",
             "storage": "--storage", "study_name": "--study", "seed": "--seed",
             "workers": "--workers", "trial_timeout": "--trial-timeout"}
_PARAMETER = re.compile(r"The '(\w+)' parameter of [\w.]+\(\) (?=must be)")


def as_option(err: InvalidParameterError,
              options: Mapping[str, str] = OPTION_OF) -> InvalidParameterError:
    """``err`` with its parameter replaced by the option in ``options`` that sets it."""
    match = _PARAMETER.match(str(err))
    if match is None or match.group(1) not in options:
        return err
    return InvalidParameterError(f"{options[match.group(1)]} {str(err)[match.end():]}")
