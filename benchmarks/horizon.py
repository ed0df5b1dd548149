"""The horizon effect: the best LR of runs of different lengths (schedule compressed to each).

    python -m benchmarks.horizon digits 1e-3 1      # TASK LOW HIGH

Prints, for runs of T/16, T/6, T/2 and T steps, the mean validation loss (seeds 0 and 1) at 4 LRs
per decade and the best LR; docs/auto.md quotes its output.
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from lrtune.tasks import get_task, train


def main(name: str, low: float, high: float) -> None:
    torch.set_num_threads(1)
    task = get_task(name)
    lrs = np.geomspace(low, high, int(round(np.log10(high / low) * 4)) + 1)
    for fraction in (1 / 16, 1 / 6, 1 / 2, 1):
        steps = max(8, int(task.steps * fraction))
        losses = [np.mean([train(task, float(lr), steps=steps, seed=s).val_loss for s in (0, 1)])
                  for lr in lrs]
        best = lrs[int(np.argmin(losses))]
        print(f"{name} T*{fraction:.3f} ({steps} steps): best lr {best:.3g} | "
              + " ".join(f"{v:.3f}" for v in losses), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]))
