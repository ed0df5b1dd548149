"""The outcome of a range test: the curve, the suggestion with its band, the verdict, plot data."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from lrtune.finder._analysis import HINTS, MARGIN, Verdict


class LRTriple(NamedTuple):
    """Three LRs to pick from: a safe margin below the suggestion, the suggestion, the edge."""

    safe: float
    default: float
    aggressive: float


class Pass(NamedTuple):
    """One sweep of the range test, as it happened: one entry per optimizer step."""

    lrs: np.ndarray
    losses: np.ndarray  # non-finite values kept
    stop_reason: str  # "completed", "diverged" or "data exhausted"


@dataclass(frozen=True)
class FinderResult:
    """What :func:`~lrtune.finder.find` measured and suggests.

    ``passes`` is the raw history: the coarse sweep first, then the fine passes. ``lrs``/
    ``losses`` are the curve that was read: the fine passes' mean loss at each LR of their
    window, a pass counting as the untrained model's loss after it blew up (the coarse sweep
    itself where no fine pass was run); ``smoothed``/``slope`` cover its ``usable`` points.
    LRs are those of the first param group; the others keep their ratio to it.
    """

    lrs: np.ndarray = field(repr=False)
    losses: np.ndarray = field(repr=False)
    passes: tuple[Pass, ...] = field(repr=False)
    smoothed: np.ndarray = field(repr=False)
    slope: np.ndarray = field(repr=False)
    usable: int
    suggestion: float
    band: tuple[float, float]
    min_lr: float  # minimum of the smoothed curve
    knee_lr: float  # where the smoothed curve made 80% of its fall: the suggestion is read here
    diverged_lr: float | None  # where the loss blew up; None if it never did
    schedule_factor: float  # how much the schedule raised the suggestion over a constant LR
    verdict: Verdict
    steps: int  # steps spent over all passes: updates, and the non-finite loss that ended a
    # pass without one (steps an AMP scaler skipped are not counted)
    stop_reason: str  # "completed" (the budget is spent) or "data exhausted"
    probe_batches: int = 0  # batches the fine passes' losses were read on (0: the trained ones)

    @property
    def hint(self) -> str:
        """What to do about the verdict, in a sentence."""
        return HINTS[self.verdict]

    @property
    def triple(self) -> LRTriple:
        """Safe / default / aggressive: the suggestion and one margin either side of it.

        The aggressive end lies at twice the knee (scaled like the suggestion for the schedule and
        momentum), toward the curve's minimum, where the short sweep was still stable; longer
        runs often are not. The safe end is as far below.
        """
        return LRTriple(self.suggestion / MARGIN, self.suggestion, self.suggestion * MARGIN)

    @property
    def safe(self) -> float:
        return self.triple.safe

    @property
    def default(self) -> float:
        return self.triple.default

    @property
    def aggressive(self) -> float:
        return self.triple.aggressive

    def plot_data(self) -> dict[str, Any]:
        """Everything a figure needs, as plain lists (no plotting library involved)."""
        n = self.usable
        return {
            "lr": self.lrs.tolist(),
            "loss": [_finite_or_none(v) for v in self.losses],
            "passes": [{"lr": p.lrs.tolist(), "loss": [_finite_or_none(v) for v in p.losses],
                        "stop_reason": p.stop_reason} for p in self.passes],
            "smoothed_lr": self.lrs[:n].tolist(),
            "smoothed": self.smoothed.tolist(),
            "slope": self.slope.tolist(),
            "suggestion": self.suggestion,
            "band": list(self.band),
            "triple": self.triple._asdict(),
            "min_lr": self.min_lr,
            "knee_lr": self.knee_lr,
            "diverged_lr": self.diverged_lr,
            "verdict": self.verdict.value,
        }

    def to_dict(self) -> dict[str, Any]:
        """The whole history and reading, JSON-ready (non-finite losses become ``null``)."""
        return {
            **self.plot_data(),
            "hint": self.hint,
            "usable": self.usable,
            "schedule_factor": self.schedule_factor,
            "steps": self.steps,
            "stop_reason": self.stop_reason,
            "probe_batches": self.probe_batches,
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """The JSON history; also written to ``path`` when one is given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text)
        return text

    def plot(self, path: str | Path | None = None, ax: Any = None) -> Any:
        """Draw loss against LR (see :func:`lrtune.finder.plot_result`); returns the figure."""
        from lrtune.finder._plot import plot_result

        return plot_result(self.plot_data(), path=path, ax=ax)

    def __str__(self) -> str:
        low, high = self.band
        return (f"suggested lr {self.suggestion:.3g} (band {low:.3g}-{high:.3g}; "
                f"verdict: {self.verdict.value})")


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
