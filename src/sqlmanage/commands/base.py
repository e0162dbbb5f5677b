"""What every command shares: the common options, the Runtime they build, styled output.

Django's ``BaseCommand`` in click form. Styles are semantic roles applied only when colour
is on (a terminal, no ``--no-color``, no ``NO_COLOR``); warnings and errors pass through
``redact`` so that no password reaches stderr.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import click

from sqlmanage.redaction import redact

OFF_TERMINAL_WIDTH = 120
RELATIVE_STEP = re.compile(r"^-\d+$")  # migrate -1: a word, not an option

STYLES: dict[str, dict[str, Any]] = {
    "heading": {"fg": "cyan", "bold": True},
    "label": {"bold": True},
    "success": {"fg": "green", "bold": True},
    "warning": {"fg": "yellow"},
    "error": {"fg": "red", "bold": True},
    "notice": {"fg": "red"},
}


class _State:
    """Facts the error boundary needs after the command's context is gone."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.traceback = False
        self.no_color = False
        self.force_color = False
        self.prog_name = "python manage.py"

    def plain_errors(self) -> bool:
        if self.force_color:
            return False
        return self.no_color or "NO_COLOR" in os.environ or not _isatty(stderr())


STATE = _State()

# The streams call_command(stdout=..., stderr=...) gave, for this thread or task only; None
# means sys.stdout / sys.stderr as they are when written to.
OUTPUT: ContextVar[tuple] = ContextVar("sqlmanage_output", default=(None, None))


def stdout():
    return OUTPUT.get()[0] or sys.stdout


def stderr():
    return OUTPUT.get()[1] or sys.stderr


def _isatty(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@dataclass
class Runtime:
    """The parsed common options, and a lazily loaded project."""

    verbosity: int
    settings: str | None
    database: str | None
    no_color: bool
    interactive: bool
    force_color: bool = False

    @functools.cached_property
    def project(self):
        from sqlmanage.project import Project

        return Project.load(self.settings, self.database)

    @property
    def is_terminal(self) -> bool:
        return _isatty(stdout())

    def can_prompt(self, on_stderr: bool = False) -> bool:
        """Prompts only when input is allowed and a person is at both ends (never in CI)."""
        answer_stream = stderr() if on_stderr else stdout()
        return self.interactive and sys.stdin.isatty() and _isatty(answer_stream)

    @property
    def color(self) -> bool:
        if self.force_color:
            return True
        return not self.no_color and "NO_COLOR" not in os.environ and self.is_terminal

    def out(self, text: str = "", style: str | None = None, nl: bool = True) -> None:
        """Write a result line to stdout (URLs in results are masked where they are made).

        Results are not passed through ``redact``: masking a password such as ``postgres``
        wherever it appears would corrupt SQL and JSON.
        """
        if style and self.color:
            text = click.style(text, **STYLES[style])
        click.echo(text, file=OUTPUT.get()[0], nl=nl, color=self.color)

    def lines(self, lines, err: bool = False) -> None:
        """Write a renderer's ``(text, style)`` lines to stdout (or stderr)."""
        for text, style in lines:
            (self.err if err else self.out)(text, style)

    def err(self, text: str, style: str | None = None) -> None:
        """Write a warning or notice to stderr."""
        text = redact(text)
        if style and not STATE.plain_errors():
            text = click.style(text, **STYLES[style])
        click.echo(text, file=OUTPUT.get()[1], err=True)

    def rich_console(self):
        """A Rich console on stdout, coloured only when ``color`` says so."""
        from rich.console import Console

        width = None if self.is_terminal or "COLUMNS" in os.environ else OFF_TERMINAL_WIDTH
        return Console(
            file=stdout(),
            width=width,
            force_terminal=True if self.force_color else None,
            no_color=not self.color,
            color_system="auto" if self.color else None,
            highlight=False,
            emoji=False,
        )


def common_options(func: Callable) -> Callable:
    """Add Django's common options; the command receives a Runtime as its first argument."""

    @click.option(
        "-v",
        "--verbosity",
        type=click.IntRange(0, 3),
        default=1,
        show_default=True,
        help="Verbosity level; 0=minimal output, 1=normal output, 2=verbose output, "
        "3=very verbose output (with tracebacks).",
    )
    @click.option(
        "--settings",
        metavar="MODULE",
        help="The settings module, e.g. project.settings. Beats SQLMANAGE_SETTINGS_MODULE.",
    )
    @click.option(
        "--pythonpath",
        metavar="DIR",
        help="A directory to add to the Python path, e.g. /home/projects/shop.",
    )
    @click.option(
        "--database",
        metavar="ALIAS",
        help="The database alias from DATABASES to work on. Defaults to 'default'.",
    )
    @click.option("--no-color", is_flag=True, help="Don't colorize the command output.")
    @click.option("--force-color", is_flag=True, help="Colorize the output even off a terminal.")
    @click.option("--traceback", is_flag=True, help="Show the full traceback of an error.")
    @click.option(
        "--skip-checks",
        is_flag=True,
        help="Accepted as in Django; sqlmanage runs no checks before a command "
        "('check' runs them).",
    )
    @functools.wraps(func)
    def wrapper(
        verbosity,
        settings,
        pythonpath,
        database,
        no_color,
        force_color,
        traceback,
        skip_checks,
        **kwargs,
    ):
        if no_color and force_color:
            raise click.UsageError(
                "The --no-color and --force-color options can't be used together."
            )
        if pythonpath:
            add_python_path(pythonpath)
        STATE.traceback = traceback or verbosity >= 3
        STATE.no_color = no_color
        STATE.force_color = force_color
        runtime = Runtime(
            verbosity=verbosity,
            settings=settings,
            database=database,
            no_color=no_color,
            interactive=kwargs.pop("interactive", True),
            force_color=force_color,
        )
        return func(runtime, **kwargs)

    return wrapper


def add_python_path(directory: str) -> None:
    """Django's --pythonpath: the directory goes first on sys.path (once)."""
    path = os.path.abspath(directory)
    if path not in sys.path:
        sys.path.insert(0, path)


noinput_option = click.option(
    "--noinput",
    "--no-input",
    "interactive",
    flag_value=False,
    default=True,
    help="Never prompt for input (the default off a terminal).",
)


def no_such_option(word: str) -> click.NoSuchOption:
    """click's own error for an option the command lacks, with its "Did you mean" suggestion.

    For commands that let words starting with '-' through as arguments (``migrate -1``).
    """
    ctx = click.get_current_context()
    known = [
        opt
        for param in ctx.command.get_params(ctx)
        for opt in getattr(param, "opts", ())
        if opt.startswith("-")
    ]
    return click.NoSuchOption(word.partition("=")[0], possibilities=known, ctx=ctx)


def migration_words(words, command_name: str, most: int, metavar: str):
    """Words that are neither options nor too many: the ``[APP_LABEL] MIGRATION`` of a command."""
    for word in words:
        if word.startswith("-") and not RELATIVE_STEP.match(word):
            raise no_such_option(word)
        if not word.strip():
            raise click.BadParameter("must not be empty.", param_hint=metavar)
    if len(words) > most + 1:
        extra = " ".join(words[most + 1 :])
        raise click.UsageError(
            f"Got unexpected extra argument(s) ({extra}); {command_name} takes {metavar}."
        )
    return list(words)
