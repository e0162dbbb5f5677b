"""Describe a migration file's operations without importing or running it.

``migrate --plan`` lists what each migration will do. Reading the file's syntax tree (the
``op.*`` and ``batch_op.*`` calls in ``upgrade()`` / ``downgrade()``) needs no database and
no import, and the text comes from the same ``operations.describe`` as makemigrations uses.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TypeGuard

from alembic.operations import ops
from sqlalchemy import Column, MetaData, Table
from sqlalchemy.types import NullType

from sqlmanage.engine.autodetect.operations import describe


def describe_migration(path: Path) -> tuple[list[str], bool]:
    """The forward operations' descriptions, and whether ``downgrade()`` does nothing.

    Descriptions are always of ``upgrade()``: going back, Django shows them as ``Undo ...``.
    """
    module = _Module(ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path)))
    downgrade = module.functions.get("downgrade")
    changes = [describe(o).text for o in _upgrade_operations(module)]
    irreversible = downgrade is None or _does_nothing(downgrade)
    return changes, irreversible


def upgrade_operations(path: Path) -> list:
    """Alembic op objects standing for the ``op.*`` calls of the file's ``upgrade()``."""
    return _upgrade_operations(
        _Module(ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path)))
    )


def _upgrade_operations(module: _Module) -> list:
    upgrade = module.functions.get("upgrade")
    return _operations(upgrade, module) if upgrade else []


class _Module:
    """The file's own functions (helpers upgrade() calls) and string constants (names)."""

    def __init__(self, tree: ast.Module):
        self.functions = {
            node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)
        }
        self.constants = {
            node.targets[0].id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        }
        self.entered: set[str] = set()


def _does_nothing(function: ast.FunctionDef) -> bool:
    for statement in function.body:
        if isinstance(statement, ast.Pass):
            continue
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            continue
        return isinstance(statement, ast.Raise)
    return True


def _operations(function: ast.FunctionDef, module: _Module) -> list:
    found: list = []
    module.entered.add(function.name)
    _walk(function.body, {}, found, module)
    return found


def _walk(statements, batch_names: dict[str, str], found: list, module: _Module) -> None:
    for statement in statements:
        if isinstance(statement, ast.With):
            names = dict(batch_names)
            for item in statement.items:
                call = item.context_expr
                if _is_op_call(call, "batch_alter_table") and isinstance(
                    item.optional_vars, ast.Name
                ):
                    names[item.optional_vars.id] = _string(_argument(call, 0, "table_name"), module)
            _walk(statement.body, names, found, module)
            continue
        for child in ("body", "orelse", "finalbody"):
            if hasattr(statement, child) and not isinstance(statement, ast.FunctionDef):
                _walk(getattr(statement, child), batch_names, found, module)
        value = getattr(statement, "value", None)  # op.x(...), or t = op.create_table(...)
        if isinstance(statement, (ast.Expr, ast.Assign, ast.AnnAssign)) and isinstance(
            value, ast.Call
        ):
            helper = value.func.id if isinstance(value.func, ast.Name) else None
            if helper in module.functions and helper not in module.entered:
                module.entered.add(helper)  # a helper of the file's own: its operations count
                _walk(module.functions[helper].body, batch_names, found, module)
                continue
            operation = _to_operation(value, batch_names, module)
            if operation is not None:
                found.append(operation)


def _is_op_call(node, name: str | None = None) -> TypeGuard[ast.Call]:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and (name is None or node.func.attr == name)
    )


def _argument(call: ast.Call, position: int, keyword: str):
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    return call.args[position] if len(call.args) > position else None


def _string(node, module: _Module) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and node.id in module.constants:
        return module.constants[node.id]
    if isinstance(node, ast.Call) and node.args:
        return _string(node.args[0], module)
    return "?"


def _to_operation(call: ast.Call, batch_names: dict[str, str], module: _Module):
    """An Alembic op object standing for one ``op.x(...)`` call, enough to describe it."""
    if not _is_op_call(call):
        return None
    receiver, name = call.func.value.id, call.func.attr  # type: ignore[attr-defined]  # op.x: _is_op_call
    if receiver in batch_names:
        table, shift = batch_names[receiver], 0
    elif receiver == "op":
        table, shift = None, 1
    else:
        return None

    def arg(position: int, keyword: str) -> str:
        return _string(_argument(call, position, keyword), module)

    def table_arg(position: int) -> str:
        return table if table is not None else arg(position, "table_name")

    if name == "create_table":
        return ops.CreateTableOp(arg(0, "table_name"), [])
    if name == "drop_table":
        return ops.DropTableOp(arg(0, "table_name"))
    if name == "add_column":
        return ops.AddColumnOp(table_arg(0), Column(arg(shift, "column"), NullType()))
    if name == "drop_column":
        return ops.DropColumnOp(table_arg(0), arg(shift, "column_name"))
    if name == "alter_column":
        return ops.AlterColumnOp(table_arg(0), arg(shift, "column_name"))
    if name == "create_index":
        return ops.CreateIndexOp(arg(0, "index_name"), table_arg(1), [])
    if name == "drop_index":
        return ops.DropIndexOp(arg(0, "index_name"), table_arg(1))
    if name == "drop_constraint":
        return ops.DropConstraintOp(arg(0, "constraint_name"), table_arg(1))
    if name == "create_unique_constraint":
        return ops.CreateUniqueConstraintOp(arg(0, "constraint_name"), table_arg(1), [])
    if name == "create_foreign_key":
        return ops.CreateForeignKeyOp(arg(0, "constraint_name"), table_arg(1), "?", [], [])
    if name == "create_check_constraint":
        return ops.CreateCheckConstraintOp(arg(0, "constraint_name"), table_arg(1), "")
    if name == "execute":
        return ops.ExecuteSQLOp("")
    if name == "bulk_insert":
        table = _argument(call, 0, "table")
        return ops.BulkInsertOp(
            Table(table.id if isinstance(table, ast.Name) else "?", MetaData()), []
        )
    if name == "rename_table":
        return ops.RenameTableOp(arg(0, "old_table_name"), arg(1, "new_table_name"))
    return None
