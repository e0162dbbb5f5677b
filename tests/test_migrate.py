"""migrate on SQLite: every target form, both directions, and the read-only flags."""

from __future__ import annotations

import json
import re
import sys

import pytest

from conftest import add_discount_code

APPLIED_LINE = re.compile(
    r"^  (Applying|Unapplying) (\S+)\.\.\. (OK|FAKED)$"
)  # timings only at -v 2


def steps(result) -> list[tuple[str, str, str]]:
    return [APPLIED_LINE.match(line).groups() for line in result.lines if APPLIED_LINE.match(line)]


@pytest.mark.parametrize(
    "target, expected",
    [
        ("0001", {"0001_initial"}),
        ("2", {"0002_add_products_discount_rate"}),
        ("0002_add_products_discount_rate", {"0002_add_products_discount_rate"}),
        ("0002_add_products_discount_rate.py", {"0002_add_products_discount_rate"}),
        ("0003_fill", {"0003_fill_discount_rate"}),
        ("head", {"0003_fill_discount_rate"}),
        ("+2", {"0002_add_products_discount_rate"}),
    ],
)
def test_forward_targets(project, target, expected):
    result = project.manage("migrate", target)
    assert project.sqlite_version() == expected
    assert all(direction == "Applying" for direction, _, _ in steps(result))


@pytest.mark.parametrize(
    "target, expected, unapplied",
    [
        ("0001", {"0001_initial"}, ["0003_fill_discount_rate", "0002_add_products_discount_rate"]),
        ("-1", {"0002_add_products_discount_rate"}, ["0003_fill_discount_rate"]),
        (
            "-3",
            set(),
            ["0003_fill_discount_rate", "0002_add_products_discount_rate", "0001_initial"],
        ),
        (
            "zero",
            set(),
            ["0003_fill_discount_rate", "0002_add_products_discount_rate", "0001_initial"],
        ),
        (
            "base",
            set(),
            ["0003_fill_discount_rate", "0002_add_products_discount_rate", "0001_initial"],
        ),
    ],
)
def test_backward_targets(project, target, expected, unapplied):
    project.manage("migrate")
    result = project.manage("migrate", target)
    assert project.sqlite_version() == expected
    assert steps(result) == [("Unapplying", name, "OK") for name in unapplied]
    if not expected:
        assert project.sqlite_tables() == {"alembic_version"}


def test_target_output_says_what_it_does(project):
    result = project.manage("migrate", "0002")
    assert result.lines[:2] == [
        "Operations to perform:",
        "  Target specific migration: 0002_add_products_discount_rate, from project",
    ]
    back = project.manage("migrate", "zero")
    assert back.lines[1] == "  Unapply all migrations: project"
    step = project.manage("migrate", "+1")
    assert step.lines[1] == "  Apply the next 1 migration: project"


def test_plan_lists_operations_and_changes_nothing(project):
    forward = project.manage("migrate", "--plan")
    assert forward.lines == [
        "Planned operations:",
        "0001_initial",
        "    Create table categories",
        "    Create table customers",
        "    Create table products",
        "    Create index idx_products_category on products",
        "    Create table reviews",
        "0002_add_products_discount_rate",
        "    Add column discount_rate to products",
        "0003_fill_discount_rate",
        "    Raw SQL operation",
        "    Alter column discount_rate on products",
    ]
    assert not project.sqlite_file.exists()
    project.manage("migrate")
    backward = project.manage("migrate", "0002", "--plan")
    assert backward.lines == [
        "Planned operations:",
        "0003_fill_discount_rate",
        "    Undo Alter column discount_rate on products",
        "    Undo Raw SQL operation",
    ]
    assert project.sqlite_version() == {"0003_fill_discount_rate"}
    assert project.manage("migrate", "--plan").lines == [
        "Planned operations:",
        "  No planned migration operations.",
    ]


def test_plan_marks_an_irreversible_migration(project):
    project.manage("makemigrations", "--empty", "-n", "one_way")
    project.manage("migrate")
    path = next(project.versions.glob("0004_one_way.py"))
    path.write_text(
        path.read_text().replace(
            "def upgrade() -> None:\n", "def upgrade() -> None:\n    op.execute('select 1')\n", 1
        )
    )
    result = project.manage("migrate", "-1", "--plan")
    assert result.lines[1:] == ["0004_one_way", "    Undo Raw SQL operation -> IRREVERSIBLE"]


def test_check_exits_1_with_unapplied_migrations_and_changes_nothing(project):
    pending = project.run("migrate", "--check", "--noinput")
    assert pending.returncode == 1
    assert "0001_initial" in pending.stderr
    assert not project.sqlite_file.exists()
    project.manage("migrate", "--noinput")
    assert project.run("migrate", "--check", "--noinput").returncode == 0


def test_fake_records_without_running(project):
    result = project.manage("migrate", "0002", "--fake")
    assert steps(result) == [
        ("Applying", "0001_initial", "FAKED"),
        ("Applying", "0002_add_products_discount_rate", "FAKED"),
    ]
    assert project.sqlite_tables() == {"alembic_version"}
    assert project.sqlite_version() == {"0002_add_products_discount_rate"}
    back = project.manage("migrate", "zero", "--fake")
    assert [s[2] for s in steps(back)] == ["FAKED", "FAKED"]
    assert project.sqlite_version() == set()


def test_sql_needs_no_database(project):
    unreachable = {"DATABASE_URL": "postgresql://someone:pw@127.0.0.1:1/nowhere"}
    result = project.manage("migrate", "--sql", env=unreachable)
    assert "CREATE TABLE products" in result.stdout
    assert "CREATE TABLE alembic_version" in result.stdout
    assert "INSERT INTO alembic_version (version_num) VALUES ('0001_initial')" in result.stdout
    assert result.stdout.strip().endswith("COMMIT;")
    ranged = project.manage("migrate", "--sql", "0001:0002", env=unreachable)
    assert "ALTER TABLE products ADD COLUMN discount_rate FLOAT" in ranged.stdout
    assert "CREATE TABLE products" not in ranged.stdout
    backwards = project.manage("migrate", "--sql", "0002:0001", env=unreachable)
    assert "ALTER TABLE products DROP COLUMN discount_rate" in backwards.stdout
    assert not project.sqlite_file.exists()


def test_no_migrations_to_apply_notices_unmigrated_model_changes(project):
    project.manage("migrate")
    add_discount_code(project)
    result = project.manage("migrate")
    assert "  No migrations to apply." in result.lines
    assert any(
        "have changes that are not yet reflected in a migration" in line for line in result.lines
    )
    assert any("Run 'python manage.py makemigrations'" in line for line in result.lines)


def test_a_remembered_clean_comparison_is_forgotten_when_a_model_changes(project):
    """The no-op migrate's notice and makemigrations --check remember "no changes" only
    until a model changes: the next run compares again and sees it."""
    notice = "have changes that are not yet reflected in a migration"
    project.manage("migrate")
    assert not any(notice in line for line in project.manage("migrate").lines)
    assert project.manage("makemigrations", "--check").lines == ["No changes detected"]
    cache = (
        project.path / "project" / "migrations" / "__pycache__" / "sqlmanage-clean-comparisons.json"
    )
    assert len(json.loads(cache.read_text())["clean"]) == 2  # the notice's key and --check's
    add_discount_code(project)
    assert any(notice in line for line in project.manage("migrate").lines)
    assert project.run("makemigrations", "--check").returncode == 1


def test_verbosity_0_prints_nothing(project):
    result = project.manage("migrate", "-v", "0")
    assert result.stdout == ""
    assert project.sqlite_version() == {"0003_fill_discount_rate"}


def test_sql_output_builds_the_same_database_as_migrate(project, tmp_path):
    """The script of 'migrate --sql' (batch rebuilds included) is what migrate really does."""
    import sqlite3

    script = project.manage("migrate", "--sql").stdout
    replayed = tmp_path / "from_script.sqlite3"
    with sqlite3.connect(replayed, isolation_level=None) as connection:
        connection.executescript(script)
    project.manage("migrate")

    def schema(path):
        with sqlite3.connect(path) as connection:
            rows = connection.execute(
                "select type, name, tbl_name, sql from sqlite_master "
                "where name not like 'sqlite_%' and tbl_name != 'sqlmanage_migrations'"
            )
            # Whitespace and parentheses around a default (online rebuilds add them) aside.
            return sorted(
                (
                    kind,
                    name,
                    table,
                    re.sub(r"DEFAULT \((\w+)\)", r"DEFAULT \1", " ".join((sql or "").split())),
                )
                for kind, name, table, sql in rows
            )

    assert schema(replayed) == schema(project.sqlite_file)
    with sqlite3.connect(replayed) as connection:
        assert connection.execute("select version_num from alembic_version").fetchall() == [
            ("0003_fill_discount_rate",)
        ]


def test_plan_describes_assigned_operations_and_bulk_inserts(project):
    from conftest import migration_file

    (project.versions / "0004_tags.py").write_text(
        migration_file(
            "0004_tags",
            upgrade=(
                '    tags = op.create_table("tags", sa.Column("id", sa.Integer, primary_key=True))\n'
                '    op.bulk_insert(tags, [{"id": 1}])'
            ),
            downgrade='    op.drop_table("tags")',
        )
    )
    project.manage("migrate", "0003")
    assert project.manage("migrate", "--plan").lines == [
        "Planned operations:",
        "0004_tags",
        "    Create table tags",
        "    Insert rows into tags",
    ]


def test_alembics_log_names_each_step_upgrade_or_downgrade(project):
    """With Alembic's INFO log on (Airflow's projects log it), a step is 'Running upgrade
    0001_initial -> ...', as under plain alembic, never the name of a wrapper of sqlmanage's."""
    script = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stderr)\n"
        "import sqlmanage\n"
        "sqlmanage.call_command('migrate', '0002')\n"
        "sqlmanage.call_command('migrate', '0001')\n"
    )
    result = project.run("-c", script, program=[sys.executable])
    assert result.returncode == 0, result.stderr
    assert "Running upgrade  -> 0001_initial" in result.stderr
    assert "Running upgrade 0001_initial -> 0002_add_products_discount_rate" in result.stderr
    assert "Running downgrade 0002_add_products_discount_rate -> 0001_initial" in result.stderr
