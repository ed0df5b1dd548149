"""How small a regret the suite's scoring can tell from noise: the oracle with other seeds.

    nice -n 10 .venv/bin/python -m benchmarks.noise_floor --suite dev [--publish]  # or fresh

Every method is scored by full runs on seeds 0, 1, 2 at its LR against the best of a grid run on
the same seeds (``benchmarks/reference.py``). The grid's best is itself picked from noisy means,
so even the LR that is truly best for the recipe need not score 0. This benchmark measures how
far from 0 a method that knew the full-length curve could land: the grid's LRs within a decade of
its best are run again on seeds 3, 4, 5; the *oracle* is the best of those means, and its regret
is scored like any method's (seeds 0-2 against the grid). Beside it, the regret of the grid's two
neighbours of its best (a factor of 10**0.2 = 1.58 either way: how steep the basin is in regret
units), and the standard deviation of a 3-seed mean in regret units near the best (the grid LRs
whose mean regret is under 0.2: the noise each scored number carries).

A target below a recipe's oracle regret asks a method to beat a method that knows the answer
from three other seeds: it is met by luck, not by the method. The runs are cached with the
grid's (``benchmarks/out/grid_<recipe>.json``, keyed by LR and seed).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

import numpy as np
import torch

from benchmarks.recipes import SETS, recipe_names, set_name
from benchmarks.reference import GridReference, grid_reference, normalised_regret, per_seed_losses
from benchmarks.results_md import publish_suite

ORACLE_SEEDS = (3, 4, 5)
WITHIN = 1.0  # decades either side of the grid's best the oracle chooses from
NEAR = 0.2  # regret under which a grid LR counts as near the best (for the noise figure)


def recipe_floor(name: str) -> dict:
    """The oracle's LR and regret, the neighbours' regrets and the noise of a scored mean."""
    ref = grid_reference(name)
    best = ref.best_index
    candidates = [float(lr) for lr in ref.lrs
                  if abs(math.log10(lr / ref.best_lr)) <= WITHIN + 1e-9]
    oracle_means = {lr: ref.capped(per_seed_losses(name, lr, ORACLE_SEEDS)) for lr in candidates}
    oracle = min(oracle_means, key=oracle_means.__getitem__)
    neighbours = [normalised_regret(ref.per_seed[i], ref)
                  for i in (best - 1, best + 1) if 0 <= i < len(ref.lrs)]
    return {
        "grid_best": ref.best_lr,
        "oracle_lr": oracle,
        "oracle_regret": normalised_regret(per_seed_losses(name, oracle), ref),
        "neighbour_regrets": neighbours,
        "mean_noise": _mean_noise(ref),
    }


def _mean_noise(ref: GridReference) -> float:
    """The median standard deviation of a 3-seed mean at the grid LRs near the best, in regret
    units (the seed-to-seed spread of one LR's runs, over sqrt(3), over random - best)."""
    scale = ref.random_loss - ref.best_loss
    near = [row for row in ref.per_seed
            if np.isfinite(row).all() and normalised_regret(row, ref) < NEAR]
    sds = [float(np.std(row, ddof=1)) / math.sqrt(len(row)) / scale for row in near]
    return float(np.median(sds))


def markdown(title: str, suite: str, rows: dict[str, dict], command: str) -> str:
    lines = [
        title, "",
        f"Command: `{command}` (one torch thread; runs cached in `benchmarks/out/`).", "",
        f"Each recipe of the {set_name(suite)}: its grid's best LR (seeds 0-2, the reference "
        "every method is scored against); the *oracle*, the best of the grid LRs within a decade "
        "of it by the mean of full runs on seeds 3, 4, 5, and its regret scored like a method's "
        "(seeds 0-2 against the grid); the regret of the grid's two neighbours of its best "
        "(1.58x lower, higher); the standard deviation of a scored 3-seed mean near the best, "
        "in regret units. A worst-recipe target below a recipe's oracle regret is met by luck.",
        "",
        "| recipe | grid best LR | oracle LR (seeds 3-5) | oracle regret | regret at best / 1.58,"
        " x 1.58 | sd of a scored mean |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        neighbours = ", ".join(f"{r:.3f}" for r in row["neighbour_regrets"])
        lines.append(f"| {name} | {row['grid_best']:.3g} | {row['oracle_lr']:.3g} | "
                     f"{row['oracle_regret']:.3f} | {neighbours} | {row['mean_noise']:.3f} |")
    regrets = [row["oracle_regret"] for row in rows.values()]
    lines += ["", f"Oracle regret over the {len(rows)} recipes: median "
              f"{float(np.median(regrets)):.3f}, worst {max(regrets):.3f}."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=SETS, required=True)
    parser.add_argument("--publish", action="store_true", help="write the RESULTS.md section")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = {}
    for name in recipe_names(args.suite):
        rows[name] = recipe_floor(name)
        print(f"{name}: oracle regret {rows[name]['oracle_regret']:.3f}", flush=True)
    publish_suite("noise_floor", args.suite, f"## Scoring noise floor, {set_name(args.suite)}",
                  rows, markdown, write=args.publish)


if __name__ == "__main__":
    main()
