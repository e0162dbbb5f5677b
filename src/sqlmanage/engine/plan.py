"""What ``migrate TARGET`` means: the list of migrations to apply or unapply, in order.

Pure functions over the history and the database's current heads, so ``--plan``,
``--check``, ``--sql`` and the real run all follow exactly the same list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from sqlmanage.engine.graph import History
from sqlmanage.engine.migration import Migration
from sqlmanage.errors import SqlmanageError, UnknownDatabaseRevision

RELATIVE = re.compile(r"^([+-])(\d+)$")
ZERO = {"zero", "base"}
HEAD = {"head", "heads"}
TRANSACTIONAL_DDL = {"postgresql", "sqlite"}  # where a failed migration rolls back whole


VERSION_NUM_LENGTH = 32  # Alembic's version_num column: VARCHAR(32)


def require_recordable_revisions(history: History) -> None:
    """Refuse a history with a revision id the version table cannot hold.

    PostgreSQL fails on it mid-run, and non-strict MariaDB truncates it silently, after
    which no migration shows as applied; ``alembic revision --rev-id`` accepts any length.
    """
    require_recordable_ids([(m.revision, m.path) for m in history.migrations])


def require_recordable_ids(revisions) -> None:
    """``require_recordable_revisions`` for (revision, path) pairs."""
    long_ids = [
        (revision, path) for revision, path in revisions if len(revision) > VERSION_NUM_LENGTH
    ]
    if long_ids:
        listed = ", ".join(f"{r} ({len(r)} characters, in {Path(p).name})" for r, p in long_ids)
        raise SqlmanageError(
            f"Revision ids longer than the version table's {VERSION_NUM_LENGTH} characters: {listed}.",
            hint="Give the migration a shorter revision id (the 'revision' variable, and the "
            "down_revision of its children) before any database records it.",
        )


def is_zero(target: str | None) -> bool:
    return bool(target and target.strip().lower() in ZERO)


def is_relative(target: str | None) -> bool:
    return bool(target and RELATIVE.match(target.strip()) is not None)


@dataclass(frozen=True)
class Step:
    migration: Migration
    forward: bool


@dataclass
class Plan:
    """The steps a migrate run takes; ``target`` is None for "apply everything".

    ``tree`` is the app label the run is about (``migrate shop ...``, or the target's tree),
    None for every tree. ``goal`` is what the target asked for, as Django's "Operations to
    perform" names it: ``all`` (the heads), ``migration`` (``target``), ``zero``, or
    ``next``/``last`` with ``count`` (``+N``/``-N``).
    """

    target: Migration | None
    target_label: str | None
    steps: list[Step] = field(default_factory=list)
    tree: str | None = None
    goal: str = "all"
    count: int = 0


def split_target(target: str | None) -> tuple[str | None, str | None]:
    """``shop@0002`` -> ("shop", "0002"): Alembic's ``label@target``, which is what
    Django's ``migrate shop 0002`` becomes; a target without ``@`` has no label."""
    if target is None:
        return None, None
    label, at, rest = target.strip().partition("@")
    if not at:
        return None, target.strip() or None
    return label.strip() or None, rest.strip() or None


def with_label(label: str | None, target: str | None) -> str | None:
    """The target string for ``[APP_LABEL] [MIGRATION]``: ``label@target`` (``label@head``
    for a label alone), or the target itself."""
    if label is None:
        return target
    return f"{label}@{target or 'head'}"


def plan_migrations(history: History, current: tuple[str, ...], target: str | None) -> Plan:
    """The steps that bring a database at ``current`` to ``target`` (Django's meaning).

    A database inside a squashed range first runs the rest of the replaced originals, which
    brings it to the squashed migration's revision; the plan goes on from there.
    """
    catch_up: list[Step] = []
    inside = history.inside_squashes(current)
    if inside:
        for revision, squash in inside.items():
            catch_up.extend(Step(m, True) for m in squash.remaining(revision))
        # What those originals depend on in other trees (depends_on) runs before them.
        needs = history.ancestors(d for step in catch_up for d in step.migration.dependencies)
        if needs:
            reached = history.ancestors(
                [p for squash in inside.values() for p in squash.migration.parents]
                + [r for r in current if r not in inside]
            )
            catch_up[:0] = [
                Step(m, True)
                for m in history.migrations
                if m.revision in needs and m.revision not in reached
            ]
        current = tuple(inside[r].migration.revision if r in inside else r for r in current)
    plan = _plan(history, current, target)
    plan.steps[:0] = catch_up
    return plan


def _plan(history: History, current: tuple[str, ...], target: str | None) -> Plan:
    unknown = [r for r in current if r not in history.by_id]
    if unknown:
        raise UnknownDatabaseRevision(
            f"The database is at revision {', '.join(unknown)}, which no migration file in "
            f"{history.label} has.",
            hint="Restore the missing migration file (e.g. from version control: this code may "
            "be older than the database), and check that DATABASE_URL and VERSION_TABLE name "
            "this project's database, not one whose history belongs to another project.",
        )
    tree, label = split_target(target)
    if tree is not None:
        tree = history.tree_label(tree)
    applied = history.ancestors(current)
    in_tree = history.tree(tree)
    pending = [m for m in history.migrations if m.revision not in applied]
    done = [m for m in reversed(history.migrations) if m.revision in applied]
    key = label.lower() if label else ""

    if not label or key in HEAD:
        if key != "heads":
            history.require_single_head(tree)
        if tree is not None:
            wanted = history.ancestors(history.tree_heads(tree))
            pending = [m for m in pending if m.revision in wanted]
        return Plan(None, label, [Step(m, True) for m in pending], tree)
    if key in ZERO:
        # Alembic's label@base: the tree's migrations go, and whatever depends on them.
        return Plan(
            None,
            label,
            [Step(m, False) for m in _taking_down(history, done, in_tree)],
            tree,
            goal="zero",
        )
    relative = RELATIVE.match(key)
    if relative:
        sign, count = relative.group(1), int(relative.group(2))
        members = {m.revision for m in in_tree}
        available = [m for m in (pending if sign == "+" else done) if m.revision in members]
        if count > len(available):
            word = "unapplied" if sign == "+" else "applied"
            raise SqlmanageError(
                f"Cannot move {sign}{count}: only {len(available)} migration"
                f"{'' if len(available) == 1 else 's'} {'is' if len(available) == 1 else 'are'} "
                f"{word}{f' in {tree}' if tree else ''}.",
                hint="Run 'python manage.py showmigrations' to see where the database stands.",
            )
        chosen = available[:count]
        if sign == "+":
            wanted = history.ancestors(m.revision for m in chosen)
            steps = [Step(m, True) for m in pending if m.revision in wanted]
            return Plan(None, label, steps, tree, goal="next", count=count)
        steps = [Step(m, False) for m in _taking_down(history, done, chosen)]
        return Plan(None, label, steps, tree, goal="last", count=count)

    migration = history.find(label, tree)
    tree = history.tree_of[migration.revision]
    if migration.revision in applied:
        after = [
            m
            for m in done
            if m.revision != migration.revision
            and migration.revision in history.ancestors([m.revision])
        ]
        return Plan(migration, label, [Step(m, False) for m in after], tree, goal="migration")
    wanted = history.ancestors([migration.revision])
    steps = [Step(m, True) for m in pending if m.revision in wanted]
    return Plan(migration, label, steps, tree, goal="migration")


def _taking_down(
    history: History, done: list[Migration], leaving: list[Migration]
) -> list[Migration]:
    """The applied migrations (``done``, last applied first) that unapplying ``leaving``
    takes down: those and every applied migration built on them, through depends_on too."""
    if len(leaving) == len(history.migrations):
        return done
    return history.dependents((m.revision for m in leaving), done)
