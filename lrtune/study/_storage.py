"""Opening Optuna storages for several workers, and riding out their transient failures.

Using Optuna's storages gives SQLite, PostgreSQL (any SQLAlchemy URL) and an in-memory store;
what lrtune writes into them is in ``_schema.py``.
"""

from __future__ import annotations

import logging
import random
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
# Transient failures (a dropped connection, a server restart) are retried after these pauses;
# together they bridge about a quarter of a minute.
RETRY_PAUSES = (0.5, 1.0, 2.0, 4.0, 8.0)
_TRANSIENT = (StorageInternalError, sqlalchemy.exc.OperationalError,
              sqlalchemy.exc.InterfaceError)
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


def open_storage(url: str | None) -> optuna.storages.BaseStorage:
    """The Optuna storage behind ``url`` (None: in memory), set up for several workers."""
    if url is None:
        return optuna.storages.InMemoryStorage()
    for attempt in range(3):  # workers opening a fresh database at once race to create tables
        try:
            return _open_sqlite(url) if url.startswith("sqlite") else _open_server(url)
        except Exception as err:  # noqa: BLE001 - SQLAlchemy / driver errors vary; the message names the URL
            failure = err
            time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))
    first_line = str(failure).splitlines()[0] if str(failure) else ""
    raise StorageError(f"Cannot open the storage {safe_url(url)}: {type(failure).__name__}: "
                       f"{first_line}".rstrip(": ")) from None


def check_existing(url: str) -> None:
    """Refuse a URL that is not one, or a SQLite file that does not exist, before opening it:
    opening would create an empty database (a typo in a path must not leave a stray file)."""
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise StorageError(f"{url!r} is not a storage URL (e.g. sqlite:///lrtune.db).") from None
    database = parsed.database
    if parsed.get_backend_name() == "sqlite" and database not in (None, "", ":memory:"):
        if not Path(database).is_file():
            raise StorageError(
                f"No storage at {safe_url(url)}: the file {database} does not exist.")


def _open_sqlite(url: str) -> optuna.storages.RDBStorage:
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
    """
    storage = optuna.storages.RDBStorage(
        url, engine_kwargs={"connect_args": {"timeout": SQLITE_LOCK_WAIT}})
    sqlalchemy.event.listen(storage.engine, "connect", _sqlite_connect)
    sqlalchemy.event.listen(storage.engine, "begin", _sqlite_begin)
    storage.engine.dispose()  # connections opened while Optuna created its tables lack the above
    return storage


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # the driver must not BEGIN on its own
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


def retrying(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)``, tried again after a transient storage failure.

    Each retry is logged (a load test counts them). After ``RETRY_PAUSES`` (about 15 s) the
    failure is raised as a :class:`StorageError` that names its real cause (a refused
    connection, a full disk, a malformed file), not Optuna's generic commit message; a study
    whose tables are gone raises :class:`StudyLostError` at once (retrying cannot bring it back).
    """
    name = getattr(call, "__name__", "?")
    pauses = iter(RETRY_PAUSES)
    while True:
        try:
            return call(*args, **kwargs)
        except _TRANSIENT as err:
            cause, pause = _cause_of(err), next(pauses, None)
            if "no such table" in cause:
                raise StudyLostError(
                    f"The study's tables are gone from its storage ({cause}): the database was "
                    "deleted or replaced while the study ran, and what was recorded in it is "
                    "lost. Restore the file, or start the study again.") from err
            if pause is None:
                raise StorageError(f"The storage call {name} still failed after "
                                   f"{sum(RETRY_PAUSES):g} s of retries: {cause}") from err
            _log.warning("storage call %s failed (%s); retrying in %.1f s", name, cause, pause)
            time.sleep(pause)


def _cause_of(err: BaseException) -> str:
    """The driver's own error behind a storage failure, on one line."""
    cause = err.__cause__ or err
    text = str(cause).splitlines()[0][:200] if str(cause) else ""
    return f"{type(cause).__name__}: {text}".rstrip(": ")
