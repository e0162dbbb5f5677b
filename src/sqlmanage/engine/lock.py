"""One migration run at a time per database, correct behind a connection pooler.

Nothing is left on a server connection after a run: no lock, no setting.
- PostgreSQL: ``pg_advisory_xact_lock``, taken inside every transaction of a run (the
  bookkeeping one, then each migration's) and released by its COMMIT or ROLLBACK, so it holds
  the same on a direct connection and behind PgBouncer in transaction or session pooling.
  Between two migrations of a run another run may take the lock; that is why the caller
  reads the version table again under the lock (``RunOutdated``) before each migration, and
  a migration that another run applied meanwhile is skipped, never run twice.
- MySQL/MariaDB: ``GET_LOCK``, which is the session's and cannot be the transaction's (DDL
  there commits on its own), held for the whole run. It is correct on a direct connection,
  which is what MySQL migrations need anyway; behind a transaction-pooling proxy it is not.
- SQLite: an OS file lock on ``<database>.lock`` beside the real file (symlinks resolved).
The lock's name comes from the server (``current_database()``, ``DATABASE()``) or the real
file, never from how the URL spells the database, so an alias and a direct URL exclude each
other. A waiting run says once who holds the lock, and gives up after ``timeout`` seconds.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text

from sqlmanage.errors import RunLockTimeout

POLL_SECONDS = 0.2
LOCK_HELD = "sqlmanage: the migration lock is held by another run"


class RunOutdated(Exception):
    """Another run changed the version table since this run read it: plan again."""


def lock_name(database: str, schema: str | None, version_table: str) -> str:
    return f"sqlmanage:{database}:{schema or ''}:{version_table}"


def advisory_key(name: str) -> int:
    """A stable, positive 63-bit key for the advisory lock functions."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") & (2**63 - 1)


@contextmanager
def migration_lock(
    connection, settings, timeout: float | None, on_wait: Callable[[str], None]
) -> Iterator[_NoLock]:
    """Hold the session part of the lock (MySQL, SQLite) for the block; yield the lock.

    Call ``hold()`` at the start of every transaction that reads or writes the version
    table: on PostgreSQL that is where the lock is taken. The connection is left outside any
    transaction on entry, so Alembic begins its own.
    """
    dialect = connection.dialect.name
    lock: _NoLock
    if dialect == "postgresql":
        database = connection.exec_driver_sql("SELECT current_database()").scalar()
        connection.rollback()
        name = lock_name(database, settings.version_table_schema, settings.version_table)
        lock = _PostgresLock(connection, advisory_key(name), database, timeout, on_wait)
    elif dialect in ("mysql", "mariadb"):
        database = connection.exec_driver_sql("SELECT DATABASE()").scalar() or ""
        connection.rollback()
        name = lock_name(database, settings.version_table_schema, settings.version_table)
        lock = _MySQLLock(
            connection, hashlib.sha256(name.encode()).hexdigest()[:60], database, timeout, on_wait
        )
    elif dialect == "sqlite" and (path := sqlite_file(connection)) is not None:
        lock = _FileLock(path.with_name(path.name + ".lock"), str(path), timeout, on_wait)
    else:
        yield _NoLock()
        return
    lock.acquire_session()
    try:
        yield lock
    finally:
        lock.release_session()


def sqlite_file(connection) -> Path | None:
    """The real file behind an SQLite connection (symlinks resolved); None in memory."""
    database = connection.engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(os.path.realpath(database))


def _wait(lock, timeout: float | None) -> None:
    """Poll ``lock.try_acquire`` until it succeeds, saying once who holds it."""
    deadline = None if timeout is None else time.monotonic() + timeout
    told = False
    while not lock.try_acquire():
        holder = lock.holder()
        if not told:
            lock.on_wait(f"Waiting for the migration lock on {lock.database}: {holder}.")
            told = True
        if deadline is not None and time.monotonic() >= deadline:
            raise _timeout(lock.database, timeout, holder)
        time.sleep(POLL_SECONDS)


def _timeout(database: str, timeout: float | None, holder: str) -> RunLockTimeout:
    return RunLockTimeout(
        f"Gave up waiting for the migration lock on {database} after {timeout:g}s: {holder}.",
        hint="Another migrate is running against this database; let it finish, or raise "
        "--lock-timeout.",
    )


class _NoLock:
    """In-memory SQLite and unknown dialects: nothing to exclude."""

    def acquire_session(self) -> None:
        pass

    def release_session(self) -> None:
        pass

    def hold(self, settings=()) -> bool:
        """Take the lock for the current transaction; True when ``settings`` (pairs for
        ``set_config(name, value, true)``) were set for it in the same statement."""
        return False

    def hold_and_read(self, connection, settings, read) -> tuple[bool, set[str]]:
        """``hold(settings)``, then the version table's rows (``read``, a SELECT of them)
        in a statement that starts once the lock is held."""
        applied = self.hold(settings)
        return applied, set(connection.execute(read).scalars())


class _PostgresLock(_NoLock):
    """``pg_advisory_xact_lock`` in each transaction; nothing on the session."""

    def __init__(self, connection, key: int, database: str, timeout, on_wait):
        self.connection, self.key, self.database = connection, key, database
        self.timeout, self.on_wait = timeout, on_wait
        self.told = False
        # A dead runner is noticed within a second while it waits (PostgreSQL 14+); set for
        # the transaction only, like everything else here.
        self.check = connection.dialect.server_version_info >= (14,)
        self._statements: dict[tuple, tuple] = {}
        self._read_sql: str | None = None

    def hold(self, settings=()) -> bool:
        """Take the lock for the current transaction (begun here if none is open), setting
        the transaction's ``settings`` in the same round trip."""
        statement, _, values = self._lock_statement(settings)
        if not self.connection.execute(statement, values).scalar():
            self._wait()
        return True

    def hold_and_read(self, connection, settings, read) -> tuple[bool, set[str]]:
        """The lock and the version table in one round trip where the driver sends several
        statements at once (psycopg2's simple query protocol); two elsewhere.

        They stay two statements: in READ COMMITTED each statement of the string takes its
        own snapshot when it starts, so the read, starting once the lock statement is done,
        sees every commit of the run that held the lock before. Only the last statement's
        rows come back, so a lock held elsewhere has to stop the read: the lock statement
        then fails, with a message saying so (it is in the server's log too), the statement
        never runs, and the run rolls back (nothing of the step ran yet), waits as ``hold``
        does and reads again. (Asking pg_locks in the read instead costs a scan of the
        server's whole lock table, slow on a busy server.)
        """
        if connection.dialect.driver != "psycopg2":
            return super().hold_and_read(connection, settings, read)
        from sqlalchemy.exc import DBAPIError

        _, sql, values = self._lock_statement(settings, refuse=True)
        if self._read_sql is None:
            self._read_sql = str(read.compile(dialect=connection.dialect)).replace("%", "%%")
        try:
            rows = connection.exec_driver_sql(f"{sql}; {self._read_sql}", values).all()
        except DBAPIError as exc:
            if LOCK_HELD not in str(exc.orig):
                raise
            connection.rollback()
            return super().hold_and_read(connection, settings, read)
        return True, {version for (version,) in rows}

    def _lock_statement(self, settings, refuse: bool = False) -> tuple:
        """The try-lock with the transaction's settings: as a text() construct, as
        psycopg2's pyformat string, and their values; built once per run and settings.

        ``refuse``: the statement fails when the lock is held elsewhere (a text that is no
        boolean; pg_backend_pid() is not constant, so the planner never evaluates it ahead).
        """
        settings = tuple(settings)
        cached = self._statements.get((settings, refuse))
        if cached is None:
            calls = []
            values = {"key": self.key}
            check = (("client_connection_check_interval", "1000"),) if self.check else ()
            for i, (name, value) in enumerate(check + settings):
                calls.append((f"name{i}", f"value{i}"))
                values.update({f"name{i}": name, f"value{i}": value})

            def sql(bind) -> str:
                configs = "".join(f", set_config({bind(n)}, {bind(v)}, true)" for n, v in calls)
                lock = f"pg_try_advisory_xact_lock({bind('key')})"
                if refuse:
                    lock = (
                        f"CASE WHEN {lock} THEN true ELSE ('{LOCK_HELD} (this is pid ' || "
                        "pg_backend_pid() || ')')::boolean END"
                    )
                return f"SELECT {lock}{configs}"

            cached = self._statements[(settings, refuse)] = (
                text(sql(lambda name: f":{name}")),
                sql(lambda name: f"%({name})s"),
                values,
            )
        return cached

    def _wait(self) -> None:
        """The lock is held elsewhere: say so once, then wait for it in the server."""
        holder = self.holder()
        if not self.told:
            self.on_wait(f"Waiting for the migration lock on {self.database}: {holder}.")
            self.told = True
        # Block in the server (woken the moment the holder commits) with a transaction-local
        # lock_timeout, set back before the migration runs.
        previous = self.connection.exec_driver_sql(
            "SELECT current_setting('lock_timeout')"
        ).scalar()
        limit = "0" if self.timeout is None else str(max(1, round(self.timeout * 1000)))
        self.connection.execute(text("SELECT set_config('lock_timeout', :ms, true)"), {"ms": limit})
        try:
            self.connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": self.key})
        except Exception as exc:
            if getattr(getattr(exc, "orig", None), "pgcode", None) == "55P03":
                raise _timeout(self.database, self.timeout, holder) from None
            raise
        self.connection.execute(
            text("SELECT set_config('lock_timeout', :ms, true)"), {"ms": previous}
        )

    def holder(self) -> str:
        row = self.connection.execute(
            text(
                "SELECT a.pid, a.application_name, a.backend_start FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
                "AND l.granted AND ((l.classid::bigint << 32) | l.objid::bigint) = :key "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"key": self.key},
        ).first()
        if row is None:
            return "held by another session"
        pid, application, since = row
        return f"held by pid {pid} ({application or 'unknown application'}) since {since:%Y-%m-%d %H:%M:%S}"


class _MySQLLock(_NoLock):
    def __init__(self, connection, name: str, database: str, timeout, on_wait):
        self.connection, self.name, self.database = connection, name, database
        self.timeout, self.on_wait = timeout, on_wait

    def acquire_session(self) -> None:
        _wait(self, self.timeout)

    def try_acquire(self) -> bool:
        got = self.connection.execute(
            text("SELECT GET_LOCK(:name, 0)"), {"name": self.name}
        ).scalar()
        self.connection.commit()
        return got == 1

    def holder(self) -> str:
        holder = self.connection.execute(
            text("SELECT IS_USED_LOCK(:name)"), {"name": self.name}
        ).scalar()
        self.connection.commit()
        return f"held by connection {holder}" if holder else "held by another session"

    def release_session(self) -> None:
        if self.connection.in_transaction():
            self.connection.rollback()
        self.connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": self.name})
        self.connection.commit()


class _FileLock(_NoLock):
    """fcntl's lock on a file beside the database; the OS drops it when the process dies."""

    def __init__(self, path: Path, database: str, timeout, on_wait):
        import fcntl

        self.fcntl = fcntl
        self.path, self.database = path, database
        self.timeout, self.on_wait = timeout, on_wait
        self.handle = open(path, "a+")  # noqa: SIM115 - held for the lock's lifetime, closed on release

    def acquire_session(self) -> None:
        try:
            _wait(self, self.timeout)
        except BaseException:
            self.handle.close()
            raise

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

    def release_session(self) -> None:
        self.fcntl.flock(self.handle, self.fcntl.LOCK_UN)
        self.handle.close()
