"""``lrtune.tune``: run a strategy over the user's objective within a compute budget."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

import sqlalchemy

from lrtune._validation import check_choice, check_float, check_int, fail
from lrtune.records import TrialRecord
from lrtune.space import Space
from lrtune.strategies import Strategy, make_strategy
from lrtune.study._storage import sqlite_slashes
from lrtune.study._study import Study, load_optuna_study
from lrtune.study._worker import run_worker
from lrtune.trial import Trial

EXECUTORS = ("local", "ray")  # where the workers run: this machine's processes, a Ray cluster
WORKERS_PER_CPU = 4  # local worker processes beyond this only contend (a typo's 1000 forked)
MAX_BUDGET = 100_000.0  # full runs: no study trains more, and a strategy plans a trial per run
MAX_SECONDS = 1e9  # heartbeat, trial_timeout: 31 years; a longer wait overflows the OS's timers


def local_worker_limit() -> int:
    """The most worker processes ``tune`` starts on this machine."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return WORKERS_PER_CPU * (cpus or 1)


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
    workers: int | None = None,
    heartbeat: float | None = None,
    trial_timeout: float | None = None,
    executor: str = "local",
    resources: Mapping[str, float] | None = None,
) -> Study:
    """Search the learning rate (and what ``space`` lets vary) of ``objective``.

    ``steps`` is the length of one full training run; ``budget`` is the total compute the search
    may spend, in full runs (every trial counted by the steps it trained; at most 100,000). The
    objective trains for ``trial.steps`` steps and returns the validation loss to minimise. The
    study is stored in ``storage`` (any SQLAlchemy URL, e.g. ``sqlite:///lrtune.db``; None keeps
    it in memory) and is continued when it exists: calling ``tune`` with the same arguments on
    other processes or hosts (or running ``lrtune worker``) adds workers to it. ``callbacks`` are
    called after each trial.

    ``workers`` > 1 trains in that many local processes (they need a ``storage``; the objective
    is sent to them with cloudpickle); None means one. ``executor="ray"`` runs the workers as
    Ray tasks instead, each asking Ray for ``resources`` (``{"num_gpus": 1, "num_cpus": 4}``;
    default one CPU), as many as ``workers`` says or, when None, as the cluster places at
    once; it uses the caller's ``ray.init`` connection, else connects as ``ray.init()`` does
    ($RAY_ADDRESS, the cluster running here, else a new local one), and needs a ``storage``
    every node reaches (SQLite on one node, PostgreSQL across nodes). ``heartbeat`` (seconds,
    default 5 for a new study) is how often a running trial signals that its worker lives: a
    worker silent for six of them is declared dead and its trial runs again; one that dies on
    this machine is noticed at once. ``trial_timeout`` (seconds) fails a trial that runs longer
    (a hung objective), at the line it was stuck on.

    A stored study keeps its settings: reopening it with another space, steps, strategy, seed
    or heartbeat is refused, and so is a smaller ``budget``; a larger one extends the study
    (with a :class:`~lrtune.exceptions.StudyExtendedWarning`). A study of that name that lrtune
    did not create is refused too.
    """
    owner = "tune()"
    if not callable(objective):
        raise fail("objective", owner, "a callable taking a Trial and returning a float", objective)
    steps = check_int(steps, "steps", owner)
    budget = check_float(budget, "budget", owner, low=0.0, high=MAX_BUDGET)
    check_int(seed, "seed", owner, minimum=0)
    if space is not None and not isinstance(space, Space):
        raise fail("space", owner, "an lrtune.Space", space)
    if callbacks is not None and (not isinstance(callbacks, Sequence)
                                  or not all(callable(c) for c in callbacks)):
        raise fail("callbacks", owner, "a list of callables (study, trial record) or None",
                   callbacks)
    _check_storage(storage, owner)
    if study_name is not None and not (isinstance(study_name, str) and study_name):
        raise fail("study_name", owner, "a non-empty str or None", study_name)
    executor = check_choice(executor, "executor", owner, EXECUTORS)
    if workers is not None:
        workers = check_int(workers, "workers", owner)
    if (workers or 1) > 1 and storage is None:
        raise fail("workers", owner, "1 when storage is None (worker processes share the study "
                   "through a storage URL such as sqlite:///lrtune.db)", workers)
    most = local_worker_limit()
    if executor == "local" and (workers or 1) > most:
        raise fail("workers", owner, f"at most {most} ({WORKERS_PER_CPU} per CPU "
                   "this process may use) for worker processes on this machine: more only "
                   "contend for its CPUs and memory; workers on other hosts join with "
                   "`lrtune worker`, or use executor='ray'", workers)
    if executor == "ray":
        from lrtune.study._ray import check_resources, import_ray

        resources = check_resources(resources, owner)
        if storage is None:
            raise fail("storage", owner, "a storage URL every Ray node reaches (sqlite:///"
                       "lrtune.db on one node, postgresql://... across nodes) when executor is "
                       "'ray'", storage)
        import_ray()
    elif resources is not None:
        raise fail("resources", owner, "None unless executor is 'ray'", resources)
    if executor == "ray" or (workers or 1) > 1:  # the objective goes to other processes
        from lrtune.study._processes import check_picklable

        check_picklable(objective, workers)  # before the study is created
    if heartbeat is not None:
        heartbeat = check_float(heartbeat, "heartbeat", owner, low=0.0, high=MAX_SECONDS)
    if trial_timeout is not None:
        from lrtune.study._timeout import with_timeout

        objective = with_timeout(objective, check_float(trial_timeout, "trial_timeout", owner,
                                                        low=0.0, high=MAX_SECONDS))
    space = space if space is not None else Space()
    strategy = make_strategy(strategy)
    if budget < strategy.min_budget:
        raise fail("budget", owner, f"at least {strategy.min_budget:g} full runs for the "
                   f"{strategy.name!r} strategy to run one trial", budget)

    study = Study.open(storage=storage, study_name=study_name, space=space, steps=steps,
                       budget=budget, strategy=strategy, seed=seed, heartbeat=heartbeat)
    if executor == "ray":
        from lrtune.study._ray import run_ray

        # checked for executor 'ray' above: storage is a URL, resources a dict
        assert storage is not None and resources is not None
        run_ray(study, objective, storage=storage, workers=workers, resources=resources,
                callbacks=callbacks or ())
    elif (workers or 1) == 1:
        run_worker(study, objective, callbacks or ())
    else:
        from lrtune.study._processes import run_processes

        assert storage is not None and workers is not None  # checked with workers above
        run_processes(study, objective, storage=storage, workers=workers,
                      callbacks=callbacks or ())
    return study


def _check_storage(storage: object, owner: str) -> None:
    if storage is None:
        return
    if not isinstance(storage, str):
        raise fail("storage", owner, "a storage URL string such as 'sqlite:///lrtune.db' "
                   "(for a path: f'sqlite:///{path}') or None", storage)
    try:
        url = sqlalchemy.engine.make_url(storage)
    except sqlalchemy.exc.ArgumentError:
        raise fail("storage", owner, "a storage URL such as 'sqlite:///lrtune.db'",
                   storage) from None
    if hint := sqlite_slashes(url):
        raise fail("storage", owner, f"a storage URL: {hint}", storage)
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise fail("storage", owner, "a SQLite file, not an in-memory SQLite database (each "
                   "connection would see another, empty one); storage=None keeps a study in "
                   "memory", storage)


def load_study(study_name: str, storage: str, *, space: Space | None = None,
               strategy: str | Strategy | None = None, read_only: bool = False) -> Study:
    """Reopen a stored study without running anything (to read it, or to store a range test
    with it). ``read_only`` opens a SQLite file for reading only, as ``lrtune report`` does: a
    file without write permission, or on a read-only mount, opens, and nothing in it changes.

    The strategy is rebuilt from the name stored with the study: a custom one must be
    registered (:func:`lrtune.strategies.register`) or given as ``strategy``. ``space`` and
    ``strategy`` stand in where the storage does not say (a study Optuna created).
    """
    return Study.from_stored(load_optuna_study(study_name, storage, read_only), space, strategy)
