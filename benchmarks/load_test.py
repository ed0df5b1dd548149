"""Load test of parallel studies: 4 workers x 200 short trials, on SQLite and on PostgreSQL.

Two parts:

1. **Storage modes** (why SQLite runs in WAL mode with ``BEGIN IMMEDIATE``): 4 processes hammer
   one SQLite file with the storage calls of lrtune trials (create with attrs, intermediate
   values, outcome attrs, final state, a read of the whole study), through Optuna's default
   SQLite set-up, through lrtune's, and through Optuna's journal file. Then the same 4
   processes race to fail the same RUNNING trials, the check-then-write a dead worker's trial
   needs: exactly one of them may succeed per trial ("double wins" must be 0).
2. **Load**: a grid study of 200 trials of 100 steps (examples/own_loop.py, a real MLP on
   digits) worked by 1 and then by 4 ``lrtune worker`` processes, on SQLite and on PostgreSQL
   (``$LRTUNE_TEST_POSTGRES_URL``, else a server started with scripts/postgres.sh and stopped
   after). Counted from the storage: trials finished, lost, duplicated (a configuration
   finished twice), claims withdrawn as concurrent duplicates, trials left running; from the
   workers' logs: lock errors and retried storage calls. Throughput is trials per second in the
   steady state, from the moment every worker has finished its first trial (start-up, imports
   and data loading excluded) to the end of the last one; the wall time includes everything.
   The 4-worker results must equal the 1-worker ones value for value. The same study is then
   worked by 4 Ray tasks (``tune(executor="ray")``) on a local Ray cluster (``--no-ray``: not).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m benchmarks.load_test

3. **Throughput as a study grows** (``--throughput``, its own section): one worker's loop
   (reap, read the study, ask, claim, train, record) with a trivial objective and a strategy
   that costs nothing, so what is timed is the study's storage and bookkeeping, then with
   ``grid``, whose every ask looks for its first untried point among all it tried. The study is
   filled with finished trials up to 50 short of each size, then the worker loop runs the last
   50, in turns that alternate between the sizes; trials/s is measured over those. The rate at
   5,000 trials should be at least half the rate at 100: a worker reads what changed, not the
   whole history.

    nice -n 10 .venv/bin/python -m benchmarks.load_test --throughput
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
import contextlib
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import optuna

from benchmarks.results_md import publish
import lrtune
from lrtune.cli._loading import load_object
from lrtune.strategies import Answer, Context, Proposal, Strategy, make_strategy
from lrtune.study import Study
from lrtune.study._schema import attrs_of, distributions, is_retired, prefixed, to_storable
from lrtune.study._storage import open_storage

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Workers and storage"
OBJECTIVE = f"{ROOT / 'examples' / 'own_loop.py'}:objective"
SPACE = lrtune.Space(lr=(1e-4, 1.0), optimizer="sgd")
LOCK_ERROR = re.compile(r"database is locked|deadlock detected|could not serialize", re.I)


# -- 1. storage modes ------------------------------------------------------------------------------
def _mode_storage(mode: str, path: str) -> optuna.storages.BaseStorage:
    if mode == "sqlite: Optuna default":
        return optuna.storages.RDBStorage(f"sqlite:///{path}")
    if mode == "sqlite: WAL + BEGIN IMMEDIATE (lrtune)":
        return open_storage(f"sqlite:///{path}")
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))


MODES = ("sqlite: Optuna default", "sqlite: WAL + BEGIN IMMEDIATE (lrtune)",
         "journal file (Optuna)")


def _hammer(mode: str, path: str, study_id: int, trials: int, race: list[int],
            barrier: Any, results: Any) -> None:
    """One process: ``trials`` trials' worth of storage calls, then the race to fail ``race``."""
    study = optuna.load_study(study_name="bench", storage=_mode_storage(mode, path))
    storage = study._storage  # Optuna's caching layer over the backend, as lrtune reads it
    errors: Counter = Counter()
    barrier.wait()
    start = time.perf_counter()
    for i in range(trials):
        try:
            template = optuna.trial.create_trial(
                state=optuna.trial.TrialState.RUNNING, params={"lr": 10 ** -(i % 5)},
                distributions={"lr": optuna.distributions.FloatDistribution(1e-6, 10, log=True)},
                user_attrs=prefixed({"state": "running", "steps": 20, "tag": "grid", "beat": 0}))
            trial_id = storage.create_new_trial(study_id, template_trial=template)
            for step in range(5):
                storage.set_trial_intermediate_value(trial_id, step, 1.0 / (step + 1))
            outcome = prefixed({key: [i, key] for key in ("state", "steps_done", "diagnosis",
                                                          "error", "history", "wall_time")})
            for key, value in outcome.items():
                storage.set_trial_user_attr(trial_id, key, value)
            storage.set_trial_state_values(trial_id, optuna.trial.TrialState.COMPLETE, [0.5])
            study.get_trials(deepcopy=False)
        except Exception as err:  # noqa: BLE001 - counted, not fatal: this is what is measured
            errors["lock" if LOCK_ERROR.search(str(err.__cause__ or err)) else
                   type(err).__name__] += 1
    elapsed = time.perf_counter() - start
    barrier.wait()
    wins = []
    for trial_id in race:
        try:
            if storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL):
                wins.append(trial_id)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass
        except Exception as err:  # noqa: BLE001 - counted, not fatal: this is what is measured
            errors["lock" if LOCK_ERROR.search(str(err.__cause__ or err)) else
                   type(err).__name__] += 1
    results.put({"elapsed": elapsed, "trials": trials, "errors": dict(errors), "wins": wins})


def storage_modes(processes: int, trials: int, race: int) -> list[dict]:
    ctx = multiprocessing.get_context("spawn")
    rows = []
    for mode in MODES:
        with tempfile.TemporaryDirectory() as tmp:
            path = str(Path(tmp, "bench.db" if mode.startswith("sqlite") else "bench.log"))
            storage = _mode_storage(mode, path)
            study_id = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], "bench")
            racers = [storage.create_new_trial(study_id) for _ in range(race)]
            barrier, results = ctx.Barrier(processes), ctx.Queue()
            procs = [ctx.Process(target=_hammer, args=(mode, path, study_id, trials, racers,
                                                       barrier, results))
                     for _ in range(processes)]
            for proc in procs:
                proc.start()
            outcome = [results.get(timeout=600) for _ in procs]
            for proc in procs:
                proc.join()
        errors: Counter = Counter()
        for o in outcome:
            errors.update(o["errors"])
        wins = Counter(w for o in outcome for w in o["wins"])
        slowest = max(o["elapsed"] for o in outcome)
        rows.append({"mode": mode, "processes": processes,
                     "trials_per_s": processes * trials / slowest,
                     "lock_errors": errors.pop("lock", 0), "other_errors": dict(errors),
                     "double_wins": sum(n - 1 for n in wins.values()),
                     "unfailed": race - len(wins)})
        print(f"  {mode}: {rows[-1]}", flush=True)
    return rows


# -- 2. load ---------------------------------------------------------------------------------------
def load(backend: str, url: str, workers: int, trials: int, steps: int,
         executor: str = "local") -> dict:
    """A fresh grid study of ``trials`` trials of ``steps`` steps, worked by ``workers``
    ``lrtune worker`` processes, or by as many Ray tasks (``executor="ray"``)."""
    name = f"load-{backend}-{workers}-{os.getpid()}-{time.time_ns()}"
    Study.open(storage=url, study_name=name, space=SPACE, steps=steps, budget=float(trials),
               strategy=make_strategy("grid"), seed=0)
    started = time.perf_counter()
    if executor == "ray":  # Ray tasks on the cluster this process is connected to
        lrtune.tune(load_object(OBJECTIVE), storage=url, study_name=name, steps=steps,
                    budget=float(trials), strategy="grid", space=SPACE, seed=0,
                    executor="ray", workers=workers)
        logs, codes = None, None  # Ray keeps the workers' logs in its session folder
    else:
        env = dict(os.environ, OMP_NUM_THREADS="1")
        procs = [subprocess.Popen([sys.executable, "-m", "lrtune.cli", "worker", OBJECTIVE,
                                   "--storage", url, "--study", name], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for _ in range(workers)]
        logs = [proc.communicate()[1] for proc in procs]
        codes = [proc.returncode for proc in procs]
    wall = time.perf_counter() - started
    raw = optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
    records = lrtune.load_study(name, url).trials
    done = [t for t in records if t.state.finished]
    keys = Counter((t.tag, t.lr, t.steps) for t in done)
    live = [t for t in raw if not is_retired(t) and t.datetime_complete]
    last = max(t.datetime_complete for t in live)
    # steady state: once every worker has finished its first trial (which pays for imports and
    # loading the data), until the last trial ends
    firsts: dict[int, Any] = {}
    for t in sorted(live, key=lambda t: t.datetime_complete):
        firsts.setdefault(attrs_of(t)["worker"]["pid"], t.datetime_complete)
    warm = max(firsts.values())
    steady = sum(t.datetime_complete > warm for t in live)
    return {
        "backend": backend, "executor": executor, "workers": workers, "trials": trials,
        "steps": steps,
        "finished": len(done),
        "lost": sum(t.state is lrtune.TrialState.LOST for t in records),
        "duplicated": sum(n - 1 for n in keys.values()),
        "withdrawn_claims": len(raw) - len(live),
        "left_running": sum(t.state is lrtune.TrialState.RUNNING for t in records),
        "lock_errors": None if logs is None else sum(len(LOCK_ERROR.findall(g)) for g in logs),
        "retried_calls": None if logs is None else sum(g.count("retrying in") for g in logs),
        "exit_codes": codes,
        "trials_per_s": steady / (last - warm).total_seconds(),
        "wall_s": wall,
        "values": {f"{t.tag}|{t.lr!r}|{t.steps}": t.value for t in done},
    }


def postgres_url() -> tuple[str, str | None]:
    """($LRTUNE_TEST_POSTGRES_URL, None), or a server started here and its directory."""
    if os.environ.get("LRTUNE_TEST_POSTGRES_URL"):
        return os.environ["LRTUNE_TEST_POSTGRES_URL"], None
    out = subprocess.run([str(ROOT / "scripts" / "postgres.sh"), "start"], check=True,
                         capture_output=True, text=True).stdout
    env = dict(line.removeprefix("export ").replace("'", "").split("=", 1)
               for line in out.splitlines())
    return env["LRTUNE_TEST_POSTGRES_URL"], env["LRTUNE_TEST_POSTGRES_DIR"]


# -- 3. throughput as the study grows --------------------------------------------------------------
THROUGHPUT_SECTION = "## Study loop throughput as a study grows"
SIZES = "100,1000,5000"  # default --sizes
MEASURED = 50  # trials run through the worker loop at each size ...
ROUNDS = 5  # ... in this many turns
STRATEGIES = "again,grid"  # default --strategies


class Again(Strategy):
    """The same configuration again while budget remains: a strategy that costs nothing."""

    name = "again"

    def ask(self, context: Context) -> Answer:
        return Proposal(context.space.config(1e-3), context.full_steps, "again")  # the worker
        # ends the study when the budget left cannot pay for it


class _TurnDone(Exception):
    """Raised by the callback after a turn's trials: the worker loop stops there."""


def _throughput_setup(strategy: str, size: int) -> tuple[Strategy, lrtune.Space, list[dict]]:
    """The strategy, its space, and the params of the first trials it would run in a study of
    ``size`` trials (what the study is filled with)."""
    if strategy == "again":
        space = lrtune.Space(lr=1e-3, optimizer="sgd")
        return Again(), space, [space.config(1e-3)] * (size - MEASURED)
    space = lrtune.Space(lr=(1e-4, 1.0), optimizer="sgd")  # grid: one point per full run
    points = [space.config(space.lr_range.value((i + 0.5) / size)) for i in range(size)]
    return make_strategy(strategy), space, points[:size - MEASURED]


def _fill(study: Study, path: Path, params: list[dict], tag: str) -> None:
    """Finished trials with ``params``, as the worker loop leaves them: one written through
    Optuna, then copied row by row in one SQLite transaction (Optuna's storage takes a
    transaction per trial, which would make filling slower than the measurement), its LR
    replaced by each one's."""
    study.optuna.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.COMPLETE, value=1.0, params=to_storable(params[0]),
        distributions=distributions(study.space, params[0]),
        user_attrs=prefixed({"state": "completed", "steps": 1, "tag": tag, "beat": 0,
                             "worker": {"host": "fill", "pid": 0}, "steps_done": 1,
                             "history": [[0, 1.0]], "wall_time": 0.0})))
    with sqlite3.connect(path) as db:
        count, template = db.execute("SELECT COUNT(*), MAX(trial_id) FROM trials").fetchone()
        children = {table: [c[1] for c in db.execute(f"PRAGMA table_info({table})")
                            if not c[5] and c[1] != "trial_id"]
                    for table in ("trial_params", "trial_values", "trial_user_attributes")}
        for number in range(count, len(params)):
            new = db.execute("INSERT INTO trials (number, study_id, state, datetime_start, "
                             "datetime_complete) SELECT ?, study_id, state, datetime_start, "
                             "datetime_complete FROM trials WHERE trial_id = ?",
                             (number, template)).lastrowid
            for table, cols in children.items():
                names = ", ".join(cols)
                db.execute(f"INSERT INTO {table} (trial_id, {names}) SELECT ?, {names} FROM "
                           f"{table} WHERE trial_id = ?", (new, template))
            db.execute("UPDATE trial_params SET param_value = ? WHERE trial_id = ? AND "
                       "param_name = 'lr'", (params[number]["lr"], new))


def throughput(folder: Path, sizes: list[int], strategy: str) -> list[dict]:
    """Trials per second of the worker loop at each study size in ``sizes``, on SQLite.

    One study per size, its budget that size in full runs; the sizes take turns, ``ROUNDS``
    times, so that a change in the load of a shared machine slows every size alike instead of
    the one measured at that moment.
    """
    urls = {size: f"sqlite:///{folder / f'grow-{strategy}-{size}.db'}" for size in sizes}
    elapsed, intervals = dict.fromkeys(sizes, 0.0), dict.fromkeys(sizes, 0)
    setups = {size: _throughput_setup(strategy, size) for size in sizes}
    for size, url in urls.items():
        chosen, space, params = setups[size]
        _fill(Study.open(storage=url, study_name="grow", space=space, steps=1,
                         budget=float(size), strategy=chosen, seed=0),
              folder / f"grow-{strategy}-{size}.db", params, chosen.name)
    for _turn in range(ROUNDS):
        for size, url in urls.items():
            chosen, space, _ = setups[size]
            ends: list[float] = []

            def timed(study: Study, record: Any, ends: list[float] = ends) -> None:
                ends.append(time.perf_counter())
                if len(ends) == MEASURED // ROUNDS:
                    raise _TurnDone

            with contextlib.suppress(_TurnDone):
                lrtune.tune(lambda trial: 1.0, steps=1, space=space, storage=url,
                            budget=float(size), strategy=chosen, study_name="grow",
                            callbacks=[timed])
            elapsed[size] += ends[-1] - ends[0]
            intervals[size] += len(ends) - 1
    rows = [{"strategy": strategy, "trials": size, "trials_per_s": intervals[size] / elapsed[size],
             "measured": intervals[size] + ROUNDS} for size in sizes]
    for row in rows:
        print(f"  {row}", flush=True)
    return rows


def throughput_markdown(rows: list[dict], command: str) -> str:
    lines = [THROUGHPUT_SECTION, "", f"Command: `{command}` (2 shared CPU cores; other jobs were "
             "running).", "", "One worker on SQLite and a trivial objective, with a strategy "
             "that costs nothing (`again`: the same configuration while budget remains) and "
             "with `grid` (one LR per full run: each ask looks for its first untried point); "
             f"the study is filled with finished trials up to {MEASURED} short of each size, "
             f"then the worker loop runs the next {MEASURED}, in {ROUNDS} turns that alternate "
             "between the sizes (a shared machine's load then weighs on each alike).", "",
             "| strategy | trials in the study | trials/s | relative to the smallest study |",
             "|---|---|---|---|"]
    for strategy in dict.fromkeys(r["strategy"] for r in rows):
        mine = [r for r in rows if r["strategy"] == strategy]
        lines += [f"| {strategy} | {r['trials']:,} | {r['trials_per_s']:.1f} | "
                  f"{r['trials_per_s'] / mine[0]['trials_per_s']:.2f} |" for r in mine]
    return "\n".join(lines) + "\n"


@contextmanager
def _ray_cluster(cpus: int) -> Iterator[None]:
    """A one-node Ray cluster with ``cpus`` CPUs for the Ray rows, stopped after."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


# -- report ----------------------------------------------------------------------------------------
def markdown(modes: list[dict], runs: list[dict], command: str) -> str:
    lines = [SECTION, "", f"Command: `{command}` (2 shared CPU cores; other jobs were running).",
             "", "Storage modes: 4 processes, the storage calls of lrtune trials on one file, then "
             "a race of all 4 to fail the same RUNNING trials (exactly one may win each).", "",
             "| storage | trials/s | lock errors | other errors | double wins |",
             "|---|---|---|---|---|"]
    for m in modes:
        lines.append(f"| {m['mode']} | {m['trials_per_s']:.1f} | {m['lock_errors']} | "
                     f"{sum(m['other_errors'].values())} | {m['double_wins']} |")
    lines += ["", f"Load: a grid study of {runs[0]['trials']} trials x {runs[0]['steps']} steps "
              "(examples/own_loop.py, MLP on digits) worked by `lrtune worker` processes.", "",
              "| backend | workers | finished | lost | duplicated | withdrawn claims | "
              "lock errors | retried calls | trials/s (steady) | speed-up | wall time | "
              "same values as 1 worker |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    single = {r["backend"]: r for r in runs if r["workers"] == 1 and r["executor"] == "local"}
    for r in runs:
        base = single[r["backend"]]
        lines.append(
            f"| {r['backend']} | {r['workers']}{' Ray tasks' if r['executor'] == 'ray' else ''} | "
            f"{r['finished']}/{r['trials']} | {r['lost']} | "
            f"{r['duplicated']} | {r['withdrawn_claims']} | {_count(r['lock_errors'])} | "
            f"{_count(r['retried_calls'])} | {r['trials_per_s']:.1f} | "
            f"{r['trials_per_s'] / base['trials_per_s']:.2f}x | {r['wall_s']:.0f} s | "
            f"{'yes' if r['values'] == base['values'] else 'NO'} |")
    return "\n".join(lines) + "\n" + NOTES


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)  # "-": not counted (Ray keeps those logs)


NOTES = """
Reading the tables:
- *Double wins* are the race a dead worker's trial goes through (its owner finishing it while
  another worker fails it as lost): Optuna's default SQLite set-up reads the state outside the
  write transaction, so two processes can both "win", and a result could be both kept and run
  again. lrtune's set-up (`BEGIN IMMEDIATE`: the read happens under the write lock) never did.
  No set-up showed "database is locked" at this scale; WAL is also what lets a report or a
  dashboard read while workers write.
- Optuna's journal file is the fastest store here, but not the default: a study would no
  longer be one SQLite file that `optuna.load_study`, optuna-dashboard or `sqlite3` open by
  URL, its log grows with every heartbeat and intermediate value and is replayed by each
  process that opens it, and with trials of seconds or more the few dozen storage calls of a
  trial are a small share of its time.
- *Withdrawn claims* are duplicates caught before any training: two workers proposed the same
  configuration at the same moment, the later claim saw the earlier one and withdrew (three
  small writes). They are frequent here because these trials last about 0.1 s and a
  PostgreSQL claim takes tens of milliseconds to commit (Optuna writes each parameter and
  attribute separately); with trials of seconds or more they are rare. None trained twice.
- *Ray tasks*: the same study worked by `tune(executor="ray")` on a one-node Ray cluster
  started by the benchmark (one CPU per worker); the speed-up is against one `lrtune worker`
  on the same storage.
- *Speed-up*: the machine has 2 cores, shared with other jobs during the run, and a 0.1 s
  trial spends about half its CPU in SQLAlchemy's ORM, so 2x is the ceiling here, not 4x.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--no-ray", action="store_true", help="leave out the Ray rows")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    parser.add_argument("--throughput", action="store_true",
                        help="only the throughput of the worker loop as a study grows")
    parser.add_argument("--sizes", default=SIZES, help="study sizes for --throughput")
    parser.add_argument("--strategies", default=STRATEGIES,
                        help="strategies for --throughput: again (costs nothing), grid")
    args = parser.parse_args()
    if args.throughput:
        with tempfile.TemporaryDirectory() as tmp:
            rows = [row for strategy in args.strategies.split(",")
                    for row in throughput(Path(tmp), [int(size) for size in args.sizes.split(",")],
                                          strategy)]
        command = "nice -n 10 .venv/bin/python -m benchmarks.load_test --throughput"
        publish(THROUGHPUT_SECTION, throughput_markdown(rows, command), "throughput.json", rows,
                write=not args.no_write)
        return
    print("storage modes", flush=True)
    modes = storage_modes(args.workers, trials=50, race=100)
    runs, server_dir = [], None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for backend in args.backends.split(","):
                if backend == "sqlite":
                    url = f"sqlite:///{Path(tmp, 'load.db')}"
                else:
                    url, server_dir = postgres_url()
                plan = [(1, "local"), (args.workers, "local")]
                plan += [] if args.no_ray else [(args.workers, "ray")]
                for workers, executor in plan:
                    with _ray_cluster(args.workers) if executor == "ray" else nullcontext():
                        runs.append(load(backend, url, workers, args.trials, args.steps,
                                         executor))
                    print(f"  {backend} x{workers} {executor}: "
                          f"{ {k: v for k, v in runs[-1].items() if k != 'values'} }", flush=True)
        finally:
            if server_dir is not None:
                subprocess.run([str(ROOT / "scripts" / "postgres.sh"), "stop", server_dir],
                               check=True)
    command = "OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m benchmarks.load_test"
    publish(SECTION, markdown(modes, runs, command), "load_test.json",
            {"modes": modes, "runs": runs}, write=not args.no_write)


if __name__ == "__main__":
    main()
