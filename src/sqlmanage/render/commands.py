"""Django-style lines of the smaller commands: squashmigrations, startproject, shell's banner,
``migrate --prune`` and ``migrate --all-databases``. Each function takes the data a back-end
returned and yields ``(text, style)`` lines; the command writes them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from sqlmanage.render import printable

Line = tuple[str, "str | None"]


def shown_path(path: Path) -> str:
    """A path as the user would type it: relative to the current folder when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path(os.getcwd()).resolve()))
    except ValueError:
        return str(path)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def squash_planned(squash) -> Iterator[Line]:
    """What squashmigrations is about to squash (before Django's confirmation)."""
    yield "Will squash the following migrations:", "heading"
    for migration in squash.replaced:
        yield f" - {printable(migration.name)}", None


def squash_done(squash, dry_run: bool) -> Iterator[Line]:
    """The squashed migration, its operations, where the originals went, and what to port."""
    verb = "Would create" if dry_run else "Created"
    yield f"{verb} new squashed migration {shown_path(squash.migration.path)}", "success"
    for change in squash.migration.changes:
        yield f"    {change.mark} {change.text}", None
    moved = "Would move" if dry_run else "Moved"
    replaced = shown_path(squash.replaced_dir)
    yield f"{moved} the {len(squash.replaced)} replaced migrations to {replaced}/", None
    yield (
        (
            "  Commit the squashed migration and the replaced folder. New databases run the squashed\n"
            "  migration alone; a database between the replaced migrations runs the rest of them\n"
            f"  first. Once every database has applied {squash.migration.name}, delete\n"
            f"  {replaced}/ (keep the 'replaces' line)."
        ),
        None,
    )
    if squash.data_migrations:
        yield "Manual porting required", "warning"
        yield (
            (
                "  These migrations run data operations (op.execute, ...) that the squashed migration\n"
                "  does not carry over; copy them by hand if new databases need them:"
            ),
            None,
        )
        for migration in squash.data_migrations:
            yield f"    {printable(migration.name)}", None


def project_started(created, verbosity: int, needs_async_driver: bool) -> Iterator[Line]:
    """startproject's report and Django's next steps."""
    shown = shown_path(created.top_dir)
    yield f"Created the project '{created.name}' in {created.top_dir}", "success"
    if verbosity >= 2:
        for path in created.files:
            yield f"  {path}", None
    yield "", None
    yield "Next steps:", "heading"
    if shown != ".":
        yield f"  cd {shown}", None
    if needs_async_driver:
        yield "  pip install 'sqlmanage[async]'", None
    yield (
        f"  # add your models to {created.name}/models/ (e.g. {created.name}/models/catalogue.py)",
        None,
    )
    yield "  python manage.py makemigrations", None
    yield "  python manage.py migrate", None


def shell_banner(namespace_size: int, import_lines: list[str], notes, verbosity: int):
    """Django 5.2's shell banner: a count at -v 1, the import lines at -v 2."""
    message = f"{_plural(namespace_size, 'object')} imported automatically"
    if verbosity >= 2:
        yield f"{message}:\n", "success"
        for line in import_lines:
            yield f"  {line}", "success"
    else:
        yield f"{message} (use -v 2 for details).", "success"
    for note in notes:
        yield note, None
    yield "", None


def pruned(label: str, revisions, standing) -> Iterator[Line]:
    """Django's lines under ``Pruning migrations:`` for the records deleted."""
    for revision in revisions:
        yield f"  Pruning {label}.{revision} OK", "success"
    if not revisions and not standing:
        yield "  No migrations to prune.", None


def prune_question(revisions) -> str:
    return (
        f"Delete the records of {_plural(len(revisions), 'migration')} whose files are gone "
        f"({', '.join(revisions)})?"
    )


def all_databases_heading(aliases) -> str:
    return f"Migrating {_plural(len(aliases), 'database')} in parallel: {', '.join(aliases)}"


def database_done(outcome) -> str:
    """One database of ``--all-databases`` as it finishes (-v 2)."""
    names = ", ".join(outcome.migrations) or "nothing"
    detail = f": {outcome.error}" if outcome.error else ""
    return f"  {outcome.alias}: applied {names}; {outcome.result}{detail} ({outcome.seconds:.2f}s)"


def database_notes(outcome, with_traceback: bool) -> Iterator[Line]:
    """A database's warnings, and its traceback with --traceback (for stderr)."""
    for warning in outcome.warnings:
        yield f"Warning ({outcome.alias}): {warning}", "warning"
    if with_traceback and outcome.traceback:
        yield f"Traceback of '{outcome.alias}':\n{outcome.traceback}", None
