"""PostgreSQL native enum types: created, extended and dropped by the migration itself.

Alembic's autogenerate leaves them to chance: ``drop_table`` leaves the type behind (so the
next upgrade fails with "type already exists"), ``add_column`` does not create it, and a new
value in the Python enum is not noticed at all. After autogenerate, sqlmanage compares the
models' enum types with the database's and adds the SQL that keeps them in step, both ways.
That SQL runs on PostgreSQL only (the file says so), so the migration still applies on the
other databases.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from alembic.autogenerate import renderers
from alembic.operations import ops
from sqlalchemy import Enum, text

from sqlmanage.engine.autodetect.operations import ADD, ALTER, REMOVE, Change, DescribedSQLOp


@dataclass
class EnumUse:
    """An enum type, its labels in order, and the columns that use it."""

    labels: tuple[str, ...]
    columns: list[tuple[str, str, str | None]] = field(default_factory=list)


def model_enums(metadata_list) -> dict[str, EnumUse]:
    found: dict[str, EnumUse] = {}
    for metadata in metadata_list:
        for table in metadata.tables.values():
            for column in table.columns:
                type_ = column.type
                if isinstance(type_, Enum) and type_.native_enum and type_.name:
                    use = found.setdefault(type_.name, EnumUse(tuple(type_.enums)))
                    use.columns.append((table.name, column.name, None))
    return found


def database_enums(connection) -> dict[str, EnumUse]:
    """Enum types of the current schema, their labels, and the columns (with defaults) using them."""
    found: dict[str, EnumUse] = {}
    labels = connection.execute(
        text(
            "SELECT t.typname, e.enumlabel FROM pg_type t "
            "JOIN pg_enum e ON e.enumtypid = t.oid "
            "JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname = current_schema() ORDER BY t.typname, e.enumsortorder"
        )
    )
    for name, label in labels:
        use = found.setdefault(name, EnumUse(()))
        use.labels += (label,)
    columns = connection.execute(
        text(
            "SELECT t.typname, c.relname, a.attname, pg_get_expr(d.adbin, d.adrelid) "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
            "WHERE t.typtype = 'e' AND n.nspname = current_schema() AND c.relkind = 'r' "
            "AND NOT a.attisdropped"
        )
    )
    for name, table, column, default in columns:
        if name in found:
            found[name].columns.append((table, column, default))
    return found


def keep_enums_in_step(script, connection, metadata_list) -> None:
    """Add the enum type operations that Alembic leaves out, to upgrade and downgrade."""
    if connection.dialect.name != "postgresql":
        return
    wanted = model_enums(metadata_list)
    existing = database_enums(connection)
    upgrade, downgrade = script.upgrade_ops.ops, script.downgrade_ops.ops
    changed = False
    for name, use in wanted.items():
        if name not in existing:
            upgrade.insert(0, _create(name, use.labels))
            downgrade.append(_drop(name))
            changed = True
        elif existing[name].labels != use.labels:
            upgrade.insert(0, _change(name, existing[name], use.labels))
            downgrade.append(
                _change(name, existing[name], existing[name].labels, current=use.labels)
            )
            _alter_columns(script, metadata_list, name, existing[name].labels)
            changed = True
    for name, use in existing.items():
        if name not in wanted:
            upgrade.append(_drop(name))
            downgrade.insert(0, _create(name, use.labels))
            changed = True
    if changed or any(isinstance(o, ops.CreateTableOp) for o in upgrade + downgrade):
        for operation in upgrade + downgrade:
            if isinstance(operation, ops.CreateTableOp):
                _leave_types_to_us(operation)


def _alter_columns(script, metadata_list, name: str, old_labels) -> None:
    """The columns of a changed enum get the new labels too, for the other databases.

    On PostgreSQL the type's own SQL does the work (the column keeps its type); on MariaDB
    the column is an ``ENUM(...)`` of its own and on SQLite a VARCHAR sized to the longest
    label, so the same file alters them there.
    """
    from sqlalchemy import Column

    altered = {
        (c.table_name, o.column_name)
        for c in script.upgrade_ops.ops
        if isinstance(c, ops.ModifyTableOps)
        for o in c.ops
        if isinstance(o, ops.AlterColumnOp)
    }
    for metadata in metadata_list:
        for table in metadata.tables.values():
            for column in table.columns:
                type_ = column.type
                if (
                    not (
                        isinstance(column, Column)
                        and isinstance(type_, Enum)
                        and type_.native_enum
                        and type_.name == name
                    )
                    or (table.name, column.name) in altered
                ):
                    continue
                old = Enum(*old_labels, name=name)
                script.upgrade_ops.ops.append(_retype(table, column, old, type_))
                script.downgrade_ops.ops.insert(0, _retype(table, column, type_, old))


def _leave_types_to_us(create_table) -> None:
    """Tables never create enum types here: the migration's own CREATE TYPE does, once.

    Left to SQLAlchemy, ``create_table`` emits CREATE TYPE for every enum column, which
    fails for a type that another table already uses.
    """
    from sqlalchemy import Column
    from sqlalchemy.dialects import postgresql

    for column in create_table.columns:
        type_ = getattr(column, "type", None)
        if (
            isinstance(column, Column)
            and isinstance(type_, Enum)
            and type_.native_enum
            and type_.name
        ):
            column.type = postgresql.ENUM(*type_.enums, name=type_.name, create_type=False)


class PostgresSQLOp(DescribedSQLOp):
    """Enum type SQL: PostgreSQL's own, skipped on the other databases."""


@renderers.dispatch_for(PostgresSQLOp)
def _render_postgres_only(autogen_context, operation) -> str:
    op_prefix = autogen_context.opts["alembic_module_prefix"]
    return (
        f'if {op_prefix}get_context().dialect.name == "postgresql":\n'
        f"    {op_prefix}execute({operation.sqltext!r})"
    )


def _labels(labels) -> str:
    return ", ".join("'" + label.replace("'", "''") + "'" for label in labels)


def _create(name: str, labels) -> DescribedSQLOp:
    return PostgresSQLOp(
        f'CREATE TYPE "{name}" AS ENUM ({_labels(labels)})',
        Change(ADD, f"Create enum type {name} ({', '.join(labels)})", ""),
    )


def _drop(name: str) -> DescribedSQLOp:
    return PostgresSQLOp(
        f'DROP TYPE IF EXISTS "{name}"', Change(REMOVE, f"Drop enum type {name}", "")
    )


def _change(name: str, use: EnumUse, labels, current=None) -> DescribedSQLOp:
    """New labels appended in place (ADD VALUE); anything else rebuilds the type.

    ``current`` is what the type holds when this runs (for the downgrade: the new labels).
    """
    current = tuple(current) if current is not None else use.labels
    labels = tuple(labels)
    if labels[: len(current)] == current:
        statements = [
            f"ALTER TYPE \"{name}\" ADD VALUE IF NOT EXISTS '{label}'"
            for label in labels[len(current) :]
        ]
        added = ", ".join(labels[len(current) :])
        change = Change(ALTER, f"Add {added} to enum type {name}", f"alter_{name}")
    else:
        statements = _rebuild(name, use, labels)
        change = Change(
            ALTER,
            f"Rebuild enum type {name} as ({', '.join(labels)})",
            f"alter_{name}",
            "Rebuilds the type and rewrites every column that uses it; rows holding a removed "
            "value make it fail.",
        )
    return PostgresSQLOp(";\n".join(statements), change)


def _rebuild(name: str, use: EnumUse, labels) -> list[str]:
    old = f"{name}_old"
    statements = [
        f'ALTER TYPE "{name}" RENAME TO "{old}"',
        f'CREATE TYPE "{name}" AS ENUM ({_labels(labels)})',
    ]
    for table, column, default in use.columns:
        if default is not None:
            statements.append(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" DROP DEFAULT')
        statements.append(
            f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE "{name}" USING "{column}"::text::"{name}"'
        )
        if default is not None:
            statements.append(
                f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET DEFAULT {default.replace(old, name)}'
            )
    statements.append(f'DROP TYPE "{old}"')
    return statements


def _retype(table, column, from_type, to_type):
    """An ALTER COLUMN ... TYPE of one column from one enum type to another."""
    alter = ops.AlterColumnOp(
        table.name,
        column.name,
        schema=table.schema,
        modify_type=to_type,
        existing_type=from_type,
        existing_nullable=column.nullable,
        existing_server_default=column.server_default,
    )
    return ops.ModifyTableOps(table.name, [alter], schema=table.schema)
