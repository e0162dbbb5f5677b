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
import functools
import itertools
import json
import os
import re
import types
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


def read_header(source: bytes, path: Path, stat: os.stat_result | None = None) -> dict | None:
    """The module docstring and header assignments of a migration file, or None if unusual.

    Raises SyntaxError for a file that does not parse, as importing it would. With the file's
    ``stat``, a ``.pyc`` that importing would use for this source answers instead of the
    syntax tree (``pyc_header``): the same answer, without parsing.
    """
    if stat is not None:
        found = pyc_header(source, path, stat)
        if found is not None:
            return found
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


def pyc_header(source: bytes, path: Path, stat: os.stat_result) -> dict | None:
    """``read_header``'s answer from the ``.pyc`` importing ``path`` would use, or None (parse).

    Parsing is most of the cost of reading 1,000 headers, and Alembic's own imports left a
    ``.pyc`` beside each file. The ``.pyc`` is taken only when importlib would take it for this
    source (magic number; source mtime and size, or the source's hash, always checked), and
    its answer only when it is provably the syntax tree's: the module's code runs straight
    through (no jump, no exception handler, no raise, so no statement was left out or nested),
    and each header name is stored straight from a constant whose source text, read back
    from the code's positions, is the literal of a plain top-level assignment (``name =
    literal`` or ``name: annotation = literal`` at column 0). Anything else, and a module
    without a docstring (an ``-OO`` build drops it), is parsed as before.
    """
    code = _valid_pyc_code(source, path, stat)
    if code is None or not hasattr(code, "co_positions") or code.co_exceptiontable:
        return None
    opcodes = _opcodes()
    raw = code.co_code
    ops, args = raw[0::2], raw[1::2]
    if not opcodes.refused.isdisjoint(ops):
        return None
    watched = {i for i, name in enumerate(code.co_names) if name in _PYC_NAMES}
    lines = _SourceLines(source)
    if not lines.utf8:
        return None
    positions = None
    header: dict = {}
    for index in _positions_of(ops, opcodes.stores):
        op = ops[index]
        first, name_index = _argument(ops, args, index, opcodes.extended)
        if name_index not in watched:
            continue
        previous = first - 1
        while previous >= 0 and ops[previous] == opcodes.cache:
            previous -= 1
        if op != opcodes.store_name or previous < 0 or ops[previous] != opcodes.load_const:
            return None
        const = code.co_consts[_argument(ops, args, previous, opcodes.extended)[1]]
        if positions is None:
            positions = list(code.co_positions())
        name = code.co_names[name_index]
        value = _header_value(lines, name, const, positions[previous], positions[index])
        if value is _NO_VALUE:
            return None
        try:
            header["doc" if name == "__doc__" else name] = (
                value if name == "__doc__" else _to_json(value)
            )
        except ValueError:
            return None
    if not isinstance(header.get("doc"), str) or not isinstance(header.get("revision"), str):
        return None
    return header


_NO_VALUE = object()
_PYC_NAMES = frozenset(HEADER_NAMES + ("__doc__",))
_HEADER_GAP = re.compile(rb"[ \t]*(?::[^=]*)?=[ \t]*")
_LINE_REST = re.compile(rb"[ \t\f]*(?:#[^\r\n]*)?(?:\r\n|\r|\n|$)")
_CODING = re.compile(rb"[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
_QUOTES = (b"'" * 3, b'"' * 3, b"'", b'"')


def _valid_pyc_code(source: bytes, path: Path, stat: os.stat_result):
    """The code object of the ``.pyc`` importlib would use for ``source``, or None."""
    import importlib.util
    import marshal

    try:
        with open(importlib.util.cache_from_source(str(path)), "rb") as file:
            data = file.read()
    except (OSError, NotImplementedError, ValueError):
        return None
    if len(data) < 16 or data[:4] != importlib.util.MAGIC_NUMBER:
        return None
    flags = int.from_bytes(data[4:8], "little")
    if flags & ~0b11:
        return None
    if flags & 0b1:  # hash-based: checked even when the .pyc says not to (unchecked)
        if data[8:16] != importlib.util.source_hash(source):
            return None
    elif (
        int.from_bytes(data[8:12], "little") != int(stat.st_mtime) & 0xFFFFFFFF
        or int.from_bytes(data[12:16], "little") != stat.st_size & 0xFFFFFFFF
    ):
        return None
    try:
        code = marshal.loads(memoryview(data)[16:])
    except (EOFError, ValueError, TypeError):
        return None
    return code if isinstance(code, types.CodeType) else None


class _Opcodes:
    """The opcodes ``pyc_header`` looks for, in this interpreter's numbering."""

    def __init__(self):
        import opcode

        jumps = set(opcode.hasjrel) | set(opcode.hasjabs) | set(getattr(opcode, "hasjump", ()))
        ends = {"RAISE_VARARGS", "RERAISE", "YIELD_VALUE", "SEND", "RETURN_GENERATOR"}
        # After any of these the module's code may not run straight through to its end.
        self.refused = frozenset(jumps | {opcode.opmap[n] for n in ends if n in opcode.opmap})
        self.stores = frozenset(
            opcode.opmap[n] for n in ("STORE_NAME", "STORE_GLOBAL", "DELETE_NAME", "DELETE_GLOBAL")
        )
        self.store_name = opcode.opmap["STORE_NAME"]
        self.load_const = opcode.opmap["LOAD_CONST"]
        self.extended = opcode.opmap["EXTENDED_ARG"]
        self.cache = opcode.opmap.get("CACHE", -1)


@functools.cache
def _opcodes() -> _Opcodes:
    return _Opcodes()


def _positions_of(ops: bytes, wanted: frozenset[int]) -> list[int]:
    """The indexes of the code units whose opcode is one of ``wanted``, in order."""
    found = []
    for op in wanted:
        needle = bytes((op,))
        index = ops.find(needle)
        while index != -1:
            found.append(index)
            index = ops.find(needle, index + 1)
    return sorted(found)


def _argument(ops: bytes, args: bytes, index: int, extended: int) -> tuple[int, int]:
    """(index of the instruction's first code unit, its argument), EXTENDED_ARG included."""
    value, shift, first = args[index], 8, index
    while first > 0 and ops[first - 1] == extended:
        first -= 1
        value |= args[first] << shift
        shift += 8
    return first, value


class _SourceLines:
    """The source's lines as the compiler counts them, to read a span of positions back."""

    def __init__(self, source: bytes):
        if source.startswith(b"\xef\xbb\xbf"):
            source = source[3:]
        self.source = source
        self.starts = [0, *itertools.accumulate(map(len, source.splitlines(keepends=True)))]
        self.utf8 = not any(  # positions count bytes of UTF-8, not of another coding
            (match := _CODING.match(self.line(number)))
            and match.group(1).lower() not in (b"utf-8", b"utf8", b"utf_8")
            for number in (1, 2)
        )

    def line(self, number: int) -> bytes:
        """Physical line ``number`` (from 1) with its line ending; empty outside the source."""
        if not 1 <= number < len(self.starts):
            return b""
        return self.source[self.starts[number - 1] : self.starts[number]]

    def offset(self, line: int | None, column: int | None) -> int | None:
        if line is None or column is None or not 1 <= line <= len(self.starts):
            return None
        return self.starts[line - 1] + column


def _header_value(lines: _SourceLines, name: str, const, value_at, target_at):
    """The literal ``name`` is assigned, read back from the source, or _NO_VALUE when the
    statement is not the plain top-level assignment (or docstring) the syntax tree would see."""
    text = lines.source
    start = lines.offset(value_at[0], value_at[2])
    end = lines.offset(value_at[1], value_at[3])
    if start is None or end is None or not _LINE_REST.match(text, end):
        return _NO_VALUE
    if name == "__doc__":  # a docstring: the statement is the constant itself
        if tuple(target_at) != tuple(value_at) or value_at[2] != 0:
            return _NO_VALUE
        first_line = value_at[0]
    else:
        target_start = lines.offset(target_at[0], target_at[2])
        target_end = lines.offset(target_at[1], target_at[3])
        if (
            target_start is None
            or target_end is None
            or target_at[2] != 0
            or text[target_start:target_end] != name.encode()
            or not _HEADER_GAP.fullmatch(text, target_end, start)
        ):
            return _NO_VALUE
        first_line = target_at[0]
    if lines.line(first_line - 1).rstrip(b"\r\n").endswith(b"\\"):
        return _NO_VALUE  # a continued line: the statement began on the line before
    literal = text[start:end]
    if _plain_literal(literal, const):
        return const
    try:
        value = ast.literal_eval(literal.decode("utf-8"))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError, UnicodeDecodeError):
        return _NO_VALUE
    if type(value) is not type(const) or value != const:
        return _NO_VALUE
    return value


def _plain_literal(literal: bytes, const) -> bool:
    """Whether ``literal`` is, byte for byte, ``None`` or ``const`` in quotes with nothing
    to unescape: its value is then ``const`` without evaluating it."""
    if const is None:
        return literal == b"None"
    if type(const) is not str or "\\" in const or "\r" in const:
        return False
    body = const.encode("utf-8")
    return any(
        literal == quote + body + quote
        and quote[:1] not in body
        and (len(quote) == 3 or b"\n" not in body)
        for quote in _QUOTES
    )


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

    def header_and_checksum(self, path: Path) -> tuple[dict | None, str]:
        """Both, from one look at the file (one stat instead of two)."""
        entry = self._entry(path)
        return entry[2], entry[3]

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
            read_header(source, path, stat),
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
        header, checksum = index.header_and_checksum(path)
        if header is None or header.get("branch_labels") or header.get("depends_on"):
            return None
        found.append((path, header, checksum))
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
