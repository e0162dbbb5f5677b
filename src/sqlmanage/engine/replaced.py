"""The originals of squashed migrations, kept in versions/replaced/: which squash each belongs
to, and the RevisionMap that runs them for a database that stands between two of them."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sqlmanage.engine.migration import (
    Migration,
    Squash,
    header_down_revision,
    migration_from_header,
)
from sqlmanage.engine.revision_errors import translate_revision_errors
from sqlmanage.errors import MigrationFileError


def find_squashes(folders: Iterable[Path], by_id: dict[str, Migration]) -> dict[str, Squash]:
    """Replaced revision -> its squash, for every original in ``folders`` that is no longer in
    the history (``by_id``)."""
    originals: dict[str, Migration] = {}
    for folder in folders:
        originals.update(read_originals(folder))
    found: dict[str, Squash] = {}
    for original in originals.values():
        squashed = by_id.get(original.revision)
        if squashed is None:
            continue
        chain = [original]
        while (
            chain[-1].parents
            and chain[-1].parents != squashed.parents
            and chain[-1].parents[0] in originals
        ):
            chain.append(originals[chain[-1].parents[0]])
        squash = Squash(squashed, tuple(reversed(chain)))
        found.update((m.revision, squash) for m in chain[1:])
    return found


def originals_revision_map(squashes: Iterable[Squash], by_id: dict[str, Migration]):
    """Alembic's RevisionMap over the originals of ``squashes``, to run them."""
    from alembic.script import Script
    from alembic.script.revision import RevisionMap

    from sqlmanage.engine.revision_index import LazyMigrationModule

    # The first original of each squash is only ever where a database stands, never a
    # step to run: it is made a root here, since its parent lives in the main history.
    originals = [
        (index, m)
        for squash in {id(s): s for s in squashes}.values()
        for index, m in enumerate(squash.replaced)
    ]
    scripts = [
        Script(
            LazyMigrationModule(
                m.path,
                {  # type: ignore[arg-type]  # a module, loaded on use
                    "revision": m.revision,
                    "down_revision": header_down_revision(m.parents) if index else None,
                    "branch_labels": None,
                    "depends_on": header_down_revision(m.dependencies),
                },
            ),
            m.revision,
            m.path,
        )
        for index, m in originals
    ]
    # What they depend on in other trees (the plan runs it first) stands here as a root,
    # so that Alembic keeps the version table as plain alembic would (one row, not two).
    named = {m.revision for _, m in originals}
    needed = dict.fromkeys(d for _, m in originals for d in m.dependencies if d not in named)
    scripts += [
        Script(
            LazyMigrationModule(  # type: ignore[arg-type]
                by_id[d].path,
                {
                    "revision": d,
                    "down_revision": None,
                    "branch_labels": None,
                    "depends_on": None,
                },
            ),
            d,
            by_id[d].path,
        )
        for d in needed
        if d in by_id
    ]
    return RevisionMap(lambda: scripts)


def declared_replaces(path: Path) -> tuple[str, ...]:
    """The ``replaces = (...)`` a squashed migration declares (read, not imported)."""
    import ast

    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return ()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "replaces" for t in node.targets
        ):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return ()
            return (
                tuple(v for v in value if isinstance(v, str))
                if isinstance(value, (list, tuple))
                else ()
            )
    return ()


def read_originals(folder: Path | None) -> dict[str, Migration]:
    """The migrations in versions/replaced/, by revision, read from their headers."""
    from sqlmanage.engine.revision_index import REVISION_FILE, RevisionIndex

    if folder is None or not folder.is_dir():
        return {}
    index = RevisionIndex(folder)
    found: dict[str, Migration] = {}
    with translate_revision_errors():
        for path in sorted(folder.iterdir()):
            if not REVISION_FILE.match(path.name) or not path.is_file():
                continue
            header = index.header(path)
            if header is None:
                raise MigrationFileError(
                    f"Cannot read the revision of the replaced migration {path}.",
                    hint="Its revision and down_revision must be plain strings.",
                )
            migration = migration_from_header(path.resolve(), header)
            found[migration.revision] = migration
    index.save()
    return found
