"""Migrations that a busy PostgreSQL keeps serving through: the safe form of each change.

Alembic writes what holds a table's lock for a whole scan or build: ``CREATE INDEX`` (writes
wait for the build), ``ADD FOREIGN KEY`` / ``ADD CHECK`` / ``SET NOT NULL`` (validated under
the lock) and ``ADD UNIQUE`` (its index built under the lock). After autogenerate, on
PostgreSQL, ``make_online_safe`` replaces each such operation on a table that already exists
with the form a careful DBA writes: indexes built and dropped ``CONCURRENTLY`` outside the
transaction (an INVALID index left by a cut-off build is dropped first, so a rerun succeeds),
constraints added ``NOT VALID`` and validated in a transaction of their own, NOT NULL through
a validated CHECK, UNIQUE through an index built concurrently. The file stays ordinary
Alembic code, portable: the PostgreSQL form sits under a dialect check, the other branch is
exactly what Alembic writes for MySQL/MariaDB and SQLite. What has no safe form (a type
change that rewrites the table, a volatile default, a rename or drop that running code may
still read) is flagged in the file's review notes, with the multi-step way to do it instead.
"""

from __future__ import annotations

from io import StringIO

from alembic.autogenerate import renderers
from alembic.operations import ops

from sqlmanage.engine.alembic_internals import render_operation
from sqlmanage.engine.autodetect.operations import Change, DescribedSQLOp, describe

REVIEW = (
    "sqlmanage_review"  # key in an operation's ``info``: a review note that replaces describe()'s
)

GUARD = 'if op.get_context().dialect.name == "postgresql":'
AUTOCOMMIT = "with op.get_context().autocommit_block():"
INVALID_QUERY = "SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(:name) AND NOT indisvalid"

# Functions whose value differs per row: a default using one rewrites the whole table.
VOLATILE = (
    "random(",
    "gen_random_uuid(",
    "uuid_generate_",
    "clock_timestamp(",
    "nextval(",
    "timeofday(",
)

# Type changes that PostgreSQL makes without rewriting the table (binary coercible or wider).
NO_REWRITE = {
    ("VARCHAR", "VARCHAR"),
    ("VARCHAR", "TEXT"),
    ("NUMERIC", "NUMERIC"),
    ("CHAR", "VARCHAR"),
}
# The SQL type a model's generic type is on PostgreSQL (reflection gives the SQL names).
GENERIC_SQL_TYPES = {"STRING": "VARCHAR", "UNICODE": "VARCHAR", "UNICODE_TEXT": "TEXT"}


class OnlineSafeOp(DescribedSQLOp):
    """An operation on an existing table, written in its PostgreSQL online form.

    ``original`` is Alembic's operation; it renders the other databases' branch and gives the
    description (without the lock warning it no longer deserves).
    """

    def __init__(self, kind: str, original, table: str, schema: str | None):
        base = describe(original)
        super().__init__(f"{kind} on {table}", Change(base.mark, base.text, base.fragment))
        self.kind, self.original, self.table_name, self.schema = kind, original, table, schema


def make_online_safe(script, connection) -> None:
    """Rewrite ``script``'s operations on tables that exist before and after it, PostgreSQL only."""
    if connection.dialect.name != "postgresql" or script.upgrade_ops.is_empty():
        return
    from sqlalchemy import inspect

    existing_tables = inspect(connection).get_table_names()
    leaves = _leaves(script.upgrade_ops.ops)
    new = {o.table_name for o in leaves if isinstance(o, (ops.CreateTableOp, ops.DropTableOp))}
    existing = set(existing_tables) - new
    for direction in (script.upgrade_ops, script.downgrade_ops):
        direction.ops = _rewrite(direction.ops, existing)
    for operation in leaves:
        note = review_note(operation, existing)
        if note:
            operation.info[REVIEW] = note


def _leaves(operations) -> list:
    found = []
    for operation in operations:
        found.extend(
            _leaves(operation.ops) if isinstance(operation, ops.OpContainer) else [operation]
        )
    return found


def _rewrite(operations, existing: set[str]) -> list:
    """Top-level operations with every unsafe leaf on an existing table lifted out as an OnlineSafeOp."""
    result: list = []
    for operation in operations:
        if isinstance(operation, ops.ModifyTableOps) and operation.table_name in existing:
            kept: list = []
            for inner in operation.ops:
                kind = _kind(inner)
                if kind is None:
                    kept.append(inner)
                    continue
                if kept:
                    result.append(
                        ops.ModifyTableOps(operation.table_name, kept, schema=operation.schema)
                    )
                    kept = []
                result.append(OnlineSafeOp(kind, inner, operation.table_name, operation.schema))
            if kept:
                result.append(
                    ops.ModifyTableOps(operation.table_name, kept, schema=operation.schema)
                )
        elif _kind(operation) and _table(operation) in existing:
            safe = OnlineSafeOp(_kind(operation), operation, _table(operation), operation.schema)  # type: ignore[arg-type]
            result.append(safe)
        else:
            result.append(operation)
    return result


def _table(operation) -> str | None:
    return getattr(operation, "table_name", None) or getattr(operation, "source_table", None)


def _kind(operation) -> str | None:
    """Which safe form an operation takes, None when it needs none (or has none)."""
    if isinstance(operation, ops.CreateIndexOp) and operation.index_name:
        return "create_index"
    if isinstance(operation, ops.DropIndexOp) and operation.index_name:
        return "drop_index"
    if isinstance(operation, ops.CreateForeignKeyOp) and operation.constraint_name:
        return "foreign_key"
    if isinstance(operation, ops.CreateCheckConstraintOp) and operation.constraint_name:
        return "check"
    if isinstance(operation, ops.CreateUniqueConstraintOp) and operation.constraint_name:
        return "unique"
    if (
        isinstance(operation, ops.AlterColumnOp)
        and operation.modify_nullable is False
        and operation.existing_nullable is not False
        and operation.modify_type is None
        and operation.modify_name is None
    ):
        return "not_null"
    return None


def review_note(operation, existing: set[str]) -> str | None:
    """What no safe form covers, and the multi-step way to do it instead."""
    table = _table(operation)
    if table not in existing:
        return None
    if isinstance(operation, ops.AlterColumnOp) and operation.modify_name is not None:
        return (
            "Renaming a column breaks the running code that still reads the old name. Instead: "
            "add the new column, write both, backfill, switch reads, then drop the old one."
        )
    if (
        isinstance(operation, ops.AlterColumnOp)
        and operation.modify_type is not None
        and _rewrites(operation)
    ):
        return (
            "Changes the column type, which rewrites the table under an ACCESS EXCLUSIVE lock on "
            "PostgreSQL (reads and writes wait for the whole rewrite). Instead: add a column of the "
            "new type, fill it in batches, switch the code to it, then drop the old column."
        )
    if isinstance(operation, ops.AddColumnOp) and _volatile(operation.column.server_default):
        return (
            "A volatile server default rewrites the whole table under an ACCESS EXCLUSIVE lock. "
            "Instead: add the column without a default, set the default, fill existing rows in "
            "batches."
        )
    if isinstance(operation, ops.DropColumnOp):
        return (
            "Drops the column and its data; running code that still reads it fails. Deploy code "
            "that no longer reads it first (SQLAlchemy: remove it from the model, or defer it)."
        )
    if isinstance(operation, ops.RenameTableOp):
        return (
            "Running code that still uses the old name fails. Instead: create the new table (or a "
            "view under the old name), deploy code that uses the new name, then drop the old one."
        )
    return None


def _rewrites(operation) -> bool:
    old, new = operation.existing_type, operation.modify_type
    if old is None:
        return True
    old_name, new_name = (_sql_type_name(old), _sql_type_name(new))
    if (old_name, new_name) not in NO_REWRITE:
        return True
    old_length, new_length = getattr(old, "length", None), getattr(new, "length", None)
    return old_length is not None and new_length is not None and new_length < old_length


def _sql_type_name(type_) -> str:
    name = type(type_).__visit_name__.upper()
    return GENERIC_SQL_TYPES.get(name, name)


def _volatile(default) -> bool:
    if default is None:
        return False
    text = str(getattr(default, "arg", default)).lower().replace(" ", "")
    return any(name in text for name in VOLATILE)


# -- Rendering -------------------------------------------------------------------------------


@renderers.dispatch_for(OnlineSafeOp)
def _render_online_safe(autogen_context, operation: OnlineSafeOp) -> str:
    """The PostgreSQL form under a dialect check; else what Alembic writes today."""
    postgresql = _POSTGRESQL[operation.kind](autogen_context, operation)
    portable = _python(render_operation(autogen_context, _container(operation)))
    return "\n".join([GUARD, _indent(postgresql), "else:", _indent(portable)])


def _container(operation: OnlineSafeOp):
    """The original operation as autogenerate renders it in a table's block (batch or not)."""
    return ops.ModifyTableOps(operation.table_name, [operation.original], schema=operation.schema)


def _python(lines: list[str]) -> str:
    """Alembic's renderer lines, indented as its PythonPrinter indents them in a file."""
    from mako.pygen import PythonPrinter

    buffer = StringIO()
    printer = PythonPrinter(buffer)
    for line in lines:
        printer.writeline(line)
    printer.close()
    return "\n".join(line for line in buffer.getvalue().rstrip().splitlines() if line.strip())


def _indent(text: str) -> str:
    return "\n".join("    " + line if line else line for line in text.splitlines())


def _quote(name: str, schema: str | None = None) -> str:
    """A quoted identifier; a convention name past 63 characters cut as SQLAlchemy cuts it."""
    from sqlalchemy.sql.elements import _truncated_label
    from sqlalchemy.util import md5_hex

    if isinstance(name, _truncated_label) and len(name) > 63:
        name = name[:55] + "_" + md5_hex(name)[-4:]
    quoted = '"' + str(name).replace('"', '""') + '"'
    return f'"{schema}".{quoted}' if schema else quoted


def _execute(sql: str) -> str:
    return f"op.execute({sql!r})"


def _concurrent_index(autogen_context, name, table, columns, schema, unique, kw) -> str:
    """Drop an INVALID index left by a cut-off build, then build the index concurrently."""
    create = ops.CreateIndexOp(
        name,
        table,
        columns,
        schema=schema,
        unique=unique,
        if_not_exists=True,
        **{**kw, "postgresql_concurrently": True},
    )
    drop = ops.DropIndexOp(name, table_name=table, schema=schema, postgresql_concurrently=True)
    return "\n".join(
        [
            "# A build that was cut off leaves an INVALID index: dropped here, so a rerun builds it.",
            f"invalid = sa.text({INVALID_QUERY!r})",
            f"if not op.get_context().as_sql and op.get_bind().execute(invalid, {{'name': {_quote(name, schema)!r}}}).first():",
            "    " + _one(autogen_context, drop),
            _one(autogen_context, create),
        ]
    )


def _one(autogen_context, operation) -> str:
    """A top-level ``op.`` call for one operation, whatever batch mode the file uses."""
    return " ".join(
        line.strip()
        for line in "\n".join(render_operation(autogen_context, operation)).splitlines()
    )


def _create_index(autogen_context, operation: OnlineSafeOp) -> str:
    index = operation.original
    kw = {
        k: v for k, v in index.kw.items() if k not in ("postgresql_concurrently", "if_not_exists")
    }
    return (
        AUTOCOMMIT
        + "\n"
        + _indent(
            _concurrent_index(
                autogen_context,
                index.index_name,
                operation.table_name,
                index.columns,
                operation.schema,
                index.unique,
                kw,
            )
        )
    )


def _drop_index(autogen_context, operation: OnlineSafeOp) -> str:
    index = operation.original
    drop = ops.DropIndexOp(
        index.index_name,
        table_name=operation.table_name,
        schema=operation.schema,
        if_exists=True,
        postgresql_concurrently=True,
    )
    return AUTOCOMMIT + "\n" + _indent(_one(autogen_context, drop))


def _validate(operation: OnlineSafeOp, name) -> str:
    """VALIDATE in a transaction of its own: the scan holds a lock that lets writes through."""
    table = _quote(operation.table_name, operation.schema)
    return (
        AUTOCOMMIT
        + "\n"
        + _indent(_execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {_quote(name)}"))
    )


def _foreign_key(autogen_context, operation: OnlineSafeOp) -> str:
    fk = operation.original
    create = _one(autogen_context, fk)
    return "\n".join(
        [create[:-1] + ", postgresql_not_valid=True)", _validate(operation, fk.constraint_name)]
    )


def _check(autogen_context, operation: OnlineSafeOp) -> str:
    check = operation.original
    table = _quote(operation.table_name, operation.schema)
    return "\n".join(
        [
            _execute(
                f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {_quote(check.constraint_name)}"
            ),
            _one(autogen_context, check)[:-1] + ", postgresql_not_valid=True)",
            _validate(operation, check.constraint_name),
        ]
    )


def _unique(autogen_context, operation: OnlineSafeOp) -> str:
    unique = operation.original
    name = unique.constraint_name
    table = _quote(operation.table_name, operation.schema)
    build = _concurrent_index(
        autogen_context, name, operation.table_name, unique.columns, operation.schema, True, {}
    )
    return "\n".join(
        [
            AUTOCOMMIT,
            _indent(build),
            _execute(
                f"ALTER TABLE {table} ADD CONSTRAINT {_quote(name)} UNIQUE USING INDEX {_quote(name)}"
            ),
        ]
    )


def _not_null(autogen_context, operation: OnlineSafeOp) -> str:
    """CHECK (col IS NOT NULL) NOT VALID, VALIDATE, SET NOT NULL (which then skips its scan), drop the check."""
    alter = operation.original
    check = f"{alter.table_name}_{alter.column_name}_not_null"[:63]
    table = _quote(operation.table_name, operation.schema)
    lines = [
        _execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {_quote(check)}"),
        _execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {_quote(check)} "
            f"CHECK ({_quote(alter.column_name)} IS NOT NULL) NOT VALID"
        ),
        _validate(operation, check),
    ]
    rest = ops.AlterColumnOp(
        alter.table_name,
        alter.column_name,
        schema=alter.schema,
        existing_type=alter.existing_type,
        existing_server_default=alter.existing_server_default,
        existing_nullable=alter.existing_nullable,
        existing_comment=alter.existing_comment,
        modify_nullable=False,
        modify_server_default=alter.modify_server_default,
        modify_comment=alter.modify_comment,
    )
    lines.append(_one(autogen_context, rest))
    lines.append(_execute(f"ALTER TABLE {table} DROP CONSTRAINT {_quote(check)}"))
    return "\n".join(lines)


_POSTGRESQL = {
    "create_index": _create_index,
    "drop_index": _drop_index,
    "foreign_key": _foreign_key,
    "check": _check,
    "unique": _unique,
    "not_null": _not_null,
}
