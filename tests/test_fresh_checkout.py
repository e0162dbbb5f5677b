"""A fresh checkout: the head migration's fingerprint instead of a comparison.

makemigrations records the models' fingerprint in the migration it writes, once comparing
again with that migration in the history finds nothing; on a checkout without sqlmanage's
caches, a no-op ``migrate`` (for Django's notice) and ``makemigrations --check`` compare the
models' fingerprint with the head's and run the full comparison only when it is missing or
differs. The answer must stay the comparison's.

How a test sees that the comparison did not run: the database loses a table behind
sqlmanage's back. The comparison (with the database at head, it compares with the database)
would report the table as a change; the fingerprint, which is about the models and the
migration files as Django's notice is, does not.
"""

from __future__ import annotations

import re
import sqlite3
import sys

import pytest

from conftest import add_discount_code, execute, migration_file

NOTICE = "Your models in 'project' have changes that are not yet reflected in a migration"
HEAD = "0004_add_products_discount_code.py"
FINGERPRINT = re.compile(r'^sqlmanage_fingerprint = "[0-9a-f]{64}"$', re.MULTILINE)


def fresh_checkout(project) -> None:
    """Drop sqlmanage's caches, as a new clone or a deploy's container has none."""
    for cache in (project.path / "project" / "migrations" / "__pycache__").glob("sqlmanage-*.json"):
        cache.unlink()


def drop_reviews_behind_our_back(project, url: str | None = None) -> None:
    if url is None:
        with sqlite3.connect(project.sqlite_file) as connection:
            connection.execute("DROP TABLE reviews")
    else:
        execute(url, "DROP TABLE reviews")


def edit_models(project, old: str, new: str) -> None:
    """Edit catalogue.py and drop its bytecode: Python trusts a .pyc whose source has the
    same size and the same whole-second mtime, which an edit within a second can have."""
    project.edit("project/models/catalogue.py", old, new)
    for cached in (project.path / "project/models/__pycache__").glob("catalogue.*.pyc"):
        cached.unlink()


def noop_migrate(project, env=None) -> str:
    fresh_checkout(project)
    result = project.manage("migrate", env=env)
    assert "No migrations to apply." in result.stdout
    return result.stdout


def written_head(project, env=None) -> str:
    add_discount_code(project)
    project.manage("makemigrations", "--noinput", env=env)
    project.manage("migrate", env=env)
    [written] = project.versions.glob("0004_*.py")
    return written.read_text()


def test_makemigrations_records_the_fingerprint_and_plain_alembic_ignores_it(project):
    text = written_head(project)
    assert len(FINGERPRINT.findall(text)) == 1
    assert project.manage("makemigrations", "--check").lines == ["No changes detected"]
    project.sqlite_file.unlink()
    project.alembic("upgrade", "head")
    assert project.sqlite_version() == {HEAD[:-3]}


def test_a_fresh_checkout_trusts_the_head_fingerprint_and_nothing_else(project):
    written_head(project)
    drop_reviews_behind_our_back(project)
    assert NOTICE not in noop_migrate(project)  # not compared: the drift went unseen
    assert (
        project.path / "project/migrations/__pycache__/sqlmanage-clean-comparisons.json"
    ).exists()

    head = project.versions / HEAD
    head.write_text(FINGERPRINT.sub("", head.read_text()))
    assert NOTICE in noop_migrate(project)  # no fingerprint: the full comparison ran


def test_makemigrations_check_on_a_fresh_checkout_trusts_it_too(project):
    written_head(project)
    drop_reviews_behind_our_back(project)
    fresh_checkout(project)
    assert project.manage("makemigrations", "--check").lines == ["No changes detected"]
    edit_models(project, "sa.String(20)", "sa.String(40)")
    fresh_checkout(project)
    result = project.run("makemigrations", "--check")
    assert result.returncode == 1, result.stdout + result.stderr


def test_a_model_change_after_the_head_gives_the_notice(project):
    written_head(project)
    edit_models(project, "sa.String(20)", "sa.String(40)")
    assert NOTICE in noop_migrate(project)


def test_a_hand_edited_head_is_compared_again(project):
    add_discount_code(project)
    project.manage("makemigrations", "--noinput")
    head = project.versions / HEAD
    recorded = FINGERPRINT.search(head.read_text()).group(0)
    # The column is taken out of the migration after it was written: the models still have it.
    text = head.read_text()
    text = re.sub(
        r"(def upgrade\(\) -> None:\n)(.*?)(\n\n\ndef downgrade)",
        r"\1    pass\3",
        text,
        flags=re.DOTALL,
    )
    head.write_text(text)
    assert recorded in head.read_text()
    project.manage("migrate")
    assert NOTICE in noop_migrate(project)


def test_any_later_edit_of_the_head_means_comparing(project):
    """Even a comment: the file is checked as bytes (post-write hooks run before the
    fingerprint is recorded, so a formatter configured there keeps it)."""
    written_head(project)
    head = project.versions / HEAD
    head.write_text(
        head.read_text().replace("def upgrade() -> None:", "# reviewed\ndef upgrade() -> None:")
    )
    drop_reviews_behind_our_back(project)
    assert NOTICE in noop_migrate(project)


def test_a_migration_that_does_not_leave_the_models_clean_gets_no_fingerprint(project):
    """A post-write hook takes the operation out again: the second comparison sees the
    column still missing, so no fingerprint is written, and migrate compares."""
    hook = project.path / "strip.py"
    hook.write_text(
        "import re, sys\nfrom pathlib import Path\npath = Path(sys.argv[1])\n"
        "path.write_text(re.sub(r'(def upgrade\\(\\) -> None:\\n)(.*?)(\\n\\n\\ndef downgrade)', "
        "r'\\1    pass\\3', path.read_text(), flags=re.DOTALL))\n"
    )
    with (project.path / "alembic.ini").open("a") as ini:
        ini.write(
            "\n[post_write_hooks]\nhooks = strip\nstrip.type = exec\n"
            f"strip.executable = {sys.executable}\nstrip.options = strip.py REVISION_SCRIPT_FILENAME\n"
        )
    add_discount_code(project)
    project.manage("makemigrations", "--noinput")
    text = (project.versions / HEAD).read_text()
    assert "add_column" not in text and not FINGERPRINT.search(text)
    project.manage("migrate")
    assert NOTICE in noop_migrate(project)


def test_a_merge_head_has_no_fingerprint_and_is_compared(project):
    for name in ("0004_left", "0004_right"):
        (project.versions / f"{name}.py").write_text(migration_file(name, "    pass", "    pass"))
    result = project.manage("makemigrations", "--merge", "--noinput")
    assert "Merging project" in result.stdout
    merge = next(p for p in project.versions.glob("0005_*.py"))
    assert not FINGERPRINT.search(merge.read_text())
    project.manage("migrate")
    assert NOTICE not in noop_migrate(project)
    drop_reviews_behind_our_back(project)
    assert NOTICE in noop_migrate(project)  # compared, as without a fingerprint


def test_a_squashed_history_is_compared_until_the_next_migration(project):
    written_head(project)
    project.manage("squashmigrations", "0004", "--noinput")
    project.manage("migrate")
    assert NOTICE not in noop_migrate(project)
    drop_reviews_behind_our_back(project)
    assert NOTICE in noop_migrate(project)  # the files changed: the fingerprint no longer holds


ENUM_MODEL = """import sqlalchemy as sa

from project.models.base import Base

badges = sa.Table(
    "badges", Base.metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("kind", sa.Enum("gold", "silver", name="badge_kind")),
)
"""


@pytest.mark.postgres
def test_a_fresh_checkout_on_postgresql(project, pg_url):
    """With a native enum, which the comparison adapts in the models' metadata as it runs:
    the fingerprint makemigrations records is the models as a fresh process sees them."""
    env = {"DATABASE_URL": pg_url}
    (project.path / "project/models/badges.py").write_text(ENUM_MODEL)
    text = written_head(project, env=env)
    assert FINGERPRINT.search(text)
    drop_reviews_behind_our_back(project, pg_url)
    assert NOTICE not in noop_migrate(project, env=env)
    # The same files against SQLite: another database kind, so the fingerprint does not hold.
    project.manage("migrate")
    drop_reviews_behind_our_back(project)
    assert NOTICE in noop_migrate(project)


def test_update_records_the_fingerprint_again(project):
    add_discount_code(project)
    project.manage("makemigrations", "--noinput")
    head = project.versions / HEAD
    before = FINGERPRINT.findall(head.read_text())
    edit_models(project, "sa.String(20)", "sa.String(30)")
    project.manage("makemigrations", "--update", "--noinput")
    after = FINGERPRINT.findall(head.read_text())
    assert len(before) == len(after) == 1 and before != after
    project.manage("migrate")
    drop_reviews_behind_our_back(project)
    assert NOTICE not in noop_migrate(project)
