"""A SQLite path that is not a study storage (an empty file, another program's database, a file
that is not SQLite, a folder, a path in a missing folder) is refused with what it is, and nothing
is written to it: neither a study opened to read nor one to run adds Optuna's tables to it."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

import lrtune
from lrtune.records import TrialState
from lrtune.study import StorageError, join_study

SPACE = lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd")
STUDY = dict(steps=10, budget=1.0, strategy="random", space=SPACE, study_name="s")


def _trains(trial):
    for step in range(trial.steps):
        trial.report(1.0, step)
    return abs(trial.lr - 0.01)


def _other_program(path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
        conn.execute("INSERT INTO invoices (amount) VALUES (12.5)")


def _text(path: Path) -> None:
    path.write_text("step,loss\n0,2.3\n" * 100)


FILES = {  # how the file is made, what the error says it is
    "other-program": (_other_program, "is a SQLite database of another program (its tables: "
                                      "invoices)"),
    "empty": (lambda path: path.touch(), "is empty"),
    "text": (_text, "is not a SQLite database (file is not a database)"),
}
READS = {
    "load_study": lambda url: lrtune.load_study("s", url),
    "load_study-read-only": lambda url: lrtune.load_study("s", url, read_only=True),
    "join_study": lambda url: join_study(_trains, storage=url, study_name="s"),
}


def _snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
@pytest.mark.parametrize("kind", FILES.keys())
def test_reading_a_file_that_holds_no_study_says_what_it_is_and_writes_nothing(tmp_path, kind,
                                                                              read):
    make, what = FILES[kind]
    db = tmp_path / "s.db"
    make(db)
    before = _snapshot(tmp_path)
    with pytest.raises(StorageError) as caught:
        read(f"sqlite:///{db}")
    assert str(caught.value).endswith(f"the file {db} {what}.")
    assert _snapshot(tmp_path) == before  # no Optuna tables, no journal files


@pytest.mark.parametrize("kind", ["other-program", "text"])
def test_a_study_is_not_created_inside_a_file_that_is_not_a_study_storage(tmp_path, kind):
    make, what = FILES[kind]
    db = tmp_path / "s.db"
    make(db)
    before = _snapshot(tmp_path)
    with pytest.raises(StorageError, match=re.escape(f"Cannot open the storage sqlite:///{db}: "
                                                     f"the file {db} {what}")):
        lrtune.tune(_trains, storage=f"sqlite:///{db}", **STUDY)
    assert _snapshot(tmp_path) == before


def test_an_empty_file_becomes_a_study_storage(tmp_path):
    db = tmp_path / "s.db"
    db.touch()  # mktemp, or a file created ahead for the study
    lrtune.tune(_trains, storage=f"sqlite:///{db}", **STUDY)
    (trial,) = lrtune.load_study("s", f"sqlite:///{db}", read_only=True).trials
    assert trial.state is TrialState.COMPLETED


def test_a_study_in_a_missing_folder_or_at_a_folder_is_refused_and_creates_nothing(tmp_path):
    missing = tmp_path / "runs" / "s.db"
    with pytest.raises(StorageError, match=re.escape(
            f"Cannot create the storage sqlite:///{missing}: the folder {missing.parent} does "
            "not exist.")):
        lrtune.tune(_trains, storage=f"sqlite:///{missing}", **STUDY)
    with pytest.raises(StorageError, match=re.escape(
            f"Cannot open the storage sqlite:///{tmp_path}: {tmp_path} is a folder, not a SQLite "
            "file.")):
        lrtune.tune(_trains, storage=f"sqlite:///{tmp_path}", **STUDY)
    assert list(tmp_path.iterdir()) == []
