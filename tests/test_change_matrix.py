"""No phantom differences, and every change round-trips, on SQLite, PostgreSQL and MariaDB.

The test writes a model module, ``project/models/inventory.py``, into its copy of the example
project (discovery imports it, no other file names it). Its tables are built from dicts of
lines, one per column or constraint, so each change below is a few readable lines.

For every kind of model change the matrix starts from a migrated project, snapshots the
reflected schema, changes the model, runs ``makemigrations``, ``migrate`` and
``makemigrations --check`` (which must be clean), then ``migrate -1`` and compares the schema
with the snapshot: the downgrade must give back exactly the schema the change started from.
Plain ``alembic upgrade head`` then applies the change's migration again, on that same
database, and must build exactly what ``migrate`` built.
"""

from __future__ import annotations

import re
import shutil
from typing import NamedTuple

import pytest
import sqlalchemy as sa

from conftest import direct_engine, inspect_schema
from test_schema_identity import database_schema

MODULE = "project/models/inventory.py"

HEADER = '''"""Written by tests/test_change_matrix.py."""

import enum

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from project.models.base import Base


class Color(enum.Enum):
{colors}


class TagKind(enum.Enum):
    topic = "topic"
    brand = "brand"


class Size(enum.Enum):
    small = "small"
    large = "large"
'''

COLORS = ("red", "green")

Tables = dict[str, dict[str, str]]


class Models(NamedTuple):
    """The module's tables (name -> column and constraint lines) and the labels of Color."""

    tables: Tables
    colors: tuple[str, ...] = COLORS


def module_source(models: Models) -> str:
    """The model module: the enums, then one ``sa.Table`` per entry, its lines in order."""
    parts = [HEADER.format(colors="\n".join(f'    {c} = "{c}"' for c in models.colors))]
    for name, lines in models.tables.items():
        body = "".join(f"    {line},\n" for line in lines.values())
        parts.append(f'\n{name} = sa.Table(\n    "{name}",\n    Base.metadata,\n{body})\n')
    return "".join(parts)


def write_models(project, models: Models) -> None:
    """Rewrite the models module, and drop its bytecode: Python trusts a .pyc whose source has
    the same size and the same whole-second mtime, and a case rewrites the module within a
    second with a same-size change (a server default '0' becoming '1')."""
    path = project.path / MODULE
    path.write_text(module_source(models))
    for cached in path.parent.glob(f"__pycache__/{path.stem}.*.pyc"):
        cached.unlink()


# -- Databases -------------------------------------------------------------------------------


@pytest.fixture
def database_env(request, project):
    """(env for manage.py, URL to inspect) for the database named by the parameter."""
    if request.param == "sqlite":
        return {}, f"sqlite:///{project.sqlite_file}"
    url = request.getfixturevalue("pg_url" if request.param == "postgresql" else "mariadb_url")
    return {"DATABASE_URL": url}, url


DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    pytest.param("mariadb", id="mariadb", marks=pytest.mark.mariadb),
]


def dialect_of(url: str) -> str:
    return sa.engine.make_url(url).get_backend_name()


# -- Schema snapshot -------------------------------------------------------------------------


def _default(value):
    return None if value is None else str(value).strip()


def snapshot(url: str) -> dict:
    """Everything the inspector reflects that a migration may change, as plain comparable data:
    per table its columns (name, type compiled for the dialect, nullable, default), primary key,
    indexes, unique and check constraints, foreign keys with their options; on PostgreSQL also
    the enum types and their labels. Columns are compared by name, not position: a column that
    is dropped and added back legitimately comes last."""
    engine = direct_engine(url)
    try:
        with engine.connect() as connection:  # one connection for every reflection query
            inspector = sa.inspect(connection)
            schema = {t: _table(inspector, t, engine.dialect) for t in inspector.get_table_names()}
            if engine.dialect.name == "postgresql":
                enums = inspector.get_enums()
                schema["<enum types>"] = sorted((e["name"], tuple(e["labels"])) for e in enums)
                for other in set(inspector.get_schema_names()) - {"public", "information_schema"}:
                    for t in inspector.get_table_names(schema=other):
                        schema[f"{other}.{t}"] = _table(inspector, t, engine.dialect, other)
            return schema
    finally:
        engine.dispose()


def _table(inspector, table: str, dialect, schema: str | None = None) -> dict:
    columns = []
    for column in inspector.get_columns(table, schema=schema):
        try:
            type_ = column["type"].compile(dialect=dialect)
        except Exception:  # a type the dialect cannot compile back: still compare it
            type_ = repr(column["type"])
        computed = (column.get("computed") or {}).get("sqltext")
        columns.append(
            (
                column["name"],
                type_,
                column["nullable"],
                _default(column.get("default")),
                column.get("comment"),
                _default(computed),
                bool(column.get("identity")),
            )
        )
    try:
        comment = inspector.get_table_comment(table, schema=schema).get("text")
    except NotImplementedError:  # SQLite keeps no comments
        comment = None
    return {
        "columns": sorted(columns),
        "comment": comment,
        "primary key": inspector.get_pk_constraint(table, schema=schema).get("constrained_columns"),
        "indexes": sorted(
            (
                i["name"],
                tuple(str(c) for c in i["column_names"]),
                bool(i["unique"]),
                tuple(str(e) for e in i.get("expressions") or ()),
                str((i.get("dialect_options") or {}).get(f"{dialect.name}_where")),
            )
            for i in inspector.get_indexes(table, schema=schema)
        ),
        "unique constraints": sorted(
            (u["name"], tuple(u["column_names"]))
            for u in inspector.get_unique_constraints(table, schema=schema)
        ),
        "check constraints": sorted(
            (c["name"], " ".join(c["sqltext"].split()))
            for c in inspector.get_check_constraints(table, schema=schema)
        ),
        "foreign keys": sorted(
            (
                f["name"],
                tuple(f["constrained_columns"]),
                f["referred_table"],
                tuple(f["referred_columns"]),
                tuple(sorted((f.get("options") or {}).items())),
            )
            for f in inspector.get_foreign_keys(table, schema=schema)
        ),
    }


def schema_difference(before: dict, after: dict) -> str:
    """The tables (and enum types) that differ, both sides shown, for the failure message."""
    lines = []
    for table in sorted(set(before) | set(after)):
        old, new = before.get(table), after.get(table)
        if old == new:
            continue
        if old is None or new is None:
            lines.append(
                f"{table}: {'missing' if new is None else 'left behind'} after the downgrade"
            )
            continue
        if not isinstance(old, dict):
            lines.append(f"{table}:\n    before: {old}\n    after:  {new}")
            continue
        for part in old:
            if old[part] != new[part]:
                gone = [x for x in old[part] if x not in new[part]]
                extra = [x for x in new[part] if x not in old[part]]
                lines.append(f"{table}.{part}: before only {gone}, after only {extra}")
    return "\n".join(lines)


def pg_enum_types(url: str) -> list[str]:
    engine = direct_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql("select typname from pg_type where typtype = 'e'")
            return sorted(name for (name,) in rows)
    finally:
        engine.dispose()


def new_files(project, before: list[str]) -> list[str]:
    return [name for name in project.migration_files() if name not in before]


def outcome(result) -> str:
    return f"exited {result.returncode}\n{result.stdout}\n{result.stderr}"


def migration_body(project, name: str) -> str:
    """upgrade() and downgrade() of a migration file, for failure messages."""
    source = (project.versions / name).read_text()
    return source[source.index("def upgrade") :]


# -- Every type, every kind of default and constraint ------------------------------------------

EVERY_TYPE = Models(
    {
        "owners": {
            "id": 'sa.Column("id", sa.Integer(), primary_key=True)',
            "name": 'sa.Column("name", sa.String(100), nullable=False)',
        },
        "items": {
            "id": 'sa.Column("id", sa.Integer(), primary_key=True)',
            "serial": 'sa.Column("serial", sa.BigInteger(), nullable=False)',
            "name": 'sa.Column("name", sa.String(80), nullable=False, index=True)',
            "body": 'sa.Column("body", sa.Text())',
            "active": 'sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.text("true"))',
            "ratio": 'sa.Column("ratio", sa.Float())',
            "price": 'sa.Column("price", sa.Numeric(10, 2))',
            "born": 'sa.Column("born", sa.Date())',
            "updated_at": 'sa.Column("updated_at", sa.DateTime(), server_default=sa.func.now())',
            "created_at": 'sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, '
            "server_default=sa.func.now())",
            "data": 'sa.Column("data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"))',
            "token": 'sa.Column("token", sa.Uuid(), nullable=False, unique=True)',
            "color": 'sa.Column("color", sa.Enum(Color), nullable=False)',
            "stock": 'sa.Column("stock", sa.Integer(), nullable=False, server_default="0")',
            "owner_id": 'sa.Column("owner_id", sa.Integer(), sa.ForeignKey("owners.id", ondelete="CASCADE"))',
            "stock_check": 'sa.CheckConstraint("stock >= 0", name="stock_not_negative")',
            "name_owner": 'sa.UniqueConstraint("name", "owner_id")',
        },
    }
)


@pytest.mark.parametrize("database_env", DATABASES, indirect=True)
def test_every_type_is_clean_after_migrate_and_unapplied_without_leftovers(project, database_env):
    env, url = database_env
    write_models(project, EVERY_TYPE)
    files = project.migration_files()
    project.manage("makemigrations", "--noinput", env=env)
    (written,) = new_files(project, files)
    source = migration_body(project, written)
    applied = project.run("migrate", env=env)
    assert applied.returncode == 0, f"migrate {outcome(applied)}\n{source}"
    if dialect_of(url) == "postgresql":  # the PostgreSQL variant and types, the native enum
        schema = snapshot(url)
        types = {name: type_ for name, type_, *_ in schema["items"]["columns"]}
        assert [types[c] for c in ("data", "created_at", "token", "color")] == [
            "JSONB",
            "TIMESTAMP WITH TIME ZONE",
            "UUID",
            "color",
        ]
        assert schema["<enum types>"] == [("color", ("red", "green"))]

    check = project.run("makemigrations", "--check", env=env)
    assert (check.returncode, check.lines) == (0, ["No changes detected"]), (
        f"phantom differences on {dialect_of(url)}: {outcome(check)}\n{source}"
    )

    project.manage("migrate", "-1", env=env)
    tables = set(inspect_schema(url))
    assert not {"owners", "items"} & tables
    assert {"products", "categories", "customers", "reviews"} <= tables
    if dialect_of(url) == "postgresql":
        assert pg_enum_types(url) == [], "the downgrade left the enum type behind"


# -- The matrix of changes ---------------------------------------------------------------------

START = Models(
    {
        "owners": {
            "id": 'sa.Column("id", sa.Integer(), primary_key=True)',
        },
        "items": {
            "id": 'sa.Column("id", sa.Integer(), primary_key=True)',
            "name": 'sa.Column("name", sa.String(50), nullable=False, index=True)',
            "note": 'sa.Column("note", sa.String(50))',
            "qty": 'sa.Column("qty", sa.Integer())',
            "code": 'sa.Column("code", sa.String(20), nullable=False)',
            "status": 'sa.Column("status", sa.Integer(), server_default="0")',
            "active": 'sa.Column("active", sa.Boolean())',
            "seen_at": 'sa.Column("seen_at", sa.DateTime())',
            "color": 'sa.Column("color", sa.Enum(Color))',
            "owner_id": 'sa.Column("owner_id", sa.Integer())',
        },
        "tags": {
            "id": 'sa.Column("id", sa.Integer(), primary_key=True)',
            "kind": 'sa.Column("kind", sa.Enum(TagKind), nullable=False)',
        },
    }
)


# The start migration that makemigrations wrote for START, per dialect: the first case on a
# database writes it, the others reuse the file (one subprocess less per case).
START_MIGRATIONS: dict[str, tuple[str, str]] = {}


def migrate_start(project, env: dict[str, str], url: str) -> None:
    """The project with START written, its migration made, and the database migrated."""
    write_models(project, START)
    dialect = dialect_of(url)
    if dialect in START_MIGRATIONS:
        name, source = START_MIGRATIONS[dialect]
        (project.versions / name).write_text(source)
    else:
        files = project.migration_files()
        project.manage("makemigrations", "--noinput", env=env)
        (name,) = new_files(project, files)
        START_MIGRATIONS[dialect] = (name, (project.versions / name).read_text())
    project.manage("migrate", env=env)


def changed(**tables: dict[str, str | None] | None) -> Models:
    """START with some lines replaced, added (a new key) or removed (None); a table None: dropped."""
    result = {name: dict(lines) for name, lines in START.tables.items()}
    for name, lines in tables.items():
        if lines is None:
            del result[name]
            continue
        target = result.setdefault(name, {})
        for key, line in lines.items():
            if line is None:
                del target[key]
            else:
                target[key] = line
    return Models(result)


CHANGES = {
    "add_nullable_column": changed(items={"added": 'sa.Column("added", sa.String(30))'}),
    "drop_column": changed(items={"note": None}),
    "alter_string_length": changed(items={"note": 'sa.Column("note", sa.String(100))'}),
    "alter_integer_to_biginteger": changed(items={"qty": 'sa.Column("qty", sa.BigInteger())'}),
    "nullable_to_not_null_with_server_default": changed(
        items={"qty": 'sa.Column("qty", sa.Integer(), nullable=False, server_default="0")'}
    ),
    "not_null_to_nullable": changed(
        items={"code": 'sa.Column("code", sa.String(20), nullable=True)'}
    ),
    "add_server_default_text": changed(
        items={"note": 'sa.Column("note", sa.String(50), server_default="none")'}
    ),
    "add_server_default_true": changed(
        items={"active": 'sa.Column("active", sa.Boolean(), server_default=sa.text("true"))'}
    ),
    "add_server_default_now": changed(
        items={"seen_at": 'sa.Column("seen_at", sa.DateTime(), server_default=sa.func.now())'}
    ),
    "change_server_default": changed(
        items={"status": 'sa.Column("status", sa.Integer(), server_default="1")'}
    ),
    "remove_server_default": changed(items={"status": 'sa.Column("status", sa.Integer())'}),
    "add_index": changed(
        items={"code": 'sa.Column("code", sa.String(20), nullable=False, index=True)'}
    ),
    "drop_index": changed(items={"name": 'sa.Column("name", sa.String(50), nullable=False)'}),
    "add_unique": changed(
        items={"code": 'sa.Column("code", sa.String(20), nullable=False, unique=True)'}
    ),
    "add_check": changed(
        items={"qty_check": 'sa.CheckConstraint("qty >= 0", name="qty_not_negative")'}
    ),
    "add_foreign_key_with_ondelete": changed(
        items={
            "owner_id": 'sa.Column("owner_id", sa.Integer(), sa.ForeignKey("owners.id", ondelete="CASCADE"))',
        }
    ),
    "add_table": changed(
        labels={
            "id": 'sa.Column("id", sa.Integer(), primary_key=True)',
            "text": 'sa.Column("text", sa.String(40), nullable=False, unique=True)',
            "owner_id": 'sa.Column("owner_id", sa.Integer(), '
            'sa.ForeignKey("owners.id", ondelete="SET NULL"))',
        }
    ),
    "add_table_using_an_existing_enum": changed(
        palettes={
            "id": 'sa.Column("id", sa.Integer(), primary_key=True)',
            "color": 'sa.Column("color", sa.Enum(Color), nullable=False)',
        }
    ),
    "drop_table": changed(tags=None),
    "add_column_with_a_new_enum": changed(items={"size": 'sa.Column("size", sa.Enum(Size))'}),
    "drop_the_only_column_of_an_enum": changed(tags={"kind": None}),
    # "yellow" is longer than every label so far: on SQLite, where the enum is a VARCHAR sized
    # to its longest label, the change is a real schema change too.
    "add_enum_value": Models(START.tables, COLORS + ("yellow",)),
    # Column rename is covered by test_makemigrations_history.py (it asks on a terminal).
    # What real projects have, beyond the basics:
    "add_computed_column": changed(
        items={"double_qty": 'sa.Column("double_qty", sa.Integer(), sa.Computed("qty * 2"))'}
    ),
    "add_table_with_identity_and_computed_columns": changed(
        counters={
            "id": 'sa.Column("id", sa.Integer(), sa.Identity(start=10), primary_key=True)',
            "hits": 'sa.Column("hits", sa.Integer(), nullable=False, server_default="0")',
            "double_hits": 'sa.Column("double_hits", sa.Integer(), sa.Computed("hits * 2", persisted=True))',
        }
    ),
    "add_comments": changed(
        items={
            "note": 'sa.Column("note", sa.String(50), comment="what the item is for")',
            "comment": 'comment="stock items"',
        }
    ),
    "add_enum_generated_check": changed(
        items={
            "size": 'sa.Column("size", sa.Enum(Size, native_enum=False, create_constraint=True))'
        }
    ),
    "add_table_with_enum_generated_check": changed(
        sizes={
            "id": 'sa.Column("id", sa.Integer(), primary_key=True)',
            "size": 'sa.Column("size", sa.Enum(Size, native_enum=False, create_constraint=True), nullable=False)',
        }
    ),
    "add_partial_index": changed(
        items={
            "partial": 'sa.Index("ix_items_qty_positive", "qty", postgresql_where=sa.text("qty > 0"), '
            'sqlite_where=sa.text("qty > 0"))'
        }
    ),
    "add_expression_index": changed(
        items={"lower_code": 'sa.Index("ix_items_lower_code", sa.text("lower(code)"))'}
    ),
    "add_table_in_another_schema": changed(
        ledger={
            "id": 'sa.Column("id", sa.Integer(), primary_key=True)',
            "amount": 'sa.Column("amount", sa.Numeric(10, 2), nullable=False, server_default="0")',
            "owner_id": 'sa.Column("owner_id", sa.Integer(), sa.ForeignKey("owners.id"))',
            "schema": 'schema="accounts"',
        }
    ),
    # Names past PostgreSQL's 63 and MariaDB's 64 characters, cut by SQLAlchemy with a hash.
    "add_long_convention_names": changed(
        items={
            "long_check": 'sa.CheckConstraint("qty < 1000000", '
            'name="qty_stays_below_one_million_units_for_every_single_item_we_stock")',
            "quantity_of_items_kept_in_the_warehouse_right_now": (
                'sa.Column("quantity_of_items_kept_in_the_warehouse_right_now", sa.Integer(), index=True, '
                "unique=True)"
            ),
        }
    ),
    "add_multi_line_server_default": changed(
        items={
            "grade": 'sa.Column("grade", sa.String(10), nullable=False, server_default=sa.text("""CASE\n'
            "        WHEN 1 = 1   THEN  'a'\n        ELSE 'b'\n    END\"\"\"))"
        }
    ),
}

# Where a database cannot have the change at all (SQLite keeps no comments, has no schemas;
# MariaDB has no expression indexes), the case does not run there.
ONLY_ON = {
    "add_comments": {"postgresql", "mariadb"},
    "add_expression_index": {"postgresql"},
    "add_table_in_another_schema": {"postgresql"},
}


def upgraded_by_plain_alembic(project, url: str, start_copy) -> dict:
    """The schema plain 'alembic upgrade head' builds from the same files, applying the change's
    migration alone to the start schema that ``migrate`` built (the start migration's own
    identity is test_schema_identity's). On a server that is the test's database, which
    ``migrate -1`` has just given back the start schema; on SQLite, whose ``sqlite_master``
    keeps each table's SQL as its history wrote it, a copy of the file taken at the start."""
    if start_copy is not None:
        url = f"sqlite:///{start_copy}"
    result = project.alembic("upgrade", "head", env={"DATABASE_URL": url})
    assert result.returncode == 0, f"alembic upgrade head: {outcome(result)}"
    return database_schema(url)


def prepare_case(project, kind: str, url: str) -> None:
    """What a case needs besides its models: a second schema and INCLUDE_SCHEMAS for one."""
    if kind == "add_table_in_another_schema":
        from conftest import execute

        execute(url, "CREATE SCHEMA accounts")
        with (project.path / "project/settings.py").open("a") as settings:
            settings.write("\nINCLUDE_SCHEMAS = True\n")


def model_enum_types(models: Models) -> list[tuple[str, tuple[str, ...]]]:
    """The native enum types the models use and their labels: sa.Enum(Color) is the type "color"."""
    labels = {"Color": models.colors, "TagKind": ("topic", "brand"), "Size": ("small", "large")}
    used = {
        name
        for lines in models.tables.values()
        for line in lines.values()
        for name in re.findall(r"sa\.Enum\((\w+)\)", line)
    }
    return sorted((name.lower(), labels[name]) for name in used)


def matrix(kinds) -> list:
    """(database, kind) pairs for every kind on every database that can have it."""
    return [
        pytest.param(database.values[0], kind, id=f"{kind}-{database.id}", marks=database.marks)
        for kind in kinds
        for database in DATABASES
        if database.values[0] in ONLY_ON.get(kind, {database.values[0]})
    ]


@pytest.mark.parametrize(("database_env", "kind"), matrix(CHANGES), indirect=["database_env"])
def test_change_applies_cleanly_and_unapplies_to_the_schema_before(project, database_env, kind):
    env, url = database_env
    prepare_case(project, kind, url)
    migrate_start(project, env, url)
    before = snapshot(url)
    files = project.migration_files()
    start_copy = None
    if dialect_of(url) == "sqlite":
        start_copy = project.path / "start_for_alembic.sqlite3"
        shutil.copyfile(project.sqlite_file, start_copy)

    write_models(project, CHANGES[kind])
    made = project.run("makemigrations", "--noinput", env=env)
    assert made.returncode == 0, f"makemigrations {outcome(made)}"
    written = new_files(project, files)
    assert len(written) == 1, f"expected one new migration, got {written}: {outcome(made)}"
    source = migration_body(project, written[0])

    applied = project.run("migrate", env=env)
    assert applied.returncode == 0, f"migrate {outcome(applied)}\n{source}"
    migrated = snapshot(url)
    assert migrated != before, f"{written[0]} did not change the schema\n{source}"
    if dialect_of(url) == "postgresql":  # created, extended and dropped with the migration
        assert migrated["<enum types>"] == model_enum_types(CHANGES[kind]), f"enum types\n{source}"
    check = project.run("makemigrations", "--check", env=env)
    assert (check.returncode, check.lines) == (0, ["No changes detected"]), (
        f"{written[0]} is applied, yet --check still sees changes: {outcome(check)}\n{source}"
    )
    built_by_migrate = database_schema(url)

    unapplied = project.run("migrate", "-1", env=env)
    assert unapplied.returncode == 0, f"migrate -1 {outcome(unapplied)}\n{source}"
    after = snapshot(url)
    assert after == before, (
        f"migrate -1 (unapplying {written[0]}) did not give back the schema before:\n"
        f"{schema_difference(before, after)}\n{source}"
    )
    assert upgraded_by_plain_alembic(project, url, start_copy) == built_by_migrate, (
        f"'alembic upgrade head' built another schema than migrate\n{source}"
    )
