"""How far one fine pass of the range test reads from thirty: the floor under the spread target.

    nice -n 10 .venv/bin/python -m benchmarks.finder_single_pass --publish

A 50-step range test buys one fine pass (``lrtune/finder/_plan.py``), so its suggestion is that
pass's reading, and issue 12's target (max / min suggestion over num_iter 50-1000 and seeds 0-4
at most 2) needs the five one-pass readings of the 50-step column alone within 2x. On the saved
1000-step tests of ``benchmarks.finder_spread`` (run it first, for the built-in tasks and both
halves of the suite), every fine pass is read alone with its test's coarse sweep, as a 50-step
test would read it. Per task: the pass's suggestion over its own test's (p10, median, p90),
the width p90 / p10 of those ratios, and *5 within 2x*: the share of
:data:`DRAWS` draws of one pass from each seed's test (five readings, as the 50-step column
has) whose max / min is at most 2.
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.finder_spread import read, saved_curves
from benchmarks.recipes import HALVES, recipe_names
from benchmarks.results_md import publish
from lrtune.tasks import TASKS

SECTION = "## LR range test: one pass against thirty"
READ_ITER = 1000  # the saved tests whose passes are read one at a time
DRAWS = 2000
TARGET = 2.0  # issue 12: the suggestion's max / min over budgets and seeds


def single_pass_readings(curve: dict) -> tuple[float, list[float]]:
    """One saved range test's suggestion, and each of its fine passes' read alone."""
    coarse, fine = curve["passes"][0], curve["passes"][1:]
    alone = [read({**curve, "passes": [coarse, one]})["suggestion"] for one in fine]
    return read(curve)["suggestion"], alone


def task_summary(task: str) -> dict | None:
    """The dispersion of one task's single-pass readings (None: no saved 1000-step test)."""
    by_seed = {c["seed"]: single_pass_readings(c) for c in saved_curves(task)
               if c["num_iter"] == READ_ITER}
    if not by_seed:
        return None
    ratios = np.array([r / whole for whole, alone in by_seed.values() for r in alone])
    p10, p50, p90 = np.percentile(ratios, (10, 50, 90))
    rng = np.random.default_rng(0)
    readings = [np.asarray(alone) for _, alone in by_seed.values()]
    draws = np.array([[rng.choice(r) for r in readings] for _ in range(DRAWS)])
    within = float(np.mean(draws.max(axis=1) / draws.min(axis=1) <= TARGET))
    return {"task": task, "seeds": len(by_seed), "passes": len(ratios), "p10": p10, "p50": p50,
            "p90": p90, "width": p90 / p10, "within": within}


def markdown(rows: dict[str, list[dict]]) -> str:
    lines = [SECTION, "",
             "Command: `nice -n 10 .venv/bin/python -m benchmarks.finder_single_pass --publish` "
             "(reads the passes saved by `benchmarks.finder_spread`, with no `--suite`, "
             "`--suite dev` and `--suite validation`).", "",
             f"Every fine pass of the saved {READ_ITER}-step range tests (seeds 0-4) read alone "
             "with its test's coarse sweep, as a 50-step test reads its one pass: its suggestion "
             "over its whole test's, p10 / median / p90 over the task's passes, the width "
             f"p90 / p10, and *5 within {TARGET:g}x*: the share of {DRAWS} draws of one pass "
             "per seed whose five readings span at most that (what the 50-step column needs "
             "for the spread target).", "",
             f"| set | task | passes | p10 | median | p90 | width | 5 within {TARGET:g}x |",
             "|---|---|---|---|---|---|---|---|"]
    for label, summaries in rows.items():
        lines += [f"| {label} | {s['task']} | {s['passes']} | {s['p10']:.2f} | {s['p50']:.2f} | "
                  f"{s['p90']:.2f} | {s['width']:.2f} | {100 * s['within']:.0f}% |"
                  for s in summaries]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--publish", action="store_true", help="write the section of RESULTS.md")
    args = parser.parse_args()
    sets = {"built-in": list(TASKS), **{half: recipe_names(half) for half in HALVES}}
    rows = {label: [s for s in map(task_summary, tasks) if s is not None]
            for label, tasks in sets.items()}
    publish(SECTION, markdown(rows), "finder_single_pass.json", rows, write=args.publish)


if __name__ == "__main__":
    main()
