"""The SQL of one migration, each operation introduced by a comment, without a database.

Runs the migration's ``upgrade()`` (or ``downgrade()``) in Alembic's offline mode for the
project's dialect, through an ``Operations`` subclass that writes ``-- Add column ...``
before each operation. SQLite's batch mode must read the table it rebuilds: for that, the
migrations before this one are replayed into an in-memory SQLite database (built only when a
batch operation needs it) and the table is handed to Alembic as ``copy_from``.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from io import StringIO

from alembic.operations import BatchOperations, Operations
from alembic.operations.batch import BatchOperationsImpl
from alembic.runtime.migration import MigrationContext

from sqlmanage.core.operations import describe

TRANSACTIONAL_DDL = {"postgresql", "sqlite"}


@dataclass
class MigrationSQL:
    name: str
    dialect: str
    sql: str


def migration_sql(project, name: str, backwards: bool = False) -> MigrationSQL:
    """The SQL that applying (or, ``backwards``, unapplying) one migration runs."""
    history = project.history
    migration = history.find(name)
    url = project.url
    dialect = url.get_dialect()()
    buffer = StringIO()
    context = MigrationContext.configure(
        dialect=dialect,
        opts={
            "as_sql": True,
            "output_buffer": buffer,
            "literal_binds": True,
            **project.context_options(dialect.name, with_metadata=False),
        },
    )
    before = history.ancestors([migration.revision] if backwards else migration.parents)
    shadow = None
    if dialect.name == "sqlite":
        shadow = _Shadow(project, [m for m in history.migrations if m.revision in before])
    operations = annotated_operations(context, shadow)
    module = history.script.get_revision(migration.revision).module
    operations._install_proxy()
    try:
        (module.downgrade if backwards else module.upgrade)()
    finally:
        operations._remove_proxy()
        if shadow is not None:
            shadow.close()
    body = buffer.getvalue().strip()
    if dialect.name in TRANSACTIONAL_DDL and body:
        body = f"BEGIN;\n{body}\nCOMMIT;"
    return MigrationSQL(migration.name, dialect.name, body + "\n" if body else "")


def annotated_operations(context: MigrationContext, shadow=None) -> Operations:
    """Operations that write a describing comment before each operation's SQL.

    ``invoke`` and ``batch_alter_table`` are replaced on the instance (Alembic's ``op``
    proxy is bound to the Operations class itself, so a subclass could not be installed).
    """
    operations = Operations(context)
    operations.invoke = _annotating(context, operations.invoke)

    @contextmanager
    def batch_alter_table(table_name, schema=None, recreate="auto", partial_reordering=None,
                          copy_from=None, table_args=(), table_kwargs=None, reflect_args=(),
                          reflect_kwargs=None, naming_convention=None):
        if copy_from is None and shadow is not None:
            copy_from = shadow.table(table_name, schema)
        impl = BatchOperationsImpl(
            operations, table_name, schema, recreate, copy_from, table_args, table_kwargs or {},
            reflect_args, reflect_kwargs or {}, naming_convention, partial_reordering,
        )
        batch_op = BatchOperations(context, impl=impl)
        batch_op.invoke = _annotating(context, batch_op.invoke)
        yield batch_op
        impl.flush()

    operations.batch_alter_table = batch_alter_table
    return operations


def _annotating(context: MigrationContext, invoke):
    def annotated_invoke(operation):
        context.impl.static_output(f"--\n-- {describe(operation).text}\n--")
        return invoke(operation)

    return annotated_invoke


class _Shadow:
    """An in-memory SQLite database at the schema before the migration, for batch reflection."""

    def __init__(self, project, migrations):
        """Replay ``migrations``; done before the migration's own ``op`` proxy is installed."""
        from sqlalchemy.pool import StaticPool

        from sqlmanage.database import create_engine, parse_url

        engine = create_engine(parse_url("sqlite://"), poolclass=StaticPool)
        self.connection = engine.connect()
        context = MigrationContext.configure(
            self.connection, opts=project.context_options("sqlite", with_metadata=False)
        )
        script = project.history.script
        with Operations.context(context):
            for migration in migrations:
                script.get_revision(migration.revision).module.upgrade()
        self.connection.commit()

    def table(self, name: str, schema: str | None):
        """The table as it stands before the migration; None if the migration creates it."""
        from sqlalchemy import MetaData, Table, inspect

        if not inspect(self.connection).has_table(name, schema=schema):
            return None
        return Table(name, MetaData(), schema=schema, autoload_with=self.connection)

    def close(self) -> None:
        self.connection.close()
