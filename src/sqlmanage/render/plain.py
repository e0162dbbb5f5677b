"""Django's plain-text lines, as (text, style) pairs the command writes out."""

from __future__ import annotations

from collections.abc import Iterator

from sqlmanage.render import printable

Line = tuple[str, "str | None"]


def showmigrations(status, plan: bool, verbosity: int) -> Iterator[Line]:
    """` [X] 0001_initial` lines under each tree's label, or `[X]  name` in plan order.

    With several trees, a plan names each migration ``label.name``, as Django names
    ``app.migration``.
    """
    if plan:
        if not status.migrations and not status.missing_files:
            yield "(no migrations)", None
        for state in status.migrations:
            mark = "[X]" if state.applied else "[-]" if state.partly else "[ ]"
            parents = ""
            needs = state.migration.parents + state.migration.dependencies
            if verbosity >= 2 and needs:
                names = ", ".join(_name(status, p) for p in needs)
                parents = f" ... ({names})"
            yield f"{mark}  {_name(status, state.migration.revision)}{parents}", None
        for revision in status.missing_files:
            yield (
                f"[?]  {printable(revision)} (recorded in the database; no migration file)",
                "error",
            )
        return
    if not status.several_trees and len(status.trees) <= 1:
        yield from _tree_lines(status.label, status.migrations, verbosity, not status.missing_files)
    else:
        for label in status.trees:
            yield from _tree_lines(label, status.in_tree(label), verbosity, True)
    for revision in status.missing_files:
        yield f" [?] {printable(revision)} (recorded in the database; no migration file)", "error"


def _tree_lines(label: str, states, verbosity: int, say_empty: bool) -> Iterator[Line]:
    """One tree as Django lists one app: its label, then a line per migration."""
    yield printable(label), "label"
    if not states and say_empty:
        yield " (no migrations)", None
    for state in states:
        mark = "[X]" if state.applied else "[-]" if state.partly else "[ ]"
        notes = ""
        if state.partly:
            notes += f" ({state.partly[0]} of {state.partly[1]} squashed migrations applied)"
        if verbosity >= 2 and state.applied_at is not None:
            notes += f" (applied at {state.applied_at:%Y-%m-%d %H:%M:%S})"
        elif verbosity >= 2 and state.applied:
            notes += " (applied outside sqlmanage; not verified until the next migrate)"
        if state.changed:
            notes += " (file changed since it was applied)"
        if state.half_applied:
            notes += " (cut off while it ran: may be half-applied)"
        flagged = state.changed or state.half_applied
        yield f" {mark} {printable(state.migration.name)}{notes}", "error" if flagged else None


def _name(status, revision: str) -> str:
    """A migration's name in a plan: ``label.name`` where the project has several trees."""
    for state in status.migrations:
        if state.migration.revision == revision:
            name = printable(state.migration.name)
            return f"{status.tree_of[revision]}.{name}" if status.several_trees else name
    tree = status.tree_of.get(revision)
    return f"{tree}.{revision}" if tree and status.several_trees else revision


def migration_heading(plan, label: str) -> Iterator[Line]:
    """Django's ``Operations to perform:`` block."""
    yield "Operations to perform:", "heading"
    what = f"{plan.count} migration{'' if plan.count == 1 else 's'}"
    if plan.goal == "migration":
        yield f"  Target specific migration: {printable(plan.target.name)}, from {label}", None
    elif plan.goal == "zero":
        yield f"  Unapply all migrations: {label}", None
    elif plan.goal == "next":
        yield f"  Apply the next {what}: {label}", None
    elif plan.goal == "last":
        yield f"  Unapply the last {what}: {label}", None
    else:
        yield f"  Apply all migrations: {label}", None
    yield "Running migrations:", "heading"
    if not plan.steps:
        yield "  No migrations to apply.", None


def step_started(step) -> str:
    action = "Applying" if step.forward else "Unapplying"
    return f"  {action} {printable(step.migration.name)}..."


def step_done(seconds: float | None, fake: bool) -> str:
    """Django's `` OK`` / `` FAKED``, with `` (0.031s)`` when timed (``-v 2``)."""
    elapsed = "" if seconds is None else f" ({seconds:.3f}s)"
    return f" {'FAKED' if fake else 'OK'}{elapsed}"


def planned_operations(plan, descriptions) -> Iterator[Line]:
    """``migrate --plan``: each migration and its operations, ``Undo`` when going back."""
    yield "Planned operations:", "heading"
    if not plan.steps:
        yield "  No planned migration operations.", None
    for step, (changes, irreversible) in zip(plan.steps, descriptions, strict=True):
        yield printable(step.migration.name), "label"
        if not step.forward:
            changes = [f"Undo {c}" for c in reversed(changes)]
        if not changes:
            yield "    (no operations)", None
        for change in changes:
            if not step.forward and irreversible:
                yield f"    {change} -> IRREVERSIBLE", "error"
            else:
                yield f"    {change}", None


def changes_written(label: str, written, verbosity: int) -> Iterator[Line]:
    """makemigrations' report: the file and one line per operation, with review notes."""
    yield f"Migrations for '{label}':", "heading"
    for migration, display_path in written:
        yield f"  {display_path}", "label"
        for change in migration.changes:
            yield f"    {change.mark} {printable(change.text)}", None
            if change.review:
                yield f"      ! {change.review}", "warning"
