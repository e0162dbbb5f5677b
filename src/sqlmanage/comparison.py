"""Server-default comparison that ignores how each database spells the same default.

Alembic compares the reflected default text with the model's rendered default, so MariaDB's
``current_timestamp()`` against ``now()``, or its ``1`` against ``true``, look like changes
and every ``makemigrations`` would write them again. Equal spellings are declared equal here;
anything else is left to Alembic's own comparison.
"""

from __future__ import annotations

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
