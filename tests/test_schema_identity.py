"""One schema, whichever entry point builds it: 'manage.py migrate' and plain 'alembic upgrade
head' leave identical databases (sqlmanage's audit table aside), constraint names included.

Alembic names the constraints a migration leaves unnamed after the models' naming convention
(``target_metadata``); a run without the models would get the database's own names instead.
The schema is compared as the database itself describes it: ``sqlite_master`` on SQLite,
the catalogue (``pg_get_constraintdef``, ``pg_indexes``) on PostgreSQL, ``SHOW CREATE TABLE``
on MariaDB.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import AUDIT_TABLE, Project, direct_engine, two_empty_databases

SQLMANAGE_MODULE = [sys.executable, "-m", "sqlmanage"]

# A hand-written first migration in the guide's style: constraints and an index left unnamed,
# and a batch block that adds an unnamed unique constraint and CHECK to an existing table.
HAND_WRITTEN_0001 = '''"""initial

Revision ID: 0001_initial
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(50), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "products",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(20), nullable=False),
        sa.Column("price", sa.Numeric(10, 2), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["tag_id"], ["tags.id"]),
    )
    with op.batch_alter_table("products") as batch_op:
        batch_op.create_unique_constraint(None, ["sku"])
        batch_op.create_check_constraint("price_positive", "price >= 0")


def downgrade():
    op.drop_table("products")
    op.drop_table("tags")
'''

MODELS = """import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from shop.models.base import Base


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50), unique=True)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (sa.CheckConstraint("price >= 0", name="price_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(sa.String(20), unique=True)
    price: Mapped[float] = mapped_column(sa.Numeric(10, 2))
    tag_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tags.id"))
"""


def database_schema(url: str) -> dict:
    """The schema as the database describes it, sqlmanage's audit table left out."""
    engine = direct_engine(url)
    try:
        with engine.connect() as connection:
            name = connection.dialect.name
            if name == "sqlite":
                rows = connection.exec_driver_sql(
                    "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
                )
                return {"sqlite_master": [tuple(r) for r in rows if r[2] != AUDIT_TABLE]}
            if name == "postgresql":
                return _postgresql_schema(connection)
            tables = [t for (t,) in connection.exec_driver_sql("SHOW TABLES") if t != AUDIT_TABLE]
            return {
                t: connection.exec_driver_sql(f"SHOW CREATE TABLE `{t}`").one()[1]
                for t in sorted(tables)
            }
    finally:
        engine.dispose()


def _postgresql_schema(connection) -> dict:
    def rows(sql: str) -> list[tuple]:
        return [tuple(r) for r in connection.exec_driver_sql(sql)]

    audit = f"'{AUDIT_TABLE}'"
    return {
        "columns": rows(
            "SELECT table_name, column_name, data_type, character_maximum_length, is_nullable, "
            "column_default FROM information_schema.columns WHERE table_schema = 'public' "
            f"AND table_name <> {audit} ORDER BY table_name, column_name"
        ),
        "constraints": rows(
            "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) "
            "FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
            f"WHERE n.nspname = 'public' AND c.conrelid::regclass::text <> {audit} "
            "ORDER BY 1, 2"
        ),
        "indexes": rows(
            f"SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            f"AND tablename <> {audit} ORDER BY 1, 2"
        ),
        "types": rows(
            "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname = 'public' AND t.typtype = 'e' ORDER BY 1"
        ),
    }


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def two_databases(request, tmp_path) -> tuple[str, str]:
    """Two empty databases of one kind: one for manage.py, one for plain alembic."""
    return two_empty_databases(request, tmp_path)


def built_both_ways(project: Project, urls: tuple[str, str]) -> tuple[dict, dict]:
    migrated, upgraded = urls
    project.manage("migrate", "--noinput", env={"DATABASE_URL": migrated})
    result = project.alembic("upgrade", "head", env={"DATABASE_URL": upgraded})
    assert result.returncode == 0, result.stderr
    return database_schema(migrated), database_schema(upgraded)


def test_the_example_project(project, two_databases):
    by_migrate, by_alembic = built_both_ways(project, two_databases)
    assert by_migrate == by_alembic
    assert "products" in repr(by_migrate)


def test_a_new_project_with_unnamed_constraints_gets_the_convention_names(tmp_path, two_databases):
    """startproject's naming convention names what the hand-written 0001 leaves unnamed, under
    migrate as under alembic, and the models then match the history exactly."""
    result = Project(tmp_path).run("startproject", "shop", program=SQLMANAGE_MODULE)
    assert result.returncode == 0, result.stderr
    shop = Project(tmp_path / "shop")
    (shop.path / "shop" / "models" / "catalogue.py").write_text(MODELS)
    (shop.path / "shop" / "migrations" / "versions" / "0001_initial.py").write_text(
        HAND_WRITTEN_0001
    )

    by_migrate, by_alembic = built_both_ways(shop, two_databases)
    assert by_migrate == by_alembic
    described = repr(by_migrate)
    for name in (
        "uq_tags_name",
        "uq_products_sku",
        "fk_products_tag_id_tags",
        "ck_products_price_positive",
    ):
        assert name in described, f"{name} missing: {described}"
    if "postgresql" in two_databases[0]:
        assert (
            "pk_tags" in described
            and "tags_pkey" not in described
            and "tags_name_key" not in described
        )
    for url in two_databases:
        check = shop.run("makemigrations", "--check", env={"DATABASE_URL": url})
        assert check.returncode == 0, check.stdout + check.stderr
        assert check.stdout.strip() == "No changes detected"


def test_offline_sql_names_constraints_as_the_migration_does(tmp_path):
    """'sqlmigrate' and 'migrate --sql' render the convention names too (no database needed)."""
    result = Project(tmp_path).run("startproject", "shop", program=SQLMANAGE_MODULE)
    assert result.returncode == 0, result.stderr
    shop = Project(tmp_path / "shop")
    (shop.path / "shop" / "models" / "catalogue.py").write_text(MODELS)
    (shop.path / "shop" / "migrations" / "versions" / "0001_initial.py").write_text(
        HAND_WRITTEN_0001
    )
    postgres = {"DATABASE_URL": "postgresql://someone:pw@127.0.0.1:1/nowhere"}
    for args in (["sqlmigrate", "0001"], ["migrate", "--sql"]):
        sql = shop.manage(*args, env=postgres).stdout
        assert "CONSTRAINT pk_tags PRIMARY KEY (id)" in sql
        assert "CONSTRAINT uq_tags_name UNIQUE (name)" in sql
        assert "ADD CONSTRAINT uq_products_sku UNIQUE (sku)" in sql
    plain = shop.alembic("upgrade", "head", "--sql", env=postgres)
    assert plain.returncode == 0, plain.stderr
    assert "CONSTRAINT uq_tags_name UNIQUE (name)" in plain.stdout
    assert not Path(shop.path / "db.sqlite3").exists()
