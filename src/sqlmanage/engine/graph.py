"""The migration graph of a project: its order, heads and trees, and what a name such as
``0003`` or an app label means in it."""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Callable, Iterable
from functools import cached_property
from pathlib import Path

from sqlmanage.engine.migration import (
    Migration,
    Squash,
    migration_from_header,
    migration_from_script,
    order_key,
)
from sqlmanage.engine.revision_errors import translate_revision_errors
from sqlmanage.errors import (
    AmbiguousMigration,
    MigrationFileError,
    MultipleHeads,
    SqlmanageError,
    UnknownLabel,
    UnknownMigration,
)

MAKE_MIGRATIONS_HINT = "Run 'python manage.py makemigrations --merge' to merge them."


class History:
    """Every migration of a project's version folders, in the order they apply.

    The migrations form one or more trees: a root (a migration with no down_revision) and
    everything that grows from it. A tree's label is Alembic's branch label of its root
    (Django's app label), else the settings' (the package name). ``script`` (Alembic's
    ScriptDirectory, needed only to run or render migrations) is made on first use; reading
    where a database stands never imports Alembic.
    """

    def __init__(
        self,
        migrations: list[Migration],
        heads: tuple[str, ...],
        project_label: str,
        load_script: Callable[[], object] | None = None,
    ):
        self.migrations = migrations
        self.by_id: dict[str, Migration] = {m.revision: m for m in migrations}
        self.heads = heads
        self.package_label = project_label
        self.tree_of = _trees(migrations, project_label)
        self.trees: tuple[str, ...] = tuple(sorted(set(self.tree_of.values())))
        self.label = ", ".join(self.trees) or project_label
        self._load_script = load_script
        self.exists = load_script is not None
        self.checksums: dict[str, str] = {}
        self.replaced_dirs: list[Path] = []

    @classmethod
    def from_script(cls, script_directory, project_label: str) -> History:
        """Alembic's reading of the folder: for histories with branch labels or depends_on."""
        with translate_revision_errors(), warnings.catch_warnings():
            # Alembic only warns about two files with one revision id, or a down_revision
            # that no file has; either way the history is not what the files say.
            warnings.simplefilter("error")
            scripts = list(script_directory.walk_revisions("base", "heads"))
            heads = tuple(script_directory.get_heads())
        migrations = [migration_from_script(s) for s in reversed(scripts)]
        return cls(migrations, heads, project_label, lambda: script_directory)

    @cached_property
    def script(self):
        return self._load_script() if self._load_script else None

    @cached_property
    def squashes(self) -> dict[str, Squash]:
        """Replaced revision -> its squash, for every original that is no longer in the history.

        Read only when a database stands at a revision the history lacks: versions/replaced/
        is usually absent or irrelevant.
        """
        from sqlmanage.engine.replaced import find_squashes

        return find_squashes(self.replaced_dirs, self.by_id)

    @cached_property
    def replaced_revision_map(self):
        """Alembic's RevisionMap over versions/replaced/, to run originals (mid-range databases)."""
        from sqlmanage.engine.replaced import originals_revision_map

        return originals_revision_map(self.squashes.values(), self.by_id)

    def inside_squashes(self, heads: Iterable[str]) -> dict[str, Squash]:
        """The database heads that stand inside a squashed range, with their squash."""
        unknown = [r for r in heads if r not in self.by_id]
        if not unknown:
            return {}
        return {r: self.squashes[r] for r in unknown if r in self.squashes}

    def is_replaced(self, migration: Migration) -> bool:
        """Whether ``migration`` is an original in versions/replaced/, not a history file."""
        return self.by_id.get(migration.revision) != migration

    def alembic_script(self, migration: Migration):
        """Alembic's Script for a migration of the history, or for a replaced original."""
        if self.is_replaced(migration):
            return self.replaced_revision_map.get_revision(migration.revision)
        return self.script.get_revision(migration.revision)

    def revision_map_for(self, migration: Migration):
        return (
            self.replaced_revision_map if self.is_replaced(migration) else self.script.revision_map
        )

    def tree(self, label: str | None) -> list[Migration]:
        """The migrations of the tree ``label`` names (every migration for None), in order."""
        if label is None:
            return self.migrations
        tree = self.tree_label(label)
        return [m for m in self.migrations if self.tree_of[m.revision] == tree]

    def tree_heads(self, label: str | None) -> tuple[str, ...]:
        """The heads of one tree (of every tree for None)."""
        if label is None:
            return self.heads
        tree = self.tree_label(label)
        return tuple(h for h in self.heads if self.tree_of[h] == tree)

    def only_tree(self, label: str | None) -> str | None:
        """The tree a command works on: ``label``'s, or the one tree there is.

        None for an empty history; a project with several trees needs the label.
        """
        if label is not None:
            return self.tree_label(label)
        if len(self.trees) > 1:
            raise SqlmanageError(
                f"The project has several migration trees ({', '.join(self.trees)}): say which "
                "one the new migration goes in.",
                hint=f"Give its app label, e.g. 'python manage.py makemigrations {self.trees[0]}'.",
            )
        return self.trees[0] if self.trees else None

    def head(self, label: str | None = None) -> str | None:
        """The single head of the tree (``label``'s, or the only one); None for an empty
        history. Several heads in that tree are an error."""
        tree = self.only_tree(label)
        if tree is None:
            return None
        self.require_single_head(tree)
        heads = self.tree_heads(tree)
        return heads[0] if heads else None

    def require_single_head(self, label: str | None = None) -> None:
        """Each tree (or ``label``'s) must end in one migration: two heads need a merge.

        Several trees, each with its own head, are Alembic's multiple bases, not a conflict.
        """
        for tree in self.trees if label is None else (self.tree_label(label),):
            heads = self.tree_heads(tree)
            if len(heads) > 1:
                names = ", ".join(self.by_id[h].name for h in heads)
                merge = (
                    MAKE_MIGRATIONS_HINT
                    if len(self.trees) == 1
                    else MAKE_MIGRATIONS_HINT.replace("--merge", f"{tree} --merge")
                )
                if len({self._root(h) for h in heads}) > 1:
                    merge = (
                        "They grow from different first migrations (Alembic's multiple "
                        "bases): give each first migration its own branch_labels to make "
                        "them separate trees, or "
                        + MAKE_MIGRATIONS_HINT[0].lower()
                        + MAKE_MIGRATIONS_HINT[1:]
                    )
                raise MultipleHeads(
                    f"Conflicting migrations detected; multiple heads in the migration history "
                    f"({names} in {tree}).",
                    hint=merge,
                )

    def _root(self, revision: str) -> str:
        """The first migration ``revision`` grows from, following first parents."""
        migration = self.by_id[revision]
        while migration.parents:
            migration = self.by_id[migration.parents[0]]
        return migration.revision

    def find(self, name: str, label: str | None = None) -> Migration:
        """The migration a user means by a full id, a file name, a number or a unique prefix,
        among the tree ``label`` names (or every tree)."""
        name = name.strip()
        if name.endswith(".py"):
            name = name[:-3]
        candidates = self.tree(label)
        where = self.tree_label(label) if label is not None else self.label
        exact = next((m for m in candidates if m.revision == name), None) or next(
            (m for m in candidates if m.name == name), None
        )
        if exact is not None:
            return exact
        if name.isascii() and name.isdigit():
            # A number means that migration, compared as a number (10 = 0010 = 010), never a
            # prefix of a longer number or of a date; else an Alembic prefix of a hex id.
            matches = [m for m in candidates if m.number == int(name)] or [
                m for m in candidates if m.number is None and m.revision.startswith(name)
            ]
        else:
            matches = [
                m for m in candidates if m.revision.startswith(name) or m.name.startswith(name)
            ]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise UnknownMigration(
                f"Cannot find a migration matching '{name}' in {where}.",
                hint=f"App labels: {', '.join(self.labels)}. Run 'python manage.py "
                "showmigrations' to list the migrations.",
            )
        listed = ", ".join(m.name for m in matches)
        trees = {self.tree_of[m.revision] for m in matches}
        raise AmbiguousMigration(
            f"More than one migration matches '{name}' in {where}: {listed}.",
            hint=f"Give the app label first (e.g. 'migrate {min(trees)} {name}')."
            if len(trees) > 1 and label is None
            else "Give more of the name, or the full revision id.",
        )

    @property
    def labels(self) -> tuple[str, ...]:
        """Every name a tree answers to as an APP_LABEL: the trees' labels, their other branch
        labels, and the package's name while there is one tree (it then names that tree)."""
        names = list(self.trees) or [self.label]
        if len(self.trees) <= 1:
            names += [self.package_label, self.package_label.partition(":")[0]]
        names += sorted(label for m in self.migrations for label in m.branch_labels)
        return tuple(dict.fromkeys(names))

    def tree_label(self, label: str) -> str:
        """The label of the tree that ``label`` names (a tree's label or one of its aliases)."""
        if label in self.trees:
            return label
        if label in self.labels:
            owner = next((m for m in self.migrations if label in m.branch_labels), None)
            if owner is not None:
                return self.tree_of[owner.revision]
            return self.trees[0] if self.trees else self.label
        raise UnknownLabel(
            f"No migrations with the app label '{label}'.",
            hint=f"App labels: {', '.join(self.labels)}.",
        )

    def dependents(self, revisions: Iterable[str], among: Iterable[Migration]) -> list[Migration]:
        """The migrations of ``among`` that are, or build on (through parents or depends_on),
        one of ``revisions``: what unapplying those revisions takes down with them."""
        marked = set(revisions)
        for migration in self.migrations:  # parents first: one pass marks every descendant
            if migration.revision not in marked and marked.intersection(
                migration.parents + migration.dependencies
            ):
                marked.add(migration.revision)
        return [m for m in among if m.revision in marked]

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

    def checksum(self, migration: Migration) -> str:
        """The file's checksum as the audit trail records it (cached with the headers)."""
        known = self.checksums.get(migration.revision)
        if known is None:
            from sqlmanage.engine.revision_index import file_checksum

            known = self.checksums[migration.revision] = file_checksum(migration.path.read_bytes())
        return known

    def changed_since(self, migration: Migration, recorded_checksum: str | None) -> bool:
        """Whether the file differs from the one the database ran (its recorded checksum).

        A squashed migration stands for its originals: a database that ran them recorded
        their checksums, so a file that declares ``replaces`` of its own revision is not
        counted as changed.
        """
        from sqlmanage.engine.revision_index import file_checksum

        # This answer gates check and migrate's warning: read the content itself, whatever
        # the cache says (a cache keyed on file metadata cannot vouch for every edit). A file
        # moved away since the history was read (squashmigrations) is as it was read then.
        current: str | None
        try:
            current = self.checksums[migration.revision] = file_checksum(
                migration.path.read_bytes()
            )
        except FileNotFoundError:
            current = self.checksums.get(migration.revision)
        if recorded_checksum == current:
            return False
        from sqlmanage.engine.replaced import declared_replaces

        return migration.revision not in declared_replaces(migration.path)

    def import_modules(self, migrations: Iterable[Migration]) -> None:
        """Import each migration's module once, to find one that fails (``check`` does this)."""
        for migration in migrations:
            module = self.script.get_revision(migration.revision).module
            if hasattr(module, "load"):
                module.load()
                module.unload()

    def release_module(self, migration: Migration) -> None:
        """Forget a migration's imported module after it ran (it is imported again if needed)."""
        module = self.alembic_script(migration).module
        if hasattr(module, "unload"):
            module.unload()

    def next_number(self, label: str | None = None) -> int:
        """The number for a new migration: one above the highest in its tree (as Django
        numbers each app on its own)."""
        numbers = [m.number for m in self.tree(label) if m.number is not None]
        return max(numbers, default=0) + 1


def split_app_label(
    history: History, words: Iterable[str], most: int = 1
) -> tuple[str | None, list[str]]:
    """Django's ``[APP_LABEL] [MIGRATION]``: the tree a command's words name, and the rest.

    A first word that is a label names the tree (``migrate shop 0005``, ``migrate shop``);
    a lone word that is not a label is a migration (``migrate 0005``). With more than
    ``most`` migration words, the first one must be a label, and a word that is none says
    which labels exist. The label returned is the tree's own (an alias is resolved).
    """
    words = list(words)
    if words and (words[0] in history.labels or len(words) > most):
        return history.tree_label(words[0]), words[1:]
    return None, words


def _trees(migrations: list[Migration], package_label: str) -> dict[str, str]:
    """Revision -> the label of its tree: a root's branch label (or the package's name),
    passed down to every migration that grows from it through its first parent."""
    tree_of: dict[str, str] = {}
    for migration in migrations:  # parents come first
        parent = migration.parents[0] if migration.parents else None
        if parent in tree_of:
            tree_of[migration.revision] = tree_of[parent]
        else:
            tree_of[migration.revision] = min(migration.branch_labels, default=package_label)
    return tree_of


def history_from_headers(headers: list, project_label: str, load_script) -> History:
    """Order plain migration headers parents first; refuse duplicates, orphans and cycles."""
    by_id: dict[str, Migration] = {}
    checksums = {}
    for path, header, checksum in headers:
        migration = migration_from_header(path, header)
        checksums[migration.revision] = checksum
        if migration.revision in by_id:
            raise MigrationFileError(
                f"The migration history is broken: Revision {migration.revision} is present "
                f"more than once ({by_id[migration.revision].path.name}, {path.name}).",
                hint="Give one of the files a new revision id.",
            )
        by_id[migration.revision] = migration
    children: dict[str, list[str]] = {revision: [] for revision in by_id}
    waiting: dict[str, int] = {}
    for migration in by_id.values():
        for parent in migration.parents:
            if parent not in by_id:
                raise MigrationFileError(
                    f"The migration history is broken: {migration.name} has down_revision "
                    f"{parent}, which no migration file has.",
                    hint="Check the revision and down_revision of the migration files.",
                )
            children[parent].append(migration.revision)
        waiting[migration.revision] = len(set(migration.parents))
    keys = {revision: order_key(m) for revision, m in by_id.items()}
    ready = sorted((r for r, count in waiting.items() if count == 0), key=keys.__getitem__)
    ordered: list[Migration] = []
    while ready:
        revision = ready.pop(0)
        ordered.append(by_id[revision])
        released = []
        for child in children[revision]:
            waiting[child] -= 1
            if waiting[child] == 0:
                released.append(child)
        if released:
            ready = sorted(ready + released, key=keys.__getitem__)
    if len(ordered) < len(by_id):
        stuck = sorted(r for r in by_id if waiting[r] > 0)
        raise MigrationFileError(
            f"The migration history has a cycle: Cycle is detected in revisions ({', '.join(stuck)}).",
            hint="Check the down_revision of the migrations named above.",
        )
    heads = tuple(sorted((r for r in by_id if not children[r]), key=keys.__getitem__))
    history = History(ordered, heads, project_label, load_script)
    history.checksums = checksums
    return history
