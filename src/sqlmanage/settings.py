"""Find and load the project's settings, the way Django does.

Lookup order: ``--settings`` beats ``SQLMANAGE_SETTINGS_MODULE``, which beats the default
that manage.py sets; with none of them, the one package beside manage.py (or in the current
directory) that has a ``settings.py`` is used. Only the standard library is imported here,
so that ``--help`` stays fast.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from sqlmanage.errors import SettingsError

ENV_SETTINGS = "SQLMANAGE_SETTINGS_MODULE"
ENV_DATABASE_URL = "DATABASE_URL"
DEFAULT_ALIAS = "default"
MIGRATION_OPTIONS = (
    "MIGRATION_LOCK_TIMEOUT",
    "MIGRATION_STATEMENT_TIMEOUT",
    "MIGRATION_LOCK_TRIES",
)
DATABASE_KEYS = ("URL", "MODELS", "MIGRATIONS") + MIGRATION_OPTIONS


def database_url_variable(alias: str) -> str:
    """The environment variable that overrides an alias's URL: DATABASE_URL for 'default',
    DATABASE_URL_<ALIAS> for the others (upper case, other characters as '_')."""
    if alias == DEFAULT_ALIAS:
        return ENV_DATABASE_URL
    return f"{ENV_DATABASE_URL}_{re.sub(r'[^A-Za-z0-9]', '_', alias).upper()}"


@dataclass
class DatabaseSettings:
    """One entry of ``DATABASES``: where it is, which models and migrations belong to it."""

    alias: str
    url: str
    models: list[str]
    migrations: Path
    label: str
    migration_options: dict = field(
        default_factory=dict
    )  # MIGRATION_OPTIONS: engine/timeouts.py reads them


@dataclass
class Settings:
    """The settings a command needs, with every default filled in."""

    module_name: str
    base_dir: Path
    databases: dict[str, DatabaseSettings]
    compare_type: bool | str = True  # or the dotted path of Alembic's comparison callable
    compare_server_default: bool | str = True
    render_as_batch: bool | None = None
    version_table: str = "alembic_version"
    version_table_schema: str | None = None
    include_schemas: bool = False
    exclude_tables: list[str] = field(default_factory=list)
    # Dotted paths ("package.module.name") to what an adopted env.py used to hold.
    include_object: str | None = None
    include_name: str | None = None
    process_revision_directives: str | None = None
    target_metadata: str | None = None
    baseline: str | None = None
    baseline_on_migrate: bool = False
    template_args: dict = field(default_factory=dict)  # extra names for script.py.mako

    def database(self, alias: str | None) -> DatabaseSettings:
        alias = alias or DEFAULT_ALIAS
        try:
            return self.databases[alias]
        except KeyError:
            known = ", ".join(sorted(self.databases))
            raise SettingsError(
                f"No database named '{alias}' in {self.module_name}.DATABASES.",
                hint=f"Known aliases: {known}.",
            ) from None


def search_dirs() -> list[Path]:
    """Directories where a project may live: the running manage.py's folder, then the cwd."""
    dirs = []
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is not None and script.name == "manage.py":
        dirs.append(script.resolve().parent)
    cwd = Path.cwd()
    if cwd not in dirs:
        dirs.append(cwd)
    return dirs


def find_settings_module(explicit: str | None = None) -> str:
    """Return the dotted name of the settings module, following Django's precedence."""
    if explicit is not None:
        if not explicit.strip() or explicit.startswith(".") or "/" in explicit:
            raise SettingsError(
                f"'{explicit}' is not a settings module name.",
                hint="Give a dotted module path such as project.settings.",
            )
        return explicit
    from_env = os.environ.get(ENV_SETTINGS)
    if from_env:
        return from_env
    for directory in search_dirs():
        candidates = sorted(
            child.name
            for child in directory.iterdir()
            if child.is_dir() and (child / "settings.py").is_file()
        )
        if len(candidates) == 1:
            return f"{candidates[0]}.settings"
        if len(candidates) > 1:
            raise SettingsError(
                f"Several packages in {directory} have a settings.py: {', '.join(candidates)}.",
                hint=f"Pick one with --settings or {ENV_SETTINGS}, e.g. "
                f"--settings {candidates[0]}.settings",
            )
    raise SettingsError(
        "No settings module found.",
        hint=f"Run from your project's folder, or name the module with --settings or "
        f"{ENV_SETTINGS} (e.g. project.settings).",
    )


def import_settings(module_name: str) -> ModuleType:
    """Import the settings module, turning every failure into a message that names it."""
    for directory in reversed(search_dirs()):
        if str(directory) not in sys.path:
            sys.path.insert(0, str(directory))
    try:
        return importlib.import_module(module_name)
    except SyntaxError as exc:
        raise SettingsError(
            f"Settings module '{module_name}' has a syntax error: {exc.msg} "
            f"({exc.filename}, line {exc.lineno}).",
            hint="Fix the line above and run the command again.",
        ) from exc
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise SettingsError(
                f"Settings module '{module_name}' cannot be found.",
                hint=f"Check --settings / {ENV_SETTINGS}, and run from the folder that "
                f"holds manage.py.",
            ) from exc
        raise _raised_while_importing(module_name, exc) from exc
    except Exception as exc:
        raise _raised_while_importing(module_name, exc) from exc


def _raised_while_importing(module_name: str, exc: BaseException) -> SettingsError:
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" ({frame.filename}, line {frame.lineno})" if frame else ""
    return SettingsError(
        f"Settings module '{module_name}' raised {type(exc).__name__}: {exc}{where}.",
        hint="Fix the settings module; run with --traceback to see the whole error.",
    )


def load_settings(explicit: str | None = None) -> Settings:
    """Find, import and normalise the settings; every value gets its documented default."""
    module_name = find_settings_module(explicit)
    module = import_settings(module_name)
    module_file = getattr(module, "__file__", None)
    if not module_file:
        raise SettingsError(f"Settings module '{module_name}' is not a file.")
    package, package_dir = _home(module_name, module, Path(module_file).resolve().parent)
    check = _Checker(module, module_name)
    base_dir = Path(
        check.value("BASE_DIR", (str, Path), package_dir.parent if package else package_dir)
    )
    label = package.rpartition(".")[2] if package else package_dir.name

    default_models = [f"{package}.models" if package else "models"]
    default = DatabaseSettings(
        alias=DEFAULT_ALIAS,
        url=check.value("DATABASE_URL", str, None) or f"sqlite:///{base_dir / 'db.sqlite3'}",
        models=_as_list(getattr(module, "MODELS", default_models), "MODELS", module_name),
        migrations=_migrations_path(
            check.value("MIGRATIONS", (str, Path), None), package_dir, base_dir
        ),
        label=label,
    )
    module_options = {
        k: getattr(module, k) for k in MIGRATION_OPTIONS if getattr(module, k, None) is not None
    }
    default.migration_options = module_options
    databases = {DEFAULT_ALIAS: default}
    for alias, entry in (check.value("DATABASES", dict, None) or {}).items():
        if not isinstance(alias, str) or not alias.strip():
            raise SettingsError(f"{module_name}.DATABASES has a key {alias!r}: aliases are names.")
        if not isinstance(entry, dict):
            raise SettingsError(f"{module_name}.DATABASES['{alias}'] must be a dict.")
        unknown = sorted(str(key) for key in entry if key not in DATABASE_KEYS)
        if unknown:
            raise SettingsError(
                f"{module_name}.DATABASES['{alias}'] has unknown key(s): {', '.join(unknown)}.",
                hint=f"Each database takes {', '.join(DATABASE_KEYS)}.",
            )
        for key, kinds in (("URL", str), ("MIGRATIONS", (str, Path))):
            if entry.get(key) is not None and not isinstance(entry[key], kinds):
                raise SettingsError(
                    f"{module_name}.DATABASES['{alias}']['{key}'] must be a {_kind(kinds)}."
                )
        databases[alias] = DatabaseSettings(
            alias=alias,
            url=os.environ.get(database_url_variable(alias))
            or entry.get("URL")
            or (default.url if alias == DEFAULT_ALIAS else ""),
            models=_as_list(entry.get("MODELS", default.models), "MODELS", module_name),
            migrations=_migrations_path(entry.get("MIGRATIONS"), package_dir, base_dir)
            if entry.get("MIGRATIONS")
            else default.migrations,
            label=label if alias == DEFAULT_ALIAS else f"{label}:{alias}",
            migration_options={
                **module_options,
                **{k: entry[k] for k in MIGRATION_OPTIONS if k in entry},
            },
        )
        if not databases[alias].url:
            raise SettingsError(
                f"{module_name}.DATABASES['{alias}'] has no URL.",
                hint=f"Give it a 'URL', or set the environment variable {database_url_variable(alias)}.",
            )
    env_url = os.environ.get(ENV_DATABASE_URL)
    if env_url:
        databases[DEFAULT_ALIAS].url = env_url

    return Settings(
        module_name=module_name,
        base_dir=base_dir,
        databases=databases,
        compare_type=check.switch_or_hook("COMPARE_TYPE", True),
        compare_server_default=check.switch_or_hook("COMPARE_SERVER_DEFAULT", True),
        render_as_batch=check.value("RENDER_AS_BATCH", bool, None),
        version_table=check.value("VERSION_TABLE", str, "alembic_version", required=True),
        version_table_schema=check.value("VERSION_TABLE_SCHEMA", str, None),
        include_schemas=check.value("INCLUDE_SCHEMAS", bool, False),
        exclude_tables=_as_list(
            getattr(module, "EXCLUDE_TABLES", []), "EXCLUDE_TABLES", module_name
        ),
        include_object=check.dotted_path("INCLUDE_OBJECT"),
        include_name=check.dotted_path("INCLUDE_NAME"),
        process_revision_directives=check.dotted_path("PROCESS_REVISION_DIRECTIVES"),
        target_metadata=check.dotted_path("TARGET_METADATA"),
        baseline=check.dotted_path("BASELINE"),
        baseline_on_migrate=check.value("BASELINE_ON_MIGRATE", bool, False),
        template_args=check.value("TEMPLATE_ARGS", dict, None) or {},
    )


def resolve_setting(settings: Settings, name: str, path: str):
    """The object a dotted-path setting names (``package.module.attribute[.attribute]``).

    Imported on use, not in ``load_settings``, so commands that never compare or replay
    import nothing of the project's for it.
    """
    parts = path.split(".")
    where = f"{settings.module_name}.{name}"
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            found = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
                continue
            raise _unimportable(where, path, module_name, exc) from exc
        except Exception as exc:
            raise _unimportable(where, path, module_name, exc) from exc
        for attribute in parts[split:]:
            if not hasattr(found, attribute):
                raise SettingsError(
                    f"{where} names {path}, but {module_name} has no '{'.'.join(parts[split:])}'.",
                    hint=f"Fix {name} in {settings.module_name}.",
                )
            found = getattr(found, attribute)
        return found
    raise SettingsError(
        f"{where} names {path}, but no module of it can be imported.",
        hint=f"Fix {name} in {settings.module_name}: a dotted path such as myapp.hooks.{name.lower()}.",
    )


def _unimportable(where: str, path: str, module_name: str, exc: BaseException) -> SettingsError:
    return SettingsError(
        f"{where} names {path}, but importing {module_name} raised {type(exc).__name__}: {exc}.",
        hint="Fix that module; run with --traceback to see the whole error.",
    )


class _Checker:
    """Read a setting and insist on its type, so a typo is a message, not a crash later."""

    def __init__(self, module: ModuleType, module_name: str):
        self.module, self.module_name = module, module_name

    def value(self, name: str, kinds, default, required: bool = False):
        value = getattr(self.module, name, default)
        if value is None and not required:
            return None
        if not isinstance(value, kinds):
            raise SettingsError(
                f"{self.module_name}.{name} must be a {_kind(kinds)}, not {type(value).__name__}.",
                hint=f"Fix {name} in {self.module_name}.",
            )
        return value

    def switch_or_hook(self, name: str, default: bool) -> bool | str:
        """A comparison switch: True/False, or the dotted path of a callable Alembic asks
        first (what an adopted env.py passed, as Airflow's ``compare_type=compare_type``)."""
        value = getattr(self.module, name, default)
        if isinstance(value, bool):
            return value
        if value is None:
            return default
        if isinstance(value, str) and not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+", value):
            raise SettingsError(
                f"{self.module_name}.{name} must be a boolean or the dotted path of a comparison "
                f"function, not {value!r}.",
                hint=f"Fix {name} in {self.module_name}: True, False or e.g. 'myapp.hooks.{name.lower()}'.",
            )
        return self.dotted_path(name) or default

    def dotted_path(self, name: str) -> str | None:
        """A setting that names an object by its dotted path; a callable is taken as is."""
        value = getattr(self.module, name, None)
        if value is None:
            return None
        if callable(value) or not isinstance(value, str):
            module = getattr(value, "__module__", None)
            qualname = getattr(value, "__qualname__", "")
            if module and qualname and "<" not in qualname:
                return f"{module}.{qualname}"
            raise SettingsError(
                f"{self.module_name}.{name} must be a dotted path such as 'myapp.hooks.{name.lower()}'.",
                hint=f"Fix {name} in {self.module_name}.",
            )
        if not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+", value):
            raise SettingsError(
                f"{self.module_name}.{name} is '{value}', which is not a dotted path.",
                hint=f"Give module and name, e.g. 'myapp.hooks.{name.lower()}'.",
            )
        return value


def _kind(kinds) -> str:
    names = {str: "string", Path: "path", bool: "boolean", dict: "dict"}
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _as_list(value, name: str, module_name: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise SettingsError(f"{module_name}.{name} must be a string or a list of strings.")


def _home(module_name: str, module: ModuleType, folder: Path) -> tuple[str, Path]:
    """The package (and its folder) that settings.py would sit in, for the defaults.

    ``project/settings.py`` is at home in ``project``; so are a settings package
    (``project/settings/__init__.py``) and a module inside one (``project/settings/prod.py``):
    their migrations and models are where the plain layout puts them, not inside settings/.
    """
    parts = module_name.split(".")
    if hasattr(module, "__path__"):
        folder = folder.parent
    elif len(parts) >= 2 and parts[-2] == "settings":
        folder, parts = folder.parent, parts[:-1]
    return ".".join(parts[:-1]), folder


def _migrations_path(value, package_dir: Path, base_dir: Path) -> Path:
    """The migrations folder: beside settings.py by default, relative paths from BASE_DIR."""
    if value is None:
        return package_dir / "migrations"
    path = Path(value)
    return path if path.is_absolute() else base_dir / path
