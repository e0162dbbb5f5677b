"""Shell completion: migration names for arguments, and scripts that work for ``python manage.py``.

Click completes commands and options by itself; these callbacks add the migration names of
the project (read from the file names in ``versions/``, never by importing Alembic or the
migrations, so a tab press stays fast) and never raise: on any error they complete nothing.

Click's own bash script registers one program name and runs it as ``$1``, which cannot serve
``python manage.py`` (the program is ``python``). The script here registers ``sqlmanage``,
``manage.py`` (``./manage.py`` with its shebang) and, like Django's django_bash_completion,
``python``/``python3``, completing only when the second word is a ``manage.py`` and falling
back to file names otherwise. Every entry point reads the same variable, ``_SQLMANAGE_COMPLETE``.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import click
from click.shell_completion import (
    BashComplete,
    CompletionItem,
    FishComplete,
    ZshComplete,
    split_arg_string,
)

TARGET_WORDS = {"zero": "Unapply every migration.", "head": "Apply every migration."}
DOCSTRING_FIRST_LINE = re.compile(r'^\s*(?:[rRuU]?)("""|\'\'\')\s*(.*?)\s*$', re.MULTILINE)

BASH_SOURCE = """\
_sqlmanage_completion() {
    local IFS=$'\\n'
    local response
    local -a program=("$1")
    if [[ ${COMP_WORDS[0]##*/} == python* ]]; then
        if [[ ${COMP_CWORD} -lt 2 || ${COMP_WORDS[1]##*/} != manage.py ]]; then
            compopt -o default 2>/dev/null
            COMPREPLY=()
            return 0
        fi
        program=("${COMP_WORDS[0]}" "${COMP_WORDS[1]}")
    fi

    response=$(env COMP_WORDS="${COMP_WORDS[*]}" COMP_CWORD=$COMP_CWORD \\
%(complete_var)s=bash_complete "${program[@]}" 2>/dev/null)

    for completion in $response; do
        IFS=',' read type value <<< "$completion"

        if [[ $type == 'dir' ]]; then
            COMPREPLY=()
            compopt -o dirnames
        elif [[ $type == 'file' ]]; then
            COMPREPLY=()
            compopt -o default
        elif [[ $type == 'plain' ]]; then
            COMPREPLY+=($value)
        fi
    done

    return 0
}

complete -o nosort -F _sqlmanage_completion sqlmanage manage.py
complete -o nosort -o default -F _sqlmanage_completion python python3
"""


def complete_migrations(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """The migration names that start with ``incomplete`` (or whose number it is)."""
    return _safely(lambda: _migration_items(ctx, incomplete))


def complete_migration_targets(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """``migrate``'s TARGET: the migration names, plus ``zero`` and ``head``."""

    def items():
        words = [
            CompletionItem(w, help=h) for w, h in TARGET_WORDS.items() if w.startswith(incomplete)
        ]
        return _migration_items(ctx, incomplete) + words

    return _safely(items)


def _safely(produce) -> list[CompletionItem]:
    """Run a completion; a settings module that prints or raises must not reach the shell."""
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return produce()
    except (Exception, SystemExit):
        return []


def _migration_items(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    from sqlmanage.settings import load_settings

    settings = load_settings(ctx.params.get("settings"))
    versions = settings.database(ctx.params.get("database")).migrations / "versions"
    items = []
    for path in sorted(versions.glob("*.py")):
        name = path.stem
        if name.startswith("_"):
            continue
        number = name.partition("_")[0]
        by_number = incomplete.isdigit() and number.isdigit() and int(number) == int(incomplete)
        if name.startswith(incomplete) or by_number:
            items.append(CompletionItem(name, help=_message(path)))
    return items


def _message(path: Path) -> str | None:
    """The first line of a migration's docstring (Alembic writes the message there)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            head = handle.read(400)
    except OSError:
        return None
    match = DOCSTRING_FIRST_LINE.search(head)
    if match is None:
        return None
    return match.group(2).rstrip("\"'").strip() or None


class SqlmanageBashComplete(BashComplete):
    """Bash completion for ``sqlmanage``, ``./manage.py`` and ``python manage.py``."""

    def source(self) -> str:
        self._check_version()
        return BASH_SOURCE % {"complete_var": self.complete_var}

    def get_completion_args(self) -> tuple[list[str], str]:
        words = split_arg_string(os.environ["COMP_WORDS"])
        current = int(os.environ["COMP_CWORD"])
        if (
            len(words) > 1
            and Path(words[0]).name.startswith("python")
            and words[1].endswith("manage.py")
        ):
            words, current = (
                words[1:],
                current - 1,
            )  # "python manage.py ...": the program is manage.py
        incomplete = words[current] if current < len(words) else ""
        return words[1:current], incomplete


class _ConsoleScriptNamed:
    """zsh and fish scripts register one program: the ``sqlmanage`` console script."""

    def source_vars(self):
        return {
            **super().source_vars(),  # type: ignore[misc]  # a mixin for ShellComplete classes
            "prog_name": "sqlmanage",
            "complete_func": "_sqlmanage_completion",
        }


class SqlmanageZshComplete(_ConsoleScriptNamed, ZshComplete):
    pass


class SqlmanageFishComplete(_ConsoleScriptNamed, FishComplete):
    pass


def install_shell_completion() -> None:
    """Use these scripts for ``_SQLMANAGE_COMPLETE=bash_source`` (zsh_source, fish_source)."""
    from click.shell_completion import add_completion_class

    add_completion_class(SqlmanageBashComplete, "bash")
    add_completion_class(SqlmanageZshComplete, "zsh")
    add_completion_class(SqlmanageFishComplete, "fish")
