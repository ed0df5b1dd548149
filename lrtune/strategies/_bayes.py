"""Bayesian optimisation over full-length runs: a Gaussian-process surrogate, expected improvement.

Features are the position of the LR (and of a weight-decay range) on the log scale of the
space plus a one-hot code of the categorical choice. A diverged trial is a *censored*
observation, never dropped: it enters the fit at a value worse than any finite loss seen, and
no LR at or above the lowest LR that diverged (for the same choice) is proposed again.
"""

from __future__ import annotations

import math

import numpy as np

from lrtune.records import TrialRecord, TrialState
from lrtune.strategies._base import (
    FINISHED, WAIT, Answer, Context, Proposal, Strategy, full_run_count,
)
from lrtune.strategies._random import sample_configs, unit_samples

CANDIDATES = 1024
LENGTH_SCALES = (0.1, 0.15, 0.25)  # in units of the log-LR range: basins are 1-2 decades wide
NOISES = (1e-4, 1e-2, 1e-1)


class BayesStrategy(Strategy):
    name = "bayes"

    def ask(self, context: Context) -> Answer:
        total = full_run_count(context)
        done = [t for t in context.live if t.tag == "bayes"]
        if context.remaining_steps < context.full_steps:
            return FINISHED  # a diverged run stops early: what it gave back buys more runs
        initial = min(total, max(2, total // 3))  # two spread points before the first fit
        if len(done) < initial:
            return Proposal(sample_configs(context, initial, quasi=True)[len(done)],
                            context.full_steps, "bayes")
        if any(t.state is TrialState.RUNNING for t in done):
            return WAIT  # for the running trials: the surrogate needs their results
        return Proposal(self._next_config(context, done), context.full_steps, "bayes")

    def _next_config(self, context: Context, done: list[TrialRecord]) -> dict:
        space = context.space
        combos = space.choices()
        features = lambda cfg: _features(space, combos, cfg)  # noqa: E731
        x = np.array([features(t.params) for t in done])
        y = _censored_values(done)
        units = unit_samples(CANDIDATES, 3, context.seed + len(done), quasi=True)
        configs = [space.config(space.lr_range.value(u[0]), unit_weight_decay=u[1],
                                **combos[min(int(u[2] * len(combos)), len(combos) - 1)])
                   for u in units]
        allowed = np.array([_below_cliff(cfg, done) for cfg in configs])
        candidates = np.array([features(c) for c in configs])
        mean, std = _gp_posterior(x, y, candidates)
        ei = _expected_improvement(mean, std, y.min())
        ei[~allowed] = -np.inf
        return configs[int(np.argmax(ei))]


def _features(space, combos: list[dict], params: dict) -> list[float]:
    lr = space.lr_range
    row = [lr.unit(params["lr"]) if space.searches_lr else 0.5]
    wd = space.weight_decay
    row.append(wd.unit(params["weight_decay"]) if hasattr(wd, "unit") else 0.5)
    choice = {k: params[k] for k in combos[0]}
    row += [1.0 if choice == c else 0.0 for c in combos] if len(combos) > 1 else []
    return row


def _censored_values(trials: list[TrialRecord]) -> np.ndarray:
    scores = np.array([t.score for t in trials], dtype=float)
    finite = scores[np.isfinite(scores)]
    if finite.size == 0:
        return np.where(np.isfinite(scores), scores, 1.0)
    # "at least as bad as the worst finite run, by a clear margin": the margin matters when only
    # one finite value exists, or the surrogate would see the cliff as flat ground
    margin = max(float(finite.max() - finite.min()), 0.5 * abs(float(finite.max())), 1e-3)
    return np.where(np.isfinite(scores), scores, finite.max() + margin)


def _below_cliff(config: dict, done: list[TrialRecord]) -> bool:
    same = lambda t: all(t.params.get(k) == v for k, v in config.items() if k != "lr")  # noqa: E731
    cliffs = [t.lr for t in done if t.diverged and same(t)]
    return not cliffs or config["lr"] < min(cliffs)


def _kernel(a: np.ndarray, b: np.ndarray, length: float) -> np.ndarray:
    """Matérn 5/2: smooth enough for loss-vs-log-LR curves, less overconfident than RBF."""
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)) / length
    return (1 + math.sqrt(5) * d + 5 / 3 * d**2) * np.exp(-math.sqrt(5) * d)


def _gp_posterior(x: np.ndarray, y: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and std at ``xs``; hyper-parameters by maximum marginal likelihood."""
    # prior mean at the best value seen: unexplored LRs look as good as the best so far, so with
    # few runs the search explores the range instead of creeping around its first finite point
    mu, sigma = y.min(), y.std() or 1.0
    z = (y - mu) / sigma
    best = None
    for length in LENGTH_SCALES:
        for noise in NOISES:
            k = _kernel(x, x, length) + noise * np.eye(len(x))
            chol = np.linalg.cholesky(k)
            alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, z))
            nll = 0.5 * z @ alpha + np.log(np.diag(chol)).sum()
            if best is None or nll < best[0]:
                best = (nll, length, chol, alpha)
    assert best is not None  # the grid is not empty
    _, length, chol, alpha = best
    ks = _kernel(xs, x, length)
    mean = ks @ alpha
    v = np.linalg.solve(chol, ks.T)
    var = np.clip(1.0 - (v**2).sum(0), 1e-12, None)
    return mu + sigma * mean, sigma * np.sqrt(var)


def _expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    from scipy.special import ndtr  # here, not at the top: every lrtune process would pay 0.5 s

    gain = best - mean
    z = gain / std
    return gain * ndtr(z) + std * np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
