"""sqlmigrate: one migration's SQL for the configured dialect, with no database."""

from __future__ import annotations

from conftest import migration_file

UNREACHABLE_PG = {"DATABASE_URL": "postgresql://someone:pw@127.0.0.1:1/nowhere"}


def test_sqlite_sql_is_commented_per_operation_and_wrapped_in_a_transaction(project):
    result = project.manage("sqlmigrate", "0002")
    lines = result.lines
    assert lines[0] == "BEGIN;"
    assert lines[-1] == "COMMIT;"
    assert lines[1:4] == ["--", "-- Add column discount_rate to products", "--"]
    assert "ALTER TABLE products ADD COLUMN discount_rate FLOAT;" in lines
    assert not project.sqlite_file.exists()


def test_sqlite_batch_rebuild_is_shown_without_a_database(project):
    """0003 sets NOT NULL: SQLite rebuilds the table, and the SQL shows every statement."""
    result = project.manage("sqlmigrate", "0003")
    assert "-- Raw SQL operation" in result.lines
    assert (
        "UPDATE products SET discount_rate=0.0 WHERE products.discount_rate IS NULL;"
        in result.lines
    )
    assert "-- Alter column discount_rate on products (NOT NULL)" in result.lines
    assert any(line.startswith("CREATE TABLE _alembic_tmp_products") for line in result.lines)
    assert "    discount_rate FLOAT NOT NULL, " in result.lines
    assert "ALTER TABLE _alembic_tmp_products RENAME TO products;" in result.lines
    assert not project.sqlite_file.exists()


def test_backwards(project):
    result = project.manage("sqlmigrate", "0003", "--backwards")
    assert "-- Alter column discount_rate on products (nullable)" in result.lines
    assert "    discount_rate FLOAT, " in result.lines


def test_postgresql_dialect_needs_no_server(project):
    result = project.manage("sqlmigrate", "0003", env=UNREACHABLE_PG)
    assert result.lines[0] == "BEGIN;" and result.lines[-1] == "COMMIT;"
    assert "ALTER TABLE products ALTER COLUMN discount_rate SET NOT NULL;" in result.lines
    initial = project.manage("sqlmigrate", "0001_initial", env=UNREACHABLE_PG)
    assert (
        "CREATE INDEX idx_products_category ON products (category_id, is_active);" in initial.lines
    )
    assert "-- Create table reviews" in initial.lines


def test_mysql_dialect_has_no_transaction_wrapper(project):
    result = project.manage(
        "sqlmigrate", "0002", env={"DATABASE_URL": "mysql+pymysql://root:pw@127.0.0.1:1/nowhere"}
    )
    assert "BEGIN;" not in result.lines
    assert "ALTER TABLE products ADD COLUMN discount_rate FLOAT;" in result.lines


ENVIRONMENT_AWARE = migration_file(
    "0004_environment_aware",
    """    from alembic import context

    if context.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.execute("SELECT 1")
    op.add_column("products", sa.Column("barcode", sa.String(13)))""",
    """    op.drop_column("products", "barcode")""",
)


def test_migrations_that_use_alembics_context_render_offline_and_replay(project):
    """context.get_bind() and autocommit_block() work in sqlmigrate, migrate --sql and the
    replay makemigrations compares with, as they do under 'alembic upgrade --sql'."""
    (project.versions / "0004_environment_aware.py").write_text(ENVIRONMENT_AWARE)
    project.edit(
        "project/models/catalogue.py",
        "    discount_rate: Mapped[float]",
        "    barcode: Mapped[str | None] = mapped_column(sa.String(13))\n    discount_rate: Mapped[float]",
    )
    sql = project.manage("sqlmigrate", "0004", env=UNREACHABLE_PG).stdout
    assert "SELECT 1;" in sql and "ALTER TABLE products ADD COLUMN barcode VARCHAR(13);" in sql
    script = project.manage("migrate", "--sql", env=UNREACHABLE_PG).stdout
    assert "-- Running upgrade 0003_fill_discount_rate -> 0004_environment_aware" in script
    assert script.index("COMMIT;\n\n--\n-- Raw SQL operation\n--\n\nSELECT 1;") < script.index(
        "ADD COLUMN barcode"
    )
    assert (
        "ALTER TABLE products ADD COLUMN barcode VARCHAR(13);"
        in project.manage("sqlmigrate", "0004").stdout
    )
    check = project.run("makemigrations", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.strip() == "No changes detected"


def test_a_batch_block_on_postgresql_shows_each_statement_under_its_comment(project):
    (project.versions / "0004_two_changes.py").write_text(
        migration_file(
            "0004_two_changes",
            """    with op.batch_alter_table("products") as batch_op:
        batch_op.add_column(sa.Column("barcode", sa.String(13)))
        batch_op.create_index("ix_products_barcode", ["barcode"])""",
            """    with op.batch_alter_table("products") as batch_op:
        batch_op.drop_index("ix_products_barcode")
        batch_op.drop_column("barcode")""",
        )
    )
    lines = project.manage("sqlmigrate", "0004", env=UNREACHABLE_PG).lines
    add = lines.index("-- Add column barcode to products")
    index = lines.index("-- Create index ix_products_barcode on products")
    assert add < lines.index("ALTER TABLE products ADD COLUMN barcode VARCHAR(13);") < index
    assert index < lines.index("CREATE INDEX ix_products_barcode ON products (barcode);")


def test_a_table_with_an_inline_index_renders_on_sqlite_and_the_shadow_follows_it(project):
    """create_table(..., sa.Index(...)) then a batch rebuild of that table in the same
    migration: the SQL and the in-memory copy batch mode reads both get the index."""
    (project.versions / "0004_assets.py").write_text(
        migration_file(
            "0004_assets",
            """    op.create_table(
        "assets",
        sa.Column("name", sa.String(50), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_assets")),
        sa.Index("ix_assets_name_unique", "name", unique=True),
    )
    with op.batch_alter_table("assets") as batch_op:
        batch_op.alter_column("name", existing_type=sa.String(50), type_=sa.String(80))""",
            """    op.drop_table("assets")""",
        )
    )
    lines = project.manage("sqlmigrate", "0004").lines
    assert "CREATE UNIQUE INDEX ix_assets_name_unique ON assets (name);" in lines
    assert "    name VARCHAR(80) NOT NULL, " in lines
    assert lines.count("CREATE UNIQUE INDEX ix_assets_name_unique ON assets (name);") == 2
