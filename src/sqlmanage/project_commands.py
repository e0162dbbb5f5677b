"""Commands a project adds itself: ``management/commands/*.py`` beside settings.py, or COMMANDS.

Django's ``find_commands``: commands are listed by file name, their short help read from the
module's docstring with ``ast``, so ``manage.py --help`` imports none of them, nor the
settings module (only the settings' package ``__init__`` when the file cannot be found on
``sys.path`` directly). A project command with a built-in's name replaces the built-in, as in
Django. Only the standard library is imported here.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from sqlmanage.errors import SettingsError, SqlmanageError
from sqlmanage.render.commands import shown_path
from sqlmanage.settings import find_settings_module, search_dirs

COMMANDS_SETTING = "COMMANDS"
COMMANDS_FOLDER = ("management", "commands")


@dataclass(frozen=True)
class ProjectCommand:
    name: str
    module: str
    path: Path

    def short_help(self) -> str:
        """The first line of the module's docstring, read without importing it."""
        try:
            tree = ast.parse(self.path.read_bytes(), filename=str(self.path))
        except (OSError, SyntaxError, ValueError):
            return ""
        doc = ast.get_docstring(tree) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    def load(self):
        """Import the module and return its click command named ``command``."""
        import click

        shown = shown_path(self.path)
        try:
            module = importlib.import_module(self.module)
        except Exception as exc:
            frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
            if isinstance(exc, SyntaxError):
                where = f" (line {exc.lineno})"
            else:
                lines = [
                    f.lineno for f in frames if Path(f.filename).resolve() == self.path.resolve()
                ]
                where = f" (line {lines[-1]})" if lines else ""
            raise SqlmanageError(
                f"Project command '{self.name}' failed to import: {type(exc).__name__}: {exc}, "
                f"in {shown}{where}.",
                hint="Fix that file; run with --traceback to see the whole error.",
            ) from exc
        command = getattr(module, "command", None)
        if not isinstance(command, click.Command):
            raise SqlmanageError(
                f"Project command module {shown} has no click command named 'command'.",
                hint="Define it with @click.command() on a function named command, as in "
                "sqlmanage's own commands.",
            )
        return command


def find_project_commands(settings_module: str | None = None) -> dict[str, ProjectCommand]:
    """The project's commands by name; nothing when no settings module can be found."""
    try:
        settings_name = find_settings_module(settings_module)
    except SettingsError:
        return {}
    _add_search_dirs_to_path()
    settings_file = module_file(settings_name)
    if settings_file is None:
        return {}
    package = settings_name.rpartition(".")[0]
    found: dict[str, ProjectCommand] = {}
    folder = settings_file.parent.joinpath(*COMMANDS_FOLDER)
    if folder.is_dir():
        prefix = ".".join(filter(None, [package, *COMMANDS_FOLDER]))
        for path in sorted(folder.glob("*.py")):
            if not path.name.startswith("_") and path.stem.isidentifier():
                found[path.stem] = ProjectCommand(path.stem, f"{prefix}.{path.stem}", path)
    for dotted in _commands_setting(settings_file, settings_name):
        source = module_file(dotted)
        if source is not None:
            name = dotted.rpartition(".")[2]
            found[name] = ProjectCommand(name, dotted, source)
    return found


def module_file(dotted: str) -> Path | None:
    """The source file of a module, looked up on ``sys.path`` without importing anything.

    Falls back to ``importlib.util.find_spec`` (which imports the parent packages) for a
    module installed in a way a plain path lookup misses.
    """
    parts = dotted.split(".")
    for entry in sys.path:
        base = Path(entry or ".").joinpath(*parts)
        for candidate in (base.with_name(base.name + ".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    try:
        spec = importlib.util.find_spec(dotted)
    except Exception:
        return None
    origin = getattr(spec, "origin", None)
    return Path(origin) if origin and origin.endswith(".py") else None


def _commands_setting(settings_file: Path, settings_name: str) -> list[str]:
    """COMMANDS from the settings: a literal list read from the file, else the imported value."""
    try:
        tree = ast.parse(settings_file.read_bytes(), filename=str(settings_file))
    except (OSError, SyntaxError, ValueError):
        return []  # the command that runs will report the broken settings
    assigned = None  # the last assignment is the value the module ends up with
    for node in tree.body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        if (
            isinstance(node, (ast.Assign, ast.AnnAssign))
            and node.value is not None
            and any(isinstance(t, ast.Name) and t.id == COMMANDS_SETTING for t in targets)
        ):
            assigned = node.value
    if assigned is None:
        return []
    try:
        value = ast.literal_eval(assigned)
    except ValueError:
        value = _imported_setting(settings_name)
    return _names(value, settings_name)


def _imported_setting(settings_name: str):
    from sqlmanage.settings import import_settings

    return getattr(import_settings(settings_name), COMMANDS_SETTING, [])


def _names(value, settings_name: str) -> list[str]:
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) and v.strip() for v in value):
        return [v.strip() for v in value]
    raise SettingsError(
        f"{settings_name}.{COMMANDS_SETTING} must be a list of module names.",
        hint='e.g. COMMANDS = ["project.tools.seed"]; each module defines a click command named command.',
    )


def _add_search_dirs_to_path() -> None:
    """What ``import_settings`` does before importing: the project folder is importable."""
    for directory in reversed(search_dirs()):
        if str(directory) not in sys.path:
            sys.path.insert(0, str(directory))
