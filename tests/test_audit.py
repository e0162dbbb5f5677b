"""The audit trail: who applied what, when, how long, and whether the file changed since."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from conftest import direct_engine, migration_file


def audit_rows(project) -> list[tuple]:
    with sqlite3.connect(project.sqlite_file) as connection:
        return connection.execute(
            "select revision, direction, duration_ms, db_user, host, checksum from sqlmanage_migrations order by id"
        ).fetchall()


def status(project) -> dict:
    data = json.loads(project.manage("showmigrations", "--format", "json").stdout)
    return {m["name"]: m for m in data["migrations"]}


def test_every_applied_migration_is_recorded(project):
    project.manage("migrate")
    rows = audit_rows(project)
    assert [r[:2] for r in rows] == [
        ("0001_initial", "apply"),
        ("0002_add_products_discount_rate", "apply"),
        ("0003_fill_discount_rate", "apply"),
    ]
    for _revision, _, duration, user, host, checksum in rows:
        assert duration is not None and duration >= 0
        assert user and host
        assert re.fullmatch(r"[0-9a-f]{64}", checksum)
    verbose = project.manage("showmigrations", "-v", "2").lines
    assert re.fullmatch(
        r" \[X\] 0001_initial \(applied at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\)", verbose[1]
    )
    project.manage("migrate", "-1")
    project.manage("migrate", "--fake")
    assert [r[1] for r in audit_rows(project)[-2:]] == ["unapply", "fake-apply"]
    assert "  No migrations to apply." in project.manage("migrate").lines


def test_migrations_applied_by_plain_alembic_are_verified_at_the_next_migrate(project):
    project.manage("migrate", "0001")
    assert project.alembic("upgrade", "head").returncode == 0
    before = status(project)
    assert before["0001_initial"]["verified"] is True
    assert before["0003_fill_discount_rate"]["applied"] is True
    assert before["0003_fill_discount_rate"]["verified"] is False
    plain = project.manage("showmigrations", "-v", "2").lines
    assert (
        plain[3]
        == " [X] 0003_fill_discount_rate (applied outside sqlmanage; not verified until the next migrate)"
    )
    project.manage("migrate")
    after = status(project)
    assert all(m["verified"] for m in after.values())
    assert [r[1] for r in audit_rows(project)][-2:] == ["recorded", "recorded"]


def test_an_edited_applied_migration_is_flagged_and_warned_about(project):
    project.manage("migrate")
    path = project.versions / "0002_add_products_discount_rate.py"
    path.write_text(path.read_text() + "\n# edited after it ran\n")

    shown = project.manage("showmigrations")
    assert " [X] 0002_add_products_discount_rate (file changed since it was applied)" in shown.lines
    assert "0002_add_products_discount_rate was changed after it was applied" in shown.stderr
    assert status(project)["0002_add_products_discount_rate"]["changed_since_applied"] is True
    migrate = project.manage("migrate")
    assert (
        "applied migrations changed since they ran: 0002_add_products_discount_rate"
        in migrate.stderr
    )


def test_line_endings_and_a_bom_are_not_a_change(project):
    project.manage("migrate")
    for path in project.versions.glob("*.py"):
        data = path.read_bytes().replace(b"\n", b"\r\n")
        path.write_bytes(b"\xef\xbb\xbf" + data)
    result = project.manage("showmigrations")
    assert "changed" not in result.stdout + result.stderr
    assert not any(m["changed_since_applied"] for m in status(project).values())


BROKEN = migration_file(
    "0004_broken",
    upgrade=(
        '    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))\n'
        '    op.execute("INSERT INTO no_such_table VALUES (1)")'
    ),
    downgrade='    op.drop_table("half_done")',
)


def test_a_failed_migration_leaves_no_record_on_sqlite(project):
    project.manage("migrate")
    (project.versions / "0004_broken.py").write_text(BROKEN)
    assert project.run("migrate").returncode == 1
    assert "0004_broken" not in [r[0] for r in audit_rows(project)]


@pytest.mark.postgres
def test_a_failed_migration_leaves_no_record_on_postgresql(project, pg_url):
    env = {"DATABASE_URL": pg_url}
    project.manage("migrate", env=env)
    (project.versions / "0004_broken.py").write_text(BROKEN)
    assert project.run("migrate", env=env).returncode == 1
    engine = direct_engine(pg_url)
    try:
        with engine.connect() as connection:
            revisions = [
                r
                for (r,) in connection.exec_driver_sql("select revision from sqlmanage_migrations")
            ]
    finally:
        engine.dispose()
    assert "0004_broken" not in revisions and len(revisions) == 3
    replay = project.run("makemigrations", "--check", env=env)
    assert replay.returncode == 1
    assert "Replaying the migration history failed at 0004_broken" in replay.stderr


def test_two_projects_with_their_own_version_tables_share_a_database(project, tmp_path):
    """Each project's audit rows are its own: the other's 0001_initial is not 'edited'."""
    import shutil

    shared = {"DATABASE_URL": f"sqlite:///{tmp_path / 'shared.sqlite3'}"}
    other = type(project)(tmp_path / "billing")
    shutil.copytree(project.path, other.path)
    for path in other.versions.glob("*.py"):
        path.unlink()
    (other.versions / "0001_initial.py").write_text(
        migration_file(
            "0001_initial",
            upgrade='    op.create_table("invoices", sa.Column("id", sa.Integer, primary_key=True))',
            downgrade='    op.drop_table("invoices")',
            down_revision=None,
        )
    )
    with open(other.path / "project" / "settings.py", "a") as settings:
        settings.write('\nVERSION_TABLE = "billing_version"\n')
    with open(project.path / "project" / "settings.py", "a") as settings:
        settings.write('\nEXCLUDE_TABLES = ["invoices", "billing_version"]\n')

    project.manage("migrate", env=shared)
    other.manage("migrate", env=shared)
    shown = project.manage("showmigrations", env=shared)
    assert " [X] 0001_initial" in shown.lines
    assert "changed" not in shown.stdout + shown.stderr
    again = project.manage("migrate", env=shared)
    assert "changed since they ran" not in again.stderr
    assert project.run("check", env=shared).returncode == 0
    with sqlite3.connect(tmp_path / "shared.sqlite3") as connection:
        rows = connection.execute(
            "select version_table, count(*) from sqlmanage_migrations where revision = '0001_initial' "
            "and direction = 'apply' group by version_table"
        ).fetchall()
    assert sorted(rows) == [("alembic_version", 1), ("billing_version", 1)]


def test_an_audit_table_from_before_the_version_table_column_gets_it(project):
    """A database migrated by an earlier sqlmanage: its rows still count, new ones are keyed."""
    project.manage("migrate", "0001")
    with sqlite3.connect(project.sqlite_file) as connection:
        connection.execute("alter table sqlmanage_migrations drop column version_table")
    assert status(project)["0001_initial"]["changed_since_applied"] is False
    project.manage("migrate")
    with sqlite3.connect(project.sqlite_file) as connection:
        rows = connection.execute(
            "select revision, version_table from sqlmanage_migrations order by id"
        ).fetchall()
    assert rows[0] == ("0001_initial", None)
    assert rows[-1] == ("0003_fill_discount_rate", "alembic_version")


def test_a_same_size_edit_with_its_mtime_restored_is_detected(project):
    """cp -p, tar and touch -r put the mtime back; a warm cache must not hide the edit."""
    import os

    project.manage("migrate")
    project.manage("showmigrations")  # the cache is warm
    path = project.versions / "0002_add_products_discount_rate.py"
    stat = path.stat()
    text = path.read_text()
    assert "discount_rate" in text
    path.write_text(text.replace("discount_rate", "discount_rbte", 1))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns

    assert status(project)["0002_add_products_discount_rate"]["changed_since_applied"] is True
    migrate = project.manage("migrate")
    assert (
        "applied migrations changed since they ran: 0002_add_products_discount_rate"
        in migrate.stderr
    )
    check = project.run("check")
    assert check.returncode == 1 and "sqlmanage.E008" in check.stdout
