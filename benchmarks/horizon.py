"""The horizon effect: the best LR of runs of different lengths (schedule compressed to each).

    python -m benchmarks.horizon digits 1e-3 1                  # TASK LOW HIGH
    nice -n 10 .venv/bin/python -m benchmarks.horizon --suite dev [--publish]

With a task and an LR range: for runs of T/16, T/6, T/2 and T steps, the mean validation loss
(seeds 0 and 1) at 4 LRs per decade and the best LR; docs/auto.md quotes its output.

With ``--suite``: every recipe of that set of ``benchmarks/recipes`` over its search range, at
T/16 (``auto``'s scan), T/8, T/4, T/2 and T steps (at least 8), the same seeds and LRs; per
length the best LR as a ratio to the full run's, and how far the best run of that length got
from the untrained model's loss towards the full run's best (its *progress*). The runs are cached
in ``benchmarks/out/horizon_runs.json`` (keyed on the recipe's code). ``--publish`` makes the
table the section "Horizon: best LR by run length, <set>" of RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence

import numpy as np
import torch

from benchmarks.recipes import SETS, recipe_names, set_name
from benchmarks.reference import task_version
from benchmarks.results_md import OUT, publish_suite
from benchmarks.tasks import benchmark_task, search_range
from lrtune.tasks import get_task, train

SEEDS = (0, 1)
PER_DECADE = 4
SUITE_FRACTIONS = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1)
CACHE = OUT / "horizon_runs.json"


def grid(low: float, high: float) -> np.ndarray:
    return np.geomspace(low, high, int(round(np.log10(high / low) * PER_DECADE)) + 1)


def mean_loss(task, lr: float, steps: int) -> float:
    """Mean final validation loss over :data:`SEEDS` (inf when any run diverged)."""
    return float(np.mean([train(task, lr, steps=steps, seed=s).val_loss for s in SEEDS]))


def task_horizon(name: str, low: float, high: float) -> None:
    task = get_task(name)
    lrs = grid(low, high)
    for fraction in (1 / 16, 1 / 6, 1 / 2, 1):
        steps = max(8, int(task.steps * fraction))
        losses = [mean_loss(task, float(lr), steps) for lr in lrs]
        best = lrs[int(np.argmin(losses))]
        print(f"{name} T*{fraction:.3f} ({steps} steps): best lr {best:.3g} | "
              + " ".join(f"{v:.3f}" for v in losses), flush=True)


def recipe_horizon(name: str, cache: dict) -> dict:
    """Per length of :data:`SUITE_FRACTIONS`: the best LR and its loss, from the cache or run."""
    task = benchmark_task(name)
    mine = cache.setdefault(name, {"version": task_version(name), "lengths": {}})
    if mine["version"] != task_version(name):
        mine.update(version=task_version(name), lengths={})
    lrs = grid(*search_range(task))
    for fraction in SUITE_FRACTIONS:
        steps = max(8, int(task.steps * fraction))
        if str(steps) not in mine["lengths"]:
            losses = [mean_loss(task, float(lr), steps) for lr in lrs]
            mine["lengths"][str(steps)] = [None if not math.isfinite(v) else v for v in losses]
            CACHE.write_text(json.dumps(cache))
    mine["untrained"] = float(np.mean([task.evaluate(task.make_model(s)) for s in SEEDS]))
    mine["lrs"], mine["steps"] = lrs.tolist(), task.steps
    warmup = f" after {task.recipe.warmup:.0%} warm-up" if task.recipe.warmup else ""
    mine["recipe"] = f"{task.optimizer}, {task.recipe.schedule}{warmup}"
    return mine


def _best(lrs: Sequence[float], losses: Sequence[float | None]) -> tuple[float, float]:
    finite = [(v, lr) for lr, v in zip(lrs, losses, strict=True) if v is not None]
    loss, lr = min(finite)
    return lr, loss


def markdown(title: str, suite: str, rows: dict[str, dict], command: str) -> str:
    heads = " | ".join(f"T/{round(1 / f)}" if f < 1 else "T" for f in SUITE_FRACTIONS)
    lines = [
        title, "",
        f"Command: `{command}` (one torch thread).", "",
        f"Every recipe of the {set_name(suite)} over its search range at {PER_DECADE} LRs per "
        "decade, runs of each length with the recipe's schedule compressed to it (at least 8 "
        f"steps), mean validation loss of seeds {', '.join(map(str, SEEDS))}. Per length: the "
        "best LR as a ratio to the full run's best, then in brackets its *progress*, how far the "
        "best run of that length got from the untrained model's loss towards the full run's "
        "best (1 = as far as the full run). T/16 is the length of `auto`'s scan; its refine "
        "rung runs between about T/10 and T/3.", "",
        f"| recipe | optimizer, schedule | T | full-length best | {heads} |",
        "|---|---|---|---|" + "---|" * len(SUITE_FRACTIONS),
    ]
    for name, row in rows.items():
        full = str(row["steps"])
        best_lr, best_loss = _best(row["lrs"], row["lengths"][full])
        cells = []
        for fraction in SUITE_FRACTIONS:
            steps = str(max(8, int(row["steps"] * fraction)))
            lr, loss = _best(row["lrs"], row["lengths"][steps])
            progress = (row["untrained"] - loss) / (row["untrained"] - best_loss)
            cells.append(f"{lr / best_lr:.2g} ({progress:.2f})")
        lines.append(f"| {name} | {row['recipe']} | {row['steps']} | {best_lr:.3g} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", nargs="?", help="a built-in task (then LOW and HIGH)")
    parser.add_argument("low", nargs="?", type=float)
    parser.add_argument("high", nargs="?", type=float)
    parser.add_argument("--suite", choices=SETS, help="every recipe of this set instead")
    parser.add_argument("--publish", action="store_true", help="write the RESULTS.md section")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.suite is None:
        if args.task is None or args.low is None or args.high is None:
            parser.error("give TASK LOW HIGH, or --suite")
        task_horizon(args.task, args.low, args.high)
        return
    cache = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    rows = {}
    for name in recipe_names(args.suite):
        rows[name] = recipe_horizon(name, cache)
        print(name, "done", flush=True)
    publish_suite("horizon", args.suite,
                  f"## Horizon: best LR by run length, {set_name(args.suite)}", rows, markdown,
                  write=args.publish)


if __name__ == "__main__":
    main()
