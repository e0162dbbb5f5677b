"""What ``shell`` puts in the namespace: every model class, an engine, a session, the metadata.

Django 5.2's shell imports every model; here the models are every class mapped by the
declarative bases (registries) that the project's model modules define, found with the same
discovery as makemigrations. An async database URL gets a synchronous engine on the same
database, since a REPL cannot await: the driver is swapped for the installed sync one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

HELPER_IMPORTS = {"sqlalchemy": ["func", "select"]}
HELPER_MODULE_ALIASES = {"sa": "sqlalchemy"}


@dataclass
class ShellNamespace:
    """The names to hand to the REPL, and how each got there, for the -v report."""

    namespace: dict[str, Any]
    imports: dict[str | None, list[str]]  # module -> names ('None' holds 'import x as y' lines)
    objects: list[tuple[str, str]]  # name, what it is (engine, session, metadata)
    notes: list[str] = field(default_factory=list)
    session: Any = None
    engine: Any = None

    def close(self) -> None:
        """Close the session and dispose of the engine, even if the user rebound the names."""
        self.session.close()
        self.engine.dispose()


def mapped_classes(modules: list[ModuleType]) -> list[type]:
    """Every class mapped by a registry that the modules reach, ordered by module and name."""
    from sqlalchemy.orm import registry as Registry

    registries: dict[int, Registry] = {}
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, Registry):
                candidate: object = value
            elif isinstance(value, type):
                candidate = getattr(value, "registry", None)
            else:
                continue
            if isinstance(candidate, Registry):
                registries.setdefault(id(candidate), candidate)
    classes = {mapper.class_ for found in registries.values() for mapper in found.mappers}
    return sorted(classes, key=lambda cls: (cls.__module__, cls.__qualname__))


def shell_namespace(project) -> ShellNamespace:
    """Import the models and connect an engine and a session to the project's database."""
    import importlib

    from sqlalchemy.orm import Session

    from sqlmanage.database import display_url, is_async, parse_url
    from sqlmanage.discovery import collect_metadata, import_models

    modules = import_models(project.database.models)
    namespace: dict[str, Any] = {}
    imports: dict[str | None, list[str]] = {}
    for alias, module_name in HELPER_MODULE_ALIASES.items():
        namespace[alias] = importlib.import_module(module_name)
        imports.setdefault(None, []).append(f"{module_name} as {alias}")
    for module_name, names in HELPER_IMPORTS.items():
        module = importlib.import_module(module_name)
        for name in names:
            namespace[name] = getattr(module, name)
        imports[module_name] = list(names)
    for cls in mapped_classes(modules):
        if cls.__name__ not in namespace or namespace[cls.__name__] is cls:
            namespace[cls.__name__] = cls
            imports.setdefault(cls.__module__, []).append(cls.__name__)

    url, notes = project.url, []
    if is_async(url):
        sync_url = parse_url(
            url.set(drivername=url.get_backend_name()).render_as_string(hide_password=False)
        )
        notes.append(
            f"The database URL names the async driver {url.get_driver_name()}; engine and "
            f"session use the synchronous driver {sync_url.get_driver_name()} on the same database."
        )
        url = sync_url
    engine = _engine(url)
    session = Session(engine)
    namespace["engine"] = engine
    namespace["session"] = session
    objects = [
        ("engine", f"create_engine({display_url(url)!r})"),
        ("session", "Session(engine)"),
    ]
    metadata = collect_metadata(modules)
    if metadata:
        namespace["metadata"] = metadata[0] if len(metadata) == 1 else metadata
        tables = sorted(name for each in metadata for name in each.tables)
        shown = f"{len(tables)} table{'s' if len(tables) != 1 else ''}"
        what = "MetaData" if len(metadata) == 1 else f"a list of {len(metadata)} MetaData"
        objects.append(
            ("metadata", f"{what} with {shown}" + (f": {', '.join(tables)}" if tables else ""))
        )
    return ShellNamespace(namespace, imports, objects, notes, session=session, engine=engine)


def _engine(url):
    """A plain SQLAlchemy engine, as the application would make it.

    Not sqlmanage's migration engine: that one opens an SQLite transaction for every read,
    which in an idle REPL would hold a lock that keeps 'migrate' waiting.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.exc import NoSuchModuleError

    from sqlmanage.database import DRIVER_PACKAGES, display_url
    from sqlmanage.errors import DriverMissing, SettingsError

    try:
        return create_engine(url)
    except NoSuchModuleError:
        raise SettingsError(
            f"SQLAlchemy has no dialect for '{url.drivername}' (in {display_url(url)})."
        ) from None
    except ImportError as exc:
        driver = url.get_driver_name()
        raise DriverMissing(
            f"The database driver '{driver}' for {display_url(url)} is not installed ({exc}).",
            hint=f"Install it: pip install {DRIVER_PACKAGES.get(driver, driver)}",
        ) from None


def import_lines(result: ShellNamespace) -> list[str]:
    """The report of ``-v 2``, as Python lines: imports first, then the objects made for it."""
    lines = [f"import {entry}" for entry in result.imports.get(None, [])]
    lines += [
        f"from {module} import {', '.join(names)}"
        for module, names in result.imports.items()
        if module is not None
    ]
    for name, description in result.objects:
        if name == "metadata":
            lines.append(f"metadata  # {description}")
        else:
            lines.append(f"{name} = {description}")
    return lines
