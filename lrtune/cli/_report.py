"""``lrtune report`` (an HTML file, or the figures) and ``lrtune show`` (a terminal summary)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from lrtune.cli._app import app, console
from lrtune.cli._strategy_option import StrategyOption, register_strategy
from lrtune.exceptions import InvalidParameterError, LrtuneError
from lrtune.progress import VERDICT_STYLE, shown
from lrtune.report import FORMATS, report_data, write_report
from lrtune.report._data import (
    budget_label, config_text, estimate_sentences, length_label, wall_label,
)
from lrtune.study import load_study

STORAGE_HELP = "Storage URL of the study, e.g. sqlite:///lrtune.db."
# a file name from a study name stays well below the file systems' 255 bytes: counted in
# UTF-8 bytes, as they count, not characters (a CJK character takes 3)
STEM_BYTES = 100


def _stem(study: str) -> str:
    """The file name (without its suffix) for the report of ``study``."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in study)
    return safe.encode()[:STEM_BYTES].decode(errors="ignore") or "study"


@app.command()
def report(
    study: Annotated[str, typer.Argument(metavar="STUDY", help="Name of the study.")],
    storage: Annotated[str, typer.Option(help=STORAGE_HELP)],
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="The HTML file to write (html), or the folder for the figures "
                               "(png, svg). Default: STUDY.html or STUDY-figures/.")] = None,
    format: Annotated[str, typer.Option(
        "--format", "-f", help=f"Output: {', '.join(FORMATS)}.")] = "html",
    strategy: StrategyOption = None,
) -> None:
    """Write a self-contained HTML report of STUDY (figures, trial table, recommendation)."""
    register_strategy(strategy)
    if format == "html" and output is not None and output.suffix[1:].lower() in FORMATS[1:]:
        # an HTML file named out.png opens nowhere: the figures are their own format
        raise InvalidParameterError(
            f"-o {str(output)!r} names a {output.suffix} file, but --format html writes an HTML "
            f"file: give -o a .html name, or --format {output.suffix[1:].lower()} and -o a "
            "folder for the figures.")
    opened = load_study(study, storage, read_only=True)
    stem = _stem(study)
    if output is None:
        output = Path(f"{stem}.html" if format == "html" else f"{stem}-figures")
    try:
        if format == "html" and output.is_dir():  # -o reports/: the file goes in that folder
            output = output / f"{stem}.html"
        written = write_report(opened, output, format=format)
    except OSError as err:  # the disk refused (full, a name too long): one line too
        raise LrtuneError(f"Cannot write {output}: {err.strerror or err}.") from err
    for path in written:
        console.print(str(path))


@app.command()
def show(
    study: Annotated[str, typer.Argument(metavar="STUDY", help="Name of the study.")],
    storage: Annotated[str, typer.Option(help=STORAGE_HELP)],
    strategy: StrategyOption = None,
) -> None:
    """Summarise STUDY in the terminal: the recommendation and every trial."""
    register_strategy(strategy)
    data = report_data(load_study(study, storage, read_only=True))

    info = data.study
    console.print(f"[bold]{shown(info['name'])}[/]: strategy {shown(info['strategy'])}, "
                  f"{info['steps']} steps per full run, {info['trials']} trials, compute "
                  f"{info['spent']:.2f} of {budget_label(info['budget'])} runs")
    console.print("searched: " + ", ".join(f"{shown(k.replace('_', ' '))} {shown(v)}"
                                           for k, v in info["space"].items()))
    with_settings = any(r["settings"] for r in data.rows)
    table = Table(box=None, header_style="bold dim", pad_edge=False)
    for name, justify in (("#", "right"), ("phase", "left"), ("lr", "right"),
                          *([("settings", "left")] if with_settings else []),
                          ("steps", "right"), ("time", "right"), ("loss", "right"),
                          ("verdict", "left"),
                          ("what was seen", "left")):
        # rich types justify as a Literal; these are its names
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for r in data.rows:
        # a trial that failed or was lost says so, not how its curve looked before it did
        verdict = r["state"] if r["state"] in ("failed", "lost") else r["verdict"]
        style = VERDICT_STYLE.get(verdict, "dim")
        settings = ", ".join(f"{k} {v}" for k, v in r["settings"].items())
        table.add_row(
            ("* " if r["best"] else "") + str(r["number"]), shown(r["tag"]),
            f"{r['lr']:.3g}", *([shown(settings)] if with_settings else []),
            f"{r['steps_done']}/{r['steps']} {length_label(r['steps'], info['steps'])}",
            wall_label(r["wall_time"]),
            f"{r['value']:.4g}" if r["value"] is not None else "-",
            f"[{style}]{shown(verdict)}[/]",
            shown(r["error"] or "; ".join(filter(None, (r["evidence"], r["standing"])))),
        )
    console.print(table)
    if data.config is not None:
        console.print(f"\nrecommended configuration: {shown(config_text(data.config))}")
    if estimate_sentences(data.basin):
        console.print(f"\n{shown(estimate_sentences(data.basin))}")
    console.print(f"\n[bold]{shown(data.recommendation)}[/]")
