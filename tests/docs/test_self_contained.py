"""Each section of the integrations page runs on its own, its examples copied alone into a file:
they import every name they use (the page's test runs all examples in order in one namespace,
which would hide a name that only an earlier section defines)."""

import builtins
import symtable
from pathlib import Path

import pytest
from pages import fenced, sections

PAGE = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"


def _sections() -> dict[str, str]:
    """The code of each ``## `` section, its ```python examples joined in order."""
    parts = sections(PAGE.read_text())
    return {title: "".join(fenced(part, "python")) for title, part in parts.items()
            if fenced(part, "python")}


def undefined_names(code: str) -> set[str]:
    """Global names ``code`` reads that neither it nor the builtins define."""
    missing: set[str] = set()

    def visit(table: symtable.SymbolTable) -> None:
        for symbol in table.get_symbols():
            if (symbol.is_global() or table.get_type() == "module") and symbol.is_referenced():
                missing.add(symbol.get_name())
        for child in table.get_children():
            visit(child)

    top = symtable.symtable(code, "example", "exec")
    visit(top)
    defined = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()}
    return missing - defined - set(dir(builtins))


def test_the_check_sees_a_name_an_example_does_not_define():
    assert undefined_names("x = get_task('digits')\nimport torch\ny = torch.ones(1)\n") == \
        {"get_task"}


@pytest.mark.parametrize("section", _sections())
def test_each_integration_section_defines_every_name_it_uses(section):
    assert undefined_names(_sections()[section]) == set()
