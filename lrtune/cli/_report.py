"""``lrtune report`` (an HTML file, or the figures) and ``lrtune show`` (a terminal summary)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape  # user text printed literally: a study named '[red]x' is not markup
from rich.table import Table

from lrtune.cli._app import app, console
from lrtune.progress import VERDICT_STYLE
from lrtune.report import FORMATS, report_data, write_report
from lrtune.report._data import config_text, length_label, wall_label
from lrtune.study import load_study

STORAGE_HELP = "Storage URL of the study, e.g. sqlite:///lrtune.db."


@app.command()
def report(
    study: Annotated[str, typer.Argument(help="Name of the study.")],
    storage: Annotated[str, typer.Option(help=STORAGE_HELP)],
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="The HTML file to write (html), or the folder for the figures "
                               "(png, svg). Default: STUDY.html or STUDY-figures/.")] = None,
    format: Annotated[str, typer.Option(
        "--format", "-f", help=f"Output: {', '.join(FORMATS)}.")] = "html",
) -> None:
    """Write a self-contained HTML report of STUDY (figures, trial table, recommendation)."""
    opened = load_study(study, storage)
    if output is None:
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in study) or "study"
        output = Path(f"{stem}.html" if format == "html" else f"{stem}-figures")
    written = write_report(opened, output, format=format)
    for path in written:
        console.print(str(path))


@app.command()
def show(
    study: Annotated[str, typer.Argument(help="Name of the study.")],
    storage: Annotated[str, typer.Option(help=STORAGE_HELP)],
) -> None:
    """Summarise STUDY in the terminal: the recommendation and every trial."""
    data = report_data(load_study(study, storage))
    info = data.study
    console.print(f"[bold]{escape(info['name'])}[/]: strategy {escape(info['strategy'])}, "
                  f"{info['steps']} steps per full run, {info['trials']} trials, compute "
                  f"{info['spent']:.2f} of {info['budget']:g} runs")
    console.print("searched: " + ", ".join(f"{escape(k.replace('_', ' '))} {escape(v)}"
                                           for k, v in info["space"].items()))
    with_settings = any(r["settings"] for r in data.rows)
    table = Table(box=None, header_style="bold dim", pad_edge=False)
    for name, justify in (("#", "right"), ("phase", "left"), ("lr", "right"),
                          *([("settings", "left")] if with_settings else []),
                          ("steps", "right"), ("time", "right"), ("loss", "right"),
                          ("verdict", "left"),
                          ("what was seen", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    for r in data.rows:
        style = VERDICT_STYLE.get(r["verdict"], "dim")
        settings = ", ".join(f"{k} {v}" for k, v in r["settings"].items())
        table.add_row(
            ("* " if r["best"] else "") + str(r["number"]), escape(r["tag"]),
            f"{r['lr']:.3g}", *([escape(settings)] if with_settings else []),
            f"{r['steps_done']}/{r['steps']} {length_label(r['steps'], info['steps'])}",
            wall_label(r["wall_time"]),
            f"{r['value']:.4g}" if r["value"] is not None else "-",
            f"[{style}]{escape(r['verdict'])}[/]", escape(r["error"] or r["evidence"]),
        )
    console.print(table)
    if data.config is not None:
        console.print(f"\nrecommended configuration: {escape(config_text(data.config))}")
    console.print(f"\n[bold]{escape(data.recommendation)}[/]")
