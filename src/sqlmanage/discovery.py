"""Import every model module so that autogenerate sees every table.

The classic Alembic failure is a model module that nobody imported: its table is silently
dropped from, or never added to, the next migration. Here each entry of ``MODELS`` is
imported with all its submodules, recursively, and every MetaData they reach is collected,
so several declarative bases or plain MetaData objects are all seen.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import traceback
from types import ModuleType

from sqlmanage.errors import ModelImportError


def import_models(names: list[str]) -> list[ModuleType]:
    """Import each named module or package and every submodule below it, in a stable order."""
    import pkgutil

    modules: dict[str, ModuleType] = {}
    with _no_collection_of_what_stays():
        for name in names:
            module = _import(name)
            modules[module.__name__] = module
            for info in pkgutil.walk_packages(
                getattr(module, "__path__", []), prefix=f"{module.__name__}.", onerror=_reraise
            ):
                if info.name not in modules:
                    modules[info.name] = _import(info.name)
    return list(modules.values())


FREEZE_AFTER_IMPORT = False  # set by the command line's main(): its process ends with the command


@contextlib.contextmanager
def _no_collection_of_what_stays():
    """No garbage collection while the models are built, and, on the command line, none of
    them afterwards.

    Declaring 500 mapped classes makes millions of objects that live as long as the process;
    the cycle collector walks them all each time the heap has grown by a quarter, and again
    on every full collection after the import, finding nothing to free: a fifth of a no-op
    ``migrate``. ``gc.freeze`` leaves everything there is at that point out of later
    collections, which suits a process that ends with its command; a library caller's
    process (tests calling ``call_command``, the pytest plugin) keeps its own collector as it
    was, since frozen objects are never freed.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        if FREEZE_AFTER_IMPORT:
            gc.freeze()


def _reraise(name: str) -> None:
    _import(name)


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise ModelImportError(
                f"Model module '{name}' cannot be found.",
                hint="Check MODELS in your settings: it lists packages or modules to import.",
            ) from exc
        raise _failed(name, exc) from exc
    except Exception as exc:
        raise _failed(name, exc) from exc


def _failed(name: str, exc: BaseException) -> ModelImportError:
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    if isinstance(exc, SyntaxError):
        where = f" ({exc.filename}, line {exc.lineno})"
    elif frames:
        where = f" ({frames[-1].filename}, line {frames[-1].lineno})"
    else:
        where = ""
    return ModelImportError(
        f"Model module '{name}' failed to import: {type(exc).__name__}: {exc}{where}.",
        hint="Fix that module; run with --traceback to see the whole error.",
    )


def collect_metadata(modules: list[ModuleType]) -> list:
    """Every MetaData reachable from the modules' globals: declarative bases, models, tables."""
    from sqlalchemy import MetaData, Table

    found: dict[int, MetaData] = {}
    for module in modules:
        for value in vars(module).values():
            metadata = None
            if isinstance(value, MetaData):
                metadata = value
            elif isinstance(value, Table):
                metadata = value.metadata
            elif isinstance(value, type):
                candidate = getattr(value, "metadata", None)
                if isinstance(candidate, MetaData):
                    metadata = candidate
            if metadata is not None:
                found.setdefault(id(metadata), metadata)
    return list(found.values())
