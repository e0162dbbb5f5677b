"""Remembered clean comparisons: "the models match the migrations" need not be worked out twice.

Comparing 500 models with the schema costs seconds (reflection, then Alembic's comparison),
and ``makemigrations --check`` or the notice after ``migrate`` ask the same question over
and over. Its answer depends only on the models, the migration files, the settings, the
database's kind and the tools' versions, as Django's answer depends only on the models and
the migration files. So a comparison that found nothing is remembered under a digest of those
inputs, in ``__pycache__/`` beside the migrations. Changes found are never remembered; any
change of input, or a cache that cannot be read or written, means comparing again.

Two keys: ``models_key`` fingerprints the imported models themselves (exact, for
makemigrations and check); ``sources_key`` uses the project's source files' sizes and mtimes
instead, so that ``migrate`` can skip even importing the models when nothing was edited.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
from pathlib import Path

from sqlmanage.errors import SqlmanageError

CACHE_FILE = "sqlmanage-clean-comparisons.json"
KEPT_KEYS = 16  # a few databases, settings modules or branches share one migrations folder


def is_remembered(project, key: str | None) -> bool:
    return key is not None and key in _read(_cache_file(project))


def remember(project, key: str | None) -> None:
    if key is None:
        return
    cache = _cache_file(project)
    known = [k for k in _read(cache) if k != key]
    _write(cache, ([key] + known)[:KEPT_KEYS])


def models_key(project) -> str | None:
    """A digest of the imported models and the rest; None (compare again) if one cannot be made.

    Each table is fingerprinted twice over: the DDL it compiles to for the project's dialect
    (types as that dialect sees them, variants resolved, computed and identity columns,
    server defaults, constraints with their final names, partial and expression indexes),
    and a description of everything the DDL leaves out (comments, enum labels, variants for
    other dialects, every dialect option). A model change that can change autogenerate's
    answer changes one of the two.
    """
    try:
        dialect = project.url.get_dialect()()
        rows = []
        for metadata in project.metadata:
            convention = sorted((repr(k), repr(v)) for k, v in metadata.naming_convention.items())
            rows.append(repr((metadata.schema, convention)))
            for table in metadata.tables.values():  # not sorted_tables: it warns on FK cycles
                rows.append(_table_fingerprint(table, dialect))
    except SqlmanageError:
        raise  # models that cannot be imported: the user's error, told once, as it happened
    except Exception:  # a model the dialect cannot compile: its answer is not remembered
        return None
    return _digest(project, {"models": sorted(rows)})


def sources_key(project) -> str | None:
    """A digest of the project's source files (sizes, mtimes) and the rest, without importing."""
    files = _source_files(project)
    if files is None:
        return None
    stats = []
    for path in files:
        try:
            stat = path.stat()
        except OSError:
            return None
        stats.append((str(path), stat.st_size, stat.st_mtime_ns))
    return _digest(project, {"sources": stats})


def _digest(project, inputs: dict) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    import sqlalchemy

    import sqlmanage

    try:
        tools = [sqlmanage.__version__, sqlalchemy.__version__, version("alembic")]
    except PackageNotFoundError:
        return None
    history = project.history
    inputs.update(
        tools=tools,
        settings=repr(dataclasses.asdict(project.settings)),
        database=[project.label, project.url.get_backend_name()],
        migrations=[(m.revision, history.checksum(m)) for m in history.migrations],
    )
    return hashlib.sha256(json.dumps(inputs, default=str).encode()).hexdigest()


def _table_fingerprint(table, dialect) -> str:
    """Everything of a table that autogenerate compares, as text."""
    from sqlalchemy.schema import CreateIndex, CreateTable

    parts = [str(CreateTable(table).compile(dialect=dialect))]
    parts += sorted(str(CreateIndex(i).compile(dialect=dialect)) for i in table.indexes)
    parts += [repr(table.fullname), repr(table.comment), _options(table)]
    for column in table.columns:
        parts.append(repr((
            column.name, _type_text(column.type), column.nullable, column.primary_key,
            _text(column.server_default), column.comment, _text(column.computed),
            _text(column.identity), column.autoincrement, _options(column),
            sorted(str(_text(c)) for c in column.constraints),
        )))
    for constraint in sorted(table.constraints, key=lambda c: (type(c).__name__, str(c.name))):
        detail: list[object] = [type(constraint).__name__, str(constraint.name)]
        detail.append([c.name for c in getattr(constraint, "columns", ())])
        for element in getattr(constraint, "elements", ()):
            detail.append((element.target_fullname, element.ondelete, element.onupdate,
                           element.deferrable, element.initially))
        if hasattr(constraint, "sqltext"):
            detail.append(_text(constraint.sqltext))
        detail.append(_options(constraint))
        parts.append(repr(detail))
    for index in sorted(table.indexes, key=lambda i: str(i.name)):
        parts.append(repr((
            str(index.name), index.unique, [_text(e) for e in index.expressions], _options(index),
        )))
    return "\n".join(parts)


def _type_text(type_) -> str:
    """A type with its variants for other dialects (its repr shows only the base type)."""
    variants = sorted((name, repr(t)) for name, t in getattr(type_, "_variant_mapping", {}).items())
    return repr((repr(type_), variants))


def _options(item) -> str:
    """Dialect options (``postgresql_where``, ``mysql_engine``, ...) as text, their clauses compiled."""
    return repr(sorted((k, _text(v)) for k, v in item.dialect_kwargs.items()))


IDENTITY_OPTIONS = ("always", "on_null", "start", "increment", "minvalue", "maxvalue",
                    "nominvalue", "nomaxvalue", "cycle", "cache", "order", "persisted")


def _text(value) -> str | None:
    """A clause, default, constraint or option value as stable text (never an object address)."""
    if value is None:
        return None
    kind = type(value).__name__
    options = [(k, getattr(value, k)) for k in IDENTITY_OPTIONS if hasattr(value, k)]
    for attribute in ("arg", "sqltext"):
        inner = getattr(value, attribute, None)
        if inner is not None:
            return f"{kind}({_text(inner)}, {getattr(value, 'name', None)!r}, {options!r})"
    if options:  # Identity, Sequence
        return f"{kind}({options!r})"
    if isinstance(value, (list, tuple)):
        return repr([_text(v) for v in value])
    try:
        text = str(value)
    except Exception:
        text = repr(value)
    if " object at 0x" in text:  # no stable text: the models' answer is not remembered
        raise ValueError(f"no stable text for {kind}")
    return text


def _source_files(project) -> list[Path] | None:
    """Every .py file of the MODELS packages and of the settings' package, found without import."""
    files: set[Path] = set()
    names = list(project.database.models) + [project.settings.module_name]
    for name in names:
        try:
            spec = _spec_without_import(name)
        except (ImportError, ValueError):
            return None
        if spec is None:
            return None
        if name == project.settings.module_name:
            if not spec.origin:
                return None
            if "." not in name:  # a top-level settings.py: its folder may hold a virtualenv
                files.add(Path(spec.origin))
                continue
            locations = [str(Path(spec.origin).parent)]  # the whole project package
        elif spec.submodule_search_locations:
            locations = list(spec.submodule_search_locations)
        elif spec.origin and spec.origin.endswith(".py"):
            files.add(Path(spec.origin))
            continue
        else:
            return None
        for location in locations:
            for root, dirs, here in os.walk(location):
                dirs[:] = [d for d in dirs if d != "__pycache__"]
                files.update(Path(root, n) for n in here if n.endswith(".py"))
    return sorted(files)


def _spec_without_import(name: str):
    """A module's spec, found on the path without running any package's ``__init__``.

    ``importlib.util.find_spec("airflow.models")`` imports ``airflow`` first (seconds, for
    some frameworks) only to learn where the files are. Each level is looked up with the
    path finder instead; a module only a custom finder knows (an editable install's, a zip)
    falls back to ``find_spec``.
    """
    import sys
    from importlib.machinery import PathFinder

    if name in sys.modules:
        return getattr(sys.modules[name], "__spec__", None)
    parts = name.split(".")
    locations = None
    spec = None
    for depth in range(1, len(parts) + 1):
        spec = PathFinder.find_spec(".".join(parts[:depth]), locations)
        if spec is None:
            return importlib.util.find_spec(name)
        locations = spec.submodule_search_locations
        if locations is None and depth < len(parts):
            return importlib.util.find_spec(name)
    return spec


def _cache_file(project) -> Path:
    return project.migrations_dir / "__pycache__" / CACHE_FILE


def _read(cache: Path) -> list[str]:
    try:
        keys = json.loads(cache.read_text(encoding="utf-8")).get("clean", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [k for k in keys if isinstance(k, str)] if isinstance(keys, list) else []


def _write(cache: Path, keys: list[str]) -> None:
    from sqlmanage.revision_index import write_cache

    write_cache(cache, {"clean": keys})
