"""What a range test sweeps: one coarse sweep to find the edge, then fine passes at a fixed rate.

A single sweep over ``num_iter`` steps reads a different curve for every ``num_iter``: a sweep
that spends more steps per decade trains longer below each LR, and its loss answers each LR
after a lag of a few steps, so the minimum moves with the sweep's rate (the noisy-label MLP's
suggestion fell 6x from 50 to 1000 steps, the LSTM's rose 9x from 50 to 100: benchmarks/RESULTS.md
at commit 35c7d48, "LR range test: spread over num_iter and seeds, dev half of the suite"). Here
the rate is not the user's choice:

1. **Coarse sweep**: from ``start_lr`` to ``end_lr`` at :data:`COARSE_PER_DECADE` steps per
   decade, until the loss blows up. Its only job is the *edge*, the first LR where the loss is
   clearly worse than the best it had reached (:func:`~lrtune.finder._analysis.rise_onset`) or
   blew up: harm is the strongest signal a curve has (an LSTM's curve can be flat noise until
   it rises), while the minimum of a flat or noisy curve is anywhere. The blow-up alone is not
   enough at this rate: three losses in a row above the limit span two decades, so a curve that
   was clearly rising could still count as not diverged at the top of the range.
2. **Fine passes**, each from the same snapshot of the user's state, over the window from
   :data:`FINE_BELOW` decades below the edge to :data:`FINE_ABOVE` above it, at
   :data:`FINE_PER_DECADE` steps per decade. Every pass is the same experiment; only the batches
   (and dropout's draws) differ, so the curve they read does not depend on ``num_iter``, and
   ``num_iter`` buys replicates: their mean is less noisy, and their spread is the uncertainty.
   Starting the window well below the edge lets each pass train (30 steps) before it reaches
   the LRs that matter, as a real run has: an untrained network, BatchNorm ones most, takes
   LRs early on that it cannot take once it has learned, so passes that start closer to the
   edge read too high.
3. **A fine pass reads a probe**: after each step, the loss of :data:`PROBE_BATCHES` batches
   drawn once before the passes, without gradients and with the same dropout masks every time,
   instead of the loss of the batch the step trained on. That loss jumps from batch to batch
   (noisy labels and dropout most), and one pass's knee then lands wherever its luckiest dip
   was; the probe moves only with the weights, so what is left is how the runs themselves
   differ. Read on the dev half of the suite (``python -m benchmarks.finder_spread --suite
   dev``, num_iter 50-1000, seeds 0-4), the spread of the suggestion fell from 4.92 to 1.37 on
   the noisy-label MLP (1.41 once ``find`` seeded its own dropout draws) and from 2.95 to 1.43
   on the plain-SGD MLP, whose one-pass readings set it; with 2 or 4 probe batches (tried
   first, before a probe's single blow-up ended a pass) the noisy-label MLP's was 7.6 and 1.4,
   the plain-SGD MLP's 2.05 and 2.41 (benchmarks/RESULTS.md, "LR range test: a probe instead of
   the training batch (notes)"). What the probe leaves is how the runs differ: read alone, one
   pass's suggestion lies within a p10-p90 width of 1.07-1.37x of its test's on 10 of the 20
   tasks of the suite and the built-in ones, but 1.64-9.91x on the other 10 (the LSTM, the
   GroupNorm CNN under AdamW, the built-in mnist1d CNN, small MLPs; ``python -m
   benchmarks.finder_single_pass``), where a 50-step test, which buys one pass, reads wherever
   its pass landed. It costs ``PROBE_BATCHES`` forward passes a step: a
   150-step test took 2.1-3.5x as long on the
   built-in digits, mnist1d and charlm tasks and a GroupNorm CNN (``python -m
   benchmarks.finder_probe``).
   The coarse sweep keeps the training batches' losses: its edge rule compares a rise with
   their noise.

Steps left over that cannot pay for a whole pass are not taken.
"""

from __future__ import annotations

import math

import numpy as np

COARSE_PER_DECADE = 1.5  # 13 steps over the default 8 decades: a pass fits in a budget of 50
FINE_PER_DECADE = 8.0
FINE_BELOW = 3.75  # decades below the coarse edge where a fine pass starts
FINE_ABOVE = 0.75  # and above it where it ends (a pass stops at its own blow-up before that)
PROBE_BATCHES = 8  # batches whose loss a fine pass records after each step (rule 3)


def coarse_lrs(start_lr: float, end_lr: float) -> np.ndarray:
    """The coarse sweep's LRs, log-even over the whole range."""
    decades = math.log10(end_lr) - math.log10(start_lr)  # end / start may overflow
    return np.geomspace(start_lr, end_lr, math.ceil(COARSE_PER_DECADE * decades) + 1)


def fine_lrs(edge: float, start_lr: float, end_lr: float) -> np.ndarray:
    """One fine pass's LRs around ``edge``, on the fixed rate's grid, inside the user's range."""
    steps = math.ceil(FINE_PER_DECADE * (FINE_BELOW + FINE_ABOVE)) + 1
    lrs = edge * 10.0 ** (np.arange(steps) / FINE_PER_DECADE - FINE_BELOW)
    return lrs[(lrs >= start_lr * (1 - 1e-12)) & (lrs <= end_lr * (1 + 1e-12))]


def least_iterations(start_lr: float, end_lr: float) -> int:
    """The coarse sweep and one whole fine pass: the smallest ``num_iter`` that reads a curve."""
    full_pass = math.ceil(FINE_PER_DECADE * (FINE_BELOW + FINE_ABOVE)) + 1
    return len(coarse_lrs(start_lr, end_lr)) + full_pass
