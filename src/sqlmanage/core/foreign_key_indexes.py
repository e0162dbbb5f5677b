"""MySQL and MariaDB create an index for a new foreign key and keep it when the key goes.

So the downgrade of "add a foreign key" left that index behind, and the schema after
``migrate -1`` was not the schema before. Where the upgrade adds a foreign key to an
existing table whose indexes do not already cover its columns, the downgrade now drops the
index the database made (it carries the foreign key's name).
"""

from __future__ import annotations

from alembic.operations import ops
from sqlalchemy import inspect


def drop_implicit_indexes(script, connection) -> None:
    if connection.dialect.name not in ("mysql", "mariadb"):
        return
    inspector = inspect(connection)
    existing_tables = set(inspector.get_table_names())
    for container in script.upgrade_ops.ops:
        if not isinstance(container, ops.ModifyTableOps) or container.table_name not in existing_tables:
            continue
        covered = [tuple(i["column_names"]) for i in inspector.get_indexes(container.table_name)]
        covered.append(tuple(inspector.get_pk_constraint(container.table_name)["constrained_columns"]))
        for operation in container.ops:
            if isinstance(operation, ops.CreateForeignKeyOp) and operation.constraint_name:
                columns = tuple(operation.local_cols)
                if not any(index[: len(columns)] == columns for index in covered):
                    _drop_index_after_key(script.downgrade_ops, container.table_name, operation)


def _drop_index_after_key(downgrade, table: str, key) -> None:
    for container in downgrade.ops:
        if not isinstance(container, ops.ModifyTableOps) or container.table_name != table:
            continue
        for position, operation in enumerate(container.ops):
            if isinstance(operation, ops.DropConstraintOp) and operation.constraint_name == key.constraint_name:
                container.ops.insert(position + 1, ops.DropIndexOp(key.constraint_name, table_name=table))
                return
