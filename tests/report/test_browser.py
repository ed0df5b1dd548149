"""The report as a person sees it: rendered by headless Chromium (Debian's package).

The test installs Chromium through ``scripts/chromium.sh`` when it is missing, and skips only
when that cannot be done (no root, no apt-get, no package registry).
"""

import subprocess
from pathlib import Path

import pytest
from browser import Browser, chromium_path

from lrtune.report import write_report

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ["basin", "curves", "schedules", "range_test", "progress"]
PAGE_FACTS = """(() => {
  const figures = [...document.querySelectorAll('figure.figure')].map(f => {
    const img = f.querySelector('img'), box = img.getBoundingClientRect();
    return {id: f.id, decoded: img.complete && img.naturalWidth > 0, height: box.height};
  });
  return {figures, scripts: document.scripts.length,
          recommendation: document.querySelector('#recommendation p').textContent,
          rows: document.querySelectorAll('#trials tbody tr').length};
})()"""


@pytest.fixture(scope="module")
def chromium():
    path = chromium_path()
    if path is None:
        proc = subprocess.run(["bash", str(ROOT / "scripts" / "chromium.sh")],
                              capture_output=True, text=True, timeout=1200)
        if proc.returncode != 0:
            pytest.skip("Chromium is not installed and scripts/chromium.sh could not install it: "
                        + (proc.stderr.strip().splitlines() or ["no output"])[-1])
        path = proc.stdout.strip().splitlines()[-1]
    return path


def test_the_report_loads_without_errors_with_every_figure(chromium, digits_study, tmp_path):
    study, _ = digits_study
    (page,) = write_report(study, tmp_path / "report.html")
    with Browser(chromium) as browser:
        browser.open(page)
        facts = browser.evaluate(PAGE_FACTS)
        errors = browser.console_errors()
        shot = browser.screenshot(tmp_path / "report.png")
    assert errors == []
    assert [f["id"] for f in facts["figures"]] == [f"fig-{name}" for name in FIGURES]
    assert all(f["decoded"] and f["height"] > 200 for f in facts["figures"]), facts["figures"]
    assert facts["scripts"] == 0
    assert facts["recommendation"].startswith(f"Train with lr = {study.best.lr:.3g}")
    assert facts["rows"] == len(study.trials)
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG") and int.from_bytes(png[20:24], "big") > 1500  # full page


def test_a_hostile_study_renders_inert(chromium, hostile_study, tmp_path):
    page = tmp_path / "evil.html"
    write_report(hostile_study, page)
    with Browser(chromium) as browser:
        browser.open(page)
        title = browser.evaluate("document.title")
        scripts = browser.evaluate("document.scripts.length")
        dialogs = [e for e in browser.events if e.get("method") == "Page.javascriptDialogOpening"]
        errors = browser.console_errors()
    assert hostile_study.name in title and scripts == 0 and dialogs == [] and errors == []
