"""Unit tests of the migration graph: files read into a history, in process, no database.

Each test writes real migration files into a temporary migrations folder and reads them
with ``load_history``, the function every command uses; nothing is imported from Alembic
unless a migration runs, and none does here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sqlmanage.engine.graph import split_app_label
from sqlmanage.engine.loading import load_history
from sqlmanage.engine.revision_index import INDEX_FILE, file_checksum, read_folder, read_header
from sqlmanage.errors import MigrationFileError, MultipleHeads, UnknownLabel, UnknownMigration


def migration(revision: str, down, doc: str = "", body: str = "pass") -> str:
    return (
        f'"""{doc or revision}\n\nRevision ID: {revision}\nCreate Date: 2024-03-01 10:20:30\n"""\n'
        f"revision = {revision!r}\ndown_revision = {down!r}\nbranch_labels = None\n"
        f"depends_on = None\n\n\ndef upgrade():\n    {body}\n\n\ndef downgrade():\n    pass\n"
    )


class Folder:
    """A migrations folder on disk: env.py and versions/."""

    def __init__(self, root: Path):
        self.root = root / "migrations"
        self.versions = self.root / "versions"
        self.versions.mkdir(parents=True)
        (self.root / "env.py").write_text("# run by Alembic\n")

    def add(self, revision: str, down=None, name: str | None = None, **kwargs) -> Path:
        path = self.versions / f"{name or revision}.py"
        path.write_text(migration(revision, down, **kwargs))
        return path

    def history(self):
        return load_history(self.root, self.root.parent / "alembic.ini", "shop", lambda: None)


@pytest.fixture
def folder(tmp_path) -> Folder:
    return Folder(tmp_path)


def linear(folder: Folder, *revisions: str) -> None:
    down = None
    for revision in revisions:
        folder.add(revision, down)
        down = revision


def test_migrations_come_parents_first_whatever_the_file_names_sort_as(folder):
    folder.add("0001_initial", None, name="c_first")
    folder.add("0002_items", "0001_initial", name="b_second")
    folder.add("0003_prices", "0002_items", name="a_third")
    history = folder.history()
    assert [m.revision for m in history.migrations] == ["0001_initial", "0002_items", "0003_prices"]
    assert history.heads == ("0003_prices",)
    assert history.head() == "0003_prices"
    third = history.by_id["0003_prices"]
    assert (third.name, third.number, third.parents) == ("a_third", 3, ("0002_items",))
    assert str(third.created) == "2024-03-01 10:20:30"


def test_a_folder_without_migrations_is_an_empty_history(tmp_path):
    history = load_history(tmp_path / "missing", tmp_path / "alembic.ini", "shop", lambda: None)
    assert (history.migrations, history.heads, history.head()) == ([], (), None)
    assert history.next_number() == 1


def test_a_migrations_folder_without_env_py_is_refused(folder):
    (folder.root / "env.py").unlink()
    with pytest.raises(Exception, match="has no env.py"):
        folder.history()


def test_two_branches_are_two_heads_and_a_merge_joins_them(folder):
    linear(folder, "0001_initial")
    folder.add("0002_a", "0001_initial")
    folder.add("0002_b", "0001_initial")
    branched = folder.history()
    assert branched.heads == ("0002_a", "0002_b")
    with pytest.raises(MultipleHeads, match=r"multiple heads .*\(0002_a, 0002_b in shop\)"):
        branched.head()
    folder.add("0003_merge", ("0002_a", "0002_b"))
    merged = folder.history()
    assert merged.head() == "0003_merge"
    assert merged.by_id["0003_merge"].is_merge
    assert merged.ancestors(["0002_b"]) == {"0001_initial", "0002_b"}
    assert merged.ancestors(["0003_merge"]) == {"0001_initial", "0002_a", "0002_b", "0003_merge"}
    assert merged.next_number() == 4


def test_two_files_with_one_revision_id_are_refused(folder):
    folder.add("0001_initial", None, name="0001_initial")
    folder.add("0001_initial", None, name="0001_copy")
    with pytest.raises(MigrationFileError, match="0001_initial is present more than once"):
        folder.history()


def test_a_down_revision_that_no_file_has_is_named(folder):
    folder.add("0001_initial", None)
    folder.add("0002_items", "0001_gone")
    with pytest.raises(
        MigrationFileError, match="0002_items has down_revision 0001_gone, which no"
    ):
        folder.history()


def test_a_cycle_is_refused_and_named(folder):
    folder.add("0001_initial", None)
    folder.add("0002_a", "0003_b")
    folder.add("0003_b", "0002_a")
    with pytest.raises(MigrationFileError, match=r"cycle.*\(0002_a, 0003_b\)"):
        folder.history()


def test_a_file_that_does_not_parse_names_its_line(folder):
    folder.add("0001_initial", None)
    (folder.versions / "0002_broken.py").write_text("revision = '0002'\ndown_revision = (\n")
    with pytest.raises(MigrationFileError, match=r"0002_broken.py has a syntax error on line \d"):
        folder.history()


def test_files_that_are_not_migrations_are_ignored(folder):
    linear(folder, "0001_initial")
    (folder.versions / "__init__.py").write_text("")
    (folder.versions / "notes.txt").write_text("revision = 'x'")
    (folder.versions / ".#0001_initial.py").write_text("editor lock")
    assert [m.revision for m in folder.history().migrations] == ["0001_initial"]


def test_target_forms_name_one_migration(folder):
    linear(folder, "0001_initial", "0002_items", "0003_prices")
    history = folder.history()
    for target in ("0002_items", "0002_items.py", " 0002_items ", "2", "0002", "0002_it"):
        assert history.find(target).revision == "0002_items", target
    with pytest.raises(UnknownMigration, match="Cannot find a migration matching '0009' in shop"):
        history.find("0009")


def test_a_hex_prefix_finds_an_alembic_revision(folder):
    folder.add("4c1f0a9b2e7d", None, name="4c1f0a9b2e7d_initial")
    folder.add("4c2aa0b9e1f3", "4c1f0a9b2e7d", name="4c2aa0b9e1f3_items")
    history = folder.history()
    assert history.find("4c1").revision == "4c1f0a9b2e7d"
    assert history.find("4c2aa0b9e1f3_items").revision == "4c2aa0b9e1f3"
    with pytest.raises(Exception, match="More than one migration matches '4c'"):
        history.find("4c")


def test_an_app_label_is_split_off_only_when_it_is_one(folder):
    linear(folder, "0001_initial", "0002_items")
    history = folder.history()
    assert split_app_label(history, ["shop", "0002"]) == ("shop", ["0002"])
    assert split_app_label(history, ["shop"]) == ("shop", [])
    assert split_app_label(history, ["0002"]) == (None, ["0002"])
    with pytest.raises(UnknownLabel, match="No migrations with the app label 'shoop'"):
        split_app_label(history, ["shoop", "0002"])


def test_checksums_ignore_a_bom_and_line_endings_but_not_content():
    unix = b"revision = 'a'\nx = 1\n"
    assert file_checksum(b"\xef\xbb\xbf" + unix) == file_checksum(unix)
    assert file_checksum(unix.replace(b"\n", b"\r\n")) == file_checksum(unix)
    assert file_checksum(unix.replace(b"\n", b"\r")) == file_checksum(unix)
    assert file_checksum(b"revision = 'a'\nx = 2\n") != file_checksum(unix)
    assert len(file_checksum(unix)) == 64


def test_an_edited_file_is_changed_since_its_recorded_checksum(folder):
    path = folder.add("0001_initial", None)
    history = folder.history()
    migration_0001 = history.by_id["0001_initial"]
    recorded = history.checksum(migration_0001)
    assert recorded == file_checksum(path.read_bytes())
    assert not history.changed_since(migration_0001, recorded)
    path.write_text(path.read_text().replace("    pass\n", "    print('new')\n", 1))
    assert history.changed_since(migration_0001, recorded)
    assert history.changed_since(migration_0001, None)


def test_a_squash_that_replaces_its_own_revision_is_not_counted_as_changed(folder):
    path = folder.add("0003_prices", None)
    path.write_text(path.read_text() + "\nreplaces = ('0002_items', '0003_prices')\n")
    history = folder.history()
    assert not history.changed_since(history.by_id["0003_prices"], "recorded-by-the-originals")


def test_the_header_cache_rereads_a_same_size_edit_whose_mtime_was_put_back(folder):
    path = folder.add("0001_initial", None)
    assert read_folder(folder.root)[0][1]["revision"] == "0001_initial"
    assert (folder.root / "__pycache__" / INDEX_FILE).is_file()
    before = os.stat(path)
    edited = path.read_text().replace("0001_initial", "0001_renamed")  # same size
    while os.stat(path).st_ctime_ns == before.st_ctime_ns:  # file times tick in milliseconds
        path.write_text(edited)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (os.stat(path).st_size, os.stat(path).st_mtime_ns) == (
        before.st_size,
        before.st_mtime_ns,
    )
    [(_, header, checksum)] = read_folder(folder.root)
    assert header["revision"] == "0001_renamed"
    assert checksum == file_checksum(path.read_bytes())


def test_a_header_that_is_not_literals_is_left_to_alembic(tmp_path):
    path = tmp_path / "0001.py"
    assert read_header(b"revision = '0001'\ndown_revision = None\n", path) == {
        "doc": None,
        "revision": "0001",
        "down_revision": None,
    }
    assert read_header(b"revision: str = '0001'\ndown_revision = ('a', 'b')\n", path)[
        "down_revision"
    ] == ["a", "b"]
    assert read_header(b"import uuid\nrevision = str(uuid.uuid4())\n", path) is None
    assert read_header(b"down_revision = None\n", path) is None  # no revision at all
    with pytest.raises(SyntaxError):
        read_header(b"revision = (\n", path)


def test_branch_labels_need_alembics_reading(folder):
    folder.add("0001_initial", None)
    (folder.versions / "0002_labelled.py").write_text(
        "revision = '0002'\ndown_revision = '0001_initial'\nbranch_labels = ('shop',)\n"
    )
    assert read_folder(folder.root) is None
