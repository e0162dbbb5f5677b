"""``shell``: a Python REPL with the project's models, an engine and a session, like Django's.

As in Django, ``-c`` runs code and exits, and a script piped on stdin runs instead of the
REPL; IPython is used when it is installed, the standard ``code`` REPL otherwise.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from sqlmanage.commands.base import common_options
from sqlmanage.errors import SqlmanageError
from sqlmanage.redaction import redact

INTERFACES = ["ipython", "python"]


@click.command("shell")
@click.option(
    "-i",
    "--interface",
    type=click.Choice(INTERFACES),
    help="The interactive interpreter to use. Default: IPython when installed, else Python.",
)
@click.option(
    "-c", "--command", "code", metavar="CODE", help="Run CODE with the models imported, then exit."
)
@click.option(
    "--no-startup",
    is_flag=True,
    help="With plain Python, ignore PYTHONSTARTUP and ~/.pythonrc.py.",
)
@click.option("--no-imports", is_flag=True, help="Import no models and connect no session.")
@common_options
def command(runtime, interface, code, no_startup, no_imports):
    """Run a Python shell with every model class, engine, session and metadata ready.

    session is a SQLAlchemy Session on the configured database (on a synchronous driver
    when the URL names an async one); select, func and sa (sqlalchemy) are imported too.
    Code given with -c, or piped on stdin, runs instead of the interactive shell.

    \b
    Examples:
      python manage.py shell
      python manage.py shell -v 2
      python manage.py shell -c 'print(session.scalar(select(func.count()).select_from(Product)))'
      python manage.py shell < report.py
    """
    shell = None if no_imports else _namespace(runtime)
    namespace = {} if shell is None else shell.namespace
    try:
        if code is not None:
            return _run_code(code, "<command>", namespace)
        if _stdin_has_script():
            return _run_code(sys.stdin.read(), "<stdin>", namespace)
        for name in [interface] if interface else INTERFACES:
            try:
                start = _load_interface(name)
            except ImportError:
                continue
            return start(namespace, no_startup)
        raise SqlmanageError(
            f"Couldn't import {name} interface.",
            hint="Install IPython (pip install ipython) or use --interface python.",
        )
    finally:
        if shell is not None:
            shell.close()


def _namespace(runtime):
    """Build the namespace and report it the way Django 5.2 does (-v 1 a count, -v 2 a list)."""
    from sqlmanage.actions.shell import import_lines, shell_namespace

    shell = shell_namespace(runtime.project)
    if runtime.verbosity >= 1:
        from sqlmanage.render.commands import shell_banner

        imports = import_lines(shell) if runtime.verbosity >= 2 else []
        runtime.lines(shell_banner(len(shell.namespace), imports, shell.notes, runtime.verbosity))
    return shell


def _run_code(source: str, filename: str, namespace: dict) -> int:
    """Run code as 'python -c' would: a failure prints its traceback and exits with status 1."""
    scope = {"__name__": "__main__", **namespace}
    try:
        exec(compile(source, filename, "exec"), scope)
    except Exception as exc:
        lines = traceback.format_exception(
            type(exc), exc, exc.__traceback__.tb_next if exc.__traceback__ else None
        )
        sys.stderr.write(redact("".join(lines)))
        sys.stderr.flush()
        return 1
    return 0


def _stdin_has_script() -> bool:
    """Django's test: stdin is not a terminal and has something to read right now."""
    if sys.platform == "win32" or sys.stdin is None or sys.stdin.isatty():
        return False
    import select

    try:
        return bool(select.select([sys.stdin], [], [], 0)[0])
    except (OSError, ValueError):
        return False


def _load_interface(name: str):
    """The function that starts the REPL; ImportError when its package is not installed."""
    if name == "python":
        return _python
    from IPython import start_ipython

    def ipython(namespace: dict, no_startup: bool) -> int:
        start_ipython(argv=[], user_ns=namespace)
        return 0

    return ipython


def _python(namespace: dict, no_startup: bool) -> int:
    """The standard REPL, set up as Python's own: startup files, history, tab completion."""
    import code

    if not no_startup:
        for pythonrc in dict.fromkeys(
            [os.environ.get("PYTHONSTARTUP"), os.path.expanduser("~/.pythonrc.py")]
        ):
            if not pythonrc or not os.path.isfile(pythonrc):
                continue
            with open(pythonrc) as handle:
                startup_code = handle.read()
            try:
                exec(compile(startup_code, pythonrc, "exec"), namespace)
            except Exception:
                traceback.print_exc()
    hook = getattr(sys, "__interactivehook__", None)
    if hook is not None:
        try:
            hook()
        except Exception:
            print("Failed calling sys.__interactivehook__")
            traceback.print_exc()
    try:
        import readline
        import rlcompleter

        readline.set_completer(rlcompleter.Completer(namespace).complete)
    except ImportError:
        pass
    code.interact(local=namespace)
    return 0
