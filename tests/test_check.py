"""``check``: passing, and failing for each reason with its id, exit 1 and no traceback."""

from __future__ import annotations

import json

import pytest

from conftest import add_discount_code, execute, migration_file

CLEAN = "System check identified no issues (0 silenced).\n"
EVERY_CHECK = [f"sqlmanage.E00{n}" for n in range(1, 10)] + ["sqlmanage.E010"]


@pytest.fixture
def migrated(project):
    project.manage("migrate")
    return project


def failing(project, check_id: str, *args: str, env=None):
    """Run check, insist it fails on ``check_id`` cleanly, and return the result."""
    result = project.run("check", *args, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"({check_id})" in result.stdout, result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert f"Error: System check failed: {check_id}" in result.stderr
    return result


def skipped(result) -> list[str]:
    """The ids listed under SKIPPED:."""
    lines = (
        result.stdout.split("SKIPPED:\n", 1)[1].split("\n\n", 1)[0].splitlines()
        if "SKIPPED:" in result.stdout
        else []
    )
    return [line.split(")", 1)[0].lstrip("(") for line in lines]


def test_a_migrated_project_passes(migrated):
    plain = migrated.manage("check")
    assert plain.stdout == CLEAN and plain.stderr == ""

    verbose = migrated.manage("check", "-v", "2")
    assert [line.split()[:2] for line in verbose.lines[:10]] == [["[ok]", i] for i in EVERY_CHECK]
    assert verbose.lines[-1] == CLEAN.strip()

    data = json.loads(migrated.manage("check", "--format", "json").stdout)
    assert data["passed"] is True and data["issues"] == []
    assert [(c["id"], c["status"]) for c in data["checks"]] == [(i, "ok") for i in EVERY_CHECK]

    table = migrated.manage("check", "--format", "table")
    rows = [line for line in table.lines if line.startswith("│ ok")]
    assert [row.split("│")[2].strip() for row in rows] == EVERY_CHECK
    assert table.lines[-1] == CLEAN.strip() and "\x1b[" not in table.stdout


def test_settings_that_do_not_import(project):
    (project.path / "project" / "settings.py").write_text(
        "DATABASE_URL = 'sqlite:///x.db'\nMODELS = [\n"
    )
    result = failing(project, "sqlmanage.E001")
    assert (
        "project.settings: (sqlmanage.E001) Settings module 'project.settings' has a syntax error"
        in result.stdout
    )
    assert skipped(result) == EVERY_CHECK[1:]
    assert "not checked, because sqlmanage.E001 did not pass" in result.stdout


def test_a_model_module_that_fails_to_import(migrated):
    (migrated.path / "project" / "models" / "broken.py").write_text(
        "import sqlalchemy\nraise RuntimeError('boom')\n"
    )
    result = failing(migrated, "sqlmanage.E002")
    assert (
        "Model module 'project.models.broken' failed to import: RuntimeError: boom" in result.stdout
    )
    assert skipped(result) == ["sqlmanage.E009"]  # the rest does not need the models
    assert "System check identified 1 issue (0 silenced)." in result.stdout


@pytest.mark.parametrize(
    "body, expected",
    [
        ("def upgrade(:\n", "syntax error"),
        (
            '"""0004"""\nrevision = "0004_x"\ndown_revision = "0003_fill_discount_rate"\nundefined_name\n',
            "NameError",
        ),
    ],
    ids=["syntax-error", "fails-at-import"],
)
def test_a_migration_file_that_does_not_load(migrated, body, expected):
    (migrated.versions / "0004_x.py").write_text(body)
    result = failing(migrated, "sqlmanage.E003")
    assert expected in result.stdout and "0004_x.py" in result.stdout
    assert set(skipped(result)) >= {"sqlmanage.E004", "sqlmanage.E006", "sqlmanage.E009"}


def test_several_heads(migrated):
    for name in ("0004_left", "0004_right"):
        (migrated.versions / f"{name}.py").write_text(migration_file(name, "    pass", "    pass"))
    result = failing(migrated, "sqlmanage.E004")
    assert (
        "multiple heads in the migration history (0004_left, 0004_right in project)"
        in result.stdout
    )
    assert "HINT: Run 'python manage.py makemigrations --merge' to merge them." in result.stdout
    assert "(sqlmanage.E007) 2 unapplied migrations: 0004_left, 0004_right." in result.stdout
    assert skipped(result) == ["sqlmanage.E009"]


def test_an_unreachable_database_skips_what_needs_it(project):
    url = "postgresql://postgres:s3cr3t-pw@127.0.0.1:1/shop"
    result = failing(project, "sqlmanage.E005", env={"DATABASE_URL": url})
    assert (
        "Cannot connect to the database postgresql+psycopg2://postgres:***@127.0.0.1:1/shop"
        in result.stdout
    )
    assert "s3cr3t-pw" not in result.stdout + result.stderr
    assert skipped(result) == [
        "sqlmanage.E006",
        "sqlmanage.E007",
        "sqlmanage.E008",
        "sqlmanage.E009",
        "sqlmanage.E010",
    ]
    assert "System check identified 1 issue (0 silenced)." in result.stdout

    offline = project.manage("check", "--tag", "migrations", env={"DATABASE_URL": url})
    assert (
        "(sqlmanage.E009) The models match the migrations: not checked: it needs sqlmanage.E005 "
        "(--tag database)." in offline.stdout
    )
    assert offline.lines[-1] == CLEAN.strip()


def test_a_database_at_a_revision_no_file_has(migrated):
    execute(
        f"sqlite:///{migrated.sqlite_file}", "UPDATE alembic_version SET version_num = 'f00dface'"
    )
    result = failing(migrated, "sqlmanage.E006")
    assert "The database records revision f00dface, which has no migration file." in result.stdout
    assert "sqlmanage.E007" in skipped(result)


def test_unapplied_migrations_and_check_creates_no_database(project):
    result = failing(project, "sqlmanage.E007")
    assert (
        "project: (sqlmanage.E007) 3 unapplied migrations: 0001_initial, "
        "0002_add_products_discount_rate, 0003_fill_discount_rate."
    ) in result.stdout
    assert "\tHINT: Run 'python manage.py migrate' to apply them." in result.stdout
    assert not project.sqlite_file.exists(), "check created the database"


def test_an_applied_migration_edited_since(migrated):
    path = migrated.versions / "0002_add_products_discount_rate.py"
    path.write_text(path.read_text() + "\n# edited after it ran\n")
    result = failing(migrated, "sqlmanage.E008")
    assert (
        "(sqlmanage.E008) 0002_add_products_discount_rate was changed after it was applied; "
        "the database ran the earlier version."
    ) in result.stdout
    assert result.stdout.count("(sqlmanage.E") == 1


def test_model_changes_without_a_migration(migrated):
    add_discount_code(migrated)
    result = failing(migrated, "sqlmanage.E009")
    assert (
        "Your models in 'project' have changes that are not yet reflected in a migration: "
        "Add column discount_code to products."
    ) in result.stdout
    assert (
        "HINT: Run 'python manage.py makemigrations', then 'python manage.py migrate'."
        in result.stdout
    )


def test_deploy_warnings_fail_only_at_the_warning_level(migrated):
    warned = migrated.manage("check", "--deploy")
    assert (
        "WARNINGS:\nproject: (sqlmanage.W001) The database is the embedded SQLite default"
        in warned.stdout
    )
    assert warned.lines[-1] == "System check identified 1 issue (0 silenced)."

    settings = migrated.path / "project" / "settings.py"
    settings.write_text(
        settings.read_text() + '\nOTHER_URL = "postgresql://app:hunter22@db.example/shop"\n'
    )
    strict = failing(migrated, "sqlmanage.W001", "--deploy", "--fail-level", "WARNING")
    assert (
        "project.settings: (sqlmanage.W003) A database password is written in settings.py"
        in strict.stdout
    )
    assert "Error: System check failed: sqlmanage.W001, sqlmanage.W003." in strict.stderr


def test_silenced_checks_and_json(project):
    data = json.loads(project.run("check", "--format", "json").stdout)
    assert data["passed"] is False
    assert [(i["id"], i["level"]) for i in data["issues"]] == [("sqlmanage.E007", "ERROR")]

    settings = project.path / "project" / "settings.py"
    settings.write_text(settings.read_text() + '\nSILENCED_SYSTEM_CHECKS = ["sqlmanage.E007"]\n')
    result = project.manage("check")
    assert result.stdout == "System check identified no issues (1 silenced).\n"


@pytest.mark.postgres
def test_postgresql_passes_then_finds_model_changes(project, pg_url):
    project.env["DATABASE_URL"] = pg_url
    home = project.path / "home"  # no ~/.pgpass: the deploy check sees a URL without a password
    home.mkdir()
    environment = {"HOME": str(home), "PGPASSWORD": "", "PGPASSFILE": ""}
    failing(project, "sqlmanage.E007")
    project.manage("migrate")
    assert project.manage("check").stdout == CLEAN

    deploy = project.manage("check", "--deploy", env=environment)
    assert (
        "(sqlmanage.W002) The database URL has no password (user 'postgres' at 127.0.0.1)."
        in deploy.stdout
    )
    assert "sqlmanage.W001" not in deploy.stdout

    add_discount_code(project)
    result = failing(project, "sqlmanage.E009")
    assert "Add column discount_code to products" in result.stdout
