"""Fixtures: a fresh copy of the example project per test, and fresh server databases.

Every test drives the CLI as a user does, ``python manage.py ...`` in a process of its own,
inside its own copy of the example project; ``Project.run`` forks it from a launch server
that has the third-party packages imported (tests/launcher.py; SQLMANAGE_TESTS_EXEC=1 makes
every launch a fresh interpreter). PostgreSQL and MariaDB tests get a database created for
them and dropped afterwards, in the background; when a server cannot be reached they fail,
never skip.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from launcher import Launcher

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get(
    "SQLMANAGE_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)
MARIADB_ADMIN = os.environ.get("SQLMANAGE_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test")
AUDIT_TABLE = "sqlmanage_migrations"  # sqlmanage's own bookkeeping, beside alembic_version
ENV_DROP = ("DATABASE_URL", "SQLMANAGE_SETTINGS_MODULE", "NO_COLOR", "PYTHONDONTWRITEBYTECODE")
LAUNCHER = Launcher()


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()


class Project:
    """A copy of the example project in a temporary folder, driven through manage.py."""

    def __init__(self, path: Path):
        self.path = path
        self.env: dict[str, str] = {}

    @property
    def versions(self) -> Path:
        return self.path / "project" / "migrations" / "versions"

    @property
    def sqlite_file(self) -> Path:
        return self.path / "db.sqlite3"

    def environment(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ENV_DROP}
        env.update(self.env)
        env.update(extra or {})
        return env

    def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        program: list[str] | None = None,
        stdin: str | None = None,
        real_process: bool = False,
    ) -> Result:
        """``python manage.py ARGS`` (or ``program ARGS``) in the project's folder.

        Forked from the launch server (tests/launcher.py) unless ``real_process`` asks for a
        fresh interpreter, for tests whose subject is the interpreter's start itself.
        """
        command = (program or [sys.executable, "manage.py"]) + list(args)
        completed = LAUNCHER.run(
            command,
            cwd=self.path,
            env=self.environment(env),
            input=stdin,
            timeout=120,
            real_process=real_process,
        )
        return Result(completed.returncode, completed.stdout, completed.stderr)

    def on_terminal(
        self, *args: str, env: dict[str, str] | None = None, rows: int = 40, columns: int = 200
    ) -> Result:
        """``python manage.py ARGS`` on a pseudo-terminal of ``rows`` by ``columns`` that it
        may not read from: ``stdout`` is everything the terminal showed, ``stderr`` empty.
        The terminal's size is the pseudo-terminal's: COLUMNS and LINES only when ``env``
        sets them."""
        environment = {
            k: v
            for k, v in self.environment(env).items()
            if k not in ("COLUMNS", "LINES") or k in (env or {})
        }
        completed = LAUNCHER.on_terminal(
            [sys.executable, "manage.py", *args],
            cwd=self.path,
            env=environment,
            rows=rows,
            columns=columns,
        )
        return Result(completed.returncode, completed.stdout, completed.stderr)

    def manage(self, *args: str, **kwargs) -> Result:
        """Run a command that must succeed; show its output when it does not."""
        result = self.run(*args, **kwargs)
        assert result.returncode == 0, (
            f"{args} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
        return result

    def alembic(self, *args: str, env: dict[str, str] | None = None) -> Result:
        return self.run(*args, env=env, program=[sys.executable, "-m", "alembic"])

    def edit(self, relative: str, old: str, new: str) -> None:
        path = self.path / relative
        text = path.read_text()
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new, 1))

    def migration_files(self) -> list[str]:
        return sorted(p.name for p in self.versions.glob("*.py"))

    def sqlite_tables(self) -> set[str]:
        with sqlite3.connect(self.sqlite_file) as connection:
            rows = connection.execute("select name from sqlite_master where type='table'")
            return {name for (name,) in rows} - {AUDIT_TABLE}

    def sqlite_version(self) -> set[str]:
        with sqlite3.connect(self.sqlite_file) as connection:
            return {v for (v,) in connection.execute("select version_num from alembic_version")}


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A fresh copy of the example project, with no database yet."""
    return copy_example_project(tmp_path / "shop")


def copy_example_project(target: Path) -> Project:
    """The example project copied into ``target`` (new), without bytecode or database."""
    target.mkdir()
    shutil.copy(ROOT / "manage.py", target)
    shutil.copy(ROOT / "alembic.ini", target)
    shutil.copytree(
        ROOT / "project",
        target / "project",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "db.sqlite3"),
    )
    return Project(target)


def migration_file(
    revision: str, upgrade: str, downgrade: str, down_revision: str = "0003_fill_discount_rate"
) -> str:
    """The text of a hand-written migration after the example's 0003, for scenario tests.

    ``upgrade`` and ``downgrade`` are function bodies, indented by four spaces.
    """
    return (
        f'"""{revision}"""\nimport time\n\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
        f"revision = {revision!r}\ndown_revision = {down_revision!r}\n"
        "branch_labels = None\ndepends_on = None\n\n\n"
        f"def upgrade():\n{upgrade}\n\n\ndef downgrade():\n{downgrade}\n"
    )


def add_discount_code(project: Project) -> None:
    """A model change for makemigrations: products gets a nullable discount_code column."""
    project.edit(
        "project/models/catalogue.py",
        "    discount_rate: Mapped[float]",
        "    discount_code: Mapped[str | None] = mapped_column(sa.String(20))\n"
        "    discount_rate: Mapped[float]",
    )


_running: dict[str, pytest.Item] = {}
# Dropping a database waits for a checkpoint: behind a busy server that is seconds, which
# the next test need not wait for. One thread, so cleanups run in the order they were asked.
_cleanups = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cleanup")
_pending: list[Future] = []


def later(cleanup, *args) -> None:
    """Run ``cleanup(*args)`` in the background, after the cleanups asked for before it; the
    session waits for all of them, and fails on one that failed."""
    _pending.append(_cleanups.submit(cleanup, *args))


@pytest.fixture(scope="session", autouse=True)
def _cleanups_done():
    yield
    for future in _pending:
        future.result()


@pytest.fixture(autouse=True)
def _running_test(request):
    """The test being run, for ``_server_database`` to check its markers."""
    _running["item"] = request.node
    yield
    _running.pop("item", None)


def _server_database(admin_url: str, kind: str):
    """Create a uniquely named database on a server; yield its URL; drop it afterwards.

    A test that asks for one without the server's marker fails here: the markers are how
    ``-m 'not postgres'`` leaves out what needs a server, so a missing one must not pass.
    """
    import sqlalchemy as sa

    marker = "postgres" if kind == "PostgreSQL" else "mariadb"
    item = _running.get("item")
    if item is not None and item.get_closest_marker(marker) is None:
        pytest.fail(
            f"{item.nodeid} uses a {kind} database but has no @pytest.mark.{marker}.", pytrace=False
        )
    name = f"sqlmanage_test_{uuid.uuid4().hex[:12]}"
    admin_engine = sa.create_engine(
        admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
    )
    try:
        with admin_engine.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
    except sa.exc.OperationalError as exc:
        pytest.fail(
            f"{kind} at {admin_engine.url.render_as_string(hide_password=True)} is unreachable: "
            f"{exc.orig}. Start it (see .ci/run); database tests never skip.",
            pytrace=False,
        )
    url = admin_engine.url.set(database=name)
    if kind == "PostgreSQL":
        url = url.set(drivername="postgresql")  # sqlmanage must pick the installed driver itself
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        later(_drop_database, admin_engine, name, kind)


def _drop_database(admin_engine, name: str, kind: str) -> None:
    try:
        with admin_engine.connect() as connection:
            force = " WITH (FORCE)" if kind == "PostgreSQL" else ""
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
    finally:
        admin_engine.dispose()


def another_database(request, server: str) -> str:
    """One more fresh database on "postgresql" or "mariadb", dropped when the test ends (for
    tests that build the same project twice: migrate here, plain alembic there)."""
    admin, kind = (
        (PG_ADMIN_URL, "PostgreSQL") if server.startswith("postg") else (MARIADB_ADMIN, "MariaDB")
    )
    made = _server_database(admin, kind)
    url = next(made)
    request.addfinalizer(lambda: next(made, None))
    return url


# The logging sections of the alembic.ini that 'alembic init' writes, for tests that write
# an existing project's alembic.ini.
ALEMBIC_INI_LOGGING = """
[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
"""


def two_empty_databases(request, tmp_path) -> tuple[str, str]:
    """Two empty databases of the kind ``request.param`` names ("sqlite", "postgres",
    "mariadb"): one for manage.py, one for plain alembic, to compare what each builds."""
    if request.param == "sqlite":
        return (
            f"sqlite:///{tmp_path / 'migrated.sqlite3'}",
            f"sqlite:///{tmp_path / 'upgraded.sqlite3'}",
        )
    return another_database(request, request.param), another_database(request, request.param)


@pytest.fixture
def pg_url():
    """A fresh, empty PostgreSQL database (psycopg2 URL)."""
    yield from _server_database(PG_ADMIN_URL, "PostgreSQL")


@pytest.fixture
def mariadb_url():
    """A fresh, empty MariaDB database (pymysql URL)."""
    yield from _server_database(MARIADB_ADMIN, "MariaDB")


def with_driver(url: str) -> str:
    """The URL for the tests' own engines: psycopg2 for a bare postgresql:// (SQLAlchemy 2.1
    would pick psycopg 3, which is not installed; sqlmanage itself gets the bare URL)."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg2://" + url[len("postgresql://") :]
    return url


def direct_engine(url: str):
    """An engine for checking a database behind sqlmanage's back."""
    import sqlalchemy as sa

    return sa.create_engine(with_driver(url), poolclass=sa.pool.NullPool)


def execute(url: str, *statements: str) -> None:
    """Run SQL behind sqlmanage's back, in one committed transaction (a user's hand edit)."""
    engine = direct_engine(url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


def inspect_schema(url: str) -> dict[str, set[str]]:
    """Table name -> column names, read straight from the database (the audit table aside)."""
    import sqlalchemy as sa

    engine = direct_engine(url)
    try:
        inspector = sa.inspect(engine)
        return {
            t: {c["name"] for c in inspector.get_columns(t)}
            for t in inspector.get_table_names()
            if t != AUDIT_TABLE
        }
    finally:
        engine.dispose()


def version_rows(url: str) -> set[str]:
    import sqlalchemy as sa

    engine = direct_engine(url)
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table("alembic_version"):
                return set()
            return {
                r for (r,) in connection.exec_driver_sql("select version_num from alembic_version")
            }
    finally:
        engine.dispose()


def spawn(project: Project, *args: str, env: dict[str, str] | None = None, cols: int = 200):
    """manage.py on a real pseudo-terminal, as a developer types it."""
    import pexpect

    return pexpect.spawn(
        sys.executable,
        ["manage.py", *args],
        cwd=str(project.path),
        env=project.environment(env),
        encoding="utf-8",
        timeout=60,
        dimensions=(40, cols),
    )


def finish(child) -> int:
    """Wait for a spawned command to end; its exit status."""
    import pexpect

    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def rows(project: Project, sql: str) -> list[tuple]:
    """Rows from the project's SQLite file, read behind sqlmanage's back."""
    with sqlite3.connect(project.sqlite_file) as connection:
        return connection.execute(sql).fetchall()
