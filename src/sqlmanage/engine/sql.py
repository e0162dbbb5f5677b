"""SQL for migrations without touching the database: ``sqlmigrate`` and ``migrate --sql``.

The steps run in Alembic's offline mode, in the environment every run gets
(``alembic_env.run_steps``: the models' metadata, ``context``, ``autocommit_block()``),
through Operations that write a ``-- Add column ...`` comment before each operation.
``migrate --sql`` is Alembic's own ``upgrade --sql`` script (version table, one BEGIN/COMMIT
per migration where DDL is transactional); ``sqlmigrate`` keeps each migration's own
statements. SQLite's batch mode must read the table it rebuilds, which offline mode cannot:
on SQLite the history is replayed into an in-memory database (the shadow) that follows the
steps, and Alembic gets the table from it as ``copy_from``.
"""

from __future__ import annotations

from contextlib import contextmanager
from io import StringIO
from typing import Literal

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

from sqlmanage.engine.autodetect.operations import describe
from sqlmanage.engine.plan import TRANSACTIONAL_DDL, Step
from sqlmanage.engine.timeouts import migration_timeouts, with_timeouts_sql
from sqlmanage.errors import MigrationFileError


def steps_sql(
    project, steps: list[Step], start: tuple[str, ...], versions: bool, needs: tuple[str, ...] = ()
) -> str:
    """The SQL of ``steps`` from a database at ``start``; ``versions`` adds the version table's.

    ``needs`` are revisions of other trees the steps depend on (``depends_on``): applied
    in the SQLite shadow too, though the version table's start is ``start`` alone.
    """
    from sqlmanage.alembic_env import run_steps
    from sqlmanage.engine.baseline import revision_step

    history = project.history
    buffer = StringIO()
    shadow = None
    if project.url.get_backend_name() == "sqlite":
        before = history.ancestors(start + needs)
        shadow = Shadow(project, [m for m in history.migrations if m.revision in before])
    bodies: list[str] = []

    def alembic_steps(heads, context):
        for step in steps:
            alembic_step = revision_step(history, step.migration, step.forward)
            alembic_step.migration_fn = _rendered(
                context, step, alembic_step, buffer, bodies, shadow
            )
            yield alembic_step

    try:
        run_steps(
            project, alembic_steps, as_sql=True, output_buffer=buffer, starting_rev=start or None
        )
    finally:
        if shadow is not None:
            shadow.close()
    if versions:
        text = buffer.getvalue().strip()
    else:
        transactional = project.url.get_backend_name() in TRANSACTIONAL_DDL
        text = "\n\n".join(
            f"BEGIN;\n{body}\nCOMMIT;" if transactional else body for body in bodies if body
        )
    if text and project.url.get_backend_name() == "postgresql":  # what migrate runs: bounded
        text = with_timeouts_sql(text, migration_timeouts(project))
    return text + "\n" if text else ""


def _rendered(context, step: Step, alembic_step, buffer: StringIO, bodies: list[str], shadow):
    """The step's migration function, run through annotating Operations, its SQL kept."""
    import functools

    from sqlmanage.engine.alembic_internals import installed_as_op

    script = alembic_step.revision

    @functools.wraps(alembic_step.migration_fn)  # Alembic names the step after its function
    def run(**kw) -> None:
        begin = buffer.tell()
        with installed_as_op(annotated_operations(context, shadow)):
            _run_body(script, step)
            bodies.append(buffer.getvalue()[begin:].strip())

    return run


def migration_sql(project, name: str, backwards: bool = False, label: str | None = None) -> str:
    """The SQL that applying (or, ``backwards``, unapplying) one migration (of the tree
    ``label`` names) runs."""
    history = project.history
    migration = history.find(name, label)
    start = (migration.revision,) if backwards else migration.parents
    return steps_sql(
        project,
        [Step(migration, not backwards)],
        start,
        versions=False,
        needs=migration.dependencies,
    )


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
            hint="Offline SQL runs the migration without a database: code that reads from it "
            "(op.get_bind()) or a value of no SQL type (sa.column() without one) cannot be "
            "rendered. 'python manage.py migrate --plan' shows what it does.",
        ) from exc


def annotated_operations(context: MigrationContext, shadow=None) -> Operations:
    """Operations that write a describing comment before each operation's SQL.

    ``invoke`` and ``batch_alter_table`` are replaced on the instance (Alembic's ``op``
    proxy is bound to the Operations class itself, so a subclass could not be installed).
    With a ``shadow``, every operation is also applied to it as it is rendered, so a batch
    block reads the table as the migration has left it so far.
    """
    operations = Operations(context)
    operations.invoke = _annotating(  # type: ignore[method-assign]
        context, operations.invoke, shadow.invoke if shadow else None
    )

    @contextmanager
    def batch_alter_table(
        table_name, schema=None, recreate="auto", partial_reordering=None, copy_from=None, **kwargs
    ):
        if copy_from is None and shadow is not None:
            copy_from = shadow.table(table_name, schema)
        recorded: list = []
        with Operations.batch_alter_table(
            operations,
            table_name,
            schema=schema,
            recreate=recreate,
            partial_reordering=partial_reordering,
            copy_from=copy_from,
            **kwargs,
        ) as batch_op:
            if recreate != "always" and context.dialect.name != "sqlite":
                # No table rebuild: each operation is its own ALTER, shown under its own comment
                # rather than every comment first and the SQL of the block after them.
                batch_op.invoke = operations.invoke  # type: ignore[method-assign]
            else:
                batch_op.invoke = _annotating(  # type: ignore[method-assign]
                    context, batch_op.invoke, recorded.append
                )
            yield batch_op
        if shadow is not None:
            shadow.batch(table_name, schema, recreate, recorded)

    operations.batch_alter_table = batch_alter_table  # type: ignore[method-assign,assignment]
    return operations


def _annotating(context: MigrationContext, invoke, also=None):
    def annotated_invoke(operation):
        context.impl.static_output(f"--\n-- {describe(operation).text}\n--")
        # The shadow gets its own copy, taken before the operation binds its columns and
        # indexes to a table: a second run of the same objects would find them taken.
        copied = _unbound_copy(operation) if also is not None else None
        result = invoke(operation)
        if also is not None:
            also(copied)
        return result

    return annotated_invoke


def _unbound_copy(operation):
    import copy

    try:
        return copy.deepcopy(operation)
    except Exception:  # an operation holding something that cannot be copied: share it
        return operation


class Shadow:
    """An in-memory SQLite database that follows the rendered operations, for batch mode to
    reflect."""

    def __init__(self, project, migrations):
        from sqlalchemy.pool import StaticPool

        from sqlmanage.database import create_engine, parse_url
        from sqlmanage.engine.baseline import replay

        self.engine = create_engine(parse_url("sqlite://"), poolclass=StaticPool)
        self.connection = self.engine.connect()
        replay(project, self.connection, migrations)
        self.operations = Operations(
            MigrationContext.configure(self.connection, opts=project.context_options("sqlite"))
        )

    def invoke(self, operation) -> None:
        self.operations.invoke(operation)

    def batch(
        self,
        table_name: str,
        schema: str | None,
        recreate: Literal["auto", "always", "never"],
        operations: list,
    ) -> None:
        with self.operations.batch_alter_table(
            table_name, schema=schema, recreate=recreate
        ) as batch_op:
            for operation in operations:
                batch_op.invoke(operation)

    def table(self, name: str, schema: str | None):
        """The table as the migration has left it so far; None if it does not exist yet."""
        from sqlalchemy import MetaData, Table, inspect

        if not inspect(self.connection).has_table(name, schema=schema):
            return None
        return Table(name, MetaData(), schema=schema, autoload_with=self.connection)

    def close(self) -> None:
        self.connection.close()
        self.engine.dispose()
