"""``adopt``: take over an existing Alembic project, its history untouched.

It runs in the project's folder (beside alembic.ini) before any sqlmanage settings exist, so
it never loads settings. ``--dry-run`` shows what it would write and what it could not carry.
"""

from __future__ import annotations

from pathlib import Path

import click

from sqlmanage.commands.base import common_options


@click.command("adopt")
@click.option(
    "--dry-run", is_flag=True, help="Show what would be written and carried over; write nothing."
)
@click.option(
    "--settings-module",
    default="sqlmanage_settings",
    show_default=True,
    metavar="NAME",
    help="The settings module to write, beside alembic.ini.",
)
@common_options
def command(runtime, dry_run, settings_module):
    """Adopt the Alembic project in the current folder: write sqlmanage's settings and env.py.

    Reads alembic.ini and env.py (without running it) and carries over the database URL's
    source, the models (target_metadata), include_object / include_name /
    process_revision_directives (functions env.py defines are copied into env_hooks.py),
    the comparison switches and callables, template_args and the version table. env.py is
    replaced by sqlmanage's and kept as env.py.orig; versions/ is never touched; manage.py
    and script.py.mako are written where missing. Plain alembic keeps working.

    \b
    Examples:
      sqlmanage adopt --dry-run
      sqlmanage adopt
      python manage.py showmigrations
    """
    from sqlmanage.actions.adopt import plan_adoption, write_adoption
    from sqlmanage.render.adoption import adoption_lines

    adoption = plan_adoption(Path.cwd(), settings_module)
    if not dry_run:
        write_adoption(adoption)
    for text, style in adoption_lines(adoption, dry_run, runtime.verbosity):
        runtime.out(text, style)
    return 0
