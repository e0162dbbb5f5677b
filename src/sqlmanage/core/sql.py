"""SQL for migrations without touching the database: ``sqlmigrate`` and ``migrate --sql``.

Each migration's ``upgrade()`` (or ``downgrade()``) runs in Alembic's offline mode for the
project's dialect, through Operations that write a ``-- Add column ...`` comment before each
operation. SQLite's batch mode must read the table it rebuilds, which offline mode cannot:
on SQLite the history is replayed into an in-memory database (the shadow) that follows the
steps, and Alembic gets the table from it as ``copy_from``. ``migrate --sql`` adds the
version-table statements, through Alembic's own HeadMaintainer, and wraps each migration in
BEGIN/COMMIT where the database runs DDL in a transaction, as ``migrate`` itself does.
"""

from __future__ import annotations

from contextlib import contextmanager
from io import StringIO

from alembic.operations import BatchOperations, Operations
from alembic.operations.batch import BatchOperationsImpl
from alembic.runtime.migration import HeadMaintainer, MigrationContext, RevisionStep

from sqlmanage.core.operations import describe
from sqlmanage.core.plan import TRANSACTIONAL_DDL, Step
from sqlmanage.core.timeouts import migration_timeouts, with_timeouts_sql
from sqlmanage.errors import MigrationFileError


def steps_sql(project, steps: list[Step], start: tuple[str, ...], versions: bool) -> str:
    """The SQL of ``steps`` from a database at ``start``; ``versions`` adds the version table's."""
    history = project.history
    dialect = project.url.get_dialect()()
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
    transactional = dialect.name in TRANSACTIONAL_DDL
    shadow = None
    if dialect.name == "sqlite":
        before = history.ancestors(start)
        shadow = Shadow(project, [m for m in history.migrations if m.revision in before])
    heads = HeadMaintainer(context, start)
    if versions and not start:
        context._version.create(context.connection)
    operations = annotated_operations(context, shadow)
    chunks = [buffer.getvalue().strip()]
    try:
        for step in steps:
            buffer.seek(0)
            buffer.truncate()
            script = history.script.get_revision(step.migration.revision)
            operations._install_proxy()
            try:
                _run_body(script, step)
            finally:
                operations._remove_proxy()
            if versions:
                heads.update_to_step(RevisionStep(history.script.revision_map, script, step.forward))
            body = buffer.getvalue().strip()
            if transactional and body:
                body = f"BEGIN;\n{body}\nCOMMIT;"
                if dialect.name == "postgresql":  # what migrate runs: each transaction bounded
                    body = with_timeouts_sql(body, migration_timeouts(project))
            if versions:
                direction = "upgrade" if step.forward else "downgrade"
                body = f"-- Running {direction}: {step.migration.name}\n\n{body}"
            chunks.append(body)
            if shadow is not None:
                shadow.follow(script, step.forward)
    finally:
        if shadow is not None:
            shadow.close()
    text = "\n\n".join(chunk for chunk in chunks if chunk)
    return text + "\n" if text else ""


def migration_sql(project, name: str, backwards: bool = False) -> str:
    """The SQL that applying (or, ``backwards``, unapplying) one migration runs."""
    history = project.history
    migration = history.find(name)
    start = (migration.revision,) if backwards else migration.parents
    return steps_sql(project, [Step(migration, not backwards)], start, versions=False)


def _run_body(script, step: Step) -> None:
    """The migration's own function; its failures are the migration's, named as such."""
    function = script.module.upgrade if step.forward else script.module.downgrade
    try:
        function()
    except NotImplementedError as exc:
        raise MigrationFileError(
            f"{step.migration.name} cannot be unapplied: its downgrade() raises "
            f"NotImplementedError{': ' + str(exc) if str(exc) else ''}."
        ) from exc
    except Exception as exc:
        raise MigrationFileError(
            f"{step.migration.name} cannot be turned into SQL without a database: "
            f"{type(exc).__name__}: {exc}",
            hint="A migration that reads from the database (op.get_bind()) only runs online; "
            "use 'python manage.py migrate --plan' to see what it does.",
        ) from exc


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


class Shadow:
    """An in-memory SQLite database that follows the steps, for batch mode to reflect."""

    def __init__(self, project, migrations):
        from sqlalchemy.pool import StaticPool

        from sqlmanage.core.baseline import replay
        from sqlmanage.database import create_engine, parse_url

        self.project = project
        self.engine = create_engine(parse_url("sqlite://"), poolclass=StaticPool)
        self.connection = self.engine.connect()
        replay(project, self.connection, migrations)

    def follow(self, script, forward: bool) -> None:
        """Apply the step just rendered, so the next batch operation sees its result."""
        context = MigrationContext.configure(
            self.connection, opts=self.project.context_options("sqlite", with_metadata=False)
        )
        with Operations.context(context):
            (script.module.upgrade if forward else script.module.downgrade)()
        self.connection.commit()

    def table(self, name: str, schema: str | None):
        """The table as it stands before this step; None if the step creates it."""
        from sqlalchemy import MetaData, Table, inspect

        if not inspect(self.connection).has_table(name, schema=schema):
            return None
        return Table(name, MetaData(), schema=schema, autoload_with=self.connection)

    def close(self) -> None:
        self.connection.close()
        self.engine.dispose()
