"""Reading a project's migrations folder into its History, and making the ScriptDirectory
that runs the migrations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlmanage.engine import alembic_internals
from sqlmanage.engine.graph import History, history_from_headers
from sqlmanage.engine.migration import REPLACED_FOLDER
from sqlmanage.engine.revision_errors import translate_revision_errors
from sqlmanage.errors import MigrationFileError, SettingsError


def load_history(
    migrations_dir: Path, ini_file: Path, project_label: str, make_config: Callable[[], object]
) -> History:
    """The history of a migrations folder, translating every failure into a sqlmanage error.

    Headers come from ``revision_index`` when the folder is plain (one versions folder, no
    branch labels or depends_on); otherwise Alembic reads the folder, importing every file.
    """
    from sqlmanage.engine import revision_index

    if not migrations_dir.exists():
        return History([], (), project_label)
    if not (migrations_dir / "env.py").is_file():
        raise SettingsError(
            f"The migrations folder {migrations_dir} has no env.py.",
            hint="Run 'python manage.py makemigrations' in a project without that folder to "
            "have it created, or copy env.py from a project made by sqlmanage.",
        )

    def script_directory(headers=None):
        return make_script_directory(make_config(), migrations_dir, headers)

    history = None
    if plain_layout(ini_file):
        with translate_revision_errors():
            headers = revision_index.read_folder(migrations_dir)
        if headers is not None:
            history = history_from_headers(
                headers, project_label, lambda: script_directory(headers)
            )
    if history is None:
        history = History.from_script(script_directory(), project_label)
        history.replaced_dirs = [
            location / REPLACED_FOLDER
            for location in alembic_internals.version_locations(history.script)
        ]
    else:
        history.replaced_dirs = [migrations_dir / "versions" / REPLACED_FOLDER]
    return history


def plain_layout(ini_file: Path) -> bool:
    """Whether alembic.ini leaves the versions folder where sqlmanage looks for it."""
    if not ini_file.is_file():
        return True
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(ini_file, encoding="utf-8")
    except configparser.Error:
        return False
    special = {"version_locations", "recursive_version_locations", "sourceless"}
    return not parser.has_section("alembic") or not special & set(parser.options("alembic"))


def make_script_directory(config, location: Path, headers: list | None = None):
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from sqlmanage.engine.revision_index import install_lazy_loading

    try:
        with translate_revision_errors():
            script = ScriptDirectory.from_config(config)
    except CommandError as exc:
        raise MigrationFileError(f"Cannot read the migrations in {location}: {exc}") from exc
    install_lazy_loading(script, headers)
    return script
