"""The root command, lazy command loading, and the one error boundary.

Only the standard library and click are imported at module level: ``manage.py --help`` lists
every command from ``COMMANDS`` without importing any of them (Django's trick), and a
command's heavy imports (SQLAlchemy, Alembic, Rich) happen inside the command.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from sqlmanage.commands.base import STATE
from sqlmanage.errors import SqlmanageError
from sqlmanage.redaction import redact

COMMANDS = {
    "makemigrations": (
        "sqlmanage.commands.makemigrations",
        "Create new migrations from the changes in your models.",
    ),
    "migrate": (
        "sqlmanage.commands.migrate",
        "Apply or unapply migrations to bring the database to a target.",
    ),
    "showmigrations": (
        "sqlmanage.commands.showmigrations",
        "Show every migration and whether it is applied.",
    ),
    "sqlmigrate": ("sqlmanage.commands.sqlmigrate", "Print the SQL of one migration."),
}
HELP = "help"  # Django's 'manage.py help [COMMAND]'



class LazyGroup(click.Group):
    """A group whose commands are imported only when one of them runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name == HELP:
            return help_command
        if name not in COMMANDS:
            return None
        import importlib

        return importlib.import_module(COMMANDS[name][0]).command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        rows.append((HELP, "Show the help of sqlmanage or of one command."))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sqlmanage", message="%(prog)s (sqlmanage) %(version)s")
def cli() -> None:
    """Django's manage.py migration commands for SQLAlchemy projects, built on Alembic.

    \b
    Examples:
      python manage.py makemigrations
      python manage.py migrate
      python manage.py showmigrations
      python manage.py sqlmigrate 0002

    Run 'python manage.py COMMAND --help' for a command's options.
    """


@click.command(HELP)
@click.argument("command_name", metavar="COMMAND", required=False)
@click.pass_context
def help_command(ctx: click.Context, command_name: str | None) -> None:
    """Show the help of sqlmanage or of one COMMAND, as 'manage.py help' does in Django."""
    root = ctx.find_root()
    if command_name is None:
        click.echo(root.get_help())
        return
    command = root.command.get_command(root, command_name)
    if command is None:
        raise click.UsageError(f"Unknown command: '{command_name}'. Type '{root.info_name} help' for usage.")
    with click.Context(command, info_name=command_name, parent=root) as sub:
        click.echo(command.get_help(sub))


def _prog_name(argv0: str) -> str:
    name = os.path.basename(argv0)
    if name == "manage.py":
        return "python manage.py"
    if name == "__main__.py":
        return "python -m sqlmanage"
    return "sqlmanage"


def main(argv: list[str] | None = None) -> int:
    """Run one command and return its exit code; the only place errors become stderr text."""
    args = sys.argv[1:] if argv is None else list(argv)
    STATE.reset()
    STATE.prog_name = _prog_name(sys.argv[0])
    if not args:
        args = ["--help"]  # Django prints its help and exits 0 for a bare 'manage.py'
    _interrupt_on_sigterm()
    try:
        result = cli.main(args=args, prog_name=STATE.prog_name, standalone_mode=False)
    except SqlmanageError as exc:
        _report(exc.message, exc.hint)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Interrupted.", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("\nInterrupted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except Exception as exc:
        _report(
            f"Unexpected error: {type(exc).__name__}: {exc}",
            "This may be a bug in sqlmanage; run with --traceback to see where it happened.",
        )
        return 1
    return result if isinstance(result, int) else 0


def _interrupt_on_sigterm() -> None:
    """SIGTERM (a deploy tool stopping the job) unwinds like Ctrl-C: rollback, lock released."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (call from a library): leave signals alone
        pass


def _report(message: str, hint: str | None) -> None:
    """The one place errors reach stderr; hints name the program the user actually ran."""
    if hint and STATE.prog_name != "python manage.py":
        hint = hint.replace("python manage.py", STATE.prog_name)
    if STATE.traceback:
        click.echo(redact(traceback.format_exc()), err=True)
    style = {} if STATE.plain_errors() else {"fg": "red", "bold": True}
    click.echo(click.style(redact(f"Error: {message}"), **style), err=True)
    if hint:
        click.echo(redact(hint), err=True)


def execute_from_command_line(argv: list[str] | None = None) -> None:
    """Django's entry point for manage.py: ``argv`` includes the program name."""
    argv = sys.argv if argv is None else argv
    sys.exit(main(argv[1:]))
