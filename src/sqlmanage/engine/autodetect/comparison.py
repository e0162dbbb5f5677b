"""Where sqlmanage's comparison of models and schema differs from Alembic's defaults.

- Server defaults: Alembic compares the reflected default text with the model's rendered
  default, so MariaDB's ``current_timestamp()`` against ``now()``, its ``1`` against
  ``true``, or a multi-line default against the one line a database gives back, look like
  changes that every ``makemigrations`` would write again. Equal spellings are declared
  equal here; anything else is left to Alembic. From Alembic 1.18 this runs as an
  autogenerate plugin after Alembic's own computed and identity comparisons (a
  ``compare_server_default`` callable runs before them there and fails on a reflected
  ``Computed`` column).
- CHECK constraints are compared by name (Alembic's opt-in plugin, where this Alembic has
  it), except the ones a database adds by itself (MariaDB's ``json_valid`` on JSON columns).
- PostgreSQL JSON/JSONB types render with the ``sa.`` prefix their default ``astext_type``
  needs, also in a migration generated against another database.
"""

from __future__ import annotations

import importlib.util
import re

from sqlalchemy import Boolean
from sqlalchemy.schema import DefaultClause

NOW = {"now()", "current_timestamp", "current_timestamp()", "localtimestamp", "getdate()"}
TRUE = {"true", "1", "b'1'"}
FALSE = {"false", "0", "b'0'"}


def normalize_default(text: str | None, is_boolean: bool) -> str | None:
    """A canonical spelling: no outer parentheses or quotes, lowercase, known synonyms merged."""
    if text is None:
        return None
    value = _squeeze(text)
    while len(value) > 1 and value[0] == "(" and value[-1] == ")":
        value = value[1:-1].strip()
    value = re.sub(r"::[a-z ]+$", "", value, flags=re.IGNORECASE)
    if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    value = value.lower()
    if value in NOW:
        return "current_timestamp"
    if is_boolean and value in TRUE:
        return "true"
    if is_boolean and value in FALSE:
        return "false"
    return value


def _squeeze(text: str) -> str:
    """``text`` with whitespace outside quoted literals collapsed, none beside ( ) or ,."""
    out: list[str] = []
    quote = None
    pending_space = False
    for char in text.strip():
        if quote is not None:
            out.append(char)
            if char == quote:
                quote = None
            continue
        if char.isspace():
            pending_space = True
            continue
        if pending_space and out and out[-1] not in "(," and char not in "),":
            out.append(" ")
        pending_space = False
        out.append(char)
        if char in "'\"":
            quote = char
    return "".join(out)


def compare_server_default(
    context,
    inspected_column,
    metadata_column,
    inspected_default,
    metadata_default,
    rendered_metadata_default,
):
    """Alembic hook: False when both defaults mean the same, None to let Alembic decide."""
    if inspected_default is None or rendered_metadata_default is None:
        return None
    is_boolean = isinstance(metadata_column.type, Boolean)
    if normalize_default(inspected_default, is_boolean) == normalize_default(
        rendered_metadata_default, is_boolean
    ):
        return False
    return None


OWN_PLUGIN = "sqlmanage.engine.autodetect.comparison"


def server_default_comparison(enabled: bool):
    """``compare_server_default`` for Alembic: our callable before 1.18, True (and the plugin) after."""
    if not enabled:
        return False
    return True if _has_plugins() else compare_server_default


def plugin_options() -> dict:
    """Alembic's own autogenerate comparators plus ours (Alembic 1.18+; none before)."""
    if not _has_plugins():
        return {}
    _register_own_plugin()
    # Alembic 1.18-1.19.1 ran its CHECK comparison under the wildcard; ours replaces it.
    return {
        "autogenerate_plugins": [
            "alembic.autogenerate.*",
            "~alembic.autogenerate.checkconstraint_byname",
            OWN_PLUGIN,
        ]
    }


def _has_plugins() -> bool:
    try:
        return importlib.util.find_spec("alembic.runtime.plugins") is not None
    except ModuleNotFoundError:
        return False


def _register_own_plugin() -> None:
    from alembic.runtime import plugins
    from alembic.util import DispatchPriority

    from sqlmanage.engine.alembic_internals import is_plugin_registered

    if is_plugin_registered(OWN_PLUGIN):  # a process-wide registry; names are unique
        return
    plugin = plugins.Plugin(OWN_PLUGIN)
    plugin.add_autogenerate_comparator(
        _skip_unsupported_identity, "column", "server_default", priority=DispatchPriority.FIRST
    )
    plugin.add_autogenerate_comparator(_compare_plain_server_defaults, "column", "server_default")
    plugin.add_autogenerate_comparator(_compare_check_constraints, "table", "checkconstraints")


def _skip_unsupported_identity(
    autogen_context, alter_column_op, schema, tname, cname, conn_col, metadata_col
):
    """An ``Identity`` where the database has no identity columns (SQLite, MariaDB) is no change."""
    from alembic.util import PriorityDispatchResult
    from sqlalchemy import Identity

    if (
        isinstance(metadata_col.server_default, Identity)
        and conn_col.server_default is None
        and not autogen_context.dialect.supports_identity_columns
    ):
        return PriorityDispatchResult.STOP
    return PriorityDispatchResult.CONTINUE


def _compare_plain_server_defaults(
    autogen_context, alter_column_op, schema, tname, cname, conn_col, metadata_col
):
    """Plugin form of ``compare_server_default``: only plain defaults, after computed/identity."""
    from alembic.util import PriorityDispatchResult

    conn_default, metadata_default = conn_col.server_default, metadata_col.server_default
    if not isinstance(conn_default, DefaultClause) or not isinstance(
        metadata_default, DefaultClause
    ):
        return PriorityDispatchResult.CONTINUE
    rendered = metadata_default.arg
    if not isinstance(rendered, str):
        rendered = str(
            rendered.compile(
                dialect=autogen_context.dialect, compile_kwargs={"literal_binds": True}
            )
        )
    inspected = getattr(conn_default.arg, "text", conn_default.arg)
    same = compare_server_default(
        None, conn_col, metadata_col, inspected, metadata_default, rendered
    )
    return PriorityDispatchResult.STOP if same is False else PriorityDispatchResult.CONTINUE


def _compare_check_constraints(
    autogen_context, modify_table_ops, schema, tname, conn_table, metadata_table
):
    """CHECK constraints by name, as the database spells the name.

    Like Alembic's ``checkconstraint_byname``, with two phantoms fewer: a model name longer
    than the database allows is compared as the database truncated it (PostgreSQL: 63
    characters), and a reflected name the database made up for an unnamed model CHECK
    (PostgreSQL's ``runs_status_check``, MariaDB's ``CONSTRAINT_1``) is not a removal.
    Checks a type makes (Enum, Boolean) count only where that type creates them.
    """
    from alembic.operations import ops
    from alembic.util import PriorityDispatchResult
    from sqlalchemy import CheckConstraint

    if conn_table is None or metadata_table is None:
        return PriorityDispatchResult.CONTINUE
    try:
        reflected = autogen_context.inspector.get_check_constraints(tname, schema=schema)
    except NotImplementedError:
        return PriorityDispatchResult.CONTINUE
    dialect = autogen_context.dialect
    compiler = dialect.ddl_compiler(dialect, None)
    # A type's own CHECK on a column still to be added comes with its add_column.
    model_checks = [
        c
        for c in _table_checks(metadata_table)
        if c._should_create_for_compiler(compiler) and not _comes_with_new_column(c, conn_table)
    ]
    named = {}
    unnamed = 0
    for check in model_checks:
        name = _final_name(check, dialect)
        if name is None:
            unnamed += 1
        else:
            named[name] = check
    existing = {}
    for row in reflected:
        name = row.get("name")
        if name and autogen_context.run_name_filters(
            name, "check_constraint", {"table_name": tname, "schema_name": schema}
        ):
            existing[name] = row
    for name in sorted(set(existing) - set(named)):
        if unnamed and _is_database_made_name(name, tname, metadata_table, dialect.name):
            continue
        check = CheckConstraint(existing[name]["sqltext"], name=name, table=conn_table)
        if autogen_context.run_object_filters(check, name, "check_constraint", True, None):
            modify_table_ops.ops.append(ops.DropConstraintOp.from_constraint(check))
    for name in sorted(set(named) - set(existing)):
        check = named[name]
        if autogen_context.run_object_filters(check, name, "check_constraint", False, None):
            modify_table_ops.ops.append(ops.AddConstraintOp.from_constraint(check))
    return PriorityDispatchResult.CONTINUE


def keep_column_checks(script) -> None:
    """Give every new table the CHECKs declared on its columns (Alembic renders only the table's)."""
    from alembic.operations import ops
    from sqlalchemy import CheckConstraint, Column

    for operation in script.upgrade_ops.ops:
        if not isinstance(operation, ops.CreateTableOp):
            continue
        for column in [c for c in operation.columns if isinstance(c, Column)]:
            for check in column.constraints:
                if isinstance(check, CheckConstraint):
                    operation.columns.append(CheckConstraint(check.sqltext, name=check.name))  # type: ignore[attr-defined]  # a list


def drop_checks_before_columns(script, dialect) -> None:
    """CHECKs go before the columns they check, and a type's own CHECK is dropped by name.

    SQLite's batch rebuild keeps a named CHECK whose column is dropped (and then fails on
    it), and PostgreSQL drops it with the column (so a later drop_constraint fails): the
    CHECK is dropped first, explicitly, where every database has it (an Enum with
    ``native_enum=False, create_constraint=True``).
    """
    from alembic.operations import ops

    from sqlmanage.engine.alembic_internals import knows_dropped_original

    for container in (script.upgrade_ops, script.downgrade_ops):
        for table_ops in container.ops:
            if not isinstance(table_ops, ops.ModifyTableOps):
                continue
            checks = [
                o
                for o in table_ops.ops
                if isinstance(o, ops.DropConstraintOp) and o.constraint_type == "check"
            ]
            rest = [o for o in table_ops.ops if not any(o is c for c in checks)]
            names = {o.constraint_name for o in checks}
            for operation in rest:
                if not isinstance(operation, ops.DropColumnOp) or not knows_dropped_original(
                    operation
                ):
                    continue
                for check in _checks_of_type_everywhere(operation.to_column()):
                    name = _final_name(check, dialect)
                    if name and name not in names:
                        names.add(name)
                        checks.append(
                            ops.DropConstraintOp(
                                name, table_ops.table_name, type_="check", schema=table_ops.schema
                            )
                        )
            if checks:
                table_ops.ops = checks + rest


def _checks_of_type_everywhere(column) -> list:
    """The CHECKs a column's type makes on SQLite, PostgreSQL and MariaDB alike."""
    from sqlalchemy import CheckConstraint
    from sqlalchemy.dialects import mysql, postgresql, sqlite

    table = getattr(column, "table", None)
    if table is None:
        return []
    dialects = (sqlite.dialect(), postgresql.dialect(), mysql.dialect())
    compilers = [d.ddl_compiler(d, None) for d in dialects]  # type: ignore[arg-type]  # no statement: its helpers only
    return [
        c
        for c in table.constraints
        if isinstance(c, CheckConstraint)
        and getattr(c, "_type_bound", False)
        and any(col is column for col in c.columns)
        and all(c._should_create_for_compiler(compiler) for compiler in compilers)
    ]


def _comes_with_new_column(check, conn_table) -> bool:
    if not getattr(check, "_type_bound", False):
        return False
    return any(c.name not in conn_table.columns for c in check.columns) if check.columns else False


def _table_checks(table) -> list:
    from sqlalchemy import CheckConstraint

    found = list(table.constraints)
    for column in table.columns:
        found.extend(column.constraints)
    unique = {id(c): c for c in found if isinstance(c, CheckConstraint)}
    return sorted(unique.values(), key=lambda c: str(c.name))


def _final_name(constraint, dialect) -> str | None:
    """The name the database gets: convention applied, cut to its length; None when unnamed."""
    if constraint.name is None:
        return None
    return dialect.identifier_preparer.format_constraint(constraint, _alembic_quote=False)


def _is_database_made_name(name: str, table: str, metadata_table, dialect_name: str) -> bool:
    """A name the database gives an unnamed CHECK: ``<table>_<column>_check``, ``CONSTRAINT_1``."""
    if dialect_name == "postgresql":
        return re.fullmatch(rf"{re.escape(table)}(_\w+)?_check\d*", name) is not None
    if dialect_name in ("mysql", "mariadb"):
        return (
            re.fullmatch(r"CONSTRAINT_\d+", name) is not None
            or re.fullmatch(rf"{re.escape(table)}_chk_\d+", name) is not None
            or name in metadata_table.columns
        )
    return False


def is_database_own_check(obj, type_: str) -> bool:
    """A reflected CHECK the database made itself, not the models (MariaDB's JSON checks)."""
    if type_ != "check_constraint":
        return False
    return "json_valid(" in str(getattr(obj, "sqltext", "")).lower()


def render_item(type_: str, obj, autogen_context):
    """Render PostgreSQL JSON/JSONB without the bare ``Text()`` Alembic writes for them, and a
    timestamp reflected from PostgreSQL as ``sa.DateTime`` (``postgresql.TIMESTAMP`` would
    turn MariaDB's DATETIME columns into TIMESTAMP ones)."""
    from sqlalchemy import Text
    from sqlalchemy.dialects import postgresql

    if type_ != "type":
        return False
    if type(obj) is postgresql.TIMESTAMP and obj.precision is None:
        return "sa.DateTime(timezone=True)" if obj.timezone else "sa.DateTime()"
    if not isinstance(obj, (postgresql.JSON, postgresql.JSONB)):
        return False
    astext = obj.astext_type
    if type(astext) is not Text or astext.length is not None:
        return False
    autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
    return f"postgresql.{type(obj).__name__}()"
