"""``migrate --fake-initial``: whether the first migration already stands in the database.

Django's rule (``MigrationExecutor.detect_soft_applied``): an initial migration counts as
applied when every table it creates, and every column it adds, already exists; Django checks
only names. A migration that creates nothing is never faked, and neither is one whose tables
exist only in part: it runs, and fails as it would without the flag.
"""

from __future__ import annotations

from pathlib import Path

from sqlmanage.engine.plan import plan_migrations
from sqlmanage.engine.status import read_database_heads


def created_objects(path: Path) -> tuple[set[str], set[tuple[str, str]]]:
    """The tables a migration's ``upgrade()`` creates and the (table, column) pairs it adds."""
    from alembic.operations import ops

    from sqlmanage.engine.autodetect.describe import upgrade_operations

    tables: set[str] = set()
    columns: set[tuple[str, str]] = set()
    for operation in upgrade_operations(path):
        if isinstance(operation, ops.CreateTableOp):
            tables.add(operation.table_name)
        elif isinstance(operation, ops.AddColumnOp):
            columns.add((operation.table_name, operation.column.name))
    return tables, columns


def initial_to_fake(project, target: str | None):
    """The initial migration that ``--fake-initial`` records without running, or None.

    Only a database with nothing recorded whose plan starts with a root migration qualifies.
    """
    from sqlalchemy import inspect

    from sqlmanage.database import connect, is_empty_sqlite

    history = project.history
    heads = read_database_heads(project)
    if heads or not history.exists or is_empty_sqlite(project.url):
        return None
    plan = plan_migrations(history, heads, target)
    if not plan.steps or not plan.steps[0].forward or plan.steps[0].migration.parents:
        return None
    migration = plan.steps[0].migration
    tables, columns = created_objects(migration.path)
    if not tables and not columns:
        return None
    schema = project.settings.version_table_schema

    def exists(connection) -> bool:
        inspector = inspect(connection)
        present = {name.casefold() for name in inspector.get_table_names(schema=schema)}
        if any(table.casefold() not in present for table in tables | {t for t, _ in columns}):
            return False
        for table, column in columns:
            names = {c["name"].casefold() for c in inspector.get_columns(table, schema=schema)}
            if column.casefold() not in names:
                return False
        return True

    return migration if connect(project.url, exists) else None
