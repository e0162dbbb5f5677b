"""Unit tests of the pure naming and target-matching functions (no process, no database)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from sqlmanage.engine.autodetect.naming import Naming, cut, new_file, unique_revision
from sqlmanage.engine.graph import History
from sqlmanage.engine.migration import make_migration
from sqlmanage.errors import AmbiguousMigration, SqlmanageError, UnknownMigration

CREATED = datetime(2022, 1, 20, 9, 5, 7, tzinfo=timezone(timedelta(hours=1)))


def history(*files: tuple[str, str]) -> History:
    """A linear history of (file stem, revision id) pairs, as the header reader builds it."""
    migrations, parent = [], ()
    for stem, revision in files:
        migrations.append(make_migration(Path(f"/v/{stem}.py"), revision, "", parent, ()))
        parent = (revision,)
    return History(migrations, parent, "project")


def numbered(count: int) -> History:
    return history(*((f"{n:04d}_step", f"{n:04d}_step") for n in range(1, count + 1)))


@pytest.mark.parametrize(
    ("stem", "revision", "number"),
    [
        ("0003_fill_discount_rate", "0003_fill_discount_rate", 3),
        (
            "0004_squashed_0001_0004",
            "0004_add_products_discount_code",
            4,
        ),  # a squash keeps END's id
        ("12345_step", "12345_step", 12345),
        ("2022_01_20_1234-4c1f0a9b2e7d_initial", "4c1f0a9b2e7d", None),
        ("123456789012_add_notes", "123456789012", None),  # an all-digit hex id is not a number
        ("0001_initial", "0001", None),  # only NNNN_slug ids are sqlmanage's
    ],
)
def test_only_sqlmanage_ids_have_a_number(stem, revision, number):
    assert make_migration(Path(f"/v/{stem}.py"), revision, "", (), ()).number == number


@pytest.mark.parametrize("target", ["10", "0010", "010", "0010_step"])
def test_a_number_is_compared_as_a_number(target):
    assert numbered(1005).find(target).revision == "0010_step"


def test_a_number_is_never_a_prefix_of_a_longer_one():
    steps = numbered(1005)
    assert steps.find("1000").revision == "1000_step"
    assert steps.find("100").revision == "0100_step"
    with pytest.raises(UnknownMigration):
        steps.find("1006")


def test_two_migrations_with_one_number_are_ambiguous():
    migrations = [
        make_migration(Path("/v/0001_initial.py"), "0001_initial", "", (), ()),
        make_migration(Path("/v/0002_a.py"), "0002_a", "", ("0001_initial",), ()),
        make_migration(Path("/v/0002_b.py"), "0002_b", "", ("0001_initial",), ()),
    ]
    branches = History(migrations, ("0002_a", "0002_b"), "project")
    with pytest.raises(AmbiguousMigration, match="0002_a, 0002_b"):
        branches.find("2")


def test_dates_are_not_numbers_and_hex_prefixes_work_as_in_alembic():
    dated = history(
        ("2022_01_20_1234-4c1f0a9b2e7d_initial", "4c1f0a9b2e7d"),
        ("2022_01_21_0910-123456789012_add_rate", "123456789012"),
    )
    with pytest.raises(UnknownMigration):
        dated.find("2022")
    assert dated.find("4c1f").revision == "4c1f0a9b2e7d"
    assert dated.find("1234").revision == "123456789012"
    assert dated.find("2022_01_21").revision == "123456789012"


def test_file_template_is_filled_as_alembic_fills_it():
    naming = Naming("%(year)d_%(month).2d_%(day).2d_%(hour).2d%(minute).2d-%(rev)s_%(slug)s")
    assert (
        naming.file_name("4c1f0a9b2e7d", "add_notes", CREATED)
        == "2022_01_20_0905-4c1f0a9b2e7d_add_notes.py"
    )
    epoch = Naming("%(epoch)s_%(second).2d_%(rev)s").file_name("ab", "x", CREATED)
    assert epoch == f"{int(CREATED.timestamp())}_07_ab.py"


def test_alembic_slug_truncation_keeps_its_trailing_underscore():
    assert (
        Naming().file_name("ab", "add_products_discount_code", CREATED)
        == "ab_add_products_discount_code.py"
    )
    assert (
        Naming(truncate_slug_length=10).file_name("ab", "add_products_discount_code", CREATED)
        == "ab_add_.py"
    )
    assert Naming().file_name("ab", "a" * 45, CREATED) == f"ab_{'a' * 40}_.py"


def test_numbered_slugs_are_cut_at_a_word():
    assert (
        Naming(truncate_slug_length=16).numbered_slug("add_products_discount_code")
        == "add_products"
    )
    assert Naming(truncate_slug_length=3).numbered_slug("initial") == "ini"
    assert Naming().numbered_slug("a" * 60) == "a" * 60


def test_a_template_with_an_unknown_token_is_a_user_error():
    with pytest.raises(SqlmanageError, match=r"file_template = %%\(revision\)s"):
        Naming("%(revision)s").file_name("ab", "x", CREATED)


def test_the_scheme_follows_the_history_unless_file_template_is_set(tmp_path):
    hexes = history(("4c1f0a9b2e7d_initial", "4c1f0a9b2e7d"))
    assert Naming().numbered(numbered(3)) and Naming().numbered(history())
    assert not Naming().numbered(hexes)
    assert not Naming("%(rev)s_%(slug)s").numbered(numbered(3))
    revision, path = new_file(Naming(), numbered(1005), tmp_path, "next", CREATED)
    assert (revision, path.name) == ("1006_next", "1006_next.py")
    revision, path = new_file(Naming(), hexes, tmp_path, "next", CREATED)
    assert len(revision) == 12 and int(revision, 16) >= 0 and path.name == f"{revision}_next.py"


def test_a_file_template_that_leaves_the_versions_folder_is_refused(tmp_path):
    with pytest.raises(SqlmanageError, match="outside"):
        new_file(Naming("../%(rev)s"), history(), tmp_path, "x", CREATED)


def test_revision_ids_fit_32_characters_and_never_collide(tmp_path):
    taken = history(("0004_" + "a" * 27, "0004_" + "a" * 27))
    assert unique_revision("0004_" + "a" * 30, taken, tmp_path) == "0004_" + "a" * 25 + "_2"
    assert cut("0004_add_products_discount_code_and_more", 32) == "0004_add_products_discount_code"


def test_a_file_template_never_names_a_new_file_like_an_existing_one(tmp_path):
    (tmp_path / "2022_01_20_note.py").write_text("")
    with pytest.raises(SqlmanageError, match="already exists"):
        new_file(
            Naming("%(year)d_%(month).2d_%(day).2d_%(slug)s"), history(), tmp_path, "note", CREATED
        )
