"""A database whose schema is exactly what the migration history produces, to compare with.

makemigrations compares the models with the history, not with whatever the developer's
database happens to hold. When the configured database is exactly at the wanted revision
it is used as it is (nothing to build). Otherwise the migrations are replayed into a
scratch database of the same dialect: an in-memory SQLite database for SQLite, a temporary
database on the same PostgreSQL or MariaDB server, dropped afterwards whatever happens
(an error, Ctrl-C). On PostgreSQL that database gets the configured one's search path, as the
server resolved it, and the schemas in it: the replay puts every table where ``migrate`` did.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

from sqlmanage.errors import SqlmanageError

T = TypeVar("T")
SCRATCH_PREFIX = "sqlmanage_scratch_"


def with_baseline(
    project, fn: Callable[..., T], revision: str | tuple[str, ...] | None = None
) -> T:
    """Call ``fn(connection)`` on a database at ``revision`` (the head by default, or "base";
    a tuple of revisions for a database at all of them, as across trees)."""
    from sqlmanage.database import connect, is_empty_sqlite
    from sqlmanage.engine.status import read_database_heads

    history = project.history
    if revision == "base":
        wanted: tuple[str, ...] = ()
    elif isinstance(revision, tuple):
        wanted = revision
    else:
        wanted = (revision,) if revision else history.heads
    if not is_empty_sqlite(project.url) and set(read_database_heads(project)) == set(wanted):
        return connect(project.url, fn)
    migrations = [m for m in history.migrations if m.revision in history.ancestors(wanted)]
    backend = project.url.get_backend_name()
    if backend == "sqlite":
        return _in_memory_sqlite(project, migrations, fn)
    if backend in ("postgresql", "mysql", "mariadb"):
        return _scratch_database(project, migrations, fn)
    raise SqlmanageError(
        f"makemigrations cannot build a scratch {backend} database to compare with.",
        hint="Run 'python manage.py migrate' first: with the database at the latest migration "
        "makemigrations compares with it directly.",
    )


def replay(project, connection, migrations) -> None:
    """Run the migrations' upgrades on ``connection``, one after the other.

    They run as under ``migrate``: in Alembic's environment, with the models' metadata, one
    transaction per migration and the version table kept, so a migration that asks for
    ``context.get_bind()`` or an ``autocommit_block()`` replays as it applies.
    """
    from sqlmanage.alembic_env import run_steps
    from sqlmanage.database import first_line

    history = project.history
    running: list = []
    if migrations and not migrations[0].parents:
        run_baseline(project, connection)

    def steps(heads, context):
        for migration in migrations:
            step = revision_step(history, migration, forward=True)
            running[:] = [migration]
            yield step

    try:
        run_steps(project, steps, connection)
    except SqlmanageError:
        raise
    except Exception as exc:
        failed = running[0].name if running else "its start"
        raise SqlmanageError(
            f"Replaying the migration history failed at {failed}: "
            f"{type(exc).__name__}: {first_line(exc)}",
            hint="makemigrations builds the schema from the migration files; fix that "
            "migration first.",
        ) from exc
    if connection.in_transaction():
        connection.commit()


def run_baseline(project, connection, *, only_if_empty: bool = False, commit: bool = True) -> bool:
    """Create what the history expects before its first migration (the BASELINE setting).

    Some histories start from tables their application creates itself (MLflow's first
    migration alters tables ``create_all`` made). Every replay runs the hook on its empty
    scratch database; ``migrate`` runs it on an empty database when BASELINE_ON_MIGRATE is
    set (``only_if_empty``: no table but sqlmanage's and Alembic's own), in its locked
    bookkeeping transaction (``commit=False``: the caller commits, and so keeps the lock).
    """
    baseline = project.hook("BASELINE")
    if baseline is None:
        return False
    if only_if_empty:
        from sqlalchemy import inspect

        from sqlmanage.engine.audit import AUDIT_TABLE

        settings = project.settings
        inspector = inspect(connection)
        own = {settings.version_table, AUDIT_TABLE}
        if set(inspector.get_table_names(schema=settings.version_table_schema)) - own:
            return False
        if settings.version_table_schema and set(inspector.get_table_names()) - own:
            return False
    try:
        baseline(connection)
    except Exception as exc:
        from sqlmanage.database import first_line

        raise SqlmanageError(
            f"The baseline {project.settings.baseline} failed: {type(exc).__name__}: {first_line(exc)}",
            hint="BASELINE names a function that takes a connection and creates the tables the "
            "first migration expects (e.g. OldBase.metadata.create_all(connection)).",
        ) from exc
    if commit and connection.in_transaction():
        connection.commit()
    return True


def revision_step(history, migration, forward: bool):
    """Alembic's step that runs one migration of the history, up or down."""
    from sqlmanage.engine.alembic_internals import revision_step as alembic_revision_step

    return alembic_revision_step(
        history.revision_map_for(migration), history.alembic_script(migration), forward
    )


def _in_memory_sqlite(project, migrations, fn):
    from sqlalchemy.pool import StaticPool

    from sqlmanage.database import create_engine, parse_url

    engine = create_engine(parse_url("sqlite://"), poolclass=StaticPool)
    try:
        with engine.connect() as connection:
            replay(project, connection, migrations)
            return fn(connection)
    finally:
        engine.dispose()


def _scratch_database(project, migrations, fn):
    """Create a uniquely named database beside the configured one; always drop it."""
    from sqlalchemy.exc import DBAPIError

    from sqlmanage.database import (
        connect,
        create_database_beside,
        display_url,
        drop_database,
        first_line,
        run_autocommit,
    )

    url = project.url
    backend = url.get_backend_name()
    name = f"{SCRATCH_PREFIX}{uuid.uuid4().hex[:12]}"
    # The schemas the configured database resolves names in (read there, when it exists).
    inspect = search_path_schemas if backend == "postgresql" else None
    try:
        admin_url, schemas = create_database_beside(url, name, inspect)
    except (DBAPIError, SqlmanageError) as exc:
        raise SqlmanageError(
            f"makemigrations could not create a scratch database on {display_url(url)} to "
            f"replay the migrations into: {first_line(exc.__cause__ or exc)}",
            hint="Grant the user CREATE DATABASE, or run 'python manage.py migrate' first: "
            "with the database at the latest migration it compares with it directly.",
        ) from None
    schemas = schemas or []
    try:
        if schemas:
            path = ", ".join(_quoted(schema) for schema in schemas)
            run_autocommit(admin_url, f"ALTER DATABASE {name} SET search_path TO {path}")

        def run(connection):
            create_schemas(connection, schemas)
            replay(project, connection, migrations)
            return fn(connection)

        return connect(url.set(database=name), run)
    finally:
        drop_database(admin_url, name)


def search_path_schemas(connection) -> list[str]:
    """The schemas PostgreSQL resolves unqualified names in, first one first, as the server
    computed them for this connection (the role's, the database's and the URL's
    ``search_path`` settled, ``$user`` resolved, missing schemas left out)."""
    rows = connection.exec_driver_sql(
        "SELECT schema FROM unnest(current_schemas(false)) WITH ORDINALITY AS path(schema, position) "
        "ORDER BY position"
    )
    return [schema for (schema,) in rows if not schema.startswith("pg_")]


def create_schemas(connection, schemas: list[str]) -> None:
    """The configured database's search-path schemas, in the scratch database too: the
    replay then creates every table in the schema ``migrate`` created it in, and a
    ``search_path`` without ``public`` has a schema to create in."""
    for schema in schemas:
        connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {_quoted(schema)}")
    if schemas:
        connection.commit()


def _quoted(schema: str) -> str:
    from sqlalchemy.dialects import postgresql

    return postgresql.dialect().identifier_preparer.quote_identifier(schema)
