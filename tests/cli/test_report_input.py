"""`lrtune show` and `lrtune report` with awkward input: a study name that carries terminal
escapes, an output folder, a name too long for a file name, a database nobody may write
(fault-sweep cases 8 and 9)."""

import contextlib
import hashlib
import os
import shutil
import sqlite3
import subprocess

import pytest
from typer.testing import CliRunner

import lrtune
from lrtune.cli import app

runner = CliRunner()


def _objective(trial):
    for step in range(trial.steps):
        trial.report(1.0, step)
    return abs(trial.lr - 0.01)


@pytest.fixture
def stored(tmp_path):
    def make(name):
        url = f"sqlite:///{tmp_path / 's.db'}"
        lrtune.tune(_objective, steps=10, budget=1.0, strategy="random",
                    space=lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd"), storage=url,
                    study_name=name)
        return url

    return make


def test_show_prints_escapes_in_a_study_name_instead_of_obeying_them(stored):
    name = "red\x1b[31m\u202eevil"
    result = runner.invoke(app, ["show", name, "--storage", stored(name)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\u202e" not in result.output
    assert result.output.startswith("red\\x1b[31m\\u202eevil: strategy random")


def test_report_into_an_existing_folder_writes_the_file_there(stored, tmp_path):
    url = stored("m")
    (tmp_path / "reports").mkdir()
    result = runner.invoke(app, ["report", "m", "--storage", url, "-o", str(tmp_path / "reports")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "reports" / "m.html").read_text().startswith("<!doctype html>")


def test_report_of_a_very_long_study_name_gets_a_file_name_that_fits(stored, tmp_path,
                                                                    monkeypatch):
    name = "n" * 300
    url = stored(name)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["report", name, "--storage", url])
    assert result.exit_code == 0, result.output
    assert (tmp_path / ("n" * 100 + ".html")).is_file()


@contextlib.contextmanager
def _read_only(*paths):
    """``paths`` made unwritable: by permissions for a user, by the immutable attribute for
    root (whom permissions do not stop)."""
    if os.geteuid() != 0:
        modes = [p.stat().st_mode for p in paths]
        for p in paths:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield
        finally:
            for p, mode in zip(paths, modes, strict=True):
                p.chmod(mode)
        return
    if shutil.which("chattr") is None or subprocess.run(
            ["chattr", "+i", *map(str, paths)], capture_output=True).returncode:
        pytest.skip("root here, and chattr +i is not available to make a file read-only")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=True)


@pytest.mark.parametrize("unwritable", ["file", "file and folder"])
def test_show_and_report_read_a_database_nobody_may_write_and_change_nothing(stored, tmp_path,
                                                                            unwritable):
    url = stored("m")
    folder = tmp_path / "copy"  # a copy, as on a read-only mount: one file, no -wal or -shm
    folder.mkdir()
    with contextlib.closing(sqlite3.connect(tmp_path / "s.db")) as source, \
            contextlib.closing(sqlite3.connect(folder / "s.db")) as copy:
        source.backup(copy)
    db = folder / "s.db"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    url = f"sqlite:///{db}"
    with _read_only(db, *([folder] if unwritable == "file and folder" else [])):
        shown = runner.invoke(app, ["show", "m", "--storage", url])
        reported = runner.invoke(app, ["report", "m", "--storage", url,
                                       "-o", str(tmp_path / "m.html")])
        assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith("m: strategy random")
    assert reported.exit_code == 0, reported.output
    assert (tmp_path / "m.html").read_text().startswith("<!doctype html>")
