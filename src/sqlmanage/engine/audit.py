"""The audit trail: when each migration ran, for how long, by whom, and its file's checksum.

A table of sqlmanage's own (``sqlmanage_migrations``) beside Alembic's version table, which
stays untouched so the plain ``alembic`` CLI keeps working. A row is written inside the
migration's own transaction, so a migration that rolls back leaves no record. The checksum
is SHA-256 of the file with line endings normalised and a BOM dropped, so an editor or git's
autocrlf changes nothing; any other edit of an applied migration is noticed.

Several projects may share one database, each with its own ``VERSION_TABLE``: every row
names the version table it belongs to, and a project reads only its own rows (and rows
written before that column existed, which name none).
"""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, inspect, or_, select

AUDIT_TABLE = "sqlmanage_migrations"


@dataclass(frozen=True)
class Record:
    """The latest thing recorded for one revision. ``event`` is what happened to it (the
    audit table's ``direction`` column: apply, unapply, fake-apply, recorded, running, ...)."""

    revision: str
    event: str
    applied_at: datetime
    checksum: str | None

    @property
    def applied(self) -> bool:
        """Whether the latest record leaves the migration applied (run, faked or recorded)."""
        return self.event in ("apply", "fake-apply", "recorded")

    @property
    def running(self) -> bool:
        """A mark left by a run that never finished this migration (MySQL/MariaDB only)."""
        return self.event.startswith("running")


def audit_table(settings) -> Table:
    return _audit_table(settings.version_table_schema)


@cache
def _audit_table(schema: str | None) -> Table:
    """One Table object per schema, so its INSERT is compiled once and cached per run."""
    return Table(
        AUDIT_TABLE,
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("revision", String(32), nullable=False),
        Column("direction", String(16), nullable=False),
        Column("applied_at", DateTime(timezone=True), nullable=False),
        Column("duration_ms", Integer),
        Column("db_user", String(128)),
        Column("host", String(255)),
        Column("checksum", String(64)),
        Column("version_table", String(128)),
        schema=schema,
    )


def file_checksum(path: Path) -> str:
    """SHA-256 of the file, ignoring a BOM and CRLF/CR line endings."""
    from sqlmanage.engine.revision_index import file_checksum as checksum_of

    return checksum_of(Path(path).read_bytes())


def ensure_table(connection, settings) -> None:
    """Create the table, or add the version_table column to one made before it existed."""
    table = audit_table(settings)
    inspector = inspect(connection)
    if not inspector.has_table(AUDIT_TABLE, schema=settings.version_table_schema):
        table.create(connection)
    elif not _has_version_table_column(inspector, settings):
        from alembic.operations import Operations
        from alembic.runtime.migration import MigrationContext

        operations = Operations(MigrationContext.configure(connection))
        operations.add_column(
            AUDIT_TABLE, Column("version_table", String(128)), schema=settings.version_table_schema
        )


def _has_version_table_column(inspector, settings) -> bool:
    columns = inspector.get_columns(AUDIT_TABLE, schema=settings.version_table_schema)
    return any(column["name"] == "version_table" for column in columns)


def record(
    connection,
    settings,
    migration,
    direction: str,
    seconds: float | None,
    checksum: str | None = None,
) -> None:
    """Write one row; inside the migration's transaction when called from a running step.

    ``checksum`` is the file's, when the caller knows it already (the history caches it).
    """
    connection.execute(_insert(connection, settings, migration, direction, seconds, checksum))


def record_values(
    connection,
    settings,
    migration,
    direction: str,
    seconds: float | None,
    checksum: str | None = None,
) -> dict:
    """The columns of one row, as ``record`` writes it."""
    return {
        "revision": migration.revision,
        "direction": direction,
        "applied_at": datetime.now(timezone.utc),
        "duration_ms": None if seconds is None else round(seconds * 1000),
        "db_user": _database_user(connection),
        "host": _host(),
        "checksum": checksum or file_checksum(migration.path),
        "version_table": settings.version_table,
    }


def insert_sql(dialect, settings, prefix: str) -> str:
    """The row's INSERT as SQL text for ``dialect``, its parameters named ``prefix + column``.

    Compiled once per run, to go in front of another statement as a CTE (see core.apply).
    """
    from sqlalchemy import bindparam

    table = audit_table(settings)
    columns = [c.name for c in table.columns if c.name != "id"]
    statement = table.insert().values({name: bindparam(prefix + name) for name in columns})
    return str(statement.compile(dialect=dialect))


def _insert(
    connection, settings, migration, direction: str, seconds: float | None, checksum: str | None
):
    return (
        audit_table(settings)
        .insert()
        .values(**record_values(connection, settings, migration, direction, seconds, checksum))
    )


def read_records(connection, settings, none_if_missing: bool = False) -> dict[str, Record] | None:
    """The latest record per revision; empty (or None) when the table does not exist yet."""
    inspector = inspect(connection)
    if not inspector.has_table(AUDIT_TABLE, schema=settings.version_table_schema):
        return None if none_if_missing else {}
    table = audit_table(settings)
    query = select(table.c.revision, table.c.direction, table.c.applied_at, table.c.checksum)
    if _has_version_table_column(inspector, settings):
        query = query.where(
            or_(table.c.version_table == settings.version_table, table.c.version_table.is_(None))
        )
    rows = connection.execute(query.order_by(table.c.id))
    return {
        row.revision: Record(row.revision, row.direction, row.applied_at, row.checksum)
        for row in rows
    }


def _database_user(connection) -> str:
    user = connection.engine.url.username
    return user[:128] if user else _login()


@cache
def _login() -> str:
    try:
        return getpass.getuser()[:128]
    except Exception:
        return ""


@cache
def _host() -> str:
    return socket.gethostname()[:255]
