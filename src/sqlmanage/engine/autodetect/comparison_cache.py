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

Both live in ``__pycache__/``, so a fresh checkout (CI, a deploy's container) has neither. The
third, ``fingerprint``, travels with the repository instead: makemigrations records it in the
migration it writes (``sqlmanage_fingerprint = "..."``, a module variable Alembic ignores),
once a second comparison against the history *with* that migration found nothing. It digests
only what is the same on every checkout (no paths, no URLs), and every migration file's
checksum (the head's without the fingerprint), so an edited head, another database server
version, other tools or other comparison settings all mean comparing again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
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
    rows, _ = models_as_imported(project)
    return None if rows is None else _digest(project, {"models": rows})


MODELS_SEEN = "_models_as_imported"  # on the Project: rows and type libraries, computed once


def models_as_imported(project) -> tuple[list[str] | None, list]:
    """The models' rows and type libraries, as first seen in this process, kept on the project.

    A comparison adapts the models' metadata in place (PostgreSQL enums become
    ``ENUM(create_type=False)``), so a digest taken after one would not be the digest another
    process takes before any: each is taken once, before the first comparison, and reused.
    """
    if MODELS_SEEN not in project.__dict__:
        rows = _model_rows(project)
        project.__dict__[MODELS_SEEN] = (rows, _type_libraries(project) if rows is not None else [])
    return project.__dict__[MODELS_SEEN]


def carry_models(source, target) -> None:
    """Give ``target`` (the same settings, the history read again) what ``source`` saw."""
    if MODELS_SEEN in source.__dict__:
        target.__dict__[MODELS_SEEN] = source.__dict__[MODELS_SEEN]


def _model_rows(project) -> list[str] | None:
    """The fingerprint rows of every table of the models, sorted; None if one cannot be made."""
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
    return sorted(rows)


FINGERPRINT_VARIABLE = "sqlmanage_fingerprint"
FINGERPRINT_COMMENT = (
    "# The models as this migration leaves them: 'migrate' trusts it instead of comparing\n"
    "# them again while it matches (sqlmanage; Alembic ignores it).\n"
)


def fingerprint(project, server_version: tuple | None) -> str | None:
    """A digest of everything the comparison of the models with the history depends on.

    Equal digests mean equal inputs: the models (as ``models_key`` sees them, plus the
    versions of the libraries their column types come from), the comparison settings, the
    tools' versions, the database's kind, driver and server version, every migration file's
    checksum, and the head's without its recorded fingerprint. None (compare instead)
    for what it cannot see: a project hook (INCLUDE_OBJECT, INCLUDE_NAME,
    PROCESS_REVISION_DIRECTIVES, BASELINE: code whose behaviour no digest covers), an
    Alembic comparator registered by another library, several heads, a model it cannot
    describe.
    """
    settings = project.settings
    history = project.history
    if project.has_autogenerate_hooks or settings.baseline or len(history.heads) != 1:
        return None
    head = history.by_id[history.heads[0]]
    try:
        _, head_code = read_fingerprint(head.path)
    except (OSError, ValueError):
        return None
    rows, libraries = models_as_imported(project)
    if rows is None or _foreign_comparators():
        return None
    url = project.url
    inputs = {
        "format": 1,
        "models": rows,
        "type libraries": libraries,
        "settings": [
            settings.compare_type,
            settings.compare_server_default,
            settings.render_as_batch,
            settings.version_table,
            settings.version_table_schema,
            settings.include_schemas,
            sorted(settings.exclude_tables),
            settings.target_metadata,
        ],
        "database": [url.get_backend_name(), url.get_driver_name(), list(server_version or ())],
        "migrations": [
            (m.revision, head_code if m is head else history.checksum(m))
            for m in history.migrations
        ],
    }
    tools = _tool_versions()
    if tools is None:
        return None
    inputs["tools"] = tools
    return hashlib.sha256(json.dumps(inputs, default=str).encode()).hexdigest()


def head_fingerprint_matches(project) -> bool:
    """Whether the head migration records the fingerprint the models have now: then the full
    comparison would find nothing (see ``fingerprint``)."""
    history = project.history
    if len(history.heads) != 1:
        return False
    try:
        recorded, _ = read_fingerprint(history.by_id[history.heads[0]].path)
    except (OSError, ValueError):
        return False
    return (
        recorded is not None and fingerprint(project, project_server_version(project)) == recorded
    )


FINGERPRINT_LINE = re.compile(
    r"^"
    + FINGERPRINT_VARIABLE
    + r"""(?:: *str)? *= *(?P<q>["'])(?P<digest>[0-9a-f]{64})(?P=q) *\n""",
    re.MULTILINE,
)


def read_fingerprint(path: Path) -> tuple[str | None, str]:
    """The fingerprint a migration file records (None: none, or more than one), and the
    checksum of the file without it, as it was before makemigrations added it."""
    from sqlmanage.engine.revision_index import file_checksum

    recorded, rest = _without_fingerprint(Path(path).read_bytes().decode("utf-8"))
    return recorded, file_checksum(rest.encode("utf-8"))


def _without_fingerprint(source: str) -> tuple[str | None, str]:
    """(the recorded digest, the source without what ``with_fingerprint`` added)."""
    source = source.replace("\r\n", "\n").replace("\r", "\n")
    found = list(FINGERPRINT_LINE.finditer(source))
    if not found:
        return None, source
    for match in reversed(found):
        start = match.start()
        if source[:start].endswith(FINGERPRINT_COMMENT):
            start -= len(FINGERPRINT_COMMENT)
        if source[:start].endswith("\n\n"):
            start -= 1
        source = source[:start] + source[match.end() :]
    return (found[0].group("digest") if len(found) == 1 else None), source


def with_fingerprint(source: str, digest: str | None) -> str:
    """``source`` with the fingerprint (None: without any) after its revision identifiers.

    A fingerprint already there (``makemigrations --update`` keeps the file's text) goes,
    with the comment that introduces it.
    """
    import ast

    _, source = _without_fingerprint(source)
    if digest is None:
        return source
    lines = source.splitlines(keepends=True)
    header = [
        node
        for node in ast.parse(source).body
        if _assigns(node, ("revision", "down_revision", "branch_labels", "depends_on"))
    ]
    after = max(node.end_lineno or node.lineno for node in header) if header else len(lines)
    if after and not lines[after - 1].endswith("\n"):
        lines[after - 1] += "\n"
    lines[after:after] = ["\n", FINGERPRINT_COMMENT, f'{FINGERPRINT_VARIABLE} = "{digest}"\n']
    return "".join(lines)


def _assigns(node, names: tuple[str, ...]) -> bool:
    """Whether a module-level statement assigns one of ``names`` (plainly or annotated)."""
    import ast

    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
    elif isinstance(node, ast.AnnAssign):
        target = node.target
    else:
        return False
    return isinstance(target, ast.Name) and target.id in names


def server_version(dialect) -> tuple:
    """The part of the server's version that can change what reflection returns."""
    import sqlite3

    if dialect.name == "sqlite":
        return tuple(sqlite3.sqlite_version_info[:2])
    version = tuple(dialect.server_version_info or ())
    return version[:1] if dialect.name == "postgresql" else version[:2]


def project_server_version(project) -> tuple:
    """``server_version`` of the project's database (a connection for servers, none for SQLite)."""
    if project.url.get_backend_name() == "sqlite":
        return server_version(project.url.get_dialect()())
    from sqlmanage.database import connect

    return connect(project.url, lambda connection: server_version(connection.dialect))


def _tool_versions() -> list[str] | None:
    from importlib.metadata import PackageNotFoundError, version

    import sqlalchemy

    import sqlmanage

    try:
        return [sqlmanage.__version__, sqlalchemy.__version__, version("alembic")]
    except PackageNotFoundError:
        return None


def _type_libraries(project) -> list:
    """Name and version of each library (not SQLAlchemy) a model's column type comes from:
    its new release may compile, reflect or compare the same column differently."""
    from importlib.metadata import PackageNotFoundError, version

    names = set()
    for metadata in project.metadata:
        for table in metadata.tables.values():
            for column in table.columns:
                for type_ in (column.type, getattr(column.type, "impl", None)):
                    module = type(type_).__module__ if type_ is not None else "sqlalchemy"
                    names.add(module.split(".")[0])
    found: list[tuple[str, str | None]] = []
    for name in sorted(names - {"sqlalchemy", "builtins"}):
        try:
            found.append((name, version(name)))
        except (PackageNotFoundError, ValueError):
            found.append((name, None))  # the project's own code: its types are in the rows
    return found


def _foreign_comparators() -> bool:
    """Whether a library registered its own Alembic comparator (alembic_utils, say): code
    that the digest cannot see takes part in the comparison. A library registers one by
    importing Alembic's comparison module, so while nothing imported it there is none (and
    importing it here would cost more than the rest of the fingerprint)."""
    import sys

    compare = sys.modules.get("alembic.autogenerate.compare")
    if compare is None:
        return False
    registry = getattr(getattr(compare, "comparators", None), "_registry", None)
    if not isinstance(registry, dict):
        return True  # an Alembic whose registry this does not know: do not trust
    for entries in registry.values():
        for entry in entries if isinstance(entries, (list, tuple)) else [entries]:
            function = entry[0] if isinstance(entry, tuple) else entry
            module = getattr(function, "__module__", "") or ""
            if not module.startswith(("alembic.", "sqlmanage.")):
                return True
    return False


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
        parts.append(
            repr(
                (
                    column.name,
                    _type_text(column.type),
                    column.nullable,
                    column.primary_key,
                    _text(column.server_default),
                    column.comment,
                    _text(column.computed),
                    _text(column.identity),
                    column.autoincrement,
                    _options(column),
                    sorted(str(_text(c)) for c in column.constraints),
                )
            )
        )
    for constraint in sorted(table.constraints, key=lambda c: (type(c).__name__, str(c.name))):
        detail: list[object] = [type(constraint).__name__, str(constraint.name)]
        detail.append([c.name for c in getattr(constraint, "columns", ())])
        for element in getattr(constraint, "elements", ()):
            detail.append(
                (
                    element.target_fullname,
                    element.ondelete,
                    element.onupdate,
                    element.deferrable,
                    element.initially,
                )
            )
        if hasattr(constraint, "sqltext"):
            detail.append(_text(constraint.sqltext))
        detail.append(_options(constraint))
        parts.append(repr(detail))
    for index in sorted(table.indexes, key=lambda i: str(i.name)):
        parts.append(
            repr(
                (
                    str(index.name),
                    index.unique,
                    [_text(e) for e in index.expressions],
                    _options(index),
                )
            )
        )
    return "\n".join(parts)


def _type_text(type_) -> str:
    """A type with its variants for other dialects (its repr shows only the base type)."""
    variants = sorted((name, repr(t)) for name, t in getattr(type_, "_variant_mapping", {}).items())
    return repr((repr(type_), variants))


def _options(item) -> str:
    """Dialect options (``postgresql_where``, ``mysql_engine``, ...) as text, their clauses compiled."""
    return repr(sorted((k, _text(v)) for k, v in item.dialect_kwargs.items()))


IDENTITY_OPTIONS = (
    "always",
    "on_null",
    "start",
    "increment",
    "minvalue",
    "maxvalue",
    "nominvalue",
    "nomaxvalue",
    "cycle",
    "cache",
    "order",
    "persisted",
)


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
    """A module's spec, found without running any package's ``__init__``; None if it cannot be.

    ``importlib.util.find_spec("airflow.models")`` imports ``airflow`` first (seconds, for
    some frameworks) only to learn where the files are. Here each level is asked of the
    import system's finders (``sys.meta_path``, in its order: the path finder, an editable
    install's finder) with the parent's search locations from the parent's spec, which is
    what importing would hand them, minus the import. A finder that needs the parent imported
    (it raises) gives no answer: the caller then compares instead of trusting file times.
    """
    import sys

    if name in sys.modules:
        return getattr(sys.modules[name], "__spec__", None)
    parts = name.split(".")
    locations = None
    spec = None
    for depth in range(1, len(parts) + 1):
        dotted = ".".join(parts[:depth])
        module = sys.modules.get(dotted)
        if module is not None:  # imported already: its own __path__, as importing would use
            spec = getattr(module, "__spec__", None)
            locations = getattr(module, "__path__", None)
        else:
            spec = _find_without_import(dotted, locations)
            if spec is None:
                return None
            locations = spec.submodule_search_locations
        if locations is None and depth < len(parts):
            return None
    return spec


def _find_without_import(name: str, locations):
    """The spec the first finder of ``sys.meta_path`` gives for ``name``, as importing asks."""
    import sys

    for finder in list(sys.meta_path):
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        try:
            spec = find_spec(name, locations)
        except Exception:
            return None
        if spec is not None:
            return spec
    return None


def _cache_file(project) -> Path:
    return project.migrations_dir / "__pycache__" / CACHE_FILE


def _read(cache: Path) -> list[str]:
    try:
        keys = json.loads(cache.read_text(encoding="utf-8")).get("clean", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [k for k in keys if isinstance(k, str)] if isinstance(keys, list) else []


def _write(cache: Path, keys: list[str]) -> None:
    from sqlmanage.engine.revision_index import write_cache

    write_cache(cache, {"clean": keys})
