"""The range-test figure, drawn from :meth:`FinderResult.plot_data`.

The figure is a bare ``matplotlib.figure.Figure`` (rendered by Agg when saved): no pyplot, so
no global backend switch and no window, in scripts, servers and notebooks alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_result(data: dict[str, Any], path: str | Path | None = None, ax: Any = None) -> Any:
    """Loss against LR: every pass's raw points, their mean, the smoothed curve, the suggestion
    band, the knee it was read at, the divergence LR.

    Draws on ``ax`` when given, otherwise on a new figure; saves it to ``path`` when given.
    Returns the figure.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as err:  # a dependency, but keep the hint for slim installs
        raise ImportError("Plotting needs matplotlib: pip install matplotlib") from err
    if ax is None:
        fig = Figure(figsize=(7, 4.5))
        ax = fig.subplots()
    else:
        fig = ax.figure
    for i, sweep in enumerate(data.get("passes", ())):  # absent where an older version stored it
        points = [(lr, loss) for lr, loss in zip(sweep["lr"], sweep["loss"], strict=True)
                  if loss is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, ".", color="0.75", markersize=2,
                    label=("coarse sweep and passes (raw)" if i == 0 else None))
    ax.plot(data["lr"], data["loss"], ".", color="0.3", markersize=4, label="mean of the passes")
    ax.plot(data["smoothed_lr"], data["smoothed"], color="C0", lw=2, label="smoothed")
    low, high = data["band"]
    ax.axvspan(low, high, color="C2", alpha=0.2, label="suggestion band")
    ax.axvline(data["suggestion"], color="C2", lw=2, label=f"suggestion {data['suggestion']:.2g}")
    if data.get("knee_lr") is not None:  # absent where an older version stored it
        ax.axvline(data["knee_lr"], color="C1", lw=1, ls=":",
                   label=f"knee (80% of the fall) {data['knee_lr']:.2g}")
    if data["diverged_lr"] is not None:
        ax.axvline(data["diverged_lr"], color="C3", ls="--",
                   label=f"diverged {data['diverged_lr']:.2g}")
    if data["smoothed"]:
        top, bottom = max(data["smoothed"]), min(data["smoothed"])
        pad = 0.15 * (top - bottom) or 0.1 * abs(top) or 1.0
        ax.set_ylim(bottom - pad, top + 2 * pad)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(f"LR range test - {data['verdict']}")
    ax.legend(fontsize=8)
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig
