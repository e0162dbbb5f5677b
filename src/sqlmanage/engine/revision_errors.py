"""Alembic's history errors and broken migration files, said in sqlmanage's words.

Translated where the history is read, since that is the layer that knows what the user was
asking for.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager

from sqlmanage.errors import MigrationFileError, SqlmanageError


@contextmanager
def translate_revision_errors() -> Iterator[None]:
    """Turn Alembic's history errors and broken migration files into sqlmanage errors."""
    try:
        yield
    except SyntaxError as exc:
        raise MigrationFileError(
            f"Migration file {exc.filename} has a syntax error on line {exc.lineno}: {exc.msg}.",
            hint="Fix the file; every migration file must be valid Python.",
        ) from exc
    except SqlmanageError:
        raise
    except Exception as exc:
        if isinstance(exc, OSError) and exc.filename:
            raise MigrationFileError(
                f"Cannot read {exc.filename}: {exc.strerror or exc}.",
                hint="Check that the migrations folder and its files exist, are a folder and "
                "files as expected, and are readable by this user.",
            ) from exc
        kind = _alembic_error_kind(exc)
        if kind == "cycle":
            raise MigrationFileError(
                f"The migration history has a cycle: {exc}.",
                hint="Check the down_revision of the migrations named above.",
            ) from exc
        if kind == "revision" or isinstance(exc, UserWarning):
            raise MigrationFileError(
                f"The migration history is broken: {exc}",
                hint="Check the revision and down_revision of the migration files.",
            ) from exc
        frames = [
            f for f in traceback.extract_tb(exc.__traceback__) if "/alembic/" not in f.filename
        ]
        where = f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""
        raise MigrationFileError(
            f"A migration file failed to load: {type(exc).__name__}: {exc}{where}.",
            hint="Fix that file; run with --traceback to see the whole error.",
        ) from exc


def _alembic_error_kind(exc: Exception) -> str | None:
    """ "cycle" or "revision" for Alembic's history errors; looked up without importing Alembic."""
    import sys

    revision = sys.modules.get("alembic.script.revision")
    util = sys.modules.get("alembic.util")
    if revision is not None and isinstance(exc, revision.CycleDetected):
        return "cycle"
    if revision is not None and isinstance(exc, revision.RevisionError):
        return "revision"
    if util is not None and isinstance(exc, util.CommandError):
        return "revision"
    return None
