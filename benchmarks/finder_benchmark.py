"""LR range test benchmark: lrtune.find against torch-lr-finder and fastai's valley rule.

For every built-in task and seed, one range test of 0.2 full runs (exponential sweep from 1e-7
to 10, from the task's freshly initialised model, with its optimizer and training batches):

- **lrtune**: ``lrtune.find(..., schedule=<the task's schedule>)``, its ``suggestion``;
- **torch-lr-finder** (the real package): ``LRFinder.range_test`` with its defaults
  (``smooth_f=0.05``, ``diverge_th=5``), suggestion = its steepest-gradient rule exactly as
  ``LRFinder.plot(suggest_lr=True)`` computes it (``skip_start=10, skip_end=5``, argmin of
  ``np.gradient`` of its smoothed losses); it has no gradient clipping, so it sweeps charlm
  without the task's clip;
- **fastai valley**, on the *same* curve as torch-lr-finder: the raw losses (recovered exactly by
  inverting torch-lr-finder's moving average) are smoothed the way fastai's ``Recorder`` does
  (debiased EMA, beta 0.98), cut where fastai's ``LRFinder`` would have stopped (smoothed loss
  above 4x its best), trimmed as in ``Learner.lr_find`` (``[num_it//10:-5]``, NaNs dropped) and
  passed to ``valley`` (fastai 2.7 ``callback/schedule.py``: the longest strictly decreasing
  run of the curve, found by an O(n^2) longest-decreasing-subsequence scan, and the LR 2/3 of
  the way down it: ``idx = start + int(len/3) + int(len/3/2)``).

Each suggestion is scored by full training runs at that LR (seeds 0-2, mean validation loss)
against the dense grid of ``benchmarks/reference.py``: ratio to the grid's best LR and
normalised regret (0 = grid best, 1 = a random log-uniform LR over the grid range).

    nice -n 10 .venv/bin/python -m benchmarks.finder_benchmark
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import time

import numpy as np
import torch

from benchmarks.results_md import publish
from benchmarks.reference import SEEDS, grid_reference, normalised_regret, per_seed_losses
from lrtune.finder import FinderResult, find
from lrtune.optimizers import build_optimizer
from benchmarks.tasks import benchmark_task
from lrtune.tasks import TASKS, get_task

SECTION = "## LR range test"
START_LR, END_LR = 1e-7, 10.0
BUDGET = 0.2  # range-test steps as a fraction of one full run
METHODS = ("lrtune", "torch-lr-finder steepest", "fastai valley")
TLF_SMOOTH = 0.05  # torch-lr-finder's default smooth_f


def lrtune_range_test(task_name: str, seed: int, num_iter: int) -> FinderResult:
    """``lrtune.find`` on the task's (or recipe's) fresh model, with its optimizer, clipping and
    schedule."""
    task = benchmark_task(task_name)
    model = task.make_model(seed)
    optimizer = build_optimizer(task.optimizer, model.parameters(), START_LR, task.weight_decay)
    return find(model, optimizer, task.train_loader(seed), step_fn=task.step_fn(model),
                start_lr=START_LR, end_lr=END_LR, num_iter=num_iter, grad_clip=task.grad_clip,
                schedule=task.schedule(task.steps))


def lrtune_suggestion(task_name: str, seed: int, num_iter: int) -> tuple[float, int]:
    result = lrtune_range_test(task_name, seed, num_iter)
    return result.suggestion, result.steps


def torch_lr_finder_curve(
    task_name: str, seed: int, num_iter: int
) -> tuple[np.ndarray, np.ndarray]:
    """torch-lr-finder's own sweep: its LRs and its (EMA-smoothed) losses."""
    from torch_lr_finder import LRFinder, TrainDataLoaderIter

    task = get_task(task_name)
    model = task.make_model(seed)
    optimizer = build_optimizer(task.optimizer, model.parameters(), START_LR, task.weight_decay)

    def criterion(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return task.forward_loss(lambda _: output, None, target)  # the task's own reshaping

    finder = LRFinder(model, optimizer, criterion, device="cpu")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        finder.range_test(TrainDataLoaderIter(task.train_loader(seed)), start_lr=START_LR,
                          end_lr=END_LR, num_iter=num_iter)
    return np.asarray(finder.history["lr"]), np.asarray(finder.history["loss"], dtype=float)


def torch_lr_finder_steepest(lrs: np.ndarray, smoothed: np.ndarray) -> float:
    """``LRFinder.plot(suggest_lr=True)`` without the plot (skip_start=10, skip_end=5)."""
    lrs, losses = lrs[10:-5], smoothed[10:-5]
    return float(lrs[np.gradient(losses).argmin()])


def unsmooth(smoothed: np.ndarray, f: float = TLF_SMOOTH) -> np.ndarray:
    """Invert torch-lr-finder's ``s_i = f * l_i + (1 - f) * s_{i-1}`` (``s_0 = l_0``)."""
    raw = smoothed.copy()
    raw[1:] = (smoothed[1:] - (1 - f) * smoothed[:-1]) / f
    return raw


def fastai_valley(lrs: np.ndarray, raw: np.ndarray, num_it: int) -> float:
    """fastai's ``lr_find`` + ``valley`` on a raw curve (see the module docstring)."""
    smooth, val, best, end = [], 0.0, math.inf, len(raw)
    for i, loss in enumerate(raw, start=1):
        val = 0.98 * val + 0.02 * loss  # AvgSmoothLoss: torch.lerp(loss, val, 0.98)
        smooth.append(val / (1 - 0.98 ** i))
        best = min(best, smooth[-1])
        if smooth[-1] > 4 * best:  # LRFinder.after_batch stops after recording this batch
            end = i
            break
    lrs, losses = lrs[:end][num_it // 10:-5], np.asarray(smooth[:end])[num_it // 10:-5]
    nan = np.flatnonzero(np.isnan(losses))
    if len(nan):
        lrs, losses = lrs[:nan[0]], losses[:nan[0]]
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    return float(lrs[max_start + int(sections) + int(sections / 2)])


def run_task(task_name: str, seeds: tuple[int, ...]) -> dict:
    task = get_task(task_name)
    num_iter = int(BUDGET * task.steps)
    reference = grid_reference(task_name)
    rows = []
    for seed in seeds:
        started = time.perf_counter()
        lr_ours, steps_ours = lrtune_suggestion(task_name, seed, num_iter)
        seconds_ours = time.perf_counter() - started
        lrs, smoothed = torch_lr_finder_curve(task_name, seed, num_iter)
        suggestions = {
            "lrtune": lr_ours,
            "torch-lr-finder steepest": torch_lr_finder_steepest(lrs, smoothed),
            "fastai valley": fastai_valley(lrs, unsmooth(smoothed), num_iter),
        }
        steps = {"lrtune": steps_ours, "torch-lr-finder steepest": len(lrs),
                 "fastai valley": len(lrs)}
        for method, lr in suggestions.items():
            losses = per_seed_losses(task_name, lr, SEEDS)
            rows.append({
                "seed": seed, "method": method, "lr": lr, "ratio": lr / reference.best_lr,
                "val_losses": [None if not math.isfinite(v) else v for v in losses],
                "regret": normalised_regret(losses, reference),
                "cost": steps[method] / task.steps,
                "seconds": seconds_ours if method == "lrtune" else None,
            })
        print(f"{task_name} seed {seed}: " + ", ".join(
            f"{r['method']} {r['lr']:.3g} (x{r['ratio']:.2f}, regret {r['regret']:.3f})"
            for r in rows[-3:]), flush=True)
    return {"task": task_name, "num_iter": num_iter, "reference": reference.to_dict(), "rows": rows}


def markdown(results: list[dict], seeds: tuple[int, ...], command: str) -> str:
    lines = [
        SECTION, "",
        f"Command: `{command}` (one torch thread; full-run results cached in `benchmarks/out/`).",
        "",
        f"Range tests of {BUDGET:g} full runs ({START_LR:g} -> {END_LR:g}, exponential) from each "
        f"task's fresh model, finder seeds {', '.join(map(str, seeds))}. Each suggestion is scored "
        f"by full runs at that LR (seeds {', '.join(map(str, SEEDS))}, mean validation loss) "
        "against the best LR of a log grid (5 points per decade over 6 decades, same 3 seeds per "
        "point). *ratio* = suggestion / grid best (median over finder seeds, with the range); "
        "*regret* = (loss - best) / (random log-uniform LR - best), median (diverged runs count "
        "at the grid's worst finite loss). fastai's valley runs on torch-lr-finder's curve.",
        "",
        "| task | grid best LR | method | median LR | ratio (min-max) | regret (median) "
        "| cost (runs) |",
        "|---|---|---|---|---|---|---|",
    ]
    regrets: dict[str, list[float]] = {m: [] for m in METHODS}
    within: dict[str, int] = {m: 0 for m in METHODS}
    for result in results:
        best = result["reference"]["best_lr"]
        for method in METHODS:
            rows = [r for r in result["rows"] if r["method"] == method]
            ratios = [r["ratio"] for r in rows]
            regret = [r["regret"] for r in rows]
            regrets[method] += regret
            within[method] += int(1 / 3 <= float(np.median(ratios)) <= 3)
            lines.append(
                f"| {result['task']} | {best:.3g} | {method} "
                f"| {np.median([r['lr'] for r in rows]):.3g} "
                f"| {np.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) "
                f"| {np.median(regret):.3f} | {np.mean([r['cost'] for r in rows]):.2f} |"
            )
    lines += ["", "| method | median regret | mean regret | tasks within 3x of the grid best |",
              "|---|---|---|---|"]
    for method in METHODS:
        lines.append(f"| {method} | {np.median(regrets[method]):.3f} "
                     f"| {np.mean(regrets[method]):.3f} | {within[method]} / {len(results)} |")
    return "\n".join(lines) + "\n\n" + NOTES


NOTES = """Regrets over all tasks and finder seeds. Reading the table:

- diabetes (small noisy regression, 40 epochs at a constant LR) overfits: its best LR is set by
  validation loss, ~100x below where any training-loss range test points. All three methods miss
  it; see `lrtune/finder/_analysis.py` for the evidence (its training curve and gradient noise
  scale look like a task that trains well at 1e-2). The finder does not meet "within 3x on every
  task" there. Held-out loss measured during the sweep does not show it either (section "Range
  test: does held-out loss show overfitting?");
  runs of the task's own length do (`lrtune.tune`).
- torch-lr-finder has no gradient clipping, so on charlm it sweeps without the task's clip 1.0.
- Negative regrets mean the suggestion beat every grid point (it fell between two of them).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = tuple(int(s) for s in args.seeds.split(","))
    results = [run_task(name, seeds) for name in args.tasks.split(",")]
    command = "nice -n 10 .venv/bin/python -m benchmarks.finder_benchmark"
    if args.tasks != ",".join(TASKS) or args.seeds != "0,1,2":
        command += f" --tasks {args.tasks} --seeds {args.seeds}"
    publish(SECTION, markdown(results, seeds, command), "finder_benchmark.json", results,
            write=not args.no_write)


if __name__ == "__main__":
    main()
