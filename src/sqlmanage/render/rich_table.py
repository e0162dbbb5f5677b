"""Rich tables for a terminal: ``showmigrations`` as a newcomer wants to read it."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from sqlmanage.render import printable


def showmigrations(status, plan: bool, verbosity: int):
    """A table of migrations (apply order) and a summary line, as Rich renderables."""
    table = Table(title=Text(f"Migrations for {status.label}", style="bold"), title_justify="left")
    table.add_column("", width=3, no_wrap=True)
    table.add_column("Migration", style="bold", no_wrap=True)
    table.add_column("Message")
    table.add_column("Created", no_wrap=True)
    if verbosity >= 2:
        table.add_column("Applied (UTC)", no_wrap=True)
        table.add_column("Parents")
        table.add_column("Notes")
    names = {s.migration.revision: s.migration.name for s in status.migrations}
    heads = set(status.heads)
    db_heads = set(status.database_heads)
    for state in status.migrations:
        migration = state.migration
        if state.changed or state.half_applied:
            mark = Text("[!]", style="red bold")
        else:
            mark = (
                Text("[X]", style="green") if state.applied
                else Text("[-]", style="yellow") if state.partly
                else Text("[ ]", style="yellow")
            )
        row = [
            mark,
            Text(printable(migration.name)),
            Text(printable(migration.message)),
            Text(f"{migration.created:%Y-%m-%d %H:%M}" if migration.created else ""),
        ]
        if verbosity >= 2:
            applied_at = f"{state.applied_at:%Y-%m-%d %H:%M}" if state.applied_at else ""
            row.append(Text(applied_at if state.applied_at or not state.applied else "not verified"))
            notes = []
            if state.changed:
                notes.append("file changed since applied")
            if state.half_applied:
                notes.append("cut off while it ran: may be half-applied")
            if state.partly:
                notes.append(f"{state.partly[0]} of {state.partly[1]} squashed migrations applied")
            if migration.is_merge:
                notes.append("merge")
            if migration.revision in db_heads:
                notes.append("database is here")
            if migration.revision in heads:
                notes.append("head")
            row.append(Text(", ".join(names.get(p, p) for p in migration.parents)))
            row.append(Text(", ".join(notes)))
        table.add_row(*row)
    for revision in status.missing_files:
        row = [Text("[?]", style="red"), Text(printable(revision), style="red"),
               Text("recorded in the database; no migration file", style="red"), Text("")]
        if verbosity >= 2:
            row += [Text(""), Text(""), Text("")]
        table.add_row(*row)
    return table, summary(status, names)


def summary(status, names: dict[str, str]) -> Text:
    def named(revisions):
        return ", ".join(printable(names.get(r, r)) for r in revisions) or "nothing applied"

    text = Text()
    text.append(f"{status.applied_count} applied", style="green")
    text.append(", ")
    text.append(f"{status.pending_count} pending", style="yellow" if status.pending_count else "")
    text.append(f" · database at {named(status.database_heads)}")
    text.append(f" · head is {named(status.heads) if status.heads else 'empty history'}")
    text.append(f"\n{status.database}", style="dim")
    return text
