"""Persistence on Optuna's storage layer: an lrtune trial is an Optuna trial plus a few user attrs.

Using Optuna's storages gives SQLite, PostgreSQL (any SQLAlchemy URL) and an in-memory store, and
an lrtune study opens in Optuna's own tools (``optuna.load_study``, optuna-dashboard).
Mapping: completed -> COMPLETE with its value; diverged and pruned -> PRUNED (Optuna's samplers
then still see them as bad trials); failed and lost -> FAIL. lrtune's own state, budget, tag,
diagnosis and loss history live in user attrs prefixed ``lrtune:``.
"""

from __future__ import annotations

import json
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial
from optuna.trial import TrialState as OptunaState

from lrtune.exceptions import LrtuneError
from lrtune.schedules import Schedule
from lrtune.space import CATEGORICAL, LogRange, Space
from lrtune.records import TrialRecord, TrialState

_PREFIX = "lrtune:"
_OPTUNA_STATE = {
    TrialState.RUNNING: OptunaState.RUNNING,
    TrialState.COMPLETED: OptunaState.COMPLETE,
    TrialState.DIVERGED: OptunaState.PRUNED,
    TrialState.PRUNED: OptunaState.PRUNED,
    TrialState.FAILED: OptunaState.FAIL,
    TrialState.LOST: OptunaState.FAIL,
}


class StorageError(LrtuneError):
    """A storage URL could not be opened, or holds a study that does not match the request."""


def safe_url(url: str) -> str:
    """``url`` with its password masked, for messages and logs."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL: show only its scheme
        return url.split("://", 1)[0] + "://..." if "://" in url else "<storage>"


def open_storage(url: str | None) -> optuna.storages.BaseStorage:
    """The Optuna storage behind ``url`` (None: in memory)."""
    if url is None:
        return optuna.storages.InMemoryStorage()
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": 60}  # wait for a writer instead of failing
    else:
        engine_kwargs["pool_pre_ping"] = True  # survive connections dropped during long epochs
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except Exception as err:  # SQLAlchemy / driver errors vary; the message names the URL
        raise StorageError(
            f"Cannot open the storage {safe_url(url)}: {type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}".rstrip(": ")
        ) from None


def distributions(space: Space, params: dict[str, Any]) -> dict[str, BaseDistribution]:
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


def to_storable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: _storable(v) for k, v in params.items()}


def from_storable(space: Space, params: dict[str, Any]) -> dict[str, Any]:
    """Params as stored, with Schedule objects put back in place of their descriptions."""
    out = dict(params)
    if "schedule" in out:
        by_label = {_storable(s): s for s in space.schedule}
        out["schedule"] = by_label.get(out["schedule"], out["schedule"])
    return out


def _storable(value: Any) -> Any:
    return repr(value) if isinstance(value, Schedule) else value


def record_from_optuna(space: Space, trial: FrozenTrial) -> TrialRecord:
    attrs = {k[len(_PREFIX):]: v for k, v in trial.user_attrs.items() if k.startswith(_PREFIX)}
    state = TrialState(attrs.get("state", _fallback_state(trial.state).value))
    return TrialRecord(
        number=trial.number,
        params=from_storable(space, trial.params),
        steps=attrs.get("steps", 0),
        state=state,
        value=trial.value if state is TrialState.COMPLETED else None,
        steps_done=attrs.get("steps_done", 0),
        tag=attrs.get("tag", ""),
        diagnosis=attrs.get("diagnosis"),
        error=attrs.get("error"),
        history=tuple(tuple(p) for p in attrs.get("history", ())),
        wall_time=attrs.get("wall_time"),
    )


def _fallback_state(state: OptunaState) -> TrialState:
    """For trials written by plain Optuna code into an lrtune study."""
    return {
        OptunaState.COMPLETE: TrialState.COMPLETED,
        OptunaState.PRUNED: TrialState.PRUNED,
        OptunaState.RUNNING: TrialState.RUNNING,
    }.get(state, TrialState.FAILED)


def set_attrs(storage: optuna.storages.BaseStorage, trial_id: int, **attrs: Any) -> None:
    for key, value in attrs.items():
        json.dumps(value)  # fail here, not deep in the storage, on unserialisable data
        storage.set_trial_user_attr(trial_id, _PREFIX + key, value)


def optuna_state(state: TrialState) -> OptunaState:
    return _OPTUNA_STATE[state]
