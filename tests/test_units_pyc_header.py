"""Migration headers read from a valid ``.pyc`` give the syntax tree's answer, or none.

``pyc_header`` saves parsing 1,000 files on a fresh checkout; it may only answer when its
answer is the one ``ast.parse`` gives, and only from a ``.pyc`` importlib would use for the
file as it is now. Each test writes a real file, compiles it as an import would and compares
the two readings.
"""

from __future__ import annotations

import os
import py_compile
from pathlib import Path

import pytest

from sqlmanage.engine.revision_index import pyc_header, read_folder, read_header

PLAIN = '''"""Add the price column

Revision ID: 0002_price
Revises: 0001_initial
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0002_price'
down_revision: Union[str, Sequence[str], None] = '0001_initial'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("items", sa.Column("price", sa.Integer()))


def downgrade() -> None:
    op.drop_column("items", "price")
'''

# Sources whose .pyc must not be read as they look: each would give another answer than the
# syntax tree (constant folding, dead branches, nested or continued statements), or is only
# unusual; the reader must fall back to parsing for every one.
TRICKY: dict[str, str | None] = {
    "folded value": "revision = '0002' + '_price'\n",
    "constant branch": "if True:\n    revision = '0002_other'\nrevision = '0002_price'\n",
    "dead else": "revision = '0002_price'\nif True:\n    pass\nelse:\n    revision = 'x'\n",
    "one-line if": "if True: revision = '0002_other'\n",
    "continued if": "if True: \\\nrevision = '0002_other'\n",
    "conditional value": "revision = None if False else '0002_other'\n",
    "constant conditional": "revision = '0002_other' if True else None\n",
    "docstring assigned": "__doc__ = 'Another docstring'\n",
    "docstring folded": None,
    "two targets": "revision = down_revision = '0002_other'\n",
    "walrus": "(revision := '0002_other')\n",
    "tuple target": "revision, down_revision = '0002_other', None\n",
    "augmented": "revision += '_more'\n",
    "deleted": "del depends_on\n",
    "imported": "from os import sep as revision\n",
    "called": "revision = str('0002_other')\n",
    "in try": "try:\n    revision = '0002_other'\nexcept ImportError:\n    pass\n",
    "raised": "raise ImportError('no')\nrevision = '0002_other'\n",
    "semicolon": "x = 1; revision = '0002_other'\n",
    "parenthesised": "revision = ('0002_other')\n",
    "escaped": "revision = '0002_\\x6fther'\n",
    "list": "down_revision = ['0001_initial', '0001_other']\n",
    "tuple over lines": "down_revision = (\n    '0001_initial',\n    '0001_other',\n)\n",
}


def written(tmp_path: Path, source: str | bytes, name: str = "0002_price.py", **compile_options):
    path = tmp_path / name
    path.write_bytes(source.encode() if isinstance(source, str) else source)
    py_compile.compile(str(path), doraise=True, **compile_options)
    return path


def both_readings(path: Path):
    source = path.read_bytes()
    return read_header(source, path, os.stat(path)), read_header(source, path)


def test_a_plain_migration_is_read_from_its_pyc_as_the_syntax_tree_reads_it(tmp_path):
    path = written(tmp_path, PLAIN)
    from_pyc = pyc_header(path.read_bytes(), path, os.stat(path))
    assert from_pyc is not None
    assert (
        from_pyc
        == read_header(path.read_bytes(), path)
        == {
            "doc": PLAIN.split('"""')[1],
            "revision": "0002_price",
            "down_revision": "0001_initial",
            "branch_labels": None,
            "depends_on": None,
        }
    )


@pytest.mark.parametrize(
    "line_ending, bom", [("\r\n", b""), ("\r", b""), ("\n", b"\xef\xbb\xbf")], ids=str
)
def test_line_endings_and_a_bom_read_the_same(tmp_path, line_ending, bom):
    path = written(tmp_path, bom + PLAIN.replace("\n", line_ending).encode())
    with_pyc, parsed = both_readings(path)
    assert with_pyc == parsed and parsed is not None


@pytest.mark.parametrize("case", sorted(TRICKY))
def test_code_that_compiles_to_something_else_than_it_reads_is_parsed(tmp_path, case):
    if TRICKY[case] is None:  # a first statement that the compiler folds into a docstring
        path = written(tmp_path, "'Add the ' + 'price column'\n" + PLAIN.split('"""', 2)[2])
    else:
        path = written(tmp_path, PLAIN + "\n" + TRICKY[case])
    source = path.read_bytes()
    parsed = read_header(source, path)
    assert pyc_header(source, path, os.stat(path)) in (None, parsed)
    assert read_header(source, path, os.stat(path)) == parsed


def test_a_tuple_over_several_lines_is_read_from_the_pyc(tmp_path):
    source = PLAIN.replace(
        "= '0001_initial'", "= (\n    '0001_initial',\n    '0001_other',  # a merge\n)"
    )
    path = written(tmp_path, source)
    from_pyc = pyc_header(path.read_bytes(), path, os.stat(path))
    assert from_pyc is not None
    assert from_pyc == read_header(path.read_bytes(), path)
    assert from_pyc["down_revision"] == ["0001_initial", "0001_other"]


def test_a_module_without_a_docstring_or_in_another_coding_is_parsed(tmp_path):
    no_doc = written(tmp_path, PLAIN.split('"""', 2)[2], name="0003_nodoc.py")
    latin = written(
        tmp_path,
        ("# -*- coding: latin-1 -*-\n" + PLAIN.replace("price column", "prix élevé")).encode(
            "latin-1"
        ),
        name="0004_latin.py",
    )
    for path in (no_doc, latin):
        assert pyc_header(path.read_bytes(), path, os.stat(path)) is None
        with_pyc, parsed = both_readings(path)
        assert with_pyc == parsed and parsed is not None


def test_a_stale_pyc_whose_size_differs_is_refused_though_its_mtime_matches(tmp_path):
    path = written(tmp_path, PLAIN)
    before = os.stat(path)
    path.write_text(PLAIN.replace("0002_price", "0002_price_and_tax"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert pyc_header(path.read_bytes(), path, os.stat(path)) is None
    assert read_header(path.read_bytes(), path, os.stat(path))["revision"] == "0002_price_and_tax"


def test_a_same_size_edit_under_a_valid_pyc_is_read_from_the_source(tmp_path):
    """importlib would take the .pyc (same mtime and size); the header is still the file's,
    since every value is read back from the source text."""
    path = written(tmp_path, PLAIN)
    before = os.stat(path)
    path.write_text(PLAIN.replace("0002_price", "0002_tax__"))  # same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert read_header(path.read_bytes(), path, os.stat(path))["revision"] == "0002_tax__"


def test_a_hash_based_pyc_is_checked_against_the_source_even_when_unchecked(tmp_path):
    for mode in (
        py_compile.PycInvalidationMode.CHECKED_HASH,
        py_compile.PycInvalidationMode.UNCHECKED_HASH,
    ):
        path = written(tmp_path, PLAIN, invalidation_mode=mode)
        assert pyc_header(path.read_bytes(), path, os.stat(path)) is not None
        edited = PLAIN.replace("0002_price", "0002_price_2").encode()
        assert pyc_header(edited, path, os.stat(path)) is None


def test_a_syntax_error_is_reported_though_an_older_pyc_compiled(tmp_path):
    path = written(tmp_path, PLAIN)
    path.write_text(PLAIN.replace("def downgrade() -> None:", "def downgrade( -> None:"))
    with pytest.raises(SyntaxError):
        read_header(path.read_bytes(), path, os.stat(path))


def test_a_folder_reads_its_headers_from_pycs_and_its_checksums_from_the_sources(tmp_path):
    versions = tmp_path / "migrations" / "versions"
    versions.mkdir(parents=True)
    first = written(versions, PLAIN.replace("0002_price", "0001_initial"), name="0001_initial.py")
    first.write_text(first.read_text().replace("'0001_initial'\nbranch", "None\nbranch"))
    py_compile.compile(str(first), doraise=True)
    written(versions, PLAIN)
    found = read_folder(tmp_path / "migrations")
    assert [(p.name, h["revision"], h["down_revision"]) for p, h, _ in found] == [
        ("0001_initial.py", "0001_initial", None),
        ("0002_price.py", "0002_price", "0001_initial"),
    ]
