"""Do the verdicts tell a wrong LR from a good one? A confusion table against outcomes.

    nice -n 10 .venv/bin/python -m benchmarks.diagnostics_benchmark   # digits, mnist1d, diabetes

For each task: full runs of its recipe at LRS log-spaced LRs across its optimizer's range, seeds
0-1, the training loss of every step, the gradient norm every 16th and the validation loss every
epoch fed to ``RunMonitor`` as a user would. Ground truth comes from outcomes only (the final
validation loss against the grid's best and the untrained model's), with the issue-12
definitions: *destroyed* = non-finite, or ends at or above the untrained validation loss, above
the best LR; *gap* = (loss - best) / (untrained - best); *good* = gap < 0.1; *too high* = above
the best LR, gap >= 0.1; *slightly low* = below it, gap >= 0.1 but learned more than 10% of the
way; *too low* = learned less. Two verdicts per run: the single run's diagnosis (its direction:
"lower" for diverged, collapsed, exploding gradients, overfitting, oscillating, vanishing
gradients; "raise" for stagnant; "healthy"), and its standing among the same seed's grid
(``lrtune.diagnostics.standing``: too high / too low / near the best or best).
"""

from __future__ import annotations

import argparse
import math
from collections import Counter

import numpy as np
import torch

from benchmarks.results_md import publish
from lrtune.diagnostics import RunMonitor, Status, standing
from lrtune.optimizers import OPTIMIZERS
from lrtune.records import TrialRecord, TrialState
from lrtune.tasks import get_task, train

SECTION = "## Diagnostics: verdicts against outcomes"
LRS, SEEDS = 9, (0, 1)
LOWER = {Status.DIVERGED, Status.COLLAPSED, Status.EXPLODING_GRADIENTS, Status.OVERFITTING,
         Status.OSCILLATING, Status.VANISHING_GRADIENTS}
TRUTHS = ("destroyed", "too high", "good", "slightly low", "too low")


def run(task_name: str, lr: float, seed: int) -> dict:
    task = get_task(task_name)
    monitor = RunMonitor()
    result = train(task, lr, seed=seed, monitor=monitor,
                   on_epoch=lambda log: monitor.update_validation(log.step, log.val_loss))
    status = result.diagnosis.status
    return {"task": task_name, "lr": lr, "seed": seed, "val": result.val_loss,
            "first_loss": float(result.losses[0]), "status": status.value,
            "direction": "lower" if status in LOWER else "raise"
            if status is Status.STAGNANT else "healthy"}


def label(runs: list[dict], untrained: float) -> None:
    """Outcome labels (see the module docstring), in place."""
    means = {lr: np.mean([r["val"] for r in runs if r["lr"] == lr])
             for lr in {r["lr"] for r in runs}}
    finite = {lr: v for lr, v in means.items() if math.isfinite(v)}
    best_lr = min(finite, key=finite.get)
    best = finite[best_lr]
    for r in runs:
        gap = (r["val"] - best) / (untrained - best) if math.isfinite(r["val"]) else math.inf
        if r["lr"] > best_lr and (not math.isfinite(r["val"]) or r["val"] >= untrained):
            r["truth"] = "destroyed"
        elif gap < 0.1:
            r["truth"] = "good"
        elif r["lr"] > best_lr:
            r["truth"] = "too high"
        else:
            r["truth"] = "slightly low" if (untrained - r["val"]) / (untrained - best) > 0.1 \
                else "too low"


def place(runs: list[dict], steps: int, optimizer: str) -> None:
    """Each run's standing among the runs of its seed, in place."""
    for seed in {r["seed"] for r in runs}:
        mine = [r for r in runs if r["seed"] == seed]
        records = [TrialRecord(i, {"lr": r["lr"], "optimizer": optimizer}, steps,
                               (TrialState.COMPLETED if math.isfinite(r["val"])
                                else TrialState.DIVERGED),
                               r["val"] if math.isfinite(r["val"]) else None, steps,
                               history=((0, r["first_loss"]),))
                   for i, r in enumerate(mine)]
        for r, record in zip(mine, records, strict=True):
            placed = standing(record, records)
            r["standing"] = placed.verdict if placed is not None else "none"


def table(runs: list[dict], key: str, columns: tuple[str, ...]) -> list[str]:
    lines = [f"| truth \\ {key} | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for truth in TRUTHS:
        mine = [r for r in runs if r["truth"] == truth]
        counts = Counter(r[key] for r in mine)
        lines.append(f"| {truth} ({len(mine)}) | "
                     + " | ".join(str(counts[c]) for c in columns) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="digits,mnist1d,diabetes")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs: list[dict] = []
    for name in args.tasks.split(","):
        task = get_task(name)
        low, high = OPTIMIZERS[task.optimizer].lr_range
        mine = [run(name, float(lr), seed) for lr in np.geomspace(low, high, LRS) for seed in SEEDS]
        untrained = float(np.mean([task.evaluate(task.make_model(s)) for s in SEEDS]))
        label(mine, untrained)
        place(mine, task.steps, task.optimizer)
        for r in mine:
            print(name, f"{r['lr']:.3g}", r["seed"], f"{r['val']:.4g}", r["truth"], r["status"],
                  r["standing"], flush=True)
        runs += mine
    command = "nice -n 10 .venv/bin/python -m benchmarks.diagnostics_benchmark"
    if args.tasks != "digits,mnist1d,diabetes":
        command += f" --tasks {args.tasks}"
    text = "\n".join([
        SECTION, "",
        f"Command: `{command}` (one torch thread). {len(runs)} full runs: {LRS} LRs across each "
        f"task's optimizer range, seeds {SEEDS[0]}-{SEEDS[-1]}, tasks {args.tasks}; truth from "
        "outcomes only (see the module docstring). The single run's verdict, by direction:", "",
        *table(runs, "direction", ("lower", "raise", "healthy")), "",
        "The run's standing among its seed's grid (`lrtune.diagnostics.standing`):", "",
        *table(runs, "standing", ("too high", "too low", "near the best", "best", "none")), "",
    ])
    publish(SECTION, text, "diagnostics_benchmark.json", runs, write=not args.no_write)


if __name__ == "__main__":
    main()
