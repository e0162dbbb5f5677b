"""The CI gate: unapplied migrations that would hold a blocking lock on an existing table.

``check`` (its ``migrations`` tag) reads the SQL each unapplied migration runs on PostgreSQL,
as ``sqlmigrate`` renders it, so hand-written operations are caught as well as generated
ones: an index built or dropped without ``CONCURRENTLY``, a foreign key, CHECK or UNIQUE
constraint validated under its lock, ``SET NOT NULL`` without a validated ``IS NOT NULL``
check, a column type change. Tables the same migration creates are exempt. A migration
whose author accepts its locks says so with one line in the file, as strong_migrations'
``safety_assured``::

    sqlmanage_safety_assured = True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ASSURED = re.compile(r"^sqlmanage_safety_assured\s*(?::\s*bool\s*)?=\s*True\b", re.MULTILINE)
NAME = r'(?:"[^"]+"|[\w$]+)(?:\.(?:"[^"]+"|[\w$]+))?'


@dataclass(frozen=True)
class BlockingOperation:
    migration: str
    path: Path
    table: str
    what: str


def _name(text: str) -> str:
    return text.split(".")[-1].strip('"')


def statements(sql: str) -> list[str]:
    """SQL statements without the describing comments, each on one line."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [" ".join(part.split()) for part in "\n".join(lines).split(";\n") if part.strip()]


def blocking_in_sql(sql: str) -> list[tuple[str, str]]:
    """(table, what) for each statement of one migration that locks an existing table unboundedly."""
    created: set[str] = set()
    not_null_checks: dict[str, tuple[str, str]] = {}  # constraint -> (table, column)
    validated: set[tuple[str, str]] = set()
    found: list[tuple[str, str]] = []
    dropped: set[str] = set()  # Alembic drops a table's indexes before the table
    for statement in statements(sql):
        if match := re.match(rf"CREATE TABLE (?:IF NOT EXISTS )?({NAME})", statement, re.I):
            created.add(_name(match.group(1)))
            continue
        if match := re.match(
            rf"CREATE (UNIQUE )?INDEX (?!CONCURRENTLY).*? ON (?:ONLY )?({NAME})", statement, re.I
        ):
            found.append(
                (
                    _name(match.group(2)),
                    "CREATE INDEX without CONCURRENTLY blocks writes for the whole build",
                )
            )
            continue
        if match := re.match(r"DROP TABLE (?:IF EXISTS )?(\S+)", statement, re.I):
            dropped.add(_name(match.group(1)))
            continue
        if re.match(r"DROP INDEX (?!CONCURRENTLY)", statement, re.I):
            index = _name(statement.split()[-1])
            found.append(
                (
                    f"index {index}",
                    "DROP INDEX without CONCURRENTLY blocks reads and writes of its table",
                )
            )
            continue
        match = re.match(rf"ALTER TABLE (?:ONLY )?(?:IF EXISTS )?({NAME}) (.*)", statement, re.I)
        if not match:
            continue
        table, rest = _name(match.group(1)), match.group(2)
        rest_upper = rest.upper()
        if check := re.search(
            rf"ADD CONSTRAINT ({NAME}) CHECK \(\(?\s*({NAME}) IS NOT NULL\s*\)?\) NOT VALID",
            rest,
            re.I,
        ):
            not_null_checks[_name(check.group(1))] = (table, _name(check.group(2)))
        valid = re.search(rf"VALIDATE CONSTRAINT ({NAME})", rest, re.I)
        if valid and _name(valid.group(1)) in not_null_checks:
            validated.add(not_null_checks[_name(valid.group(1))])
        if "FOREIGN KEY" in rest_upper and "NOT VALID" not in rest_upper:
            found.append(
                (
                    table,
                    "ADD FOREIGN KEY without NOT VALID checks every row under a lock that blocks writes",
                )
            )
        if (
            re.search(r"\bCHECK\s*\(", rest, re.I)
            and "ADD" in rest_upper
            and "NOT VALID" not in rest_upper
        ):
            found.append(
                (
                    table,
                    "ADD CHECK without NOT VALID checks every row under an ACCESS EXCLUSIVE lock",
                )
            )
        if (
            re.search(r"\bADD (?:CONSTRAINT \S+ )?(?:UNIQUE|PRIMARY KEY)\b", rest, re.I)
            and "USING INDEX" not in rest_upper
        ):
            found.append(
                (table, "ADD UNIQUE/PRIMARY KEY builds its index under an ACCESS EXCLUSIVE lock")
            )
        for column in re.findall(rf"ALTER COLUMN ({NAME}) SET NOT NULL", rest, re.I):
            if (table, _name(column)) not in validated:
                found.append(
                    (
                        table,
                        f"SET NOT NULL on {_name(column)} scans the table under an ACCESS EXCLUSIVE lock",
                    )
                )
        for column in re.findall(rf"ALTER COLUMN ({NAME}) (?:SET DATA )?TYPE ", rest, re.I):
            found.append(
                (
                    table,
                    f"changing the type of {_name(column)} may rewrite the table under an ACCESS EXCLUSIVE lock",
                )
            )
    return [
        (table, what)
        for table, what in found
        if table not in created
        and not (table.startswith("index ") and any(t in table for t in dropped))
    ]


def blocking_operations(project, migrations) -> list[BlockingOperation]:
    """The blocking operations of ``migrations`` (unapplied, in order), unless assured.

    Only for PostgreSQL: the other databases lock differently and have none of the safe forms.
    """
    from sqlmanage.engine.sql import migration_sql

    found = []
    for migration in migrations:
        if ASSURED.search(migration.path.read_text(encoding="utf-8")):
            continue
        for table, what in blocking_in_sql(migration_sql(project, migration.revision)):
            found.append(BlockingOperation(migration.name, migration.path, table, what))
    return found
