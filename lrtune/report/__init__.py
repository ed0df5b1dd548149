"""Reports on a study: plot data, figures, and one self-contained HTML file.

>>> study = lrtune.load_study("mymodel", "sqlite:///lrtune.db")
>>> lrtune.report.write_report(study, "report.html")          # figures, table, recommendation
>>> lrtune.report.write_report(study, "figures", format="png")  # the figures alone
>>> lrtune.report.report_data(study).basin                      # the numbers behind a figure

Reports read the study only. Plot data (:func:`report_data`) is computed apart from drawing
(:mod:`lrtune.report._figures`), so it is testable without a display.
"""

from __future__ import annotations

import os
from pathlib import Path

from lrtune._validation import check_choice, fail
from lrtune.report._data import ReportData, report_data
from lrtune.report._figures import figures, style
from lrtune.report._html import render_html
from lrtune.study import Study

FORMATS = ("html", "png", "svg")


def write_report(study: Study, path: str | Path, format: str = "html") -> list[Path]:
    """Write the report of ``study``: one HTML file at ``path``, or (``png``/``svg``) one image
    per figure in the directory ``path`` (missing folders are created). Returns the files
    written."""
    check_choice(format, "format", "write_report()", FORMATS)
    from lrtune import __version__  # here: lrtune/__init__ may import this package

    path = Path(path)
    _check_output(path, format)
    data = report_data(study)
    if format == "html":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_html(data, __version__), encoding="utf-8")
        return [path]
    path.mkdir(parents=True, exist_ok=True)
    written = []
    with style():  # the report's look applies when saving too
        for name, fig in figures(data).items():
            written.append(path / f"{name}.{format}")
            fig.savefig(written[-1], dpi=150)
    return written


def _check_output(path: Path, format: str) -> None:
    """Refuse a ``path`` the output cannot take, before the study is read and anything is made:
    a folder where the HTML file goes, a file where the figures' folder goes, a file among the
    folders above it, a folder this process may not write in, or a name too long to hold."""
    try:
        requirement = _output_problem(path, format)
    except OSError as err:  # stat refused the path itself (ENAMETOOLONG)
        requirement = f"a path the file system takes ({err.strerror or err})"
    if requirement is not None:
        raise fail("path", "write_report()", requirement, str(path))


def _output_problem(path: Path, format: str) -> str | None:
    if format == "html" and path.is_dir():
        return "the HTML file to write, not a folder"
    if format != "html" and path.exists() and not path.is_dir():
        return f"the folder for the {format} figures, not a file"
    folder = path.parent if format == "html" else path
    existing = next(p for p in (folder, *folder.parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        return f"a path under folders only ({str(existing)!r} is a file)"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"a path this process may write ({str(existing)!r} is read-only to it)"
    return None


__all__ = ["FORMATS", "ReportData", "figures", "render_html", "report_data", "write_report"]
