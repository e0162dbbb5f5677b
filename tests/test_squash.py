"""squashmigrations: the squashed history builds the same schema as the original one.

The example's 0001..0003 plus a 0004 made by makemigrations are squashed into one migration
that keeps 0004's revision id. A fresh database through the squashed history (manage.py and
plain alembic) and a database through the original history get equal schemas; a database
left at 0002, inside the squashed range, runs the rest of the replaced originals.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager

import pytest

from conftest import (
    PG_ADMIN_URL,
    _server_database,
    add_discount_code,
    direct_engine,
    migration_file,
)

END_REVISION = "0004_add_products_discount_code"
SQUASHED = "0004_squashed_0001_0004"


def full_schema(url: str) -> dict:
    """Tables, columns (type, nullability, default), keys, indexes and FKs, as inspect sees them."""
    import sqlalchemy as sa

    engine = direct_engine(url)
    try:
        inspector = sa.inspect(engine)
        schema = {}
        for table in inspector.get_table_names():
            if table == "sqlmanage_migrations":
                continue
            schema[table] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                    for c in inspector.get_columns(table)
                ],
                "pk": inspector.get_pk_constraint(table),
                "fks": sorted(inspector.get_foreign_keys(table), key=lambda fk: fk["name"] or ""),
                "indexes": sorted(inspector.get_indexes(table), key=lambda ix: ix["name"]),
                "unique": sorted(
                    inspector.get_unique_constraints(table), key=lambda uq: uq["name"] or ""
                ),
            }
        return schema
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_urls(request, project):
    """Four empty databases of one dialect: SQLite files, or PostgreSQL databases."""
    if request.param == "sqlite":
        yield [f"sqlite:///{project.path / f'db{n}.sqlite3'}" for n in range(4)]
        return
    with ExitStack() as stack:
        yield [
            stack.enter_context(contextmanager(_server_database)(PG_ADMIN_URL, "PostgreSQL"))
            for _ in range(4)
        ]


def test_squashed_history_builds_the_same_schema(project, database_urls):
    original, middle, fresh, plain_alembic = ({"DATABASE_URL": url} for url in database_urls)
    add_discount_code(project)
    project.manage("makemigrations", "--noinput")
    project.manage("migrate", env=original)
    expected = full_schema(database_urls[0])
    assert "discount_code" in {c[0] for c in expected["products"]["columns"]}
    project.manage("migrate", "0002", env=middle)

    squashed = project.manage("squashmigrations", "0004", "--noinput", env=middle)
    assert squashed.lines[:5] == [
        "Will squash the following migrations:",
        " - 0001_initial",
        " - 0002_add_products_discount_rate",
        " - 0003_fill_discount_rate",
        " - 0004_add_products_discount_code",
    ]
    assert (
        f"Created new squashed migration project/migrations/versions/{SQUASHED}.py"
        in squashed.stdout
    )
    assert "Manual porting required" in squashed.stdout
    assert squashed.lines[-1] == "    0003_fill_discount_rate"
    assert project.migration_files() == [f"{SQUASHED}.py"]
    assert sorted(p.name for p in (project.versions / "replaced").glob("*.py")) == [
        "0001_initial.py",
        "0002_add_products_discount_rate.py",
        "0003_fill_discount_rate.py",
        "0004_add_products_discount_code.py",
    ]
    source = (project.versions / f"{SQUASHED}.py").read_text()
    assert f"revision: str = '{END_REVISION}'" in source
    assert "down_revision: Union[str, Sequence[str], None] = None" in source
    assert "replaces = (\n    '0001_initial',\n" in source
    assert source.startswith("# Not carried over:")

    # A database past the range: the squashed migration stands for the originals it ran.
    past = project.manage("showmigrations", env=original)
    assert past.lines == ["project", f" [X] {SQUASHED}"]
    assert past.stderr == ""

    # A database inside the squashed range: shown as part-applied, then brought to head.
    shown = project.manage("showmigrations", env=middle)
    assert shown.lines == ["project", f" [-] {SQUASHED} (2 of 4 squashed migrations applied)"]
    caught_up = project.manage("migrate", env=middle)
    assert "Applying 0003_fill_discount_rate... OK" in caught_up.stdout
    assert "Applying 0004_add_products_discount_code... OK" in caught_up.stdout
    assert project.manage("showmigrations", env=middle).lines == ["project", f" [X] {SQUASHED}"]
    assert full_schema(database_urls[1]) == expected

    # A fresh database runs the squashed migration alone, and it unapplies back to nothing.
    applied = project.manage("migrate", env=fresh)
    assert [line.split("...")[0] for line in applied.lines[3:]] == [f"  Applying {SQUASHED}"]
    assert full_schema(database_urls[2]) == expected
    project.manage("migrate", "zero", env=fresh)
    assert set(full_schema(database_urls[2])) == {"alembic_version"}

    # Plain Alembic sees an ordinary history ending at the same revision id.
    upgraded = project.alembic("upgrade", "head", env=plain_alembic)
    assert upgraded.returncode == 0, upgraded.stderr
    assert full_schema(database_urls[3]) == expected
    current = project.alembic("current", env=original)
    assert current.returncode == 0, current.stderr
    assert current.stdout.strip() == f"{END_REVISION} (head)"


def test_squash_refuses_what_it_cannot_do(project):
    unknown = project.run("squashmigrations", "0099")
    assert unknown.returncode == 1
    assert "Cannot find a migration matching '0099'" in unknown.stderr
    assert "Traceback" not in unknown.stderr

    for name, down in (
        ("0004_left", "0003_fill_discount_rate"),
        ("0004_right", "0003_fill_discount_rate"),
        ("0005_merge", ("0004_left", "0004_right")),
    ):
        (project.versions / f"{name}.py").write_text(
            migration_file(name, "    pass", "    pass", down_revision=down)
        )
    merge = project.run("squashmigrations", "0003", "0005")
    assert merge.returncode == 1
    assert "Cannot squash a range that contains the merge migration 0005_merge." in merge.stderr
    branch = project.run("squashmigrations", "0004_left")
    assert branch.returncode == 1
    assert "contains 0003_fill_discount_rate, where the history branches" in branch.stderr
    for name in ("0004_left", "0004_right", "0005_merge"):
        (project.versions / f"{name}.py").unlink()

    (project.versions / "replaced").mkdir()
    (project.versions / "replaced" / "0001_initial.py").write_text("# an earlier squash\n")
    clobber = project.run("squashmigrations", "0002")
    assert clobber.returncode == 1
    assert "replaced already holds 0001_initial.py" in clobber.stderr
    assert project.migration_files() == [
        "0001_initial.py",
        "0002_add_products_discount_rate.py",
        "0003_fill_discount_rate.py",
    ]
    assert (
        project.versions / "replaced" / "0001_initial.py"
    ).read_text() == "# an earlier squash\n"

    project.edit(
        "alembic.ini",
        "prepend_sys_path = .",
        "prepend_sys_path = .\nrecursive_version_locations = true",
    )
    recursive = project.run("squashmigrations", "0002")
    assert recursive.returncode == 1
    assert "recursive_version_locations" in recursive.stderr
