"""Where benchmarks put their results: raw data under ``out/``, their section of RESULTS.md."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
OUT = Path(__file__).resolve().parent / "out"  # raw results and caches (not committed)


def publish(title: str, text: str, raw_name: str, raw: Any, *, write: bool = True) -> None:
    """Save ``raw`` as ``out/<raw_name>``, print the markdown ``text``, and (with ``write``)
    make it the section headed ``title`` of RESULTS.md.

    The section is stamped under its heading with the commit, torch version, thread count and
    CPU that produced it, so a reader knows whether two sections are comparable.
    """
    from benchmarks.stamp import stamp

    heading, _, body = text.partition("\n")
    text = f"{heading}\n\n{stamp()}\n{body}"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / raw_name).write_text(json.dumps(raw, indent=1))
    print(text)
    if write:
        write_section(title, text)


def publish_suite(module: str, suite: str, title: str, rows: dict[str, Any],
                  markdown: Callable[[str, str, dict[str, Any], str], str], *,
                  write: bool) -> None:
    """:func:`publish` for a benchmark of one set of the suite (``python -m benchmarks.<module>
    --suite <suite>``): ``markdown(title, suite, rows, command)`` is the section, named with the
    command that writes it; ``rows`` (one per recipe) is saved as ``<module>_<suite>.json``."""
    command = f"nice -n 10 .venv/bin/python -m benchmarks.{module} --suite {suite} --publish"
    publish(title, markdown(title, suite, rows, command), f"{module}_{suite}.json", rows,
            write=write)


def write_section(title: str, text: str, path: Path = RESULTS) -> None:
    """Replace the section headed ``title`` (e.g. ``## LR range test``) with ``text``, or append
    it."""
    current = path.read_text() if path.exists() else "# lrtune benchmark results\n"
    pattern = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        updated = pattern.sub(lambda _: text + "\n", current)
    else:
        updated = current.rstrip("\n") + "\n\n" + text
    path.write_text(updated)
