"""A strategy package installed as pip would install it: its module and its dist-info, with the
``lrtune.strategies`` entry point, on ``sys.path``; found by name without being imported first."""

from pathlib import Path


def install_strategy(folder: Path, monkeypatch, module: str, cls: str, name: str,
                     entry: str) -> None:
    """Module ``module`` defines ``cls`` (a strategy named ``name`` that finishes at once),
    declared as the entry point ``entry``."""
    (folder / f"{module}.py").write_text(
        "from lrtune.strategies import FINISHED, Strategy\n\n"
        f"class {cls}(Strategy):\n    name = {name!r}\n\n"
        "    def ask(self, context):\n        return FINISHED\n")
    info = folder / f"{module}-1.0.dist-info"
    info.mkdir()
    package = module.replace("_", "-")
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[lrtune.strategies]\n{entry} = {module}:{cls}\n")
    monkeypatch.syspath_prepend(str(folder))
