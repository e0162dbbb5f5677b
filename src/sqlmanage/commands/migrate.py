"""``migrate``: apply or unapply migrations, Django's way, through Alembic."""

from __future__ import annotations

import click

from sqlmanage.commands.base import common_options, migration_words, noinput_option
from sqlmanage.commands.completion import complete_migration_targets
from sqlmanage.render import commands as lines

TARGET_METAVAR = "[APP_LABEL] [MIGRATION]"


@click.command("migrate", context_settings={"ignore_unknown_options": True})
@click.argument(
    "words", nargs=-1, metavar=TARGET_METAVAR, shell_complete=complete_migration_targets
)
@click.option("--plan", is_flag=True, help="Show the operations that would run; change nothing.")
@click.option(
    "--fake",
    is_flag=True,
    help="Record the migrations as applied (or unapplied) without running them.",
)
@click.option(
    "--fake-initial",
    is_flag=True,
    help="Record the initial migration as applied, without running it, when every table it "
    "creates (and column it adds) already exists; only names are checked, as in Django.",
)
@click.option(
    "--sql",
    is_flag=True,
    help="Print the SQL instead of running it (needs no database). MIGRATION may be FROM:TO.",
)
@click.option(
    "--check",
    "check_unapplied",
    is_flag=True,
    help="Exit with status 1 if there are unapplied migrations; change nothing.",
)
@click.option(
    "--prune",
    is_flag=True,
    help="Delete the database's records of migrations whose files are gone (after asking), "
    "then stop.",
)
@click.option(
    "--run-syncdb",
    is_flag=True,
    hidden=True,
    help="Django's table creation without migrations: answered with what to do instead.",
)
@click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Give up (exit 1) if another migrate holds the database's migration lock this long. "
    "Default: wait.",
)
@click.option(
    "--ddl-lock-timeout",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="On PostgreSQL, give up a migration's table lock after this long (then retry, then "
    "exit 1 naming the blocker). Default: MIGRATION_LOCK_TIMEOUT, 2 seconds.",
)
@click.option(
    "--all-databases",
    is_flag=True,
    help="Migrate every database in DATABASES to its head, in parallel, and print a summary. "
    "With --check or --plan, check or plan every database.",
)
@noinput_option
@common_options
def command(
    runtime,
    words,
    plan,
    fake,
    fake_initial,
    sql,
    check_unapplied,
    prune,
    run_syncdb,
    lock_timeout,
    ddl_lock_timeout,
    all_databases,
):
    """Apply or unapply migrations to bring the database to MIGRATION.

    Without MIGRATION, applies every unapplied migration. MIGRATION brings the database to
    exactly the state after that migration, going forward or back: a number (0003), a file
    name, a revision id or a unique prefix, a relative step (+2, -1), head, or zero (alias
    base) to unapply everything. APP_LABEL (Django's form) names the migration tree:
    'project' in a new project, or the branch label its first migration declares.

    \b
    Examples:
      python manage.py migrate
      python manage.py migrate 0002
      python manage.py migrate project 0002
      python manage.py migrate -1
      python manage.py migrate project zero
      python manage.py migrate --plan
      python manage.py migrate --fake-initial
      python manage.py migrate --sql > migration.sql
      python manage.py migrate --check --noinput
      python manage.py migrate --database analytics
      python manage.py migrate --all-databases --noinput
    """
    words = migration_words(words, "migrate", 1, TARGET_METAVAR)
    if run_syncdb:
        from sqlmanage.errors import SqlmanageError

        raise SqlmanageError(
            "sqlmanage has no --run-syncdb: every table comes from a migration.",
            hint="Run 'python manage.py makemigrations' to write a migration for the models "
            "without one, then 'python manage.py migrate'. For tables that already exist, "
            "'python manage.py migrate --fake-initial' records the initial migration instead.",
        )
    chosen = [
        flag
        for flag, on in (
            ("--sql", sql),
            ("--fake", fake),
            ("--fake-initial", fake_initial),
            ("--plan", plan),
            ("--check", check_unapplied),
            ("--prune", prune),
        )
        if on
    ]
    if len(chosen) > 1 and set(chosen) != {"--plan", "--check"}:
        raise click.UsageError(f"{' and '.join(chosen)} cannot be combined.")
    if all_databases:
        if fake_initial or prune:
            raise click.UsageError(f"--all-databases cannot be combined with {chosen[0]}.")
        return _all_databases(
            runtime, words[0] if words else None, plan, fake, sql, check_unapplied, lock_timeout
        )
    if sql:
        from sqlmanage.engine.apply import plan_sql

        runtime.out(plan_sql(runtime.project, _target(runtime, words)), nl=False)
        return None
    target = _target(runtime, words)
    if prune:
        return _prune(runtime)
    if plan or check_unapplied:
        return _plan_or_check(runtime, target, plan, check_unapplied)
    _apply(runtime, target, fake, lock_timeout, fake_initial, ddl_lock_timeout)
    return None


def _target(runtime, words) -> str | None:
    """``[APP_LABEL] [MIGRATION]`` as one target: ``label@migration`` (Alembic's form, which
    may also be typed as is), ``label@head`` for a label alone, or the migration."""
    from sqlmanage.engine.graph import split_app_label
    from sqlmanage.engine.plan import with_label

    if not words:
        return None
    label, rest = split_app_label(runtime.project.history, words, most=1)
    return with_label(label, rest[0] if rest else None)


def _prune(runtime) -> int:
    """Django's ``Pruning migrations:`` block, after a confirmation on a terminal."""
    from sqlmanage.actions.prune import prunable, prune
    from sqlmanage.errors import SqlmanageError

    project = runtime.project
    found = prunable(project)
    verbose = runtime.verbosity >= 1
    if verbose:
        runtime.out("Pruning migrations:", "heading")
    if found.revisions and runtime.can_prompt():
        question = lines.prune_question(found.revisions)
        if not click.confirm(question, default=False, prompt_suffix=" "):
            runtime.out("Aborting prune.")
            return 0
    prune(project, found.revisions)
    if verbose:
        runtime.lines(lines.pruned(project.label, found.revisions, found.standing))
    if found.standing:
        names = ", ".join(found.standing)
        raise SqlmanageError(
            f"Not pruned: the database stands at {names}, which has no migration file.",
            hint="Restore the file, or record where the database really stands with "
            "'python manage.py migrate --fake MIGRATION'.",
        )
    return 0


def _plan_or_check(runtime, target, show_plan: bool, check_unapplied: bool) -> int:
    from sqlmanage.engine.plan import plan_migrations
    from sqlmanage.engine.status import read_database_heads
    from sqlmanage.render import plain

    project = runtime.project
    plan = plan_migrations(project.history, read_database_heads(project), target)
    if show_plan:
        from sqlmanage.engine.autodetect.describe import describe_migration

        descriptions = [describe_migration(s.migration.path) for s in plan.steps]
        for text, style in plain.planned_operations(plan, descriptions):
            runtime.out(text, style)
    if check_unapplied and plan.steps:
        if runtime.verbosity >= 1 and not show_plan:
            names = ", ".join(step.migration.name for step in plan.steps)
            runtime.err(f"Unapplied migrations: {names}")
        return 1
    return 0


def _apply(
    runtime,
    target,
    fake: bool,
    lock_timeout: float | None,
    fake_initial: bool = False,
    ddl_lock_timeout: float | None = None,
) -> None:
    from sqlmanage.engine.apply import apply_migrations
    from sqlmanage.render import plain

    project = runtime.project
    verbose = runtime.verbosity >= 1
    timed = runtime.verbosity >= 2  # Django shows timings at -v 2 only
    partial_line = []  # the step whose "Applying ..." line waits for its " OK"
    run = {"fake": fake, "heading": True}

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
        if event == "plan" and run["heading"]:
            for text, style in plain.migration_heading(subject, subject.tree or project.label):
                runtime.out(text, style)
        elif event == "start":
            runtime.out(plain.step_started(subject), nl=False)
            partial_line.append(subject)
        elif event == "done":
            runtime.out(plain.step_done(seconds if timed else None, run["fake"]), "success")
            partial_line.clear()

    try:
        initial = None
        if fake_initial:
            from sqlmanage.actions.fake_initial import initial_to_fake
            from sqlmanage.engine.plan import plan_migrations
            from sqlmanage.engine.status import read_database_heads

            initial = initial_to_fake(project, target)
        if initial is not None:  # one heading for the whole run, then the FAKED line first
            on_event("plan", plan_migrations(project.history, read_database_heads(project), target))
            run.update(fake=True, heading=False)
            apply_migrations(
                project, initial.revision, fake=True, on_event=on_event, lock_timeout=lock_timeout
            )
            run["fake"] = False
        plan = apply_migrations(
            project,
            target,
            fake=fake,
            on_event=on_event,
            lock_timeout=lock_timeout,
            ddl_lock_timeout=ddl_lock_timeout,
        )
    except Exception:
        if partial_line:
            runtime.out(" FAILED", "error")
        raise
    if not plan.steps and initial is None and target is None and verbose:
        _notice_unmigrated_changes(runtime)


def _notice_unmigrated_changes(runtime) -> None:
    """Django's notice after 'No migrations to apply.' when the models have moved on."""
    from sqlmanage.engine.autodetect.unmigrated import models_have_unmigrated_changes

    if models_have_unmigrated_changes(runtime.project):
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


def _all_databases(runtime, target, show_plan, fake, sql, check_unapplied, lock_timeout) -> int:
    """``--all-databases``: every alias to its head in parallel (or checked), then a summary."""
    clashes = [
        name
        for name, given in (
            ("TARGET", target is not None),
            ("--database", runtime.database is not None),
            ("--fake", fake),
            ("--sql", sql),
        )
        if given
    ]
    if clashes:
        raise click.UsageError(f"--all-databases cannot be combined with {' or '.join(clashes)}.")
    from sqlmanage.actions import all_databases
    from sqlmanage.settings import load_settings

    settings = load_settings(runtime.settings)
    if show_plan or check_unapplied:
        run = all_databases.check_all_databases(settings, plans=show_plan)
        if show_plan:
            _print_plans(runtime, run)
        if check_unapplied:
            _print_summary(runtime, run, checking=True)
    else:
        run = _migrate_all(runtime, settings, lock_timeout)
        _print_summary(runtime, run, checking=False)
    failed = [
        o for o in run.outcomes if o.result not in (all_databases.OK, all_databases.UNAPPLIED)
    ]
    if run.interrupted:
        from sqlmanage.errors import Interrupted

        raise Interrupted(
            "Interrupted: each database stopped as its result in the summary says.",
            hint="Run 'python manage.py showmigrations --database ALIAS' to see where one "
            "stands, and 'python manage.py migrate --all-databases' to finish.",
        )
    if failed:
        from sqlmanage.errors import SqlmanageError

        names = ", ".join(o.alias for o in failed)
        if show_plan or check_unapplied:
            message = (
                f"{len(failed)} of {len(run.outcomes)} databases could not be checked: {names}."
            )
            command = "showmigrations"
        else:
            message = f"{len(failed)} of {len(run.outcomes)} databases failed to migrate: {names}."
            command = "migrate"
        raise SqlmanageError(
            message,
            hint=(
                f"Run 'python manage.py {command} --database {failed[0].alias}' to see the whole "
                "error. The databases not named here were handled regardless."
            ),
        )
    unapplied = any(o.result == all_databases.UNAPPLIED for o in run.outcomes)
    return 1 if check_unapplied and unapplied else 0


def _migrate_all(runtime, settings, lock_timeout):
    from sqlmanage.actions.all_databases import migrate_all_databases
    from sqlmanage.commands.base import STATE

    heading = lines.all_databases_heading(list(settings.databases))

    def on_done(outcome):
        if runtime.verbosity >= 2:
            runtime.out(lines.database_done(outcome))

    if runtime.verbosity == 1 and runtime.is_terminal:  # a spinner while the workers run
        with runtime.rich_console().status(heading):
            run = migrate_all_databases(settings, lock_timeout=lock_timeout, on_done=on_done)
    else:
        if runtime.verbosity >= 1:
            runtime.out(heading, "heading")
        run = migrate_all_databases(settings, lock_timeout=lock_timeout, on_done=on_done)
    for outcome in run.outcomes:
        runtime.lines(lines.database_notes(outcome, STATE.traceback), err=True)
    return run


def _print_plans(runtime, run) -> None:
    from sqlmanage.engine.autodetect.describe import describe_migration
    from sqlmanage.render import plain

    for outcome in run.outcomes:
        runtime.out(f"Database '{outcome.alias}' ({outcome.database}):", "heading")
        if outcome.plan is None:
            runtime.out(f"  {outcome.result}: {outcome.error}", "error")
            continue
        descriptions = [describe_migration(s.migration.path) for s in outcome.plan.steps]
        for text, style in plain.planned_operations(outcome.plan, descriptions):
            runtime.out(f"  {text}", style)


def _print_summary(runtime, run, checking: bool) -> None:
    from sqlmanage.render import databases

    if runtime.verbosity < 1:
        return
    if runtime.is_terminal:
        table, sentence = databases.rich_summary(run, checking)
        console = runtime.rich_console()
        console.print(table)
        console.print(sentence)
    else:
        for text, style in databases.plain_summary(run, checking):
            runtime.out(text, style)


command.word_keywords = (("app_label",), ("migration_name", "target"))  # type: ignore[attr-defined]  # call_command's keyword forms of the words, in order
