"""The same project driven by the plain ``alembic`` CLI and API and by ``manage.py``.

The example project's env.py delegates to ``sqlmanage.alembic_env.run_migrations``, so a team
can mix ``alembic upgrade head`` and ``python manage.py migrate`` (or call Alembic's API with a
connection of its own) and both sides must agree on the URL, the history, the version table
and the resulting schema.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

import conftest
from conftest import (
    AUDIT_TABLE,
    PG_ADMIN_URL,
    add_discount_code,
    direct_engine,
    inspect_schema,
    version_rows,
    with_driver,
)

ALL_MIGRATIONS = ["0001_initial", "0002_add_products_discount_rate", "0003_fill_discount_rate"]
APP_TABLES = {"categories", "products", "customers", "reviews"}
UNREACHABLE = "postgresql://u:pw@127.0.0.1:1/x"


@pytest.fixture
def other_pg_url():
    """A second fresh PostgreSQL database, for comparing two ways of migrating."""
    yield from conftest._server_database(PG_ADMIN_URL, "PostgreSQL")


# --- helpers -------------------------------------------------------------------------------


@dataclass
class Database:
    url: str
    env: dict[str, str]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request, project) -> Database:
    """The project's database: the embedded SQLite default (no DATABASE_URL), or PostgreSQL."""
    if request.param == "sqlite":
        return Database(f"sqlite:///{project.sqlite_file}", {})
    url = request.getfixturevalue("pg_url")
    return Database(url, {"DATABASE_URL": url})


def marks(applied: int, names: list[str] = ALL_MIGRATIONS) -> list[str]:
    """showmigrations' plain output when the first ``applied`` migrations are applied."""
    return ["project"] + [f" [{'X' if i < applied else ' '}] {n}" for i, n in enumerate(names)]


def assert_state(url: str, applied: int) -> None:
    """Version table and tables are those after the first ``applied`` migrations."""
    assert version_rows(url) == ({ALL_MIGRATIONS[applied - 1]} if applied else set())
    tables = set(inspect_schema(url))
    if applied:
        assert tables >= APP_TABLES
        assert ("discount_rate" in inspect_schema(url)["products"]) is (applied >= 2)
    else:
        assert not tables & APP_TABLES, tables


def ok(result, what: str = "") -> None:
    assert result.returncode == 0, (
        f"{what} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    )


def alembic_ok(project, *args: str, env: dict[str, str]):
    result = project.alembic(*args, env=env)
    ok(result, f"alembic {' '.join(args)}")
    return result


def current_revisions(project, env: dict[str, str]) -> set[str]:
    """The revisions ``alembic current`` reports (its stdout: 'REV' or 'REV (head)' lines)."""
    result = alembic_ok(project, "current", env=env)
    return {line.split()[0] for line in result.lines if line.strip()}


def full_schema(url: str) -> dict:
    """Everything the inspector sees: columns with types, nullability and defaults, keys,
    indexes and unique constraints, per table."""
    engine = direct_engine(url)
    try:
        inspector = sa.inspect(engine)
        schema = {}
        for table in inspector.get_table_names():
            if table == AUDIT_TABLE:  # sqlmanage's audit trail; plain alembic writes none
                continue
            schema[table] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                    for c in inspector.get_columns(table)
                ],
                "pk": inspector.get_pk_constraint(table),
                "fks": sorted(map(repr, inspector.get_foreign_keys(table))),
                "indexes": sorted(map(repr, inspector.get_indexes(table))),
                "uniques": sorted(map(repr, inspector.get_unique_constraints(table))),
            }
        return schema
    finally:
        engine.dispose()


# --- alembic and manage.py on one database ------------------------------------------------


def test_alembic_and_manage_py_share_one_history(project, database):
    """A team mixes 'alembic upgrade/downgrade' and 'manage.py migrate' on the same database."""
    env, url = database.env, database.url

    alembic_ok(project, "upgrade", "head", env=env)
    assert project.manage("showmigrations", env=env).lines == marks(3)
    assert_state(url, 3)
    assert current_revisions(project, env) == {"0003_fill_discount_rate"}

    project.manage("migrate", "zero", env=env)
    assert current_revisions(project, env) == set()
    assert_state(url, 0)

    project.manage("migrate", "0002", env=env)
    current = alembic_ok(project, "current", env=env)
    assert "0002_add_products_discount_rate" in current.stdout
    assert_state(url, 2)

    alembic_ok(project, "downgrade", "base", env=env)
    assert project.manage("showmigrations", env=env).lines == marks(0)
    assert_state(url, 0)

    alembic_ok(project, "upgrade", "+1", env=env)
    assert project.manage("showmigrations", env=env).lines == marks(1)
    assert_state(url, 1)
    alembic_ok(project, "upgrade", "+1", env=env)
    assert project.manage("showmigrations", env=env).lines == marks(2)
    assert_state(url, 2)
    alembic_ok(project, "downgrade", "-1", env=env)
    assert project.manage("showmigrations", env=env).lines == marks(1)
    assert_state(url, 1)

    project.manage("migrate", "+2", env=env)
    assert current_revisions(project, env) == {"0003_fill_discount_rate"}
    project.manage("migrate", "-1", env=env)
    assert current_revisions(project, env) == {"0002_add_products_discount_rate"}
    assert project.run("migrate", "--check", env=env).returncode == 1
    alembic_ok(project, "upgrade", "head", env=env)
    assert project.run("migrate", "--check", env=env).returncode == 0
    assert "  No migrations to apply." in project.manage("migrate", env=env).lines
    assert_state(url, 3)


def test_alembic_history_lists_the_migrations(project):
    """'alembic history' shows the project's three migrations in order, without a database."""
    result = alembic_ok(project, "history", env={})
    assert result.lines == [
        "0002_add_products_discount_rate -> 0003_fill_discount_rate (head), fill discount rate",
        "0001_initial -> 0002_add_products_discount_rate, add products discount rate",
        "<base> -> 0001_initial, initial",
    ]
    assert not project.sqlite_file.exists(), "alembic history created the database"


def test_sqlite_schemas_from_alembic_and_manage_py_are_identical(project, tmp_path):
    """'alembic upgrade head' and 'manage.py migrate' build the same SQLite schema."""
    by_alembic = f"sqlite:///{tmp_path / 'by_alembic.db'}"
    by_manage = f"sqlite:///{tmp_path / 'by_manage.db'}"
    alembic_ok(project, "upgrade", "head", env={"DATABASE_URL": by_alembic})
    project.manage("migrate", env={"DATABASE_URL": by_manage})
    assert set(inspect_schema(by_alembic)) >= APP_TABLES
    assert inspect_schema(by_alembic) == inspect_schema(by_manage)
    assert full_schema(by_alembic) == full_schema(by_manage)
    assert version_rows(by_alembic) == version_rows(by_manage) == {"0003_fill_discount_rate"}
    assert not project.sqlite_file.exists()


@pytest.mark.postgres
def test_postgres_schemas_from_alembic_and_manage_py_are_identical(project, pg_url, other_pg_url):
    """'alembic upgrade head' and 'manage.py migrate' build the same PostgreSQL schema."""
    alembic_ok(project, "upgrade", "head", env={"DATABASE_URL": pg_url})
    project.manage("migrate", env={"DATABASE_URL": other_pg_url})
    assert set(inspect_schema(pg_url)) >= APP_TABLES
    assert inspect_schema(pg_url) == inspect_schema(other_pg_url)
    assert full_schema(pg_url) == full_schema(other_pg_url)
    assert version_rows(pg_url) == version_rows(other_pg_url) == {"0003_fill_discount_rate"}


# --- offline SQL ---------------------------------------------------------------------------


def assert_offline(result, what: str) -> None:
    ok(result, what)
    assert ":pw@" not in result.stdout + result.stderr, "the password was printed"
    assert "Cannot connect" not in result.stderr


def test_alembic_upgrade_sql_needs_no_database(project):
    """A DBA gets the full upgrade script from 'alembic upgrade head --sql' with no server around."""
    result = project.alembic("upgrade", "head", "--sql", env={"DATABASE_URL": UNREACHABLE})
    assert_offline(result, "alembic upgrade head --sql")
    for table in ("alembic_version", "categories", "customers", "products", "reviews"):
        assert f"CREATE TABLE {table}" in result.stdout
    assert "ALTER TABLE products ADD COLUMN discount_rate FLOAT" in result.stdout
    assert "ALTER TABLE products ALTER COLUMN discount_rate SET NOT NULL" in result.stdout
    assert "UPDATE alembic_version SET version_num='0003_fill_discount_rate'" in result.stdout
    assert not project.sqlite_file.exists()


def test_manage_migrate_sql_needs_no_database(project):
    """'manage.py migrate --sql' prints the PostgreSQL script though the server is unreachable."""
    result = project.run("migrate", "--sql", env={"DATABASE_URL": UNREACHABLE})
    assert_offline(result, "migrate --sql")
    for table in ("alembic_version", "categories", "customers", "products", "reviews"):
        assert f"CREATE TABLE {table}" in result.stdout
    assert "BEGIN;" in result.lines and "COMMIT;" in result.lines
    assert "ALTER TABLE products ALTER COLUMN discount_rate SET NOT NULL" in result.stdout
    assert not project.sqlite_file.exists()


def test_sqlmigrate_needs_no_database(project):
    """'manage.py sqlmigrate 0001' shows the initial migration's SQL with the server unreachable."""
    result = project.run("sqlmigrate", "0001", env={"DATABASE_URL": UNREACHABLE})
    assert_offline(result, "sqlmigrate 0001")
    for table in ("categories", "customers", "products", "reviews"):
        assert f"CREATE TABLE {table}" in result.stdout
    assert (
        "CREATE INDEX idx_products_category ON products (category_id, is_active)" in result.stdout
    )
    assert "BEGIN;" in result.lines and "COMMIT;" in result.lines
    assert not project.sqlite_file.exists()


# --- Alembic's API with a connection of one's own ----------------------------------------

UPGRADE_SCRIPT = '''\
"""Alembic's cookbook: hand env.py an Engine or a Connection through config.attributes."""
import sys

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

url, mode = sys.argv[1], sys.argv[2]
cfg = Config("alembic.ini")
engine = sa.create_engine(url)
if mode == "engine":
    cfg.attributes["connection"] = engine
    command.upgrade(cfg, "head")
elif mode == "connection":
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
elif mode == "chained":
    # "link multiple commands along a single connection and transaction" (Alembic's docs)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0002_add_products_discount_rate")
        connection.execute(sa.text("INSERT INTO categories (name) VALUES ('from the caller')"))
        command.upgrade(cfg, "head")
engine.dispose()
print("UPGRADED")
'''


def run_upgrade_script(project, url: str, mode: str) -> None:
    (project.path / "upgrade_with_connection.py").write_text(UPGRADE_SCRIPT)
    result = project.run(
        "upgrade_with_connection.py", with_driver(url), mode, program=[sys.executable]
    )
    ok(result, f"alembic.command.upgrade ({mode})")
    assert "UPGRADED" in result.stdout


def category_names(url: str) -> list[str]:
    engine = direct_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.text("SELECT name FROM categories")).scalars())
    finally:
        engine.dispose()


@pytest.mark.parametrize("mode", ["engine", "connection"])
def test_env_py_uses_the_connection_handed_in_on_sqlite(project, tmp_path, mode):
    """An app calls alembic.command.upgrade with its own SQLite Engine or Connection."""
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    run_upgrade_script(project, url, mode)
    assert_state(url, 3)
    assert not project.sqlite_file.exists(), "env.py opened the settings' database instead"


@pytest.mark.postgres
def test_env_py_uses_the_connection_handed_in_on_postgres(project, pg_url):
    """An app migrates PostgreSQL at start-up with alembic.command.upgrade on its own Connection."""
    run_upgrade_script(project, pg_url, "connection")
    assert_state(pg_url, 3)
    assert not project.sqlite_file.exists(), "env.py opened the settings' database instead"


def test_commands_chained_in_the_callers_transaction(project, database):
    """Alembic's documented recipe: several commands and the app's own SQL in one transaction."""
    run_upgrade_script(project, database.url, "chained")
    assert_state(database.url, 3)
    assert category_names(database.url) == ["from the caller"]


# --- makemigrations writes ordinary Alembic revisions -----------------------------------


def test_makemigrations_writes_an_ordinary_alembic_revision(project):
    """After 'manage.py makemigrations', plain alembic sees and applies the new revision."""
    project.manage("migrate")
    add_discount_code(project)
    project.manage("makemigrations")
    new_files = set(project.migration_files()) - {f"{n}.py" for n in ALL_MIGRATIONS}
    assert new_files == {"0004_add_products_discount_code.py"}
    source = (project.versions / "0004_add_products_discount_code.py").read_text()
    revision = re.search(r"^revision(?::\s*str)?\s*=\s*['\"]([^'\"]+)['\"]", source, re.M).group(1)
    assert len(revision) <= 32
    assert re.search(r"^down_revision.*=\s*['\"]0003_fill_discount_rate['\"]", source, re.M)

    heads = alembic_ok(project, "heads", env={})
    assert heads.lines == [f"{revision} (head)"]
    history = alembic_ok(project, "history", env={})
    assert history.lines[0].startswith(f"0003_fill_discount_rate -> {revision} (head)")

    alembic_ok(project, "upgrade", "head", env={})
    assert project.sqlite_version() == {revision}
    url = f"sqlite:///{project.sqlite_file}"
    assert "discount_code" in inspect_schema(url)["products"]
    assert project.manage("showmigrations").lines == marks(4, ALL_MIGRATIONS + [revision])
    check = alembic_ok(project, "check", env={})
    assert "No new upgrade operations detected" in check.stdout + check.stderr
    clean = project.run("makemigrations", "--check")
    assert clean.returncode == 0 and "No changes detected" in clean.stdout, (
        clean.stdout + clean.stderr
    )

    alembic_ok(project, "downgrade", "-1", env={})
    assert "discount_code" not in inspect_schema(url)["products"]
    assert project.sqlite_version() == {"0003_fill_discount_rate"}
