"""Files written whole or not at all: written beside, flushed to disk, renamed into place.

A full disk, a read-only folder or a crash mid-write must never leave a 0-byte or half
migration file behind: every later command would fail on it. The temporary file is hidden
and does not end in ``.py``, so no history ever reads it. A failure is a clear error naming
the file, never "may be a bug".
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlmanage.errors import FileWriteError


def write_atomic(path: Path, text: str, *, exclusive: bool = False) -> None:
    """Write ``text`` to ``path`` whole; ``exclusive`` never replaces an existing file."""
    place(stage(path, text), path, exclusive=exclusive)


def stage(path: Path, text: str) -> Path:
    """Write ``text`` beside ``path`` in a hidden file, flushed to disk, for ``place`` to put
    in place later (squashmigrations moves the originals in between)."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "x", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        discard(temporary)
        raise cannot_write(path, exc) from exc
    return temporary


def place(staged: Path, path: Path, *, exclusive: bool = False) -> None:
    """Rename a ``stage``d file to ``path`` (durably); ``exclusive`` never replaces a file.
    On failure the staged file is removed."""
    path = Path(path)
    try:
        if exclusive:
            _link_new(staged, path)
        else:
            os.replace(staged, path)
        _sync_folder(path.parent)
    except FileExistsError:
        discard(staged)
        raise FileWriteError(
            f"{path} already exists; nothing was written.",
            hint="Move it away, or give the new file another name (-n).",
        ) from None
    except OSError as exc:
        discard(staged)
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
    discard(temporary)


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


def discard(path: Path) -> None:
    """Remove a file if it is there; a failure to remove it is not worth an error."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


@contextmanager
def folder_lock(folder: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold an advisory lock on ``folder`` itself: shared to read a set of files in it as one,
    exclusive to change several of them as one (squashmigrations' move of the originals).

    Best effort: where the platform or filesystem has no such lock (Windows, some network
    filesystems) or the folder cannot be opened, nothing is locked.
    """
    try:
        import fcntl

        descriptor = os.open(folder, os.O_RDONLY)
    except (ImportError, OSError):
        yield
        return
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        except OSError:
            pass
        yield
    finally:
        os.close(descriptor)  # closing the last descriptor releases the lock
