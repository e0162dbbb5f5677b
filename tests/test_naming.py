"""Migration names and numbers: sqlmanage's NNNN_ scheme, foreign histories, alembic.ini's options.

A number is only read from sqlmanage's own ids (``0003_fill_discount_rate``); a history
started with plain Alembic (hex ids, or a date ``file_template``) is continued in Alembic's
scheme; ``migrate N`` means the migration numbered N at any size; ``file_template``,
``truncate_slug_length``, ``timezone`` and ``post_write_hooks`` of alembic.ini are honoured
by makemigrations, merge and squash. Everything runs through manage.py, and plain alembic
reads the result.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path

from conftest import add_discount_code
from test_errors import assert_user_error

# The example's history, renamed as plain Alembic would have named it. One id is all digits,
# as 1 in 280 of Alembic's random ids are: it must still not be read as a number.
HEX_IDS = {
    "0001_initial": "4c1f0a9b2e7d",
    "0002_add_products_discount_rate": "123456789012",
    "0003_fill_discount_rate": "b7d2e4f6a813",
}
SLUGS = {
    "0001_initial": "initial",
    "0002_add_products_discount_rate": "add_products_discount_rate",
    "0003_fill_discount_rate": "fill_discount_rate",
}
DATES = {
    "0001_initial": "2022_01_20_1234",
    "0002_add_products_discount_rate": "2022_01_21_0910",
    "0003_fill_discount_rate": "2022_02_03_1702",
}
DATE_TEMPLATE = "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d-%%(rev)s_%%(slug)s"
DATE_NAME = re.compile(r"^(\d{4})_(\d\d)_(\d\d)_(\d\d)(\d\d)-([0-9a-f]{12})_(\w+)\.py$")
HEX_NAME = re.compile(r"^([0-9a-f]{12})_(\w+)\.py$")


def set_alembic_options(project, **options: str) -> None:
    """Add options to the [alembic] section of the project's alembic.ini."""
    lines = "".join(f"{key} = {value}\n" for key, value in options.items())
    project.edit("alembic.ini", "[alembic]\n", f"[alembic]\n{lines}")


def rename_history(project, dated: bool) -> None:
    """Give the example's migrations Alembic's hex ids, in files named as Alembic names them."""
    files = sorted(project.versions.glob("*.py"))
    for path in files:
        text = path.read_text()
        for old, new in HEX_IDS.items():
            text = text.replace(old, new)
        old = path.stem
        name = f"{HEX_IDS[old]}_{SLUGS[old]}.py"
        (project.versions / (f"{DATES[old]}-{name}" if dated else name)).write_text(text)
        path.unlink()


def header(path: Path) -> dict:
    """revision, down_revision and the Create Date of a migration file."""
    tree = ast.parse(path.read_text())
    values = {}
    for node in tree.body:
        target = getattr(node, "target", None) or (getattr(node, "targets", None) or [None])[0]
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            values[target.id] = ast.literal_eval(node.value)
    created = re.search(r"^Create Date: (.+)$", path.read_text(), re.MULTILINE).group(1)
    values["created"] = datetime.fromisoformat(created)
    return values


def new_files(project, before: set[str]) -> list[str]:
    return sorted(set(project.migration_files()) - before)


# --- a hex history (MLflow's kind) ----------------------------------------------------------


def test_a_hex_history_is_continued_with_alembic_ids_not_0004(project):
    rename_history(project, dated=False)
    add_discount_code(project)
    before = set(project.migration_files())
    project.manage("makemigrations", "--noinput")
    [name] = new_files(project, before)
    match = HEX_NAME.match(name)
    assert match and match.group(2) == "add_products_discount_code", name
    written = header(project.versions / name)
    assert written["revision"] == match.group(1)
    assert written["down_revision"] == HEX_IDS["0003_fill_discount_rate"]
    assert project.alembic("heads").stdout.split()[0] == written["revision"]
    project.manage("migrate")
    assert project.sqlite_version() == {written["revision"]}
    assert "discount_code" in project.manage("sqlmigrate", written["revision"][:6]).stdout
    assert project.manage("makemigrations", "--check").lines == ["No changes detected"]


def test_hex_prefixes_work_as_in_alembic_and_a_numeric_one_is_not_a_number(project):
    rename_history(project, dated=False)
    project.manage("migrate", "4c1f")
    assert project.sqlite_version() == {"4c1f0a9b2e7d"}
    project.manage("migrate", "1234")  # a prefix of the all-digit hex id, as Alembic reads it
    assert project.sqlite_version() == {"123456789012"}
    assert_user_error(project.run("sqlmigrate", "2"), "Cannot find a migration matching '2'")
    shown = json.loads(project.manage("showmigrations", "--format", "json").stdout)
    assert [(m["id"], m["number"]) for m in shown["migrations"]] == [
        (revision, None) for revision in HEX_IDS.values()
    ]


def test_merge_in_a_hex_history_is_named_after_the_branches_and_hooked(project):
    rename_history(project, dated=False)
    add_exec_hook(project)
    last = HEX_IDS["0003_fill_discount_rate"]
    for revision, slug in (("c0ffee123456", "add_notes"), ("dead00beef12", "fill_notes")):
        (project.versions / f"{revision}_{slug}.py").write_text(
            f'"""{slug}"""\nrevision = {revision!r}\ndown_revision = {last!r}\n'
            "branch_labels = None\ndepends_on = None\n\n\ndef upgrade():\n    pass\n\n\n"
            "def downgrade():\n    pass\n"
        )
    before = set(project.migration_files())
    project.manage("makemigrations", "--merge", "--noinput")
    [name] = new_files(project, before)
    assert HEX_NAME.match(name) and name.endswith("_merge_add_fill.py"), name
    assert sorted(header(project.versions / name)["down_revision"]) == [
        "c0ffee123456",
        "dead00beef12",
    ]
    assert (project.versions / name).read_text().endswith("# formatted by the hook\n")
    assert (project.path / "hook.log").read_text().splitlines() == [name]
    assert project.alembic("heads").stdout.split() == [
        header(project.versions / name)["revision"],
        "(head)",
    ]


# --- a date-template history ----------------------------------------------------------------


def test_a_date_template_history_gets_date_names_and_2022_is_not_a_number(project):
    rename_history(project, dated=True)
    set_alembic_options(project, file_template=DATE_TEMPLATE)
    add_discount_code(project)
    before = set(project.migration_files())
    project.manage("makemigrations", "--noinput")
    [name] = new_files(project, before)
    match = DATE_NAME.match(name)
    assert match, name
    assert match.group(7) == "add_products_discount_code"
    written = header(project.versions / name)
    assert written["revision"] == match.group(6)
    created = written["created"]
    assert match.group(1, 2, 3, 4, 5) == (
        f"{created.year}",
        f"{created.month:02d}",
        f"{created.day:02d}",
        f"{created.hour:02d}",
        f"{created.minute:02d}",
    )
    # 2022 is the year of three files, not migration number 2022; a name prefix still works.
    assert_user_error(project.run("sqlmigrate", "2022"), "Cannot find a migration matching '2022'")
    assert "discount_rate" in project.manage("sqlmigrate", "2022_01_21").stdout
    project.manage("migrate")
    assert project.sqlite_version() == {written["revision"]}


def test_a_squash_in_a_date_template_history_is_named_by_the_template(project):
    rename_history(project, dated=True)
    set_alembic_options(project, file_template=DATE_TEMPLATE)
    last = HEX_IDS["0003_fill_discount_rate"]
    project.manage("squashmigrations", "4c1f", last, "--noinput")
    names = project.migration_files()
    assert len(names) == 1, names
    match = DATE_NAME.match(names[0])
    assert match, names
    assert match.group(6) == last
    assert match.group(7) == f"squashed_{HEX_IDS['0001_initial']}_{last}"
    assert header(project.versions / names[0])["revision"] == last
    project.manage("migrate")
    assert project.sqlite_version() == {last}


# --- more than 1,000 migrations ---------------------------------------------------------------


def test_migrate_10_means_0010_in_a_history_of_over_1000(project):
    for path in project.versions.glob("*.py"):
        path.unlink()
    previous = None
    for number in range(1, 1006):
        revision = f"{number:04d}_step"
        (project.versions / f"{revision}.py").write_text(
            f'"""step {number}"""\nfrom alembic import op\n\nrevision = {revision!r}\n'
            f"down_revision = {previous!r}\nbranch_labels = None\ndepends_on = None\n\n\n"
            f"def upgrade():\n    op.execute('SELECT {number}')\n\n\ndef downgrade():\n    pass\n"
        )
        previous = revision
    project.manage("migrate", "10")
    assert project.sqlite_version() == {"0010_step"}
    project.manage("migrate", "0003")
    assert project.sqlite_version() == {"0003_step"}
    assert "SELECT 1000;" in project.manage("sqlmigrate", "1000").stdout
    assert "SELECT 12;" in project.manage("sqlmigrate", "012").stdout
    assert_user_error(project.run("sqlmigrate", "1006"), "Cannot find a migration matching '1006'")
    before = set(project.migration_files())
    project.manage("makemigrations", "--empty", "-n", "next")
    assert new_files(project, before) == ["1006_next.py"]


# --- alembic.ini options in sqlmanage's own scheme ------------------------------------------------


def test_file_template_in_alembic_ini_wins_over_the_numbers(project):
    set_alembic_options(project, file_template="%%(rev)s_%%(slug)s")
    before = set(project.migration_files())
    project.manage("makemigrations", "--empty", "-n", "fill codes")
    [name] = new_files(project, before)
    match = HEX_NAME.match(name)
    assert match and match.group(2) == "fill_codes", name
    assert header(project.versions / name)["down_revision"] == "0003_fill_discount_rate"


def test_truncate_slug_length_names_files_as_plain_alembic_does(project):
    rename_history(project, dated=False)
    set_alembic_options(project, truncate_slug_length="10")
    message = "add products discount code"
    before = set(project.migration_files())
    project.manage("makemigrations", "--empty", "-n", message)
    ours = new_files(project, before)
    before = set(project.migration_files())
    project.alembic("revision", "-m", message)
    theirs = new_files(project, before)
    assert len(ours) == len(theirs) == 1
    assert HEX_NAME.match(ours[0]).group(2) == HEX_NAME.match(theirs[0]).group(2) == "add_"


def test_truncate_slug_length_shortens_numbered_names_at_a_word(project):
    set_alembic_options(project, truncate_slug_length="16")
    add_discount_code(project)
    before = set(project.migration_files())
    project.manage("makemigrations", "--noinput")
    assert new_files(project, before) == ["0004_add_products.py"]


def test_timezone_sets_the_create_date_and_the_date_in_the_file_name(project):
    set_alembic_options(project, file_template=DATE_TEMPLATE, timezone="Asia/Kathmandu")
    before = set(project.migration_files())
    started = datetime.now().astimezone()
    project.manage("makemigrations", "--empty", "-n", "note")
    finished = datetime.now().astimezone()
    [name] = new_files(project, before)
    created = header(project.versions / name)["created"]
    assert created.utcoffset() == timedelta(hours=5, minutes=45)
    assert started.replace(microsecond=0) <= created <= finished
    match = DATE_NAME.match(name)
    assert match.group(1, 2, 3, 4, 5) == (
        f"{created.year}",
        f"{created.month:02d}",
        f"{created.day:02d}",
        f"{created.hour:02d}",
        f"{created.minute:02d}",
    )


def test_an_unknown_timezone_is_a_clear_error(project):
    set_alembic_options(project, timezone="Mars/Olympus")
    before = set(project.migration_files())
    result = project.run("makemigrations", "--empty", "-n", "note")
    assert_user_error(result, "Can't locate timezone: Mars/Olympus", hint="UTC")
    assert set(project.migration_files()) == before


def test_a_broken_file_template_is_a_clear_error(project):
    set_alembic_options(project, file_template="%%(revision)s_%%(slug)s")
    before = set(project.migration_files())
    result = project.run("makemigrations", "--empty", "-n", "note")
    assert_user_error(
        result, "file_template = %%(revision)s_%%(slug)s", "KeyError", hint="%%(rev)s_%%(slug)s"
    )
    assert set(project.migration_files()) == before


# --- post_write_hooks -------------------------------------------------------------------------

HOOK = """import sys
from pathlib import Path

path = Path(sys.argv[1])
path.write_text(path.read_text() + "# formatted by the hook\\n")
with open("hook.log", "a") as log:
    log.write(path.name + "\\n")
"""


def add_exec_hook(project) -> None:
    (project.path / "hook.py").write_text(HOOK)
    with (project.path / "alembic.ini").open("a") as ini:
        ini.write(
            "\n[post_write_hooks]\nhooks = stamp\nstamp.type = exec\n"
            f"stamp.executable = {sys.executable}\n"
            "stamp.options = hook.py REVISION_SCRIPT_FILENAME\n"
        )


def test_post_write_hooks_run_on_makemigrations_and_squash_not_on_a_dry_run(project):
    add_exec_hook(project)
    add_discount_code(project)
    project.manage("makemigrations", "--dry-run")
    assert not (project.path / "hook.log").exists(), "a hook ran on a dry run"
    result = project.manage("makemigrations", "--noinput")
    assert "post write hook" not in result.stdout  # Alembic's status line is not sqlmanage's output
    made = project.versions / "0004_add_products_discount_code.py"
    assert made.read_text().endswith("# formatted by the hook\n")
    assert (project.path / "hook.log").read_text().splitlines() == [made.name]
    project.edit(
        "project/models/catalogue.py",
        "    name: Mapped[str] = mapped_column(sa.String(100), unique=True)",
        "    name: Mapped[str] = mapped_column(sa.String(100), unique=True)\n"
        "    note: Mapped[str | None] = mapped_column(sa.String(50))",
    )
    project.manage("makemigrations", "--update", "--noinput")
    assert "note" in made.read_text() and made.read_text().endswith("# formatted by the hook\n")
    project.manage("squashmigrations", "0004", "--noinput")
    squashed = project.versions / "0004_squashed_0001_0004.py"
    assert squashed.read_text().endswith("# formatted by the hook\n")
    assert (project.path / "hook.log").read_text().splitlines() == [
        made.name,
        made.name,
        squashed.name,
    ]
    project.manage("migrate")
    assert project.sqlite_version() == {"0004_add_products_discount_code"}


def test_a_broken_hook_is_a_clear_error_after_the_file_is_written(project):
    with (project.path / "alembic.ini").open("a") as ini:
        ini.write(
            "\n[post_write_hooks]\nhooks = black\nblack.type = console_scripts\n"
            "black.entrypoint = no-such-formatter\n"
        )
    result = project.run("makemigrations", "--empty", "-n", "note")
    assert_user_error(result, "post-write hooks", "no-such-formatter", hint="post_write_hooks")
    assert "0004_note.py" in project.migration_files()
