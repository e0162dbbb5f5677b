"""``migrate``: apply or unapply migrations, Django's way, through Alembic."""

from __future__ import annotations

import re

import click

from sqlmanage.commands.base import common_options, noinput_option


RELATIVE_STEP = re.compile(r"^-\d+$")


@click.command("migrate", context_settings={"ignore_unknown_options": True})
@click.argument("target", required=False)
@click.option("--plan", is_flag=True, help="Show the operations that would run; change nothing.")
@click.option(
    "--fake", is_flag=True,
    help="Record the migrations as applied (or unapplied) without running them.",
)
@click.option(
    "--sql", is_flag=True,
    help="Print the SQL instead of running it (needs no database). TARGET may be FROM:TO.",
)
@click.option(
    "--check", "check_unapplied", is_flag=True,
    help="Exit with status 1 if there are unapplied migrations; change nothing.",
)
@click.option(
    "--lock-timeout", type=click.FloatRange(min=0), metavar="SECONDS",
    help="Give up (exit 1) if another migrate holds the database's migration lock this long. "
    "Default: wait.",
)
@noinput_option
@common_options
def command(runtime, target, plan, fake, sql, check_unapplied, lock_timeout):
    """Apply or unapply migrations to bring the database to TARGET.

    Without TARGET, applies every unapplied migration. TARGET brings the database to exactly
    the state after that migration, going forward or back: a number (0003), a file name, a
    revision id or a unique prefix, a relative step (+2, -1), head, or zero (alias base) to
    unapply everything.

    \b
    Examples:
      python manage.py migrate
      python manage.py migrate 0002
      python manage.py migrate -1
      python manage.py migrate zero
      python manage.py migrate --plan
      python manage.py migrate --sql > migration.sql
      python manage.py migrate --check --noinput
    """
    if target is not None and target.startswith("-") and not RELATIVE_STEP.match(target):
        raise click.NoSuchOption(target)
    if target is not None and not target.strip():
        raise click.BadParameter("must not be empty.", param_hint="TARGET")
    chosen = [flag for flag, on in (("--sql", sql), ("--fake", fake), ("--plan", plan), ("--check", check_unapplied)) if on]
    if len(chosen) > 1 and set(chosen) != {"--plan", "--check"}:
        raise click.UsageError(f"{' and '.join(chosen)} cannot be combined.")
    project = runtime.project
    if sql:
        from sqlmanage.core.apply import migration_sql

        runtime.out(migration_sql(project, target), nl=False)
        return None
    if plan or check_unapplied:
        return _plan_or_check(runtime, target, plan, check_unapplied)
    _apply(runtime, target, fake, lock_timeout)
    return None


def _plan_or_check(runtime, target, show_plan: bool, check_unapplied: bool) -> int:
    from sqlmanage.core.plan import plan_migrations
    from sqlmanage.core.status import read_database_heads
    from sqlmanage.render import plain

    project = runtime.project
    plan = plan_migrations(project.history, read_database_heads(project), target)
    if show_plan:
        from sqlmanage.core.describe import describe_migration

        descriptions = [describe_migration(s.migration.path) for s in plan.steps]
        for text, style in plain.planned_operations(plan, descriptions):
            runtime.out(text, style)
    if check_unapplied and plan.steps:
        if runtime.verbosity >= 1 and not show_plan:
            names = ", ".join(step.migration.name for step in plan.steps)
            runtime.err(f"Unapplied migrations: {names}")
        return 1
    return 0


def _apply(runtime, target, fake: bool, lock_timeout: float | None) -> None:
    from sqlmanage.core.apply import apply_migrations
    from sqlmanage.render import plain

    project = runtime.project
    verbose = runtime.verbosity >= 1
    partial_line = []  # the step whose "Applying ..." line waits for its " OK"

    def on_event(event, subject, seconds=None):
        if event == "wait":
            runtime.err(subject, "warning")
        elif event == "changed":
            names = ", ".join(migration.name for migration in subject)
            runtime.err(
                f"Warning: applied migrations changed since they ran: {names}. The database ran "
                "the earlier version; put further changes in a new migration.",
                "warning",
            )
        if not verbose:
            return
        if event == "plan":
            for text, style in plain.migration_heading(subject, project.label):
                runtime.out(text, style)
        elif event == "start":
            runtime.out(plain.step_started(subject), nl=False)
            partial_line.append(subject)
        elif event == "done":
            runtime.out(plain.step_done(seconds, fake), "success")
            partial_line.clear()

    try:
        plan = apply_migrations(project, target, fake=fake, on_event=on_event, lock_timeout=lock_timeout)
    except Exception:
        if partial_line:
            runtime.out(" FAILED", "error")
        raise
    if not plan.steps and target is None and verbose:
        _notice_unmigrated_changes(runtime)


def _notice_unmigrated_changes(runtime) -> None:
    """Django's notice after 'No migrations to apply.' when the models have moved on."""
    from sqlmanage.core.makemigrations import detect_changes

    script, _ = detect_changes(runtime.project)
    if not script.upgrade_ops.is_empty():
        runtime.out(
            f"  Your models in '{runtime.project.label}' have changes that are not yet reflected "
            "in a migration, and so won't be applied.",
            "notice",
        )
        runtime.out(
            "  Run 'python manage.py makemigrations' to make new migrations, and then re-run "
            "'python manage.py migrate' to apply them.",
            "notice",
        )
