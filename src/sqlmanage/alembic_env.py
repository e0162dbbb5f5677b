"""The body of every project's ``env.py``, shared by ``alembic`` and ``manage.py``, and the
one owner of Alembic's process-wide state.

Because the library owns this code, ``alembic upgrade head`` and ``manage.py migrate`` run
the same configuration: the same URL, models, comparison options and batch mode. It follows
Alembic's cookbook: a connection (Engine or Connection) handed in through
``config.attributes["connection"]`` is used as is; offline mode renders SQL from the URL
alone; async URLs run through ``run_sync``.

Alembic keeps a run's state in module globals (the ``context`` and ``op`` proxies). Every
run sqlmanage starts goes through ``alembic_run``, which holds one process-wide lock for the
run (so runs from several threads take turns instead of sharing, and breaking, the proxies),
hands env.py the run's ``RunOptions`` and takes them back on exit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config

    from sqlmanage.project import Project

_RUN_ATTRIBUTE = "sqlmanage.run"  # config.attributes key, set only inside alembic_run
_ALEMBIC_STATE = threading.RLock()  # re-entrant: a migration may start a run of its own
_runs_entered = 0  # changed only under _ALEMBIC_STATE


@dataclass
class RunOptions:
    """What a run started by sqlmanage hands to env.py (the plain ``alembic`` CLI hands none).

    ``configure`` holds extra ``context.configure`` arguments (``on_version_apply``);
    ``lock_timeout`` bounds the wait for the migration lock and ``on_wait`` hears the notice
    while waiting; ``prepare`` is called with the locked connection before migrating.
    """

    project: Project
    configure: dict = field(default_factory=dict)
    lock_timeout: float | None = None
    on_wait: Callable[[str], None] | None = None
    prepare: Callable[[object], None] | None = None


@contextmanager
def alembic_run(options: RunOptions, config: Config | None = None) -> Iterator[Config]:
    """The one way into Alembic's process-wide state; yields the Alembic Config of the run
    (``config``, by default the project's).

    Inside, env.py finds ``options``; the batch default of ``alembic_internals`` applies.
    One run at a time in the process: another thread's run waits here until this one is out.
    On the way out the config holds nothing of the run, and ``op`` is empty.
    """
    from sqlmanage.engine.alembic_internals import batch_reflects_its_table_only, clear_op

    global _runs_entered
    config = config or options.project.config
    with _ALEMBIC_STATE:
        _runs_entered += 1
        config.attributes[_RUN_ATTRIBUTE] = options
        try:
            with batch_reflects_its_table_only():
                yield config
        finally:
            del config.attributes[_RUN_ATTRIBUTE]
            _runs_entered -= 1
            if not _runs_entered:  # a failed migration leaves Alembic's op installed
                clear_op()


def run_migrations() -> None:
    """Run the migrations Alembic asked for, online or offline."""
    from alembic import context

    from sqlmanage.project import Project

    config = context.config
    options = config.attributes.get(_RUN_ATTRIBUTE)
    if options is None:  # the plain alembic CLI, or a caller's own command.upgrade(config)
        _configure_logging(config)
        options = RunOptions(Project.from_alembic_config(config))
        with alembic_run(options, config):
            _run_migrations(context, config, options)
    else:
        _run_migrations(context, config, options)


def _run_migrations(context, config, options: RunOptions) -> None:
    project = options.project
    extra = options.configure

    if context.is_offline_mode():
        configure(context, project, **extra)
        with context.begin_transaction():
            context.run_migrations()
        return

    def run(connection, on_version_apply: tuple = ()) -> None:
        callbacks = (*_as_tuple(extra.get("on_version_apply")), *on_version_apply)
        configure(
            context,
            project,
            connection,
            transaction_per_migration=True,
            **{**extra, **({"on_version_apply": callbacks} if callbacks else {})},
        )
        with context.begin_transaction():
            context.run_migrations()

    def locked_run(connection) -> None:
        """Our own connection: one run at a time (a caller's connection is the caller's).

        The bookkeeping transaction and every migration's take the lock themselves (see
        core.lock), and each migration first checks, under the lock, that the version table
        is still where this run left it; when another run moved it, the run starts over from
        what is there now, so a migration is never applied twice. SIGTERM/SIGINT cancel the
        statement running on the connection (core.cancel).
        """
        from sqlmanage.engine.cancel import cancel_on_signal
        from sqlmanage.engine.lock import RunOutdated, migration_lock

        on_wait = options.on_wait or _log_wait
        with (
            cancel_on_signal(connection),
            migration_lock(connection, project.settings, options.lock_timeout, on_wait) as lock,
        ):
            lock.hold()
            _ensure_version_table(connection, project.settings)
            if options.prepare is not None:
                options.prepare(connection)
            connection.commit()
            with _steps_checked_under(lock, project.settings) as remember_heads:
                while True:
                    try:
                        run(connection, (remember_heads,))
                        return
                    except RunOutdated:
                        connection.rollback()

    _with_connection(config.attributes.get("connection"), project, run, locked_run)


def configure(context, project, connection=None, **extra) -> None:
    """``context.configure`` as every run of the project's migrations gets it.

    The one place the environment is built, for env.py (``alembic`` and ``migrate``) and for
    sqlmanage's own runs (the history replay, offline SQL): the same options, and always the
    models' metadata, because Alembic takes the naming convention of constraints a migration
    leaves unnamed from ``target_metadata``, and migrations may rely on the models being
    imported. Without a connection it is offline mode, rendering SQL from the URL alone.
    """
    if connection is None:
        url = project.url
        context.configure(
            url=url,
            literal_binds=True,
            dialect_opts={"paramstyle": "named"},
            **project.context_options(url.get_backend_name()),
            **extra,
        )
    else:
        context.configure(
            connection=connection, **project.context_options(connection.dialect.name), **extra
        )


def run_steps(project, steps, connection=None, *, as_sql: bool = False, **extra) -> None:
    """Run Alembic's migration function ``steps`` in the environment env.py would build.

    For sqlmanage's own runs: the replay into a scratch database and offline SQL. They get
    a real ``EnvironmentContext`` (so ``context.get_bind()``, ``op.get_context()`` and
    ``autocommit_block()`` work as under ``alembic``) and the options of ``configure``, but
    never execute env.py: a project's own env.py may connect wherever it likes, and these
    runs must touch nothing but the connection they are given. ``extra`` goes to
    ``context.configure`` (``output_buffer``, ``starting_rev``, ...).
    """
    from alembic.runtime.environment import EnvironmentContext

    with (
        alembic_run(RunOptions(project)) as config,
        EnvironmentContext(config, project.history.script, fn=steps, as_sql=as_sql) as context,
    ):
        configure(context, project, connection, transaction_per_migration=True, **extra)
        with context.begin_transaction():
            context.run_migrations()


def _ensure_version_table(connection, settings) -> None:
    """Create Alembic's version table under the lock, not in the unlocked read that follows."""
    from alembic.runtime.migration import MigrationContext

    from sqlmanage.engine.alembic_internals import ensure_version_table

    ensure_version_table(
        MigrationContext.configure(
            connection,
            opts={
                "version_table": settings.version_table,
                "version_table_schema": settings.version_table_schema,
            },
        )
    )


@contextmanager
def _steps_checked_under(lock, settings) -> Iterator[Callable]:
    """Wrap Alembic's migration function: each step takes the lock in its own transaction
    and raises RunOutdated if the version table is not where this run's last step left it.

    Alembic reads the heads before the first step outside any lock and keeps its own copy
    of them; the check is what makes that copy safe to use. Yields the ``on_version_apply``
    callback that tells the heads after each step (read in the step's own, still locked,
    transaction), for the run to configure.
    """
    from sqlalchemy import column, select, table

    from sqlmanage.engine.alembic_internals import running_environment_options
    from sqlmanage.engine.lock import RunOutdated

    versions = table(
        settings.version_table, column("version_num"), schema=settings.version_table_schema
    )
    read_heads = select(versions.c.version_num)  # the table exists: made under the lock first
    expected: list[set] = [set()]

    def remember_heads(ctx, step, heads, run_args) -> None:
        expected[0] = set(heads)

    options = running_environment_options()
    original = options.get("fn")
    if original is None:
        yield remember_heads
        return

    def checked(heads, migration_context):
        expected[0] = set(heads)
        connection = migration_context.connection
        for step in original(heads, migration_context):
            # The lock and the step's SET LOCALs go in one statement; the version table is
            # read in the next (sent with it where the driver can): a statement's snapshot
            # is taken when it starts, before the lock is granted, so a read in the same
            # statement could miss another run's commit made while it waited.
            settings = getattr(step, "transaction_settings", ())
            applied, found = lock.hold_and_read(connection, settings, read_heads)
            if applied and settings:
                step.settings_applied = True
            if found != expected[0]:
                raise RunOutdated()
            yield step

    options["fn"] = checked
    try:
        yield remember_heads
    finally:
        options["fn"] = original


def _as_tuple(callbacks) -> tuple:
    if callbacks is None:
        return ()
    return tuple(callbacks) if isinstance(callbacks, (list, tuple)) else (callbacks,)


def _log_wait(message: str) -> None:
    import logging

    logging.getLogger("alembic.runtime.migration").info(message)


def _with_connection(connectable, project, run, locked_run) -> None:
    """Call ``run`` with a sync Connection from whatever the caller handed in, or our own.

    A Connection handed in belongs to the caller, transaction included (Alembic's recipe for
    chaining commands in one transaction): only connections opened here are committed.
    """
    from sqlalchemy.engine import Connection, Engine

    if connectable is None:
        from sqlmanage.database import connect

        connect(project.url, _committing(locked_run))
    elif isinstance(connectable, Connection):
        run(connectable)
    elif isinstance(connectable, Engine):
        with connectable.connect() as connection:
            _committing(run)(connection)
    else:
        import asyncio

        asyncio.run(_run_async(connectable, run))


def _committing(run):
    """``run``, then commit what is left open (the version table's creation, at least)."""

    def run_and_commit(connection) -> None:
        run(connection)
        if connection.in_transaction():
            connection.commit()

    return run_and_commit


async def _run_async(connectable, run) -> None:
    from sqlalchemy.ext.asyncio import AsyncConnection

    if isinstance(connectable, AsyncConnection):
        await connectable.run_sync(run)
    else:
        async with connectable.connect() as connection:
            await connection.run_sync(_committing(run))


def _configure_logging(config) -> None:
    """Under the plain ``alembic`` CLI, use alembic.ini's logging, as Alembic's env.py does."""
    from configparser import ConfigParser

    if not config.config_file_name:
        return
    parser = ConfigParser()
    parser.read(config.config_file_name)
    if parser.has_section("loggers"):
        from logging.config import fileConfig

        fileConfig(config.config_file_name, disable_existing_loggers=False)
