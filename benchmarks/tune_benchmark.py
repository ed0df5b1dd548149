"""Compare lrtune's strategies with what users run instead, at equal budgets counted in full runs.

Every method runs on every task, seed and budget; its chosen LR is scored by the mean final
validation loss of full runs at that LR over the reference seeds, as a normalised regret against
the dense-grid reference (``benchmarks/reference.py``: 0 = the grid's best, 1 = a random
log-uniform LR). A method that chooses no LR (Prodigy, schedule-free) is scored by its own run.

    python benchmarks/tune_benchmark.py --tasks digits,diabetes,mnist1d,charlm \\
        --seeds 0,1,2 --budgets 2,4                   # every registered method
    python benchmarks/tune_benchmark.py --methods lrtune-auto --recompute lrtune-auto

Choices are cached per (method, task, seed, budget) in ``benchmarks/out/tune_benchmark.json``
(dropped automatically when the task's code changes), so after editing ``auto`` only
``--recompute lrtune-auto`` reruns; the scoring runs are cached by ``reference.py``. Writes the
scored rows to ``tune_benchmark_results.json`` and the markdown table for RESULTS.md to
``tune_benchmark.md`` (both under ``benchmarks/out/``). Run one instance at a time: the caches
are plain JSON files that a second process would overwrite.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable, as `python -m` does
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import optuna
import torch

from benchmarks.peers import PEERS, Choice, Peer
from benchmarks.reference import (
    OUT, SEEDS, grid_reference, normalised_regret, per_seed_losses, task_version,
)
import lrtune
from lrtune.strategies import STRATEGIES
from lrtune.tasks import TASKS, get_task, objective, task_space

CACHE = OUT / "tune_benchmark.json"
RESULTS = OUT / "tune_benchmark_results.json"
TABLE = OUT / "tune_benchmark.md"


def lrtune_strategy(strategy: str) -> Peer:
    """``lrtune.tune`` with ``strategy`` on a built-in task's own objective and search space."""

    def run(task_name: str, budget_runs: float, seed: int) -> Choice:
        task = get_task(task_name)
        study = lrtune.tune(objective(task, seed), steps=task.steps, budget=budget_runs,
                            strategy=strategy, space=task_space(task), seed=seed)
        best = study.best
        if best is None:  # every trial failed
            return Choice(f"lrtune-{strategy}", task_name, seed, None, None, study.spent)
        return Choice(f"lrtune-{strategy}", task_name, seed, best.lr, best.value, study.spent)

    return run


METHODS: dict[str, Peer] = {
    **{f"lrtune-{name}": lrtune_strategy(name)
       for name in sorted(STRATEGIES, key=lambda name: name != "auto")},
    **PEERS,
}
"""Every method the benchmark knows: each lrtune strategy (``auto`` first), then the peers."""


@dataclass(frozen=True)
class Record:
    """One method run on one (task, seed, budget): its choice, cost in seconds, and its score."""

    choice: Choice
    budget: float
    wall_s: float
    task_version: str
    error: str | None = None


def record_key(method: str, task: str, seed: int, budget: float) -> str:
    return f"{method}|{task}|{seed}|{budget:g}"


# -- running ----------------------------------------------------------------------------------


def run_method(method: str, task: str, seed: int, budget: float) -> Record:
    """Run one method; an exception becomes a failed choice, scored as a diverged run."""
    start = time.perf_counter()
    try:
        choice, error = METHODS[method](task, budget, seed), None
    except Exception as exc:  # a broken method must not end a sweep of hundreds of runs
        traceback.print_exc()
        choice, error = Choice(method, task, seed, None, None, math.nan), repr(exc)
    return Record(choice, budget, time.perf_counter() - start, task_version(task), error)


def score(choice: Choice) -> float:
    """Normalised regret of full runs at the chosen LR on the reference seeds, else of its own."""
    if choice.lr is not None:
        losses = per_seed_losses(choice.task, choice.lr, SEEDS)
    else:
        losses = [math.inf if choice.val_loss is None else choice.val_loss]
    return normalised_regret(losses, grid_reference(choice.task))


def load_cache() -> dict[str, Record]:
    """Cached records whose task code is unchanged (failed runs are never cached)."""
    if not CACHE.exists():
        return {}
    records = {}
    for key, raw in json.loads(CACHE.read_text()).items():
        record = Record(**{**raw, "choice": Choice(**raw["choice"])})
        if record.task_version == task_version(record.choice.task):
            records[key] = record
    return records


def save_json(path: Path, data: object) -> None:
    """Write atomically, so an interrupted sweep never leaves a truncated file.

    Python's JSON dialect: a diverged run's loss is stored as ``Infinity``.
    """
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def sweep(methods: Sequence[str], tasks: Sequence[str], seeds: Sequence[int],
          budgets: Sequence[float], recompute: Iterable[str]) -> list[tuple[Record, float]]:
    """Run (or read from the cache) every combination, scoring and printing each as it lands."""
    cache, recompute = load_cache(), set(recompute)
    grid = [(m, t, s, b) for b in budgets for t in tasks for m in methods for s in seeds]
    scored = []
    for i, (method, task, seed, budget) in enumerate(grid, 1):
        key = record_key(method, task, seed, budget)
        cached = key in cache and method not in recompute
        record = cache[key] if cached else run_method(method, task, seed, budget)
        if not cached and record.error is None:
            cache[key] = record
            save_json(CACHE, {k: asdict(r) for k, r in cache.items()})
        regret = score(record.choice)
        scored.append((record, regret))
        print(_progress_line(i, len(grid), record, regret, cached), flush=True)
    return scored


def _progress_line(i: int, n: int, record: Record, regret: float, cached: bool) -> str:
    c = record.choice
    lr = "   (no lr)" if c.lr is None else f"lr={c.lr:.3g}".rjust(10)
    status = f"ERROR {record.error}" if record.error else ("cached" if cached
                                                            else f"{record.wall_s:.1f} s")
    return (f"[{i:>4}/{n}] {c.method:<22} {c.task:<9} seed={c.seed} budget={record.budget:g}: "
            f"{lr}  runs={c.runs_spent:5.2f}  regret={regret:7.3f}  ({status})")


# -- reporting --------------------------------------------------------------------------------


def summary_rows(scored: Sequence[tuple[Record, float]], tasks: Sequence[str]) -> list[dict]:
    """Per method and budget: mean regret over seeds per task, then median and worst task."""
    groups: dict[tuple[str, float], list[tuple[Record, float]]] = {}
    for record, regret in scored:
        groups.setdefault((record.choice.method, record.budget), []).append((record, regret))
    rows = []
    for (method, budget), items in groups.items():
        per_task = {t: float(np.mean([r for rec, r in items if rec.choice.task == t]))
                    for t in tasks}
        rows.append({
            "method": method, "budget": budget, "per_task": per_task,
            "median": float(np.median(list(per_task.values()))),
            "worst": max(per_task.values()),
            "runs": float(np.nanmean([rec.choice.runs_spent for rec, _ in items])),
            "wall_s": float(np.mean([rec.wall_s for rec, _ in items])),
            "errors": sum(rec.error is not None for rec, _ in items),
        })
    order = {m: i for i, m in enumerate(METHODS)}
    return sorted(rows, key=lambda row: (row["budget"], order[row["method"]]))


def markdown(rows: Sequence[dict], tasks: Sequence[str], seeds: Sequence[int]) -> str:
    """The table for RESULTS.md: normalised regret (0 = the grid's best LR, 1 = a random LR)."""
    head = ["method", "budget", "median regret", "worst task", "runs spent", "search s", *tasks]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["method"] + (f" ({row['errors']} errors)" if row["errors"] else ""),
                 f"{row['budget']:g}", f"{row['median']:.3f}", f"{row['worst']:.3f}",
                 f"{row['runs']:.2f}", f"{row['wall_s']:.1f}",
                 *(f"{row['per_task'][t]:.3f}" for t in tasks)]
        lines.append("| " + " | ".join(cells) + " |")
    note = (f"Regret per task is the mean over seeds {', '.join(map(str, seeds))}; each chosen LR "
            f"is scored by full runs on seeds {', '.join(map(str, SEEDS))}. `runs spent` counts "
            "training steps / one full run, final run included; `search s` is the method's own "
            "wall time per (task, seed), scoring excluded.")
    return "\n".join(lines) + "\n\n" + note + "\n"


def reference_lines(tasks: Sequence[str]) -> str:
    """The reference each regret is relative to, for the reader of RESULTS.md."""
    lines = ["| task | grid best LR | best loss | random-LR loss |", "|---|---|---|---|"]
    for task in tasks:
        ref = grid_reference(task)
        lines.append(f"| {task} | {ref.best_lr:.3g} | {ref.best_loss:.4f} | "
                     f"{ref.random_loss:.4f} |")
    return "\n".join(lines) + "\n"


# -- command line -----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    methods = list(METHODS)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated task names")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)),
                        help="comma-separated seeds of the methods' own randomness")
    parser.add_argument("--budgets", default="2,4", help="comma-separated budgets in full runs")
    parser.add_argument("--methods", default=",".join(methods),
                        help=f"comma-separated methods (default: all: {', '.join(methods)})")
    parser.add_argument("--recompute", default="", help="comma-separated methods to rerun "
                                                        "even where cached")
    args = parser.parse_args(argv)
    args.tasks, args.methods, args.recompute = (_names(args.tasks, TASKS, parser),
                                                _names(args.methods, methods, parser),
                                                _names(args.recompute, methods, parser))
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.budgets = [float(b) for b in args.budgets.split(",")]
    return args


def _names(text: str, valid: Iterable[str], parser: argparse.ArgumentParser) -> list[str]:
    names, valid = [n for n in text.split(",") if n], list(valid)
    unknown = [n for n in names if n not in valid]
    if unknown:
        parser.error(f"unknown {', '.join(unknown)}; choose from {', '.join(valid)}")
    return names


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)  # as reference.py: numbers depend on the thread count
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # one line per failed trial otherwise
    scored = sweep(args.methods, args.tasks, args.seeds, args.budgets, args.recompute)
    rows = summary_rows(scored, args.tasks)
    save_json(RESULTS, {"rows": [{**asdict(rec), "regret": regret} for rec, regret in scored],
                        "summary": rows})
    table = markdown(rows, args.tasks, args.seeds) + "\n" + reference_lines(args.tasks)
    TABLE.write_text(table)
    print("\n" + table)
    print(f"wrote {CACHE}, {RESULTS} and {TABLE}")


if __name__ == "__main__":
    main()
