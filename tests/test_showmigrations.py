"""showmigrations: Django's lines, JSON, the plan order, the Rich table on a terminal."""

from __future__ import annotations

import json

NAMES = ["0001_initial", "0002_add_products_discount_rate", "0003_fill_discount_rate"]


def test_plain_lines_follow_django(project):
    project.manage("migrate", "0002")
    assert project.manage("showmigrations").lines == [
        "project",
        " [X] 0001_initial",
        " [X] 0002_add_products_discount_rate",
        " [ ] 0003_fill_discount_rate",
    ]
    assert project.manage("showmigrations", "--plan").lines == [
        "[X]  0001_initial",
        "[X]  0002_add_products_discount_rate",
        "[ ]  0003_fill_discount_rate",
    ]
    verbose = project.manage("showmigrations", "--plan", "-v", "2")
    assert verbose.lines[1] == "[X]  0002_add_products_discount_rate ... (0001_initial)"


def test_json_has_every_migration_and_the_database_state(project):
    project.manage("migrate", "0001")
    data = json.loads(project.manage("showmigrations", "--format", "json").stdout)
    assert [m["name"] for m in data["migrations"]] == NAMES
    assert [m["applied"] for m in data["migrations"]] == [True, False, False]
    assert data["database_heads"] == ["0001_initial"]
    assert data["heads"] == ["0003_fill_discount_rate"]
    assert (data["applied"], data["pending"]) == (1, 2)
    assert data["migrations"][1]["parents"] == ["0001_initial"]
    assert data["migrations"][2]["message"] == "fill discount rate"
    assert data["database"].startswith("sqlite:///") and data["database"].endswith("db.sqlite3")


def test_table_format_off_a_terminal_is_a_plain_table(project):
    project.manage("migrate", "0002")
    # Wide enough for the database's path in the title, however deep the temporary folder is.
    result = project.manage("showmigrations", "--format", "table", env={"COLUMNS": "400"})
    assert "Migrations for project" in result.stdout
    assert "0003_fill_discount_rate" in result.stdout and "fill discount rate" in result.stdout
    assert (
        "2 applied, 1 pending · database at 0002_add_products_discount_rate · head is 0003_fill_discount_rate"
        in result.stdout
    )
    assert "\x1b[" not in result.stdout


def test_missing_file_is_shown_and_flagged(project):
    import sqlite3

    project.manage("migrate")
    with sqlite3.connect(project.sqlite_file) as connection:
        connection.execute("update alembic_version set version_num = '0009_lost'")
    result = project.manage("showmigrations")
    assert " [?] 0009_lost (recorded in the database; no migration file)" in result.lines
    assert "0009_lost" in result.stderr and "no migration file" in result.stderr
    data = json.loads(project.manage("showmigrations", "--format", "json").stdout)
    assert data["missing_files"] == ["0009_lost"]


def run_in_terminal(project, *args: str, env: dict | None = None) -> str:
    """Run manage.py on a pseudo-terminal, as a developer's shell does."""
    shown = project.on_terminal(
        *args, env={**(env or {}), "COLUMNS": "140", "TERM": "xterm-256color"}, columns=140
    )
    assert shown.returncode == 0, shown.stdout
    return shown.stdout


def test_terminal_gets_a_coloured_rich_table(project):
    project.manage("migrate", "0002")
    output = run_in_terminal(project, "showmigrations")
    assert "\x1b[" in output, "no colour on a terminal"
    assert "┃" in output or "│" in output, "no table on a terminal"
    assert "Migration" in output and "Message" in output
    assert "0003_fill_discount_rate" in output


def test_no_color_and_NO_COLOR_turn_colour_off_on_a_terminal(project):
    project.manage("migrate")
    assert "\x1b[" not in run_in_terminal(project, "showmigrations", "--no-color")
    assert "\x1b[" not in run_in_terminal(project, "showmigrations", env={"NO_COLOR": "1"})
