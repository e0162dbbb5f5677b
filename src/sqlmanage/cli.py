"""The root command, lazy command loading, the one error boundary, and ``call_command``.

Only the standard library and click are imported at module level: ``manage.py --help`` lists
every command from ``COMMANDS`` (and the project's own commands, by file name) without
importing any of them (Django's trick), and a command's heavy imports (SQLAlchemy, Alembic,
Rich) happen inside the command. ``main`` turns errors into stderr text and exit codes;
``call_command`` runs the same commands from Python and lets the errors through.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from sqlmanage.commands.base import STATE
from sqlmanage.errors import CommandUsageError, SqlmanageError, UnknownCommand
from sqlmanage.redaction import redact

COMMANDS = {
    "check": ("sqlmanage.commands.check", "Check settings, models, migrations and the database."),
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
    "startproject": ("sqlmanage.commands.startproject", "Create a new project's skeleton."),
    "adopt": ("sqlmanage.commands.adopt", "Take over an existing Alembic project."),
    "shell": ("sqlmanage.commands.shell", "Open a Python shell with a session and every model."),
    "dbshell": ("sqlmanage.commands.dbshell", "Open the database's own command-line client."),
    "squashmigrations": (
        "sqlmanage.commands.squashmigrations",
        "Squash a range of migrations into one.",
    ),
}
HELP = "help"  # Django's 'manage.py help [COMMAND]'


SETTINGS_META = "sqlmanage.settings"
COMPLETE_VAR = "_SQLMANAGE_COMPLETE"  # for manage.py, python -m sqlmanage and sqlmanage alike


class LazyGroup(click.Group):
    """A group whose commands are imported only when one of them runs.

    Besides the built-ins of ``COMMANDS``, the project's own commands (``management/commands``
    beside settings.py, or the COMMANDS setting) are listed from their file names; a project
    command with a built-in's name replaces it, as in Django.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # Which project's commands exist depends on --settings, given after the command name
        # (Django pre-parses it the same way); --traceback must hold for import errors too.
        ctx.meta[SETTINGS_META] = _option_value(args, "--settings")
        pythonpath = _option_value(args, "--pythonpath")
        if pythonpath:
            from sqlmanage.commands.base import add_python_path

            add_python_path(pythonpath)
        if "--traceback" in args or _option_value(args, "--verbosity", "-v") == "3":
            STATE.traceback = True
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        """Django's answer to a mistyped command: a suggestion and exit status 1."""
        name = args[0] if args else ""
        if (
            name
            and not name.startswith("-")
            and not ctx.resilient_parsing
            and self.get_command(ctx, name) is None
        ):
            import difflib

            close = difflib.get_close_matches(name, [*self.list_commands(ctx), HELP])
            raise UnknownCommand(
                f"Unknown command: '{name}'." + (f" Did you mean {close[0]}?" if close else ""),
                hint=f"Type '{STATE.prog_name} help' for usage.",
            )
        return super().resolve_command(ctx, args)

    def project_commands(self, ctx: click.Context, strict: bool = False) -> dict:
        from sqlmanage.project_commands import find_project_commands

        try:
            return find_project_commands(ctx.meta.get(SETTINGS_META))
        except SqlmanageError:
            if strict:
                raise
            return {}  # help and completion still list the built-ins

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.project_commands(ctx)))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name == HELP:
            return help_command
        try:
            project_command = self.project_commands(ctx, strict=True).get(name)
            if project_command is not None:
                return project_command.load()
        except SqlmanageError:
            if ctx.resilient_parsing:  # shell completion: complete nothing rather than fail
                return None
            raise
        if name not in COMMANDS:
            return None
        import importlib

        return importlib.import_module(COMMANDS[name][0]).command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        project = self.project_commands(ctx)
        rows = [(name, COMMANDS[name][1]) for name in sorted(COMMANDS) if name not in project]
        rows.append((HELP, "Show the help of sqlmanage or of one command."))
        with formatter.section("Commands"):
            formatter.write_dl(rows)
        if project:
            with formatter.section("Project commands"):
                formatter.write_dl(
                    [
                        (
                            name,
                            command.short_help()
                            + (" (replaces the built-in)" if name in COMMANDS else ""),
                        )
                        for name, command in sorted(project.items())
                    ]
                )

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list:
        """Command names from the maps (importing no command), then the group's options."""
        from click.shell_completion import CompletionItem

        project = self.project_commands(ctx)
        helps = {name: short for name, (_, short) in COMMANDS.items()}
        helps[HELP] = "Show the help of sqlmanage or of one command."
        items = [
            CompletionItem(
                name, help=project[name].short_help() if name in project else helps[name]
            )
            for name in sorted(set(helps) | set(project))
            if name.startswith(incomplete)
        ]
        return items + click.Command.shell_complete(self, ctx, incomplete)


def _option_value(args: list[str], *names: str) -> str | None:
    """The value of an option in raw arguments (``--settings x`` or ``--settings=x``)."""
    for index, arg in enumerate(args):
        if arg == "--":
            break
        for name in names:
            if arg == name and index + 1 < len(args):
                return args[index + 1]
            if arg.startswith(name + "=") or (
                len(name) == 2 and arg.startswith(name) and len(arg) > 2
            ):
                return arg[len(name) :].lstrip("=")
    return None


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
    command = root.command.resolve_command(root, [command_name])[1]  # type: ignore[attr-defined]  # the root is a group
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
    if os.environ.get(COMPLETE_VAR):
        from sqlmanage.commands.completion import install_shell_completion

        install_shell_completion()
    _interrupt_on_sigterm()
    from sqlmanage import discovery

    discovery.FREEZE_AFTER_IMPORT = True  # this process ends with the command
    try:
        result = cli.main(
            args=args, prog_name=STATE.prog_name, complete_var=COMPLETE_VAR, standalone_mode=False
        )
    except SqlmanageError as exc:
        _report(exc.message, exc.hint, getattr(exc, "plain", False))
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
    finally:
        discovery.FREEZE_AFTER_IMPORT = False  # main() called from Python returns to its caller
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


def _report(message: str, hint: str | None, plain: bool = False) -> None:
    """The one place errors reach stderr; hints name the program the user actually ran."""
    if hint and STATE.prog_name != "python manage.py":
        hint = hint.replace("python manage.py", STATE.prog_name)
    if STATE.traceback:
        click.echo(redact(traceback.format_exc()), err=True)
    text = redact(message if plain else f"Error: {message}")
    click.echo(text if STATE.plain_errors() else click.style(text, fg="red", bold=True), err=True)
    if hint:
        click.echo(redact(hint), err=True)


def execute_from_command_line(argv: list[str] | None = None) -> None:
    """Django's entry point for manage.py: ``argv`` includes the program name."""
    argv = sys.argv if argv is None else argv
    sys.exit(main(argv[1:]))


def call_command(command_name, *args, stdout=None, stderr=None, **options):
    """Run a command from Python, as Django's call_command does, and return what it returns.

    ``command_name`` is a name, or a click command itself (Django takes a command object
    too): ``call_command(sqlmanage.commands.migrate.command)`` runs the built-in even where
    a project command of that name replaces it.

    ``args`` are command-line words (``"0003"``, ``"--fake"``); ``options`` use the command
    function's parameter names (``fake=True``, ``interactive=False``, ``check_unapplied=True``)
    or the long option's name (``check=True``, ``noinput=True``, ``format="json"``); Django's
    names stand for the words (``app_label="project", migration_name="0002"``). Errors are
    raised, never turned into an exit: sqlmanage's own errors as they are, click's usage errors
    as ``CommandUsageError``, and unknown option names as ``TypeError`` (as Django does). The
    command's output goes to ``stdout``/``stderr`` when given (for this thread only). No signal
    handler is installed, and the process-wide state is restored afterwards.
    """
    from sqlmanage.commands.base import OUTPUT
    from sqlmanage.errors import Interrupted

    words: list[str] = []
    for arg in args:
        words.extend(map(str, arg) if isinstance(arg, (list, tuple)) else [str(arg)])
    saved = dict(vars(STATE))
    STATE.reset()
    outer_stdout, outer_stderr = OUTPUT.get()  # a call inside a call writes where its caller does
    streams = OUTPUT.set(
        (outer_stdout if stdout is None else stdout, outer_stderr if stderr is None else stderr)
    )
    try:
        with click.Context(cli, info_name=STATE.prog_name) as root:
            root.meta[SETTINGS_META] = options.get("settings")
            command: click.Command | None
            if isinstance(command_name, click.Command):
                command, command_name = command_name, command_name.name
            else:
                command = cli.get_command(root, command_name)
            if command is None:
                raise SqlmanageError(
                    f"Unknown command: '{command_name}'.",
                    hint=f"Type '{STATE.prog_name} help' for the list of commands.",
                )
            words = _keyword_words(command, options) + words
            defaults = _options_by_parameter(command, command_name, options)
            with command.make_context(
                command_name, words, parent=root, default_map=defaults
            ) as ctx:
                return command.invoke(ctx)
    except click.exceptions.Exit as exc:  # --help or --version among the arguments
        return exc.exit_code or None
    except click.exceptions.Abort as exc:
        raise Interrupted("Interrupted.") from exc
    except click.UsageError as exc:
        raise CommandUsageError(f"{command_name}: {exc.format_message()}") from exc
    except click.ClickException as exc:
        raise SqlmanageError(exc.format_message()) from exc
    finally:
        OUTPUT.reset(streams)
        vars(STATE).update(saved)


def _keyword_words(command: click.Command, options: dict) -> list[str]:
    """Django's keyword forms of a command's words: ``call_command("migrate", app_label="project",
    migration_name="0002")``. Each command names its word slots in ``word_keywords``."""
    words: list[str] = []
    for names in getattr(command, "word_keywords", ()):
        given = [options.pop(name) for name in names if name in options]
        words.extend(str(value) for value in given[:1] if value is not None)
    return words


def _options_by_parameter(command: click.Command, command_name: str, options: dict) -> dict:
    """call_command's keyword options as click parameter values, for the context's default_map."""
    by_name = {param.name: param for param in command.params if param.name}
    aliases = {}
    for param in command.params:
        if isinstance(param, click.Option):
            for opt in [*param.opts, *param.secondary_opts]:
                key = opt.lstrip("-").replace("-", "_")
                if key not in by_name and opt.startswith("--"):
                    aliases[key] = (param, opt in param.secondary_opts)
    values, unknown = {}, []
    for key, value in options.items():
        if key in by_name:
            values[key] = value
        elif key in aliases:
            param, secondary = aliases[key]
            values[param.name] = _flag_alias_value(param, secondary, value)
        else:
            unknown.append(key)
    if unknown:
        raise TypeError(
            f"Unknown option(s) for {command_name} command: {', '.join(sorted(unknown))}. "
            f"Valid options are: {', '.join(sorted(set(by_name) | set(aliases)))}."
        )
    return values


def _flag_alias_value(param: click.Option, secondary: bool, value):
    """``noinput=True`` means interactive=False: a flag named by its option takes its flag value."""
    if not param.is_flag or not isinstance(value, bool):
        return value
    on = value != secondary
    flag_value = getattr(param, "flag_activation_value", param.flag_value)  # click 8.3+ / older
    if isinstance(flag_value, bool):
        return flag_value if on else not flag_value
    unset = getattr(click.core, "UNSET", None)
    return flag_value if on else (None if param.default is unset else param.default)
