"""makemigrations compares with the history, asks Django's questions, and --update/--scriptable."""

from __future__ import annotations

import sqlite3
import uuid

import pytest
import sqlalchemy as sa

from conftest import (
    PG_ADMIN_URL,
    add_discount_code,
    direct_engine,
    execute,
    finish,
    inspect_schema,
    later,
    rows,
    spawn,
)


def seed_product(project) -> None:
    with sqlite3.connect(project.sqlite_file) as connection:
        connection.execute("insert into categories (id, name) values (1, 'books')")
        connection.execute(
            "insert into products (id, name, price, category_id, discount_rate) values (1, 'Dune', 9.5, 1, 0)"
        )


def test_after_a_pull_an_unmigrated_database_gets_only_the_new_change(project):
    """No migrate yet: the history is replayed in memory, so 0004 holds just the new column."""
    add_discount_code(project)
    assert project.run("makemigrations", "--check").returncode == 1
    result = project.manage("makemigrations")
    assert result.lines[1:] == [
        "  project/migrations/versions/0004_add_products_discount_code.py",
        "    + Add column discount_code to products",
    ]
    assert not project.sqlite_file.exists(), "makemigrations created the developer's database"
    assert project.manage("makemigrations", "--check").lines == ["No changes detected"]


def test_a_database_behind_is_not_a_problem(project):
    project.manage("migrate", "0001")
    add_discount_code(project)
    project.manage("makemigrations")
    assert project.migration_files()[-1] == "0004_add_products_discount_code.py"
    assert project.sqlite_version() == {"0001_initial"}
    project.manage("migrate")
    assert project.manage("makemigrations", "--check").lines == ["No changes detected"]


@pytest.mark.postgres
def test_postgresql_history_is_replayed_into_a_scratch_database_that_is_dropped(project, request):
    """The run connects as a role of its own, so the databases it leaves are exactly those
    that role owns (other runs on the server create and drop scratch databases meanwhile)."""
    role = f"sqlmanage_role_{uuid.uuid4().hex[:12]}"
    execute(PG_ADMIN_URL, f"CREATE ROLE {role} LOGIN CREATEDB")
    # Dropped after the database it owns: finalizers run last first, and conftest.later in order.
    request.addfinalizer(lambda: later(execute, PG_ADMIN_URL, f"DROP ROLE IF EXISTS {role}"))
    pg_url = request.getfixturevalue("pg_url")
    database = pg_url.rsplit("/", 1)[1]
    execute(PG_ADMIN_URL, f"ALTER DATABASE {database} OWNER TO {role}")
    url = pg_url.replace("://postgres@", f"://{role}@", 1)
    assert role in url
    env = {"DATABASE_URL": url}
    add_discount_code(project)
    result = project.manage("makemigrations", env=env)
    assert "    + Add column discount_code to products" in result.lines
    engine = direct_engine(pg_url)
    try:
        with engine.connect() as connection:
            left = connection.execute(
                sa.text(
                    "select datname from pg_database d join pg_roles r on r.oid = d.datdba "
                    "where r.rolname = :role and d.datname <> :database"
                ),
                {"role": role, "database": database},
            ).fetchall()
            tables = connection.exec_driver_sql(
                "select tablename from pg_tables where schemaname = 'public'"
            ).fetchall()
    finally:
        engine.dispose()
    assert left == [], "the scratch database was not dropped"
    assert tables == [], "the configured database was written to"
    project.manage("migrate", env=env)
    assert project.manage("makemigrations", "--check", env=env).lines == ["No changes detected"]


def scratch_databases(url: str) -> set[str]:
    engine = direct_engine(url)
    try:
        with engine.connect() as connection:
            return {
                name
                for (name,) in connection.execute(
                    sa.text("show databases like :prefix"), {"prefix": "sqlmanage\\_scratch\\_%"}
                )
            }
    finally:
        engine.dispose()


@pytest.mark.mariadb
def test_mariadb_history_is_replayed_into_a_scratch_database(project, mariadb_url):
    """MariaDB does not record who created a database: a scratch database left behind is one
    that outlives every run that may have made it (other runs' come and go within seconds)."""
    import time

    env = {"DATABASE_URL": mariadb_url}
    add_discount_code(project)
    before = scratch_databases(mariadb_url)
    result = project.manage("makemigrations", env=env)
    assert "    + Add column discount_code to products" in result.lines
    assert inspect_schema(mariadb_url) == {}, "the configured database was written to"
    lingering = scratch_databases(mariadb_url) - before
    deadline = time.monotonic() + 60
    while lingering and time.monotonic() < deadline:
        time.sleep(0.5)
        lingering &= scratch_databases(mariadb_url)
    assert lingering == set(), "a scratch database was not dropped"


def test_a_new_model_is_named_create(project):
    with (project.path / "project/models/reviews.py").open("a") as models:
        models.write(
            "\n\nclass Wishlist(Base):\n    __tablename__ = 'wishlists'\n"
            "    id: Mapped[int] = mapped_column(primary_key=True)\n"
            "    customer_id: Mapped[int] = mapped_column(sa.ForeignKey('customers.id'))\n"
        )
    project.manage("makemigrations")
    assert project.migration_files()[-1] == "0004_create_wishlists.py"


RENAME = (
    "    discount_rate: Mapped[float] = mapped_column(sa.Float(), nullable=False)",
    "    rebate_rate: Mapped[float] = mapped_column(sa.Float(), nullable=False)",
)


def test_rename_column_question_answered_yes_keeps_the_data(project):
    project.manage("migrate")
    seed_product(project)
    project.edit("project/models/catalogue.py", *RENAME)

    child = spawn(project, "makemigrations")
    child.expect_exact(
        "Was products.discount_rate renamed to products.rebate_rate (a FLOAT)? [y/N] "
    )
    child.sendline("y")
    assert finish(child) == 0

    (path,) = project.versions.glob("0004_*.py")
    assert path.name == "0004_rename_products_rebate_rate.py"
    source = path.read_text()
    assert "new_column_name='rebate_rate'" in source and "new_column_name='discount_rate'" in source
    # Outside a batch block: SQLite renames in place (RENAME COLUMN) instead of rebuilding.
    assert "op.alter_column('products', 'discount_rate'" in source
    root_page = "select rootpage from sqlite_master where name = 'products'"
    before = rows(project, root_page)
    project.manage("migrate")
    assert rows(project, "select name, rebate_rate from products") == [("Dune", 0.0)]
    assert rows(project, root_page) == before, "the table was rebuilt, not renamed in place"
    assert project.manage("makemigrations", "--check").lines == ["No changes detected"]
    project.manage("migrate", "-1")
    assert rows(project, "select name, discount_rate from products") == [("Dune", 0.0)]


RENAME_NULLABLE = (
    '    stock: Mapped[int | None] = mapped_column(sa.Integer(), server_default="0")',
    '    quantity: Mapped[int | None] = mapped_column(sa.Integer(), server_default="0")',
)


def test_rename_column_question_answered_no_drops_and_adds(project):
    project.manage("migrate")
    project.edit("project/models/catalogue.py", *RENAME_NULLABLE)
    child = spawn(project, "makemigrations")
    child.expect_exact("Was products.stock renamed to products.quantity (a INTEGER)? [y/N] ")
    child.sendline("n")
    assert finish(child) == 0
    source = next(project.versions.glob("0004_*.py")).read_text()
    assert "drop_column('stock')" in source and "add_column(sa.Column('quantity'" in source


def test_declining_a_rename_of_a_not_null_column_asks_for_its_value(project):
    """No rename: the new NOT NULL column needs a value for the existing rows, as in Django."""
    project.manage("migrate")
    project.edit("project/models/catalogue.py", *RENAME)
    child = spawn(project, "makemigrations")
    child.expect_exact("[y/N] ")
    child.sendline("n")
    child.expect_exact("It is impossible to add the NOT NULL column products.rebate_rate (a FLOAT)")
    child.expect_exact("Select an option: ")
    child.sendline("2")
    assert finish(child) == 3


def test_rename_is_never_assumed_off_a_terminal(project):
    project.manage("migrate")
    project.edit("project/models/catalogue.py", *RENAME_NULLABLE)
    result = project.manage("makemigrations")
    assert "    - Remove column stock from products" in result.lines
    assert "    + Add column quantity to products" in result.lines
    assert "Was products" not in result.stdout + result.stderr


def test_rename_table_question(project):
    project.manage("migrate")
    project.edit(
        "project/models/reviews.py", '__tablename__ = "customers"', '__tablename__ = "clients"'
    )
    project.edit(
        "project/models/reviews.py", 'sa.ForeignKey("customers.id")', 'sa.ForeignKey("clients.id")'
    )
    child = spawn(project, "makemigrations")
    child.expect_exact("Was the table customers renamed to clients? [y/N] ")
    child.sendline("y")
    assert finish(child) == 0
    source = next(project.versions.glob("0004_*.py")).read_text()
    assert "op.rename_table('customers', 'clients')" in source
    assert "op.rename_table('clients', 'customers')" in source


NOT_NULL_CODE = (
    "    discount_rate: Mapped[float]",
    "    discount_code: Mapped[str] = mapped_column(sa.String(20))\n    discount_rate: Mapped[float]",
)


def test_not_null_column_with_a_one_off_default_becomes_the_three_step_pattern(project):
    project.manage("migrate")
    seed_product(project)
    project.edit("project/models/catalogue.py", *NOT_NULL_CODE)

    child = spawn(project, "makemigrations")
    child.expect_exact(
        "It is impossible to add the NOT NULL column products.discount_code (a VARCHAR(20))"
    )
    child.expect_exact("Please select a fix:")
    child.expect_exact(" 1) Provide a one-off default now")
    child.expect_exact("Select an option: ")
    child.sendline("1")
    child.expect_exact(">>> ")
    child.sendline("NONE")
    child.expect_exact("Invalid input")
    child.expect_exact(">>> ")
    child.sendline("'none'")
    assert finish(child) == 0

    (path,) = project.versions.glob("0004_*.py")
    assert path.name == "0004_add_products_discount_code.py"
    source = path.read_text()
    add = source.index(
        "add_column(sa.Column('discount_code', sa.String(length=20), nullable=True))"
    )
    fill = source.index(
        "op.execute(sa.table('products', sa.column('discount_code')).update()"
        ".where(sa.column('discount_code').is_(None)).values({'discount_code': sa.literal('none')}))"
    )
    alter = source.index("nullable=False")
    assert add < fill < alter
    for url in [None, "postgresql://u:pw@127.0.0.1:1/x", "mysql+pymysql://u:pw@127.0.0.1:1/x"]:
        sql = project.manage(
            "sqlmigrate", "0004", env={"DATABASE_URL": url} if url else None
        ).stdout
        assert "UPDATE products SET discount_code='none' WHERE " in sql
        assert "discount_code IS NULL;" in sql
    project.manage("migrate")
    assert rows(project, "select name, discount_code from products") == [("Dune", "none")]
    assert project.manage("makemigrations", "--check").lines == ["No changes detected"]
    project.manage("migrate", "-1")
    assert "discount_code" not in {r[1] for r in rows(project, "pragma table_info(products)")}


def test_not_null_question_quit_exits_3_and_writes_nothing(project):
    project.manage("migrate")
    project.edit("project/models/catalogue.py", *NOT_NULL_CODE)
    child = spawn(project, "makemigrations")
    child.expect_exact("Select an option: ")
    child.sendline("2")
    assert finish(child) == 3
    assert not list(project.versions.glob("0004_*.py"))


@pytest.mark.parametrize("flags", [["--noinput"], []], ids=["noinput", "off-terminal"])
def test_not_null_without_input_exits_3_naming_the_column(project, flags):
    project.manage("migrate")
    project.edit("project/models/catalogue.py", *NOT_NULL_CODE)
    result = project.run("makemigrations", *flags)
    assert result.returncode == 3
    assert "products.discount_code" in result.stderr and "Nothing was written" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(project.versions.glob("0004_*.py"))


def test_making_a_column_not_null_asks_for_a_value(project):
    project.manage("migrate")
    project.edit(
        "project/models/catalogue.py",
        '    stock: Mapped[int | None] = mapped_column(sa.Integer(), server_default="0")',
        "    stock: Mapped[int] = mapped_column(sa.Integer(), nullable=False)",
    )
    with sqlite3.connect(project.sqlite_file) as connection:
        connection.execute("insert into categories (id, name) values (1, 'books')")
        connection.execute(
            "insert into products (id, name, price, stock, discount_rate) values (1, 'Dune', 9.5, NULL, 0)"
        )
    child = spawn(project, "makemigrations")
    child.expect_exact("to NOT NULL without providing a default")
    child.expect_exact("Select an option: ")
    child.sendline("1")
    child.expect_exact(">>> ")
    child.sendline("7")
    assert finish(child) == 0
    source = next(project.versions.glob("0004_*.py")).read_text()
    assert ".where(sa.column('stock').is_(None)).values({'stock': sa.literal(7)}))" in source
    project.manage("migrate")
    assert rows(project, "select stock from products") == [(7,)]


def test_scriptable_prints_only_the_path_on_stdout(project):
    add_discount_code(project)
    result = project.manage("makemigrations", "--scriptable")
    assert result.stdout == "project/migrations/versions/0004_add_products_discount_code.py\n"
    assert "+ Add column discount_code to products" in result.stderr


def test_update_folds_new_changes_into_the_latest_unapplied_migration(project):
    add_discount_code(project)
    project.manage("makemigrations")
    project.edit(
        "project/models/catalogue.py",
        "    discount_code: Mapped[str | None] = mapped_column(sa.String(20))",
        "    discount_code: Mapped[str | None] = mapped_column(sa.String(20))\n"
        "    discount_note: Mapped[str | None] = mapped_column(sa.Text())",
    )
    path = project.versions / "0004_add_products_discount_code.py"
    path.write_text(
        path.read_text().replace(
            "def upgrade() -> None:\n", "def upgrade() -> None:\n    # kept by hand\n", 1
        )
    )
    result = project.manage("makemigrations", "--update")
    assert project.migration_files()[-1] == "0004_add_products_discount_code.py"
    assert len(project.migration_files()) == 4
    assert result.lines[2:] == ["    + Add column discount_note to products"]
    source = path.read_text()
    assert "# kept by hand" in source
    assert source.index("add_column(sa.Column('discount_code'") < source.index(
        "add_column(sa.Column('discount_note'"
    )
    assert source.index("drop_column('discount_note')") < source.index(
        "drop_column('discount_code')"
    )
    assert project.run("makemigrations", "--update", "-n", "other").returncode == 2
    project.manage("migrate")
    assert project.manage("makemigrations", "--check").lines == ["No changes detected"]
    applied = project.run("makemigrations", "--update")
    assert applied.returncode == 0 and applied.lines == ["No changes detected"]
    project.edit(
        "project/models/catalogue.py",
        "    discount_note: Mapped[str | None] = mapped_column(sa.Text())\n",
        "",
    )
    refused = project.run("makemigrations", "--update")
    assert refused.returncode == 1 and "it is applied to the database" in refused.stderr
