"""One migration run at a time per database: the lock every writing run takes first.

Taken on the migration connection before the version table is read, released when the run
ends, and by the database itself when the process dies:
- PostgreSQL: a session advisory lock (it survives the per-migration commits) on a stable
  63-bit key derived from database, schema and version table; a killed runner's session is
  noticed within a second (``client_connection_check_interval``, PostgreSQL 14+).
- MySQL/MariaDB: ``GET_LOCK`` on a name derived the same way.
- SQLite: an OS file lock on ``<database>.lock`` beside the database file.
A waiting run polls, says once who holds the lock, and gives up after ``timeout`` seconds.
"""

from __future__ import annotations

import hashlib
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import text

from sqlmanage.errors import SqlmanageError

POLL_SECONDS = 0.2


class LockTimeout(SqlmanageError):
    """Another run kept the migration lock longer than --lock-timeout."""


def lock_name(database: str, schema: str | None, version_table: str) -> str:
    return f"sqlmanage:{database}:{schema or ''}:{version_table}"


def advisory_key(name: str) -> int:
    """A stable, positive 63-bit key for pg_advisory_lock."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") & (2**63 - 1)


@contextmanager
def migration_lock(connection, settings, timeout: float | None,
                   on_wait: Callable[[str], None]) -> Iterator[None]:
    """Hold the database's migration lock for the duration of the block."""
    dialect = connection.dialect.name
    database = connection.engine.url.database or ""
    name = lock_name(database, settings.version_table_schema, settings.version_table)
    if dialect == "postgresql":
        lock = _PostgresLock(connection, advisory_key(name))
    elif dialect in ("mysql", "mariadb"):
        lock = _MySQLLock(connection, hashlib.sha256(name.encode()).hexdigest()[:60])
    elif dialect == "sqlite" and database and database != ":memory:":
        lock = _FileLock(Path(database).with_name(Path(database).name + ".lock"))
    else:
        yield
        return
    _acquire(lock, database, timeout, on_wait)
    try:
        yield
    finally:
        lock.release()


def _acquire(lock, database: str, timeout: float | None, on_wait) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    told = False
    while not lock.try_acquire():
        if not told:
            on_wait(f"Waiting for the migration lock on {database}: {lock.holder()}.")
            told = True
        if deadline is not None and time.monotonic() >= deadline:
            raise LockTimeout(
                f"Gave up waiting for the migration lock on {database} after {timeout:g}s: "
                f"{lock.holder()}.",
                hint="Another migrate is running against this database; let it finish, or "
                "raise --lock-timeout.",
            )
        time.sleep(POLL_SECONDS)


class _PostgresLock:
    def __init__(self, connection, key: int):
        self.connection, self.key = connection, key
        if connection.dialect.server_version_info >= (14,):
            connection.exec_driver_sql("SET client_connection_check_interval = 1000")

    def try_acquire(self) -> bool:
        got = self.connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}).scalar()
        self.connection.commit()
        return bool(got)

    def holder(self) -> str:
        row = self.connection.execute(text(
            "SELECT a.pid, a.application_name, a.backend_start FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
            "AND l.granted AND ((l.classid::bigint << 32) | l.objid::bigint) = :key "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ), {"key": self.key}).first()
        self.connection.commit()
        if row is None:
            return "held by another session"
        pid, application, since = row
        return f"held by pid {pid} ({application or 'unknown application'}) since {since:%Y-%m-%d %H:%M:%S}"

    def release(self) -> None:
        self.connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
        self.connection.commit()


class _MySQLLock:
    def __init__(self, connection, name: str):
        self.connection, self.name = connection, name

    def try_acquire(self) -> bool:
        got = self.connection.execute(text("SELECT GET_LOCK(:name, 0)"), {"name": self.name}).scalar()
        self.connection.commit()
        return got == 1

    def holder(self) -> str:
        holder = self.connection.execute(text("SELECT IS_USED_LOCK(:name)"), {"name": self.name}).scalar()
        self.connection.commit()
        return f"held by connection {holder}" if holder else "held by another session"

    def release(self) -> None:
        self.connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": self.name})
        self.connection.commit()


class _FileLock:
    """fcntl's lock on a file beside the database; the OS drops it when the process dies."""

    def __init__(self, path: Path):
        import fcntl

        self.fcntl = fcntl
        self.path = path
        self.handle = open(path, "a+")

    def try_acquire(self) -> bool:
        try:
            self.fcntl.flock(self.handle, self.fcntl.LOCK_EX | self.fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(f"{os.getpid()}\n")
        self.handle.flush()
        return True

    def holder(self) -> str:
        try:
            pid = self.path.read_text().strip()
        except OSError:
            pid = ""
        return f"held by process {pid}" if pid else "held by another process"

    def release(self) -> None:
        self.fcntl.flock(self.handle, self.fcntl.LOCK_UN)
        self.handle.close()
