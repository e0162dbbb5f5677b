"""Describe Alembic operations in Django's words, with a note on those that need review.

``makemigrations`` describes the operations it is about to write, ``sqlmigrate`` introduces
each statement with the same text, and ``migrate --plan`` lists them for migration files.
"""

from __future__ import annotations

from dataclasses import dataclass

from alembic.operations import ops

ADD, REMOVE, ALTER, SQL = "+", "-", "~", "s"


@dataclass(frozen=True)
class Change:
    """One operation as a user reads it: ``+ Add column discount_rate to products``."""

    mark: str
    text: str
    fragment: str
    review: str | None = None


class DescribedSQLOp(ops.ExecuteSQLOp):
    """SQL that sqlmanage writes itself, carrying its own description (fills, enum types)."""

    def __init__(self, sql: str, change: Change):
        super().__init__(sql)
        self.change = change


def flatten(operations) -> list:
    """The leaf operations of an UpgradeOps/ModifyTableOps tree, in order."""
    leaves = []
    for operation in operations:
        if isinstance(operation, ops.OpContainer):
            leaves.extend(flatten(operation.ops))
        else:
            leaves.append(operation)
    return leaves


def describe(operation, new_tables: frozenset[str] = frozenset()) -> Change:
    """The Change for one leaf operation; ``new_tables`` are created in the same migration."""
    o = operation
    if isinstance(o, ops.CreateTableOp):
        return Change(ADD, f"Create table {o.table_name}", f"create_{o.table_name}")
    if isinstance(o, ops.DropTableOp):
        return Change(
            REMOVE,
            f"Delete table {o.table_name}",
            f"delete_{o.table_name}",
            "Drops the table and every row in it.",
        )
    if isinstance(o, ops.AddColumnOp):
        column = o.column
        review = None
        if not column.nullable and column.server_default is None and o.table_name not in new_tables:
            review = (
                "NOT NULL without a server default: fails on a table that has rows. Give it a "
                "server default, or add it nullable, fill it, then set NOT NULL."
            )
        return Change(
            ADD,
            f"Add column {column.name} to {o.table_name}",
            f"add_{o.table_name}_{column.name}",
            review,
        )
    if isinstance(o, ops.DropColumnOp):
        return Change(
            REMOVE,
            f"Remove column {o.column_name} from {o.table_name}",
            f"remove_{o.table_name}_{o.column_name}",
            "Drops the column and its data.",
        )
    if isinstance(o, ops.AlterColumnOp):
        return _describe_alter(o)
    if isinstance(o, ops.CreateIndexOp):
        review = None
        if o.table_name not in new_tables:
            review = "Builds the index on an existing table: on PostgreSQL this blocks writes."
        return Change(
            ADD,
            f"Create index {o.index_name} on {o.table_name}",
            _name(o.index_name, o.table_name),
            review,
        )
    if isinstance(o, ops.DropIndexOp):
        return Change(
            REMOVE,
            f"Remove index {o.index_name} from {o.table_name}",
            f"remove_{_name(o.index_name, o.table_name)}",
        )
    if isinstance(o, ops.CreateUniqueConstraintOp):
        return _added_constraint("unique constraint", o.constraint_name, o.table_name, "unique")
    if isinstance(o, ops.CreateForeignKeyOp):
        return _added_constraint("foreign key", o.constraint_name, o.source_table, "fk")
    if isinstance(o, ops.CreateCheckConstraintOp):
        return _added_constraint("check constraint", o.constraint_name, o.table_name, "check")
    if isinstance(o, ops.DropConstraintOp):
        return Change(
            REMOVE,
            f"Remove constraint {o.constraint_name} from {o.table_name}",
            f"remove_{o.table_name}_{o.constraint_name}",
        )
    if isinstance(o, ops.RenameTableOp):
        return Change(
            ALTER,
            f"Rename table {o.table_name} to {o.new_table_name}",
            f"rename_{o.table_name}_{o.new_table_name}",
        )
    if isinstance(o, DescribedSQLOp):
        return o.change
    if isinstance(o, ops.ExecuteSQLOp):
        return Change(SQL, "Raw SQL operation", "sql")
    if isinstance(o, ops.BulkInsertOp):
        return Change(SQL, f"Insert rows into {o.table.name}", f"insert_{o.table.name}")
    table = getattr(o, "table_name", None)
    name = type(o).__name__.removesuffix("Op")
    return Change(ALTER, f"{name} on {table}" if table else name, name.lower())


def _describe_alter(o) -> Change:
    details = []
    review = None
    fragment = f"alter_{o.table_name}_{o.column_name}"
    if o.modify_name is not None:
        fragment = f"rename_{o.table_name}_{o.modify_name}"
        details.append(f"rename to {o.modify_name}")
    if o.modify_type is not None:
        details.append(f"type {o.existing_type} -> {o.modify_type}")
        review = "Changes the column type: may lose data and rewrites the table on PostgreSQL."
    if o.modify_nullable is not None:
        details.append("NOT NULL" if not o.modify_nullable else "nullable")
        if not o.modify_nullable:
            review = review or "Sets NOT NULL: fails if rows hold NULL; scans the whole table."
    if o.modify_server_default is not False:
        details.append("server default")
    if o.modify_comment is not False:
        details.append("comment")
    suffix = f" ({', '.join(details)})" if details else ""
    return Change(
        ALTER, f"Alter column {o.column_name} on {o.table_name}{suffix}", fragment, review
    )


def _added_constraint(kind: str, name, table: str, suffix: str) -> Change:
    """A new constraint, named when it has a name, else by its table and kind."""
    what = f"Create {kind} {name} on {table}" if name else f"Create {kind} on {table}"
    return Change(ADD, what, f"add_{name}" if name else f"{table}_{suffix}")


def _name(name, table: str | None) -> str:
    return str(name) if name else f"{table}_index"


def describe_all(operations) -> list[Change]:
    """Describe every leaf operation of an UpgradeOps tree.

    Operations on a table created in the same migration give no name fragment: the
    migration is named after the table, as Django names it after the model.
    """
    leaves = flatten(operations)
    new_tables = frozenset(o.table_name for o in leaves if isinstance(o, ops.CreateTableOp))
    changes = []
    for operation in leaves:
        change = describe(operation, new_tables)
        if operation.info.get(
            "sqlmanage_review"
        ):  # set by online_safe: PostgreSQL's multi-step way
            change = Change(
                change.mark, change.text, change.fragment, operation.info["sqlmanage_review"]
            )
        if _table_of(operation) in new_tables and not isinstance(operation, ops.CreateTableOp):
            change = Change(change.mark, change.text, "", change.review)
        changes.append(change)
    return changes


def _table_of(operation) -> str | None:
    return getattr(operation, "table_name", None) or getattr(operation, "source_table", None)
