"""``sqlmigrate``: the SQL of one migration, for review or for a DBA."""

from __future__ import annotations

import click

from sqlmanage.commands.base import common_options, migration_words
from sqlmanage.commands.completion import complete_migrations

METAVAR = "[APP_LABEL] MIGRATION"


@click.command("sqlmigrate", context_settings={"ignore_unknown_options": True})
@click.argument("words", nargs=-1, metavar=METAVAR, shell_complete=complete_migrations)
@click.option("--backwards", is_flag=True, help="Print the SQL that unapplies the migration.")
@common_options
def command(runtime, words, backwards):
    """Print the SQL of MIGRATION for the configured database; touches no database.

    MIGRATION is a number (0002), a file name, a revision id or a unique prefix; APP_LABEL
    (Django's form) names the migration tree.

    \b
    Examples:
      python manage.py sqlmigrate 0002
      python manage.py sqlmigrate project 0002
      python manage.py sqlmigrate 0002 --backwards
      DATABASE_URL=postgresql://db.example/app python manage.py sqlmigrate 0001
    """
    from sqlmanage.engine.graph import split_app_label
    from sqlmanage.engine.sql import migration_sql

    words = migration_words(words, "sqlmigrate", 1, METAVAR)
    if not words:
        raise click.UsageError(f"Missing argument 'MIGRATION'; sqlmigrate takes {METAVAR}.")
    label, rest = split_app_label(runtime.project.history, words, most=1)
    if not rest:
        raise click.UsageError(f"Give the migration: sqlmigrate {label} MIGRATION.")
    sql = migration_sql(runtime.project, rest[0], backwards, label)
    if not sql:
        runtime.err("No operations found.")
    elif runtime.color:
        from rich.syntax import Syntax

        runtime.rich_console().print(
            Syntax(sql, "sql", theme="ansi_dark", background_color="default")
        )
    else:
        runtime.out(sql, nl=False)


command.word_keywords = (("app_label",), ("migration_name", "migration"))  # type: ignore[attr-defined]  # call_command's keyword forms of the words, in order
