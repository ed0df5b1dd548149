"""The range test's probe (``lrtune/finder/_plan.py``, rule 3): what it costs, and how often the
band of one or two passes holds the answer of thirty.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m benchmarks.finder_probe --publish

*Cost*: ``find`` with 150 steps over 1e-7 -> 10 (the task's optimizer, schedule and clipping,
model and data of seed 0) with ``probe_batches`` 0 and 8, alternating, best of three each, one
torch thread, on three built-in tasks and the GroupNorm CNN recipe. *Coverage*: on the saved
1000-step range tests of ``benchmarks.finder_spread`` (its dev and validation runs: run them
first), every fine pass and every disjoint pair of passes read alone (with the test's coarse
sweep), counting how often its 10-90% band holds the whole test's suggestion, with the few-pass
floor of rule 4 (``lrtune/finder/_analysis.py``) and without it (the floor set to 1).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator

import torch

import lrtune.finder._analysis as analysis
from benchmarks.finder_benchmark import END_LR, START_LR
from benchmarks.finder_spread import read, saved_curves
from benchmarks.recipes import HALVES, recipe_names
from benchmarks.results_md import publish
from benchmarks.tasks import benchmark_task
from lrtune.finder import find
from lrtune.optimizers import build_optimizer

SECTION = "## LR range test: the probe's cost and the few-pass band"
COST_TASKS = ("digits", "mnist1d", "charlm", "mnist1d-cnn-gn-adamw-wsd")
PROBES = (0, 8)
REPEATS = 3
NUM_ITER = 150
READ_ITER = 1000  # the saved tests whose passes are read one and two at a time


def seconds(task_name: str, probe_batches: int) -> float:
    """Wall time of one range test of the task."""
    task = benchmark_task(task_name)
    model = task.make_model(0)
    optimizer = build_optimizer(task.optimizer, model.parameters(), START_LR, task.weight_decay)
    began = time.perf_counter()
    find(model, optimizer, task.train_loader(0), step_fn=task.step_fn(model), start_lr=START_LR,
         end_lr=END_LR, num_iter=NUM_ITER, grad_clip=task.grad_clip,
         schedule=task.schedule(task.steps), probe_batches=probe_batches)
    return time.perf_counter() - began


def cost(task_name: str) -> dict[int, float]:
    """The best of :data:`REPEATS` wall times per probe size, the sizes alternating."""
    times: dict[int, list[float]] = {p: [] for p in PROBES}
    for _ in range(REPEATS):
        for probe in PROBES:
            times[probe].append(seconds(task_name, probe))
    return {p: min(t) for p, t in times.items()}


@contextlib.contextmanager
def few_pass_floor(value: float) -> Iterator[None]:
    """Read with rule 4's floor set to ``value`` (1: no floor, the bootstrap's band alone)."""
    kept = analysis.FEW_PASS_SPREAD
    analysis.FEW_PASS_SPREAD = value
    try:
        yield
    finally:
        analysis.FEW_PASS_SPREAD = kept


def pass_coverage(curve: dict) -> dict[int, tuple[int, int]]:
    """For one saved range test: per group size (1 and 2 passes), how many disjoint groups of
    its fine passes, read alone, have a band holding the whole test's suggestion, of how many."""
    answer = read(curve)["suggestion"]
    coarse, fine = curve["passes"][0], curve["passes"][1:]
    counts = {}
    for size in (1, 2):
        groups = [fine[i:i + size] for i in range(0, len(fine) - size + 1, size)]
        bands = [read({**curve, "passes": [coarse, *group]})["band"] for group in groups]
        counts[size] = (sum(low <= answer <= high for low, high in bands), len(groups))
    return counts


def coverage(suite: str) -> dict[str, dict[int, tuple[int, int]]]:
    """:func:`pass_coverage` summed over the half's saved 1000-step tests, with the floor
    (``"floor"``) and without (``"none"``)."""
    curves = [c for name in recipe_names(suite) for c in saved_curves(name)
              if c["num_iter"] == READ_ITER]
    totals: dict[str, dict[int, tuple[int, int]]] = {}
    for label, value in (("none", 1.0), ("floor", analysis.FEW_PASS_SPREAD)):
        with few_pass_floor(value):
            summed = {1: (0, 0), 2: (0, 0)}
            for curve in curves:
                for size, (hits, n) in pass_coverage(curve).items():
                    summed[size] = (summed[size][0] + hits, summed[size][1] + n)
        totals[label] = summed
    return totals


def markdown(costs: dict[str, dict[int, float]],
             covered: dict[str, dict[str, dict[int, tuple[int, int]]]]) -> str:
    def share(hits_n: tuple[int, int]) -> str:
        hits, n = hits_n
        return f"{hits}/{n} ({100 * hits / n:.0f}%)" if n else "-"

    lines = [SECTION, "",
             "Command: `OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m benchmarks.finder_probe "
             "--publish` (the coverage reads the passes saved by `benchmarks.finder_spread "
             "--suite dev` and `--suite validation`).", "",
             f"Cost: wall time of `find` with {NUM_ITER} steps over {START_LR:g} -> {END_LR:g} "
             f"(seed 0, one thread), best of {REPEATS}, without a probe and with 8 batches.", "",
             "| task | no probe (s) | 8 probe batches (s) | ratio |", "|---|---|---|---|"]
    lines += [f"| {task} | {c[0]:.3f} | {c[8]:.3f} | {c[8] / c[0]:.2f} |"
              for task, c in costs.items()]
    lines += ["", f"Coverage: of the saved {READ_ITER}-step tests (seeds 0-4 per recipe), each "
              "fine pass and each disjoint pair read alone; how often its 10-90% band holds the "
              "whole test's suggestion, without the few-pass floor and with it "
              f"({analysis.FEW_PASS_SPREAD:g}x either side).", "",
              "| half | 1 pass, no floor | 1 pass, floor | 2 passes, no floor | 2 passes, floor |",
              "|---|---|---|---|---|"]
    lines += [f"| {suite} | {share(c['none'][1])} | {share(c['floor'][1])} | "
              f"{share(c['none'][2])} | {share(c['floor'][2])} |" for suite, c in covered.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--publish", action="store_true", help="write the section of RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    costs = {task: cost(task) for task in COST_TASKS}
    covered = {suite: coverage(suite) for suite in HALVES}
    raw = {"cost": costs, "coverage": {s: {k: {str(n): v for n, v in c.items()}
                                           for k, c in byfloor.items()}
                                       for s, byfloor in covered.items()}}
    publish(SECTION, markdown(costs, covered), "finder_probe.json", raw, write=args.publish)


if __name__ == "__main__":
    main()
