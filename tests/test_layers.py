"""The layout's rules, read from the source: the engine knows nothing of commands or output,
back-ends return data, renderers never reach the database, errors live in one module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "sqlmanage"

# package -> the sqlmanage modules its code may never import (at any depth, in any function)
FORBIDDEN = {
    "engine": ("sqlmanage.actions", "sqlmanage.commands", "sqlmanage.render", "sqlmanage.cli"),
    "actions": ("sqlmanage.commands", "sqlmanage.render", "sqlmanage.cli"),
    # a renderer may take a back-end's data vocabulary (check's levels), nothing that runs
    "render": (
        "sqlmanage.engine",
        "sqlmanage.commands",
        "sqlmanage.database",
        "sqlmanage.project",
        "sqlmanage.cli",
    ),
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _modules(package: str) -> list[Path]:
    return sorted((PACKAGE / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_layer_never_imports_the_layers_above_it(package):
    modules = _modules(package)
    assert modules, f"no modules under {package}/"
    crossings = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in modules
        for name in sorted(_imports(path))
        if name.startswith(FORBIDDEN[package])
    ]
    assert crossings == []


def test_every_user_error_is_defined_in_the_errors_module():
    errors = PACKAGE / "errors.py"
    own = {
        node.name
        for node in ast.walk(ast.parse(errors.read_text()))
        if isinstance(node, ast.ClassDef)
    }
    assert "SqlmanageError" in own
    elsewhere = [
        f"{path.relative_to(PACKAGE)}: {node.name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != errors
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
        and any(getattr(base, "id", getattr(base, "attr", None)) in own for base in node.bases)
    ]
    assert elsewhere == []
