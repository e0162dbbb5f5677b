"""A PostgreSQL search_path that puts the tables in a schema of their own (``app``).

makemigrations and check compare the models with the schema the history produces. With
the database behind the head that schema is replayed into a scratch database, which must
resolve names as the configured one does (the role's, the database's or the URL's
search_path, and the schemas it names), or the replay has nowhere to create the tables.
"""

from __future__ import annotations

import uuid

import pytest

from conftest import PG_ADMIN_URL, execute

pytestmark = pytest.mark.postgres

CACHE = "project/migrations/__pycache__/sqlmanage-clean-comparisons.json"


@pytest.fixture
def app_role(pg_url):
    """A login role that owns the test database and its schema ``app``; dropped afterwards."""
    from sqlalchemy.engine import make_url

    role = f"sqlmanage_test_{uuid.uuid4().hex[:12]}"
    database = make_url(pg_url).database
    execute(
        PG_ADMIN_URL,
        f"CREATE ROLE {role} LOGIN CREATEDB",
        f"ALTER DATABASE {database} OWNER TO {role}",
    )
    try:
        yield role
    finally:
        execute(pg_url, f"REASSIGN OWNED BY {role} TO CURRENT_USER", f"DROP OWNED BY {role}")
        execute(PG_ADMIN_URL, f"DROP ROLE {role}")


def test_makemigrations_check_and_check_with_the_tables_in_the_roles_schema(
    project, pg_url, app_role
):
    """The role's search_path is only ``app`` (no ``public`` to fall back on), and the database
    has its own (``app, public``), which a newly created scratch database would not inherit."""
    from sqlalchemy.engine import make_url

    url = make_url(pg_url)
    execute(pg_url, f"CREATE SCHEMA app AUTHORIZATION {app_role}")
    execute(
        PG_ADMIN_URL,
        f"ALTER ROLE {app_role} SET search_path = app",
        f"ALTER DATABASE {url.database} SET search_path = app, public",
    )
    project.env["DATABASE_URL"] = url.set(username=app_role).render_as_string(hide_password=False)

    project.manage("migrate", "0002")
    tables = execute_rows(
        pg_url,
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_name = 'products'",
    )
    assert tables == [("app", "products")]

    def compare(expected_check: int):
        (project.path / CACHE).unlink(missing_ok=True)  # a fresh checkout, as in CI
        made = project.run("makemigrations", "--check")
        assert (made.returncode, made.stdout.strip(), made.stderr) == (0, "No changes detected", "")
        (project.path / CACHE).unlink(missing_ok=True)
        checked = project.run("check")
        assert checked.returncode == expected_check, checked.stdout + checked.stderr
        assert "sqlmanage.E009" not in checked.stdout and "0001_initial" not in checked.stdout
        return checked

    behind = compare(expected_check=1)
    assert "(sqlmanage.E007) 1 unapplied migration: 0003_fill_discount_rate." in behind.stdout
    assert "Error: System check failed: sqlmanage.E007, sqlmanage.E010." in behind.stderr

    project.manage("migrate")
    at_head = compare(expected_check=0)
    assert at_head.stdout.strip() == "System check identified no issues (0 silenced)."


def execute_rows(url: str, sql: str) -> list[tuple]:
    from conftest import direct_engine

    engine = direct_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.exec_driver_sql(sql)]
    finally:
        engine.dispose()
