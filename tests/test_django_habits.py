"""What a Django developer types works, one test per row of docs/django.md's table.

Every test drives ``python manage.py`` as a user does (a subprocess, or a real terminal
through pexpect) in a fresh copy of the example project, whose app label is ``project``.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys

import pytest

from conftest import add_discount_code, finish, rows, spawn

BRANCH_LABEL_LINE = "branch_labels: Union[str, Sequence[str], None] = None"
NOT_NULL_SKU = (
    "    discount_rate: Mapped[float]",
    "    sku: Mapped[str] = mapped_column(sa.String(20), nullable=False)\n    discount_rate: Mapped[float]",
)


def label_tree(project, label: str) -> None:
    """Give the first migration an Alembic branch label: the tree's app label."""
    project.edit(
        "project/migrations/versions/0001_initial.py",
        BRANCH_LABEL_LINE,
        f"branch_labels = ({label!r},)",
    )


# --- row 1: migrate shop 0005, sqlmigrate shop 0005 ---------------------------------------


def test_migrate_and_sqlmigrate_take_app_label_and_migration(project):
    result = project.manage("migrate", "project", "0002")
    assert result.lines[:2] == [
        "Operations to perform:",
        "  Target specific migration: 0002_add_products_discount_rate, from project",
    ]
    assert project.sqlite_version() == {"0002_add_products_discount_rate"}
    labelled = project.manage("sqlmigrate", "project", "0002").stdout
    assert labelled == project.manage("sqlmigrate", "0002").stdout
    assert "ALTER TABLE products ADD COLUMN discount_rate" in labelled


def test_a_branch_label_is_the_tree_s_app_label(project):
    label_tree(project, "shop")
    result = project.manage("migrate", "shop", "0002")
    assert "  Target specific migration: 0002_add_products_discount_rate, from shop" in result.lines
    assert project.manage("showmigrations", "shop").lines[0] == "shop"
    assert project.manage("migrate", "project").lines[1] == "  Apply all migrations: shop"
    assert project.sqlite_version() == {"0003_fill_discount_rate"}


def test_an_unknown_label_says_which_labels_exist(project):
    for args in (
        ["migrate", "shop", "0002"],
        ["sqlmigrate", "shop", "0002"],
        ["showmigrations", "shop"],
        ["makemigrations", "shop"],
        ["squashmigrations", "shop", "0001", "0002"],
    ):
        result = project.run(*args)
        assert result.returncode == 1, (args, result.stderr)
        assert (
            result.stderr
            == "Error: No migrations with the app label 'shop'.\nApp labels: project.\n"
        ), args
    lone = project.run("migrate", "shop")
    assert lone.returncode == 1
    assert "Cannot find a migration matching 'shop' in project." in lone.stderr
    assert "App labels: project." in lone.stderr
    assert not project.sqlite_file.exists()


# --- row 2: migrate shop, migrate shop zero, squashmigrations shop 0005 -------------------


def test_migrate_label_alone_applies_all_and_label_zero_unapplies(project):
    result = project.manage("migrate", "project")
    assert result.lines[1] == "  Apply all migrations: project"
    assert project.sqlite_version() == {"0003_fill_discount_rate"}
    back = project.manage("migrate", "project", "zero")
    assert back.lines[1] == "  Unapply all migrations: project"
    assert rows(project, "select * from alembic_version") == []


def test_squashmigrations_takes_app_label(project):
    ranged = project.manage("squashmigrations", "project", "0002", "0003", "--dry-run")
    assert ranged.lines[:3] == [
        "Will squash the following migrations:",
        " - 0002_add_products_discount_rate",
        " - 0003_fill_discount_rate",
    ]
    result = project.manage("squashmigrations", "project", "0002", "--noinput")
    assert result.lines[:3] == [
        "Will squash the following migrations:",
        " - 0001_initial",
        " - 0002_add_products_discount_rate",
    ]
    assert (project.versions / "replaced" / "0001_initial.py").is_file()


# --- row 3: showmigrations LABEL, makemigrations LABEL ------------------------------------


def test_showmigrations_and_makemigrations_take_labels(project):
    assert project.manage("showmigrations", "project").lines == [
        "project",
        " [ ] 0001_initial",
        " [ ] 0002_add_products_discount_rate",
        " [ ] 0003_fill_discount_rate",
    ]
    assert project.manage("showmigrations", "project", "project", "-l").lines[0] == "project"
    add_discount_code(project)
    made = project.manage("makemigrations", "project")
    assert made.lines[0] == "Migrations for 'project':"
    assert "0004_add_products_discount_code.py" in project.migration_files()


# --- row 4: every option Django users script ------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["showmigrations", "--list"],
        ["showmigrations", "-l"],
        ["migrate", "--skip-checks"],
        ["migrate", "--no-color"],
        ["migrate", "--traceback"],
        ["showmigrations", "--force-color"],
        ["migrate", "--pythonpath", "."],
        ["makemigrations", "--no-header", "--check"],
        ["sqlmigrate", "0001", "--skip-checks", "--pythonpath", "."],
        ["squashmigrations", "0002", "--dry-run", "--skip-checks"],
        ["check", "--skip-checks", "--no-color"],
    ],
)
def test_django_options_are_accepted(project, args):
    result = project.run(*args)
    if args[0] == "check":  # a new project's database has the three migrations unapplied
        assert result.returncode == 1, result.stdout + result.stderr
        assert "(sqlmanage.E007) 3 unapplied migrations" in result.stdout
        assert result.stderr == "Error: System check failed: sqlmanage.E007.\n"
    else:
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Error" not in result.stderr, result.stderr
    assert (
        "No such option" not in result.stderr and "unexpected extra argument" not in result.stderr
    )


def test_force_color_colours_piped_output_and_no_color_clashes(project):
    assert "\x1b[" in project.manage("showmigrations", "--force-color").stdout
    assert "\x1b[" not in project.manage("showmigrations").stdout
    both = project.run("showmigrations", "--force-color", "--no-color")
    assert both.returncode == 2
    assert "The --no-color and --force-color options can't be used together." in both.stderr


def test_pythonpath_finds_the_settings_from_another_folder(project, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    outside = subprocess.run(
        [
            sys.executable,
            "-m",
            "sqlmanage",
            "showmigrations",
            "--pythonpath",
            str(project.path),
            "--settings",
            "project.settings",
        ],
        cwd=elsewhere,
        env=project.environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert outside.returncode == 0, outside.stderr
    assert outside.stdout.splitlines()[0] == "project"
    without = subprocess.run(
        [sys.executable, "-m", "sqlmanage", "showmigrations", "--settings", "project.settings"],
        cwd=elsewhere,
        env=project.environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert without.returncode == 1 and "cannot be found" in without.stderr


def test_fake_initial_fakes_the_first_migration_when_its_tables_exist(project):
    project.manage("migrate", "-v", "0")
    with sqlite3.connect(project.sqlite_file) as connection:  # a database made before sqlmanage
        connection.execute("delete from alembic_version")
        connection.execute("delete from sqlmanage_migrations")
    project.manage("migrate", "0001", "--fake-initial")
    assert project.sqlite_version() == {"0001_initial"}
    assert rows(project, "select revision, direction from sqlmanage_migrations") == [
        ("0001_initial", "fake-apply")
    ]


def test_fake_initial_runs_the_first_migration_on_an_empty_or_partial_database(project):
    result = project.manage("migrate", "--fake-initial")
    assert result.lines[3:] == [
        "  Applying 0001_initial... OK",
        "  Applying 0002_add_products_discount_rate... OK",
        "  Applying 0003_fill_discount_rate... OK",
    ]
    project.manage("migrate", "zero", "-v", "0")
    with sqlite3.connect(project.sqlite_file) as connection:
        connection.execute("create table categories (id integer primary key, name varchar(100))")
    partial = project.run("migrate", "--fake-initial")  # Django: only when *every* table exists
    assert partial.returncode == 1
    assert "  Applying 0001_initial... FAILED" in partial.lines
    assert "already exists" in partial.stderr


def test_fake_initial_prints_faked_then_applies_the_rest(project):
    project.manage("migrate", "0001", "-v", "0")
    with sqlite3.connect(project.sqlite_file) as connection:
        connection.execute("delete from alembic_version")
    result = project.manage("migrate", "--fake-initial")
    assert result.lines == [
        "Operations to perform:",
        "  Apply all migrations: project",
        "Running migrations:",
        "  Applying 0001_initial... FAKED",
        "  Applying 0002_add_products_discount_rate... OK",
        "  Applying 0003_fill_discount_rate... OK",
    ]
    assert project.sqlite_version() == {"0003_fill_discount_rate"}


def test_prune_deletes_the_records_of_migrations_whose_files_are_gone(project):
    project.manage("migrate", "-v", "0")
    project.manage("squashmigrations", "0002", "--noinput", "-v", "0")
    nothing = project.manage("migrate", "--prune", "--noinput")
    assert nothing.lines == ["Pruning migrations:", "  No migrations to prune."]
    for path in (project.versions / "replaced").glob("*.py"):
        path.unlink()
    result = project.manage("migrate", "project", "--prune", "--noinput")
    assert result.lines == ["Pruning migrations:", "  Pruning project.0001_initial OK"]
    revisions = {r for (r,) in rows(project, "select revision from sqlmanage_migrations")}
    assert "0001_initial" not in revisions and "0003_fill_discount_rate" in revisions
    assert project.sqlite_version() == {"0003_fill_discount_rate"}


def test_prune_asks_on_a_terminal_and_no_keeps_the_records(project):
    project.manage("migrate", "-v", "0")
    project.manage("squashmigrations", "0002", "--noinput", "-v", "0")
    for path in (project.versions / "replaced").glob("*.py"):
        path.unlink()
    child = spawn(project, "migrate", "--prune")
    child.expect_exact(
        "Delete the records of 1 migration whose files are gone (0001_initial)? [y/N] "
    )
    child.sendline("n")
    child.expect_exact("Aborting prune.")
    assert finish(child) == 0
    assert ("0001_initial",) in rows(project, "select revision from sqlmanage_migrations")


def test_prune_does_not_move_a_database_that_stands_at_a_missing_file(project):
    project.manage("migrate", "-v", "0")
    (project.versions / "0003_fill_discount_rate.py").unlink()
    result = project.run("migrate", "--prune", "--noinput")
    assert result.returncode == 1
    assert "Not pruned: the database stands at 0003_fill_discount_rate" in result.stderr
    assert "migrate --fake" in result.stderr
    assert project.sqlite_version() == {"0003_fill_discount_rate"}


def test_run_syncdb_says_what_to_do_instead(project):
    result = project.run("migrate", "--run-syncdb")
    assert result.returncode == 1
    assert result.stderr.startswith(
        "Error: sqlmanage has no --run-syncdb: every table comes from a migration.\n"
    )
    assert "makemigrations" in result.stderr and "--fake-initial" in result.stderr
    assert not project.sqlite_file.exists()


def test_no_header_writes_no_revision_header(project):
    add_discount_code(project)
    project.manage("makemigrations", "--no-header")
    text = (project.versions / "0004_add_products_discount_code.py").read_text()
    assert text.startswith('"""add products discount code\n"""\n')
    assert "Create Date" not in text and "Revision ID" not in text
    assert "revision: str = " in text
    project.manage("migrate", "-v", "0")
    assert project.alembic("current").returncode == 0
    assert project.sqlite_version() == {"0004_add_products_discount_code"}


def test_unknown_options_name_the_option_and_suggest(project):
    for args, suggestion in (
        (["migrate", "--fak"], "'--fake'"),
        (["showmigrations", "--lst"], "'--list'"),
        (["migrate", "--prun"], "'--prune'"),
        (["sqlmigrate", "0001", "--backward"], "'--backwards'"),
    ):
        result = project.run(*args)
        assert result.returncode == 2, args
        assert f"No such option '{args[-1]}'" in result.stderr, result.stderr
        assert "Did you mean" in result.stderr and suggestion in result.stderr, result.stderr


# --- row 5: migrate --pythonpath . ------------------------------------------------------------


def test_pythonpath_value_is_not_an_extra_argument(project):
    result = project.manage("migrate", "--pythonpath", ".")
    assert "unexpected extra argument" not in result.stderr
    assert project.sqlite_version() == {"0003_fill_discount_rate"}
    project.manage("migrate", "--pythonpath=.", "project", "0002")
    assert project.sqlite_version() == {"0002_add_products_discount_rate"}


# --- row 6: manage.py migrat ------------------------------------------------------------------


def test_unknown_command_is_django_s_line_and_exit_1(project):
    result = project.run("migrat")
    assert result.returncode == 1
    assert (
        result.stderr
        == "Unknown command: 'migrat'. Did you mean migrate?\nType 'python manage.py help' for usage.\n"
    )
    far = project.run("frobnicate", "--now")
    assert far.returncode == 1
    assert far.stderr.splitlines()[0] == "Unknown command: 'frobnicate'."


# --- row 7: Applying x... OK --------------------------------------------------------------------


def test_timings_only_at_verbosity_2(project):
    plain = project.manage("migrate", "0002")
    assert [line for line in plain.lines if line.startswith("  Applying")] == [
        "  Applying 0001_initial... OK",
        "  Applying 0002_add_products_discount_rate... OK",
    ]
    timed = project.manage("migrate", "-v", "2")
    assert re.fullmatch(
        r"  Applying 0003_fill_discount_rate\.\.\. OK \(\d+\.\d{3}s\)", timed.lines[-1]
    )
    faked = project.manage("migrate", "0002", "--fake", "-v", "2")
    assert re.fullmatch(
        r"  Unapplying 0003_fill_discount_rate\.\.\. FAKED \(\d+\.\d{3}s\)", faked.lines[-1]
    )


# --- row 8: the prompt text -------------------------------------------------------------------


def test_prompts_end_in_y_n_without_a_colon(project):
    child = spawn(project, "squashmigrations", "0002")
    child.expect_exact("Do you wish to proceed? [y/N] ")
    child.sendline("n")
    child.expect_exact("Aborting squash.")
    assert finish(child) == 0
    assert "[y/N]:" not in child.before
    assert project.migration_files()[:2] == [
        "0001_initial.py",
        "0002_add_products_discount_rate.py",
    ]


# --- row 9: makemigrations --dry-run ----------------------------------------------------------


def test_dry_run_noinput_needing_a_default_exits_3(project):
    project.edit("project/models/catalogue.py", *NOT_NULL_SKU)
    result = project.run("makemigrations", "--dry-run", "--noinput")
    assert result.returncode == 3, result.stderr
    assert "sku" in result.stderr
    assert project.migration_files() == [
        "0001_initial.py",
        "0002_add_products_discount_rate.py",
        "0003_fill_discount_rate.py",
    ]


def test_dry_run_never_prompts_on_a_terminal(project):
    project.edit("project/models/catalogue.py", *NOT_NULL_SKU)
    child = spawn(project, "makemigrations", "--dry-run")
    index = child.expect(["Please select a fix:", "Migrations for 'project':"])
    assert index == 1, "--dry-run asked a question"
    assert finish(child) == 0
    assert "Add column sku to products" in child.before
    assert len(project.migration_files()) == 3


# --- row 10: postgres:// ------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_scheme_is_postgresql(project, pg_url):
    heroku_style = pg_url.replace("postgresql://", "postgres://", 1)
    assert heroku_style.startswith("postgres://")
    result = project.manage("migrate", env={"DATABASE_URL": heroku_style})
    assert result.lines[-1] == "  Applying 0003_fill_discount_rate... OK"
    shown = project.manage("showmigrations", "--format", "json", env={"DATABASE_URL": heroku_style})
    assert '"applied": 3' in shown.stdout


# --- row 11: driver hints -------------------------------------------------------------------------


def test_missing_driver_hint_names_the_package_and_the_extra(project):
    result = project.run(
        "showmigrations", env={"DATABASE_URL": "mysql+mysqldb://root@127.0.0.1:3306/shop"}
    )
    assert result.returncode == 1
    assert "The database driver 'mysqldb'" in result.stderr
    assert "pip install mysqlclient" in result.stderr
    assert "pip install 'sqlmanage[mysql]'" in result.stderr
    assert "MySQLdb" not in result.stderr.split("\n", 1)[1]


def test_driver_hint_for_a_bare_mysql_url_without_any_driver():
    """A bare mysql:// whose default DBAPI (MySQLdb) is missing: the hint names mysqlclient."""
    from sqlalchemy.engine import make_url

    from sqlmanage.database import _driver_missing, driver_hint

    error = _driver_missing(
        make_url("mysql://root@db/shop"), ImportError("No module named 'MySQLdb'", name="MySQLdb")
    )
    assert (
        error.message == "The database driver 'mysqldb' for mysql://root@db/shop is not installed."
    )
    assert error.hint.startswith("Install it: pip install mysqlclient;")
    assert "pip install 'sqlmanage[mysql]'" in error.hint
    assert (
        driver_hint("mysql", "pymysql")
        == "Install it: pip install 'sqlmanage[mysql]' (or pip install pymysql)"
    )
    assert (
        driver_hint("postgresql", "asyncpg")
        == "Install it: pip install 'sqlmanage[async]' (or pip install asyncpg)"
    )
