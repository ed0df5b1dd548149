"""The docs: every ```python example runs (page by page, or section by section, in order, in a
fresh folder), every link resolves, and every command and option the CLI page uses exists."""

import re
import warnings
from pathlib import Path

import pytest
import typer
from pages import fenced, sections

from lrtune.cli import app

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = sorted(DOCS.glob("*.md"))
OPTIONAL = ("lightning", "transformers")  # the integrations' frameworks


def blocks(page: Path, language: str) -> list[str]:
    return fenced(page.read_text(), language)


# Pages whose ``## `` sections run alone, each in a test of its own (one framework each: a test
# of the whole page ran for a minute); test_self_contained.py checks that they can. The Ray
# section starts a Ray cluster in this process: it runs with the Ray tests, in a process of its
# own (`make test-ray`), with their environment (conftest.py's RAY_TEST_ENV).
BY_SECTION = {"integrations.md"}
RAY_SECTION = "integrations.md: Ray Tune"


def _examples() -> list:
    """(page, its examples in order) per page, or per section of a BY_SECTION page."""
    units = []
    for page in PAGES:
        text = page.read_text()
        if page.name in BY_SECTION:
            parts = {f"{page.name}: {title}": part for title, part in sections(text).items()}
        else:
            parts = {page.name: text}
        units += [pytest.param(page, fenced(part, "python"), id=name,
                               marks=pytest.mark.ray if name == RAY_SECTION else ())
                  for name, part in parts.items() if fenced(part, "python")]
    return units


@pytest.mark.parametrize("page, examples", _examples())
def test_the_examples_run(page, examples, tmp_path, monkeypatch, request):
    monkeypatch.chdir(tmp_path)
    if request.node.get_closest_marker("ray"):
        request.getfixturevalue("ray_env")
    namespace: dict = {"__name__": f"docs.{page.stem}"}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        for i, code in enumerate(examples):
            try:
                exec(compile(code, f"{page.name}, example {i + 1}", "exec"), namespace)
            except ModuleNotFoundError as err:
                if err.name and err.name.split(".")[0] in OPTIONAL:
                    pytest.skip(f"{page.name} needs {err.name}: pip install {err.name}")
                raise


def test_the_pages_are_there_and_their_links_resolve():
    names = {p.name for p in PAGES}
    assert {"README.md", "quickstart.md", "api.md", "cli.md", "report.md", "integrations.md",
            "auto.md"} <= names
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)", page.read_text()):
            if "://" not in target:
                assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_every_command_and_option_on_the_cli_page_exists():
    commands = typer.main.get_command(app).commands
    used = [line for block in blocks(DOCS / "cli.md", "bash")
            for line in block.replace("\\\n", " ").splitlines() if line.startswith("lrtune ")]
    assert len(used) >= 10
    for line in used:
        words = line.split("#")[0].split()
        command = commands[words[1]]
        options = {opt for param in command.params for opt in param.opts}
        for word in words[2:]:
            if word.startswith("-"):
                assert word.split("=")[0] in options, f"{line!r}: no option {word}"
