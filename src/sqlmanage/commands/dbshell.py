"""``dbshell``: the database's own command-line client, connected to the project's database."""

from __future__ import annotations

import click

from sqlmanage.commands.base import common_options


@click.command("dbshell")
@click.argument("parameters", nargs=-1, type=click.UNPROCESSED)
@common_options
def command(runtime, parameters):
    """Run the command-line client of the configured database.

    psql for PostgreSQL, sqlite3 for SQLite, mariadb (or mysql) for MariaDB and MySQL. The
    password reaches the client through its environment (PGPASSWORD, MYSQL_PWD), never on
    its command line. PARAMETERS after '--' go to the client; its exit status is the
    command's.

    \b
    Examples:
      python manage.py dbshell
      python manage.py dbshell -- -c 'select count(*) from products'
      python manage.py dbshell --database analytics
    """
    from sqlmanage.actions.dbshell import client_command, run_client

    return run_client(client_command(runtime.project.url, parameters))
