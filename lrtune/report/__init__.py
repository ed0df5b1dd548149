"""Reports on a study: plot data, figures, and one self-contained HTML file.

>>> study = lrtune.load_study("mymodel", "sqlite:///lrtune.db")
>>> lrtune.report.write_report(study, "report.html")          # figures, table, recommendation
>>> lrtune.report.write_report(study, "figures", format="png")  # the figures alone
>>> lrtune.report.report_data(study).basin                      # the numbers behind a figure

Reports read the study only. Plot data (:func:`report_data`) is computed apart from drawing
(:mod:`lrtune.report._figures`), so it is testable without a display.
"""

from __future__ import annotations

from pathlib import Path

from lrtune._validation import check_choice
from lrtune.report._data import ReportData, report_data
from lrtune.report._figures import figures, style
from lrtune.report._html import render_html
from lrtune.study import Study

FORMATS = ("html", "png", "svg")


def write_report(study: Study, path: str | Path, format: str = "html") -> list[Path]:
    """Write the report of ``study``: one HTML file at ``path``, or (``png``/``svg``) one image
    per figure in the directory ``path``. Returns the files written."""
    check_choice(format, "format", "write_report()", FORMATS)
    from lrtune import __version__  # here: lrtune/__init__ may import this package

    path = Path(path)
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


__all__ = ["FORMATS", "ReportData", "figures", "render_html", "report_data", "write_report"]
