"""Do the verdicts tell a wrong LR from a good one? Confusion tables against outcomes.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m benchmarks.diagnostics_benchmark --suite dev
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m benchmarks.diagnostics_benchmark --suite dev \\
        --reread                      # re-classify the cached runs only (no training)

For each recipe (a half of the suite, ``--suite``, or ``--tasks``): full runs at ``--lrs``
log-spaced LRs across its search range, ``--seeds``, the training loss of every step and the
gradient norm every 16th fed to ``RunMonitor`` as a user would (a run it calls diverged stops
there), and the validation loss after every epoch (the last one is the final model's: what an
objective returns). Every run's per-step history is cached in ``benchmarks/out/`` (keyed on the
code that trains it and decides when it stops), so re-classifying costs no training.

Ground truth comes from outcomes only, never from the classifier's thresholds: the final
validation loss against the grid's best LR (lowest mean over seeds) and the untrained model's
validation loss (*chance*), with the issue-12 definitions. *gap* = (loss - best) / (chance -
best); *destroyed* = non-finite, or ends at or above chance, above the best LR; *good* = gap <
0.1; *too high* = above the best LR, gap >= 0.1; *slightly low* = below it, gap >= 0.1 but learned
more than 10% of the way from chance to the best; *too low* = learned less.

Three verdicts per run, by the direction they point: the single run's diagnosis from its
training loss and gradient norm; the same with the validation losses (``val_loss`` reported each
epoch and the objective's return value); and, inside a study, its standing among the same
seed's grid with the validation loss as each trial's value (``lrtune.diagnostics.standing``).
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch

from benchmarks.recipes import HALVES, recipe_names
from benchmarks.reference import OUT, task_version
from benchmarks.results_md import publish
from benchmarks.tasks import benchmark_task, search_range
from lrtune.diagnostics import RunMonitor, Status, classify, standing
from lrtune.records import TrialRecord, TrialState
from lrtune.tasks import train

SECTION = "## Diagnostics: verdicts against outcomes"  # then ", <half> half" for a suite half
CACHE = OUT / "diagnostics_runs.json"
LOWER = {Status.DIVERGED, Status.COLLAPSED, Status.EXPLODING_GRADIENTS, Status.OVERFITTING,
         Status.OSCILLATING, Status.VANISHING_GRADIENTS}
TRUTHS = ("destroyed", "too high", "good", "slightly low", "too low")
DIRECTIONS = ("lower", "raise", "healthy")
#: (truth, verdict, which verdicts count, target share) from issue 12
TARGETS = (
    ("destroyed", "single", ("diverged", "collapsed"), 0.95),
    ("too low", "single", ("stagnant", "raise"), 0.90),
    ("good", "single", ("healthy",), 0.95),
    ("too high", "study", ("lower",), 0.80),
    ("slightly low", "study", ("raise",), 0.60),
)


def record_run(task_name: str, lr: float, seed: int) -> dict:
    """One full run's histories: what a user's loop would feed the monitor, and the outcome."""
    task = benchmark_task(task_name)
    monitor = RunMonitor()
    vals: list[tuple[int, float]] = []
    result = train(task, lr, seed=seed, monitor=monitor,
                   on_epoch=lambda log: vals.append((log.step - 1, log.val_loss)))
    steps = monitor.steps.tolist()
    return {
        "steps": steps, "losses": _floats(monitor.losses),
        # train() samples the gradient norm on the steps the monitor reads back
        "grad_steps": [s for s in steps if s % monitor.check_every == 0],
        "grads": _floats(monitor.grad_norms),
        "val_steps": [s for s, _ in vals], "vals": _floats(v for _, v in vals),
        "val": _float(result.val_loss),
    }


def _float(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None  # JSON has no inf or NaN


def _floats(values: object) -> list[float | None]:
    return [_float(float(v)) for v in values]  # type: ignore[attr-defined]


def _array(values: Sequence[float | None]) -> np.ndarray:
    return np.array([math.nan if v is None else v for v in values], dtype=float)


class RunStore:
    """The cached runs, persisted after each new one; a task's runs are dropped when its code
    changes."""

    def __init__(self) -> None:
        self.saved: dict[str, dict] = json.loads(CACHE.read_text()) if CACHE.exists() else {}

    def runs(self, task_name: str, lrs: Sequence[float], seeds: Sequence[int],
             reread: bool) -> list[dict]:
        version = task_version(task_name)
        mine = self.saved.setdefault(task_name, {"version": version, "runs": {}})
        if mine["version"] != version:
            if reread:
                raise SystemExit(f"the cached runs of {task_name} are from other code: run "
                                 "without --reread")
            mine.update(version=version, runs={})
        found = []
        for lr in lrs:
            for seed in seeds:
                key = f"{lr:.6e}|{seed}"
                if key not in mine["runs"]:
                    if reread:
                        raise SystemExit(f"{task_name} at lr={lr:.3g}, seed {seed} is not cached: "
                                         "run without --reread")
                    mine["runs"][key] = record_run(task_name, lr, seed)
                    CACHE.write_text(json.dumps(self.saved))
                found.append({"task": task_name, "lr": lr, "seed": seed, **mine["runs"][key]})
        return found


def direction(status: Status) -> str:
    return "lower" if status in LOWER else "raise" if status is Status.STAGNANT else "healthy"


def diagnose(runs: list[dict]) -> None:
    """The single run's verdict without and with the validation losses, in place."""
    for r in runs:
        steps, losses = np.asarray(r["steps"]), _array(r["losses"])
        grads = (np.asarray(r["grad_steps"]), _array(r["grads"]))
        single = classify(steps, losses, *grads)
        vals = _array(r["vals"]) if r["vals"] else None
        with_val = classify(steps, losses, *grads,
                            val_steps=np.asarray(r["val_steps"]), val_losses=vals)
        r["single"], r["with_val"] = single.status.value, with_val.status.value
        r["single_direction"] = direction(single.status)
        r["val_direction"] = direction(with_val.status)


def label(runs: list[dict], untrained: float) -> None:
    """Outcome labels (see the module docstring), in place."""
    lrs = sorted({r["lr"] for r in runs})
    means = {lr: np.mean([_outcome(r) for r in runs if r["lr"] == lr]) for lr in lrs}
    finite = {lr: v for lr, v in means.items() if math.isfinite(v)}
    best_lr = min(finite, key=lambda lr: finite[lr])
    best = finite[best_lr]
    for r in runs:
        val = _outcome(r)
        gap = (val - best) / (untrained - best)
        if r["lr"] > best_lr and val >= untrained:
            r["truth"] = "destroyed"
        elif gap < 0.1:
            r["truth"] = "good"
        elif r["lr"] > best_lr:
            r["truth"] = "too high"
        else:
            r["truth"] = "slightly low" if (untrained - val) / (untrained - best) > 0.1 \
                else "too low"


def _outcome(r: dict) -> float:
    return math.inf if r["val"] is None else r["val"]


def place(runs: list[dict], steps: int, optimizer: str) -> None:
    """Each run's standing among the runs of its seed (a study of that grid), in place."""
    for seed in {r["seed"] for r in runs}:
        mine = [r for r in runs if r["seed"] == seed]
        records = [TrialRecord(i, {"lr": r["lr"], "optimizer": optimizer}, steps,
                               TrialState.COMPLETED if r["val"] is not None
                               else TrialState.DIVERGED,
                               r["val"], steps, history=((0, r["losses"][0]),))
                   for i, r in enumerate(mine)]
        for r, record in zip(mine, records, strict=True):
            placed = standing(record, records)
            r["standing"] = placed.verdict if placed is not None else "none"
            r["study_direction"] = ("lower" if r["standing"] == "too high"
                                    else "raise" if r["standing"] == "too low"
                                    else r["val_direction"] if r["standing"] == "none"
                                    else "healthy")


def table(runs: list[dict], key: str, columns: Sequence[str]) -> list[str]:
    lines = [f"| truth \\ {key.replace('_', ' ')} | " + " | ".join(columns) + " |",
             "|---|" + "---|" * len(columns)]
    for truth in TRUTHS:
        mine = [r for r in runs if r["truth"] == truth]
        counts = Counter(r[key] for r in mine)
        lines.append(f"| {truth} ({len(mine)}) | "
                     + " | ".join(str(counts[c]) for c in columns) + " |")
    return lines


VERDICT_KEYS = {"single": ("single", "single_direction"),
                "study": ("standing", "study_direction")}


def hits(r: dict, verdict: str, accepted: Sequence[str]) -> bool:
    return any(r[key] in accepted for key in VERDICT_KEYS[verdict])


def share(runs: list[dict], truth: str, verdict: str,
          accepted: Sequence[str]) -> tuple[float, str]:
    """The fraction of ``runs`` of ``truth`` whose ``verdict`` is one of ``accepted``, and
    "hits/runs"."""
    mine = [r for r in runs if r["truth"] == truth]
    if not mine:
        return math.nan, "-"
    n = sum(hits(r, verdict, accepted) for r in mine)
    return n / len(mine), f"{n}/{len(mine)}"


def targets(runs: list[dict], tasks: Sequence[str]) -> list[str]:
    """Each target's share over all runs, and per recipe with the worst one."""
    lines = ["| target | all | worst recipe | " + " | ".join(tasks) + " |",
             "|---|---|---|" + "---|" * len(tasks)]
    for truth, verdict, accepted, goal in TARGETS:
        per = {t: share([r for r in runs if r["task"] == t], truth, verdict, accepted)
               for t in tasks}
        rated = [(s, t) for t, (s, _) in per.items() if not math.isnan(s)]
        total, text = share(runs, truth, verdict, accepted)
        name = f"{truth}: {verdict} says {' or '.join(accepted)} >= {goal:.0%}"
        if rated:
            worst = min(rated)[1]
            row = f"| {name} | {text} ({total:.0%}) | {worst} ({per[worst][1]}) | "
        else:
            row = f"| {name} | {text} | - | "
        lines.append(row + " | ".join(per[t][1] for t in tasks) + " |")
    return lines


STATUSES = tuple(s.value for s in Status if s is not Status.INCONCLUSIVE)


def markdown(title: str, runs: list[dict], tasks: Sequence[str], command: str, lrs: int,
             seeds: Sequence[int]) -> str:
    return "\n".join([
        title, "",
        f"Command: `{command}` (one torch thread). {len(runs)} full runs: {lrs} LRs across each "
        f"recipe's search range, seeds {','.join(map(str, seeds))}, recipes "
        f"{', '.join(tasks)}; truth from outcomes only (see the module docstring).", "",
        "Targets (issue 12), over all runs and per recipe:", "",
        *targets(runs, tasks), "",
        "The single run's verdict from its training loss and gradient norm:", "",
        *table(runs, "single", STATUSES), "",
        "With the validation losses (reported each epoch; the last is the objective's value):",
        "", *table(runs, "with_val", STATUSES), "",
        "Inside a study: the run's standing among its seed's grid (`lrtune.diagnostics.standing`,"
        " the validation loss as the value), and the direction it gives:", "",
        *table(runs, "standing", ("too high", "too low", "near the best", "best", "none")), "",
        *table(runs, "study_direction", DIRECTIONS), "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=HALVES, default=None,
                        help="every recipe of this half of the suite (instead of --tasks)")
    parser.add_argument("--tasks", default="digits,mnist1d,diabetes",
                        help="comma-separated built-in tasks or suite recipes")
    parser.add_argument("--lrs", type=int, default=9, help="LRs per recipe, log-spaced")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds")
    parser.add_argument("--reread", action="store_true",
                        help="re-classify the cached runs only; fail on a missing one")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    tasks = recipe_names(args.suite) if args.suite else args.tasks.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    store = RunStore()
    runs: list[dict] = []
    for name in tasks:
        task = benchmark_task(name)
        low, high = search_range(task)
        mine = store.runs(name, [float(lr) for lr in np.geomspace(low, high, args.lrs)], seeds,
                          args.reread)
        untrained = float(np.mean([task.evaluate(task.make_model(s)) for s in seeds]))
        diagnose(mine)
        label(mine, untrained)
        place(mine, task.steps, task.optimizer)
        for r in mine:
            print(name, f"{r['lr']:.3g}", r["seed"], r["val"], r["truth"], r["single"],
                  r["with_val"], r["standing"], flush=True)
        runs += mine
    command = ("OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m benchmarks.diagnostics_benchmark "
               + (f"--suite {args.suite}" if args.suite else f"--tasks {args.tasks}")
               + f" --lrs {args.lrs} --seeds {args.seeds}")
    summary = [{k: v for k, v in r.items() if not isinstance(v, list)} for r in runs]
    title = f"{SECTION}, {args.suite} half" if args.suite else SECTION
    publish(title, markdown(title, runs, tasks, command, args.lrs, seeds),
            f"diagnostics_benchmark_{args.suite or 'tasks'}.json", summary,
            write=not args.no_write)


if __name__ == "__main__":
    main()
