"""The range test's plan (coarse sweep, fixed-rate fine passes), the momentum correction, and the
rewind between passes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lrtune.finder._analysis import FALL_LEFT, KNEE_MARGIN, analyse, momentum_lag
from lrtune.finder._plan import (
    COARSE_PER_DECADE, FINE_ABOVE, FINE_BELOW, FINE_PER_DECADE, coarse_lrs, fine_lrs,
    least_iterations,
)
from lrtune.finder._state import capture
from lrtune.tasks import get_task


def test_the_coarse_sweep_covers_the_range_log_evenly():
    lrs = coarse_lrs(1e-7, 10.0)
    assert lrs[0] == pytest.approx(1e-7) and lrs[-1] == pytest.approx(10.0)
    assert len(lrs) == math.ceil(COARSE_PER_DECADE * 8) + 1
    np.testing.assert_allclose(np.diff(np.log10(lrs)), 8 / (len(lrs) - 1))


def test_a_fine_pass_spans_the_fixed_window_around_the_edge_at_the_fixed_rate():
    lrs = fine_lrs(1.0, 1e-7, 10.0)
    assert lrs[0] == pytest.approx(10.0**-FINE_BELOW)
    assert lrs[-1] == pytest.approx(10.0**FINE_ABOVE)
    np.testing.assert_allclose(np.diff(np.log10(lrs)), 1 / FINE_PER_DECADE)
    # the same grid wherever the edge is; only the user's range cuts it
    assert len(fine_lrs(1e-3, 1e-7, 10.0)) == len(lrs)
    clipped = fine_lrs(1e-5, 1e-7, 10.0)
    assert clipped[0] >= 1e-7 * (1 - 1e-12) and len(clipped) < len(lrs)
    assert fine_lrs(10.0, 1e-7, 10.0)[-1] <= 10.0 * (1 + 1e-12)


def test_the_least_budget_is_the_coarse_sweep_and_one_whole_pass():
    assert least_iterations(1e-7, 10.0) == len(coarse_lrs(1e-7, 10.0)) + len(
        fine_lrs(1.0, 1e-7, 10.0)) == 50


def test_momentum_lag_is_the_long_run_over_the_swept_velocity():
    assert momentum_lag(0.0, 1.33) == 1.0
    growth = 10 ** (1 / FINE_PER_DECADE)
    assert momentum_lag(0.9, growth) == pytest.approx((1 - 0.9 / growth) / 0.1)
    assert 3.0 < momentum_lag(0.9, growth) < 3.5
    assert momentum_lag(0.9, 1.0 + 1e-9) == pytest.approx(1.0)  # a sweep that barely moves


def test_momentum_lowers_the_suggestion_by_its_lag():
    lrs = 10.0 ** (np.arange(33) / FINE_PER_DECADE - 3.75)
    x = np.log10(lrs)
    passes = [2.0 - np.exp(-((x + 1.0) / 0.8) ** 2) + 0.01 * np.sin(7 * x + k) for k in range(4)]
    plain, heavy = analyse(lrs, passes), analyse(lrs, passes, momentum=0.9)
    ratio = plain.suggestion / heavy.suggestion
    assert ratio == pytest.approx(momentum_lag(0.9, float(lrs[1] / lrs[0])), rel=1e-9)


def test_the_mean_of_passes_finds_a_known_minimum_and_a_band_from_their_spread():
    lrs = 10.0 ** (np.arange(33) / FINE_PER_DECADE - 3.75)
    x = np.log10(lrs)
    rng = np.random.default_rng(0)
    best = -1.0  # the synthetic basin's minimum: lr 0.1
    passes = [1.0 + (x - best) ** 2 + rng.normal(0, 0.05, len(x)) for _ in range(12)]
    reading = analyse(lrs, passes, floor=10.0)
    assert reading.min_lr == pytest.approx(0.1, rel=0.34)  # within the grid's step
    low, high = reading.band
    assert low <= reading.suggestion <= high and high / low < 1.5
    noisier = analyse(lrs, [p + rng.normal(0, 0.3, len(x)) for p in passes], floor=10.0)
    assert noisier.band[1] / noisier.band[0] > high / low


def _passes(shape, seed: int, count: int = 5, noise: float = 0.05) -> tuple[np.ndarray, list]:
    """``count`` noisy passes over a fine-pass grid of the curve ``shape(log10 lr)``."""
    lrs = 10.0 ** (np.arange(41) / FINE_PER_DECADE - 3.75)
    rng = np.random.default_rng(seed)
    x = np.log10(lrs)
    return lrs, [shape(x) + rng.normal(0, noise, len(x)) for _ in range(count)]


def test_a_flat_bottom_is_read_at_its_knee_wherever_the_noise_puts_its_minimum():
    # the loss falls from 1 to 0 over two decades, then stays flat for one until the cliff
    def shape(x):
        return np.clip((-1.0 - x) / 2.0, 0.0, 1.0) + np.where(x > 0.0, 20.0 * x, 0.0)

    knee = -1.0 - 2.0 * FALL_LEFT  # 80% of the fall
    readings = [analyse(*_passes(shape, seed), floor=1.0) for seed in range(5)]
    suggestions = [r.suggestion * KNEE_MARGIN for r in readings]  # no schedule, no momentum
    for r, lr in zip(readings, suggestions, strict=True):
        assert lr == pytest.approx(r.knee_lr)
        assert 10 ** (knee - 0.1) < lr < 10 ** (knee + 0.1)
    assert max(suggestions) / min(suggestions) < 1.3
    minima = [r.min_lr for r in readings]
    assert max(minima) / min(minima) > 2  # the minimum of the same curves wanders


def test_a_second_dip_after_a_partial_blow_up_does_not_move_the_reading():
    # the first basin at 10^-1.5; the loss climbs halfway back, then dips a little deeper at
    # 10^-0.5 before the cliff (a network that half blew up and settled again)
    def shape(x):
        first = np.clip((-1.5 - x) / 1.5, 0.0, 1.0) * 0.8 + 0.2
        climb = np.clip((x + 1.5) / 0.5, 0.0, 1.0) * 0.4 - np.clip((x + 1.0) / 0.5, 0.0, 1.0) * 0.45
        return first + climb + np.where(x > 0.0, 20.0 * x, 0.0)

    for seed in range(3):
        reading = analyse(*_passes(shape, seed), floor=1.0)
        assert reading.min_lr > 10 ** -0.9  # the second dip is the deeper one
        assert reading.suggestion * KNEE_MARGIN < 10 ** -1.5


def test_the_reading_never_lies_past_where_most_passes_blew_up():
    # no clear descent: flat noise; two passes of three blow up at the 13th LR, and the one
    # that runs on happens to dip at the end, so the mean's lowest point lies past the blow-up
    lrs, passes = _passes(lambda x: np.ones_like(x), seed=0, count=3, noise=0.05)
    for p in passes[:2]:
        p[12:] = 1e6
    passes[2][-6:] -= 0.5
    reading = analyse(lrs, passes, floor=1.0)
    assert reading.diverged_lr == pytest.approx(lrs[12])
    assert reading.min_lr > reading.diverged_lr  # what the guard is for
    assert reading.suggestion * KNEE_MARGIN <= reading.diverged_lr * (1 + 1e-9)


def test_rewinding_twice_gives_the_optimizer_its_first_state_back():
    task = get_task("digits")
    model = task.make_model(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = iter(task.train_loader(0))

    def step():
        x, y = next(batches)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    step()  # state to keep
    saved = [v.clone() for s in optimizer.state.values() for v in s.values()
             if isinstance(v, torch.Tensor)]
    weights = [p.detach().clone() for p in model.parameters()]
    snapshot = capture(model, optimizer)
    for _ in range(2):  # a pass, a rewind, another pass: the second must not start from the first
        for _ in range(3):
            step()
        snapshot.rewind()
    now = [v for s in optimizer.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
    assert all(torch.equal(a, b) for a, b in zip(now, saved, strict=True))
    assert all(torch.equal(p, w) for p, w in zip(model.parameters(), weights, strict=True))


def test_a_curve_that_climbs_back_above_its_start_at_its_last_point_is_read():
    lrs = 10.0 ** (np.arange(31) / FINE_PER_DECADE - 3.75)
    losses = np.concatenate([np.linspace(2.0, 1.0, 25), [1.0, 1.0, 1.0, 1.0, 1.0, 2.5]])
    reading = analyse(lrs, [losses, losses + 0.01, losses - 0.01])
    assert reading.diverged_lr == pytest.approx(lrs[-1])  # the rebound, not past the window
    assert reading.suggestion < lrs[24]
