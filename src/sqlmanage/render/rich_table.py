"""Rich tables for a terminal: ``showmigrations`` as a newcomer wants to read it, at any width.

No cell is ever cut to an ellipsis: a column keeps at least the width its content needs (a
migration name is never cut, a message wraps), and when the terminal is too narrow for
every column the least useful ones are left out first, as ``git log --graph`` and ``gh``
do, and the legend says which. Every mark that appears is explained under the table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from sqlmanage.render import printable

DATE = "%Y-%m-%d %H:%M"
DATE_WIDTH = 16
MESSAGE_MIN = 16
NOTES_MIN = 12
MARKS = {
    "[X]": ("applied", "green"),
    "[ ]": ("not applied", "yellow"),
    "[-]": ("squashed migration, partly applied", "yellow"),
    "[!]": ("file changed since it was applied", "red bold"),
    "[~]": ("cut off while it ran: may be half-applied", "red bold"),
    "[?]": ("recorded in the database, no migration file", "red"),
}


@dataclass
class Column:
    """A column, the least width its cells need, and how early it goes when space is short."""

    header: str
    cell: Callable[[Any], Text]
    minimum: int
    drop_rank: int  # lower goes first; 99 never goes
    no_wrap: bool = False
    style: str | None = None
    natural: int = 0  # the width it would like: its longest cell or header
    width: int = 0  # what it gets (set by ``fit``)


@dataclass
class Row:
    mark: str
    name: str
    message: str = ""
    created: str = ""
    applied_at: str = ""
    parents: str = ""
    notes: str = ""
    order: str = ""
    missing: bool = False
    app: str = ""


def showmigrations(status, plan: bool, verbosity: int, width: int = 120):
    """The table (with its legend) and the summary line, as Rich renderables for ``width``."""
    rows = _rows(status, verbosity, plan)
    columns = _columns(rows, verbosity, plan)
    shown, hidden = fit(columns, width)
    title = f"{'Plan' if plan else 'Migrations'} for {printable(status.label)}"
    table = Table(
        title=Text(title, style="bold"),
        title_justify="left",
        box=box.MINIMAL,
        show_edge=False,
        expand=False,
    )
    for column in shown:
        table.add_column(
            column.header,
            width=column.width,
            no_wrap=column.no_wrap,
            overflow="fold",
            style=column.style,
        )
    for row in rows:
        table.add_row(*(column.cell(row) for column in shown))
    return Group(table, legend(rows, hidden, width)), summary(status)


def fit(columns: list[Column], width: int) -> tuple[list[Column], list[Column]]:
    """The columns that fit ``width`` at their minimum widths, dropping by rank; and the rest.

    Each shown column gets its width here (Rich is left nothing to shrink): its minimum,
    then the room left goes to the columns that wrap, up to what they would like, the
    least droppable first. A name longer than the whole terminal folds onto more lines.
    """
    shown = list(columns)
    hidden: list[Column] = []
    while _table_width(shown) > width:
        candidates = [c for c in shown if c.drop_rank < 99]
        if not candidates:
            break
        victim = min(candidates, key=lambda c: c.drop_rank)
        shown.remove(victim)
        hidden.append(victim)
    for column in shown:
        column.width = column.minimum
    spare = width - _table_width(shown)
    if spare < 0:  # only the mark and the names are left, and a name is wider than the terminal
        name = shown[-1]
        name.width = max(9, name.width + spare)
    for column in shown:  # left to right: the message first
        grow = max(0, min(spare, column.natural - column.width))
        column.width += grow
        spare -= grow
    return shown, hidden


def _table_width(columns: list[Column]) -> int:
    """Width of a MINIMAL table without edges: padding of 1 each side, a divider between columns."""
    return sum(c.width or c.minimum for c in columns) + 3 * len(columns) - 1


def _rows(status, verbosity: int, plan: bool) -> list[Row]:
    names = {s.migration.revision: s.migration.name for s in status.migrations}
    numbers: dict[int, int] = {}
    for state in status.migrations:
        if state.migration.number is not None:
            numbers[state.migration.number] = numbers.get(state.migration.number, 0) + 1

    def short(revision: str) -> str:
        """A parent by its number where that names one migration (0002), else its name."""
        migration = next(
            (s.migration for s in status.migrations if s.migration.revision == revision), None
        )
        if (
            migration is not None
            and migration.number is not None
            and numbers[migration.number] == 1
        ):
            return migration.name.split("_", 1)[0]
        return printable(names.get(revision, revision))

    heads, db_heads = set(status.heads), set(status.database_heads)
    rows = []
    states = status.migrations
    if status.several_trees and not plan:  # grouped by tree, as Django lists apps
        states = [s for label in status.trees for s in status.in_tree(label)]
    for index, state in enumerate(states, start=1):
        migration = state.migration
        mark = (
            "[~]"
            if state.half_applied
            else "[!]"
            if state.changed
            else "[X]"
            if state.applied
            else "[-]"
            if state.partly
            else "[ ]"
        )
        notes = []
        if state.half_applied:
            notes.append("cut off while it ran: may be half-applied")
        if state.partly:
            notes.append(f"{state.partly[0]} of {state.partly[1]} squashed migrations applied")
        if state.changed:
            notes.append("file changed since applied")
        if verbosity >= 2:
            if migration.is_merge:
                notes.append("merge")
            if migration.revision in db_heads:
                notes.append("database is here")
            if migration.revision in heads:
                notes.append("head")
        applied_at = (
            f"{state.applied_at:{DATE}}"
            if state.applied_at
            else ("not verified" if state.applied else "")
        )
        rows.append(
            Row(
                mark=mark,
                name=printable(migration.name),
                message=printable(migration.message),
                created=f"{migration.created:{DATE}}" if migration.created else "",
                applied_at=applied_at,
                parents=", ".join(
                    short(p) for p in migration.parents + (migration.dependencies if plan else ())
                ),
                notes=", ".join(notes),
                order=str(index),
                app=printable(status.tree_of.get(migration.revision, ""))
                if status.several_trees
                else "",
            )
        )
    for revision in status.missing_files:
        rows.append(
            Row(mark="[?]", name=printable(revision), notes="no migration file", missing=True)
        )
    return rows


def _columns(rows: list[Row], verbosity: int, plan: bool) -> list[Column]:
    def longest(values, cap: int | None = None, floor: int = 1) -> int:
        size = max((len(v) for v in values), default=0)
        return max(floor, min(size, cap) if cap else size)

    def longest_word(values) -> int:
        return max((len(w) for v in values for w in v.split()), default=1)

    def text(attribute: str, style: str | None = None):
        def cell(row: Row) -> Text:
            return Text(getattr(row, attribute), style=("red" if row.missing else style) or "")

        return cell

    def mark(row: Row) -> Text:
        return Text(row.mark, style=MARKS[row.mark][1])

    columns = []
    if plan:
        columns.append(
            Column("#", text("order", "dim"), longest(r.order for r in rows), 2, no_wrap=True)
        )
    columns.append(Column("", mark, 3, 99, no_wrap=True))
    if any(r.app for r in rows):
        columns.append(
            Column("App", text("app", "cyan"), longest(r.app for r in rows), 99, no_wrap=True)
        )
    columns.append(
        Column("Migration", text("name", "bold"), longest((r.name for r in rows), floor=9), 99)
    )
    messages = [r.message for r in rows if r.message]
    if messages:
        columns.append(
            Column(
                "Message",
                text("message"),
                max(longest(messages, MESSAGE_MIN), min(longest_word(messages), MESSAGE_MIN)),
                1 if plan else 4,
            )
        )  # a plan at -v 2 is about what depends on what
    if not plan and any(r.created for r in rows):
        columns.append(Column("Created", text("created"), DATE_WIDTH, 2, no_wrap=True))
    if verbosity >= 2:
        if any(r.applied_at for r in rows):
            columns.append(Column("Applied (UTC)", text("applied_at"), DATE_WIDTH, 3, no_wrap=True))
        if any(r.parents for r in rows):
            header = "Depends on" if plan else "Parents"
            columns.append(
                Column(
                    header,
                    text("parents"),
                    max(len(header), longest_word(r.parents.replace(",", " ") for r in rows)),
                    4 if plan else 1,
                )
            )
    notes = [r.notes for r in rows if r.notes]
    if notes:
        columns.append(
            Column(
                "Notes",
                text("notes"),
                max(5, min(longest(notes), NOTES_MIN), longest_word(notes)),
                5,
            )
        )
    for column in columns:
        cells = [column.cell(row).plain for row in rows]
        column.natural = max(column.minimum, len(column.header), *(len(c) for c in cells))
    return columns


def legend(rows: list[Row], hidden: list[Column], width: int = 120) -> Text:
    """What each mark in the table means (an entry never split over lines), and which
    columns the width left out."""
    text = Text()
    seen = [m for m in MARKS if any(r.mark == m for r in rows)]
    used = 0
    for mark in seen:
        entry = len(mark) + 1 + len(MARKS[mark][0])
        if used and used + 2 + entry > width:
            text.append("\n")
            used = 0
        elif used:
            text.append("  ")
            used += 2
        text.append(mark, style=MARKS[mark][1])
        text.append(f" {MARKS[mark][0]}", style="dim")
        used += entry
    if hidden:
        names = ", ".join(c.header for c in hidden)
        text.append(
            f"\n(not shown at this width: {names}; widen the terminal to see them)", style="dim"
        )
    return text


def summary(status) -> Text:
    names = {s.migration.revision: s.migration.name for s in status.migrations}

    def named(revisions):
        return ", ".join(printable(names.get(r, r)) for r in revisions) or "nothing applied"

    partly = [s for s in status.migrations if s.partly]
    pending = status.pending_count - len(partly)
    text = Text()
    text.append(f"{status.applied_count} applied", style="green")
    text.append(", ")
    text.append(f"{pending} pending", style="yellow" if pending else "")
    for state in partly:
        text.append(", ")
        text.append(
            f"{state.migration.name} partly applied ({state.partly[0]} of {state.partly[1]})",
            style="yellow",
        )
    text.append(f" · database at {named(status.database_heads)}")
    if len(status.heads) > 1 and status.several_trees:  # a head per tree, not a conflict
        text.append(
            " · heads: "
            + ", ".join(
                f"{printable(names.get(h, h))} ({printable(status.tree_of[h])})"
                for h in status.heads
            )
        )
    else:
        text.append(f" · head is {named(status.heads) if status.heads else 'empty history'}")
    text.append(f"\n{status.database}", style="dim")
    return text
