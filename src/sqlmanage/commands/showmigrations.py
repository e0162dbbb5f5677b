"""``showmigrations``: where the database stands."""

from __future__ import annotations

import click

from sqlmanage.commands.base import common_options


@click.command("showmigrations")
@click.argument("app_labels", nargs=-1, metavar="[APP_LABEL]...")
@click.option(
    "--list",
    "-l",
    "listing",
    is_flag=True,
    help="List every migration and whether it is applied (the default).",
)
@click.option(
    "--plan",
    "-p",
    is_flag=True,
    help="List the migrations in the order they apply, with what each depends on at -v 2.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "plain", "json"]),
    help="Output format. Default: a table on a terminal, Django's plain lines otherwise.",
)
@common_options
def command(runtime, app_labels, listing, plan, output_format):
    """Show every migration and whether it is applied.

    Each migration tree is listed under its app label, as Django lists apps. APP_LABEL
    (Django's form) limits the list to those trees (a plan keeps what they depend on); a
    label that names no tree is an error that lists the labels.

    \b
    Examples:
      python manage.py showmigrations
      python manage.py showmigrations project --list
      python manage.py showmigrations --plan --format plain
      python manage.py showmigrations --format json
    """
    from sqlmanage.engine.status import migration_status

    if listing and plan:
        raise click.UsageError("--list and --plan cannot be combined.")
    status = migration_status(runtime.project, tuple(app_labels), plan)
    output_format = output_format or ("table" if runtime.is_terminal else "plain")
    if output_format == "json":
        from sqlmanage.render import json_data

        runtime.out(json_data.showmigrations(status))
    elif output_format == "plain":
        from sqlmanage.render import plain

        for text, style in plain.showmigrations(status, plan, runtime.verbosity):
            runtime.out(text, style)
    else:
        from sqlmanage.render import rich_table

        console = runtime.rich_console()
        table, summary = rich_table.showmigrations(status, plan, runtime.verbosity, console.width)
        console.print(table)
        console.print(summary)
    for state in status.changed:
        runtime.err(
            f"Warning: {state.migration.name} was changed after it was applied; the database "
            "ran the earlier version. Restore the file, or put the change in a new migration.",
            "warning",
        )
    for revision in status.missing_files:
        runtime.err(
            f"Warning: the database records revision {revision}, which has no migration file. "
            "Restore the file, or record the real state with 'python manage.py migrate --fake'.",
            "warning",
        )


command.word_keywords = (("app_label",),)  # type: ignore[attr-defined]  # call_command(..., app_label="project")
