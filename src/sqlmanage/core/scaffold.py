"""Create a project's migrations folder from sqlmanage's templates, as Django creates its own."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from sqlmanage.files import write_atomic

MIGRATIONS_TEMPLATES = ("env.py", "script.py.mako")


def ensure_migrations_folder(directory: Path) -> bool:
    """Write env.py, script.py.mako and versions/ where missing; True if anything was written."""
    created = False
    (directory / "versions").mkdir(parents=True, exist_ok=True)
    source = files("sqlmanage") / "templates" / "migrations"
    for name in MIGRATIONS_TEMPLATES:
        target = directory / name
        if not target.exists():
            write_atomic(target, (source / name).read_text(encoding="utf-8"))
            created = True
    return created
