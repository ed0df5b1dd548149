"""``lrtune.tune``: run a strategy over the user's objective within a compute budget."""

from __future__ import annotations

import time
from collections.abc import Callable

from lrtune._validation import check_float, check_int, fail
from lrtune.records import TrialRecord, TrialState
from lrtune.space import Space
from lrtune.strategies import Strategy, make_strategy
from lrtune.study._runner import run_trial
from lrtune.study._study import Study
from lrtune.trial import Trial

WAIT_SECONDS = 1.0  # how often to look again while other workers' trials block the strategy


def tune(
    objective: Callable[[Trial], float],
    *,
    steps: int,
    budget: float = 2.0,
    strategy: str | Strategy = "auto",
    space: Space | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    seed: int = 0,
    callbacks: list[Callable[[Study, TrialRecord], None]] | None = None,
) -> Study:
    """Search the learning rate (and what ``space`` lets vary) of ``objective``.

    ``steps`` is the length of one full training run; ``budget`` is the total compute the search
    may spend, in full runs (every trial counted by the steps it trained). The objective trains
    for ``trial.steps`` steps and returns the validation loss to minimise. The study is stored in
    ``storage`` (any SQLAlchemy URL, e.g. ``sqlite:///lrtune.db``; None keeps it in memory) and
    is continued when it already exists. ``callbacks`` are called after each trial.
    """
    owner = "tune()"
    if not callable(objective):
        raise fail("objective", owner, "a callable taking a Trial and returning a float", objective)
    steps = check_int(steps, "steps", owner)
    budget = check_float(budget, "budget", owner, low=0.0)
    check_int(seed, "seed", owner, minimum=0)
    if space is not None and not isinstance(space, Space):
        raise fail("space", owner, "an lrtune.Space", space)
    space = space if space is not None else Space()
    strategy = make_strategy(strategy)
    if budget < strategy.min_budget:
        raise fail("budget", owner, f"at least {strategy.min_budget:g} full runs for the "
                   f"{strategy.name!r} strategy to run one trial", budget)

    study = Study.open(storage=storage, study_name=study_name, space=space, steps=steps,
                       budget=budget, strategy=strategy, seed=seed)
    study.mark_lost()  # trials a killed process left RUNNING are proposed again
    while True:
        context = study.context()
        proposal = strategy.ask(context)
        if proposal is None:
            if any(t.state is TrialState.RUNNING for t in context.live):
                time.sleep(WAIT_SECONDS)  # another worker's trial must finish first
                continue
            break
        record = run_trial(study, objective, proposal)
        for callback in callbacks or ():
            callback(study, record)
    return study


def load_study(study_name: str, storage: str, *, space: Space | None = None,
               strategy: str | Strategy = "auto") -> Study:
    """Reopen a stored study for reading (reports) without running anything."""
    import optuna

    from lrtune.study._storage import StorageError, open_storage, safe_url

    backend = open_storage(storage)
    try:
        optuna_study = optuna.load_study(study_name=study_name, storage=backend)
    except KeyError:
        raise StorageError(f"No study named {study_name!r} in {safe_url(storage)}.") from None
    config = optuna_study.user_attrs.get("lrtune:config", {})
    if space is None:
        space = Space.from_description(config.get("space", {}))
    strategy = make_strategy(config.get("strategy", strategy))
    return Study(optuna_study, space, config.get("steps", 1),
                 optuna_study.user_attrs.get("lrtune:budget", float("nan")), strategy,
                 config.get("seed", 0))
