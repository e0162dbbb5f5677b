"""Where sqlmanage's comparison of models and schema differs from Alembic's defaults.

- Server defaults: Alembic compares the reflected default text with the model's rendered
  default, so MariaDB's ``current_timestamp()`` against ``now()``, or its ``1`` against
  ``true``, look like changes that every ``makemigrations`` would write again. Equal
  spellings are declared equal here; anything else is left to Alembic.
- CHECK constraints are compared by name (Alembic's opt-in plugin, where this Alembic has
  it), except the ones a database adds by itself (MariaDB's ``json_valid`` on JSON columns).
- PostgreSQL JSON/JSONB types render with the ``sa.`` prefix their default ``astext_type``
  needs, also in a migration generated against another database.
"""

from __future__ import annotations

import importlib.util
import re

from sqlalchemy import Boolean

NOW = {"now()", "current_timestamp", "current_timestamp()", "localtimestamp", "getdate()"}
TRUE = {"true", "1", "b'1'"}
FALSE = {"false", "0", "b'0'"}


def normalize_default(text: str | None, is_boolean: bool) -> str | None:
    """A canonical spelling: no outer parentheses or quotes, lowercase, known synonyms merged."""
    if text is None:
        return None
    value = text.strip()
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


def compare_server_default(context, inspected_column, metadata_column, inspected_default,
                           metadata_default, rendered_metadata_default):
    """Alembic hook: False when both defaults mean the same, None to let Alembic decide."""
    if inspected_default is None or rendered_metadata_default is None:
        return None
    is_boolean = isinstance(metadata_column.type, Boolean)
    if normalize_default(inspected_default, is_boolean) == normalize_default(
        rendered_metadata_default, is_boolean
    ):
        return False
    return None


CHECK_PLUGIN = "alembic.ext.checkconstraint_byname"


def plugin_options() -> dict:
    """Alembic's autogenerate plugins, with CHECK constraint comparison where available."""
    try:
        if importlib.util.find_spec(CHECK_PLUGIN) is None:
            return {}
    except ModuleNotFoundError:  # Alembic before 1.18 has no alembic.ext at all
        return {}
    return {"autogenerate_plugins": ["alembic.autogenerate.*", CHECK_PLUGIN]}


def is_database_own_check(obj, type_: str) -> bool:
    """A reflected CHECK the database made itself, not the models (MariaDB's JSON checks)."""
    if type_ != "check_constraint":
        return False
    return "json_valid(" in str(getattr(obj, "sqltext", "")).lower()


def render_item(type_: str, obj, autogen_context):
    """Render PostgreSQL JSON/JSONB without the bare ``Text()`` Alembic writes for them."""
    from sqlalchemy import Text
    from sqlalchemy.dialects import postgresql

    if type_ != "type" or not isinstance(obj, (postgresql.JSON, postgresql.JSONB)):
        return False
    astext = obj.astext_type
    if type(astext) is not Text or astext.length is not None:
        return False
    autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
    return f"postgresql.{type(obj).__name__}()"
