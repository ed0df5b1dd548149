"""Does the range test's suggestion move with its length? Its spread over num_iter and seeds.

    nice -n 10 .venv/bin/python -m benchmarks.finder_spread                 # sweep, read, publish
    nice -n 10 .venv/bin/python -m benchmarks.finder_spread --reread        # re-read saved curves

For every built-in task, seeds 0-4 and ``num_iter`` in 50, 100, 200, 500, 1000: one range test
(1e-7 -> 10, the task's optimizer, schedule and clipping, from its fresh model), as
``benchmarks/finder_benchmark.py`` runs it. The curves are saved under ``benchmarks/out/``, so
``--reread`` applies the current analysis to them without sweeping again (the sweep itself does
not depend on the analysis). Per task: the median suggestion per ``num_iter``, and the spread
= max / min suggestion over all 25 range tests (target: at most 2), with the verdicts given.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from benchmarks.finder_benchmark import lrtune_range_test
from benchmarks.results_md import OUT, publish
from lrtune.finder._analysis import analyse
from lrtune.tasks import TASKS, get_task

SECTION = "## LR range test: spread over num_iter and seeds"
NUM_ITERS = (50, 100, 200, 500, 1000)
SEEDS = (0, 1, 2, 3, 4)


def curves_path(task_name: str) -> Path:
    return OUT / f"finder_spread_{task_name}_curves.json"


def sweep(task_name: str, seed: int, num_iter: int) -> dict:
    result = lrtune_range_test(task_name, seed, num_iter)
    return {"task": task_name, "seed": seed, "num_iter": num_iter,
            "lrs": result.lrs.tolist(), "losses": [float(v) for v in result.losses]}


def read(curve: dict) -> dict:
    task = get_task(curve["task"])
    reading = analyse(np.asarray(curve["lrs"]), np.asarray(curve["losses"]),
                      task.schedule(task.steps), seed=0)
    return {**{k: curve[k] for k in ("task", "seed", "num_iter")},
            "suggestion": reading.suggestion, "band": list(reading.band),
            "verdict": reading.verdict.value}


def markdown(rows: list[dict], command: str) -> str:
    lines = [
        SECTION, "",
        f"Command: `{command}` (one torch thread; curves saved in `benchmarks/out/`).", "",
        f"Range tests from 1e-07 to 10 with num_iter in {', '.join(map(str, NUM_ITERS))} and "
        f"seeds {SEEDS[0]}-{SEEDS[-1]} per task. Median suggestion per num_iter; *spread* = max / "
        "min suggestion over all of them (target <= 2); *band* = median width (high / low) of "
        "the 10-90% band.", "",
        "| task | " + " | ".join(f"n={n}" for n in NUM_ITERS)
        + " | spread | band | verdicts |",
        "|---|" + "---|" * (len(NUM_ITERS) + 3),
    ]
    for task in dict.fromkeys(r["task"] for r in rows):
        mine = [r for r in rows if r["task"] == task]
        medians = [np.median([r["suggestion"] for r in mine if r["num_iter"] == n] or [np.nan])
                   for n in NUM_ITERS]
        values = [r["suggestion"] for r in mine]
        bands = np.median([r["band"][1] / r["band"][0] for r in mine])
        verdicts = ", ".join(f"{v} {c}" for v, c in Counter(r["verdict"] for r in mine).items())
        lines.append(f"| {task} | " + " | ".join(f"{m:.3g}" for m in medians)
                     + f" | {max(values) / min(values):.2f} | {bands:.2f} | {verdicts} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--reread", action="store_true", help="re-read the saved curves")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    tasks = args.tasks.split(",")
    curves = []
    for task in tasks:
        if args.reread:
            curves += json.loads(curves_path(task).read_text())
            continue
        mine = []
        for num_iter in NUM_ITERS:
            for seed in SEEDS:
                mine.append(sweep(task, seed, num_iter))
                print(task, num_iter, seed, read(mine[-1])["suggestion"], flush=True)
        OUT.mkdir(parents=True, exist_ok=True)
        curves_path(task).write_text(json.dumps(mine))
        curves += mine
    rows = [read(c) for c in curves]
    command = "nice -n 10 .venv/bin/python -m benchmarks.finder_spread"
    if args.tasks != ",".join(TASKS):
        command += f" --tasks {args.tasks}"
    publish(SECTION, markdown(rows, command), "finder_spread.json", rows, write=not args.no_write)


if __name__ == "__main__":
    main()
