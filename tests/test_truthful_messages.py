"""What migrate says after a failure is what happened: no OK before a failed COMMIT, the
first error rather than 'current transaction is aborted', what an autocommit_block left."""

from __future__ import annotations

import uuid

import pytest

from conftest import direct_engine, inspect_schema, migration_file, version_rows

DEFERRED_VIOLATION = migration_file(
    "0004_deferred",
    upgrade=(
        '    op.execute("CREATE TABLE parents (id integer PRIMARY KEY)")\n'
        '    op.execute("CREATE TABLE children (parent_id integer REFERENCES parents (id) '
        'DEFERRABLE INITIALLY DEFERRED)")\n'
        '    op.execute("INSERT INTO children VALUES (42)")'
    ),
    downgrade='    op.execute("DROP TABLE children")\n    op.execute("DROP TABLE parents")',
)

CONCURRENT_INDEX_THEN_FAIL = migration_file(
    "0004_index",
    upgrade=(
        '    op.add_column("products", sa.Column("note", sa.String(20)))\n'
        "    with op.get_context().autocommit_block():\n"
        '        op.create_index("ix_products_name_note", "products", ["name"], postgresql_concurrently=True)\n'
        '    op.execute("INSERT INTO no_such_table VALUES (1)")'
    ),
    downgrade='    op.drop_index("ix_products_name_note", "products")',
)


@pytest.mark.postgres
def test_a_failed_commit_is_not_reported_ok(project, pg_url):
    env = {"DATABASE_URL": pg_url}
    project.manage("migrate", env=env)
    (project.versions / "0004_deferred.py").write_text(DEFERRED_VIOLATION)
    result = project.run("migrate", "--noinput", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Applying 0004_deferred... FAILED" in result.stdout
    assert "OK" not in result.stdout.split("Applying 0004_deferred")[1]
    assert "Error: Applying 0004_deferred failed: IntegrityError" in result.stderr
    assert "foreign key" in result.stderr
    assert "rolled back" in result.stderr
    assert "privileges" not in result.stderr
    assert "Traceback" not in result.stderr
    assert version_rows(pg_url) == {"0003_fill_discount_rate"}
    assert "parents" not in inspect_schema(pg_url)


@pytest.mark.postgres
def test_a_failure_after_an_autocommit_block_says_that_part_stays(project, pg_url):
    env = {"DATABASE_URL": pg_url}
    project.manage("migrate", env=env)
    (project.versions / "0004_index.py").write_text(CONCURRENT_INDEX_THEN_FAIL)
    result = project.run("migrate", "--noinput", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no_such_table" in result.stderr
    assert "autocommit_block(): that part was committed" in result.stderr
    assert "as they were before it" not in result.stderr
    assert version_rows(pg_url) == {"0003_fill_discount_rate"}
    engine = direct_engine(pg_url)
    try:
        with engine.connect() as connection:
            indexes = {
                r[0]
                for r in connection.exec_driver_sql(
                    "SELECT indexname FROM pg_indexes WHERE tablename = 'products'"
                )
            }
    finally:
        engine.dispose()
    assert "ix_products_name_note" in indexes, "what the message says stays did not stay"


@pytest.mark.postgres
def test_the_first_error_is_told_not_an_aborted_transaction(project, pg_url):
    """A role that may not create in the public schema: the error says so."""
    role = f"sqlmanage_ro_{uuid.uuid4().hex[:8]}"
    admin = direct_engine(pg_url)
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
            connection.exec_driver_sql("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        limited = pg_url.replace("postgresql://postgres@", f"postgresql://{role}@")
        result = project.run("migrate", "--noinput", env={"DATABASE_URL": limited})
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP OWNED BY {role}")
            connection.exec_driver_sql(f"DROP ROLE {role}")
        admin.dispose()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "permission denied for schema public" in result.stderr
    assert "current transaction is aborted" not in result.stderr
    assert "Traceback" not in result.stderr
