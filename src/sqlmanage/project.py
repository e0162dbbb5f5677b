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

PROJECT_ATTRIBUTE = "sqlmanage.project"
CONFIGURE_ATTRIBUTE = "sqlmanage.configure"
LOCK_ATTRIBUTE = "sqlmanage.lock"  # (timeout seconds or None, callback for the wait notice)
PREPARE_ATTRIBUTE = "sqlmanage.prepare"  # called with the locked connection before migrating
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
        """Every MetaData found by importing all model modules."""
        from sqlmanage.discovery import collect_metadata, import_models

        found = collect_metadata(import_models(self.database.models))
        if not found:
            raise ModelImportError(
                f"No SQLAlchemy models found in {', '.join(self.database.models)}.",
                hint="MODELS in your settings names the packages or modules that define your "
                "declarative base and models.",
            )
        return found

    @cached_property
    def config(self):
        """An Alembic Config for this project: alembic.ini if there is one, our script location."""
        from alembic.config import Config

        ini = self.settings.base_dir / "alembic.ini"
        config = Config(str(ini) if ini.is_file() else None)
        config.set_main_option("script_location", str(self.migrations_dir).replace("%", "%%"))
        config.attributes[PROJECT_ATTRIBUTE] = self
        return config

    @cached_property
    def history(self):
        from sqlmanage.history import load_history

        return load_history(
            self.migrations_dir, self.settings.base_dir / "alembic.ini", self.database.label,
            lambda: self.config,
        )

    def context_options(self, dialect_name: str, with_metadata: bool = True) -> dict:
        """Options for Alembic's ``context.configure``, the same for alembic and manage.py."""
        settings = self.settings
        batch = settings.render_as_batch
        from sqlmanage import comparison

        compare_server_default = settings.compare_server_default and comparison.compare_server_default
        options = {
            "compare_type": settings.compare_type,
            "compare_server_default": compare_server_default,
            "render_as_batch": dialect_name == "sqlite" if batch is None else bool(batch),
            "version_table": settings.version_table,
            "version_table_schema": settings.version_table_schema,
            "include_schemas": settings.include_schemas,
            "render_item": comparison.render_item,
            **comparison.plugin_options(),
        }
        if with_metadata:
            metadata = self.metadata
            options["target_metadata"] = metadata[0] if len(metadata) == 1 else metadata
        from sqlmanage.core.audit import AUDIT_TABLE

        excluded = set(settings.exclude_tables)

        def include_object(obj, name, type_, reflected, compare_to):
            if type_ == "table" and (name in excluded or name == AUDIT_TABLE):
                return False
            return not (reflected and comparison.is_database_own_check(obj, type_))

        options["include_object"] = include_object
        return options


def _ini_option(config, name: str) -> str | None:
    """An option of the ini section in use, falling back to the [alembic] section."""
    value = config.get_main_option(name)
    file_config = config.file_config
    if value is None and config.config_ini_section != "alembic" and file_config.has_section("alembic"):
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
