"""The report's figures, drawn from :class:`~lrtune.report.ReportData` with matplotlib.

Bare ``matplotlib.figure.Figure`` objects (no pyplot: no global backend, no window), one
function per figure, each drawing on a given ``ax`` or a new figure. The LR is always on a log
axis and always coloured with the same map, so a colour means the same LR in every figure.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lrtune._validation import check_choice
from lrtune.report._data import ReportData

DIVERGED = "#d1495b"
STOPPED = "#8d99ae"
BEST = "#f4a259"
INK = "#2b2d42"
LR_CMAP = "viridis"
SIZE = (7.0, 4.2)
WIDE = (12.0, 4.4)  # a figure that spans the page: the basin, and an odd one out at the end
# From this many trials the figures with one line or marker per trial draw them as one picture
# inside the SVG, not a path each (a study of 4000 trials made a 13 MB report): a picture costs
# 150-350 kB whatever it shows, about what 400 trials' paths cost.
RASTER_FROM = 500
PER_TRIAL = ("curves", "schedules", "progress")
STYLE = {
    "font.size": 9.5,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelcolor": INK,
    "axes.edgecolor": "#c9ccd6",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e9ebf0",
    "grid.linewidth": 0.8,
    "xtick.color": "#5c6070",
    "ytick.color": "#5c6070",
    "legend.frameon": False,
    "legend.fontsize": 8,
    "svg.fonttype": "path",  # text as outlines: the SVG looks the same without our fonts
}


@contextmanager
def style() -> Iterator[None]:
    """The report's look, for drawing and saving, without touching the caller's rcParams."""
    import matplotlib as mpl

    with mpl.rc_context(STYLE):  # type: ignore[arg-type]  # matplotlib types keys as a Literal
        yield


def figures(data: ReportData) -> dict[str, Any]:
    """Every figure the data supports, by name, in the order the report shows them.

    The basin comes first and wide; the others pair up, and an odd one out at the end is wide
    too (see :func:`is_wide`).
    """
    out = {"basin": plot_basin(data.basin)}
    if data.curves:
        out["curves"] = plot_curves(data.curves)
    if data.schedules:
        out["schedules"] = plot_schedules(data.schedules)
    if data.range_test is not None:
        out["range_test"] = plot_range_test(data.range_test)
    out["progress"] = plot_progress(data.progress)
    for name, fig in out.items():
        if is_wide(name, list(out)):
            fig.set_size_inches(*WIDE)
        if name in PER_TRIAL and len(data.rows) >= RASTER_FROM:
            for artist in (*fig.axes[0].lines, *fig.axes[0].collections):
                artist.set_rasterized(True)
    return out


def is_wide(name: str, names: list[str]) -> bool:
    """Whether figure ``name`` spans the page: the basin, or the last one left without a pair."""
    return name == names[0] or (name == names[-1] and len(names) % 2 == 0)


def _axes(ax: Any) -> tuple[Any, Any]:
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=SIZE, layout="constrained")
    return fig, fig.subplots()


def _lr_norm(lrs: list[float]) -> Any:
    from matplotlib.colors import LogNorm

    low, high = min(lrs), max(lrs)
    return LogNorm(low / 1.5, high * 1.5) if low == high else LogNorm(low, high)


def _lr_colorbar(fig: Any, ax: Any, norm: Any) -> None:
    from matplotlib.cm import ScalarMappable

    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=LR_CMAP), ax=ax, pad=0.01, aspect=30)
    bar.set_label("learning rate")
    bar.outline.set_visible(False)


def _at_top(ax: Any) -> Any:
    """A transform placing x in data and y in axes coordinates (for markers along the top)."""
    return ax.get_xaxis_transform()


def _literal(text: str) -> str:
    """User text (a parameter's name or value) for a label: shown as written, not parsed as
    mathtext between two ``$``, where a stray backslash command fails the whole figure."""
    return text.replace("$", r"\$")


def _log_if_spread(ax: Any, values: list[float], axis: str = "y") -> None:
    """A log scale when the values are positive and span more than a decade."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if finite and min(finite) > 0 and max(finite) / min(finite) > 10:
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")


def plot_basin(basin: dict[str, Any], ax: Any = None) -> Any:
    """Final loss against LR, one line per run length; diverged LRs marked along the top."""
    with style():
        from matplotlib import colormaps

        fig, ax = _axes(ax)
        rungs = basin["rungs"]
        shades = colormaps["Blues"]
        lengths = sorted({r["steps"] for r in rungs})
        settings = sorted({r["setting"] for r in rungs})
        for rung in rungs:  # darker: longer; dashed, dotted: other settings
            pts = rung["points"]
            shade = shades(0.45 + 0.5 * (lengths.index(rung["steps"]) + 1) / len(lengths))
            dash = ("-", "--", ":", "-.")[settings.index(rung["setting"]) % 4]
            ax.plot([p["lr"] for p in pts], [p["value"] for p in pts], "o", ls=dash,
                    color=shade, lw=1.6, ms=5, mec="white", mew=0.8,
                    label=_literal(rung["label"]))
        lrs = [p["lr"] for r in rungs for p in r["points"]]
        lrs += [d["lr"] for d in basin["diverged"]] + [s["lr"] for s in basin["stopped"]]
        if basin["diverged"]:
            cliff = min(d["lr"] for d in basin["diverged"])
            ax.axvspan(cliff, max(lrs) * 2, color=DIVERGED, alpha=0.06, lw=0)
            ax.scatter([d["lr"] for d in basin["diverged"]], [0.96] * len(basin["diverged"]),
                       marker="x", s=42, color=DIVERGED, lw=2, transform=_at_top(ax),
                       label=f"diverged ({len(basin['diverged'])}), at the LR tried", zorder=3)
        if basin["stopped"]:
            ax.scatter([s["lr"] for s in basin["stopped"]], [0.96] * len(basin["stopped"]),
                       marker="v", s=30, color=STOPPED, transform=_at_top(ax),
                       label="stopped early (pruned, failed, lost)", zorder=3)
        estimate = basin.get("estimate")
        if estimate is not None and estimate["low"] is not None:
            ax.axvspan(estimate["low"], estimate["high"], color=BEST, alpha=0.15, lw=0,
                       label=f"full-length best lr, 68% interval ({estimate['low']:.3g}-"
                             f"{estimate['high']:.3g})")
        best = basin["best"]
        if best is not None:
            ax.axvline(best["lr"], color=INK, lw=1, ls="--", alpha=0.6)
            ax.plot([best["lr"]], [best["value"]], "*", ms=17, color=BEST, mec=INK, mew=0.8,
                    label=f"recommended lr {best['lr']:.3g}", zorder=4)
        _log_if_spread(ax, [p["value"] for r in rungs for p in r["points"]])
        ax.set_xscale("log")
        if lrs:
            ax.set_xlim(min(lrs) / 1.6, max(lrs) * 1.6)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("final loss (objective)")
        ax.set_title("Loss against learning rate: the basin and the cliff")
        if rungs or basin["diverged"] or basin["stopped"]:
            ax.legend(loc="best")
        return fig


X_AXES = ("fraction", "step")
# The default x axis of the loss-curve and schedule panels: the fraction of each trial's own
# run. A search mixes lengths (auto's scan runs are T/16), and each trial's schedule is
# compressed to its length, so at the same fraction every trial is at the same point of its
# schedule; against the step, every short trial is squeezed into the first few percent.
DEFAULT_X = "fraction"
X_LABELS = {"fraction": "fraction of the trial's run", "step": "step"}


def _x(steps: list[int] | tuple[int, ...], total: int, x: str) -> list[float]:
    """Step numbers on the ``x`` axis: as they are, or as a fraction of a ``total``-step run."""
    return [s / total for s in steps] if x == "fraction" else list(steps)


def plot_curves(curves: list[dict[str, Any]], ax: Any = None, x: str = DEFAULT_X) -> Any:
    """Every trial's training loss against its fraction of the run (or ``x="step"``),
    coloured by its LR."""
    check_choice(x, "x", "plot_curves()", X_AXES)
    with style():
        from matplotlib import colormaps

        fig, ax = _axes(ax)
        norm = _lr_norm([c["lr"] for c in curves])
        cmap = colormaps[LR_CMAP]
        finite: list[float] = []
        for c in sorted(curves, key=lambda c: -c["steps"]):  # long runs below short ones
            pts = [(s, v) for s, v in c["points"] if v is not None]
            if not pts:
                continue
            steps, ys = zip(*pts, strict=True)
            xs = _x(steps, c["steps"], x)
            finite += ys
            ax.plot(xs, ys, color=cmap(norm(c["lr"])), lw=1.1, alpha=0.85)
            if c["state"] == "diverged":
                ax.plot(xs[-1], ys[-1], "x", color=DIVERGED, ms=7, mew=2)
        if finite:
            _log_if_spread(ax, finite)
            high = sorted(finite)[int(0.97 * (len(finite) - 1))]  # explosions off the top
            low = min(finite)
            if high > low:  # a flat curve (one constant loss) keeps matplotlib's own margins
                ax.set_ylim(low * 0.9 if ax.get_yscale() == "log" else low - 0.05 * (high - low),
                            high * 1.4 if ax.get_yscale() == "log" else high + 0.1 * (high - low))
        if any(c["state"] == "diverged" for c in curves):
            ax.plot([], [], "x", color=DIVERGED, ms=7, mew=2, label="diverged here")
            ax.legend(loc="upper right")
        ax.set_xlabel(X_LABELS[x])
        ax.set_ylabel("training loss")
        ax.set_title("Loss curves of every trial")
        _lr_colorbar(fig, ax, norm)
        return fig


def plot_schedules(schedules: list[dict[str, Any]], ax: Any = None, x: str = DEFAULT_X) -> Any:
    """The LR each trial applied (solid) and the rest of its plan it never trained (dotted),
    against the fraction of its run (or ``x="step"``)."""
    check_choice(x, "x", "plot_schedules()", X_AXES)
    with style():
        from matplotlib import colormaps

        fig, ax = _axes(ax)
        norm = _lr_norm([s["lr"] for s in schedules])
        cmap = colormaps[LR_CMAP]
        for s in sorted(schedules, key=lambda s: -s["steps"]):
            color = cmap(norm(s["lr"]))
            at = _x(s["step"], s["steps"], x)
            done = [(a, y) for a, step, y in zip(at, s["step"], s["value"], strict=True)
                    if step < s["steps_done"] and y > 0]
            rest = [(a, y) for a, step, y in zip(at, s["step"], s["value"], strict=True)
                    if step >= s["steps_done"] - 1 and y > 0]
            if done:
                ax.plot(*zip(*done, strict=True), color=color, lw=1.4)
            if len(rest) > 1:
                ax.plot(*zip(*rest, strict=True), color=color, lw=1, ls=":", alpha=0.6)
        ax.plot([], [], color=INK, lw=1.4, label="applied")
        ax.plot([], [], color=INK, lw=1, ls=":", label="planned, not trained (stopped)")
        ax.legend(loc="lower left")
        ax.set_yscale("log")
        ax.set_ylim(bottom=min(s["lr"] for s in schedules) / 300)  # two decades of decay, not 0
        ax.set_xlabel(X_LABELS[x])
        ax.set_ylabel("learning rate")
        ax.set_title("The schedule each trial applied")
        _lr_colorbar(fig, ax, norm)
        return fig


def plot_range_test(range_test: dict[str, Any], ax: Any = None) -> Any:
    """The range test's curve with its suggestion band (the finder's own figure, in our style)."""
    from lrtune.finder import plot_result

    with style():
        fig, ax = _axes(ax)
        plot_result(range_test, ax=ax)
        ax.set_title(f"LR range test: suggestion {range_test['suggestion']:.3g} "
                     f"({range_test['verdict']})")
        return fig


def plot_progress(progress: dict[str, Any], ax: Any = None) -> Any:
    """The LR each trial tried against the compute spent, and the best value so far."""
    with style():
        fig, ax = _axes(ax)
        points = progress["points"]
        longest = max((p["steps"] for p in points), default=1)
        kinds = (("completed", "o", "#3a86ff", "completed"),
                 ("diverged", "x", DIVERGED, "diverged"),
                 ("stopped", "v", STOPPED, "stopped early"))
        for state, marker, color, label in kinds:
            chosen = [p for p in points if (p["state"] == state if state != "stopped"
                                            else p["state"] not in ("completed", "diverged"))]
            if chosen:
                ax.scatter([p["spent"] for p in chosen], [p["lr"] for p in chosen],
                           marker=marker, color=color, label=label, zorder=3,
                           s=[18 + 60 * min(1.0, p["steps"] / longest) for p in chosen])
        if progress["best_lr"] is not None:
            ax.axhline(progress["best_lr"], color=BEST, lw=2, alpha=0.8,
                       label=f"recommended lr {progress['best_lr']:.3g}")
        if math.isfinite(progress["budget"]):
            ax.axvline(progress["budget"], color=INK, lw=1, ls="--", alpha=0.5)
            ax.text(progress["budget"], 1.0, " budget", transform=ax.get_xaxis_transform(),
                    va="top", ha="left", color=INK, alpha=0.7, fontsize=8)
        ax.set_yscale("log")
        ax.set_xlim(left=0)
        ax.set_xlabel("compute spent (full training runs)")
        ax.set_ylabel("learning rate tried  (marker size: run length)")
        ax.set_title("The search against compute spent")
        if progress["best_so_far"]:
            twin = ax.twinx()
            xs, ys = zip(*progress["best_so_far"], strict=True)
            spent = max(p["spent"] for p in points)
            twin.step([*xs, spent], [*ys, ys[-1]], where="post", color=INK, lw=1.2, alpha=0.55,
                      label="best loss so far (right axis)")
            twin.set_ylabel("best loss so far", color="#5c6070")
            twin.grid(False)
            twin.spines["right"].set_visible(True)
            _log_if_spread(twin, list(ys))
            handles = ax.get_legend_handles_labels()
            extra = twin.get_legend_handles_labels()
            ax.legend(handles[0] + extra[0], handles[1] + extra[1], loc="upper right")
        elif points:
            ax.legend(loc="upper right")
        return fig
