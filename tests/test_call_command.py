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
from sqlmanage.commands.base import STATE
from sqlmanage.errors import CommandUsageError, SqlmanageError, UnknownMigration


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
    assert out.getvalue().splitlines()[:2] == [
        "Operations to perform:",
        "  Target specific migration: 0002_add_products_discount_rate, from project",
    ]
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
    assert (
        sqlmanage.call_command(
            "migrate", check=True, noinput=True, stderr=err, stdout=io.StringIO()
        )
        == 1
    )
    assert "Unapplied migrations: 0001_initial, " in err.getvalue()
    assert sqlmanage.call_command("migrate", interactive=False, verbosity=0, stdout=out) is None
    assert sqlmanage.call_command("migrate", check_unapplied=True, stdout=out) == 0
    json_out = io.StringIO()
    sqlmanage.call_command("showmigrations", format="json", stdout=json_out)
    assert '"applied": 4' in json_out.getvalue()
    sql = io.StringIO()
    sqlmanage.call_command("sqlmigrate", migration="0002", stdout=sql)
    django_form = io.StringIO()
    sqlmanage.call_command(
        "sqlmigrate", app_label="project", migration_name="0002", stdout=django_form
    )
    assert django_form.getvalue() == sql.getvalue()
    assert "ALTER TABLE products ADD COLUMN discount_rate" in sql.getvalue()


def test_check_returns_its_report_or_raises(here):
    from sqlmanage.errors import SystemCheckError

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
    with pytest.raises(
        TypeError, match="Unknown option\\(s\\) for migrate command: syncdb. Valid options"
    ):
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
        sqlmanage.call_command(
            "migrate", "0042", traceback=True, no_color=True, stdout=io.StringIO()
        )
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


def test_commands_run_in_threads_side_by_side_each_on_its_own_database(here):
    """Alembic's context and op are module globals: runs from several threads take turns
    (sqlmanage's lock), and each lands on its own database with its own output."""
    import sqlite3

    with open(here.path / "project" / "settings.py", "a") as settings:
        settings.write(
            '\nDATABASES = {f"db{n}": {"URL": f"sqlite:///{BASE_DIR / f\'db{n}.sqlite3\'}"} '
            "for n in range(1, 5)}\n"
        )
    expected_sql = io.StringIO()
    sqlmanage.call_command("sqlmigrate", "0002", stdout=expected_sql)
    work = {
        "db1": [("migrate", "0001")],
        "db2": [("migrate", "0002"), ("sqlmigrate", "0002")],
        "db3": [("migrate",), ("migrate", "0001"), ("migrate",)],
        "db4": [("migrate",), ("migrate", "zero"), ("sqlmigrate", "0002")],
    }
    start = threading.Barrier(len(work))
    outputs = {alias: io.StringIO() for alias in work}
    errors = {}

    def run(alias):
        try:
            start.wait(60)
            for command, *words in work[alias]:
                options = {"database": alias} if command == "migrate" else {}
                sqlmanage.call_command(command, *words, stdout=outputs[alias], **options)
        except BaseException as exc:  # reported below: a thread swallows what it raises
            errors[alias] = exc

    threads = [threading.Thread(target=run, args=(alias,)) for alias in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == {}

    def state(alias):
        with sqlite3.connect(here.path / f"{alias}.sqlite3") as connection:
            versions = {v for (v,) in connection.execute("select version_num from alembic_version")}
            tables = {
                t
                for (t,) in connection.execute("select name from sqlite_master where type='table'")
            }
            columns = {c[1] for c in connection.execute("pragma table_info(products)")}
        return versions, "products" in tables, "discount_rate" in columns

    assert state("db1") == ({"0001_initial"}, True, False)
    assert state("db2") == ({"0002_add_products_discount_rate"}, True, True)
    assert state("db3") == ({"0003_fill_discount_rate"}, True, True)
    assert state("db4") == (set(), False, False)
    assert not here.sqlite_file.exists(), "a run reached the default database"
    assert outputs["db1"].getvalue().count("  Applying ") == 1
    assert outputs["db3"].getvalue().count("  Unapplying ") == 2
    assert outputs["db4"].getvalue().count("  Unapplying ") == 3
    for alias in ("db2", "db4"):
        assert outputs[alias].getvalue().endswith(expected_sql.getvalue())


def test_a_run_leaves_no_state_behind_in_alembic_or_its_config(here):
    """Alembic's state is entered and left through one context manager: after a migration
    (and after one that failed) the config holds nothing of the run, op and context nothing."""
    import alembic.context
    import alembic.op

    from sqlmanage.engine.apply import apply_migrations
    from sqlmanage.project import Project

    project = Project.load()
    events = []
    apply_migrations(project, "0002", on_event=lambda *event: events.append(event[0]))
    assert project.config.attributes == {}
    assert here.sqlite_version() == {"0002_add_products_discount_rate"}
    with pytest.raises(UnknownMigration):
        apply_migrations(project, "0042", on_event=lambda *event: None)
    here.edit(
        "project/migrations/versions/0003_fill_discount_rate.py",
        "def upgrade() -> None:\n",
        "def upgrade() -> None:\n    raise RuntimeError('broken on purpose')\n",
    )
    broken = Project.load()
    with pytest.raises(SqlmanageError, match="broken on purpose"):
        apply_migrations(broken, None, on_event=lambda *event: None)
    assert project.config.attributes == {} and broken.config.attributes == {}
    for proxy in (alembic.op, alembic.context):
        with pytest.raises(AttributeError):
            proxy.get_context()
    assert events.count("done") == 2


def test_a_project_command_returns_its_value(here):
    folder = here.path / "project" / "management" / "commands"
    folder.mkdir(parents=True)
    (folder / "answer.py").write_text(
        '"""Answer."""\nimport click\n\n\n@click.command()\n@click.argument("n", type=int)\n'
        'def command(n):\n    return {"answer": n * 2}\n'
    )
    assert sqlmanage.call_command("answer", 21) == {"answer": 42}


def test_import_sqlmanage_is_cheap():
    probe = (
        "import sqlmanage, sys; print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('click', 'sqlalchemy', 'alembic', 'rich')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout == "[]\n"
