"""Django's makemigrations questions: renames, and a value for a new NOT NULL column.

Autogenerate sees a renamed column as a drop plus an add (losing the data), and writes a
NOT NULL column that fails on any table with rows. ``resolve_questions`` finds those cases
in the operations and asks a questioner (interactive in the command, or one that never
assumes a rename and refuses to guess a value), then rewrites the operations: a rename
becomes ``alter_column(new_column_name=...)`` / ``rename_table``; a one-off default becomes
the three-step pattern (add nullable, fill with ``op.execute``, set NOT NULL).
"""

from __future__ import annotations

from typing import Protocol

from alembic.autogenerate import renderers
from alembic.operations import ops
from sqlalchemy import literal

from sqlmanage.engine.alembic_internals import (
    knows_dropped_original,
    render_alter_column_with_new_name,
)
from sqlmanage.engine.autodetect.operations import SQL, Change, DescribedSQLOp
from sqlmanage.errors import InputRequired


class Questioner(Protocol):
    def rename_column(self, table: str, old: str, new: str, type_text: str) -> bool: ...

    def rename_table(self, old: str, new: str) -> bool: ...

    def not_null_value(self, table: str, column: str, type_text: str, adding: bool) -> object:
        """A Python value for the existing rows; raises to quit."""


class NonInteractiveQuestioner:
    """Off a terminal or with --noinput: assume no rename, and never guess a value."""

    def rename_column(self, table, old, new, type_text) -> bool:
        return False

    def rename_table(self, old, new) -> bool:
        return False

    def not_null_value(self, table, column, type_text, adding) -> object:
        what = (
            f"add the NOT NULL column {table}.{column} without a default"
            if adding
            else f"make {table}.{column} NOT NULL without a value for the rows that hold NULL"
        )
        raise InputRequired(
            f"It is impossible to {what}: the database needs something to put in the "
            "existing rows. Nothing was written.",
            hint="Give the column a server_default or make it nullable in the model, or run "
            "makemigrations on a terminal without --noinput to provide a one-off default.",
        )


@renderers.dispatch_for(ops.RenameTableOp)
def _render_rename_table(autogen_context, operation) -> str:
    """Alembic renders no rename_table of its own: autogenerate never produces one."""
    schema = f", schema={operation.schema!r}" if operation.schema else ""
    prefix = autogen_context.opts["alembic_module_prefix"]
    return f"{prefix}rename_table({operation.table_name!r}, {operation.new_table_name!r}{schema})"


render_alter_column_with_new_name()  # Alembic before 1.15.2 drops an answered rename


def type_text(type_, dialect) -> str:
    try:
        return str(type_.compile(dialect=dialect))
    except Exception:
        return repr(type_)


def resolve_questions(script, dialect, questioner: Questioner, existing_tables: set[str]) -> None:
    """Ask about renames and NOT NULL columns; rewrite ``script``'s operations to match."""
    upgrade = script.upgrade_ops
    changed = _rename_tables(upgrade, dialect, questioner)
    rewritten = []
    for operation in upgrade.ops:
        if isinstance(operation, ops.ModifyTableOps):
            pieces = _modify_table(operation, dialect, questioner, existing_tables)
            changed = changed or pieces != [operation]
            rewritten.extend(pieces)
        else:
            rewritten.append(operation)
    if changed:
        upgrade.ops = rewritten
        script.downgrade_ops = ops.DowngradeOps(ops=reverse(upgrade.ops))


def _rename_tables(upgrade, dialect, questioner) -> bool:
    """A dropped and a created table with the same columns: was it renamed?"""
    drops = [o for o in upgrade.ops if isinstance(o, ops.DropTableOp)]
    creates = [o for o in upgrade.ops if isinstance(o, ops.CreateTableOp)]
    changed = False
    for drop in drops:
        old_columns = _table_columns(drop, dialect)
        for create in creates:
            if old_columns is None or old_columns != _columns_of(create.columns, dialect):
                continue
            if questioner.rename_table(drop.table_name, create.table_name):
                index = upgrade.ops.index(create)
                upgrade.ops[index] = ops.RenameTableOp(
                    drop.table_name, create.table_name, schema=create.schema
                )
                upgrade.ops.remove(drop)
                creates.remove(create)
                changed = True
                break
    return changed


def _table_columns(drop, dialect) -> tuple | None:
    """The dropped table's columns, when autogenerate recorded them."""
    if not knows_dropped_original(drop):
        return None
    return _columns_of(drop.to_table().columns, dialect)


def _columns_of(columns, dialect) -> tuple:
    """Names and types as the database spells them, to compare reflected with declared."""
    from sqlalchemy import Column

    return tuple(
        sorted((c.name, type_text(c.type, dialect)) for c in columns if isinstance(c, Column))
    )


def _modify_table(container, dialect, questioner, existing_tables) -> list:
    """The container's operations with renames folded and NOT NULL additions made safe.

    A one-off default splits the container in three: the operations up to the nullable
    add, the UPDATE that fills it, and the rest starting with SET NOT NULL.
    """
    table = container.table_name
    operations = _rename_columns(container.ops, table, dialect, questioner)
    # A rename goes first and outside the batch block: a plain RENAME COLUMN in place
    # everywhere, where a batch operation on SQLite would rebuild the whole table.
    pieces: list = [o for o in operations if _is_rename(o)]
    operations = [o for o in operations if not _is_rename(o)]
    current: list = []
    for operation in operations:
        needs_value = (
            table in existing_tables
            and isinstance(operation, ops.AddColumnOp)
            and not operation.column.nullable
            and operation.column.server_default is None
            and not operation.column.primary_key
        ) or (
            table in existing_tables
            and isinstance(operation, ops.AlterColumnOp)
            and operation.modify_nullable is False
            and operation.existing_nullable is not False
            and operation.modify_server_default in (False, None)
        )
        if not needs_value:
            current.append(operation)
            continue
        adding = isinstance(operation, ops.AddColumnOp)
        column_name = operation.column.name if adding else operation.column_name
        column_type = (
            operation.column.type if adding else (operation.modify_type or operation.existing_type)
        )
        value = questioner.not_null_value(
            table, column_name, type_text(column_type, dialect), adding
        )
        if adding:
            nullable = operation.column._copy()
            nullable.nullable = True
            current.append(ops.AddColumnOp(table, nullable, schema=operation.schema))
            operation = ops.AlterColumnOp(
                table,
                column_name,
                modify_nullable=False,
                existing_type=column_type,
                existing_nullable=True,
                schema=operation.schema,
            )
        pieces.append(ops.ModifyTableOps(table, current, schema=container.schema))
        pieces.append(_fill(table, column_name, column_type, value, dialect))
        current = [operation]
    if current:
        pieces.append(ops.ModifyTableOps(table, current, schema=container.schema))
    return [p for p in pieces if not isinstance(p, ops.ModifyTableOps) or p.ops] or [container]


def _is_rename(operation) -> bool:
    return isinstance(operation, ops.AlterColumnOp) and operation.modify_name is not None


def _rename_columns(operations, table, dialect, questioner) -> list:
    """A dropped and an added column of one type in one table: was it renamed?"""
    operations = list(operations)
    drops = [o for o in operations if isinstance(o, ops.DropColumnOp)]
    adds = [o for o in operations if isinstance(o, ops.AddColumnOp)]
    for drop in drops:
        original = drop.to_column() if knows_dropped_original(drop) else None
        if original is None:
            continue
        old_type = type_text(original.type, dialect)
        for add in adds:
            if type_text(add.column.type, dialect) != old_type:
                continue
            if questioner.rename_column(table, drop.column_name, add.column.name, old_type):
                operations[operations.index(add)] = ops.AlterColumnOp(
                    table,
                    drop.column_name,
                    modify_name=add.column.name,
                    existing_type=original.type,
                    existing_nullable=original.nullable,
                    existing_server_default=original.server_default,
                    schema=add.schema,
                )
                operations.remove(drop)
                adds.remove(add)
                break
    return operations


class FillNullsOp(DescribedSQLOp):
    """``UPDATE table SET column = value WHERE column IS NULL``: step two of the pattern.

    Rendered as SQLAlchemy Core with the value as a Python literal, so the migration works
    on every database, whichever one it was generated against.
    """

    def __init__(self, table: str, column: str, value: object, sql: str):
        super().__init__(
            sql, Change(SQL, f"Fill {table}.{column} with {value!r} where it is NULL", "")
        )
        self.table_name, self.column_name, self.value = table, column, value


@renderers.dispatch_for(FillNullsOp)
def _render_fill(autogen_context, operation) -> str:
    sa_prefix = autogen_context.opts["sqlalchemy_module_prefix"]
    op_prefix = autogen_context.opts["alembic_module_prefix"]
    table = (
        f"{sa_prefix}table({operation.table_name!r}, {sa_prefix}column({operation.column_name!r}))"
    )
    column = f"{sa_prefix}column({operation.column_name!r})"
    # The value as a typed literal: sa.column() has no type, and offline SQL (sqlmigrate,
    # --sql) cannot render a value of no type.
    return (
        f"{op_prefix}execute({table}.update().where({column}.is_(None))"
        f".values({{{operation.column_name!r}: {sa_prefix}literal({operation.value!r})}}))"
    )


def _fill(table, column, column_type, value, dialect) -> FillNullsOp:
    preparer = dialect.identifier_preparer
    rendered = literal(value, column_type).compile(
        dialect=dialect, compile_kwargs={"literal_binds": True}
    )
    quoted_column = preparer.quote(column)
    sql = f"UPDATE {preparer.quote(table)} SET {quoted_column} = {rendered} WHERE {quoted_column} IS NULL"
    return FillNullsOp(table, column, value, sql)


def reverse(operations) -> list:
    """The downgrade of ``operations``: renames reversed by name, fills left undone."""
    undone: list = []
    for operation in reversed(operations):
        if isinstance(operation, ops.ModifyTableOps):
            inner = reverse(operation.ops)
            if inner:
                undone.append(
                    ops.ModifyTableOps(operation.table_name, inner, schema=operation.schema)
                )
        elif isinstance(operation, DescribedSQLOp):
            continue
        elif isinstance(operation, ops.RenameTableOp):
            undone.append(
                ops.RenameTableOp(
                    operation.new_table_name, operation.table_name, schema=operation.schema
                )
            )
        elif isinstance(operation, ops.AlterColumnOp) and operation.modify_name:
            undone.append(
                ops.AlterColumnOp(
                    operation.table_name,
                    operation.modify_name,
                    modify_name=operation.column_name,
                    existing_type=operation.existing_type,
                    existing_nullable=operation.existing_nullable,
                    existing_server_default=operation.existing_server_default,
                    schema=operation.schema,
                )
            )
        else:
            undone.append(operation.reverse())
    return undone
