"""MySQL and MariaDB create an index for a new foreign key and keep it when the key goes.

So the downgrade of "add a foreign key" left that index behind, and the schema after
``migrate -1`` was not the schema before. Where the upgrade adds a foreign key to an
existing table whose indexes do not already cover its columns, the downgrade now drops the
index the database made (it carries the foreign key's name). Whatever database the
migration is generated on: the drop runs on MySQL and MariaDB only (the file says so).
"""

from __future__ import annotations

from alembic.autogenerate import renderers
from alembic.operations import ops
from sqlalchemy import inspect

from sqlmanage.engine.autodetect.operations import REMOVE, Change, DescribedSQLOp


class DropMySQLIndexOp(DescribedSQLOp):
    """The index MySQL/MariaDB made for a foreign key; the other databases have none.

    Not a DropIndexOp: nothing that rewrites index operations (online-safe forms) may
    move it into a batch block, where its condition cannot stand.
    """

    def __init__(self, index_name: str, table_name: str):
        super().__init__(
            f"DROP INDEX {index_name} ON {table_name}",
            Change(REMOVE, f"Remove index {index_name} from {table_name} (MySQL, MariaDB)", ""),
        )
        self.index_name, self.table_name = index_name, table_name


@renderers.dispatch_for(DropMySQLIndexOp)
def _render(autogen_context, operation) -> str:
    prefix = autogen_context.opts["alembic_module_prefix"]
    return (
        f'if {prefix}get_context().dialect.name in ("mysql", "mariadb"):\n'
        f"    {prefix}drop_index({operation.index_name!r}, table_name={operation.table_name!r})"
    )


def drop_implicit_indexes(script, connection) -> None:
    inspector = inspect(connection)
    existing_tables = set(inspector.get_table_names())
    for container in script.upgrade_ops.ops:
        if (
            not isinstance(container, ops.ModifyTableOps)
            or container.table_name not in existing_tables
        ):
            continue
        covered = [tuple(i["column_names"]) for i in inspector.get_indexes(container.table_name)]
        covered.append(
            tuple(inspector.get_pk_constraint(container.table_name)["constrained_columns"])
        )
        for operation in container.ops:
            if isinstance(operation, ops.CreateForeignKeyOp) and operation.constraint_name:
                columns = tuple(operation.local_cols)
                if not any(index[: len(columns)] == columns for index in covered):
                    _drop_index_after_key(script.downgrade_ops, container.table_name, operation)


def _drop_index_after_key(downgrade, table: str, key) -> None:
    """After the block that drops the key (outside it: batch blocks hold no conditions)."""
    for position, container in enumerate(downgrade.ops):
        if not isinstance(container, ops.ModifyTableOps) or container.table_name != table:
            continue
        if any(
            isinstance(o, ops.DropConstraintOp) and o.constraint_name == key.constraint_name
            for o in container.ops
        ):
            downgrade.ops.insert(
                position + 1, DropMySQLIndexOp(key.constraint_name, table_name=table)
            )
            return
