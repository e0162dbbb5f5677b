"""Files are written whole or not at all, and a filesystem failure is a clean error.

A full disk is made real with RLIMIT_FSIZE on the command's process (works as root, where a
read-only folder would not stop anything): a write past the limit fails with EFBIG, exactly
where a full disk fails with ENOSPC, after part of the file went out.
"""

from __future__ import annotations

import resource
import signal
import subprocess
import sys

import pytest

from conftest import add_discount_code
from sqlmanage.errors import FileWriteError
from sqlmanage.files import write_atomic

LIMIT = 300  # bytes: less than any migration file, more than nothing


def _with_small_disk():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def run_on_small_disk(project, *args):
    return subprocess.run(
        [sys.executable, "-B", "manage.py", *args],
        cwd=project.path,
        env=project.environment(),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_with_small_disk,
    )


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_makemigrations_on_a_full_disk_writes_nothing_and_says_so(project):
    project.manage("migrate")
    add_discount_code(project)
    before = project.migration_files()
    result = run_on_small_disk(project, "makemigrations", "-n", "discount_code")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Error: Cannot write" in result.stderr
    assert "0004_discount_code.py" in result.stderr
    assert "File too large" in result.stderr
    assert "may be a bug" not in result.stderr and "Traceback" not in result.stderr
    assert project.migration_files() == before, "a partial migration file was left"
    assert _leftovers(project.versions) == []
    again = project.manage("makemigrations", "-n", "discount_code")
    assert "0004_discount_code.py" in again.stdout
    assert project.manage("migrate").returncode == 0


def test_squash_on_a_full_disk_moves_nothing(project):
    before = project.migration_files()
    result = run_on_small_disk(project, "squashmigrations", "0003", "--noinput")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Error: Cannot write" in result.stderr
    assert "may be a bug" not in result.stderr and "Traceback" not in result.stderr
    assert project.migration_files() == before
    assert not (project.versions / "replaced").exists() or not any(
        (project.versions / "replaced").iterdir()
    )
    assert _leftovers(project.versions) == []
    assert project.manage("migrate").returncode == 0


def test_write_atomic_never_replaces_an_existing_file_when_exclusive(tmp_path):
    target = tmp_path / "0004_x.py"
    target.write_text("kept")
    with pytest.raises(FileWriteError, match="already exists"):
        write_atomic(target, "new", exclusive=True)
    assert target.read_text() == "kept"
    write_atomic(target, "replaced")
    assert target.read_text() == "replaced"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0004_x.py"]


def test_a_migrations_folder_that_is_not_a_folder_is_a_clean_error(project):
    import shutil

    shutil.rmtree(project.versions)
    project.versions.write_text("not a folder\n")
    for command in ("showmigrations", "migrate"):
        result = project.run(command)
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"Error: Cannot read {project.versions}: Not a directory." in result.stderr
        assert "may be a bug" not in result.stderr and "Fix that file" not in result.stderr
        assert "Traceback" not in result.stderr
