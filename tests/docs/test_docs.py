"""The docs: every ```python example runs (page by page, in order, in a fresh folder), every
link resolves, and every command and option the CLI page uses exists."""

import re
import warnings
from pathlib import Path

import pytest
import typer

from lrtune.cli import app

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = sorted(DOCS.glob("*.md"))
OPTIONAL = ("lightning", "transformers")  # the integrations' frameworks


def blocks(page: Path, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", page.read_text(), flags=re.M | re.S)


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "python")], ids=lambda p: p.name)
def test_the_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs.{page.stem}"}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        for i, code in enumerate(blocks(page, "python")):
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
