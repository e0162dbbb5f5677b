"""Revision headers read without importing migration modules, cached by the file's stat.

Alembic imports every migration module to learn its ``revision`` and ``down_revision``; on a
history of 1,000 migrations that is most of the time ``showmigrations`` or a no-op ``migrate``
takes. Here the header is read from the file's syntax tree once, kept in
``__pycache__/sqlmanage-revisions.json`` beside the migrations, and the module itself is
imported only when Alembic touches anything else (``upgrade``, ``downgrade``), that is, when
the migration is about to run. A file whose header is not plain literals is imported as
Alembic would.
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

INDEX_FILE = "sqlmanage-revisions.json"
INDEX_VERSION = 3
HEADER_NAMES = ("revision", "down_revision", "branch_labels", "depends_on")
REVISION_FILE = re.compile(r"(?!\.\#|__init__)(.*\.py)$")  # Alembic's own pattern
READ_ATTEMPTS = 5  # listings of a folder that changes under the reader (a checkout, say)


class LazyMigrationModule:
    """Stands in for a migration module: the header is known, the body is imported on use."""

    def __init__(self, path: Path, header: dict, checksum: str | None = None):
        self._path = path
        self._checksum = checksum  # of the file as the history was read from it
        self._module = None
        self.__file__ = str(path)
        self.__doc__ = header.get("doc")
        for name in HEADER_NAMES:
            if name in header:
                setattr(self, name, _from_json(header[name]))

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.load(), name)

    def load(self):
        """Import the module now; a file that fails to import is a MigrationFileError."""
        if self._module is None:
            from sqlmanage.engine.alembic_internals import import_migration_file
            from sqlmanage.engine.revision_errors import translate_revision_errors

            path = self._file_as_read()
            with translate_revision_errors():
                self._module = import_migration_file(path)
        return self._module

    def _file_as_read(self) -> Path:
        """The file holding the migration the history was read from.

        A squashmigrations run since then moved it to versions/replaced/ unchanged: it runs
        from there, and takes the database to the squashed migration's revision as the
        originals do. Removed or edited in the meantime, it is refused: what runs is always
        what the history (and the audit trail's checksum) saw.
        """
        if self._checksum is None:
            return self._path
        from sqlmanage.engine.migration import REPLACED_FOLDER
        from sqlmanage.errors import MigrationFileError

        for candidate in (self._path, self._path.parent / REPLACED_FOLDER / self._path.name):
            try:
                source = candidate.read_bytes()
            except FileNotFoundError:
                continue
            except OSError:
                return candidate  # unreadable: importing it says why
            if file_checksum(source) == self._checksum:
                return candidate
        what = "changed" if self._path.exists() else "removed"
        raise MigrationFileError(
            f"{self._path.name} was {what} after this run read the migration history (by "
            "squashmigrations, a checkout or an edit): nothing of it ran.",
            hint="Run the command again; it reads the migrations folder afresh.",
        )

    def unload(self) -> None:
        """Let the module go once it has run: a long history need not stay in memory."""
        self._module = None


def file_checksum(data: bytes) -> str:
    """SHA-256 of a file's bytes, ignoring a BOM and CRLF/CR line endings."""
    import hashlib

    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return hashlib.sha256(data).hexdigest()


def read_header(source: bytes, path: Path) -> dict | None:
    """The module docstring and header assignments of a migration file, or None if unusual.

    Raises SyntaxError for a file that does not parse, as importing it would.
    """
    tree = ast.parse(source, filename=str(path))
    header: dict = {"doc": ast.get_docstring(tree, clean=False)}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if not isinstance(target, ast.Name) or target.id not in HEADER_NAMES:
            continue
        try:
            header[target.id] = _to_json(ast.literal_eval(value))
        except (ValueError, TypeError, SyntaxError):
            return None
    if not isinstance(header.get("revision"), str):
        return None
    return header


class RevisionIndex:
    """Headers of the migration files of one migrations folder, with their on-disk cache."""

    def __init__(self, cache_dir: Path):
        self.cache_file = cache_dir / "__pycache__" / INDEX_FILE
        self.entries: dict[str, list] = self._load()
        self.seen: set[str] = set()
        self.dirty = False

    def header(self, path: Path) -> dict | None:
        return self._entry(path)[2]

    def checksum(self, path: Path) -> str:
        return self._entry(path)[3]

    def _entry(self, path: Path) -> list:
        """[size, mtime_ns, header, checksum, ctime_ns, inode], read again when any of the
        file's size, mtime, ctime or inode moved.

        mtime alone can be put back (``cp -p``, tar, ``touch -r``) after a same-size edit;
        the inode change time cannot, and a copied file is a new inode.
        """
        key = str(path)
        self.seen.add(key)
        stat = path.stat()
        entry = self.entries.get(key)
        if (
            entry is not None
            and entry[0] == stat.st_size
            and entry[1] == stat.st_mtime_ns
            and entry[4:] == [stat.st_ctime_ns, stat.st_ino]
        ):
            return entry
        source = path.read_bytes()
        entry = [
            stat.st_size,
            stat.st_mtime_ns,
            read_header(source, path),
            file_checksum(source),
            stat.st_ctime_ns,
            stat.st_ino,
        ]
        self.entries[key] = entry
        self.dirty = True
        return entry

    def save(self) -> None:
        """Write the cache if it changed; a read-only folder only costs the next run time."""
        stale = set(self.entries) - self.seen
        if not self.dirty and not stale:
            return
        for key in stale:
            del self.entries[key]
        write_cache(self.cache_file, {"version": INDEX_VERSION, "files": self.entries})

    def _load(self) -> dict[str, list]:
        try:
            data = json.loads(self.cache_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("version") != INDEX_VERSION:
            return {}
        files = data.get("files")
        return files if isinstance(files, dict) else {}


def write_cache(path: Path, data) -> None:
    """Write a cache file whole or not at all; a read-only folder only costs the next run time."""
    from sqlmanage.errors import FileWriteError
    from sqlmanage.files import write_atomic

    try:
        write_atomic(path, json.dumps(data))
    except FileWriteError:
        pass


def read_folder(migrations_dir: Path) -> list[tuple[Path, dict, str]] | None:
    """(path, header, checksum) of every migration in ``versions/``, or None when one needs
    Alembic's own reading (a header that is not literals, branch labels, depends_on)."""
    from sqlmanage.files import folder_lock

    versions = (migrations_dir / "versions").resolve()
    index = RevisionIndex(migrations_dir)
    with folder_lock(versions, exclusive=False):  # never halfway through a squash's moves
        for attempt in range(READ_ATTEMPTS):
            names = _listing(versions)
            try:
                found = _read_listed(index, versions, names)
            except FileNotFoundError:
                if attempt == READ_ATTEMPTS - 1:
                    raise
                continue
            if found is None or _listing(versions) == names or attempt == READ_ATTEMPTS - 1:
                break  # the same files before and after: one consistent state of the folder
    index.save()
    return found


def _listing(versions: Path) -> list[str]:
    try:
        return sorted(os.listdir(versions))
    except FileNotFoundError:
        return []


def _read_listed(index: RevisionIndex, versions: Path, names: list[str]) -> list | None:
    found = []
    for name in names:
        path = versions / name
        if not REVISION_FILE.match(name) or not path.is_file():
            continue
        header = index.header(path)
        if header is None or header.get("branch_labels") or header.get("depends_on"):
            return None
        found.append((path, header, index.checksum(path)))
    return found


def install_lazy_loading(script_directory, headers: list | None = None) -> None:
    """Make ``script_directory`` read headers from the index instead of importing modules.

    ``headers`` are ``read_folder``'s, when the history was read from them already: the
    folder is then not listed, nor the index read, a second time.
    """
    from sqlmanage.engine.alembic_internals import feed_revision_map

    if script_directory.sourceless:
        return  # .pyc-only histories have no source to read
    if headers is None:
        feed_revision_map(script_directory, lambda: _load_scripts(script_directory))
    else:
        feed_revision_map(script_directory, lambda: _scripts_from(headers))


def _scripts_from(headers: list):
    from alembic.script import Script

    for path, header, checksum in headers:
        module = LazyMigrationModule(path, header, checksum)
        yield Script(module, header["revision"], str(path))  # type: ignore[arg-type]


def _load_scripts(script_directory):
    """Alembic's own listing of the folders, each file's header from the index when it can."""
    from alembic.script import Script

    from sqlmanage.engine.alembic_internals import imported_script, revision_file_paths

    index = RevisionIndex(Path(script_directory.dir))
    for path in revision_file_paths(script_directory):
        header = index.header(path)
        if header is None:
            script = imported_script(script_directory, path)
            if script is not None:
                yield script
            continue
        module = LazyMigrationModule(path, header, index.checksum(path))
        yield Script(module, header["revision"], str(path))  # type: ignore[arg-type]
    index.save()


def _to_json(value):
    if isinstance(value, (list, tuple)):
        if not all(isinstance(item, str) for item in value):
            raise ValueError("not a list of revision ids")
        return list(value)
    if value is None or isinstance(value, str):
        return value
    raise ValueError("not a revision id")


def _from_json(value):
    return tuple(value) if isinstance(value, list) else value
