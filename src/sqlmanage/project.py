"""A loaded project: settings plus one database, with its models, history and Alembic config.

Everything is computed on first use and kept, so a command that never needs the models
never imports them, and one that needs them twice imports them once.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from sqlmanage.errors import ModelImportError
from sqlmanage.settings import ENV_SETTINGS, Settings, load_settings

INI_SETTINGS_OPTION = "sqlmanage_settings"


class Project:
    def __init__(self, settings: Settings, alias: str | None = None):
        self.settings = settings
        self.database = settings.database(alias)

    @property
    def label(self) -> str:
        """The migration tree's app label (a root's branch label, else the package name)."""
        return self.history.label

    @classmethod
    def load(cls, settings_module: str | None = None, alias: str | None = None) -> Project:
        return cls(load_settings(settings_module), alias)

    @classmethod
    def from_alembic_config(cls, config) -> Project:
        """The project behind a plain ``alembic`` run: settings named in alembic.ini or found.

        The database is ``-x database=ALIAS``, else the alias that names the ini section
        (``alembic -n analytics``), else the alias whose MIGRATIONS is the script location.
        """
        explicit = os.environ.get(ENV_SETTINGS) or _ini_option(config, INI_SETTINGS_OPTION)
        settings = load_settings(explicit)
        return cls(settings, _alembic_alias(config, settings))

    @property
    def migrations_dir(self) -> Path:
        return self.database.migrations

    @cached_property
    def url(self):
        from sqlmanage.database import parse_url

        return parse_url(self.database.url)

    @cached_property
    def metadata(self) -> list:
        """The MetaData to compare with: TARGET_METADATA, else every one the models reach."""
        from sqlmanage.discovery import collect_metadata, import_models

        found = collect_metadata(import_models(self.database.models))
        if self.settings.target_metadata:
            return [self._target_metadata()]
        if not found:
            raise ModelImportError(
                f"No SQLAlchemy models found in {', '.join(self.database.models)}.",
                hint="MODELS in your settings names the packages or modules that define your "
                "declarative base and models.",
            )
        _refuse_duplicate_tables(found, self.settings.module_name)
        return found

    def _target_metadata(self):
        from sqlalchemy import MetaData

        from sqlmanage.settings import resolve_setting

        chosen = resolve_setting(self.settings, "TARGET_METADATA", self.settings.target_metadata)  # type: ignore[arg-type]
        chosen = getattr(chosen, "metadata", chosen)
        if not isinstance(chosen, MetaData):
            raise ModelImportError(
                f"{self.settings.module_name}.TARGET_METADATA names {self.settings.target_metadata}, "
                f"which is a {type(chosen).__name__}, not a MetaData or a declarative base.",
                hint="Name the MetaData (myapp.models.Base.metadata) or the declarative base.",
            )
        return chosen

    def require_own_env(self) -> None:
        """Refuse to run an env.py that is not sqlmanage's (an adopted project's own).

        Such an env.py takes no migration lock, writes no audit trail, may run every
        migration in one transaction and may connect to a database other than the one
        sqlmanage names: reporting success on it would be a lie.
        """
        env = self.migrations_dir / "env.py"
        try:
            text = env.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return  # no env.py: Alembic says so in its own words
        if "sqlmanage" in text:
            return
        from sqlmanage.errors import SettingsError

        raise SettingsError(
            f"{env} is the project's own env.py, not sqlmanage's: migrate would run it without "
            "the migration lock, the audit trail or a transaction per migration, on whatever "
            "database it connects to.",
            hint="Run 'python -m sqlmanage adopt' to switch (your env.py is kept as env.py.orig "
            "and its options move to the settings), or make env.py these two lines: "
            "'from sqlmanage.alembic_env import run_migrations' and 'run_migrations()'.",
        )

    @property
    def has_autogenerate_hooks(self) -> bool:
        settings = self.settings
        return any(
            (
                settings.include_object,
                settings.include_name,
                settings.process_revision_directives,
                isinstance(settings.compare_type, str),
                isinstance(settings.compare_server_default, str),
            )
        )

    def hook(self, name: str):
        """The callable a dotted-path setting names (INCLUDE_OBJECT, BASELINE, ...), or None."""
        from sqlmanage.settings import resolve_setting

        path = getattr(self.settings, name.lower())
        return resolve_setting(self.settings, name, path) if path else None

    @cached_property
    def config(self):
        """An Alembic Config for this project: alembic.ini if there is one, our script location."""
        from alembic.config import Config

        ini = self.settings.base_dir / "alembic.ini"
        config = Config(str(ini) if ini.is_file() else None)
        config.set_main_option("script_location", str(self.migrations_dir).replace("%", "%%"))
        return config

    @cached_property
    def history(self):
        from sqlmanage.engine.loading import load_history

        return load_history(
            self.migrations_dir,
            self.settings.base_dir / "alembic.ini",
            self.database.label,
            lambda: self.config,
        )

    def context_options(self, dialect_name: str, with_metadata: bool = True) -> dict:
        """Options for Alembic's ``context.configure``, the same for alembic and manage.py."""
        settings = self.settings
        batch = settings.render_as_batch
        from sqlmanage.engine.autodetect import comparison

        if isinstance(settings.compare_server_default, str):
            compare_server_default = self.hook("COMPARE_SERVER_DEFAULT")
        else:
            compare_server_default = comparison.server_default_comparison(
                settings.compare_server_default
            )
        compare_type = settings.compare_type
        options = {
            "compare_type": self.hook("COMPARE_TYPE")
            if isinstance(compare_type, str)
            else compare_type,
            "compare_server_default": compare_server_default,
            "render_as_batch": True if batch is None else bool(batch),
            "version_table": settings.version_table,
            "version_table_schema": settings.version_table_schema,
            "include_schemas": settings.include_schemas,
            "render_item": comparison.render_item,
            **comparison.plugin_options(),
        }
        if with_metadata:
            metadata = self.metadata
            options["target_metadata"] = metadata[0] if len(metadata) == 1 else metadata
        from sqlmanage.engine.audit import AUDIT_TABLE

        excluded = {*settings.exclude_tables, AUDIT_TABLE}
        theirs = self.hook("INCLUDE_OBJECT")

        def include_object(obj, name, type_, reflected, compare_to):
            if type_ == "table" and name in excluded:
                return False
            if reflected and comparison.is_database_own_check(obj, type_):
                return False
            if not reflected and _not_for_dialect(obj, dialect_name):
                return False
            return theirs is None or theirs(obj, name, type_, reflected, compare_to)

        options["include_object"] = include_object
        options["include_name"] = without_own_tables(self.hook("INCLUDE_NAME"))
        directives = self.hook("PROCESS_REVISION_DIRECTIVES")
        if directives is not None:
            options["process_revision_directives"] = directives
        return options


def _not_for_dialect(obj, dialect_name: str) -> bool:
    """A model index or constraint that ``ddl_if(dialect=...)`` keeps off this database, as
    ``create_all`` does: comparing it would report a phantom "create"."""
    condition = getattr(obj, "_ddl_if", None)
    dialects = getattr(condition, "dialect", None)
    if not dialects:
        return False
    return dialect_name not in ((dialects,) if isinstance(dialects, str) else tuple(dialects))


def without_own_tables(theirs=None):
    """An ``include_name`` for Alembic's autogenerate that never sees sqlmanage's own tables,
    then asks ``theirs`` (the project's own ``include_name``), if any.

    sqlmanage's env.py uses it; an adopted project that keeps its own env.py passes it to
    ``context.configure(include_name=without_own_tables(their_include_name))`` so that
    ``alembic revision --autogenerate`` never writes a migration dropping the audit table.
    """
    from sqlmanage.engine.audit import AUDIT_TABLE

    def include_name(name, type_, parent_names):
        if type_ == "table" and name == AUDIT_TABLE:
            return False
        return theirs is None or theirs(name, type_, parent_names)

    return include_name


def _refuse_duplicate_tables(found: list, settings_module: str) -> None:
    """Alembic cannot compare several MetaData that define one table twice: say which."""
    seen: dict[str, int] = {}
    for index, metadata in enumerate(found):
        for key in metadata.tables:
            if seen.setdefault(key, index) != index:
                raise ModelImportError(
                    f"The table {key} is defined in two different MetaData collections found "
                    "in MODELS (for example an old snapshot of the models beside the current "
                    "ones).",
                    hint=f"Set TARGET_METADATA in {settings_module} to the one to compare with "
                    "(e.g. 'myapp.models.Base.metadata'), or narrow MODELS to the modules that "
                    "define the current models.",
                )


def _ini_option(config, name: str) -> str | None:
    """An option of the ini section in use, falling back to the [alembic] section."""
    value = config.get_main_option(name)
    file_config = config.file_config
    if (
        value is None
        and config.config_ini_section != "alembic"
        and file_config.has_section("alembic")
    ):
        value = file_config.get("alembic", name, fallback=None)
    return value


def _alembic_alias(config, settings: Settings) -> str:
    from sqlmanage.errors import SettingsError
    from sqlmanage.settings import DEFAULT_ALIAS

    location = config.get_main_option("script_location")
    folder = Path(location).resolve() if location else None  # pkg:migrations matches no folder
    chosen = None
    for argument in getattr(config.cmd_opts, "x", None) or []:
        key, _, value = argument.partition("=")
        if key.strip() == "database":
            chosen = settings.database(value.strip()).alias
    if chosen is None and config.config_ini_section in settings.databases:
        chosen = config.config_ini_section
    if chosen is None:
        matching = [a for a, d in settings.databases.items() if d.migrations.resolve() == folder]
        return matching[0] if matching and DEFAULT_ALIAS not in matching else DEFAULT_ALIAS
    expected = settings.databases[chosen].migrations
    if folder is not None and folder.is_dir() and expected.resolve() != folder:
        raise SettingsError(
            f"The database '{chosen}' keeps its migrations in {expected}, but alembic was "
            f"given script_location {location}.",
            hint=f"Add an [{chosen}] section with script_location = {expected} to alembic.ini "
            f"and run 'alembic -n {chosen} ...'.",
        )
    return chosen
