"""Several databases: DATABASES aliases, --database on every command, migrate --all-databases.

The example project keeps its SQLite "default" and gains an "analytics" database on
PostgreSQL with its own models package and migrations folder, as a user would add one.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import uuid
from io import StringIO

import pytest

from conftest import execute, inspect_schema, version_rows

ANALYTICS_MODELS = """\
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class AnalyticsBase(DeclarativeBase):
    pass


class PageView(AnalyticsBase):
    __tablename__ = "page_views"

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(sa.String(200))
"""

ANALYTICS_SETTINGS = """
DATABASES = {
    "default": {"URL": DATABASE_URL},
    "analytics": {
        "URL": %r,
        "MODELS": ["analytics.models"],
        "MIGRATIONS": BASE_DIR / "analytics" / "migrations",
    },
}
"""

# What plain alembic needs to reach the analytics folder: 'alembic -n analytics ...'.
ANALYTICS_INI = """
[analytics]
script_location = analytics/migrations
prepend_sys_path = .
"""


def hand_written(revision: str, down_revision: str | None, upgrade: str) -> str:
    """An analytics migration written by hand (upgrade body indented by four spaces)."""
    return (
        f'"""{revision}"""\nimport os\nimport time\nfrom pathlib import Path\n\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        f"revision = {revision!r}\ndown_revision = {down_revision!r}\n"
        "branch_labels = None\ndepends_on = None\n\n\n"
        f"def upgrade():\n{upgrade}\n\n\ndef downgrade():\n    pass\n"
    )


INITIAL = hand_written(
    "0001_initial",
    None,
    '    op.create_table("page_views", sa.Column("id", sa.Integer, primary_key=True),\n'
    '                    sa.Column("path", sa.String(200), nullable=False))',
)


def with_password(url: str) -> tuple[str, str]:
    """The URL with a password in it (the test server trusts, so any password works)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.password:
        return url, parsed.password
    password = "Sekr1t-" + uuid.uuid4().hex[:8]
    return parsed.set(password=password).render_as_string(hide_password=False), password


@pytest.fixture
def two_databases(project, pg_url):
    """The example project plus an 'analytics' PostgreSQL database with its own models."""
    url, password = with_password(pg_url)
    (project.path / "analytics" / "models").mkdir(parents=True)
    (project.path / "analytics" / "__init__.py").write_text("")
    (project.path / "analytics" / "models" / "__init__.py").write_text("")
    (project.path / "analytics" / "models" / "events.py").write_text(ANALYTICS_MODELS)
    with (project.path / "project" / "settings.py").open("a") as settings:
        settings.write(ANALYTICS_SETTINGS % url)
    with (project.path / "alembic.ini").open("a") as ini:
        ini.write(ANALYTICS_INI)
    project.analytics_url, project.password = url, password
    project.analytics_versions = project.path / "analytics" / "migrations" / "versions"
    return project


@pytest.fixture
def analytics_migrated_by_hand(two_databases):
    """The two-database project with analytics' 0001 already written (no makemigrations)."""
    folder = two_databases.analytics_versions.parent
    folder.mkdir()
    two_databases.analytics_versions.mkdir()
    for name in ("env.py", "script.py.mako"):
        (folder / name).write_text(
            (two_databases.path / "project" / "migrations" / name).read_text()
        )
    (two_databases.analytics_versions / "0001_initial.py").write_text(INITIAL)
    return two_databases


def summary_row(result, alias: str) -> list[str]:
    """The summary's row for ``alias``: its five cells, split on runs of spaces."""
    for line in result.lines:
        if line.startswith(alias + " "):
            return re.split(r"  +", line, maxsplit=4)
    raise AssertionError(f"no summary row for {alias}:\n{result.stdout}")


def assert_nothing_leaked(result, password: str) -> None:
    for stream in (result.stdout, result.stderr):
        assert password not in stream
        assert "Traceback" not in stream


@pytest.mark.postgres
def test_two_databases_each_with_its_own_models_and_migrations(two_databases):
    project = two_databases
    made = project.manage("makemigrations", "--database", "analytics")
    assert made.lines[-3:] == [
        "Migrations for 'project:analytics':",
        "  analytics/migrations/versions/0001_initial.py",
        "    + Create table page_views",
    ]
    assert sorted(p.name for p in project.analytics_versions.glob("*.py")) == ["0001_initial.py"]
    assert (project.analytics_versions.parent / "env.py").is_file()
    assert project.migration_files() == [
        "0001_initial.py",
        "0002_add_products_discount_rate.py",
        "0003_fill_discount_rate.py",
    ]

    first = project.run("migrate", "--all-databases", "--noinput")
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.lines[0] == "Migrating 2 databases in parallel: default, analytics"
    assert first.lines[1].split() == ["Alias", "Database", "Applied", "Time", "Result"]
    default_row, analytics_row = summary_row(first, "default"), summary_row(first, "analytics")
    assert default_row[0:3] == ["default", f"sqlite:///{project.sqlite_file}", "3"]
    assert default_row[-1] == "OK"
    assert analytics_row[2] == "1" and analytics_row[-1] == "OK"
    assert analytics_row[1].startswith("postgresql+psycopg2://postgres:***@")
    assert first.lines[-1].startswith("2 databases: 2 OK (")
    assert_nothing_leaked(first, project.password)
    assert {"products", "reviews"} <= project.sqlite_tables()
    assert project.sqlite_version() == {"0003_fill_discount_rate"}
    assert set(inspect_schema(project.analytics_url)) == {"alembic_version", "page_views"}
    assert version_rows(project.analytics_url) == {"0001_initial"}

    again = project.manage("migrate", "--all-databases")
    assert summary_row(again, "default")[2] == "0" and summary_row(again, "analytics")[2] == "0"
    assert again.lines[-1].startswith("2 databases: 2 OK (")
    assert version_rows(project.analytics_url) == {"0001_initial"}

    shown = project.manage("showmigrations", "--database", "analytics")
    assert shown.lines == ["project:analytics", " [X] 0001_initial"]
    sql = project.manage("sqlmigrate", "0001", "--database", "analytics")
    assert "CREATE TABLE page_views" in sql.stdout and "SERIAL" in sql.stdout  # PostgreSQL's SQL
    plain_alembic = project.alembic("-n", "analytics", "current")
    assert plain_alembic.returncode == 0, plain_alembic.stderr
    assert plain_alembic.stdout.strip() == "0001_initial (head)"


@pytest.mark.postgres
def test_one_failing_database_does_not_stop_the_others(analytics_migrated_by_hand, pg_url):
    project = analytics_migrated_by_hand
    missing, password = with_password(pg_url.rsplit("/", 1)[0] + "/sqlmanage_no_such_database")
    unreachable = project.run("migrate", "--all-databases", env={"DATABASE_URL_ANALYTICS": missing})
    assert unreachable.returncode == 1
    assert project.sqlite_version() == {"0003_fill_discount_rate"}
    row = summary_row(unreachable, "analytics")
    assert row[1].endswith("@127.0.0.1:5432/sqlmanage_no_such_database") and "***" in row[1]
    assert row[-1].startswith("FAILED: Cannot connect to the database:")
    assert 'database "sqlmanage_no_such_database" does not exist' in row[-1]
    assert summary_row(unreachable, "default")[-1] == "OK"
    assert unreachable.lines[-1].startswith("2 databases: 1 OK, 1 FAILED (")
    assert (
        unreachable.stderr.splitlines()[0]
        == "Error: 1 of 2 databases failed to migrate: analytics."
    )
    assert_nothing_leaked(unreachable, password)

    (project.analytics_versions / "0002_broken.py").write_text(
        hand_written(
            "0002_broken",
            "0001_initial",
            '    op.add_column("page_views", sa.Column("referrer", sa.String(200)))\n'
            '    op.execute("SELECT * FROM no_such_table")',
        )
    )
    broken = project.run("migrate", "--all-databases")
    assert broken.returncode == 1
    row = summary_row(broken, "analytics")
    assert row[2] == "1"  # 0001 applied before 0002 failed
    assert row[-1] == (
        "FAILED: Applying 0002_broken failed: ProgrammingError: relation "
        '"no_such_table" does not exist'
    )
    assert summary_row(broken, "default")[2] == "0"
    assert version_rows(project.analytics_url) == {"0001_initial"}  # 0002 rolled back whole
    assert inspect_schema(project.analytics_url)["page_views"] == {"id", "path"}
    assert_nothing_leaked(broken, project.password)

    checked = project.run("migrate", "--all-databases", "--check", "--plan")
    assert checked.returncode == 1, checked.stderr
    assert "Database 'analytics' (postgresql+psycopg2://postgres:***@" in checked.stdout
    assert (
        "  0002_broken" in checked.lines
        and "      Add column referrer to page_views" in checked.lines
    )
    assert summary_row(checked, "analytics")[2] == "1"
    assert summary_row(checked, "analytics")[-1] == "UNAPPLIED"
    assert summary_row(checked, "default")[-1] == "OK"
    assert checked.lines[-1] == "2 databases: 1 OK, 1 UNAPPLIED."
    assert checked.stderr == ""
    assert (
        project.run("migrate", "--all-databases", "--plan", "-v", "0").returncode == 0
    )  # no --check


@pytest.mark.postgres
def test_interrupting_all_databases_stops_every_worker_once(analytics_migrated_by_hand, tmp_path):
    """SIGTERM (or Ctrl-C) reaches each worker once: its migration rolls back, exit 130."""
    project = analytics_migrated_by_hand
    marker = tmp_path / "sleeping"
    (project.analytics_versions / "0002_slow.py").write_text(
        hand_written(
            "0002_slow",
            "0001_initial",
            '    op.add_column("page_views", sa.Column("referrer", sa.String(200)))\n'
            '    Path(os.environ["SLOW_MARKER"]).touch()\n'
            "    time.sleep(60)",
        )
    )
    process = subprocess.Popen(
        [sys.executable, "manage.py", "migrate", "--all-databases"],
        cwd=project.path,
        env=project.environment({"SLOW_MARKER": str(marker)}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert marker.exists(), process.communicate()
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stdout + stderr
    assert "INTERRUPTED: Interrupted while applying 0002_slow." in stdout
    assert stderr.startswith("Error: Interrupted:") and "Traceback" not in stderr
    assert version_rows(project.analytics_url) == {"0001_initial"}
    assert inspect_schema(project.analytics_url)["page_views"] == {"id", "path"}
    execute(project.analytics_url, "SELECT 1")  # no lock or session left that blocks


@pytest.mark.parametrize(
    "arguments, clash",
    [
        (["0002"], "TARGET"),
        (["--database", "analytics"], "--database"),
        (["--fake"], "--fake"),
        (["--sql"], "--sql"),
    ],
)
def test_all_databases_refuses_what_does_not_apply_to_every_database(capsys, arguments, clash):
    from sqlmanage.cli import main

    assert main(["migrate", "--all-databases", *arguments]) == 2
    assert f"--all-databases cannot be combined with {clash}." in capsys.readouterr().err


@pytest.fixture
def settings_package(tmp_path, monkeypatch):
    """Write a settings module under a unique package name and load it in this process."""
    from sqlmanage.settings import load_settings

    package = f"multidb_{uuid.uuid4().hex[:8]}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    for name in ("DATABASE_URL", "DATABASE_URL_ANALYTICS", "DATABASE_URL_READ_REPLICA"):
        monkeypatch.delenv(name, raising=False)

    def load(text: str):
        (tmp_path / package / "settings.py").write_text(text)
        sys.modules.pop(f"{package}.settings", None)
        return load_settings(f"{package}.settings")

    yield load
    for name in [n for n in sys.modules if n.startswith(package)]:
        del sys.modules[name]


def test_each_alias_has_its_own_environment_variable(settings_package, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "sqlite:///from-env.sqlite3")
    monkeypatch.setenv("DATABASE_URL_ANALYTICS", "postgresql://db.example/analytics")
    monkeypatch.setenv("DATABASE_URL_READ_REPLICA", "postgresql://replica.example/app")
    settings = settings_package(
        'DATABASES = {"default": {"URL": "sqlite:///a.sqlite3"},\n'
        '             "analytics": {"URL": "sqlite:///b.sqlite3", "MIGRATIONS": "analytics/migrations"},\n'
        '             "read-replica": {}}\n'
    )
    assert {a: d.url for a, d in settings.databases.items()} == {
        "default": "sqlite:///from-env.sqlite3",
        "analytics": "postgresql://db.example/analytics",
        "read-replica": "postgresql://replica.example/app",
    }
    assert (
        settings.databases["analytics"].migrations == settings.base_dir / "analytics" / "migrations"
    )
    assert settings.databases["read-replica"].migrations == settings.databases["default"].migrations


def test_database_settings_mistakes_are_named(settings_package):
    from sqlmanage.errors import SettingsError

    with pytest.raises(SettingsError) as typo:
        settings_package('DATABASES = {"analytics": {"URL": "sqlite://", "MIGRATION": "x"}}\n')
    assert "DATABASES['analytics'] has unknown key(s): MIGRATION." in typo.value.message
    assert typo.value.hint == (
        "Each database takes URL, MODELS, MIGRATIONS, MIGRATION_LOCK_TIMEOUT, "
        "MIGRATION_STATEMENT_TIMEOUT, MIGRATION_LOCK_TRIES."
    )
    with pytest.raises(SettingsError) as no_url:
        settings_package('DATABASES = {"read-replica": {}}\n')
    assert "DATABASES['read-replica'] has no URL." in no_url.value.message
    assert "DATABASE_URL_READ_REPLICA" in no_url.value.hint
    with pytest.raises(SettingsError) as unknown:
        settings_package('DATABASES = {"analytics": {"URL": "sqlite://"}}\n').database("nope")
    assert unknown.value.hint == "Known aliases: analytics, default."


def test_plain_alembic_finds_the_alias_of_its_migrations_folder(settings_package, tmp_path):
    from alembic.config import Config

    from sqlmanage.errors import SettingsError
    from sqlmanage.project import Project

    settings_package(
        'DATABASES = {"analytics": {"URL": "sqlite:///b.sqlite3", "MIGRATIONS": "analytics/migrations"},\n'
        '             "replica": {"URL": "sqlite:///c.sqlite3"}}\n'
    )
    (tmp_path / "analytics" / "migrations").mkdir(parents=True)
    default_folder = next(tmp_path.glob("multidb_*")) / "migrations"
    default_folder.mkdir()

    def alias(location, section="alembic", x=()):
        config = Config(ini_section=section, cmd_opts=type("Options", (), {"x": list(x)})())
        config.set_main_option("script_location", str(location))
        return Project.from_alembic_config(config).database.alias

    assert alias("analytics/migrations") == "analytics"  # by folder
    assert alias(default_folder) == "default"  # shared folders go to default
    assert alias(default_folder, x=["database=replica"]) == "replica"
    assert alias("analytics/migrations", section="analytics") == "analytics"
    with pytest.raises(SettingsError) as mismatch:
        alias(default_folder, x=["database=analytics"])
    assert "keeps its migrations in" in mismatch.value.message
    assert "alembic -n analytics" in mismatch.value.hint


def test_summary_renders_plain_and_rich():
    from rich.console import Console

    from sqlmanage.actions.all_databases import AllDatabases, DatabaseOutcome
    from sqlmanage.render.databases import plain_summary, rich_summary

    run = AllDatabases(
        [
            DatabaseOutcome(
                "default", "sqlite:///db.sqlite3", "OK", ["0001_initial", "0002_x"], seconds=0.25
            ),
            DatabaseOutcome(
                "analytics",
                "postgresql://u:***@db/analytics",
                "FAILED",
                [],
                "Cannot connect to the database postgresql://u:***@db/analytics: timeout expired",
                10.0,
            ),
        ],
        seconds=10.4,
    )
    assert list(plain_summary(run)) == [
        ("Alias      Database                         Applied  Time    Result", "label"),
        ("default    sqlite:///db.sqlite3             2        0.25s   OK", "success"),
        (
            "analytics  postgresql://u:***@db/analytics  0        10.00s  "
            "FAILED: Cannot connect to the database: timeout expired",
            "error",
        ),
        ("2 databases: 1 OK, 1 FAILED (10.40s).", "error"),
    ]
    console = Console(file=StringIO(), width=80, color_system=None)
    for renderable in rich_summary(run):
        console.print(renderable)
    text = console.file.getvalue()
    assert "Databases" in text and "│ analytics │" in text
    assert "timeout" in text and "expired" in text  # the error folds; it is never cut off
    assert text.rstrip().endswith("2 databases: 1 OK, 1 FAILED (10.40s).")
