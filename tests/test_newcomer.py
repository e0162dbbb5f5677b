"""The newcomer's flow on the embedded SQLite default, and the CLI's entry points."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT

ALL_MIGRATIONS = ["0001_initial", "0002_add_products_discount_rate", "0003_fill_discount_rate"]
COMMANDS = ["makemigrations", "migrate", "showmigrations", "sqlmigrate"]


def test_migrate_then_showmigrations_on_a_fresh_copy(project):
    """The README's first commands, each in a fresh interpreter as a newcomer runs them."""
    assert not project.sqlite_file.exists()

    before = project.manage("showmigrations", real_process=True)
    assert before.lines == ["project"] + [f" [ ] {name}" for name in ALL_MIGRATIONS]
    assert not project.sqlite_file.exists(), "a read-only command created the database file"

    migrate = project.manage("migrate", real_process=True)
    assert migrate.lines[:3] == [
        "Operations to perform:",
        "  Apply all migrations: project",
        "Running migrations:",
    ]
    for line, name in zip(migrate.lines[3:], ALL_MIGRATIONS, strict=True):
        assert line == f"  Applying {name}... OK"
    assert project.sqlite_tables() >= {
        "categories",
        "products",
        "customers",
        "reviews",
        "alembic_version",
    }
    assert project.sqlite_version() == {"0003_fill_discount_rate"}

    after = project.manage("showmigrations", real_process=True)
    assert after.lines == ["project"] + [f" [X] {name}" for name in ALL_MIGRATIONS]

    again = project.manage("migrate", real_process=True)
    assert "  No migrations to apply." in again.lines


def test_off_terminal_output_has_no_ansi_codes(project):
    outputs = [
        project.manage("migrate"),
        project.manage("showmigrations"),
        project.manage("showmigrations", "--format", "table"),
        project.manage("migrate", "--plan", "zero"),
        project.manage("sqlmigrate", "0001"),
        project.manage("makemigrations", "--dry-run"),
    ]
    for result in outputs:
        assert "\x1b[" not in result.stdout + result.stderr


def test_help_imports_neither_sqlalchemy_nor_alembic_nor_rich(project):
    probe = (
        "import sys; sys.argv = ['manage.py', '--help']\n"
        "import runpy\n"
        "try:\n"
        "    runpy.run_path('manage.py', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'alembic', 'rich'))\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=project.path, capture_output=True, text=True, check=True
    )
    assert "HEAVY []" in result.stdout, result.stdout
    for name in COMMANDS:
        assert name in result.stdout


def test_every_command_has_help_with_examples(project):
    for name in COMMANDS:
        result = project.manage(name, "--help")
        assert "Examples:" in result.stdout
        assert "--settings" in result.stdout and "--verbosity" in result.stdout


def test_console_script_and_python_m_take_the_same_commands(project):
    sqlmanage = ROOT / ".venv" / "bin" / "sqlmanage"
    program = [str(sqlmanage)] if sqlmanage.exists() else [sys.executable, "-m", "sqlmanage"]
    via_script = project.run("showmigrations", "--format", "json", program=program)
    via_module = project.run(
        "showmigrations", "--format", "json", program=[sys.executable, "-m", "sqlmanage"]
    )
    assert via_script.returncode == via_module.returncode == 0, (
        via_script.stderr + via_module.stderr
    )
    assert json.loads(via_script.stdout) == json.loads(via_module.stdout)
    assert [m["name"] for m in json.loads(via_module.stdout)["migrations"]] == ALL_MIGRATIONS


def test_help_command_and_bare_manage_py_print_help(project):
    """Django's habits: 'manage.py' alone and 'manage.py help [COMMAND]' print help, exit 0."""
    bare = project.manage()
    assert "Commands:" in bare.stdout and "migrate" in bare.stdout and "help" in bare.stdout
    assert project.manage("help").stdout == bare.stdout
    migrate_help = project.manage("help", "migrate").stdout
    assert migrate_help.startswith(
        "Usage: python manage.py migrate [OPTIONS] [APP_LABEL] [MIGRATION]"
    )
    unknown = project.run("help", "migrat")
    assert unknown.returncode == 1
    assert (
        unknown.stderr
        == "Unknown command: 'migrat'. Did you mean migrate?\nType 'python manage.py help' for usage.\n"
    )


def test_hints_name_the_program_that_ran(project):
    result = project.run("migrate", "0042", program=[sys.executable, "-m", "sqlmanage"])
    assert result.returncode == 1
    assert "Run 'python -m sqlmanage showmigrations'" in result.stderr
