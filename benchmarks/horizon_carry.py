"""Carrying a constant LR's refine rung to full length: `auto`'s measured exponent or a fixed one.

    nice -n 10 .venv/bin/python -m benchmarks.horizon_carry --budget 1.5 [--publish]

Under a constant LR the best LR moves with the run's length (most often it falls), so `auto`
measures the shift between its scan (T/16) and its refine rung and carries it to T as a power law,
``refine_best * (T / refine_len) ** -beta``, with the measured ``beta`` clipped to [0, 1]
(docs/auto.md, section 2). At 1.5 runs the two rungs are only about 1.6x apart in length, so
the measured exponent is mostly the noise of two readings a lattice step or a decade wide.

For every recipe trained at a constant LR (the ``dev-constant`` set, the constant recipes of the
dev and validation halves and of the fresh set, the built-in ``diabetes`` task), study seeds 0-4:
one `auto` study at ``--budget``; then, on that same study's trials, its refine rung's best
carried with fixed exponents instead, capped as `auto` caps its answer (inside the range, a
lattice step below the lowest LR that diverged). Each LR is scored like the search benchmarks
(full runs on seeds 0-2 against the recipe's grid, normalised regret). A study whose budget
bought no refine rung is not shown (its answer carries the scan's best by the prior's exponent).
Rows carry their set: rules are chosen on the development material (``dev``, ``dev-constant``,
``built-in``); the validation half and the fresh set are read, not chosen on.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np
import torch

import lrtune
from benchmarks.recipes import RECIPES, half_of
from benchmarks.reference import grid_reference, normalised_regret, per_seed_losses
from benchmarks.results_md import publish
from benchmarks.tasks import benchmark_task, search_space
from lrtune.records import TrialRecord
from lrtune.space import LogRange
from lrtune.strategies._auto import _capped, _cliff, basin_vertex
from lrtune.strategies._estimate import schedule_decays
from lrtune.tasks import TASKS, objective

SEEDS = (0, 1, 2, 3, 4)
EXPONENTS = (0.0, 0.25, 0.5, 0.75, 1.0)
DEVELOPMENT = ("dev", "dev-constant", "built-in")
TITLE = "## Horizon: carrying a constant LR's shift, {budget} runs"


def constant_lr_tasks() -> list[str]:
    """Every recipe and built-in task trained at a constant LR, development material first."""
    names = [n for n in (*TASKS, *RECIPES) if is_constant(n)]
    return sorted(names, key=lambda n: (_set(n) not in DEVELOPMENT, _set(n), n))


def _set(name: str) -> str:
    return half_of(name) if name in RECIPES else "built-in"


def carried(trials: Sequence[TrialRecord], full_steps: int, exponent: float,
            lr_range: LogRange) -> float | None:
    """The refine rung's best carried to ``full_steps`` with a fixed exponent, capped as `auto`
    caps its answer; None when the study has no refine rung with a finite loss."""
    refine = [t for t in trials if t.tag == "refine"]
    best = basin_vertex(refine) if refine else None
    if best is None:
        return None
    lr = best * (full_steps / refine[0].steps) ** -exponent
    return _capped(lr, _cliff(trials, {}), lr_range)


def study_row(name: str, seed: int, budget: float) -> dict[str, float] | None:
    """Regret of `auto`'s answer and of each fixed exponent's, on one study."""
    task = benchmark_task(name)
    space = search_space(task)
    study = lrtune.tune(objective(task, seed), steps=task.steps, budget=budget, strategy="auto",
                        space=space, seed=seed)
    reference = grid_reference(name)
    lrs = {f"{e:g}": carried(study.trials, task.steps, e, space.lr_range) for e in EXPONENTS}
    if any(lr is None for lr in lrs.values()):
        return None
    lrs["auto"] = study.best.lr
    return {rule: normalised_regret(per_seed_losses(name, lr), reference)
            for rule, lr in lrs.items()}


def is_constant(name: str) -> bool:
    task = benchmark_task(name)
    space = search_space(task)
    return not schedule_decays(space, space.config(space.lr_range.low), task.steps)


def markdown(rows: dict[str, list[dict[str, float]]], budget: float, command: str) -> str:
    rules = ["auto", *(f"{e:g}" for e in EXPONENTS)]
    heads = " | ".join(["`auto`", *(f"beta = {r}" for r in rules[1:])])
    lines = [TITLE.format(budget=f"{budget:g}"), "", f"Command: `{command}` (one torch thread).",
             "", f"`auto` at {budget:g} runs on every constant-LR recipe, study seeds "
             f"{', '.join(map(str, SEEDS))}; per rule, the median regret over the seeds and, in "
             "brackets, the worst seed's. `auto` is the study's own answer (the measured "
             "exponent, clipped to [0, 1]); *beta = b* carries the same study's refine rung with "
             "the exponent b. Rules are chosen on the development rows (set dev, dev-constant, "
             "built-in); the others are read after.", "",
             f"| recipe | set | {heads} |", "|---|---|" + "---|" * len(rules)]
    medians: dict[str, dict[str, list[float]]] = {"development": {}, "read after": {}}
    for name, seeds in rows.items():
        cells = []
        group = "development" if _set(name) in DEVELOPMENT else "read after"
        for rule in rules:
            values = [s[rule] for s in seeds]
            median = float(np.median(values))
            medians[group].setdefault(rule, []).append(median)
            cells.append(f"{median:.3f} ({max(values):.3f})")
        lines.append(f"| {name} | {_set(name)} | " + " | ".join(cells) + " |")
    lines.append("")
    for group, by_rule in medians.items():
        if by_rule:
            lines.append(f"Over the {len(next(iter(by_rule.values())))} {group} recipes, median "
                         "/ worst recipe: " + "; ".join(
                             f"{'auto' if r == 'auto' else 'beta = ' + r} "
                             f"{np.median(v):.3f} / {max(v):.3f}" for r, v in by_rule.items())
                         + ".")
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=1.5, help="in full runs (default 1.5)")
    parser.add_argument("--publish", action="store_true", help="write the RESULTS.md section")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # as reference.py: cached numbers come from one thread
    rows: dict[str, list[dict[str, float]]] = {}
    for name in constant_lr_tasks():
        seeds = [row for seed in SEEDS if (row := study_row(name, seed, args.budget))]
        if seeds:
            rows[name] = seeds
        print(f"{name}: {len(seeds)} studies with a refine rung", flush=True)
    command = ("nice -n 10 .venv/bin/python -m benchmarks.horizon_carry --budget "
               f"{args.budget:g} --publish")
    publish(TITLE.format(budget=f"{args.budget:g}"), markdown(rows, args.budget, command),
            f"horizon_carry_{args.budget:g}.json", rows, write=args.publish)


if __name__ == "__main__":
    main()
