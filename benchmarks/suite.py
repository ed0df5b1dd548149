"""The development suite's reference grids and their summary in RESULTS.md.

    nice -n 15 .venv/bin/python -m benchmarks.suite --grids          # compute (cached) grids
    .venv/bin/python -m benchmarks.suite --publish                   # the table, into RESULTS.md

``--grids`` trains every missing (LR, seed) point of each recipe's grid (``reference.py``: 5
points per decade over the recipe's search range, seeds 0-2, cached in ``benchmarks/out/``);
``--publish`` reads the grids (computing what is missing) and writes the section "Development
suite". Give recipe names to restrict either to them.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from benchmarks.recipes import RECIPES, SETS, half_of, recipe_names
from benchmarks.reference import GridReference, grid_reference
from benchmarks.results_md import publish

TITLE = "## Development suite"
COMMAND = ("nice -n 15 .venv/bin/python -m benchmarks.suite --grids && "
           ".venv/bin/python -m benchmarks.suite --publish")
COLLAPSED_GAIN = 0.1  # a run keeping less of the best LR's gain than this has collapsed


@dataclass(frozen=True)
class GridSummary:
    """What a recipe's grid shows: the best LR, its loss, and the cliff above it."""

    name: str
    best_lr: float
    best_loss: float
    cliff_lr: float | None  # lowest grid LR above the best where training breaks down
    basin: bool  # the best LR is an interior point and a cliff lies above it in the range

    @classmethod
    def of(cls, ref: GridReference) -> GridSummary:
        """The cliff is the first LR above the best where a seed diverged or the mean loss has
        given back 90% of the best LR's gain over the grid's lowest LR (a run that collapsed to
        chance without a NaN: gradient clipping and normalisation often keep it finite)."""
        best = ref.best_index
        collapsed = ref.losses > ref.losses[0] - COLLAPSED_GAIN * (ref.losses[0] - ref.best_loss)
        broken = ~np.isfinite(ref.per_seed).all(axis=1) | collapsed
        above = [i for i in range(best + 1, len(ref.lrs)) if broken[i]]
        cliff = float(ref.lrs[above[0]]) if above else None
        interior = 0 < best < len(ref.lrs) - 1
        return cls(ref.task, ref.best_lr, ref.best_loss, cliff, interior and cliff is not None)


def table(summaries: Sequence[GridSummary]) -> str:
    lines = ["| recipe | set | optimizer | schedule | steps x batch | grid | best LR | "
             "loss at best | cliff | basin inside | regime |",
             "|" + "---|" * 11]
    for s in summaries:
        r = RECIPES[s.name]
        low, high = r.search_range
        cliff = "none in range" if s.cliff_lr is None else f"{s.cliff_lr:.3g}"
        lines.append(
            f"| {s.name} | {half_of(s.name)} | {r.optimizer} | {r.schedule} | "
            f"{r.steps} x {r.batch_size} | {low:g}-{high:g} | {s.best_lr:.3g} | "
            f"{s.best_loss:.4f} | {cliff} | {'yes' if s.basin else 'NO'} | {r.regime} |")
    return "\n".join(lines) + "\n"


def section(summaries: Sequence[GridSummary]) -> str:
    count = {h: sum(half_of(s.name) == h for s in summaries) for h in SETS}
    return (f"{TITLE}\n\nCommand: `{COMMAND}`\n\n"
            f"{len(summaries)} recipes ({count['dev']} development, {count['validation']} "
            "validation; the split rule is in `benchmarks/recipes/__init__.py`: sorted by name, "
            f"alternating; {count['fresh']} of the fresh set, written after the rules were "
            "chosen and outside the split: `FRESH` in `benchmarks/recipes/_suite.py`; and "
            f"{count['dev-constant']} of the dev half's decaying recipes at a constant LR, "
            "development material: `DEV_CONSTANT` in `benchmarks/recipes/__init__.py`). Each "
            "grid: full runs at 5 log-spaced LRs per decade over the recipe's search range, seeds "
            "0, 1, 2; the best LR minimises the mean final validation loss (a diverged seed makes "
            "its LR ineligible). *Cliff*: the first grid LR above the best where a seed diverged "
            "or the mean loss kept less than 10% of the best LR's gain over the grid's lowest LR "
            "(collapsed without a NaN). *Basin inside*: the best LR "
            "is not at an edge of the grid and a cliff lies above it.\n\n" + table(summaries))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="recipes (default: the whole suite)")
    parser.add_argument("--grids", action="store_true", help="compute the grids and print them")
    parser.add_argument("--publish", action="store_true", help="write the section of RESULTS.md")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(RECIPES))
    if unknown:
        parser.error(f"unknown recipes {', '.join(unknown)}; choose from {', '.join(RECIPES)}")
    names = args.names or recipe_names()
    torch.set_num_threads(1)  # as reference.py: cached numbers come from one thread
    summaries = []
    for name in names:
        ref = grid_reference(name)
        summaries.append(GridSummary.of(ref))
        if args.grids:
            s = summaries[-1]
            print(f"{name}: best {s.best_lr:.3g} loss {s.best_loss:.4f} cliff {s.cliff_lr} "
                  f"basin {s.basin}", flush=True)
            for lr, mean in zip(ref.lrs, ref.losses, strict=False):
                print(f"  {lr:9.3g}  " + (f"{mean:9.4f}" if math.isfinite(mean) else "diverged"))
    if args.publish:
        publish(TITLE, section(summaries), "suite_grids.json",
                [{**s.__dict__, "half": half_of(s.name)} for s in summaries])


if __name__ == "__main__":
    main()
