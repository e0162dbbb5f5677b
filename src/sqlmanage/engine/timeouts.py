"""A bound on every wait: lock_timeout and statement_timeout for each migration on PostgreSQL.

An ALTER that queues behind one long application transaction makes every later query on
that table queue behind it. With ``lock_timeout`` the migration gives up instead, rolls
back (the queue drains at once) and tries again after a pause; when it still cannot have
its lock, ``migrate`` fails naming the sessions that hold locks on the table.

The settings are ``SET LOCAL``: they end with the migration's transaction, so nothing is
left on the connection, which is what a PgBouncer in transaction pooling needs. The parts of
a migration inside ``autocommit_block()`` run outside any transaction, so no ``SET LOCAL``
reaches them, and a session-level ``SET`` would leak behind such a pooler: they run without
these bounds. What sqlmanage writes there (``CREATE/DROP INDEX CONCURRENTLY``, ``VALIDATE
CONSTRAINT``) takes a SHARE UPDATE EXCLUSIVE lock, which no application query waits for.
After such a block the settings are set again in the transaction that follows.

Settings (module level, or per database in ``DATABASES``): ``MIGRATION_LOCK_TIMEOUT``
(seconds, default 2), ``MIGRATION_STATEMENT_TIMEOUT`` (seconds, default 0: no limit, set
explicitly so that a role's default does not apply by surprise), ``MIGRATION_LOCK_TRIES``
(default 3). ``migrate --ddl-lock-timeout`` overrides the first.
"""

from __future__ import annotations

import functools
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass

from sqlmanage.errors import LockTimeout, SettingsError

LOCK_NOT_AVAILABLE = "55P03"
BACKOFF_SECONDS = 0.5  # the pause after the first failed try; doubled after each one
BACKOFF_MAX = 10.0
OPTIONS = ("MIGRATION_LOCK_TIMEOUT", "MIGRATION_STATEMENT_TIMEOUT", "MIGRATION_LOCK_TRIES")


@dataclass(frozen=True)
class Timeouts:
    lock_timeout: float = 2.0
    statement_timeout: float = 0.0
    tries: int = 3

    def statements(self) -> list[str]:
        """What each migration transaction starts with (``sqlmigrate`` shows them too)."""
        return [f"SET LOCAL {name} = '{value}'" for name, value in self.settings()]

    def settings(self) -> list[tuple[str, str]]:
        """The same as (name, value) pairs, for ``set_config(name, value, true)``."""
        return [
            ("lock_timeout", f"{_milliseconds(self.lock_timeout)}ms"),
            ("statement_timeout", f"{_milliseconds(self.statement_timeout)}ms"),
        ]


def _milliseconds(seconds: float) -> int:
    return int(round(seconds * 1000))


def migration_timeouts(project, lock_timeout: float | None = None) -> Timeouts:
    """The project's database's timeouts, ``lock_timeout`` (the command's flag) first."""
    options = getattr(project.database, "migration_options", {}) or {}
    where = f"{project.settings.module_name} (database '{project.database.alias}')"
    values = {}
    for name, default, kind in (
        ("MIGRATION_LOCK_TIMEOUT", Timeouts.lock_timeout, float),
        ("MIGRATION_STATEMENT_TIMEOUT", Timeouts.statement_timeout, float),
        ("MIGRATION_LOCK_TRIES", Timeouts.tries, int),
    ):
        value = options.get(name, default)
        if value is None:
            value = default
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or value < (1 if kind is int else 0)
        ):
            raise SettingsError(
                f"{name} in {where} must be a {'whole number of at least 1' if kind is int else 'number of seconds'}, "
                f"not {value!r}.",
                hint=f"Fix {name} in the settings.",
            )
        values[name] = kind(value)
    if lock_timeout is not None:
        values["MIGRATION_LOCK_TIMEOUT"] = float(lock_timeout)
    return Timeouts(
        values["MIGRATION_LOCK_TIMEOUT"],
        values["MIGRATION_STATEMENT_TIMEOUT"],
        int(values["MIGRATION_LOCK_TRIES"]),
    )


def with_timeouts_sql(sql: str, timeouts: Timeouts) -> str:
    """Offline SQL (``sqlmigrate``, ``migrate --sql``) with the SET LOCALs after each BEGIN."""
    setting = "\n".join(f"{statement};" for statement in timeouts.statements())
    return re.sub(r"^BEGIN;$", lambda match: f"BEGIN;\n{setting}", sql, flags=re.MULTILINE)


def bound_step(alembic_step, context, timeouts: Timeouts, sleep=time.sleep, attempts=None) -> None:
    """Make Alembic's step run under the timeouts, retrying with backoff when its lock is refused.

    A refused try is rolled back, and with it the run's migration lock (a transaction-scoped
    advisory lock, see core.lock): the retry is the whole run starting over (``RunOutdated``),
    which takes the lock again and re-reads the version table, so a migration another run
    applied meanwhile is never applied twice. ``attempts`` counts the tries per migration
    across those restarts. A try is retried only while nothing of it was committed (no
    autocommit block ran yet): rerunning operations that one committed could fail on them.
    """
    from sqlalchemy import text

    from sqlmanage.engine.alembic_internals import restart_migration_transaction
    from sqlmanage.engine.lock import RunOutdated

    run_migration = alembic_step.migration_fn
    connection = context.connection
    attempts = {} if attempts is None else attempts
    revision = alembic_step.revision.revision
    # The run's lock statement sets them in the same round trip when it can (core.lock),
    # and says so in ``settings_applied``; otherwise they are set here.
    alembic_step.transaction_settings = timeouts.settings()
    alembic_step.settings_applied = False

    def set_local() -> None:
        calls = ", ".join(
            f"set_config(:name{i}, :value{i}, true)" for i in range(len(timeouts.settings()))
        )
        values = {}
        for i, (name, value) in enumerate(timeouts.settings()):
            values.update({f"name{i}": name, f"value{i}": value})
        connection.execute(text(f"SELECT {calls}"), values)

    @functools.wraps(run_migration)  # Alembic names the step after its function
    def run_bounded(**kw):
        attempt = attempts[revision] = attempts.get(revision, 0) + 1
        committed: list = []
        if not alembic_step.settings_applied:
            set_local()
        alembic_step.settings_applied = False  # a retry in this transaction sets them again
        try:
            with _reset_after_autocommit(context, set_local, committed):
                return run_migration(**kw)
        except Exception as exc:
            if not _lock_refused(exc):
                raise
            restart_migration_transaction(context)  # its locks go, and the queue behind them
            if committed or attempt >= timeouts.tries:
                raise _lock_timeout(connection, exc, timeouts, attempt, bool(committed)) from None
            sleep(min(BACKOFF_SECONDS * 2 ** (attempt - 1), BACKOFF_MAX))
            raise RunOutdated() from None

    alembic_step.migration_fn = run_bounded


@contextmanager
def _reset_after_autocommit(context, set_local, committed: list):
    """An autocommit block ends the transaction: the one Alembic begins after it gets the SETs too."""
    from sqlmanage.engine.alembic_internals import around_autocommit_blocks

    def after_block() -> None:
        if context.connection.in_transaction():
            set_local()

    with around_autocommit_blocks(context, lambda: committed.append(True), after_block):
        yield


def _lock_refused(exc: BaseException | None) -> bool:
    while exc is not None:
        if getattr(getattr(exc, "orig", None), "pgcode", None) == LOCK_NOT_AVAILABLE:
            return True
        if (
            getattr(exc, "pgcode", None) == LOCK_NOT_AVAILABLE
            or getattr(exc, "sqlstate", None) == LOCK_NOT_AVAILABLE
        ):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


TABLE_IN_SQL = re.compile(
    r"\b(?:ALTER\s+TABLE|INDEX(?:\s+CONCURRENTLY)?(?:\s+IF\s+NOT\s+EXISTS)?\s+\S+\s+ON|REFERENCES|"
    r'TABLE|UPDATE|INTO|FROM)\s+(?:ONLY\s+)?(?:IF\s+EXISTS\s+)?((?:"[^"]+"|\w+)(?:\.(?:"[^"]+"|\w+))?)',
    re.IGNORECASE,
)

BLOCKERS = """
SELECT DISTINCT a.pid, coalesce(a.application_name, ''), coalesce(a.state, ''),
       extract(epoch FROM now() - coalesce(a.xact_start, a.query_start)), a.query_start,
       left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 80)
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.granted AND l.pid <> pg_backend_pid() AND l.relation = ANY(%(relations)s::regclass[])
ORDER BY 1
"""


def blockers(connection, statement: str) -> list[str]:
    """The sessions holding a lock on a table ``statement`` names, one description each."""
    names = {match.group(1) for match in TABLE_IN_SQL.finditer(statement or "")}
    relations = []
    for name in names:
        found = connection.exec_driver_sql(
            "SELECT to_regclass(%(name)s)::text", {"name": name}
        ).scalar()
        if found:
            relations.append(found)
    if not relations:
        return []
    rows = connection.exec_driver_sql(BLOCKERS, {"relations": relations}).all()
    return [
        f"pid {pid} (application '{application}', {state or 'unknown state'} for {seconds:.1f}s, "
        f"query started {started:%Y-%m-%d %H:%M:%S}: {query!r})"
        for pid, application, state, seconds, started, query in rows
    ]


def _lock_timeout(
    connection, exc, timeouts: Timeouts, attempt: int, committed: bool
) -> LockTimeout:
    statement = getattr(exc, "statement", "") or ""
    try:
        found = blockers(connection, statement)
    except Exception:  # naming the blocker is a courtesy; the failure is the lock's
        found = []
    tries = f"{attempt} {'try' if attempt == 1 else 'tries'}"
    who = "; ".join(found) if found else "no session holds a lock on its table any more"
    first = " ".join(statement.split())[:80]
    message = (
        f"could not get its lock within {timeouts.lock_timeout:g}s ({tries}) for {first!r}: "
        f"blocked by {who}"
    )
    hint = (
        "Wait for that transaction to end (or end it: SELECT pg_terminate_backend(PID)) and run "
        "migrate again; raise MIGRATION_LOCK_TIMEOUT or --ddl-lock-timeout to wait longer."
    )
    if committed:
        hint = "Part of the migration ran in an autocommit block and stays committed. " + hint
    return LockTimeout(message, hint=hint)
