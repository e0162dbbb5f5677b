"""Project commands: management/commands/*.py beside settings.py, or the COMMANDS setting."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

SEED = '''"""Fill the catalogue with demo categories.

It imports SQLAlchemy at the top, as a real command would: --help must not import it.
"""
import click
import sqlalchemy as sa

from sqlmanage.commands.base import common_options


@click.command()
@click.option("--count", type=int, default=2, show_default=True, help="How many categories.")
@common_options
def command(runtime, count):
    """Fill the catalogue with demo categories."""
    engine = sa.create_engine(runtime.project.url)
    with engine.begin() as connection:
        for n in range(count):
            connection.execute(sa.text("INSERT INTO categories (name) VALUES (:name)"), {"name": f"demo {n}"})
    engine.dispose()
    runtime.out(f"Created {count} categories in {runtime.project.label}.")
'''

HELP_PROBE = (
    "import sys; sys.argv = ['manage.py', '--help']\n"
    "import runpy\n"
    "try:\n"
    "    runpy.run_path('manage.py', run_name='__main__')\n"
    "except SystemExit as exit:\n"
    "    assert exit.code == 0, exit.code\n"
    "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'alembic', 'rich'))\n"
    "print('HEAVY', heavy, 'SEED' if 'project.management.commands.seed' in sys.modules else '')\n"
)


def add_command(project, name: str, source: str) -> None:
    folder = project.path / "project" / "management" / "commands"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(source)


def test_a_project_command_is_listed_without_being_imported_and_runs(project):
    add_command(project, "seed", SEED)
    probe = subprocess.run(
        [sys.executable, "-c", HELP_PROBE], cwd=project.path, capture_output=True, text=True
    )
    assert probe.returncode == 0, probe.stderr
    assert "HEAVY [] \n" in probe.stdout, probe.stdout
    assert "Project commands:\n  seed  Fill the catalogue with demo categories.\n" in probe.stdout

    project.manage("migrate")
    result = project.manage("seed", "--count", "3")
    assert result.stdout == "Created 3 categories in project.\n"
    with sqlite3.connect(project.sqlite_file) as connection:
        names = [
            n for (n,) in connection.execute("SELECT name FROM categories WHERE name LIKE 'demo %'")
        ]
    assert names == ["demo 0", "demo 1", "demo 2"]

    assert "--count INTEGER" in project.manage("help", "seed").stdout
    via_module = project.run("seed", "--count", "0", program=[sys.executable, "-m", "sqlmanage"])
    assert via_module.returncode == 0 and via_module.stdout == "Created 0 categories in project.\n"


def test_a_project_command_replaces_the_built_in_of_its_name(project):
    add_command(
        project,
        "showmigrations",
        (
            '"""Show the migrations, our way."""\nimport click\n\n\n'
            "@click.command()\ndef command():\n"
            "    from sqlmanage import call_command\n"
            "    from sqlmanage.commands.showmigrations import command as built_in\n"
            '    click.echo("our showmigrations")\n'
            "    call_command(built_in, plan=True)\n"
        ),
    )
    result = project.manage("showmigrations")
    assert result.lines == [
        "our showmigrations",
        "[ ]  0001_initial",
        "[ ]  0002_add_products_discount_rate",
        "[ ]  0003_fill_discount_rate",
    ]
    help_text = project.manage("--help").stdout
    assert "showmigrations  Show the migrations, our way. (replaces the built-in)" in help_text
    assert "Show every migration and whether it is applied." not in help_text


def test_a_project_command_that_fails_to_import_is_named(project):
    add_command(project, "broken", '"""Broken on purpose."""\nimport click\n\nvalue = 1 / 0\n')
    add_command(project, "empty", '"""No command in here."""\n')
    assert "broken  Broken on purpose." in project.manage("--help").stdout

    result = project.run("broken")
    assert result.returncode == 1
    assert result.stderr.startswith(
        "Error: Project command 'broken' failed to import: ZeroDivisionError: division by zero, "
        "in project/management/commands/broken.py (line 4).\n"
    )
    assert "Traceback" not in result.stderr
    assert "Traceback" in project.run("broken", "--traceback").stderr

    empty = project.run("empty")
    assert empty.returncode == 1
    assert (
        "project/management/commands/empty.py has no click command named 'command'" in empty.stderr
    )
    assert project.manage("showmigrations").lines[0] == "project"  # the others still work


def test_the_commands_setting_and_a_settings_option_after_the_command(project):
    tools = project.path / "project" / "tools"
    tools.mkdir()
    (tools / "__init__.py").write_text("")
    (tools / "hello.py").write_text(
        '"""Say hello."""\nimport click\n\n\n@click.command()\n@click.option("--settings")\n'
        'def command(settings):\n    click.echo(f"hello from {settings}")\n    return 0\n'
    )
    other = project.path / "project" / "other_settings.py"
    other.write_text(
        (project.path / "project" / "settings.py").read_text()
        + '\nCOMMANDS = ["project.tools.hello"]\n'
    )

    assert "hello" not in project.manage("--help").stdout
    result = project.manage("hello", "--settings", "project.other_settings")
    assert result.stdout == "hello from project.other_settings\n"
    listed = project.manage("--help", env={"SQLMANAGE_SETTINGS_MODULE": "project.other_settings"})
    assert "Project commands:\n  hello  Say hello.\n" in listed.stdout

    other.write_text(other.read_text() + 'COMMANDS = "project.tools.hello"\n')
    wrong = project.run("migrate", "--settings", "project.other_settings")
    assert wrong.returncode == 1
    assert "Error: project.other_settings.COMMANDS must be a list of module names." in wrong.stderr
