"""``startproject``: a new project's skeleton, the ``django-admin startproject`` of sqlmanage.

It runs outside any project, so it never loads settings.
"""

from __future__ import annotations

from pathlib import Path

import click

from sqlmanage.commands.base import common_options

ASYNC_DRIVER_MODULE = "aiosqlite"


@click.command("startproject")
@click.argument("name")
@click.argument("directory", required=False)
@click.option(
    "--template",
    type=click.Choice(["default", "async"]),
    default="default",
    show_default=True,
    help="The skeleton to write: 'async' points DATABASE_URL at an async driver "
    "(sqlite+aiosqlite, with postgresql+asyncpg shown in a comment).",
)
@common_options
def command(runtime, name, directory, template):
    """Create a project NAME: manage.py, alembic.ini and the NAME package.

    NAME/ holds settings.py, models/ (a declarative base with a naming convention) and
    migrations/ (env.py, script.py.mako, versions/). The project is written into DIRECTORY,
    which must exist, or into a new folder ./NAME. Existing files are never overwritten.

    \b
    Examples:
      sqlmanage startproject shop
      sqlmanage startproject shop .
      sqlmanage startproject shop --template async
    """
    from sqlmanage.actions.startproject import start_project

    created = start_project(name, directory, template, Path.cwd())
    if runtime.verbosity < 1:
        return 0
    from sqlmanage.render.commands import project_started

    needs_driver = template == "async" and not _installed(ASYNC_DRIVER_MODULE)
    runtime.lines(project_started(created, runtime.verbosity, needs_driver))
    return 0


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
