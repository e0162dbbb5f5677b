"""showmigrations' Rich table on real terminals of 60, 80, 100 and 160 columns.

manage.py gets a pseudo-terminal of the given size (``Project.on_terminal``), as a developer's terminal
would. At every width, with and without -v 2 and --plan: no ellipsis, every migration name
whole on one line, every mark explained, a squashed row says how far it got.
"""

from __future__ import annotations

import sqlite3

import pytest

from conftest import add_discount_code, migration_file

WIDTHS = (60, 80, 100, 160)
LONG_NAME = "0005_add_a_rather_long_migration_name_for_width_checks"
SQUASHED = "0004_squashed_0001_0004"
MEANINGS = {
    "[X]": "applied",
    "[ ]": "not applied",
    "[-]": "squashed migration, partly applied",
    "[!]": "file changed since it was applied",
    "[?]": "recorded in the database, no migration file",
}


def on_terminal(project, columns: int, *args: str) -> str:
    shown = project.on_terminal(
        "showmigrations", *args, env={"NO_COLOR": "1"}, rows=60, columns=columns
    )
    assert shown.returncode == 0, shown.stdout
    return shown.stdout.replace("\r\n", "\n")


def assert_readable(output: str, columns: int, names: list[str], marks: list[str]) -> None:
    lines = output.splitlines()
    assert "…" not in output and "..." not in output, output
    assert all(len(line) <= columns for line in lines if not line.startswith("Warning:")), output
    for name in names:
        assert any(name in line for line in lines), f"{name} cut at {columns} columns:\n{output}"
    for mark in marks:
        assert f"{mark} {MEANINGS[mark]}" in output.replace("\n", " "), (
            f"no legend for {mark}:\n{output}"
        )


@pytest.fixture
def squashed(project):
    """A database inside a squashed range (2 of 4), and a pending migration with a long name."""
    add_discount_code(project)
    project.manage("makemigrations", "-v", "0")
    project.manage("migrate", "0002", "-v", "0")
    project.manage("squashmigrations", "0004", "--noinput", "-v", "0")
    (project.versions / f"{LONG_NAME}.py").write_text(
        migration_file(
            "0005_width_check",
            "    pass",
            "    pass",
            down_revision="0004_add_products_discount_code",
        ).replace(
            '"""0005_width_check"""',
            '"""add a rather long migration name, and a message long enough to wrap"""',
        )
    )
    return project


@pytest.fixture
def every_mark(project):
    """Applied, pending, changed since applied, and recorded without a file."""
    project.manage("migrate", "0002", "-v", "0")
    project.edit(
        "project/migrations/versions/0002_add_products_discount_rate.py",
        "def downgrade",
        "# edited after it ran\ndef downgrade",
    )
    with sqlite3.connect(project.sqlite_file) as connection:
        connection.execute("insert into alembic_version (version_num) values ('0009_gone_missing')")
    return project


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize(
    "flags",
    [(), ("-v", "2"), ("--plan",), ("--plan", "-v", "2")],
    ids=["v1", "v2", "plan", "plan-v2"],
)
def test_squashed_history_reads_at_any_width(squashed, columns, flags):
    output = on_terminal(squashed, columns, *flags)
    assert_readable(output, columns, [SQUASHED, LONG_NAME], ["[-]", "[ ]"])
    assert "2 of 4" in output, output
    assert f"{SQUASHED} partly applied (2 of 4)" in output.replace("\n", " ")
    assert output.startswith("Plan for project" if "--plan" in flags else "Migrations for project")


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("flags", [(), ("-v", "2")], ids=["v1", "v2"])
def test_every_mark_has_a_legend_at_any_width(every_mark, columns, flags):
    output = on_terminal(every_mark, columns, *flags)
    assert_readable(
        output,
        columns,
        [
            "0001_initial",
            "0002_add_products_discount_rate",
            "0003_fill_discount_rate",
            "0009_gone_missing",
        ],
        ["[X]", "[ ]", "[!]", "[?]"],
    )


def test_wide_terminals_show_every_column_and_narrow_ones_say_what_they_left_out(squashed):
    wide = on_terminal(squashed, 200, "-v", "2")
    header = next(line for line in wide.splitlines() if "│ Migration" in line)
    for column in ("Message", "Created", "Parents", "Notes"):
        assert column in header, wide
    assert "not shown at this width" not in wide
    narrow = on_terminal(squashed, 60, "-v", "2")
    assert "(not shown at this width: Parents" in narrow.replace("\n", " ")


def test_plan_on_a_terminal_is_a_table_in_apply_order(project):
    project.manage("migrate", "0001", "-v", "0")
    output = on_terminal(project, 100, "--plan", "-v", "2")
    rows = [line for line in output.splitlines() if "│" in line and "0" in line]
    assert [row.split("│")[2].strip() for row in rows] == [
        "0001_initial",
        "0002_add_products_discount_rate",
        "0003_fill_discount_rate",
    ]
    assert [row.split("│")[0].strip() for row in rows] == ["1", "2", "3"]
    header = next(line for line in output.splitlines() if "│ Migration" in line)
    assert "Depends on" in header
    assert rows[1].split("│")[4].strip() == "0001"
