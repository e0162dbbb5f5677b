"""The ready-made migration checks: one head, every migration up and down, models in step.

Each check is a plain function that returns quietly or raises ``MigrationCheckFailed``
with a message that explains the failure the way ``manage.py`` would: the migrations
involved, the database's own error, the operations that are missing. The pytest plugin
runs them as tests; they work on any project and database URL.
"""

from __future__ import annotations

import textwrap

from sqlmanage.errors import MigrationFailed, SqlmanageError


class MigrationCheckFailed(AssertionError):
    """A migration check failed; the message says why, and what to do."""


def single_head(project) -> None:
    """The history has exactly one head (two mean a merge migration is missing)."""
    history = _history(project)
    if not history.heads:
        raise MigrationCheckFailed(
            f"The migration history of '{project.label}' is empty.\n"
            "Run 'python manage.py makemigrations' to make the first migration."
        )
    for tree in history.trees:  # several trees (Alembic's multiple bases) have a head each
        heads = history.tree_heads(tree)
        if len(heads) < 2:
            continue
        lines = []
        for head in heads:
            migration = history.by_id[head]
            parents = ", ".join(
                history.by_id[p].name for p in migration.parents if p in history.by_id
            )
            lines.append(f"  {migration.name}" + (f" (after {parents})" if parents else ""))
        merge = "--merge" if len(history.trees) == 1 else f"{tree} --merge"
        raise MigrationCheckFailed(
            f"The migration history of '{tree}' has {len(heads)} heads; it "
            "must have one:\n" + "\n".join(lines) + "\n"
            f"Run 'python manage.py makemigrations {merge}' to merge them."
        )


def up_and_down(project) -> None:
    """Each migration, in order, applies, unapplies to the schema before it, and applies again.

    ``project`` points at an empty database. The schema after each downgrade is compared
    with the schema before the upgrade, so a downgrade that leaves a column, an index or a
    table behind fails here, not on a production rollback.
    """
    history = _history(project)
    _require_single_head(history)
    for migration in history.migrations:
        before = schema_snapshot(project)
        _step(project, migration, "+1", "Applying")
        after = schema_snapshot(project)
        _step(project, migration, "-1", "Unapplying")
        restored = schema_snapshot(project)
        if restored != before:
            raise MigrationCheckFailed(
                f"{migration.name} does not downgrade cleanly: after its downgrade the schema is "
                "not what it was before its upgrade:\n"
                + "\n".join(f"  {line}" for line in schema_differences(before, restored))
                + f"\nMake downgrade() in {migration.path.name} undo everything upgrade() does."
            )
        _step(project, migration, "+1", "Reapplying")
        again = schema_snapshot(project)
        if again != after:
            raise MigrationCheckFailed(
                f"{migration.name} gives another schema when applied again after its downgrade:\n"
                + "\n".join(f"  {line}" for line in schema_differences(after, again))
            )


def models_match(project) -> None:
    """A fresh database migrated to head has exactly the models' schema: no change is unwritten.

    The comparison is makemigrations' own, so this fails exactly when
    ``manage.py makemigrations --check`` would.
    """
    from sqlmanage.engine.apply import apply_migrations
    from sqlmanage.engine.autodetect.detect import detect_changes
    from sqlmanage.engine.autodetect.operations import describe_all

    history = _history(project)
    _require_single_head(history)
    try:
        apply_migrations(project, None, on_event=_ignore)
        script, template_args = detect_changes(project)
    except SqlmanageError as exc:
        raise MigrationCheckFailed(explain(exc)) from exc
    if script.upgrade_ops.is_empty():
        return
    described = "\n".join(f"  {c.mark} {c.text}" for c in describe_all(script.upgrade_ops.ops))
    code = _indented_code(template_args.get("upgrades", ""))
    raise MigrationCheckFailed(
        f"Your models in '{project.label}' have changes that are not yet reflected in a "
        f"migration:\n{described}\n"
        "Run 'python manage.py makemigrations' to make a migration for them. It would hold:\n"
        f"{code}"
    )


def schema_snapshot(project) -> dict:
    """What a migration can change, read from the database: tables, columns, keys, indexes.

    The version table and sqlmanage's audit table are left out. Names of unnamed
    constraints are not compared (SQLite invents them when batch mode rebuilds a table).
    """
    import sqlalchemy as sa

    from sqlmanage.engine.audit import AUDIT_TABLE
    from sqlmanage.testing.migrator import sync_engine

    bookkeeping = {project.settings.version_table, AUDIT_TABLE}
    engine = sync_engine(project.url.render_as_string(hide_password=False))
    snapshot: dict = {}
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            dialect = connection.dialect
            for table in sorted(inspector.get_table_names()):
                if table in bookkeeping:
                    continue
                for column in inspector.get_columns(table):
                    null = "NULL" if column["nullable"] else "NOT NULL"
                    snapshot[f"column {table}.{column['name']}"] = (
                        f"{_type(column['type'], dialect)} {null}"
                    )
                primary = inspector.get_pk_constraint(table).get("constrained_columns") or []
                if primary:
                    snapshot[f"primary key of {table}"] = f"({', '.join(primary)})"
                for key in inspector.get_foreign_keys(table):
                    columns = ", ".join(key["constrained_columns"])
                    target = f"{key['referred_table']}({', '.join(key['referred_columns'])})"
                    snapshot[f"foreign key {table}({columns})"] = target
                for index in inspector.get_indexes(table):
                    unique = "unique " if index.get("unique") else ""
                    columns = ", ".join(str(c) for c in index["column_names"])
                    snapshot[f"index {index['name']} on {table}"] = f"{unique}({columns})"
                for unique in inspector.get_unique_constraints(table):
                    snapshot[
                        f"unique constraint on {table}({', '.join(unique['column_names'])})"
                    ] = ""
            if dialect.name == "postgresql":
                for enum in inspector.get_enums():
                    snapshot[f"enum type {enum['name']}"] = f"({', '.join(enum['labels'])})"
    finally:
        engine.dispose()
    return snapshot


def schema_differences(expected: dict, found: dict) -> list[str]:
    """Readable lines for what ``found`` has that ``expected`` has not, and the other way."""
    lines = []
    for key in sorted(found.keys() - expected.keys()):
        lines.append(f"left behind: {key} {found[key]}".rstrip())
    for key in sorted(expected.keys() - found.keys()):
        lines.append(f"missing: {key} {expected[key]}".rstrip())
    for key in sorted(k for k in expected.keys() & found.keys() if expected[k] != found[k]):
        lines.append(f"changed: {key}: {expected[key]} -> {found[key]}")
    return lines


def _indented_code(body: str) -> str:
    """Alembic's rendered upgrade() body (its first line unindented), at four spaces."""
    lines = [
        line for line in textwrap.dedent("    " + body).splitlines() if not line.startswith("# ###")
    ]
    return textwrap.indent("\n".join(lines).strip("\n"), "    ")


def _type(type_, dialect) -> str:
    try:
        return type_.compile(dialect=dialect)
    except Exception:  # a type the dialect reflects but cannot render: its repr still compares
        return repr(type_)


def _step(project, migration, target: str, action: str) -> None:
    """Move one step and insist that it was ``migration`` that moved."""
    from sqlmanage.engine.apply import apply_migrations

    try:
        plan = apply_migrations(project, target, on_event=_ignore)
    except SqlmanageError as exc:
        raise MigrationCheckFailed(
            f"{migration.name} does not {'upgrade' if target == '+1' else 'downgrade'} cleanly:\n"
            f"  {action} {migration.name} failed: {_reason(exc)}"
        ) from exc
    moved = [step.migration.name for step in plan.steps]
    if moved != [migration.name]:
        raise MigrationCheckFailed(
            f"{action} {migration.name} moved {', '.join(moved) or 'nothing'} instead."
        )


def _reason(exc: SqlmanageError) -> str:
    """The database's or the migration's own error, without the 'migrate' advice around it."""
    if isinstance(exc, MigrationFailed):
        return exc.reason
    return explain(exc)


def _history(project):
    try:
        return project.history
    except SqlmanageError as exc:
        raise MigrationCheckFailed(explain(exc)) from exc


def _require_single_head(history) -> None:
    try:
        history.require_single_head()
    except SqlmanageError as exc:
        raise MigrationCheckFailed(explain(exc)) from exc


def _ignore(*event) -> None:
    """Checks run quietly; a failure raises."""


def explain(exc: SqlmanageError) -> str:
    """A sqlmanage error as a test failure reads it: the message, and the hint where it helps.

    A failed migration's hint is about re-running migrate, which a test database never needs.
    """
    from sqlmanage.errors import MigrationFailed

    if exc.hint and not isinstance(exc, MigrationFailed):
        return f"{exc.message}\n{exc.hint}"
    return exc.message
