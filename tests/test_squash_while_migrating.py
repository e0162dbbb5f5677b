"""squashmigrations (or an edit) while a migrate runs: the migrate never runs a file it did not read.

The migrate reads the history, then runs its migrations one after the other. A migration
here waits, mid-run, for a flag file the test creates: in between, the test squashes the
range that the migrate is running, or edits the next migration. The originals a squash moves
to versions/replaced/ are the files the migrate read, so it finishes them from there; a file
edited meanwhile is refused with a message that says so, before any of it runs. A migrate
that reads the folder while a squash moves the files waits for the move (a folder lock).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import migration_file

WAITS = migration_file(
    "0004_wait",
    upgrade=(
        "    import os, pathlib\n"
        '    flags = os.environ.get("FLAGS")\n'
        "    if flags:  # only in the migrate under test, not in the squash's replay\n"
        '        pathlib.Path(flags, "started").touch()\n'
        '        while not pathlib.Path(flags, "go").exists():\n'
        "            time.sleep(0.01)"
    ),
    downgrade="    pass",
)
AFTER = migration_file(
    "0005_rename_category",
    upgrade="    op.execute(\"UPDATE categories SET name = 'renamed by 0005'\")",
    downgrade="    pass",
    down_revision="0004_wait",
)
FILES = ["0004_wait.py", "0005_rename_category.py"]


def _migrate_until_waiting(project, flags):
    """A migrate from 0003, stopped inside 0004_wait until the test creates ``flags/go``."""
    # As in most container images: no bytecode beside the files, whose stale copy Alembic
    # would otherwise import for a file that is gone.
    project.env["PYTHONDONTWRITEBYTECODE"] = "1"
    (project.versions / FILES[0]).write_text(WAITS)
    (project.versions / FILES[1]).write_text(AFTER)
    project.manage("migrate", "0003")
    with sqlite3.connect(project.sqlite_file) as connection:
        connection.execute("INSERT INTO categories (name) VALUES ('books')")
    flags.mkdir()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=project.path,
        env=project.environment({"FLAGS": str(flags)}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    while not (flags / "started").exists():  # an event from the migration itself
        if process.poll() is not None:
            pytest.fail("migrate ended before 0004_wait ran:\n" + "".join(process.communicate()))
        time.sleep(0.05)
    return process


def _let_it_finish(process, flags) -> tuple[str, str]:
    (flags / "go").touch()
    try:
        return process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("migrate did not finish after the flag was set")


def _category_names(project) -> list[str]:
    with sqlite3.connect(project.sqlite_file) as connection:
        return [name for (name,) in connection.execute("SELECT name FROM categories")]


@pytest.mark.parametrize(
    "squashed_name", [None, "rename_category"], ids=["new-name", "same-name-as-the-last"]
)
def test_a_squash_of_the_running_range_lets_the_migrate_finish(project, tmp_path, squashed_name):
    flags = tmp_path / "flags"
    process = _migrate_until_waiting(project, flags)
    named = ["--squashed-name", squashed_name] if squashed_name else []
    squash = project.run("squashmigrations", "0005", "--noinput", *named)
    assert squash.returncode == 0, squash.stdout + squash.stderr
    squashed = f"0005_{squashed_name or 'squashed_0001_0005'}.py"
    assert project.migration_files() == [squashed]
    assert sorted(p.name for p in (project.versions / "replaced").glob("*.py"))[-2:] == FILES

    stdout, stderr = _let_it_finish(process, flags)
    assert process.returncode == 0, stdout + stderr
    assert stdout.splitlines()[-2:] == [
        "  Applying 0004_wait... OK",
        "  Applying 0005_rename_category... OK",
    ]
    assert stderr == ""
    assert project.sqlite_version() == {"0005_rename_category"}
    assert _category_names(project) == ["renamed by 0005"], "0005 did not run"

    again = project.manage("migrate", "--noinput")
    assert "No migrations to apply." in again.stdout
    assert again.stderr == "", "the squashed file is not an edit of what ran"
    assert project.manage("showmigrations").lines == ["project", f" [X] {squashed[:-3]}"]
    checked = project.run("check")
    assert (checked.returncode, checked.stdout.strip()) == (
        0,
        "System check identified no issues (0 silenced).",
    ), checked.stdout + checked.stderr


def test_a_migration_edited_while_migrate_runs_is_refused_before_it_runs(project, tmp_path):
    flags = tmp_path / "flags"
    process = _migrate_until_waiting(project, flags)
    project.edit(f"project/migrations/versions/{FILES[1]}", "renamed by 0005", "edited meanwhile")

    stdout, stderr = _let_it_finish(process, flags)
    assert process.returncode == 1, stdout + stderr
    assert stdout.splitlines()[-1] == "  Applying 0004_wait... OK"
    assert stderr.splitlines() == [
        (
            "Error: 0005_rename_category.py was changed after this run read the migration history "
            "(by squashmigrations, a checkout or an edit): nothing of it ran."
        ),
        "Run the command again; it reads the migrations folder afresh.",
    ]
    assert project.sqlite_version() == {"0004_wait"}
    assert _category_names(project) == ["books"]

    project.manage("migrate", "--noinput")
    assert _category_names(project) == ["edited meanwhile"]


def _waits_on_a_folder_lock(pid: int) -> bool:
    """Whether process ``pid`` waits for an flock (Linux lists waiters with '->')."""
    with open("/proc/locks") as locks:
        return any("->" in line and f" {pid} " in line for line in locks)


def test_a_migrate_starting_during_the_squash_sees_the_squashed_history(project):
    """A migrate that reads the folder while a squash moves the files waits for the move,
    then applies the squashed history; it never reads half of each."""
    import shutil

    from sqlmanage.files import folder_lock

    squashed = project.manage("squashmigrations", "0003", "--noinput")
    assert squashed.returncode == 0
    replaced = project.versions / "replaced"
    originals = sorted(p.name for p in replaced.glob("*.py"))
    new_file = project.versions / "0003_squashed_0001_0003.py"
    source = new_file.read_text()
    for name in originals:  # back to before the squash, to stop it halfway through
        (replaced / name).rename(project.versions / name)
    new_file.unlink()
    shutil.rmtree(replaced)

    with folder_lock(project.versions, exclusive=True):  # the squash's own lock on the folder
        replaced.mkdir()
        (project.versions / originals[0]).rename(replaced / originals[0])
        process = subprocess.Popen(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=project.path,
            env=project.environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        while not _waits_on_a_folder_lock(process.pid):
            if process.poll() is not None:
                pytest.fail(
                    "migrate read the folder halfway through the squash:\n"
                    + "".join(process.communicate())
                )
            time.sleep(0.02)
        for name in originals[1:]:
            (project.versions / name).rename(replaced / name)
        new_file.write_text(source)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stdout + stderr
    assert stdout.splitlines()[-1] == "  Applying 0003_squashed_0001_0003... OK"
    assert project.sqlite_version() == {"0003_fill_discount_rate"}
