"""One migration as the user sees it, made from a file's header or from Alembic's Script."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

# sqlmanage's own revision ids, Django's 0001_initial: four or more digits, "_", a slug. Only
# these have a number; a date-named file (2022_01_20_...) or a hex id (1a2b3c4d5e6f) has none.
NUMBERED_REVISION = re.compile(r"^(\d{4,})_\w+$")
CREATE_DATE = re.compile(r"^Create Date:\s*(.+?)\s*$", re.MULTILINE)
REPLACED_FOLDER = "replaced"  # versions/replaced/: the originals of squashed migrations


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
    branch_labels: tuple[str, ...] = ()

    @property
    def is_merge(self) -> bool:
        return len(self.parents) > 1


@dataclass(frozen=True)
class Squash:
    """A squashed migration and the original files it replaces, kept in versions/replaced/.

    The last original has the squashed migration's revision id; a database at any earlier
    one runs the rest of the originals to reach it.
    """

    migration: Migration
    replaced: tuple[Migration, ...]

    def remaining(self, revision: str) -> tuple[Migration, ...]:
        """The originals still to run for a database at ``revision`` (one of them)."""
        index = [m.revision for m in self.replaced].index(revision)
        return self.replaced[index + 1 :]


def order_key(migration: Migration) -> tuple:
    """Numbered migrations by number, then the rest by name (among those free to come next)."""
    return (migration.number is None, migration.number or 0, migration.name)


def migration_from_header(path: Path, header: dict) -> Migration:
    """The migration a file's header (``revision_index.read_header``) describes."""
    doc = (header.get("doc") or "").strip()
    return make_migration(
        path,
        header["revision"],
        doc,
        as_tuple(header.get("down_revision")),
        as_tuple(header.get("depends_on")),
    )


def migration_from_script(script) -> Migration:
    """The migration an Alembic Script of a built RevisionMap describes."""
    from sqlmanage.engine import alembic_internals

    return make_migration(
        Path(script.path),
        script.revision,
        (script.module.__doc__ or "").strip(),
        as_tuple(script.down_revision),
        alembic_internals.resolved_dependencies(script),
        alembic_internals.own_branch_labels(script),
    )


def make_migration(
    path: Path,
    revision: str,
    doc: str,
    parents: tuple[str, ...],
    dependencies: tuple[str, ...],
    branch_labels: tuple[str, ...] = (),
) -> Migration:
    number_match = NUMBERED_REVISION.match(revision)
    created = None
    date_match = CREATE_DATE.search(doc)
    if date_match:
        try:
            created = datetime.fromisoformat(date_match.group(1))
        except ValueError:
            created = None
    return Migration(
        revision=revision,
        name=path.stem,
        number=int(number_match.group(1)) if number_match else None,
        message=re.split("\n\n", doc)[0],
        parents=parents,
        dependencies=dependencies,
        path=path,
        created=created,
        branch_labels=branch_labels,
    )


def header_down_revision(parents: tuple[str, ...]):
    """A down_revision as a header holds it: None, one id, or a list of ids."""
    if not parents:
        return None
    return parents[0] if len(parents) == 1 else list(parents)


def as_tuple(value) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)
