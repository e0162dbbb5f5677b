"""The migration commands against real servers (PostgreSQL, MariaDB), async drivers, and
migrations that fail halfway.

Every test drives ``python manage.py ...`` in a subprocess inside its own copy of the example
project, pointing it at a fresh database through ``DATABASE_URL``, and then reads the database
directly (SQLAlchemy's inspector, the version table) to check what really happened.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from conftest import add_discount_code, direct_engine, inspect_schema, version_rows

ALL_MIGRATIONS = ["0001_initial", "0002_add_products_discount_rate", "0003_fill_discount_rate"]
APP_TABLES = {"categories", "products", "customers", "reviews"}

BROKEN_MIGRATION = '''"""broken: creates a table, alters another, then fails

Revision ID: 0004_broken
Revises: 0003_fill_discount_rate
"""
from alembic import op
import sqlalchemy as sa

revision = "0004_broken"
down_revision = "0003_fill_discount_rate"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("half_done", sa.Column("id", sa.Integer(), primary_key=True))
    op.add_column("customers", sa.Column("half_column", sa.Integer(), nullable=True))
    op.execute("THIS IS NOT VALID SQL")


def downgrade() -> None:
    op.drop_column("customers", "half_column")
    op.drop_table("half_done")
'''


# --- helpers -------------------------------------------------------------------------------


def db(url: str) -> dict[str, str]:
    return {"DATABASE_URL": url}


def marks(applied: int, names: list[str] = ALL_MIGRATIONS) -> list[str]:
    """showmigrations' plain output when the first ``applied`` migrations are applied."""
    return ["project"] + [f" [{'X' if i < applied else ' '}] {n}" for i, n in enumerate(names)]


def columns(url: str, table: str) -> dict[str, dict]:
    """Column name -> the inspector's column dict (type, nullable, ...)."""
    engine = direct_engine(url)
    try:
        return {c["name"]: c for c in sa.inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def assert_state(url: str, applied: int) -> None:
    """The version table and the schema are exactly those after the first ``applied``
    migrations of the example project (0 = nothing applied)."""
    expected_version = {ALL_MIGRATIONS[applied - 1]} if applied else set()
    assert version_rows(url) == expected_version
    tables = set(inspect_schema(url))
    if applied == 0:
        assert not tables & APP_TABLES, f"tables left behind after zero: {tables}"
        return
    assert tables >= APP_TABLES | {"alembic_version"}
    product_columns = columns(url, "products")
    if applied == 1:
        assert "discount_rate" not in product_columns
    else:
        assert "discount_rate" in product_columns
        assert product_columns["discount_rate"]["nullable"] is (applied == 2)


def assert_migrate_output(result, names: list[str], verb: str = "Applying") -> None:
    """migrate printed one ``  Applying NAME... OK`` line per migration, in order (Django's)."""
    step_lines = [
        line for line in result.lines if line.startswith(("  Applying ", "  Unapplying "))
    ]
    assert len(step_lines) == len(names), result.stdout
    for line, name in zip(step_lines, names, strict=True):
        assert line == f"  {verb} {name}... OK", line


def async_pg(pg_url: str) -> str:
    scheme, sep, rest = pg_url.partition("://")
    assert scheme == "postgresql" and sep, pg_url
    return f"postgresql+asyncpg://{rest}"


def add_broken_migration(project) -> None:
    (project.versions / "0004_broken.py").write_text(BROKEN_MIGRATION)


def assert_broken_migration_rolled_back(project, url: str, env: dict[str, str]) -> None:
    """0004_broken fails: exit 1, named on stderr, nothing of it left in the database."""
    assert_state(url, 3)
    add_broken_migration(project)
    result = project.run("migrate", env=env)
    assert result.returncode == 1, f"{result.stdout}\n{result.stderr}"
    assert "0004_broken" in result.stderr
    assert "syntax error" in result.stderr, "it failed before reaching the invalid SQL"
    assert "Traceback" not in result.stderr
    assert any(line.startswith("  Applying 0004_broken...") for line in result.lines), result.stdout
    schema = inspect_schema(url)
    assert "half_done" not in schema, "the failed migration's CREATE TABLE was not rolled back"
    assert "half_column" not in schema["customers"], (
        "the failed migration's ALTER was not rolled back"
    )
    assert version_rows(url) == {"0003_fill_discount_rate"}
    listing = project.manage("showmigrations", env=env)
    assert listing.lines == marks(3, ALL_MIGRATIONS + ["0004_broken"])


# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_full_cycle_with_a_model_change(project, pg_url):
    """A team on PostgreSQL migrates, changes a model, makes and applies the migration."""
    env = db(pg_url)

    migrate = project.manage("migrate", env=env)
    assert migrate.lines[:3] == [
        "Operations to perform:",
        "  Apply all migrations: project",
        "Running migrations:",
    ]
    assert_migrate_output(migrate, ALL_MIGRATIONS)
    assert project.manage("showmigrations", env=env).lines == marks(3)
    assert_state(pg_url, 3)
    assert not project.sqlite_file.exists(), "DATABASE_URL was ignored: db.sqlite3 was created"

    clean = project.run("makemigrations", "--check", env=env)
    assert clean.returncode == 0, f"{clean.stdout}\n{clean.stderr}"
    assert "No changes detected" in clean.stdout

    add_discount_code(project)
    check = project.run("makemigrations", "--check", env=env)
    assert check.returncode == 1, f"{check.stdout}\n{check.stderr}"
    assert project.migration_files() == [f"{n}.py" for n in ALL_MIGRATIONS], "--check wrote a file"

    made = project.manage("makemigrations", env=env)
    assert "Migrations for 'project':" in made.lines
    assert "    + Add column discount_code to products" in made.lines
    assert "0004_add_products_discount_code.py" in project.migration_files()

    pending = project.run("migrate", "--check", env=env)
    assert pending.returncode == 1
    assert "discount_code" not in inspect_schema(pg_url)["products"]

    applied = project.manage("migrate", env=env)
    assert_migrate_output(applied, ["0004_add_products_discount_code"])
    assert "discount_code" in inspect_schema(pg_url)["products"]
    assert version_rows(pg_url) == {"0004_add_products_discount_code"}
    assert project.manage("showmigrations", env=env).lines == marks(
        4, ALL_MIGRATIONS + ["0004_add_products_discount_code"]
    )
    assert project.run("migrate", "--check", env=env).returncode == 0
    settled = project.run("makemigrations", "--check", env=env)
    assert settled.returncode == 0, f"{settled.stdout}\n{settled.stderr}"
    assert "No changes detected" in settled.stdout

    back = project.manage("migrate", "0003", env=env)
    assert_migrate_output(back, ["0004_add_products_discount_code"], verb="Unapplying")
    assert "discount_code" not in inspect_schema(pg_url)["products"]
    assert_state(pg_url, 3)


@pytest.mark.postgres
def test_postgres_migrate_down_and_up_by_every_target_form(project, pg_url):
    """A developer moves a PostgreSQL database back and forth with every kind of TARGET."""
    env = db(pg_url)
    project.manage("migrate", env=env)
    assert_state(pg_url, 3)

    # (target, migrations applied afterwards, lines expected: (verb, names))
    moves = [
        ("0001", 1, "Unapplying", ["0003_fill_discount_rate", "0002_add_products_discount_rate"]),
        ("0002_add_products_discount_rate", 2, "Applying", ["0002_add_products_discount_rate"]),
        ("zero", 0, "Unapplying", ["0002_add_products_discount_rate", "0001_initial"]),
        ("0002_add", 2, "Applying", ["0001_initial", "0002_add_products_discount_rate"]),
        ("-1", 1, "Unapplying", ["0002_add_products_discount_rate"]),
        ("+1", 2, "Applying", ["0002_add_products_discount_rate"]),
        ("head", 3, "Applying", ["0003_fill_discount_rate"]),
        ("base", 0, "Unapplying", list(reversed(ALL_MIGRATIONS))),
        ("0002_add_products_discount_rate.py", 2, "Applying", ALL_MIGRATIONS[:2]),
        ("0003", 3, "Applying", ["0003_fill_discount_rate"]),
        ("-2", 1, "Unapplying", ["0003_fill_discount_rate", "0002_add_products_discount_rate"]),
        ("+2", 3, "Applying", ALL_MIGRATIONS[1:]),
    ]
    for target, applied, verb, names in moves:
        result = project.run("migrate", target, env=env)
        assert result.returncode == 0, (
            f"migrate {target} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
        assert_migrate_output(result, names, verb=verb)
        assert_state(pg_url, applied)
        listing = project.manage("showmigrations", env=env)
        assert listing.lines == marks(applied), f"after migrate {target}"

    nothing = project.manage("migrate", "head", env=env)
    assert "  No migrations to apply." in nothing.lines
    assert_state(pg_url, 3)


@pytest.mark.postgres
def test_postgres_fake_records_the_version_without_running(project, pg_url):
    """An existing PostgreSQL database is marked as migrated to 0002 without touching its tables."""
    env = db(pg_url)
    result = project.manage("migrate", "--fake", "0002", env=env)
    step_lines = [line for line in result.lines if line.startswith("  Applying ")]
    assert [line.split("...")[0] for line in step_lines] == [
        "  Applying 0001_initial",
        "  Applying 0002_add_products_discount_rate",
    ]
    assert all("FAKED" in line for line in step_lines), result.stdout
    assert version_rows(pg_url) == {"0002_add_products_discount_rate"}
    assert set(inspect_schema(pg_url)) == {"alembic_version"}, "--fake created tables"
    assert project.manage("showmigrations", env=env).lines == marks(2)
    assert project.run("migrate", "--check", env=env).returncode == 1


@pytest.mark.postgres
def test_postgres_plan_and_check_change_nothing(project, pg_url):
    """CI asks PostgreSQL what migrate would do (--plan) and whether it must run (--check)."""
    env = db(pg_url)

    plan = project.manage("migrate", "--plan", env=env)
    assert "Planned operations:" in plan.lines
    for name in ALL_MIGRATIONS:
        assert name in plan.stdout
    assert "Create table products" in plan.stdout
    assert version_rows(pg_url) == set()
    assert not set(inspect_schema(pg_url)) & APP_TABLES

    pending = project.run("migrate", "--check", env=env)
    assert pending.returncode == 1, f"{pending.stdout}\n{pending.stderr}"
    assert version_rows(pg_url) == set()
    assert not set(inspect_schema(pg_url)) & APP_TABLES

    project.manage("migrate", env=env)
    at_head = project.run("migrate", "--check", env=env)
    assert at_head.returncode == 0, f"{at_head.stdout}\n{at_head.stderr}"

    undo = project.manage("migrate", "--plan", "zero", env=env)
    assert "Planned operations:" in undo.lines
    assert "Undo" in undo.stdout
    assert_state(pg_url, 3)

    behind = project.manage("migrate", "0001", env=env)
    assert_migrate_output(
        behind, ["0003_fill_discount_rate", "0002_add_products_discount_rate"], "Unapplying"
    )
    assert project.run("migrate", "--check", env=env).returncode == 1
    assert_state(pg_url, 1)


@pytest.mark.postgres
def test_postgres_failed_migration_is_rolled_back(project, pg_url):
    """A migration fails halfway on PostgreSQL: nothing it did is left behind."""
    env = db(pg_url)
    project.manage("migrate", env=env)
    assert_broken_migration_rolled_back(project, pg_url, env)


def test_sqlite_failed_migration_is_rolled_back(project):
    """A migration fails halfway on the embedded SQLite default: nothing it did is left behind."""
    project.manage("migrate")
    url = f"sqlite:///{project.sqlite_file}"
    assert_broken_migration_rolled_back(project, url, {})


@pytest.mark.postgres
def test_postgres_async_url(project, pg_url):
    """A FastAPI-style project whose DATABASE_URL uses asyncpg migrates without extra settings."""
    env = db(async_pg(pg_url))
    migrate = project.manage("migrate", env=env)
    assert_migrate_output(migrate, ALL_MIGRATIONS)
    assert_state(pg_url, 3)
    assert project.manage("showmigrations", env=env).lines == marks(3)

    zero = project.manage("migrate", "zero", env=env)
    assert_migrate_output(zero, list(reversed(ALL_MIGRATIONS)), verb="Unapplying")
    assert_state(pg_url, 0)
    assert project.manage("showmigrations", env=env).lines == marks(0)
    assert not project.sqlite_file.exists()


def test_sqlite_aiosqlite_url(project, tmp_path):
    """A project on sqlite+aiosqlite migrates and unmigrates like one on plain SQLite."""
    path = tmp_path / "x.db"
    env = db(f"sqlite+aiosqlite:///{path}")
    sync_url = f"sqlite:///{path}"
    migrate = project.manage("migrate", env=env)
    assert_migrate_output(migrate, ALL_MIGRATIONS)
    assert path.exists()
    assert_state(sync_url, 3)
    assert project.manage("showmigrations", env=env).lines == marks(3)

    zero = project.manage("migrate", "zero", env=env)
    assert_migrate_output(zero, list(reversed(ALL_MIGRATIONS)), verb="Unapplying")
    assert_state(sync_url, 0)
    assert project.manage("showmigrations", env=env).lines == marks(0)
    assert not project.sqlite_file.exists()


@pytest.mark.postgres
def test_bare_postgresql_url(project, pg_url):
    """DATABASE_URL=postgresql://... (no driver named) works with the driver that is installed."""
    assert pg_url.startswith("postgresql://")
    env = db(pg_url)
    assert project.manage("showmigrations", env=env).lines == marks(0)
    migrate = project.manage("migrate", env=env)
    assert_migrate_output(migrate, ALL_MIGRATIONS)
    assert_state(pg_url, 3)
    assert project.manage("showmigrations", env=env).lines == marks(3)

    sql = project.manage("sqlmigrate", "0002", env=env)
    assert "BEGIN;" in sql.lines and "COMMIT;" in sql.lines
    assert "ALTER TABLE products ADD COLUMN discount_rate FLOAT" in sql.stdout


@pytest.mark.postgres
def test_postgres_data_migration_fills_existing_rows(project, pg_url):
    """Rows that exist before 0003 get discount_rate 0.0, then the column becomes NOT NULL."""
    env = db(pg_url)
    project.manage("migrate", "0002", env=env)
    assert_state(pg_url, 2)

    engine = direct_engine(pg_url)
    try:
        with engine.begin() as connection:
            category_id = connection.execute(
                sa.text("INSERT INTO categories (name) VALUES ('Books') RETURNING id")
            ).scalar_one()
            connection.execute(
                sa.text(
                    "INSERT INTO products (name, price, category_id, discount_rate) "
                    "VALUES ('Dune', 9.5, :category, NULL)"
                ),
                {"category": category_id},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO products (name, price, category_id, discount_rate) "
                    "VALUES ('Emma', 7.0, :category, 0.25)"
                ),
                {"category": category_id},
            )

        migrate = project.manage("migrate", env=env)
        assert_migrate_output(migrate, ["0003_fill_discount_rate"])
        with engine.connect() as connection:
            rows = dict(
                connection.execute(sa.text("SELECT name, discount_rate FROM products")).all()
            )
    finally:
        engine.dispose()
    assert rows == {"Dune": 0.0, "Emma": 0.25}
    assert columns(pg_url, "products")["discount_rate"]["nullable"] is False
    assert_state(pg_url, 3)


# --- MariaDB --------------------------------------------------------------------------------


@pytest.mark.mariadb
def test_mariadb_cycle(project, mariadb_url):
    """A team on MariaDB (mysql+pymysql) migrates, finds no model drift, unmigrates, migrates again."""
    env = db(mariadb_url)
    assert project.manage("showmigrations", env=env).lines == marks(0)

    migrate = project.manage("migrate", env=env)
    assert_migrate_output(migrate, ALL_MIGRATIONS)
    assert_state(mariadb_url, 3)
    assert project.manage("showmigrations", env=env).lines == marks(3)

    clean = project.run("makemigrations", "--check", env=env)
    assert clean.returncode == 0, (
        f"models and migrations disagree on MariaDB:\n{clean.stdout}\n{clean.stderr}"
    )
    assert "No changes detected" in clean.stdout

    zero = project.manage("migrate", "zero", env=env)
    assert_migrate_output(zero, list(reversed(ALL_MIGRATIONS)), verb="Unapplying")
    assert_state(mariadb_url, 0)
    assert project.manage("showmigrations", env=env).lines == marks(0)

    again = project.manage("migrate", env=env)
    assert_migrate_output(again, ALL_MIGRATIONS)
    assert_state(mariadb_url, 3)
    assert project.run("migrate", "--check", env=env).returncode == 0


@pytest.mark.mariadb
def test_mariadb_sqlmigrate_has_no_transaction(project, mariadb_url):
    """sqlmigrate for MariaDB, which cannot roll back DDL, does not pretend to with BEGIN/COMMIT."""
    result = project.manage("sqlmigrate", "0002", env=db(mariadb_url))
    assert "BEGIN;" not in result.lines and "COMMIT;" not in result.lines, result.stdout
    assert "ALTER TABLE products ADD COLUMN discount_rate FLOAT" in result.stdout
    assert "-- Add column discount_rate to products" in result.lines
    assert version_rows(mariadb_url) == set(), "sqlmigrate touched the database"


@pytest.mark.postgres
def test_postgres_sql_script_builds_the_migrated_schema(project, pg_url):
    """'migrate --sql' fed to PostgreSQL builds every table and records the head."""
    script = project.manage("migrate", "--sql", env=db(pg_url)).stdout
    engine = direct_engine(pg_url)
    try:
        with engine.connect() as connection:
            connection.connection.dbapi_connection.autocommit = True
            connection.exec_driver_sql(script.replace("%", "%%"))
    finally:
        engine.dispose()
    from_script = inspect_schema(pg_url)
    assert version_rows(pg_url) == {"0003_fill_discount_rate"}
    assert set(from_script) >= {"categories", "products", "customers", "reviews", "alembic_version"}
    assert "discount_rate" in from_script["products"]


COMMIT_MODE_MIGRATION = '''"""records the session's synchronous_commit

Revision ID: {revision}
Revises: {parent}
"""
from alembic import op
import sqlalchemy as sa

revision = "{revision}"
down_revision = "{parent}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    {create}
    op.execute("INSERT INTO commit_modes SELECT '{revision}', current_setting('synchronous_commit')")


def downgrade() -> None:
    pass
'''


@pytest.mark.postgres
def test_postgres_migrations_run_with_the_servers_own_commit_settings(project, pg_url):
    """No session setting is changed for a run (it would stay on a pooled connection): every
    migration commits with the server's synchronous_commit."""
    create = 'op.create_table("commit_modes", sa.Column("revision", sa.String(32)), sa.Column("mode", sa.String(8)))'
    for revision, parent, first in (
        ("0004_mode", ALL_MIGRATIONS[-1], True),
        ("0005_mode", "0004_mode", False),
    ):
        (project.versions / f"{revision}.py").write_text(
            COMMIT_MODE_MIGRATION.format(
                revision=revision, parent=parent, create=create if first else "pass"
            )
        )
    project.manage("migrate", env=db(pg_url))
    with direct_engine(pg_url).connect() as connection:
        modes = dict(connection.execute(sa.text("SELECT revision, mode FROM commit_modes")).all())
    assert modes == {"0004_mode": "on", "0005_mode": "on"}
    assert version_rows(pg_url) == {"0005_mode"}
