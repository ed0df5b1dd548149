"""Compare lrtune's strategies with what users run instead, at equal budgets counted in full runs.

Every method runs on every task, seed and budget; its chosen LR is scored by the mean final
validation loss of full runs at that LR over the reference seeds, as a normalised regret against
the dense-grid reference (``benchmarks/reference.py``: 0 = the grid's best, 1 = a random
log-uniform LR). A method that chooses no LR (Prodigy, schedule-free) is scored by its own run.

    python benchmarks/tune_benchmark.py --tasks digits,diabetes,mnist1d,charlm \\
        --seeds 0,1,2 --budgets 2,4                   # every registered method
    python benchmarks/tune_benchmark.py --suite dev --methods lrtune-auto --budgets 2 \\
        --seeds 0,1,2,3,4 --publish                     # the development half of the suite

Choices are cached per (method, task, seed, budget) in ``benchmarks/out/tune_benchmark.json``,
keyed on the task's code and on the method's (:func:`method_version`), so a record made before
``auto`` (or a task, or a peer) was edited is never scored again: only what changed reruns, and
``--recompute`` forces a method. The scoring runs are cached by ``reference.py``. Writes the scored
rows to ``tune_benchmark_results.json`` and the markdown to ``tune_benchmark.md`` (both under
``benchmarks/out/``); ``--publish`` also makes it its section of RESULTS.md. Run one instance at a
time: the caches are plain JSON files that a second process would overwrite.

``--suite dev|validation`` runs one half of the development suite (``benchmarks/recipes``) and
reports every recipe with its per-seed regrets and worst seed. Rules and constants are chosen on
the development half; the validation half is run once a change is decided. ``--suite fresh``
runs the fresh set, recipes written after the rules were chosen (never tuned on);
``--suite dev-constant`` the dev half's decaying recipes at a constant LR (development material).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import os
import sys
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable, as `python -m` does
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import optuna
import torch

from benchmarks.peers import PEERS, Choice, Peer
from benchmarks.recipes import SETS, recipe_names
from benchmarks.reference import (
    OUT, SEEDS, grid_reference, normalised_regret, per_seed_losses, task_version,
)
from benchmarks.results_md import publish
from benchmarks.tasks import benchmark_names, benchmark_task, search_space
import lrtune
from lrtune.strategies import STRATEGIES
from lrtune.tasks import TASKS, objective

CACHE = OUT / "tune_benchmark.json"
RESULTS = OUT / "tune_benchmark_results.json"
TABLE = OUT / "tune_benchmark.md"


def lrtune_strategy(strategy: str) -> Peer:
    """``lrtune.tune`` with ``strategy`` on a built-in task's own objective and search space."""

    def run(task_name: str, budget_runs: float, seed: int) -> Choice:
        task = benchmark_task(task_name)
        study = lrtune.tune(objective(task, seed), steps=task.steps, budget=budget_runs,
                            strategy=strategy, space=search_space(task), seed=seed)
        best = study.best
        if best is None:  # every trial failed
            return Choice(f"lrtune-{strategy}", task_name, seed, None, None, study.spent)
        estimate = study.estimate
        interval = None if estimate is None or estimate.low is None or estimate.high is None \
            else (estimate.low, estimate.high)
        return Choice(f"lrtune-{strategy}", task_name, seed, best.lr, best.value, study.spent,
                      estimate.lr if estimate else None, interval)

    return run


METHODS: dict[str, Peer] = {
    **{f"lrtune-{name}": lrtune_strategy(name)
       for name in sorted(STRATEGIES, key=lambda name: name != "auto")},
    **PEERS,
}
"""Every method the benchmark knows: each lrtune strategy (``auto`` first), then the peers."""

LRTUNE = Path(lrtune.__file__).resolve().parent
PEERS_FILE = Path(__file__).resolve().parent / "peers.py"
# The parts of lrtune that decide a method's choices: for its strategies, the strategies, the
# study that drives them, the trial and space they hand to the objective and the monitor that
# stops a diverging trial; the peers watch their runs with that monitor too.
STRATEGY_CODE = ("strategies", "study", "trial.py", "space.py", "diagnostics")
PEER_CODE = {"lrtune-find": ("diagnostics", "finder")}
PEER_DEFAULT_CODE = ("diagnostics",)


def method_version(method: str) -> str:
    """A hash of the code that makes ``method``'s choices (the tasks' code is keyed separately)."""
    if method.startswith("lrtune-") and method.removeprefix("lrtune-") in STRATEGIES:
        parts, own = STRATEGY_CODE, []
    else:
        parts, own = PEER_CODE.get(method, PEER_DEFAULT_CODE), [PEERS_FILE]
    paths = own + sorted(p for part in parts for p in
                         ([LRTUNE / part] if part.endswith(".py")
                          else (LRTUNE / part).rglob("*.py")))
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.relative_to(path.parents[1]).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@functools.cache
def running_version(method: str) -> str:
    """:func:`method_version` as this process first read it (:func:`main` reads them all before
    the sweep): the process runs the code it imported, so a file edited during a sweep must not
    stamp the records made after the edit as the new code's."""
    return method_version(method)


@dataclass(frozen=True)
class Record:
    """One method run on one (task, seed, budget): its choice, cost in seconds, and its score."""

    choice: Choice
    budget: float
    wall_s: float
    task_version: str
    error: str | None = None
    method_version: str = ""  # records from before the key existed never match


def record_key(method: str, task: str, seed: int, budget: float) -> str:
    return f"{method}|{task}|{seed}|{budget:g}"


# -- running ----------------------------------------------------------------------------------


def run_method(method: str, task: str, seed: int, budget: float) -> Record:
    """Run one method; an exception becomes a failed choice, scored as a diverged run."""
    start = time.perf_counter()
    try:
        choice, error = METHODS[method](task, budget, seed), None
    except Exception as exc:  # noqa: BLE001 - a broken method must not end a sweep of hundreds of runs
        traceback.print_exc()
        choice, error = Choice(method, task, seed, None, None, math.nan), repr(exc)
    return Record(choice, budget, time.perf_counter() - start, task_version(task), error,
                  running_version(method))


def score(choice: Choice) -> float:
    """Normalised regret of full runs at the chosen LR on the reference seeds, else of its own."""
    if choice.lr is not None:
        losses = per_seed_losses(choice.task, choice.lr, SEEDS)
    else:
        losses = [math.inf if choice.val_loss is None else choice.val_loss]
    return normalised_regret(losses, grid_reference(choice.task))


def load_cache() -> dict[str, Record]:
    """Cached records whose task and method code are unchanged (failed runs are never cached)."""
    if not CACHE.exists():
        return {}
    records, methods = {}, {}
    for key, raw in json.loads(CACHE.read_text()).items():
        record = Record(**{**raw, "choice": Choice(**raw["choice"])})
        method = record.choice.method
        if method not in METHODS or record.choice.task not in benchmark_names():
            continue  # a method or task since removed
        methods.setdefault(method, running_version(method))
        if (record.task_version == task_version(record.choice.task)
                and record.method_version == methods[method]):
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
          budgets: Sequence[float], recompute: Iterable[str],
          budgets_of: Mapping[str, Sequence[float]] | None = None) -> list[tuple[Record, float]]:
    """Run (or read from the cache) every combination, scoring and printing each as it lands.
    ``budgets_of`` gives a method budgets of its own instead of ``budgets``."""
    cache, recompute, budgets_of = load_cache(), set(recompute), budgets_of or {}
    grid = sorted(((m, t, s, b) for m in methods for b in budgets_of.get(m, budgets)
                   for t in tasks for s in seeds),
                  key=lambda item: (item[3], tasks.index(item[1]), methods.index(item[0]),
                                    item[2]))
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
    return sorted(rows, key=lambda row: (row["budget"],
                                         order[row["method"].removesuffix(ESTIMATE)],
                                         row["method"]))


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


SUITE_TITLE = "## Development suite: search on the {half} half"
FRESH_TITLE = "## Fresh recipes: search"
FRESH_INTRO = ("The fresh set of recipes (`FRESH` in `benchmarks/recipes/_suite.py`, grids in "
               "\"Development suite\"): written after `auto`'s rules and constants were chosen, "
               "outside the dev / validation split, run once to see whether the two halves' "
               "results hold on recipes no rule was chosen on")
CONSTANT_TITLE = "## Development suite: search on the dev half at a constant LR"
CONSTANT_INTRO = ("The dev half's recipes whose schedule decays, each run at a constant LR "
                  "instead (`DEV_CONSTANT` in `benchmarks/recipes/__init__.py`, grids in "
                  "\"Development suite\"): development material for the constant-LR regime, of "
                  "which the dev half itself holds one 60-step recipe")
TASKS_TITLE = "## Search strategies (issue 4)"
TASKS_INTRO = (
    "Each method searches each task's own recipe (its optimizer and schedule; the LR range of the "
    "optimizer family) with the given budget in full runs. The chosen LR is scored by the mean "
    "validation loss of full runs at that LR on seeds 0, 1, 2, as normalised regret against the "
    "dense grid (`benchmarks/reference.py`; 0 = the grid's best, 1 = a random log-uniform LR; "
    "diverged runs count at the grid's worst finite loss). Prodigy and schedule-free AdamW choose "
    "no LR: their own runs are scored.")


def recipe_rows(scored: Sequence[tuple[Record, float]]) -> list[dict]:
    """Per method, budget and recipe: the regret of each study seed, its median and worst."""
    groups: dict[tuple[str, float, str], list[tuple[Record, float]]] = {}
    for record, regret in scored:
        c = record.choice
        groups.setdefault((c.method, record.budget, c.task), []).append((record, regret))
    rows = []
    for (method, budget, task), items in groups.items():
        per_seed = {rec.choice.seed: regret for rec, regret in sorted(
            items, key=lambda item: item[0].choice.seed)}
        worst_seed = max(per_seed, key=per_seed.get)
        stated = [rec.choice for rec, _ in items if rec.choice.interval is not None]
        best_lr = grid_reference(task).best_lr if stated else math.nan
        covered = [interval_holds(choice, best_lr) for choice in stated]
        rows.append({"method": method, "budget": budget, "task": task, "per_seed": per_seed,
                     "median": float(np.median(list(per_seed.values()))),
                     "worst": per_seed[worst_seed], "worst_seed": worst_seed,
                     "runs": float(np.nanmean([rec.choice.runs_spent for rec, _ in items])),
                     "covered": covered})
    order = {m: i for i, m in enumerate(METHODS)}
    return sorted(rows, key=lambda row: (row["budget"],
                                         order[row["method"].removesuffix(ESTIMATE)],
                                         row["method"], row["task"]))


ESTIMATE = " estimate"


def estimate_rows(scored: Sequence[tuple[Record, float]]) -> list[tuple[Record, float]]:
    """Each study's estimate of the full-length best LR (``Study.estimate``) scored as if it
    were the answer, as method ``<method> estimate`` (the scoring runs are cached like any)."""
    rows = []
    for record, _ in scored:
        if record.choice.estimate is not None:
            choice = replace(record.choice, method=record.choice.method + ESTIMATE,
                             lr=record.choice.estimate)
            rows.append((replace(record, choice=choice), score(choice)))
    return rows


def interval_holds(choice: Choice, lr: float) -> bool:
    """Whether the choice's stated 68% interval holds ``lr``."""
    assert choice.interval is not None
    low, high = choice.interval
    return bool(low <= lr <= high)


def suite_markdown(rows: Sequence[dict], seeds: Sequence[int]) -> str:
    """Per (method, budget): median over recipes of the per-recipe median regret and the worst
    recipe; then every recipe with the regret of each study seed and its worst seed."""
    groups: dict[tuple[str, float], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["method"], row["budget"]), []).append(row)
    head = ["method", "budget", "median regret", "worst recipe (median over seeds)",
            "worst (recipe, seed)", "runs spent", "grid best in 68% interval"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (method, budget), items in groups.items():
        worst = max(items, key=lambda row: row["median"])
        worst_pair = max(items, key=lambda row: row["worst"])
        lines.append(
            f"| {method} | {budget:g} | {np.median([r['median'] for r in items]):.3f} | "
            f"{worst['median']:.3f} ({worst['task']}) | {worst_pair['worst']:.3f} "
            f"({worst_pair['task']}, seed {worst_pair['worst_seed']}) | "
            f"{np.mean([r['runs'] for r in items]):.2f} | "
            f"{_coverage([c for r in items for c in r['covered']])} |")
    head = ["recipe", "method", "budget", *(f"seed {s}" for s in seeds), "median", "worst seed",
            "grid best in interval"]
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [f"{row['per_seed'][s]:.3f}" if s in row["per_seed"] else "" for s in seeds]
        lines.append(f"| {row['task']} | {row['method']} | {row['budget']:g} | "
                     + " | ".join(cells) + f" | {row['median']:.3f} | {row['worst_seed']} | "
                     f"{_coverage(row['covered'])} |")
    note = ("`grid best in 68% interval`: the share of (recipe, seed) pairs whose grid-best LR "
            "lies inside the 68% interval the study stated for its answer (`Study.estimate`); "
            "'-' where the method states none.")
    return "\n".join(lines) + "\n\n" + note + "\n"


def _coverage(covered: Sequence[bool]) -> str:
    return f"{sum(covered)}/{len(covered)}" if covered else "-"


def section(args: argparse.Namespace, scored: Sequence[tuple[Record, float]],
            command: str) -> tuple[str, str]:
    """The title and markdown of this run's section of RESULTS.md."""
    if args.suite is None:
        rows = summary_rows(scored, args.tasks)
        body = (f"{TASKS_INTRO}\n\n{markdown(rows, args.tasks, args.seeds)}\n"
                f"{reference_lines(args.tasks)}")
        return TASKS_TITLE, f"{TASKS_TITLE}\n\nCommand: `{command}`\n\n{body}"
    fresh = args.suite == "fresh"
    title, which = {
        "fresh": (FRESH_TITLE, FRESH_INTRO),
        "dev-constant": (CONSTANT_TITLE, CONSTANT_INTRO),
    }.get(args.suite, (SUITE_TITLE.format(half=args.suite),
                       f"The {args.suite} half of the development suite (`benchmarks/recipes`, "
                       "see \"Development suite\" for the recipes and their grids)"))
    intro = (f"{which}, study seeds "
             f"{', '.join(map(str, args.seeds))}; each chosen LR is scored by full runs on seeds "
             f"{', '.join(map(str, SEEDS))} as normalised regret against the recipe's grid "
             "(0 = the grid's best LR, 1 = a random log-uniform LR over the recipe's range)."
             + ("" if fresh else
                " Rules and constants are chosen on the development half; the validation half "
                "is run once a change is decided, not to tune on"
                + (": it has not been run for this section." if args.suite == "dev" else ".")))
    if args.score_estimates:
        intro += (" Rows `... estimate` score each study's estimate of the full-length best LR "
                  "(`Study.estimate`, the median of its fit) as if it had been the answer.")
    return title, (f"{title}\n\nCommand: `{command}`\n\n{intro}\n\n"
                   f"{suite_markdown(recipe_rows(scored), args.seeds)}")


# -- command line -----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    methods = list(METHODS)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS),
                        help="comma-separated task names: built-in tasks or suite recipes")
    parser.add_argument("--suite", choices=SETS, default=None,
                        help="run every recipe of this half of the suite, of the fresh set, "
                             "or of the dev half at a constant LR (instead of --tasks)")
    parser.add_argument("--score-estimates", action="store_true",
                        help="also score each study's estimated LR as if it were the answer")
    parser.add_argument("--publish", action="store_true",
                        help="write the result into its section of RESULTS.md")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)),
                        help="comma-separated seeds of the methods' own randomness")
    parser.add_argument("--budgets", default="2,4", help="comma-separated budgets in full runs")
    parser.add_argument("--methods", default=",".join(methods),
                        help=f"comma-separated methods (default: all: {', '.join(methods)})")
    parser.add_argument("--recompute", default="", help="comma-separated methods to rerun "
                                                        "even where cached")
    parser.add_argument("--budgets-of", action="append", default=[], metavar="METHOD=B,B",
                        help="budgets of one method instead of --budgets (repeatable), e.g. "
                             "optuna-tpe=4,8")
    args = parser.parse_args(argv)
    if args.suite is not None:
        args.tasks = ",".join(recipe_names(args.suite))
    elif args.publish and sorted(args.tasks.split(",")) != sorted(TASKS):
        parser.error("--publish writes a section of RESULTS.md for all built-in tasks "
                     f"({','.join(TASKS)}) or for a whole --suite set, not for a selection")
    args.tasks, args.methods, args.recompute = (_names(args.tasks, benchmark_names(), parser),
                                                _names(args.methods, methods, parser),
                                                _names(args.recompute, methods, parser))
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.budgets = [float(b) for b in args.budgets.split(",")]
    args.budgets_of = dict(_method_budgets(item, args.methods, parser) for item in args.budgets_of)
    return args


def _method_budgets(item: str, methods: Sequence[str],
                    parser: argparse.ArgumentParser) -> tuple[str, list[float]]:
    method, _, budgets = item.partition("=")
    if method not in methods or not budgets:
        parser.error(f"--budgets-of {item!r}: expected METHOD=B,B with METHOD one of the "
                     f"methods run ({', '.join(methods)})")
    try:
        return method, [float(b) for b in budgets.split(",")]
    except ValueError:
        parser.error(f"--budgets-of {item!r}: budgets must be numbers, e.g. {method}=4,8")


def _names(text: str, valid: Iterable[str], parser: argparse.ArgumentParser) -> list[str]:
    names, valid = [n for n in text.split(",") if n], list(valid)
    unknown = [n for n in names if n not in valid]
    if unknown:
        parser.error(f"unknown {', '.join(unknown)}; choose from {', '.join(valid)}")
    return names


def main(argv: Sequence[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    torch.set_num_threads(1)  # as reference.py: numbers depend on the thread count
    for method in METHODS:  # the code this process imported, before anyone edits it
        running_version(method)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # one line per failed trial otherwise
    scored = sweep(args.methods, args.tasks, args.seeds, args.budgets, args.recompute,
                   args.budgets_of)
    if args.score_estimates:
        scored += estimate_rows(scored)
    rows = summary_rows(scored, args.tasks)
    save_json(RESULTS, {"rows": [{**asdict(rec), "regret": regret} for rec, regret in scored],
                        "summary": rows})
    command = " ".join(["nice -n 10 .venv/bin/python -m benchmarks.tune_benchmark",
                        *(a for a in argv if a != "--publish")])
    title, text = section(args, scored, command)
    TABLE.write_text(text)
    publish(title, text, "tune_benchmark_summary.json", rows, write=args.publish)
    print(f"wrote {CACHE}, {RESULTS} and {TABLE}")


if __name__ == "__main__":
    main()
