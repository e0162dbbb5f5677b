"""A revision id longer than the version column (32 characters) is refused before anything runs."""

from __future__ import annotations

import pytest

from conftest import migration_file, version_rows

LONG_ID = "0004_" + "x" * 30  # 35 characters, as 'alembic revision --rev-id' allows


def _add_long_revision(project) -> None:
    (project.versions / f"{LONG_ID}.py").write_text(
        migration_file(
            LONG_ID,
            upgrade='    op.create_table("extras", sa.Column("id", sa.Integer, primary_key=True))',
            downgrade='    op.drop_table("extras")',
        )
    )


def test_check_fails_on_a_revision_id_the_version_table_cannot_hold(project):
    project.manage("migrate")
    _add_long_revision(project)
    result = project.run("check")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "sqlmanage.E003" in result.stdout
    assert f"{LONG_ID} (35 characters" in result.stdout


def test_migrate_refuses_before_anything_runs_on_sqlite(project):
    project.manage("migrate", "0002")
    _add_long_revision(project)
    result = project.run("migrate", "--noinput")
    assert result.returncode == 1
    assert "longer than the version table's 32 characters" in result.stderr
    assert "Traceback" not in result.stderr
    assert project.sqlite_version() == {"0002_add_products_discount_rate"}, (
        "0003 ran before the refusal"
    )


@pytest.mark.mariadb
def test_migrate_refuses_on_mariadb_instead_of_truncating(project, mariadb_url):
    env = {"DATABASE_URL": mariadb_url}
    _add_long_revision(project)
    result = project.run("migrate", "--noinput", env=env)
    assert result.returncode == 1
    assert "longer than the version table's 32 characters" in result.stderr
    assert version_rows(mariadb_url) == set()


def test_makemigrations_refuses_to_add_to_such_a_history(project):
    from conftest import add_discount_code

    project.manage("migrate")
    _add_long_revision(project)
    add_discount_code(project)
    before = project.migration_files()
    result = project.run("makemigrations", "--noinput", "-n", "discount_code")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{LONG_ID} (35 characters" in result.stderr
    assert "Traceback" not in result.stderr
    assert project.migration_files() == before
