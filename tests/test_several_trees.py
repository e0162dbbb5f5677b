"""Several migration trees in one project: Alembic's multiple bases, Django's apps.

The project is written by the test as an adopting team has it: two version locations in
alembic.ini, each holding a tree whose root declares a branch label (``shop`` and
``accounts``), hex revision ids, and a cross-tree ``depends_on`` (accounts' orders table
references shop's products). Every command is driven through manage.py, and plain
``alembic upgrade heads`` / ``downgrade shop@base`` must agree with it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from conftest import Project, another_database, two_empty_databases, version_rows
from test_schema_identity import database_schema

SQLMANAGE_MODULE = [sys.executable, "-m", "sqlmanage"]
PRODUCTS, PRICE = "1a2b3c4d5e6f", "2b3c4d5e6f7a"
CUSTOMERS, ORDERS = "9f8e7d6c5b4a", "8e7d6c5b4a3f"

MODELS = '''"""Products (the shop tree), customers and orders (the accounts tree)."""

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from shop.models.base import Base


class Product(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    price: Mapped[float | None] = mapped_column(sa.Float())


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(200))


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"))
    product_id: Mapped[int] = mapped_column(sa.ForeignKey("products.id"))
'''


def migration(revision, down, labels, depends, message, upgrade, downgrade) -> str:
    """A migration file as Alembic writes one (hex id, header, docstring)."""
    return (
        f'"""{message}\n\nRevision ID: {revision}\nRevises: {down or ""}\n'
        'Create Date: 2024-05-01 10:00:00\n"""\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        f"revision = {revision!r}\ndown_revision = {down!r}\nbranch_labels = {labels!r}\n"
        f"depends_on = {depends!r}\n\n\ndef upgrade():\n{upgrade}\n\n\ndef downgrade():\n{downgrade}\n"
    )


FILES = {
    f"versions/{PRODUCTS}_create_products.py": migration(
        PRODUCTS,
        None,
        ("shop",),
        None,
        "create products",
        '    op.create_table("products", sa.Column("id", sa.Integer(), nullable=False),\n'
        '                    sa.Column("name", sa.String(100), nullable=False),\n'
        '                    sa.PrimaryKeyConstraint("id", name=op.f("pk_products")))',
        '    op.drop_table("products")',
    ),
    f"versions/{PRICE}_add_products_price.py": migration(
        PRICE,
        PRODUCTS,
        None,
        None,
        "add products price",
        '    with op.batch_alter_table("products") as batch_op:\n'
        '        batch_op.add_column(sa.Column("price", sa.Float(), nullable=True))',
        '    with op.batch_alter_table("products") as batch_op:\n'
        '        batch_op.drop_column("price")',
    ),
    f"accounts/{CUSTOMERS}_create_customers.py": migration(
        CUSTOMERS,
        None,
        ("accounts",),
        None,
        "create customers",
        '    op.create_table("customers", sa.Column("id", sa.Integer(), nullable=False),\n'
        '                    sa.Column("email", sa.String(200), nullable=False),\n'
        '                    sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")))',
        '    op.drop_table("customers")',
    ),
    f"accounts/{ORDERS}_create_orders.py": migration(
        ORDERS,
        CUSTOMERS,
        None,
        PRICE,
        "create orders",
        "    op.create_table(\n"
        '        "orders", sa.Column("id", sa.Integer(), nullable=False),\n'
        '        sa.Column("customer_id", sa.Integer(), nullable=False),\n'
        '        sa.Column("product_id", sa.Integer(), nullable=False),\n'
        '        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"],\n'
        '                                name=op.f("fk_orders_customer_id_customers")),\n'
        '        sa.ForeignKeyConstraint(["product_id"], ["products.id"],\n'
        '                                name=op.f("fk_orders_product_id_products")),\n'
        '        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")))',
        '    op.drop_table("orders")',
    ),
}

LISTED = [
    "accounts",
    f" [ ] {CUSTOMERS}_create_customers",
    f" [ ] {ORDERS}_create_orders",
    "shop",
    f" [ ] {PRODUCTS}_create_products",
    f" [ ] {PRICE}_add_products_price",
]
IN_ORDER = [
    f"shop.{PRODUCTS}_create_products",
    f"shop.{PRICE}_add_products_price",
    f"accounts.{CUSTOMERS}_create_customers",
    f"accounts.{ORDERS}_create_orders",
]
UNKNOWN_LABEL = "Error: No migrations with the app label 'nope'.\nApp labels: accounts, shop.\n"


@pytest.fixture
def trees(tmp_path: Path) -> Project:
    """A new project with two version locations, one labelled tree in each."""
    made = Project(tmp_path).run("startproject", "shop", program=SQLMANAGE_MODULE)
    assert made.returncode == 0, made.stderr
    project = Project(tmp_path / "shop")
    migrations = project.path / "shop" / "migrations"
    for name, text in FILES.items():
        (migrations / name).parent.mkdir(exist_ok=True)
        (migrations / name).write_text(text)
    (project.path / "shop" / "models" / "catalogue.py").write_text(MODELS)
    locations = os.pathsep.join(
        f"%(here)s/shop/migrations/{folder}" for folder in ("versions", "accounts")
    )
    project.edit(
        "alembic.ini",
        "path_separator = os\n",
        f"path_separator = os\nversion_locations = {locations}\n",
    )
    return project


def accounts_folder(project: Project) -> Path:
    return project.path / "shop" / "migrations" / "accounts"


def shop_folder(project: Project) -> Path:
    return project.path / "shop" / "migrations" / "versions"


def applying(result) -> list[str]:
    return [
        line.strip() for line in result.lines if line.strip().startswith(("Applying", "Unapplying"))
    ]


def test_showmigrations_lists_each_tree_under_its_label(trees):
    assert trees.manage("showmigrations").lines == LISTED
    assert trees.manage("showmigrations", "--list", "accounts").lines == LISTED[:3]
    assert trees.manage("showmigrations", "--plan").lines == [f"[ ]  {name}" for name in IN_ORDER]
    detailed = trees.manage("showmigrations", "--plan", "-v", "2").lines
    assert detailed[3] == f"[ ]  {IN_ORDER[3]} ... ({IN_ORDER[2]}, {IN_ORDER[1]})"
    # a tree's plan keeps what it depends on in the other tree, as Django's does
    assert trees.manage("showmigrations", "--plan", "accounts").lines == [
        f"[ ]  {name}" for name in IN_ORDER
    ]
    assert trees.manage("showmigrations", "--plan", "shop").lines == [
        f"[ ]  {name}" for name in IN_ORDER[:2]
    ]
    data = json.loads(trees.manage("showmigrations", "--format", "json").stdout)
    assert data["app_labels"] == ["accounts", "shop"]
    assert {m["id"]: (m["app_label"], m["depends_on"]) for m in data["migrations"]} == {
        PRODUCTS: ("shop", []),
        PRICE: ("shop", []),
        CUSTOMERS: ("accounts", []),
        ORDERS: ("accounts", [PRICE]),
    }
    table = trees.manage("showmigrations", "--format", "table", env={"COLUMNS": "120"}).stdout
    assert "App" in table and "Migrations for accounts, shop" in table
    assert [line.split("│")[1].strip() for line in table.splitlines() if "│" in line][1:] == [
        "accounts",
        "accounts",
        "shop",
        "shop",
    ]


def test_migrate_label_zero_takes_its_dependents_and_comes_back(trees):
    unapplied = trees.run("migrate", "--check")
    assert unapplied.returncode == 1 and "Unapplied migrations" in unapplied.stderr

    result = trees.manage("migrate")
    assert result.lines[:2] == ["Operations to perform:", "  Apply all migrations: accounts, shop"]
    assert applying(result) == [f"Applying {name.split('.', 1)[1]}... OK" for name in IN_ORDER]
    assert trees.sqlite_version() == {ORDERS}  # Alembic's own bookkeeping: one row
    assert trees.run("migrate", "--check").returncode == 0
    assert trees.manage("check").returncode == 0

    zero = trees.manage("migrate", "shop", "zero")
    assert zero.lines[1] == "  Unapply all migrations: shop"
    assert applying(zero) == [
        f"Unapplying {ORDERS}_create_orders... OK",
        f"Unapplying {PRICE}_add_products_price... OK",
        f"Unapplying {PRODUCTS}_create_products... OK",
    ]
    assert trees.sqlite_tables() == {"alembic_version", "customers"}
    assert trees.sqlite_version() == {CUSTOMERS}

    shop = trees.manage("migrate", "shop")
    assert shop.lines[1] == "  Apply all migrations: shop"
    assert applying(shop) == [
        f"Applying {PRODUCTS}_create_products... OK",
        f"Applying {PRICE}_add_products_price... OK",
    ]
    assert trees.sqlite_version() == {CUSTOMERS, PRICE}

    back = trees.manage("migrate", "shop", PRODUCTS[:4])
    assert back.lines[1] == f"  Target specific migration: {PRODUCTS}_create_products, from shop"
    assert applying(back) == [f"Unapplying {PRICE}_add_products_price... OK"]

    # the accounts tree's last migration needs shop's price column: migrate brings it along
    forward = trees.manage("migrate", "accounts", ORDERS[:4])
    assert forward.lines[1] == f"  Target specific migration: {ORDERS}_create_orders, from accounts"
    assert applying(forward) == [
        f"Applying {PRICE}_add_products_price... OK",
        f"Applying {ORDERS}_create_orders... OK",
    ]
    assert trees.sqlite_version() == {ORDERS}
    assert trees.manage("showmigrations").lines == [line.replace("[ ]", "[X]") for line in LISTED]

    wrong_tree = trees.run("migrate", "shop", ORDERS[:4])
    assert wrong_tree.returncode == 1
    assert f"Cannot find a migration matching '{ORDERS[:4]}' in shop." in wrong_tree.stderr


def test_an_unknown_label_lists_the_labels(trees):
    for args in (
        ["migrate", "nope", "zero"],
        ["showmigrations", "nope"],
        ["makemigrations", "nope"],
        ["sqlmigrate", "nope", PRODUCTS],
        ["squashmigrations", "nope", PRODUCTS, PRICE],
        ["migrate", "--plan", "nope", "zero"],
    ):
        result = trees.run(*args)
        assert (result.returncode, result.stderr) == (1, UNKNOWN_LABEL), args
    assert not trees.sqlite_file.exists()


def test_bases_without_labels_are_one_tree_told_how_to_split(trees):
    trees.edit(f"shop/migrations/versions/{PRODUCTS}_create_products.py", "('shop',)", "None")
    trees.edit(f"shop/migrations/accounts/{CUSTOMERS}_create_customers.py", "('accounts',)", "None")
    assert trees.manage("showmigrations").lines[0] == "shop"  # the package's name
    refused = trees.run("migrate")
    assert refused.returncode == 1
    assert "multiple heads in the migration history" in refused.stderr
    assert "give each first migration its own branch_labels" in refused.stderr
    assert not trees.sqlite_file.exists()
    assert len(applying(trees.manage("migrate", "heads"))) == 4


def test_makemigrations_writes_on_the_tree_s_head_in_its_folder(trees):
    clean = trees.run("makemigrations", "--check")
    assert (clean.returncode, clean.stdout) == (0, "No changes detected\n")
    trees.edit(
        "shop/models/catalogue.py",
        "    email: Mapped[str] = mapped_column(sa.String(200))\n",
        "    email: Mapped[str] = mapped_column(sa.String(200))\n"
        "    nickname: Mapped[str | None] = mapped_column(sa.String(50))\n",
    )

    dirty = trees.run("makemigrations", "--check")
    assert dirty.returncode == 1
    assert "Changes detected (Add column nickname to customers)" in dirty.stderr
    assert "several migration trees (accounts, shop)" in dirty.stderr
    unplaced = trees.run("makemigrations", "--noinput")
    assert unplaced.returncode == 1 and "makemigrations accounts" in unplaced.stderr

    before = {p.name for p in accounts_folder(trees).glob("*.py")}
    written = trees.manage("makemigrations", "accounts", "--noinput")
    assert written.lines[0] == "Migrations for 'accounts':"
    (new,) = {p.name for p in accounts_folder(trees).glob("*.py")} - before
    assert new.endswith("_add_customers_nickname.py") and len(new.split("_", 1)[0]) == 12
    source = (accounts_folder(trees) / new).read_text()
    assert f"down_revision: Union[str, Sequence[str], None] = '{ORDERS}'" in source
    assert "branch_labels: Union[str, Sequence[str], None] = None" in source
    assert trees.manage("showmigrations", "accounts").lines[-1] == f" [ ] {new[:-3]}"
    assert trees.run("makemigrations", "--check").returncode == 0

    empty = trees.manage("makemigrations", "shop", "--empty", "-n", "fill_prices")
    assert empty.lines[0] == "Migrations for 'shop':"
    (filled,) = shop_folder(trees).glob("*_fill_prices.py")
    assert f"down_revision: Union[str, Sequence[str], None] = '{PRICE}'" in filled.read_text()

    # a shop table pointing into accounts: the migration depends on accounts' head, as a
    # Django migration depends on the apps its foreign keys point into
    catalogue = trees.path / "shop" / "models" / "catalogue.py"
    catalogue.write_text(
        catalogue.read_text()
        + (
            '\n\nclass Review(Base):\n    __tablename__ = "reviews"\n'
            "    id: Mapped[int] = mapped_column(primary_key=True)\n"
            '    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"))\n'
        )
    )
    trees.manage("makemigrations", "shop", "-n", "create_reviews")
    (reviews,) = shop_folder(trees).glob("*_create_reviews.py")
    source = reviews.read_text()
    assert (
        f"down_revision: Union[str, Sequence[str], None] = '{filled.name.split('_', 1)[0]}'"
        in source
    )
    assert f"depends_on: Union[str, Sequence[str], None] = '{new.split('_', 1)[0]}'" in source

    shop_only = trees.manage("migrate", "shop")
    assert sorted(applying(shop_only)) == sorted(
        [
            *(f"Applying {name.split('.', 1)[1]}... OK" for name in IN_ORDER),
            f"Applying {new[:-3]}... OK",
            f"Applying {filled.stem}... OK",
            f"Applying {reviews.stem}... OK",
        ]
    )
    assert applying(shop_only)[-1] == f"Applying {reviews.stem}... OK"
    assert trees.run("makemigrations", "--check").returncode == 0
    alembic = trees.alembic("heads")
    assert alembic.returncode == 0, alembic.stderr
    assert {line.split()[0] for line in alembic.lines} == {
        new.split("_", 1)[0],
        reviews.name.split("_", 1)[0],
    }


def test_sqlmigrate_takes_the_tree_s_label(trees):
    orders = trees.manage("sqlmigrate", "accounts", ORDERS[:6]).stdout
    assert "CREATE TABLE orders" in orders
    assert "REFERENCES products (id)" in orders
    assert trees.manage("sqlmigrate", ORDERS[:6]).stdout == orders
    price = trees.manage(
        "sqlmigrate", "shop", PRICE, env={"DATABASE_URL": "postgresql://u:p@127.0.0.1:1/none"}
    )
    assert "ALTER TABLE products ADD COLUMN price FLOAT" in price.stdout
    backwards = trees.manage("sqlmigrate", "accounts", ORDERS, "--backwards").stdout
    assert "DROP TABLE orders" in backwards
    assert trees.run("sqlmigrate", "shop", ORDERS).returncode == 1


def test_squashing_a_tree_keeps_its_label_and_depends_on(trees):
    trees.manage("migrate", "accounts", CUSTOMERS)  # this database stands inside the range
    squashed = trees.manage("squashmigrations", "accounts", ORDERS[:4], "--noinput")
    assert (
        "Moved the 2 replaced migrations to shop/migrations/accounts/replaced/" in squashed.stdout
    )
    (path,) = accounts_folder(trees).glob(f"{ORDERS}_squashed_*.py")
    source = path.read_text()
    assert "branch_labels: Union[str, Sequence[str], None] = ('accounts',)" in source
    assert f"depends_on: Union[str, Sequence[str], None] = '{PRICE}'" in source
    assert "op.create_table('products'" not in source
    assert (
        trees.manage("showmigrations", "accounts").lines[1].startswith(f" [-] {ORDERS}_squashed_")
    )

    result = trees.manage("migrate")
    assert applying(result) == [
        f"Applying {PRODUCTS}_create_products... OK",
        f"Applying {PRICE}_add_products_price... OK",
        f"Applying {ORDERS}_create_orders... OK",
    ]
    assert trees.sqlite_version() == {ORDERS}
    assert trees.alembic("upgrade", "heads").returncode == 0
    assert trees.run("makemigrations", "--check").returncode == 0


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_databases(request, tmp_path) -> tuple[str, str]:
    """Two empty databases of one kind: one for manage.py, one for plain alembic."""
    return two_empty_databases(request, tmp_path)


def test_plain_alembic_builds_and_unbuilds_the_same_schema(trees, two_databases):
    migrated, upgraded = ({"DATABASE_URL": url} for url in two_databases)
    trees.manage("migrate", "--noinput", env=migrated)
    plain = trees.alembic("upgrade", "heads", env=upgraded)
    assert plain.returncode == 0, plain.stderr
    assert database_schema(two_databases[0]) == database_schema(two_databases[1])
    assert "orders" in repr(database_schema(two_databases[0]))
    assert version_rows(two_databases[0]) == version_rows(two_databases[1]) == {ORDERS}
    for url in (migrated, upgraded):
        check = trees.run("makemigrations", "--check", env=url)
        assert (check.returncode, check.stdout) == (0, "No changes detected\n")
        assert trees.run("migrate", "--check", env=url).returncode == 0

    trees.manage("migrate", "shop", "zero", env=migrated)
    plain = trees.alembic("downgrade", "shop@base", env=upgraded)
    assert plain.returncode == 0, plain.stderr
    assert database_schema(two_databases[0]) == database_schema(two_databases[1])
    assert version_rows(two_databases[0]) == version_rows(two_databases[1]) == {CUSTOMERS}

    trees.manage("migrate", env=migrated)
    trees.alembic("upgrade", "heads", env=upgraded)
    assert database_schema(two_databases[0]) == database_schema(two_databases[1])
    assert trees.manage("showmigrations", env=upgraded).lines == [
        line.replace("[ ]", "[X]") for line in LISTED
    ]


# --- one folder of migrations per database kind (Prefect's layout) -------------------------

PER_DIALECT_SETTINGS = """
import os

DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
# One migrations folder per kind of database, picked by the URL.
DIALECT = "postgresql" if DATABASE_URL.startswith("postgres") else "sqlite"
MIGRATIONS = BASE_DIR / "shop" / "migrations" / DIALECT
"""
DIALECT_REVISIONS = {"sqlite": "5a5a5a5a5a5a", "postgresql": "7b7b7b7b7b7b"}


@pytest.fixture
def per_dialect(tmp_path: Path) -> Project:
    """A new project whose settings pick shop/migrations/sqlite or .../postgresql by URL,
    and whose alembic.ini has a [postgresql] section for plain alembic."""
    import shutil

    made = Project(tmp_path).run("startproject", "shop", program=SQLMANAGE_MODULE)
    assert made.returncode == 0, made.stderr
    project = Project(tmp_path / "shop")
    package = project.path / "shop"
    (package / "models" / "catalogue.py").write_text(MODELS.split("\n\nclass Customer")[0] + "\n")
    settings = package / "settings.py"
    settings.write_text(settings.read_text() + PER_DIALECT_SETTINGS)
    common = package / "migrations"
    for dialect, revision in DIALECT_REVISIONS.items():
        folder = common / dialect
        (folder / "versions").mkdir(parents=True)
        for name in ("env.py", "script.py.mako"):
            shutil.copy(common / name, folder / name)
        (folder / "versions" / f"{revision}_create_products.py").write_text(
            FILES[f"versions/{PRODUCTS}_create_products.py"]
            .replace(PRODUCTS, revision)
            .replace("('shop',)", "None")
            .replace(
                "nullable=False),\n",
                "nullable=False),\n"
                '                    sa.Column("price", sa.Float(), nullable=True),\n',
                1,
            )
        )
    project.edit(
        "alembic.ini",
        "script_location = shop/migrations\n",
        "script_location = shop/migrations/sqlite\n",
    )
    ini = project.path / "alembic.ini"
    ini.write_text(
        ini.read_text() + "\n[postgresql]\nscript_location = shop/migrations/postgresql\n"
        "path_separator = os\nprepend_sys_path = .\n"
    )
    return project


@pytest.mark.postgres
def test_per_dialect_folders_picked_by_the_url(per_dialect, request):
    sqlite = per_dialect.manage("migrate")
    assert applying(sqlite) == ["Applying 5a5a5a5a5a5a_create_products... OK"]
    assert per_dialect.sqlite_version() == {"5a5a5a5a5a5a"}
    assert per_dialect.run("makemigrations", "--check").returncode == 0

    migrated, upgraded = (
        another_database(request, "postgresql"),
        another_database(request, "postgresql"),
    )
    on_postgres = per_dialect.manage("migrate", env={"DATABASE_URL": migrated})
    assert applying(on_postgres) == ["Applying 7b7b7b7b7b7b_create_products... OK"]
    assert per_dialect.manage("showmigrations", env={"DATABASE_URL": migrated}).lines == [
        "shop",
        " [X] 7b7b7b7b7b7b_create_products",
    ]
    plain = per_dialect.alembic(
        "-n", "postgresql", "upgrade", "head", env={"DATABASE_URL": upgraded}
    )
    assert plain.returncode == 0, plain.stderr
    assert version_rows(migrated) == version_rows(upgraded) == {"7b7b7b7b7b7b"}
    assert database_schema(migrated) == database_schema(upgraded)
    check = per_dialect.run("makemigrations", "--check", env={"DATABASE_URL": upgraded})
    assert (check.returncode, check.stdout) == (0, "No changes detected\n")
