"""User mistakes: one clear message and a hint on stderr, Django's exit codes, nothing half-done.

Every case runs ``python manage.py ...`` in a fresh copy of the example
project and checks, besides the message itself: the exit code (1 for a command error, 2 for a
usage error), no traceback (unless ``-v 3`` or ``--traceback`` asks for one), no database
password in any output, and that nothing was left half-done: no file written or changed, no
database created, the version table as it was.
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from conftest import PG_ADMIN_URL, add_discount_code, execute, version_rows

VERSIONS = "project/migrations/versions"
LAST = "0003_fill_discount_rate"
FILE_NAME = re.compile(r"^\d{4}_[a-z0-9_]+\.py$")
REVISION_LINE = re.compile(r"^revision(?:\s*:\s*str)?\s*=\s*['\"]([^'\"]*)['\"]", re.MULTILINE)

MIGRATION_FILE = '''"""{message}

Revision ID: {revision}
Revises: {down_revision}
Create Date: 2026-11-25 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = {revision!r}
down_revision = {down_revision!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
'''


# --- helpers ------------------------------------------------------------------------------


def tree(root: Path) -> dict[str, bytes]:
    """Every file below root with its content: the 'nothing changed' probe.

    Bytecode and sqlmanage's caches aside, and the SQLite lock file, whose content is only
    the last holder's process id.
    """
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix not in (".pyc", ".lock")
    }


def assert_unchanged(before: dict[str, bytes], after: dict[str, bytes]) -> None:
    """No file was added, removed or changed (a database file counts: a created one is a bug)."""
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(path for path in set(before) & set(after) if before[path] != after[path])
    assert (added, removed, changed) == ([], [], []), (
        f"half-done: added {added}, removed {removed}, changed {changed}"
    )


def shown(result) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def assert_user_error(
    result, *message: str, hint: str = "", code: int = 1, traceback_allowed: bool = False
) -> str:
    """Exit code, one 'Error:' line naming the problem, a hint, no traceback, no ANSI codes.

    Returns the error line. ``message`` substrings must be in the error line itself, ``hint``
    in what follows it.
    """
    assert result.returncode == code, shown(result)
    if not traceback_allowed:
        assert "Traceback" not in result.stderr + result.stdout, shown(result)
    assert "\x1b[" not in result.stderr + result.stdout, "ANSI codes off a terminal\n" + shown(
        result
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [i for i, line in enumerate(lines) if line.startswith("Error:")]
    assert len(errors) == 1, "expected exactly one 'Error:' line\n" + shown(result)
    error_line = lines[errors[0]]
    for text in message:
        assert text in error_line, f"{text!r} not in the error line\n" + shown(result)
    if code == 2:
        # click's usage errors: the hint is the "Try '... --help' for help." line.
        assert any(line.startswith("Try '") and "for help" in line for line in lines), shown(result)
    else:
        after = "\n".join(lines[errors[0] + 1 :])
        assert after.strip(), "no hint line after the error\n" + shown(result)
        assert hint in after, f"{hint!r} not in the hint\n" + shown(result)
    return error_line


def assert_no_password(result, password: str) -> None:
    """The password is nowhere in the output: raw, percent-encoded or form-encoded."""
    output = result.stdout + result.stderr
    for form in {password, quote(password, safe=""), quote_plus(password)}:
        assert form not in output, f"password form {form!r} leaked\n" + shown(result)


def line_of(path: Path, needle: str) -> int:
    """The 1-based number of the first line of path that contains needle."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def write_migration(
    project, file_name: str, revision: str, down_revision: str | None, message: str = "hand written"
) -> Path:
    path = project.versions / file_name
    path.write_text(
        MIGRATION_FILE.format(message=message, revision=revision, down_revision=down_revision)
    )
    return path


def set_sqlite_version(project, revision: str) -> None:
    with sqlite3.connect(project.sqlite_file) as connection:
        connection.execute("update alembic_version set version_num = ?", (revision,))


@pytest.fixture
def migrated(project):
    """The example project with its SQLite database at the last migration."""
    project.manage("migrate")
    assert project.sqlite_version() == {LAST}
    return project


# --- 1. unknown targets -------------------------------------------------------------------


@pytest.mark.parametrize("database", ["fresh", "migrated"])
def test_migrate_to_an_unknown_target(project, database):
    """'migrate 0042' names no migration: say so, point at showmigrations, touch nothing.

    On a fresh copy the database file must not even be created.
    """
    if database == "migrated":
        project.manage("migrate")
    before = tree(project.path)
    result = project.run("migrate", "0042")
    assert_user_error(result, "Cannot find a migration matching '0042'", hint="showmigrations")
    assert_unchanged(before, tree(project.path))
    if database == "fresh":
        assert not project.sqlite_file.exists(), "a failed migrate created the database file"


def test_sqlmigrate_an_unknown_migration(project):
    """'sqlmigrate nope' names no migration: one message, nothing written."""
    before = tree(project.path)
    result = project.run("sqlmigrate", "nope")
    assert_user_error(result, "Cannot find a migration matching 'nope'", hint="showmigrations")
    assert result.stdout == ""
    assert_unchanged(before, tree(project.path))


# --- 2. ambiguous prefix ------------------------------------------------------------------


def test_migrate_to_an_ambiguous_prefix_lists_every_match(migrated):
    """Two migrations start with '0003_fill': the user must say which, both are listed."""
    project = migrated
    project.manage("migrate", "0002")
    write_migration(project, "0003_fill_other.py", "0003_fill_other", LAST)
    before = tree(project.path)
    result = project.run("migrate", "0003_fill")
    line = assert_user_error(result, "More than one migration matches '0003_fill'")
    assert LAST in line and "0003_fill_other" in line
    assert_unchanged(before, tree(project.path))
    assert project.sqlite_version() == {"0002_add_products_discount_rate"}


# --- 3. relative steps beyond the history -------------------------------------------------


def test_migrate_back_more_steps_than_applied(migrated):
    """'migrate -5' with only 3 applied: refuse, say how many there are, unapply nothing."""
    project = migrated
    before = tree(project.path)
    result = project.run("migrate", "-5")
    assert_user_error(result, "-5", "only 3 migrations are applied", hint="showmigrations")
    assert_unchanged(before, tree(project.path))
    assert project.sqlite_version() == {LAST}


def test_migrate_forward_more_steps_than_pending(migrated):
    """'migrate +5' with only 2 pending: refuse, say how many there are, apply nothing."""
    project = migrated
    project.manage("migrate", "0001")
    before = tree(project.path)
    result = project.run("migrate", "+5")
    assert_user_error(result, "+5", "only 2 migrations are unapplied", hint="showmigrations")
    assert_unchanged(before, tree(project.path))
    assert project.sqlite_version() == {"0001_initial"}


# --- 4. settings --------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["--settings", "environment"])
@pytest.mark.parametrize(
    "command",
    [["migrate"], ["showmigrations"], ["makemigrations"], ["sqlmigrate", "0001"]],
    ids=lambda c: c[0],
)
def test_settings_module_that_does_not_exist(project, how, command):
    """A typo in --settings or SQLMANAGE_SETTINGS_MODULE: the module is named, nothing is created."""
    before = tree(project.path)
    if how == "--settings":
        result = project.run(*command, "--settings", "nope.settings")
    else:
        result = project.run(*command, env={"SQLMANAGE_SETTINGS_MODULE": "nope.settings"})
    assert_user_error(result, "nope.settings", "cannot be found", hint="SQLMANAGE_SETTINGS_MODULE")
    assert_unchanged(before, tree(project.path))


def test_settings_with_a_syntax_error(project):
    """A syntax error in settings.py: the message gives the file and the line."""
    settings = project.path / "project" / "settings.py"
    append(settings, "\nDEBUG = = True\n")
    line = line_of(settings, "DEBUG = = True")
    before = tree(project.path)
    result = project.run("migrate")
    assert_user_error(result, "project.settings", "syntax error", "settings.py", f"line {line}")
    assert_unchanged(before, tree(project.path))


def test_settings_that_raise_at_import(project):
    """settings.py raises while it is imported: the exception, the file and the line are named."""
    settings = project.path / "project" / "settings.py"
    append(settings, '\nraise RuntimeError("boom")\n')
    line = line_of(settings, 'raise RuntimeError("boom")')
    before = tree(project.path)
    result = project.run("migrate")
    assert_user_error(
        result,
        "project.settings",
        "RuntimeError: boom",
        "settings.py",
        f"line {line}",
        hint="--traceback",
    )
    assert_unchanged(before, tree(project.path))


# --- 5. a model module that fails to import -----------------------------------------------


def test_model_module_that_fails_to_import(migrated):
    """A broken import in one model module: makemigrations names that module and writes nothing."""
    project = migrated
    add_discount_code(project)  # there is a change to write, were the models importable
    reviews = project.path / "project" / "models" / "reviews.py"
    append(reviews, "\nimport does_not_exist\n")
    line = line_of(reviews, "import does_not_exist")
    before = tree(project.path)
    result = project.run("makemigrations")
    assert_user_error(
        result,
        "project.models.reviews",
        "does_not_exist",
        "reviews.py",
        f"line {line}",
        hint="--traceback",
    )
    assert_unchanged(before, tree(project.path))
    assert project.migration_files() == [
        f"{name}.py" for name in ("0001_initial", "0002_add_products_discount_rate", LAST)
    ]


# --- 6. unreachable database --------------------------------------------------------------

UNREACHABLE = {
    "refused": ("postgresql://alice:s3cr%40t-pw@127.0.0.1:1/nope", "s3cr@t-pw", "127.0.0.1"),
    "unknown-host": (
        "postgresql://bob:hunter22@no-such-host.invalid/db",
        "hunter22",
        "no-such-host.invalid",
    ),
}


@pytest.mark.parametrize("verbosity", [[], ["-v", "3"]], ids=["default", "v3"])
@pytest.mark.parametrize("command", ["migrate", "showmigrations"])
@pytest.mark.parametrize("case", sorted(UNREACHABLE))
def test_unreachable_database_never_shows_the_password(project, case, command, verbosity):
    """The server is down or the host unknown: 'cannot connect', with the host, never the password.

    With -v 3 the traceback is shown (it was asked for) but is redacted too.
    """
    url, password, host = UNREACHABLE[case]
    before = tree(project.path)
    result = project.run(command, *verbosity, env={"DATABASE_URL": url})
    assert_user_error(
        result,
        "Cannot connect to the database",
        host,
        hint="DATABASE_URL",
        traceback_allowed=bool(verbosity),
    )
    if verbosity:
        assert "Traceback" in result.stderr, "-v 3 asks for the traceback\n" + shown(result)
    assert_no_password(result, password)
    assert_unchanged(before, tree(project.path))


@pytest.mark.postgres
@pytest.mark.parametrize("verbosity", [[], ["-v", "3"]], ids=["default", "v3"])
def test_missing_postgresql_database_never_shows_the_password(project, verbosity):
    """A real server, but no such database: cannot connect, no password, and nothing created."""
    import sqlalchemy as sa

    name = f"sqlmanage_missing_{uuid.uuid4().hex[:12]}"
    admin = sa.engine.make_url(PG_ADMIN_URL)
    password = "pa55:w0rd/!@x"
    url = admin.set(database=name, password=password).render_as_string(hide_password=False)
    result = project.run("migrate", *verbosity, env={"DATABASE_URL": url})
    assert_user_error(
        result, "Cannot connect to the database", name, traceback_allowed=bool(verbosity)
    )
    assert_no_password(result, password)
    engine = sa.create_engine(admin, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            exists = connection.exec_driver_sql(
                "select 1 from pg_database where datname = %(name)s", {"name": name}
            ).first()
    finally:
        engine.dispose()
    assert exists is None, "migrate created the database"


# --- 7. missing driver --------------------------------------------------------------------


@pytest.mark.parametrize("command", ["migrate", "showmigrations"])
def test_missing_driver_says_what_to_install(project, command):
    """postgresql+pg8000:// without pg8000 installed: name the driver and the pip command."""
    before = tree(project.path)
    result = project.run(
        command, env={"DATABASE_URL": "postgresql+pg8000://u:pw123456@127.0.0.1/db"}
    )
    assert_user_error(result, "pg8000", "not installed", hint="pip install pg8000")
    assert_no_password(result, "pw123456")
    assert_unchanged(before, tree(project.path))


# --- 8. invalid URL -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, password",
    [
        ("not a url", None),
        ("postgresql://carol:topsecret99@db.example:notaport/app", "topsecret99"),
    ],
    ids=["not-a-url", "bad-port"],
)
@pytest.mark.parametrize("command", ["migrate", "showmigrations"])
def test_invalid_database_url(project, command, url, password):
    """DATABASE_URL is not a URL at all, or has a port that is not a number: say it is invalid."""
    before = tree(project.path)
    result = project.run(command, env={"DATABASE_URL": url})
    assert_user_error(result, "DATABASE_URL", "not a valid", hint="dialect+driver://")
    if password:
        assert_no_password(result, password)
    assert_unchanged(before, tree(project.path))


# --- 9. several heads ---------------------------------------------------------------------


@pytest.mark.parametrize("database", ["fresh", "migrated"])
def test_migrate_with_several_heads(project, database):
    """Two migrations on top of 0002: conflicting heads, suggest makemigrations --merge, apply nothing."""
    if database == "migrated":
        project.manage("migrate")
    write_migration(project, "0003_other.py", "0003_other", "0002_add_products_discount_rate")
    before = tree(project.path)
    result = project.run("migrate")
    line = assert_user_error(result, "multiple heads", hint="makemigrations --merge")
    assert "Conflicting migrations" in line
    assert LAST in line and "0003_other" in line
    assert_unchanged(before, tree(project.path))
    if database == "fresh":
        assert not project.sqlite_file.exists(), "a failed migrate created the database file"


# --- 10. broken migration files -----------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["migrate"], ["showmigrations"], ["makemigrations"], ["sqlmigrate", "0001"]],
    ids=lambda c: c[0],
)
def test_migration_file_with_a_syntax_error(migrated, command):
    """A migration file that is not valid Python: the file and the line are named."""
    project = migrated
    path = write_migration(project, "0004_broken.py", "0004_broken", LAST)
    append(path, "\ndef oops(:\n    pass\n")
    line = line_of(path, "def oops(:")
    before = tree(project.path)
    result = project.run(*command)
    assert_user_error(result, "0004_broken.py", f"line {line}", "syntax error")
    assert_unchanged(before, tree(project.path))
    assert project.sqlite_version() == {LAST}


@pytest.mark.parametrize("command", [["migrate"], ["showmigrations"]], ids=lambda c: c[0])
def test_migration_file_without_a_revision(migrated, command):
    """A migration file with no 'revision' variable: the file is named, nothing runs."""
    project = migrated
    path = write_migration(project, "0004_norev.py", "0004_norev", LAST)
    path.write_text(re.sub(r"^revision = .*$", "", path.read_text(), flags=re.MULTILINE))
    assert not re.search(r"^revision\b", path.read_text(), flags=re.MULTILINE)
    before = tree(project.path)
    result = project.run(*command)
    assert_user_error(result, "0004_norev.py", "revision")
    assert_unchanged(before, tree(project.path))
    assert project.sqlite_version() == {LAST}


# --- 11. the database at a revision no file has -------------------------------------------


def test_migrate_when_the_database_is_at_an_unknown_revision(migrated):
    """The version table says ffff_gone, a file nobody has: migrate refuses, names it, changes nothing."""
    project = migrated
    set_sqlite_version(project, "ffff_gone")
    before = tree(project.path)
    result = project.run("migrate")
    assert_user_error(result, "ffff_gone", hint="Restore the missing migration file")
    assert "--fake" not in result.stderr, "a hint that can purge another project's version row"
    assert_unchanged(before, tree(project.path))
    assert project.sqlite_version() == {"ffff_gone"}


def test_fake_over_an_unknown_revision_records_the_real_state(migrated):
    """Asked for explicitly (never hinted), 'migrate --fake 0003' records the real state."""
    project = migrated
    set_sqlite_version(project, "ffff_gone")
    fake = project.run("migrate", "--fake", "0003")
    assert fake.returncode == 0, shown(fake)
    assert "  Applying 0003_fill_discount_rate... FAKED" in fake.stdout
    assert project.sqlite_version() == {LAST}
    assert "  No migrations to apply." in project.manage("migrate").lines


BROKEN_FILES = {
    "import-error": (
        "import nosuchmodule\n",
        "0004_broken",
        LAST,
        ["failed to load", "nosuchmodule", "0004_broken.py"],
    ),
    "missing-parent": ("", "0004_broken", "0009_nope", ["history is broken", "0009_nope"]),
    "duplicate-id": (
        "",
        LAST,
        "0002_add_products_discount_rate",
        ["history is broken", LAST, "more than once"],
    ),
}


@pytest.mark.parametrize(
    "case, command",
    [
        (case, command)
        for case in sorted(BROKEN_FILES)
        for command in ("migrate", "showmigrations")
        if (case, command) != ("import-error", "showmigrations")  # see the test below
    ],
)
def test_broken_histories_are_named(migrated, case, command):
    """A file that fails to import, a parent no file has, two files with one id: a clear message."""
    project = migrated
    prelude, revision, parent, expected = BROKEN_FILES[case]
    path = write_migration(project, "0004_broken.py", revision, parent)
    path.write_text(prelude + path.read_text())
    before = tree(project.path)
    result = project.run(command)
    assert_user_error(result, *expected, hint="")
    assert "UserWarning" not in result.stderr
    assert_unchanged(before, tree(project.path))


def test_a_migration_is_imported_only_when_it_is_about_to_run(migrated):
    """showmigrations reads headers without importing; migrate imports before running any."""
    project = migrated
    prelude, revision, parent, _ = BROKEN_FILES["import-error"]
    path = write_migration(project, "0004_broken.py", revision, parent)
    path.write_text(prelude + path.read_text())
    assert project.manage("showmigrations").lines[-1] == " [ ] 0004_broken"
    assert_user_error(project.run("migrate"), "failed to load", "nosuchmodule", hint="")
    assert version_rows(f"sqlite:///{project.sqlite_file}") == {LAST}


def test_a_project_without_a_migrations_folder(project):
    """Read-only commands see an empty history; makemigrations creates the folder when it writes."""
    import shutil

    shutil.rmtree(project.path / "project" / "migrations")
    assert project.manage("showmigrations").lines == ["project", " (no migrations)"]
    assert project.run("makemigrations", "--check").returncode == 1
    assert not (project.path / "project" / "migrations").exists()
    project.manage("makemigrations")
    assert (project.versions / "0001_initial.py").exists()


def test_showmigrations_when_the_database_is_at_an_unknown_revision(migrated):
    """showmigrations still works: the unknown revision is listed, flagged, and warned about."""
    project = migrated
    set_sqlite_version(project, "ffff_gone")
    result = project.run("showmigrations")
    assert result.returncode == 0, shown(result)
    assert "Traceback" not in result.stdout + result.stderr
    flagged = [line for line in result.lines if "ffff_gone" in line]
    assert flagged == [" [?] ffff_gone (recorded in the database; no migration file)"], shown(
        result
    )
    assert "Warning" in result.stderr and "ffff_gone" in result.stderr, shown(result)
    assert project.sqlite_version() == {"ffff_gone"}


# --- 12. names given with -n --------------------------------------------------------------

HOSTILE_NAMES = {
    "dot-dot-slash": "../../evil",
    "absolute": "/tmp/evil_absolute",
    "backslashes": "..\\..\\evil_windows",
    "newlines": "fill\nrates\r\nnow",
    "quotes-and-markup": "'''\"\"\" [red]x[/red] $(touch pwned)",
    "200-chars": "a_long_name_" * 16 + "x" * 8,
}


@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
def test_hostile_migration_names_become_a_safe_slug(project, name):
    """'makemigrations --empty -n NAME' writes one file, inside versions/, with a safe name and id."""
    assert len(HOSTILE_NAMES["200-chars"]) == 200
    root = project.path.parent  # the whole tmp dir: nothing may appear beside the project either
    before = tree(root)
    project.manage("makemigrations", "--empty", "-n", name)
    after = tree(root)

    changed = [path for path in before if after.get(path) != before[path]]
    assert changed == [], f"existing files changed or removed: {changed}"
    added = sorted(set(after) - set(before))
    assert len(added) == 1, f"expected one new file, got {added}"
    new = root / added[0]
    assert new.parent == project.versions, added
    assert FILE_NAME.match(new.name), new.name
    source = new.read_text()
    revisions = REVISION_LINE.findall(source)
    assert len(revisions) == 1, source
    assert 0 < len(revisions[0]) <= 32, revisions[0]
    compile(source, str(new), "exec")  # the message went into the docstring safely
    for outside in (
        root.parent / "evil",
        Path("/tmp/evil_absolute"),
        Path("/tmp/evil_absolute.py"),
    ):
        assert not outside.exists(), outside
    # and the history still loads, with the new migration in it
    listed = project.manage("showmigrations", "--format", "plain")
    assert f" [ ] {new.stem}" in listed.lines


def test_empty_migration_name_is_a_usage_error(project):
    """'-n ""' is a usage error (exit 2): nothing is written."""
    before = tree(project.path)
    result = project.run("makemigrations", "--empty", "-n", "")
    assert_user_error(result, "-n", "must not be empty", code=2)
    assert_unchanged(before, tree(project.path))


def test_migration_name_without_letters_or_digits(project):
    """'-n ///' leaves no slug: a clear error, nothing written."""
    before = tree(project.path)
    result = project.run("makemigrations", "--empty", "-n", "///")
    assert_user_error(result, "no letters or digits", hint="-n")
    assert_unchanged(before, tree(project.path))


# --- 13. markup and escapes in a migration message ----------------------------------------

MARKUP_MESSAGE = r"[red]boom[/red] \x1b[31mred\x1b[0m [bold]"


@pytest.mark.parametrize("output_format", ["table", "json"])
def test_markup_and_escapes_in_a_migration_message_are_printed_literally(migrated, output_format):
    """A docstring with Rich markup and an ANSI escape: shown as text, never interpreted."""
    project = migrated
    write_migration(project, "0004_markup.py", "0004_markup", LAST, message=MARKUP_MESSAGE)
    # a wide terminal size, so that the table does not wrap the message
    result = project.run("showmigrations", "--format", output_format, env={"COLUMNS": "250"})
    assert result.returncode == 0, shown(result)
    assert "Traceback" not in result.stdout + result.stderr
    assert "\x1b[" not in result.stdout + result.stderr, shown(result)
    if output_format == "json":
        data = json.loads(result.stdout)
        message = next(m["message"] for m in data["migrations"] if m["id"] == "0004_markup")
        assert message.startswith("[red]boom[/red] "), message
        assert "[bold]" in message
    else:
        assert "[red]boom[/red]" in result.stdout, shown(result)
        assert "[bold]" in result.stdout, shown(result)


# --- 14. tracebacks on request ------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, wanted",
    [
        ([], False),
        (["--traceback"], True),
        (["-v", "3"], True),
        (["--verbosity=3"], True),
        (["-v", "2"], False),
    ],
    ids=["default", "traceback", "v3", "verbosity3", "v2"],
)
def test_traceback_only_when_asked(project, flags, wanted):
    """A user error shows its traceback with --traceback or -v 3, and only then."""
    result = project.run("sqlmigrate", "nope", *flags)
    assert_user_error(result, "Cannot find a migration matching 'nope'", traceback_allowed=wanted)
    if wanted:
        assert "Traceback (most recent call last)" in result.stderr, shown(result)
        # the error line still comes last, after the traceback
        assert result.stderr.index("Traceback") < result.stderr.index("Error:")
    else:
        assert "Traceback" not in result.stderr


# --- 15. usage errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["migrate", "--bogus"], ["No such option", "--bogus"]),
        (["showmigrations", "--bogus"], ["No such option", "--bogus"]),
        (["makemigrations", "--bogus"], ["No such option", "--bogus"]),
        (["sqlmigrate", "0001", "--bogus"], ["No such option", "--bogus"]),
        (["showmigrations", "--format", "xml"], ["Invalid value", "xml"]),
    ],
    ids=["migrate", "showmigrations", "makemigrations", "sqlmigrate", "bad-choice"],
)
def test_usage_errors_exit_2(project, args, message):
    """An unknown option or value is a usage error: exit 2, with 'Try ... --help'.

    An unknown command is Django's exit 1 (tests/test_django_habits.py)."""
    before = tree(project.path)
    result = project.run(*args)
    assert_user_error(result, *message, code=2)
    assert_unchanged(before, tree(project.path))


# --- 16. makemigrations on a database that is behind --------------------------------------


@pytest.mark.parametrize("database", ["not-created", "at-0001"])
def test_makemigrations_when_the_database_is_behind(project, database):
    """Not an error any more: the history is the baseline, the database is left untouched."""
    if database == "at-0001":
        project.manage("migrate", "0001")
    add_discount_code(project)
    before = tree(project.path)
    result = project.run("makemigrations")
    assert result.returncode == 0, shown(result)
    after = tree(project.path)
    added = sorted(set(after) - set(before))
    assert added == [f"{VERSIONS}/0004_add_products_discount_code.py"]
    assert {k: v for k, v in after.items() if k in before} == before
    if database == "not-created":
        assert not project.sqlite_file.exists()
    else:
        assert project.sqlite_version() == {"0001_initial"}


# --- PostgreSQL: a failed migrate leaves the version table as it was ----------------------


@pytest.mark.postgres
def test_postgresql_unknown_target_and_unknown_revision_change_nothing(project, pg_url):
    """On PostgreSQL too: an unknown target, then a database at an unknown revision, change nothing."""
    from conftest import inspect_schema

    env = {"DATABASE_URL": pg_url}
    project.manage("migrate", "0002", env=env)
    schema = inspect_schema(pg_url)
    assert version_rows(pg_url) == {"0002_add_products_discount_rate"}

    unknown = project.run("migrate", "0042", env=env)
    assert_user_error(unknown, "0042", hint="showmigrations")
    assert version_rows(pg_url) == {"0002_add_products_discount_rate"}
    assert inspect_schema(pg_url) == schema

    execute(pg_url, "update alembic_version set version_num = 'ffff_gone'")
    gone = project.run("migrate", env=env)
    assert_user_error(gone, "ffff_gone", hint="VERSION_TABLE")
    assert "--fake" not in gone.stderr
    assert version_rows(pg_url) == {"ffff_gone"}
    assert inspect_schema(pg_url) == schema


@pytest.mark.parametrize(
    "line, expected",
    [
        ("MIGRATIONS = 123", "MIGRATIONS must be a string or path, not int"),
        ("DATABASE_URL = 123", "DATABASE_URL must be a string, not int"),
        ('DATABASES = "sqlite://"', "DATABASES must be a dict, not str"),
        ("VERSION_TABLE = None", "VERSION_TABLE must be a string, not NoneType"),
        (
            "COMPARE_TYPE = 'yes'",
            "COMPARE_TYPE must be a boolean or the dotted path of a comparison function, not 'yes'",
        ),
    ],
)
def test_settings_values_of_the_wrong_type(project, line, expected):
    """A setting of the wrong type is named, instead of crashing somewhere later."""
    (project.path / "project" / "alt.py").write_text(f"from project.settings import *\n{line}\n")
    before = tree(project.path)
    result = project.run("showmigrations", "--settings", "project.alt")
    assert_user_error(result, f"project.alt.{expected}", hint="project.alt")
    assert_unchanged(before, tree(project.path))


@pytest.mark.parametrize("value", ["", ".settings", "project/settings.py"])
def test_settings_option_that_is_not_a_module_name(project, value):
    result = project.run("showmigrations", "--settings", value)
    assert_user_error(result, "is not a settings module name", hint="project.settings")


@pytest.mark.parametrize(
    "flags",
    [["--sql", "--check"], ["--sql", "--fake"], ["--fake", "--plan"]],
)
def test_migrate_flags_that_cannot_be_combined(project, flags):
    result = project.run("migrate", *flags)
    assert_user_error(result, "cannot be combined", code=2)
    assert not project.sqlite_file.exists()


def test_a_down_revision_cycle_is_named(migrated):
    """0001 made to depend on 0003: the history has a cycle; the message says so."""
    project = migrated
    project.edit(
        f"{VERSIONS}/0001_initial.py",
        "down_revision: Union[str, Sequence[str], None] = None",
        "down_revision: Union[str, Sequence[str], None] = '0003_fill_discount_rate'",
    )
    before = tree(project.path)
    for command in ("migrate", "showmigrations"):
        result = project.run(command)
        assert_user_error(result, "Cycle is detected", "0001_initial", hint="down_revision")
    assert_unchanged(before, tree(project.path))


@pytest.mark.mariadb
def test_mariadb_wrong_password_never_shows_it(project, mariadb_url):
    """A real server refusing the password: 'Cannot connect', exit 1, the password nowhere."""
    password = "n0t-the-r1ght-pw"
    url = mariadb_url.replace("root@", f"root:{password}@")
    for verbosity in ([], ["-v", "3"]):
        result = project.run("migrate", *verbosity, env={"DATABASE_URL": url})
        assert_user_error(
            result,
            "Cannot connect to the database",
            "Access denied",
            traceback_allowed=bool(verbosity),
        )
        assert_no_password(result, password)
