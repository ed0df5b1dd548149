"""The persistence schema: how an lrtune study is written into an Optuna study, in one place.

An lrtune trial is an Optuna trial plus a few user attrs, so a study opens in Optuna's own tools
(``optuna.load_study``, optuna-dashboard). Mapping: completed -> COMPLETE with its value;
diverged and pruned -> PRUNED (Optuna's samplers then still see them as bad trials); failed and
lost -> FAIL. lrtune's own state, budget, tag, diagnosis and loss history live in user attrs
prefixed ``lrtune:``; a schedule object among the params is stored as the JSON of its
``describe()``, and read back with ``Schedule.from_description``.

Several workers share one study, so two rules keep readers consistent with writers:

- Optuna's state says *whether* a trial ended; it changes once, atomically (a row lock on
  PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite). A trial Optuna still has RUNNING is running,
  whatever attrs its owner has written so far.
- The owner writes lrtune's ``state`` attr last, just before Optuna's state. A trial Optuna
  has FAIL while that attr still says running was failed by another worker that found its
  owner dead: it is *lost*, and so is one whose attr says completed (its value travels with
  Optuna's state, which the other worker set first). A diverged, pruned or failed outcome
  written in full before that moment stands: the trial did end that way.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial
from optuna.trial import TrialState as OptunaState

from lrtune.exceptions import LrtuneError
from lrtune.records import WORKER_DIED, TrialRecord, TrialState
from lrtune.schedules import Schedule
from lrtune.space import CATEGORICAL, LogRange, Space

PREFIX = "lrtune:"
# study attrs
CONFIG_ATTR = PREFIX + "config"  # steps, space, strategy and seed: fixed when created
BUDGET_ATTR = PREFIX + "budget"  # in full runs; it may grow, never shrink
HEARTBEAT_ATTR = PREFIX + "heartbeat"  # seconds between two beats of a running trial
RANGE_TEST_ATTR = PREFIX + "finder"  # FinderResult.to_dict() of the range test run before
# trial attrs written on their own (the rest go through ``prefixed``)
BEAT_ATTR = PREFIX + "beat"  # a running trial's heartbeat counter
RETIRED_ATTR = PREFIX + "retired"  # why a claim was withdrawn before training
HISTORY_POINTS = 200  # loss history kept per trial (downsampled), for reports
_OPTUNA_STATE = {
    TrialState.RUNNING: OptunaState.RUNNING,
    TrialState.COMPLETED: OptunaState.COMPLETE,
    TrialState.DIVERGED: OptunaState.PRUNED,
    TrialState.PRUNED: OptunaState.PRUNED,
    TrialState.FAILED: OptunaState.FAIL,
    TrialState.LOST: OptunaState.FAIL,
}


# -- params ----------------------------------------------------------------------------------------
def distributions(space: Space, params: Mapping[str, Any]) -> dict[str, BaseDistribution]:
    """Optuna distributions for ``params`` (LR and a weight-decay range on a log scale)."""
    lr = space.lr_range
    dists: dict[str, BaseDistribution] = {
        "lr": FloatDistribution(lr.low, lr.high, log=True) if space.searches_lr
        else CategoricalDistribution([lr.low]),
    }
    for name in CATEGORICAL:
        dists[name] = CategoricalDistribution([_storable(v) for v in getattr(space, name)])
    wd = space.weight_decay
    dists["weight_decay"] = (FloatDistribution(wd.low, wd.high, log=True)
                             if isinstance(wd, LogRange) else CategoricalDistribution(list(wd)))
    return {name: dists[name] for name in params}


def to_storable(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _storable(v) for k, v in params.items()}


def from_storable(space: Space, params: Mapping[str, Any]) -> dict[str, Any]:
    """Params as stored, with Schedule objects put back in place of their descriptions (one this
    process cannot rebuild stays the stored text), and a dimension the space fixes filled in
    where the trial does not name it (a study Optuna created searched only its own params)."""
    fixed = {name: values[0] for name in (*CATEGORICAL, "weight_decay")
             if isinstance(values := getattr(space, name), tuple) and len(values) == 1}
    out = {**{k: v for k, v in fixed.items() if k not in params}, **params}
    if "schedule" in out:
        by_label = {_storable(s): s for s in space.schedule}
        stored = out["schedule"]
        out["schedule"] = by_label[stored] if stored in by_label else _schedule(stored)
    return out


def _storable(value: Any) -> Any:
    # an Optuna choice is a plain scalar: a schedule object is kept as the JSON of its description
    return json.dumps(value.describe(), sort_keys=True) if isinstance(value, Schedule) else value


def _schedule(stored: Any) -> Any:
    if not (isinstance(stored, str) and stored.startswith("{")):
        return stored  # a schedule name
    try:
        return Schedule.from_description(json.loads(stored))
    except (ValueError, TypeError, LrtuneError):  # a class this process has not imported
        return stored


# -- trial attrs -----------------------------------------------------------------------------------
def attrs_of(trial: FrozenTrial) -> dict[str, Any]:
    """lrtune's user attrs of ``trial``, without the prefix."""
    return {k[len(PREFIX):]: v for k, v in trial.user_attrs.items() if k.startswith(PREFIX)}


def prefixed(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """``attrs`` as stored user attrs."""
    for value in attrs.values():
        json.dumps(value)  # fail here, not deep in the storage, on unserialisable data
    return {PREFIX + key: value for key, value in attrs.items()}


def is_retired(trial: FrozenTrial) -> bool:
    """Whether ``trial`` was a claim withdrawn before training (a concurrent duplicate)."""
    return RETIRED_ATTR in trial.user_attrs


def is_lrtune_trial(trial: FrozenTrial) -> bool:
    """Whether ``trial`` was written by lrtune (plain Optuna code leaves no lrtune state)."""
    return PREFIX + "state" in trial.user_attrs


def downsample_history(
    steps: Sequence[int] | np.ndarray, losses: Sequence[float] | np.ndarray
) -> list[list[Any]]:
    """The loss history as stored: at most ``HISTORY_POINTS`` evenly spaced ``[step, loss]``
    pairs, first and last included, ``None`` for a non-finite loss (JSON has no NaN)."""
    step_array, loss_array = np.asarray(steps), np.asarray(losses, dtype=float)
    if len(step_array) > HISTORY_POINTS:
        keep = np.unique(np.linspace(0, len(step_array) - 1, HISTORY_POINTS).round().astype(int))
        step_array, loss_array = step_array[keep], loss_array[keep]
    return [[int(s), float(v) if math.isfinite(v) else None]
            for s, v in zip(step_array, loss_array, strict=True)]


# -- records ---------------------------------------------------------------------------------------
def record_from_optuna(space: Space, trial: FrozenTrial,
                       params: dict[str, Any] | None = None, *, full_steps: int = 0) -> TrialRecord:
    """The record of a stored trial; ``params`` stands in for its stored params (the Optuna
    integration's trials name the LR their own way and hold the user's other params). A trial
    with no length of its own (one a plain Optuna study ran) counts as a run of ``full_steps``.
    """
    attrs = attrs_of(trial)
    if "steps" not in attrs:
        attrs = {"steps": full_steps, "steps_done": full_steps if trial.state.is_finished() else 0,
                 **attrs}
    state = _state(trial.state, attrs.get("state"))
    error = attrs.get("error")
    if state is TrialState.LOST and not (error or "").startswith("lost"):
        error = _lost_message(attrs.get("worker"))
    if state is TrialState.LOST and "history" not in attrs and trial.intermediate_values:
        # its worker died before writing the outcome: what it trained is in its progress
        progress = sorted(trial.intermediate_values.items())
        attrs = {**attrs, "steps_done": progress[-1][0] + 1,
                 "history": downsample_history(*zip(*progress, strict=True))}
    return TrialRecord(
        number=trial.number,
        params=params if params is not None else from_storable(space, trial.params),
        steps=attrs.get("steps", 0),
        state=state,
        value=trial.value if state is TrialState.COMPLETED else None,
        steps_done=attrs.get("steps_done", 0),
        tag=attrs.get("tag", ""),
        diagnosis=attrs.get("diagnosis") if state is not TrialState.LOST else None,
        error=error,
        history=tuple(tuple(p) for p in attrs.get("history", ())),
        wall_time=attrs.get("wall_time"),
    )


def _state(optuna_state: OptunaState, stored: str | None) -> TrialState:
    if optuna_state is OptunaState.RUNNING:
        return TrialState.RUNNING  # its owner may be half-way through writing the outcome
    if optuna_state is OptunaState.FAIL and stored in ("running", "completed"):
        return TrialState.LOST  # failed by another worker before its owner could record it
    if stored is None or stored == "running":
        return _fallback_state(optuna_state)
    return TrialState(stored)


def _lost_message(worker: dict[str, Any] | None) -> str:
    who = f" ({worker.get('host')}, pid {worker.get('pid')})" if worker else ""
    return (f"{WORKER_DIED}{who} died or went silent before the trial finished; "
            "the configuration runs again")


def _fallback_state(state: OptunaState) -> TrialState:
    """For finished trials written by plain Optuna code into an lrtune study."""
    return {OptunaState.COMPLETE: TrialState.COMPLETED,
            OptunaState.PRUNED: TrialState.PRUNED}.get(state, TrialState.FAILED)


def optuna_state(state: TrialState) -> OptunaState:
    return _OPTUNA_STATE[state]
