"""Opening Optuna storages for several workers, and riding out their transient failures.

Using Optuna's storages gives SQLite, PostgreSQL (any SQLAlchemy URL) and an in-memory store;
what lrtune writes into them is in ``_schema.py``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import optuna
import sqlalchemy
from optuna.exceptions import StorageInternalError

from lrtune.exceptions import LrtuneError

_log = logging.getLogger("lrtune.study")
SQLITE_LOCK_WAIT = 60  # seconds a SQLite transaction waits for the write lock before failing
SERVER_RECYCLE = 300  # seconds before a pooled server connection is replaced (idle firewalls)
# A storage outage (a server restart, a dropped network, a full disk) is ridden out for this
# many seconds by default, retrying with pauses that double from FIRST_PAUSE up to MAX_PAUSE;
# $LRTUNE_STORAGE_OUTAGE sets another limit where the workers run.
OUTAGE_VARIABLE = "LRTUNE_STORAGE_OUTAGE"
DEFAULT_OUTAGE = 120.0
FIRST_PAUSE, MAX_PAUSE = 0.5, 8.0
# What an outage raises (SQLAlchemy's errors, Optuna's wrapper of a failed commit) ...
STORAGE_ERRORS = (StorageInternalError, sqlalchemy.exc.SQLAlchemyError)
# ... and, among the driver's errors behind it, those that may pass if tried again: a lost
# connection, a lock, a full disk. Others (a malformed file, a missing table, bad data) stay.
_PASSING = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)
_LASTING_MESSAGES = ("readonly database",)  # a missing table is a lost study: raised before
# Optuna's tables that refer to no other: a database Optuna is creating holds one of them first
_STUDIES_TABLE = "studies"
_OPTUNA_TABLES = {_STUDIES_TABLE, "version_info"}
SQLITE_HEADER = b"SQLite format 3\x00"  # the first bytes of every SQLite database file
T = TypeVar("T")


class StorageError(LrtuneError):
    """A storage URL could not be opened, or holds a study that does not match the request."""


def safe_url(url: str) -> str:
    """``url`` with its password masked, for messages and logs."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not an SQLAlchemy URL: show only its scheme
        return url.split("://", 1)[0] + "://..." if "://" in url else "<storage>"


def open_storage(url: str | None, read_only: bool = False) -> optuna.storages.BaseStorage:
    """The Optuna storage behind ``url`` (None: in memory), set up for several workers;
    ``read_only``: a SQLite file opened for reading only (a report), never written."""
    outage_limit()  # a bad $LRTUNE_STORAGE_OUTAGE is refused before anything is written
    if url is None:
        return optuna.storages.InMemoryStorage()
    if not read_only:
        _check_sqlite_target(url)
    for attempt in range(3):  # workers opening a fresh database at once race to create tables
        try:
            return _open_sqlite(url, read_only) if url.startswith("sqlite") \
                else _open_server(url)
        except Exception as err:  # noqa: BLE001 - SQLAlchemy / driver errors vary; the message names the URL
            failure = err
            time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))
    raise StorageError(f"Cannot open the storage {safe_url(url)}: "
                       f"{_describe(_driver_error(failure))}") from None


def sqlite_slashes(url: sqlalchemy.engine.URL) -> str | None:
    """What to write instead of a SQLite URL with two slashes (``sqlite://lrtune.db``), which
    names a host, not a file; None for any other URL."""
    if url.get_backend_name() != "sqlite" or not url.host:
        return None
    return (f"a SQLite file is 'sqlite:///' and its path ('sqlite:///{url.host}"
            f"{'/' + url.database if url.database else ''}'; four slashes before an absolute "
            "path)")


def check_existing(url: str) -> None:
    """Refuse a URL that is not one, or a SQLite file that holds no study storage, before
    opening it: opening would write Optuna's tables into it (a typo in a path must not leave a
    stray file, nor a read add tables to an empty file or another program's database)."""
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise StorageError(f"{url!r} is not a storage URL (e.g. sqlite:///lrtune.db).") from None
    if hint := sqlite_slashes(parsed):
        raise StorageError(f"{url!r} is not a storage URL: {hint}.")
    path = _sqlite_file(parsed)
    if path is None:
        return
    if not path.is_file():
        raise StorageError(f"No storage at {safe_url(url)}: the file {path} does not exist.")
    tables = _sqlite_tables(url, path)
    if tables is not None and _STUDIES_TABLE not in tables:
        raise StorageError(f"No study storage at {safe_url(url)}: the file {path} "
                           f"{_holds(tables)}.")


def _check_sqlite_target(url: str) -> None:
    """Refuse, before writing anything, a SQLite path that cannot become a study storage: a
    file in a folder that does not exist, a folder, a file that is not a SQLite database, or
    another program's database (lrtune would add its tables beside that program's)."""
    path = _sqlite_file(sqlalchemy.engine.make_url(url))
    if path is None:
        return
    if path.is_dir():
        raise StorageError(f"Cannot open the storage {safe_url(url)}: {path} is a folder, not a "
                           "SQLite file.")
    if not path.exists():
        if not path.parent.is_dir():
            raise StorageError(f"Cannot create the storage {safe_url(url)}: the folder "
                               f"{path.parent} does not exist.")
        return
    tables = _sqlite_tables(url, path)
    if tables and not tables & _OPTUNA_TABLES:
        raise StorageError(f"Cannot open the storage {safe_url(url)}: the file {path} "
                           f"{_holds(tables)}; use another file for the study.")


def _sqlite_file(url: sqlalchemy.engine.URL) -> Path | None:
    """The file of a SQLite URL (None: another database, or SQLite in memory)."""
    database = url.database
    if url.get_backend_name() != "sqlite" or database in (None, "", ":memory:"):
        return None
    return Path(database)


def _sqlite_tables(url: str, path: Path) -> set[str] | None:
    """The tables of the SQLite file ``path``, read without writing to it; None when it cannot
    be read now (locked, unreadable): opening the storage then reports what is wrong."""
    try:
        with contextlib.closing(_connect_read_only(path)) as connection:
            return {row[0] for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.OperationalError:
        return None
    except sqlite3.DatabaseError as err:
        if _is_sqlite(path):  # a damaged database: opening it says so, as for any storage error
            return None
        raise StorageError(f"Cannot open the storage {safe_url(url)}: the file {path} is not a "
                           f"SQLite database ({err}).") from None


def _is_sqlite(path: Path) -> bool:
    """Whether ``path`` starts as every SQLite database file does."""
    with path.open("rb") as file:
        return file.read(len(SQLITE_HEADER)) == SQLITE_HEADER


def _holds(tables: set[str]) -> str:
    if not tables:
        return "is empty"
    return f"is a SQLite database of another program (its tables: {', '.join(sorted(tables))})"


def _open_sqlite(url: str, read_only: bool = False) -> optuna.storages.RDBStorage:
    """SQLite for several local worker processes, without "database is locked".

    Every transaction starts with ``BEGIN IMMEDIATE``: it takes the write lock first, so a
    transaction that reads and then writes can never be refused half-way (SQLite does not wait
    when a reader tries to upgrade to a writer, the classic source of "database is locked"); it
    waits up to ``SQLITE_LOCK_WAIT`` seconds instead, and a read-check-write (Optuna's "fail this
    trial unless it is finished") becomes atomic. The write-ahead log lets outside readers (a
    report, a dashboard) read while workers write, and commits without syncing the database
    file (a small write took 0.7 ms instead of 2.5 ms on the development machine). WAL needs a
    local disk: for workers on several machines use PostgreSQL, not SQLite on a network file
    system. benchmarks/RESULTS.md ("Workers and storage") has the measurements.

    ``read_only`` opens the file as SQLite's ``mode=ro`` (a file without write permission, a
    copy on a read-only mount): it never writes, not even the journal mode.
    """
    if read_only:
        database = sqlalchemy.engine.make_url(url).database or ""
        storage = optuna.storages.RDBStorage(url, engine_kwargs={
            "creator": lambda: _connect_read_only(Path(database))})
        sqlalchemy.event.listen(storage.engine, "connect", _sqlite_autocommit)
        return storage
    storage = optuna.storages.RDBStorage(
        url, engine_kwargs={"connect_args": {"timeout": SQLITE_LOCK_WAIT}})
    sqlalchemy.event.listen(storage.engine, "connect", _sqlite_connect)
    sqlalchemy.event.listen(storage.engine, "begin", _sqlite_begin)
    storage.engine.dispose()  # connections opened while Optuna created its tables lack the above
    return storage


def _connect_read_only(database: Path) -> sqlite3.Connection:
    """A connection that only reads ``database``. A WAL database needs its shared-memory file
    beside it; in a folder that cannot hold one (read-only) the file is read as immutable:
    nothing can be writing to it there."""
    uri = database.resolve().as_uri()
    connection = sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False)
    try:
        connection.execute("PRAGMA schema_version")  # opens the file (and its WAL index)
    except sqlite3.OperationalError as err:
        if "unable to open" not in str(err):
            raise
        connection.close()
        connection = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True,
                                     check_same_thread=False)
    return connection


def _sqlite_autocommit(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # the driver must not BEGIN on its own


def _sqlite_connect(dbapi_connection: Any, record: Any) -> None:
    _sqlite_autocommit(dbapi_connection, record)
    dbapi_connection.execute("PRAGMA journal_mode=WAL")
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")  # in WAL: durable but on power loss


def _sqlite_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _open_server(url: str) -> optuna.storages.RDBStorage:
    """A database server (PostgreSQL, MySQL) whose connections survive long idle epochs.

    A connection idle during a long epoch may have been closed by the server, a firewall or a
    NAT box; pre-ping replaces it before use, recycling bounds its age, and TCP keepalives
    (libpq drivers) keep the path open and notice a dead server within a minute.
    """
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True, "pool_recycle": SERVER_RECYCLE}
    driver = sqlalchemy.engine.make_url(url).drivername
    if driver in ("postgresql", "postgresql+psycopg2", "postgresql+psycopg"):
        engine_kwargs["connect_args"] = {"keepalives": 1, "keepalives_idle": 30,
                                         "keepalives_interval": 10, "keepalives_count": 3}
    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)


class StudyLostError(StorageError):
    """The study's tables vanished from its storage while it ran (its database file deleted or
    replaced): a worker stops with this error rather than report a study it no longer has."""


def outage_limit() -> float:
    """Seconds a worker rides out a failing storage: ``$LRTUNE_STORAGE_OUTAGE``, else
    ``DEFAULT_OUTAGE``; a value that is not a number of seconds >= 0 is refused."""
    text = os.environ.get(OUTAGE_VARIABLE)
    if text is None:
        return DEFAULT_OUTAGE
    try:
        limit = float(text)
    except ValueError:
        limit = math.nan
    if not limit >= 0 or math.isinf(limit):
        raise StorageError(f"${OUTAGE_VARIABLE} must be the number of seconds a worker rides "
                           f"out a storage outage (a finite number >= 0, e.g. 300); it is "
                           f"{text!r}.")
    return limit


_last_recovery = -math.inf  # time.monotonic() when a storage call last succeeded after failing


def last_recovery() -> float:
    """When this process last saw the storage come back after an outage (``time.monotonic()``;
    -inf: never). A worker measuring another's heartbeat does not count an outage that it sat
    through itself as the other's silence."""
    return _last_recovery


def retrying(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)``, tried again while the storage is out.

    A failure that may pass (a refused or dropped connection, a lock, a full disk) is logged
    and retried (a load test counts the retries) until :func:`outage_limit` seconds have passed
    since the first one; then a :class:`StorageError` names the driver's own error, not Optuna's
    generic commit message, and chains it. One that retrying cannot mend raises at once: a
    malformed or truncated file, a read-only one, bad data; :class:`StudyLostError` when the
    study's tables are gone.
    """
    global _last_recovery
    name = getattr(call, "__name__", "?")
    first_failure, pause = None, FIRST_PAUSE
    while True:
        try:
            result = call(*args, **kwargs)
        except STORAGE_ERRORS as err:
            driver = _driver_error(err)
            cause = _describe(driver)
            if "no such table" in cause:
                raise StudyLostError(
                    f"The study's tables are gone from its storage ({cause}): the database was "
                    "deleted or replaced while the study ran, and what was recorded in it is "
                    "lost. Restore the file, or start the study again.") from driver
            if not _passes(driver, cause):
                raise StorageError(f"The storage call {name} failed with an error that "
                                   f"retrying cannot mend: {cause}") from driver
            now = time.monotonic()
            first_failure = now if first_failure is None else first_failure
            left = outage_limit() - (now - first_failure)
            if left <= 0:
                raise StorageError(
                    f"The storage call {name} still failed after {now - first_failure:.1f} s of "
                    f"retries: {cause} (workers ride out an outage for ${OUTAGE_VARIABLE} = "
                    f"{outage_limit():g} s)") from driver
            pause = min(pause, left)
            _log.warning("storage call %s failed (%s); retrying in %.1f s", name, cause, pause)
            time.sleep(pause)
            pause = min(2 * pause, MAX_PAUSE)
        else:
            if first_failure is not None:
                _last_recovery = time.monotonic()
                _log.warning("storage call %s succeeded again after %.1f s", name,
                             _last_recovery - first_failure)
            return result


def _driver_error(err: BaseException) -> BaseException:
    """The error the storage raised, behind Optuna's wrapper of a failed commit."""
    return err.__cause__ if isinstance(err, StorageInternalError) and err.__cause__ else err


def _passes(driver: BaseException, cause: str) -> bool:
    return isinstance(driver, _PASSING) and not any(m in cause for m in _LASTING_MESSAGES)


def _describe(err: BaseException) -> str:
    """The driver's own error (the DB-API one SQLAlchemy wraps), on one line."""
    own = getattr(err, "orig", None) or err
    text = str(own).splitlines()[0][:200] if str(own) else ""
    return f"{type(own).__name__}: {text}".rstrip(": ")
