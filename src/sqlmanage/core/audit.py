"""The audit trail: when each migration ran, for how long, by whom, and its file's checksum.

A table of sqlmanage's own (``sqlmanage_migrations``) beside Alembic's version table, which
stays untouched so the plain ``alembic`` CLI keeps working. A row is written inside the
migration's own transaction, so a migration that rolls back leaves no record. The checksum
is SHA-256 of the file with line endings normalised and a BOM dropped, so an editor or git's
autocrlf changes nothing; any other edit of an applied migration is noticed.
"""

from __future__ import annotations

import getpass
import hashlib
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, inspect, select

AUDIT_TABLE = "sqlmanage_migrations"


@dataclass(frozen=True)
class Record:
    """The latest thing recorded for one revision."""

    revision: str
    direction: str
    applied_at: datetime
    checksum: str | None

    @property
    def applied(self) -> bool:
        """Whether the latest record leaves the migration applied (run, faked or recorded)."""
        return self.direction in ("apply", "fake-apply", "recorded")

    @property
    def running(self) -> bool:
        """A mark left by a run that never finished this migration (MySQL/MariaDB only)."""
        return self.direction.startswith("running")


def audit_table(settings) -> Table:
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
        schema=settings.version_table_schema,
    )


def file_checksum(path: Path) -> str:
    """SHA-256 of the file, ignoring a BOM and CRLF/CR line endings."""
    data = Path(path).read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return hashlib.sha256(data).hexdigest()


def ensure_table(connection, settings) -> None:
    audit_table(settings).create(connection, checkfirst=True)


def record(connection, settings, migration, direction: str, seconds: float | None) -> None:
    """Write one row; inside the migration's transaction when called from a running step."""
    connection.execute(audit_table(settings).insert().values(
        revision=migration.revision,
        direction=direction,
        applied_at=datetime.now(timezone.utc),
        duration_ms=None if seconds is None else round(seconds * 1000),
        db_user=_database_user(connection),
        host=socket.gethostname()[:255],
        checksum=file_checksum(migration.path),
    ))


def read_records(connection, settings) -> dict[str, Record]:
    """The latest record per revision; empty when the table does not exist yet."""
    if not inspect(connection).has_table(AUDIT_TABLE, schema=settings.version_table_schema):
        return {}
    table = audit_table(settings)
    rows = connection.execute(
        select(table.c.revision, table.c.direction, table.c.applied_at, table.c.checksum)
        .order_by(table.c.id)
    )
    return {row.revision: Record(row.revision, row.direction, row.applied_at, row.checksum) for row in rows}


def _database_user(connection) -> str:
    user = connection.engine.url.username
    if user:
        return user[:128]
    try:
        return getpass.getuser()[:128]
    except Exception:
        return ""
