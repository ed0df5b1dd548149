"""Does the range test's suggestion move with its length? Its spread over num_iter and seeds.

    nice -n 10 .venv/bin/python -m benchmarks.finder_spread                 # built-in tasks
    nice -n 10 .venv/bin/python -m benchmarks.finder_spread --suite dev     # a half of the suite
    nice -n 10 .venv/bin/python -m benchmarks.finder_spread --reread        # re-read saved curves

For every task (the built-in ones, or the recipes of one half of ``benchmarks/recipes``), seeds
0-4 and ``num_iter`` in 50, 100, 200, 500, 1000: one range test (1e-7 -> 10, the task's
optimizer, schedule and clipping, from its fresh model), as ``benchmarks/finder_benchmark.py``
runs it: its coarse sweep and as many fine passes as ``num_iter`` pays for. The passes are saved
under ``benchmarks/out/`` after each test (a benchmark that was stopped resumes where it was), so
``--reread`` applies the current analysis to them without sweeping again (the sweeps depend on
the plan of ``lrtune/finder/_plan.py``, not on the analysis). Per task: the median suggestion per
``num_iter``; the spread = max / min suggestion over all its range tests (target: at most 2), and
over those whose verdict is "clear"; the verdicts given. On a recipe, the median suggestion of
each ``num_iter`` is scored by full runs (seeds 0-2) against the recipe's grid
(``benchmarks/reference.py``): normalised regret, median and worst over ``num_iter``.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from benchmarks.finder_benchmark import lrtune_range_test
from benchmarks.recipes import HALVES, RECIPES, recipe_names
from benchmarks.reference import SEEDS as REFERENCE_SEEDS
from benchmarks.reference import grid_reference, normalised_regret, per_seed_losses
from benchmarks.results_md import OUT, publish
from benchmarks.tasks import benchmark_task
from lrtune.finder import Pass
from lrtune.finder._analysis import MIN_REPLICATES
from lrtune.finder._find import momentum_of, read_passes
from lrtune.optimizers import build_optimizer
from lrtune.tasks import TASKS

SECTION = "## LR range test: spread over num_iter and seeds"
NUM_ITERS = (50, 100, 200, 500, 1000)
SEEDS = (0, 1, 2, 3, 4)


def section(suite: str | None) -> str:
    return SECTION if suite is None else f"{SECTION}, {suite} half of the suite"


def curves_path(task_name: str) -> Path:
    return OUT / f"finder_spread_{task_name}_passes.json"


def saved_curves(task_name: str) -> list[dict]:
    path = curves_path(task_name)
    return json.loads(path.read_text()) if path.exists() else []


def sweep_task(task_name: str, seeds: Sequence[int], num_iters: Sequence[int]) -> list[dict]:
    """Every (num_iter, seed) range test of the task, resuming from the curves already saved."""
    curves = saved_curves(task_name)
    done = {(c["num_iter"], c["seed"]) for c in curves}
    for num_iter in num_iters:
        for seed in seeds:
            if (num_iter, seed) in done:
                continue
            curves.append(sweep(task_name, seed, num_iter))
            OUT.mkdir(parents=True, exist_ok=True)
            curves_path(task_name).write_text(json.dumps(curves))
            print(task_name, num_iter, seed, read(curves[-1])["suggestion"], flush=True)
    return curves


def sweep(task_name: str, seed: int, num_iter: int) -> dict:
    result = lrtune_range_test(task_name, seed, num_iter)
    return {"task": task_name, "seed": seed, "num_iter": num_iter,
            "momentum": result_momentum(task_name), "probe_batches": result.probe_batches,
            "passes": [{"lrs": p.lrs.tolist(), "losses": [float(v) for v in p.losses],
                        "stop_reason": p.stop_reason} for p in result.passes]}


def result_momentum(task_name: str) -> float:
    """The heavy-ball coefficient ``find`` read from the task's optimizer."""
    task = benchmark_task(task_name)
    model = task.make_model(0)
    return momentum_of(build_optimizer(task.optimizer, model.parameters(), 1e-3,
                                       task.weight_decay))


def read(curve: dict) -> dict:
    task = benchmark_task(curve["task"])
    passes = [Pass(np.asarray(p["lrs"]), np.asarray(p["losses"], dtype=float), p["stop_reason"])
              for p in curve["passes"]]
    _, _, reading = read_passes(passes, task.schedule(task.steps), momentum=curve["momentum"],
                                probe=curve.get("probe_batches", 0) > 0)
    return {**{k: curve[k] for k in ("task", "seed", "num_iter")},
            "suggestion": reading.suggestion, "band": list(reading.band),
            "verdict": reading.verdict.value, "steps": sum(len(p.lrs) for p in passes),
            "fine_passes": len(passes) - 1}


def median_suggestions(rows: list[dict]) -> dict[int, float]:
    """The median suggestion per num_iter of one task's range tests."""
    iters = sorted({r["num_iter"] for r in rows})
    return {n: float(np.median([r["suggestion"] for r in rows if r["num_iter"] == n]))
            for n in iters}


def regrets(task_name: str, rows: list[dict]) -> dict[int, float]:
    """Normalised regret of full runs at the median suggestion of each num_iter (recipes only:
    their grids are the suite's reference)."""
    reference = grid_reference(task_name)
    return {n: normalised_regret(per_seed_losses(task_name, lr, REFERENCE_SEEDS), reference)
            for n, lr in median_suggestions(rows).items()}


def spread(values: list[float]) -> float:
    return max(values) / min(values) if values else float("nan")


def summarise(task: str, rows: list[dict]) -> dict:
    clear = [r["suggestion"] for r in rows if r["verdict"] == "clear"]
    regret = regrets(task, rows) if task in RECIPES else {}
    return {
        "task": task, "tests": len(rows), "medians": median_suggestions(rows),
        "per_num_iter": dict(Counter(r["num_iter"] for r in rows)),
        "spread": spread([r["suggestion"] for r in rows]),
        "replicated_spread": spread([r["suggestion"] for r in rows
                                     if r["fine_passes"] >= MIN_REPLICATES]),
        "clear_spread": spread(clear), "clear": len(clear),
        "band": float(np.median([r["band"][1] / r["band"][0] for r in rows])),
        "verdicts": dict(Counter(r["verdict"] for r in rows)),
        "regret": regret,
        "passes": {n: float(np.median([r["fine_passes"] for r in rows if r["num_iter"] == n]))
                   for n in sorted({r["num_iter"] for r in rows})},
    }


def _median_cell(summary: dict, num_iter: int) -> str:
    if num_iter not in summary["medians"]:
        return "-"
    seeds = summary["per_num_iter"][num_iter]
    return f"{summary['medians'][num_iter]:.3g}" + ("" if seeds == len(SEEDS) else f" ({seeds})")


def markdown(summaries: list[dict], title: str, command: str) -> str:
    with_regret = any(s["regret"] for s in summaries)
    lines = [
        title, "",
        f"Command: `{command}` (one torch thread; curves saved in `benchmarks/out/`).", "",
        f"Range tests from 1e-07 to 10 (a coarse sweep, then as many fixed-rate fine passes as "
        f"num_iter pays for) with num_iter in {', '.join(map(str, NUM_ITERS))} and "
        f"seeds {SEEDS[0]}-{SEEDS[-1]} per task; *tests* = how many were swept (a slow task "
        "may have fewer: the seeds per num_iter are then in brackets, `-` = none). Median "
        "suggestion per num_iter; *spread* = max / min "
        "suggestion over all the task's tests (target <= 2), *3+ passes* = the same over the "
        f"tests that bought at least {MIN_REPLICATES} fine passes (a band from their spread), "
        "*clear* = the same over the tests "
        "whose verdict is \"clear\" (how many, then their spread); *band* = median width (high / "
        "low) of the 10-90% band."
        + (" *regret*: full runs (seeds 0-2) at the median suggestion of each num_iter against "
           "the recipe's grid, normalised (0 = the grid's best, 1 = a random log-uniform LR), "
           "median and worst over num_iter." if with_regret else ""), "",
        "| task | tests | " + " | ".join(f"n={n}" for n in NUM_ITERS)
        + " | spread | 3+ passes | clear | band | verdicts |"
        + (" regret (median, worst) |" if with_regret else ""),
        "|---|---|" + "---|" * (len(NUM_ITERS) + 5) + ("---|" if with_regret else ""),
    ]
    for s in summaries:
        medians = [_median_cell(s, n) for n in NUM_ITERS]
        verdicts = ", ".join(f"{v} {c}" for v, c in s["verdicts"].items())
        row = (f"| {s['task']} | {s['tests']} | " + " | ".join(medians)
               + f" | {s['spread']:.2f} | {s['replicated_spread']:.2f} "
               f"| {s['clear']}: {s['clear_spread']:.2f} "
               f"| {s['band']:.2f} | {verdicts} |")
        if with_regret:
            values = list(s["regret"].values())
            row += f" {np.median(values):.3f}, {max(values):.3f} |"
        lines.append(row)
    worst = max(summaries, key=lambda s: s["spread"])
    bought = {n: np.median([s["passes"][n] for s in summaries if n in s["passes"]])
              for n in NUM_ITERS if any(n in s["passes"] for s in summaries)}
    lines += ["", "Fine passes each num_iter bought (median over tasks): "
              + ", ".join(f"{n}: {p:g}" for n, p in bought.items()) + ".",
              "", f"Worst spread: {worst['task']} ({worst['spread']:.2f}). Target (at most 2) "
              f"met on {sum(s['spread'] <= 2 for s in summaries)} of {len(summaries)} tasks; "
              f"with {MIN_REPLICATES}+ passes on "
              f"{sum(s['replicated_spread'] <= 2 for s in summaries)}."]
    if with_regret:
        all_regrets = [v for s in summaries for v in s["regret"].values()]
        lines[-1] += (f" Regret over all recipes and num_iter: median "
                      f"{np.median(all_regrets):.3f}, worst {max(all_regrets):.3f}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--suite", choices=HALVES, default=None,
                        help="every recipe of this half of the suite (instead of --tasks)")
    parser.add_argument("--reread", action="store_true", help="re-read the saved curves")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    tasks = recipe_names(args.suite) if args.suite else args.tasks.split(",")
    summaries = []
    for task in tasks:
        curves = saved_curves(task) if args.reread else sweep_task(task, SEEDS, NUM_ITERS)
        if curves:
            summaries.append(summarise(task, [read(c) for c in curves]))
    command = "nice -n 10 .venv/bin/python -m benchmarks.finder_spread"
    if args.suite:
        command += f" --suite {args.suite}"
    elif args.tasks != ",".join(TASKS):
        command += f" --tasks {args.tasks}"
    if args.reread:
        command += " --reread"
    name = f"finder_spread{'_' + args.suite if args.suite else ''}.json"
    publish(section(args.suite), markdown(summaries, section(args.suite), command), name,
            summaries, write=not args.no_write)


if __name__ == "__main__":
    main()
