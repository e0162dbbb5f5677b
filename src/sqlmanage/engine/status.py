"""Where the database stands against the migration files."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmanage.engine.migration import Migration


@dataclass(frozen=True)
class MigrationState:
    """One migration: applied or not, and what the audit trail says about it.

    ``applied_at`` is None for a migration applied without sqlmanage (plain alembic): not
    verified until the next ``migrate`` records it. ``changed`` means its file differs from
    the one that was applied.
    """

    migration: Migration
    applied: bool
    applied_at: datetime | None = None
    changed: bool = False
    partly: tuple[int, int] | None = None  # a squashed migration: (originals applied, of how many)
    half_applied: bool = False  # cut off while it ran where DDL cannot roll back (MySQL/MariaDB)

    @property
    def verified(self) -> bool:
        return self.applied_at is not None


@dataclass
class Status:
    """The migrations in apply order, each applied or not, and what the database records."""

    label: str
    database: str
    migrations: list[MigrationState]
    database_heads: tuple[str, ...]
    missing_files: tuple[str, ...]
    heads: tuple[str, ...]
    tree_of: dict[str, str] = field(default_factory=dict)  # revision -> its tree's app label
    trees: tuple[str, ...] = ()  # the app labels shown, in the order they are listed

    @property
    def several_trees(self) -> bool:
        return len(set(self.tree_of.values())) > 1

    def in_tree(self, label: str) -> list[MigrationState]:
        return [s for s in self.migrations if self.tree_of.get(s.migration.revision) == label]

    @property
    def applied_count(self) -> int:
        return sum(state.applied for state in self.migrations)

    @property
    def pending_count(self) -> int:
        return len(self.migrations) - self.applied_count

    @property
    def changed(self) -> list[MigrationState]:
        return [state for state in self.migrations if state.changed]

    @property
    def half_applied(self) -> list[MigrationState]:
        return [state for state in self.migrations if state.half_applied]


def heads_on(connection, settings) -> tuple[str, ...]:
    """The revisions in Alembic's version table, read on an open connection (no Alembic import)."""
    from sqlalchemy import column, inspect, select, table

    schema = settings.version_table_schema
    if not inspect(connection).has_table(settings.version_table, schema=schema):
        return ()
    versions = table(settings.version_table, column("version_num"), schema=schema)
    return tuple(row[0] for row in connection.execute(select(versions.c.version_num)))


def read_database_heads(project) -> tuple[str, ...]:
    """The revisions in the version table; nothing for a database not created yet. Read-only."""
    return _read(project, lambda connection: heads_on(connection, project.settings), ())


def read_database_state(project) -> tuple[tuple[str, ...], dict | None]:
    """The version table's revisions and the audit trail's records, in one read-only visit.

    The records are None when the audit table does not exist yet. Each table is read in its
    own transaction: this read takes no lock, so another run may create or rebuild the audit
    table after the version table was read, and MySQL/MariaDB refuse (1412, "Table definition
    has changed") a REPEATABLE READ snapshot's read of a table newer than the snapshot.
    """
    from sqlmanage.engine.audit import read_records

    def read(connection):
        heads = heads_on(connection, project.settings)
        connection.rollback()
        return heads, read_records(connection, project.settings, none_if_missing=True)

    return _read(project, read, ((), None))


def _read(project, fn, empty):
    """``fn`` on a connection, or ``empty`` for an SQLite file not created yet (none is made)."""
    from sqlmanage.database import connect, is_empty_sqlite

    if is_empty_sqlite(project.url):
        return empty
    return connect(project.url, fn)


def migration_status(project, labels: tuple[str, ...] = (), plan: bool = False) -> Status:
    """Every migration with its applied state, plus revisions the database has but files lack.

    ``labels`` keeps the trees they name (Django's ``showmigrations shop``); for a ``plan``,
    with what those trees' migrations depend on in other trees.
    """
    from sqlmanage.database import display_url

    history = project.history
    trees = tuple(dict.fromkeys(history.tree_label(label) for label in labels)) or history.trees
    database_heads, records = read_database_state(project)
    records = records or {}
    inside = history.inside_squashes(database_heads)
    partly = {
        squash.migration.revision: (
            len(squash.replaced) - len(squash.remaining(r)),
            len(squash.replaced),
        )
        for r, squash in inside.items()
    }
    applied = history.ancestors(
        [p for r, squash in inside.items() for p in squash.migration.parents]
        + [r for r in database_heads if r not in inside]
    )
    states = []
    for migration in history.migrations:
        found = records.get(migration.revision)
        if found is not None and found.running:
            states.append(
                MigrationState(migration, migration.revision in applied, half_applied=True)
            )
        elif migration.revision in partly:
            states.append(MigrationState(migration, False, partly=partly[migration.revision]))
        elif migration.revision in applied and found is not None and found.applied:
            states.append(
                MigrationState(
                    migration,
                    True,
                    found.applied_at,
                    history.changed_since(migration, found.checksum),
                )
            )
        else:
            states.append(MigrationState(migration, migration.revision in applied))
    if labels:
        kept = {m.revision for m in history.migrations if history.tree_of[m.revision] in trees}
        if plan:
            kept = history.ancestors(kept)
        states = [s for s in states if s.migration.revision in kept]
    return Status(
        label=", ".join(trees) or project.label,
        tree_of=history.tree_of,
        trees=trees,
        database=display_url(project.url),
        migrations=states,
        database_heads=database_heads,
        missing_files=tuple(
            r for r in database_heads if r not in history.by_id and r not in inside
        ),
        heads=history.heads,
    )
