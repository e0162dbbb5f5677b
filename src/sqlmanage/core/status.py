"""Where the database stands against the migration files."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmanage.history import Migration


@dataclass(frozen=True)
class MigrationState:
    migration: Migration
    applied: bool


@dataclass
class Status:
    """The migrations in apply order, each applied or not, and what the database records."""

    label: str
    database: str
    migrations: list[MigrationState]
    database_heads: tuple[str, ...]
    missing_files: tuple[str, ...]
    heads: tuple[str, ...]

    @property
    def applied_count(self) -> int:
        return sum(state.applied for state in self.migrations)

    @property
    def pending_count(self) -> int:
        return len(self.migrations) - self.applied_count


def read_database_heads(project) -> tuple[str, ...]:
    """The revisions in the version table; nothing for a database not created yet. Read-only."""
    from sqlmanage.database import connect, is_empty_sqlite

    url = project.url
    if is_empty_sqlite(url):
        return ()
    settings = project.settings

    def read(connection) -> tuple[str, ...]:
        from alembic.runtime.migration import MigrationContext

        context = MigrationContext.configure(
            connection,
            opts={
                "version_table": settings.version_table,
                "version_table_schema": settings.version_table_schema,
            },
        )
        return tuple(context.get_current_heads())

    return connect(url, read)


def migration_status(project) -> Status:
    """Every migration with its applied state, plus revisions the database has but files lack."""
    from sqlmanage.database import display_url

    history = project.history
    database_heads = read_database_heads(project)
    applied = history.ancestors(database_heads)
    return Status(
        label=project.label,
        database=display_url(project.url),
        migrations=[MigrationState(m, m.revision in applied) for m in history.migrations],
        database_heads=database_heads,
        missing_files=tuple(r for r in database_heads if r not in history.by_id),
        heads=history.heads,
    )
