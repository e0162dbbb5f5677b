"""``sqlmigrate``: the SQL of one migration, for review or for a DBA."""

from __future__ import annotations

import click

from sqlmanage.commands.base import common_options
from sqlmanage.commands.completion import complete_migrations


@click.command("sqlmigrate")
@click.argument("migration", shell_complete=complete_migrations)
@click.option("--backwards", is_flag=True, help="Print the SQL that unapplies the migration.")
@common_options
def command(runtime, migration, backwards):
    """Print the SQL of MIGRATION for the configured database; touches no database.

    MIGRATION is a number (0002), a file name, a revision id or a unique prefix.

    \b
    Examples:
      python manage.py sqlmigrate 0002
      python manage.py sqlmigrate 0002 --backwards
      DATABASE_URL=postgresql://db.example/app python manage.py sqlmigrate 0001
    """
    from sqlmanage.core.sql import migration_sql

    sql = migration_sql(runtime.project, migration, backwards)
    if not sql:
        runtime.err("No operations found.")
    elif runtime.color:
        from rich.syntax import Syntax

        runtime.rich_console().print(Syntax(sql, "sql", theme="ansi_dark", background_color="default"))
    else:
        runtime.out(sql, nl=False)
