"""``check``: Django's system check, for settings, models, migrations and the database."""

from __future__ import annotations

import dataclasses

import click

from sqlmanage.actions.check import LEVELS, TAGS
from sqlmanage.commands.base import STATE, common_options


@click.command("check")
@click.option(
    "--deploy",
    is_flag=True,
    help="Also run the deployment checks: not the embedded SQLite default, a password on the "
    "connection, no password written in the settings file.",
)
@click.option(
    "--fail-level",
    type=click.Choice(list(LEVELS), case_sensitive=False),
    default="ERROR",
    metavar="LEVEL",
    show_default=True,
    help="The message level (CRITICAL, ERROR, WARNING, INFO, DEBUG) that makes the command "
    "exit with status 1.",
)
@click.option(
    "-t",
    "--tag",
    "tags",
    multiple=True,
    type=click.Choice(TAGS),
    help="Run only the checks with this tag, and those they need but the database; the checks "
    "that need the database are reported as skipped unless it is tagged too. Repeatable.",
)
@click.option("--list-tags", is_flag=True, help="List the tags and exit.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "plain", "json"]),
    help="Output format. Default: a table on a terminal, Django's plain lines otherwise.",
)
@common_options
def command(runtime, deploy, fail_level, tags, list_tags, output_format):
    """Check settings, models, migrations and the database.

    Every problem is reported with an id (sqlmanage.E005), a message and a hint; a check that
    needs one that failed is skipped. Exits with status 1 when a problem at or above
    --fail-level is found. Without --database, every database in DATABASES is checked.
    Silence a check by listing its id in SILENCED_SYSTEM_CHECKS in your settings.

    \b
    Checks:
      E001 settings import          E006 database records only known migrations
      E002 every model imports      E007 every migration is applied
      E003 migration files load     E008 no applied migration edited since
      E004 a single head            E009 models match the migrations
      E005 database reachable       W001-W003 with --deploy

    \b
    Examples:
      python manage.py check
      python manage.py check --deploy --fail-level WARNING
      python manage.py check --tag migrations --format json
    """
    from sqlmanage.actions.check import available_tags, run_checks
    from sqlmanage.errors import SystemCheckError

    if list_tags:
        runtime.out("\n".join(available_tags(deploy)))
        return None
    fail_at = LEVELS[fail_level.upper()]
    report = run_checks(runtime.settings, runtime.database, tags, deploy)
    for result in report.results:
        result.issues = [_for_program(issue) for issue in result.issues]
        if result.traceback and STATE.traceback:
            runtime.err(result.traceback.rstrip())
    output_format = output_format or ("table" if runtime.is_terminal else "plain")
    if output_format == "json":
        from sqlmanage.render.check import as_json

        runtime.out(as_json(report, fail_at))
    elif output_format == "plain":
        from sqlmanage.render.check import plain

        for text, style in plain(report, runtime.verbosity):
            runtime.out(text, style)
    else:
        from sqlmanage.render.check import rich_report

        table, summary = rich_report(report)
        console = runtime.rich_console()
        console.print(table)
        console.print(summary)
    serious = report.serious(fail_at)
    if serious:
        raise SystemCheckError(report, sorted({issue.id for issue in serious}))
    return report


def _for_program(issue):
    """Hints name the program the user ran (sqlmanage, python -m sqlmanage, manage.py)."""
    if issue.hint and STATE.prog_name != "python manage.py":
        return dataclasses.replace(
            issue, hint=issue.hint.replace("python manage.py", STATE.prog_name)
        )
    return issue
