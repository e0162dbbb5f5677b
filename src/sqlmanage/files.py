"""Files written whole or not at all: written beside, flushed to disk, renamed into place.

A full disk, a read-only folder or a crash mid-write must never leave a 0-byte or half
migration file behind: every later command would fail on it. The temporary file is hidden
and does not end in ``.py``, so no history ever reads it. A failure is a clear error naming
the file, never "may be a bug".
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlmanage.errors import SqlmanageError


class FileWriteError(SqlmanageError):
    """A file could not be written (permissions, full disk, a file in the way)."""


def write_atomic(path: Path, text: str, *, exclusive: bool = False) -> None:
    """Write ``text`` to ``path`` whole; ``exclusive`` never replaces an existing file."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "x", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            _link_new(temporary, path)
        else:
            os.replace(temporary, path)
        _sync_folder(path.parent)
    except FileExistsError:
        _remove(temporary)
        raise FileWriteError(
            f"{path} already exists; nothing was written.",
            hint="Move it away, or give the new file another name (-n).",
        ) from None
    except OSError as exc:
        _remove(temporary)
        raise cannot_write(path, exc) from exc


def cannot_write(path: Path, exc: OSError) -> FileWriteError:
    """The user-facing error for a filesystem failure on ``path``."""
    reason = exc.strerror or str(exc)
    return FileWriteError(
        f"Cannot write {exc.filename or path}: {reason}.",
        hint="Check that the folder exists and is writable by this user, and that the disk "
        "has room; nothing was left half-written.",
    )


def _link_new(temporary: Path, path: Path) -> None:
    """Put ``temporary`` at ``path`` unless something is already there (no race)."""
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise
    except OSError:  # a filesystem without hard links: check, then rename
        if path.exists():
            raise FileExistsError(path) from None
        os.replace(temporary, path)
        return
    _remove(temporary)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable; not every platform can open a folder."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass
