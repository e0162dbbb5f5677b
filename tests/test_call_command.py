"""``sqlmanage.call_command``: commands run from Python, in this process, like Django's."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import threading

import click
import pytest

import sqlmanage
from sqlmanage.cli import CommandUsageError
from sqlmanage.commands.base import STATE
from sqlmanage.errors import SqlmanageError, UnknownMigration


@pytest.fixture
def here(project, monkeypatch):
    """Work inside the project copy as manage.py would, forgetting its modules afterwards."""
    monkeypatch.chdir(project.path)
    monkeypatch.setenv("SQLMANAGE_SETTINGS_MODULE", "project.settings")
    for name in ("DATABASE_URL", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    path_before = list(sys.path)
    forget_project_modules()
    yield project
    forget_project_modules()
    sys.path[:] = path_before


def forget_project_modules() -> None:
    for name in [m for m in sys.modules if m == "project" or m.startswith("project.")]:
        del sys.modules[name]


def test_migrate_to_a_target_fake_and_output_to_the_given_streams(here, capsys):
    out, err = io.StringIO(), io.StringIO()
    assert sqlmanage.call_command("migrate", "0002", stdout=out, stderr=err) is None
    assert here.sqlite_version() == {"0002_add_products_discount_rate"}
    assert out.getvalue().splitlines()[:2] == ["Operations to perform:", "  Target specific migration: "
                                               "0002_add_products_discount_rate, from project"]
    assert "  Applying 0001_initial... OK\n" in out.getvalue()

    sqlmanage.call_command("migrate", "0003", fake=True, stdout=out)
    assert "  Applying 0003_fill_discount_rate... FAKED\n" in out.getvalue()
    assert here.sqlite_version() == {"0003_fill_discount_rate"}
    assert "\x1b[" not in out.getvalue()
    assert capsys.readouterr() == ("", ""), "output escaped the given streams"


def test_options_by_parameter_name_or_by_option_name(here):
    out = io.StringIO()
    sqlmanage.call_command("makemigrations", name="fill more", empty=True, stdout=out)
    assert (here.versions / "0004_fill_more.py").is_file()
    assert "0004_fill_more.py" in out.getvalue()

    err = io.StringIO()
    assert sqlmanage.call_command("migrate", check=True, noinput=True, stderr=err, stdout=io.StringIO()) == 1
    assert "Unapplied migrations: 0001_initial, " in err.getvalue()
    assert sqlmanage.call_command("migrate", interactive=False, verbosity=0, stdout=out) is None
    assert sqlmanage.call_command("migrate", check_unapplied=True, stdout=out) == 0
    json_out = io.StringIO()
    sqlmanage.call_command("showmigrations", format="json", stdout=json_out)
    assert '"applied": 4' in json_out.getvalue()
    sql = io.StringIO()
    sqlmanage.call_command("sqlmigrate", migration="0002", stdout=sql)
    django_form = io.StringIO()
    sqlmanage.call_command("sqlmigrate", app_label="project", migration_name="0002", stdout=django_form)
    assert django_form.getvalue() == sql.getvalue()
    assert "ALTER TABLE products ADD COLUMN discount_rate" in sql.getvalue()


def test_check_returns_its_report_or_raises(here):
    from sqlmanage.core.check import SystemCheckError

    out = io.StringIO()
    with pytest.raises(SystemCheckError) as raised:
        sqlmanage.call_command("check", stdout=out)
    assert [i.id for i in raised.value.report.issues] == ["sqlmanage.E007"]
    assert "(sqlmanage.E007) 3 unapplied migrations" in out.getvalue()

    sqlmanage.call_command("migrate", stdout=out)
    report = sqlmanage.call_command("check", stdout=out)
    assert report.issues == [] and {r.status for r in report.results} == {"ok"}


def test_errors_are_raised_never_exited(here):
    with pytest.raises(UnknownMigration, match="Cannot find a migration matching '0042'"):
        sqlmanage.call_command("migrate", "0042", stdout=io.StringIO())
    with pytest.raises(TypeError, match="Unknown option\\(s\\) for migrate command: syncdb. Valid options"):
        sqlmanage.call_command("migrate", syncdb=True)
    with pytest.raises(SqlmanageError, match="sqlmanage has no --run-syncdb"):
        sqlmanage.call_command("migrate", run_syncdb=True)
    with pytest.raises(CommandUsageError, match="No such option '--nope'") as usage:
        sqlmanage.call_command("migrate", "--nope")
    assert usage.value.exit_code == 2 and isinstance(usage.value.__cause__, click.UsageError)
    with pytest.raises(SqlmanageError, match="Unknown command: 'migrat'"):
        sqlmanage.call_command("migrat")
    assert not here.sqlite_file.exists()


def test_global_state_is_restored_and_no_signal_handler_is_installed(here):
    before = signal.getsignal(signal.SIGTERM)
    STATE.prog_name = "sqlmanage"
    with pytest.raises(UnknownMigration):
        sqlmanage.call_command("migrate", "0042", traceback=True, no_color=True, stdout=io.StringIO())
    assert (STATE.traceback, STATE.no_color, STATE.prog_name) == (False, False, "sqlmanage")
    STATE.reset()

    outcome = {}

    def in_a_thread():
        out = io.StringIO()
        try:
            outcome["result"] = sqlmanage.call_command("migrate", stdout=out)
        except BaseException as exc:  # reported below: a thread swallows what it raises
            outcome["error"] = exc
        outcome["output"] = out.getvalue()

    worker = threading.Thread(target=in_a_thread)
    worker.start()
    worker.join(60)
    assert "error" not in outcome, outcome.get("error")
    assert "  Applying 0003_fill_discount_rate... OK\n" in outcome["output"]
    assert signal.getsignal(signal.SIGTERM) is before
    assert here.sqlite_version() == {"0003_fill_discount_rate"}


def test_a_project_command_returns_its_value(here):
    folder = here.path / "project" / "management" / "commands"
    folder.mkdir(parents=True)
    (folder / "answer.py").write_text(
        '"""Answer."""\nimport click\n\n\n@click.command()\n@click.argument("n", type=int)\n'
        'def command(n):\n    return {"answer": n * 2}\n'
    )
    assert sqlmanage.call_command("answer", 21) == {"answer": 42}


def test_import_sqlmanage_is_cheap():
    probe = ("import sqlmanage, sys; print(sorted(m for m in sys.modules "
             "if m.split('.')[0] in ('click', 'sqlalchemy', 'alembic', 'rich')))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout == "[]\n"
