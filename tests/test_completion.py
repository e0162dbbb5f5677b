"""Shell completion through the real mechanisms: click's bash protocol, and bash itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MIGRATIONS = ["0001_initial", "0002_add_products_discount_rate", "0003_fill_discount_rate"]


def complete(project, line: str, program=None, env=None) -> list[str]:
    """What ``line`` + TAB completes to, asked the way click's bash script asks."""
    words = line.split()
    current = len(words) if line.endswith(" ") else len(words) - 1
    environment = {
        "COMP_WORDS": line,
        "COMP_CWORD": str(current),
        "_SQLMANAGE_COMPLETE": "bash_complete",
    }
    result = project.run(
        program=program or [sys.executable, "manage.py"], env={**environment, **(env or {})}
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return [entry.partition(",")[2] for entry in result.lines if entry]


def test_commands_options_and_migration_names(project):
    commands_dir = project.path / "project" / "management" / "commands"
    commands_dir.mkdir(parents=True)
    (commands_dir / "seed.py").write_text(
        '"""Seed."""\nraise RuntimeError("never imported to complete")\n'
    )

    assert complete(project, "python manage.py mig") == ["migrate"]
    assert complete(project, "python manage.py se") == ["seed"]
    assert "--fake" in complete(project, "python manage.py migrate --f")
    assert complete(project, "python manage.py migrate 00") == MIGRATIONS
    assert complete(project, "python manage.py migrate ") == MIGRATIONS + ["zero", "head"]
    assert complete(project, "python manage.py migrate ze") == ["zero"]
    assert complete(project, "python manage.py sqlmigrate 2") == ["0002_add_products_discount_rate"]
    assert complete(project, "python manage.py sqlmigrate --backwards 0003_") == [
        "0003_fill_discount_rate"
    ]
    assert complete(project, "./manage.py check --format ") == ["table", "plain", "json"]
    assert complete(project, "sqlmanage showm", program=[sys.executable, "-m", "sqlmanage"]) == [
        "showmigrations"
    ]


def test_broken_settings_complete_nothing_and_never_fail(project):
    (project.path / "project" / "settings.py").write_text("raise RuntimeError('broken settings')\n")
    assert complete(project, "python manage.py migrate 00") == []
    assert complete(project, "python manage.py sqlm") == ["sqlmigrate"]
    noisy = "print('noise'); import sys; print('more noise', file=sys.stderr)\n"
    (project.path / "project" / "settings.py").write_text(noisy)
    assert complete(project, "python manage.py sqlmigrate 1") == ["0001_initial"]


def bash_completes(project, *lines: tuple[str, ...]) -> list[list[str]]:
    """Source the script in a real bash and call its completion function for each line."""
    script = ['eval "$(_SQLMANAGE_COMPLETE=bash_source python manage.py)"']
    for words in lines:
        script += [
            "COMPREPLY=()",
            f"COMP_WORDS=({' '.join(words)}); COMP_CWORD={len(words) - 1}",
            f"_sqlmanage_completion {words[0]} 2>/dev/null",
            "printf '%s\\n' \"${COMPREPLY[@]}\" '--'",
        ]
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", "\n".join(script)],
        cwd=project.path,
        env=project.environment(env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    replies = result.stdout.split("--\n")
    return [[r for r in reply.splitlines() if r] for reply in replies[:-1]]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_the_bash_script_serves_python_manage_py_manage_py_and_sqlmanage(project):
    python_manage, dot_manage, other_script, registered = bash_completes(
        project,
        ("python", "manage.py", "migrate", "00"),
        ("./manage.py", "s"),
        ("python", "other.py", "x"),
        ("python", "manage.py", "showmigrations", "--form"),
    )
    assert python_manage == MIGRATIONS
    assert {"showmigrations", "sqlmigrate"} <= set(dot_manage) and "migrate" not in dot_manage
    assert other_script == []  # python's own completion (file names) is left to bash
    assert registered == ["--format"]

    source = project.run(env={"_SQLMANAGE_COMPLETE": "bash_source"}).stdout
    assert "complete -o nosort -F _sqlmanage_completion sqlmanage manage.py\n" in source
    assert "complete -o nosort -o default -F _sqlmanage_completion python python3\n" in source


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_tab_in_an_interactive_bash(project):
    import pexpect  # a test dependency: missing, the test fails rather than skips

    env = project.environment(
        {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "PS1": "$ ",
            "INPUTRC": "/dev/null",
            "TERM": "dumb",
        }
    )
    shell = pexpect.spawn(
        "bash",
        ["--norc", "--noprofile", "-i"],
        cwd=str(project.path),
        env=env,
        encoding="utf-8",
        timeout=30,
        dimensions=(24, 200),
    )
    try:
        shell.sendline('eval "$(_SQLMANAGE_COMPLETE=bash_source python manage.py)"; echo READY')
        shell.expect("READY\r\n")
        shell.send("python manage.py sqlmigr\t")
        shell.expect("sqlmigrate ")
        shell.send("3\t")
        shell.expect("0003_fill_discount_rate")
    finally:
        shell.sendcontrol("c")
        shell.close(force=True)
