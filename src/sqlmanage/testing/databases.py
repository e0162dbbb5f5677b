"""Fresh databases for tests, and projects pointed at them.

A test never touches the developer's database: it gets an SQLite file of its own, or, when
it asks for the configured server, a database created on that server for it alone
(``test_<name>_<random>``) and dropped afterwards. The project's own settings (models,
migrations, options) are kept; only the URL changes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from sqlmanage.errors import SqlmanageError

SQLITE = "sqlite"
CONFIGURED = "configured"
KINDS = (SQLITE, CONFIGURED)
SERVER_BACKENDS = ("postgresql", "mysql", "mariadb")
IDENTIFIER_MAX = 63  # PostgreSQL's limit; MySQL allows 64


@dataclass
class FreshDatabase:
    """An empty database made for one test: its URL (password included) and how to drop it."""

    url: str
    drop: Callable[[], None]


def project_for(settings, url: str, alias: str | None = None):
    """The project of ``settings`` with database ``alias`` moved to ``url``; nothing else changes."""
    from sqlmanage.project import Project

    database = replace(settings.database(alias), url=url)
    return Project(
        replace(settings, databases={**settings.databases, database.alias: database}), alias
    )


def create_database(configured_url: str, kind: str, directory: Path) -> FreshDatabase:
    """A new empty database: an SQLite file in ``directory``, or one on the configured server.

    ``kind`` is ``sqlite`` (always a file, whatever the settings say) or ``configured`` (a
    database of the configured kind: a file for SQLite, a new database on a server).
    """
    if kind not in KINDS:
        raise SqlmanageError(
            f"Unknown test database kind '{kind}'.", hint=f"Use one of: {', '.join(KINDS)}."
        )
    path = directory / "db.sqlite3"
    if kind == SQLITE:
        return FreshDatabase(f"sqlite:///{path}", _nothing)
    from sqlmanage.database import is_async, parse_url

    url = parse_url(configured_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        driver = url.drivername if is_async(url) else "sqlite"
        return FreshDatabase(f"{driver}:///{path}", _nothing)
    if backend not in SERVER_BACKENDS:
        raise SqlmanageError(
            f"sqlmanage cannot create a test database on {backend}.",
            hint="Run the tests on SQLite (the default), PostgreSQL, MySQL or MariaDB.",
        )
    return _server_database(url)


def _nothing() -> None:
    """SQLite files live in the test's temporary folder, which pytest cleans up."""


def _server_database(url) -> FreshDatabase:
    """Create ``test_<name>_<random>`` beside the configured database; drop it on request."""
    from sqlalchemy.exc import DBAPIError

    from sqlmanage.database import create_database_beside, display_url, drop_database, first_line

    base = re.sub(r"[^0-9a-z_]", "_", (url.database or "db").lower())
    suffix = f"_{uuid.uuid4().hex[:10]}"
    name = f"test_{base}"[: IDENTIFIER_MAX - len(suffix)] + suffix
    try:
        admin_url, _ = create_database_beside(url, name)
    except (DBAPIError, SqlmanageError) as exc:
        raise SqlmanageError(
            f"Cannot create a test database on {display_url(url)}: {first_line(exc)}",
            hint="Start the server, check DATABASE_URL (or the URL in your settings), and "
            "grant the user CREATE DATABASE.",
        ) from None

    def drop() -> None:
        drop_database(admin_url, name)

    return FreshDatabase(url.set(database=name).render_as_string(hide_password=False), drop)
