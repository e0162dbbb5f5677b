"""Run a plan through Alembic (``migrate``), or render it as SQL (``migrate --sql``).

The steps come from ``plan.plan_migrations`` and are handed to Alembic as its migration
function, so the project's env.py (and so ``sqlmanage.alembic_env``) runs them with the same
configuration as the plain ``alembic`` CLI, under the migration lock, each step recorded in
the audit trail. Progress goes to a callback, never to a stream: ``on_event("plan", plan)``,
``("start", step)``, ``("done", step, seconds)``, ``("wait", notice)`` while another run
holds the lock, ``("changed", migrations)`` for applied migrations edited since.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlmanage.database import first_line
from sqlmanage.engine import audit
from sqlmanage.engine.plan import (
    TRANSACTIONAL_DDL,
    Plan,
    Step,
    is_zero,
    plan_migrations,
    require_recordable_revisions,
    split_target,
    with_label,
)
from sqlmanage.engine.timeouts import bound_step, migration_timeouts
from sqlmanage.errors import (
    HalfApplied,
    Interrupted,
    MigrationFailed,
    SqlmanageError,
    UnknownDatabaseRevision,
)
from sqlmanage.redaction import redact

EventCallback = Callable[..., None]


def apply_migrations(
    project,
    target: str | None,
    *,
    fake: bool = False,
    on_event: EventCallback,
    lock_timeout: float | None = None,
    ddl_lock_timeout: float | None = None,
) -> Plan:
    """Bring the database to ``target``; ``fake`` records the steps without running them.

    The plan is worked out once before anything is opened for writing, so a bad target or
    a broken history changes nothing (not even an SQLite file is created), and again from
    the heads that the migration connection itself reads.
    """
    from sqlmanage.engine.status import heads_on, read_database_state

    history = project.history
    require_recordable_revisions(history)
    database_heads, records = read_database_state(project)
    try:
        plan = plan_migrations(history, database_heads, target)
    except UnknownDatabaseRevision:
        if not (fake and target):
            raise
        return _fake_over_unknown(project, target, on_event)
    if not history.exists:
        on_event("plan", plan)
        return plan
    if not plan.steps and _in_order(history, database_heads, records):
        on_event("plan", plan)  # nothing to run or record: no lock, no env.py, no Alembic
        changed = _changed_files(history, database_heads, records or {})
        if changed:
            on_event("changed", changed)
        return plan
    progress = _Progress()
    attempts: dict[str, int] = {}  # tries per migration when its table lock is refused
    audit_rows = _AuditWithVersion(project, history, fake, progress)

    def steps(heads, context):
        # Called again when another run moved the version table first (see alembic_env):
        # the plan is always the one from the heads this run is about to build on.
        audit_rows.listen(context.connection)
        progress.plan = plan_migrations(history, tuple(heads), target)
        dialect = context.connection.dialect.name
        timeouts = None
        if dialect == "postgresql" and not fake and progress.plan.steps:
            timeouts = migration_timeouts(project, ddl_lock_timeout)  # read once per run
        for step in progress.plan.steps:
            alembic_step = _alembic_step(history, step, fake)
            if timeouts is not None:
                bound_step(alembic_step, context, timeouts, attempts=attempts)
            if not fake and dialect not in TRANSACTIONAL_DDL:
                direction = "running-apply" if step.forward else "running-unapply"
                audit.record(context.connection, project.settings, step.migration, direction, None)
                context.connection.commit()
            alembic_step.migration_fn = _announcing(alembic_step.migration_fn, step)
            yield alembic_step
            # Alembic asks for the next step only once this one's COMMIT went through: only
            # now is it done ("OK" before a failed COMMIT would be a lie).
            on_event("done", step, progress.seconds)
            progress.step = None
            progress.completed += 1
            del alembic_step
            history.release_module(step.migration)

    def _announcing(run_migration, step):
        """The step's body, telling the caller first: by then the lock is held and the
        version table checked, so a step that another run got to first is never announced."""

        @functools.wraps(run_migration)  # Alembic names the step, in its log, after its function
        def run(**kw):
            if not progress.announced:
                progress.announced = True
                on_event("plan", progress.plan)
            retry = progress.step is not None and progress.step.migration is step.migration
            progress.step, progress.started = step, time.perf_counter()
            if not retry:  # a try whose table lock was refused starts the run over
                on_event("start", step)
            result = run_migration(**kw)
            audit_rows.pending = step  # Alembic's version statement comes next
            return result

        return run

    def on_version_apply(ctx, step, heads, run_args):
        if audit_rows.written(progress.step):
            return
        done: Step = progress.step  # type: ignore[assignment]  # set by the step that just ran
        progress.seconds = time.perf_counter() - progress.started
        audit.record(ctx.connection, project.settings, *audit_rows.row(done))

    def prepare(connection):
        """Under the lock: the audit table, records for what plain alembic applied, edits."""
        audit.ensure_table(connection, project.settings)
        records = audit.read_records(connection, project.settings) or {}
        heads = heads_on(connection, project.settings)
        if not heads and project.settings.baseline_on_migrate and not fake:
            from sqlmanage.engine.baseline import run_baseline

            run_baseline(project, connection, only_if_empty=True, commit=False)
        running = [r for r in records.values() if r.running and r.revision in history.by_id]
        if running and fake:
            for mark in running:  # --fake is how the user records the real state: marks go
                audit.record(
                    connection, project.settings, history.by_id[mark.revision], "cleared", None
                )
        elif running:
            names = ", ".join(history.by_id[r.revision].name for r in running)
            raise HalfApplied(
                f"{names} was cut off while it ran, on a database that cannot roll DDL back: "
                "part of it may be applied.",
                hint="Compare the schema with the migration, finish or undo it by hand, then "
                "record the real state with 'python manage.py migrate --fake <migration>'.",
            )
        for revision in history.ancestors(heads):
            found = records.get(revision)
            if found is None or not found.applied:
                audit.record(
                    connection, project.settings, history.by_id[revision], "recorded", None
                )
        changed = _changed_files(history, heads, records)
        if changed:
            on_event("changed", changed)

    from sqlmanage.alembic_env import RunOptions

    options = RunOptions(
        project,
        configure={"on_version_apply": on_version_apply},
        lock_timeout=lock_timeout,
        on_wait=lambda notice: on_event("wait", notice),
        prepare=prepare,
    )
    try:
        _run_env(options, steps)
    except KeyboardInterrupt as exc:
        audit_rows.stop()
        raise _interrupted(project, progress.step, progress.completed) from exc
    except Exception as exc:
        audit_rows.stop()
        failed = progress.step
        if failed is None:
            raise
        cause = exc.__cause__ if isinstance(exc, SqlmanageError) and exc.__cause__ else exc
        raise _failure(project, failed, cause) from cause
    audit_rows.stop()
    if not progress.announced:
        on_event("plan", progress.plan)
    return progress.plan  # type: ignore[return-value]  # set by steps(), which env.py calls


class _AuditWithVersion:
    """On PostgreSQL, each step's audit row rides on Alembic's version statement.

    Alembic writes the version table right after a migration's body, in the migration's
    transaction; the row's INSERT goes in front of that statement as a data-modifying CTE,
    which PostgreSQL runs whatever the statement does with it: a round trip less per
    migration and nothing else changed (same transaction, same row, the statement's own row
    count, which Alembic checks). It is added to the SQL text as the driver gets it, the
    INSERT compiled once per run, so no statement is compiled again. Drivers with named
    parameters only (psycopg2, psycopg); elsewhere, and should Alembic ever write no version
    statement for a step, ``on_version_apply`` writes the row on its own, as before.
    """

    PREFIX = "sqlmanage_audit_"

    def __init__(self, project, history, fake: bool, progress: _Progress):
        self.project, self.history, self.fake, self.progress = project, history, fake, progress
        self.connection = None
        self.insert_sql = ""
        self.pending: Step | None = None  # the step whose version statement is next
        self.done: Step | None = None  # the step whose row went with it

    def listen(self, connection) -> None:
        dialect = connection.dialect
        if (
            self.connection is not None
            or dialect.name != "postgresql"
            or dialect.paramstyle not in ("pyformat", "named")
        ):
            return
        from sqlalchemy import event

        self.insert_sql = audit.insert_sql(dialect, self.project.settings, self.PREFIX)
        self.connection = connection
        event.listen(connection, "before_cursor_execute", self._attach, retval=True)

    def stop(self) -> None:
        if self.connection is not None:
            from sqlalchemy import event

            event.remove(self.connection, "before_cursor_execute", self._attach)
            self.connection = None

    def written(self, step: Step | None) -> bool:
        """Whether ``step``'s row went with its version statement (then it is not written again)."""
        done, self.done, self.pending = self.done, None, None
        return step is not None and done is step

    def row(self, step: Step) -> tuple:
        """(migration recorded, direction, seconds, checksum) of a finished step."""
        direction = ("fake-" if self.fake else "") + ("apply" if step.forward else "unapply")
        # The last replaced original of a squash reaches the squashed migration's revision:
        # it is recorded as the squashed migration, whose file now stands for that state.
        recorded = self.history.by_id.get(step.migration.revision, step.migration)
        return recorded, direction, self.progress.seconds, self.history.checksum(recorded)

    def _attach(self, connection, cursor, statement, parameters, context, executemany):
        step = self.pending
        compiled = getattr(context, "compiled", None)
        if (
            step is None
            or executemany
            or not isinstance(parameters, dict)
            or compiled is None
            or not self._writes_version(compiled.statement)
        ):
            return statement, parameters
        self.pending, self.done = None, step
        self.progress.seconds = time.perf_counter() - self.progress.started
        values = audit.record_values(connection, self.project.settings, *self.row(step))
        parameters = {**parameters, **{self.PREFIX + name: value for name, value in values.items()}}
        return f"WITH sqlmanage_audit_row AS ({self.insert_sql}) {statement}", parameters

    def _writes_version(self, statement) -> bool:
        from sqlalchemy.sql.dml import UpdateBase

        table = getattr(statement, "table", None)
        settings = self.project.settings
        return (
            isinstance(statement, UpdateBase)
            and getattr(table, "name", None) == settings.version_table
            and getattr(table, "schema", None) == settings.version_table_schema
        )


def _in_order(history, heads: tuple[str, ...], records: dict | None) -> bool:
    """Whether the audit trail already holds everything a run would record before starting."""
    if records is None:
        return False
    if any(r.running for r in records.values() if r.revision in history.by_id):
        return False
    return all(
        (found := records.get(revision)) is not None and found.applied
        for revision in history.ancestors(heads)
    )


def _changed_files(history, heads: tuple[str, ...], records: dict) -> list:
    """Applied migrations whose file differs from the one that ran, in apply order."""
    applied = history.ancestors(heads)
    return [
        migration
        for migration in history.migrations
        if migration.revision in applied
        and (found := records.get(migration.revision)) is not None
        and found.applied
        and history.changed_since(migration, found.checksum)
    ]


@dataclass
class _Progress:
    """Where a run is: its plan, the step running (None between steps), when it started."""

    plan: Plan | None = None
    step: Step | None = None
    started: float = 0.0
    seconds: float = 0.0
    completed: int = 0
    announced: bool = False


def plan_sql(project, target: str | None) -> str:
    """The SQL that ``migrate`` would run, version table included; needs no database.

    ``target`` is a migration (from the empty database to it), or ``FROM:TO`` for a range,
    which may go backwards.
    """
    from sqlmanage.engine.sql import steps_sql

    history = project.history
    label, target = split_target(target)
    start, _, end = (target or "").rpartition(":")
    current: tuple[str, ...] = ()
    if start and not is_zero(start):
        current = (history.find(start, label).revision,)
    plan = plan_migrations(history, current, with_label(label, end or None))
    return steps_sql(project, plan.steps, current, versions=True)


def _fake_over_unknown(project, target: str, on_event: EventCallback) -> Plan:
    """``migrate --fake TARGET`` on a database at a revision no file has: record TARGET.

    Alembic's ``stamp --purge``: the version table is emptied and TARGET written, which is
    how a database restored from elsewhere, or renumbered files, get back in step.
    """
    from alembic import command

    from sqlmanage.alembic_env import RunOptions, alembic_run

    project.require_own_env()
    label, named = split_target(target)
    name = named or target
    if is_zero(name):
        plan = Plan(None, name, [], goal="zero")
        destination = "base"
    else:
        migration = project.history.find(name, label)
        plan = Plan(migration, name, [Step(migration, True)], goal="migration")
        destination = migration.revision
    on_event("plan", plan)
    started = time.perf_counter()
    for step in plan.steps:
        on_event("start", step)
    with alembic_run(RunOptions(project)) as config:
        command.stamp(config, destination, purge=True)
    for step in plan.steps:
        on_event("done", step, time.perf_counter() - started)
    return plan


def _run_env(options, fn) -> None:
    """Run the project's env.py with ``fn`` as Alembic's migration function."""
    from alembic.runtime.environment import EnvironmentContext
    from alembic.util import CommandError

    from sqlmanage.alembic_env import alembic_run

    project = options.project
    project.require_own_env()
    script = project.history.script
    try:
        with alembic_run(options) as config, EnvironmentContext(config, script, fn=fn):
            script.run_env()
    except CommandError as exc:
        raise SqlmanageError(redact(f"Alembic refused: {exc}")) from exc


def _do_nothing(**kwargs) -> None:
    return None


def _alembic_step(history, step: Step, fake: bool):
    """Alembic's step for one migration; faked, its body is skipped but the version recorded."""
    from sqlmanage.engine.baseline import revision_step

    alembic_step = revision_step(history, step.migration, step.forward)
    if fake:
        alembic_step.migration_fn = _do_nothing
    return alembic_step


def _uses_autocommit_block(migration) -> bool:
    """Whether the migration commits part of itself on its own (Alembic's autocommit_block)."""
    try:
        return "autocommit_block" in Path(migration.path).read_text(
            encoding="utf-8", errors="replace"
        )
    except OSError:
        return False


def _interrupted(project, step: Step | None, completed: int = 0) -> Interrupted:
    if step is None and completed:
        return Interrupted(
            f"Interrupted between two migrations: the {completed} applied before it are "
            "committed, nothing of the next one ran.",
            hint="Run migrate again to apply the rest.",
        )
    if step is None:
        return Interrupted("Interrupted before any migration ran; nothing was changed.")
    action = "applying" if step.forward else "unapplying"
    if project.url.get_backend_name() in TRANSACTIONAL_DDL:
        hint = f"{step.migration.name} was rolled back and the lock released; run migrate again."
    else:
        hint = (
            f"{step.migration.name} may be half-applied: the next migrate refuses until you "
            "check it and record the real state with 'python manage.py migrate --fake'."
        )
    return Interrupted(f"Interrupted while {action} {step.migration.name}.", hint=hint)


def _failure(project, step: Step, exc: BaseException) -> MigrationFailed:
    reason = first_line(exc)
    action = "Applying" if step.forward else "Unapplying"
    backend = project.url.get_backend_name()
    if backend in TRANSACTIONAL_DDL and _uses_autocommit_block(step.migration):
        hint = (
            f"{step.migration.name} ran part of its work in autocommit_block(): that part was "
            "committed as it ran and stays (an index built CONCURRENTLY, say); the rest, and "
            "the version table, were rolled back. Undo what the committed part made, or make "
            "it idempotent (IF NOT EXISTS), then run migrate again."
        )
    elif backend in TRANSACTIONAL_DDL:
        hint = (
            f"{step.migration.name} was rolled back: the schema and the version table are as "
            "they were before it. Fix the migration and run migrate again."
        )
    else:
        hint = (
            f"{backend} cannot roll back DDL: check what {step.migration.name} left behind, fix "
            "it by hand, then record the real state with 'python manage.py migrate --fake'. "
            "Until then migrate refuses to run."
        )
    cause = redact(f"{type(exc).__name__}: {reason}")
    return MigrationFailed(
        f"{action} {step.migration.name} failed: {cause}",
        hint=getattr(exc, "hint", None) or hint,
        reason=cause,
    )
