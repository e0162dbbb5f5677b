"""The migration history: files, numbers, heads, and what a target such as ``0003`` means.

A thin, read-only layer over Alembic's ``ScriptDirectory``. Alembic's own errors (a file
that does not parse, a cycle, an unknown revision) are translated here into sqlmanage's
messages, since this is the layer that knows what the user was asking for.
"""

from __future__ import annotations

import re
import traceback
import warnings
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterable, Iterator

from sqlmanage.errors import (
    AmbiguousMigration,
    MigrationFileError,
    MultipleHeads,
    SettingsError,
    UnknownMigration,
)

NUMBER_PREFIX = re.compile(r"^(\d{4,})_")
CREATE_DATE = re.compile(r"^Create Date:\s*(.+?)\s*$", re.MULTILINE)
MAKE_MIGRATIONS_HINT = "Run 'python manage.py makemigrations --merge' to merge them."


@dataclass(frozen=True)
class Migration:
    """One migration file, as the user sees it."""

    revision: str
    name: str
    number: int | None
    message: str
    parents: tuple[str, ...]
    dependencies: tuple[str, ...]
    path: Path
    created: datetime | None

    @property
    def is_merge(self) -> bool:
        return len(self.parents) > 1


class History:
    """Every migration of one migrations folder, in the order they apply."""

    def __init__(self, script_directory, project_label: str = "project"):
        """``script_directory`` is None for a project whose migrations folder is not made yet."""
        self.script = script_directory
        self.label = project_label
        if script_directory is None:
            self.migrations, self.by_id, self.heads = [], {}, ()
            return
        with translate_revision_errors(), warnings.catch_warnings():
            # Alembic only warns about two files with one revision id, or a down_revision
            # that no file has; either way the history is not what the files say.
            warnings.simplefilter("error")
            scripts = list(script_directory.walk_revisions("base", "heads"))
            heads = tuple(script_directory.get_heads())
        self.migrations: list[Migration] = [_migration(s) for s in reversed(scripts)]
        self.by_id: dict[str, Migration] = {m.revision: m for m in self.migrations}
        self.heads: tuple[str, ...] = heads

    def head(self) -> str | None:
        """The single head, or None for an empty history; several heads are an error."""
        self.require_single_head()
        return self.heads[0] if self.heads else None

    def require_single_head(self) -> None:
        if len(self.heads) > 1:
            names = ", ".join(self.by_id[h].name for h in self.heads)
            raise MultipleHeads(
                f"Conflicting migrations detected; multiple heads in the migration history "
                f"({names} in {self.label}).",
                hint=MAKE_MIGRATIONS_HINT,
            )

    def find(self, name: str) -> Migration:
        """The migration a user means by a full id, a file name, a number or a unique prefix."""
        name = name.strip()
        if name.endswith(".py"):
            name = name[:-3]
        exact = self.by_id.get(name) or next((m for m in self.migrations if m.name == name), None)
        if exact is not None:
            return exact
        matches = [
            m
            for m in self.migrations
            if m.revision.startswith(name)
            or m.name.startswith(name)
            or (name.isdigit() and m.number == int(name))
        ]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise UnknownMigration(
                f"Cannot find a migration matching '{name}' in {self.label}.",
                hint="Run 'python manage.py showmigrations' to list the migrations.",
            )
        listed = ", ".join(m.name for m in matches)
        raise AmbiguousMigration(
            f"More than one migration matches '{name}' in {self.label}: {listed}.",
            hint="Give more of the name, or the full revision id.",
        )

    def ancestors(self, revisions: Iterable[str]) -> set[str]:
        """The given revisions and everything they depend on, walking parents once each."""
        seen: set[str] = set()
        queue = deque(r for r in revisions if r in self.by_id)
        while queue:
            revision = queue.popleft()
            if revision in seen:
                continue
            seen.add(revision)
            migration = self.by_id[revision]
            queue.extend(p for p in migration.parents + migration.dependencies if p in self.by_id)
        return seen

    def next_number(self) -> int:
        """The number for a new migration: one above the highest in the history."""
        numbers = [m.number for m in self.migrations if m.number is not None]
        return max(numbers, default=len(self.migrations)) + 1


def load_history(config, project_label: str) -> History:
    """Load the migrations folder named by an Alembic Config, translating every failure."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    location = Path(config.get_main_option("script_location"))
    if not location.exists():
        return History(None, project_label)
    if not (location / "env.py").is_file():
        raise SettingsError(
            f"The migrations folder {location} has no env.py.",
            hint="Run 'python manage.py makemigrations' in a project without that folder to "
            "have it created, or copy env.py from a project made by sqlmanage.",
        )
    try:
        with translate_revision_errors():
            script = ScriptDirectory.from_config(config)
    except CommandError as exc:
        raise MigrationFileError(f"Cannot read the migrations in {location}: {exc}") from exc
    return History(script, project_label)


@contextmanager
def translate_revision_errors() -> Iterator[None]:
    """Turn Alembic's history errors and broken migration files into sqlmanage errors."""
    from alembic.script.revision import CycleDetected, RevisionError
    from alembic.util import CommandError

    try:
        yield
    except SyntaxError as exc:
        raise MigrationFileError(
            f"Migration file {exc.filename} has a syntax error on line {exc.lineno}: {exc.msg}.",
            hint="Fix the file; every migration file must be valid Python.",
        ) from exc
    except CycleDetected as exc:
        raise MigrationFileError(
            f"The migration history has a cycle: {exc}.",
            hint="Check the down_revision of the migrations named above.",
        ) from exc
    except (RevisionError, CommandError, UserWarning) as exc:
        raise MigrationFileError(
            f"The migration history is broken: {exc}",
            hint="Check the revision and down_revision of the migration files.",
        ) from exc
    except Exception as exc:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/alembic/" not in f.filename]
        where = f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""
        raise MigrationFileError(
            f"A migration file failed to load: {type(exc).__name__}: {exc}{where}.",
            hint="Fix that file; run with --traceback to see the whole error.",
        ) from exc


def _migration(script) -> Migration:
    path = Path(script.path)
    number_match = NUMBER_PREFIX.match(path.stem)
    doc = script.module.__doc__ or ""
    created = None
    date_match = CREATE_DATE.search(doc)
    if date_match:
        try:
            created = datetime.fromisoformat(date_match.group(1))
        except ValueError:
            created = None
    return Migration(
        revision=script.revision,
        name=path.stem,
        number=int(number_match.group(1)) if number_match else None,
        message=(script.doc or "").strip(),
        parents=_as_tuple(script.down_revision),
        dependencies=tuple(getattr(script, "_resolved_dependencies", ()) or ()),
        path=path,
        created=created,
    )


def _as_tuple(value) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)
