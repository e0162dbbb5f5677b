"""Create a project's migrations folder from sqlmanage's templates, as Django creates its own."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from sqlmanage.files import write_atomic

MIGRATIONS_TEMPLATES = ("env.py", "script.py.mako")


def ensure_migrations_folder(directory: Path, configured: tuple[Path, ...] = ()) -> bool:
    """Write env.py, script.py.mako and versions/ where missing; True if anything was written.

    A new history is never started silently beside an existing one: when this folder has no
    migration yet but a nearby ``migrations/versions`` has some, the settings most likely
    point at the wrong folder, and a new ``0001_initial`` would re-create every table. The
    ``configured`` folders (other databases' MIGRATIONS) are histories of their own, not that.
    """
    if not _has_migrations(directory / "versions"):
        _refuse_second_history(directory, {folder.resolve() for folder in configured})
    created = False
    (directory / "versions").mkdir(parents=True, exist_ok=True)
    source = files("sqlmanage") / "templates" / "migrations"
    for name in MIGRATIONS_TEMPLATES:
        target = directory / name
        if not target.exists():
            write_atomic(target, (source / name).read_text(encoding="utf-8"))
            created = True
    return created


def _has_migrations(versions: Path) -> bool:
    return versions.is_dir() and any(versions.glob("*.py"))


def _refuse_second_history(directory: Path, configured: set[Path]) -> None:
    from sqlmanage.errors import SqlmanageError

    here = directory.resolve()
    for root in (here.parent, here.parent.parent):
        for versions in (*root.glob("migrations/versions"), *root.glob("*/migrations/versions")):
            folder = versions.resolve().parent
            if folder != here and folder not in configured and _has_migrations(versions):
                count = len(list(versions.glob("*.py")))
                raise SqlmanageError(
                    f"No migrations in {directory}, but {versions.parent} holds a history of "
                    f"{count} migration{'s' if count != 1 else ''}: writing here would start a "
                    "second history whose first migration re-creates every table.",
                    hint=f"Set MIGRATIONS in the settings to {versions.parent} (or move that "
                    "folder here), then run makemigrations again.",
                )
