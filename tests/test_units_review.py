"""Unit tests of how operations are described and flagged for review, in process.

``describe`` words Alembic's own operation objects as makemigrations prints them (and names
the migration from them); ``review_note`` adds what no online-safe form covers;
``describe_migration`` reads a migration file's ``upgrade()`` without importing it, for
``migrate --plan``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic.operations import ops

from sqlmanage.engine.autodetect.describe import describe_migration
from sqlmanage.engine.autodetect.online_safe import review_note
from sqlmanage.engine.autodetect.operations import ADD, ALTER, REMOVE, SQL, describe, describe_all

EXISTING = {"products"}


def test_adding_a_nullable_column_needs_no_review():
    change = describe(ops.AddColumnOp("products", sa.Column("code", sa.String(20), nullable=True)))
    assert (change.mark, change.text, change.fragment, change.review) == (
        ADD,
        "Add column code to products",
        "add_products_code",
        None,
    )


def test_a_not_null_column_without_default_is_flagged_on_an_existing_table_only():
    column = sa.Column("code", sa.String(20), nullable=False)
    assert (
        "NOT NULL without a server default" in describe(ops.AddColumnOp("products", column)).review
    )
    assert describe(ops.AddColumnOp("products", column), frozenset({"products"})).review is None
    with_default = sa.Column("code", sa.String(20), nullable=False, server_default="x")
    assert describe(ops.AddColumnOp("products", with_default)).review is None


def test_destructive_operations_say_what_they_destroy():
    assert describe(ops.DropTableOp("products")).review == "Drops the table and every row in it."
    drop = describe(ops.DropColumnOp("products", "code"))
    assert (drop.mark, drop.text, drop.review) == (
        REMOVE,
        "Remove column code from products",
        "Drops the column and its data.",
    )


def test_altering_a_column_lists_each_change_and_flags_the_risky_ones():
    retype = describe(
        ops.AlterColumnOp(
            "products",
            "code",
            existing_type=sa.String(20),
            modify_type=sa.String(40),
        )
    )
    assert retype.mark == ALTER
    assert retype.text == "Alter column code on products (type VARCHAR(20) -> VARCHAR(40))"
    assert retype.review.startswith("Changes the column type")
    not_null = describe(ops.AlterColumnOp("products", "code", modify_nullable=False))
    assert not_null.text == "Alter column code on products (NOT NULL)"
    assert not_null.review.startswith("Sets NOT NULL")
    nullable = describe(ops.AlterColumnOp("products", "code", modify_nullable=True))
    assert (nullable.text, nullable.review) == ("Alter column code on products (nullable)", None)
    renamed = describe(ops.AlterColumnOp("products", "code", modify_name="sku"))
    assert (renamed.text, renamed.fragment) == (
        "Alter column code on products (rename to sku)",
        "rename_products_sku",
    )


def test_an_index_on_an_existing_table_warns_that_it_blocks_writes():
    index = ops.CreateIndexOp("ix_products_code", "products", ["code"])
    assert "blocks writes" in describe(index).review
    assert describe(index, frozenset({"products"})).review is None


def test_operations_on_a_table_created_alongside_give_no_name_fragment():
    changes = describe_all(
        [
            ops.CreateTableOp("orders", [sa.Column("id", sa.Integer, primary_key=True)]),
            ops.CreateIndexOp("ix_orders_id", "orders", ["id"]),
            ops.AddColumnOp("products", sa.Column("code", sa.String(20))),
        ]
    )
    assert [(c.text, c.fragment, c.review) for c in changes] == [
        ("Create table orders", "create_orders", None),
        ("Create index ix_orders_id on orders", "", None),
        ("Add column code to products", "add_products_code", None),
    ]


def test_raw_sql_and_unknown_operations_are_still_described():
    assert describe(ops.ExecuteSQLOp("select 1")).mark == SQL
    assert describe(ops.ExecuteSQLOp("select 1")).text == "Raw SQL operation"
    comment = describe(ops.CreateTableCommentOp("products", "Things we sell"))
    assert comment.text == "CreateTableComment on products"


def test_review_notes_cover_what_has_no_online_safe_form():
    rename = ops.AlterColumnOp("products", "code", modify_name="sku")
    assert review_note(rename, EXISTING).startswith("Renaming a column breaks the running code")
    assert review_note(rename, set()) is None  # a new table has no running code to break
    # Widening a VARCHAR does not rewrite the table: the reflected VARCHAR against the model's
    # String, as autogenerate compares them.
    for old, new in [
        (sa.VARCHAR(20), sa.String(40)),
        (sa.String(20), sa.Unicode(40)),
        (sa.VARCHAR(20), sa.Text()),
    ]:
        widen = ops.AlterColumnOp("products", "code", existing_type=old, modify_type=new)
        assert review_note(widen, EXISTING) is None, (old, new)
    narrow = ops.AlterColumnOp(
        "products", "code", existing_type=sa.String(40), modify_type=sa.String(20)
    )
    assert "rewrites the table" in review_note(narrow, EXISTING)
    retype = ops.AlterColumnOp(
        "products", "code", existing_type=sa.String(20), modify_type=sa.Integer()
    )
    assert "rewrites the table" in review_note(retype, EXISTING)
    volatile = ops.AddColumnOp(
        "products", sa.Column("token", sa.Uuid, server_default=sa.text("gen_random_uuid()"))
    )
    assert review_note(volatile, EXISTING).startswith("A volatile server default")
    constant = ops.AddColumnOp("products", sa.Column("flag", sa.Integer, server_default="0"))
    assert review_note(constant, EXISTING) is None
    assert "Deploy code that no longer reads it first" in review_note(
        ops.DropColumnOp("products", "code"), EXISTING
    )
    assert review_note(ops.RenameTableOp("products", "items"), EXISTING).startswith(
        "Running code that still uses"
    )


def test_a_migration_file_is_described_without_importing_it(tmp_path):
    path = tmp_path / "0005_codes.py"
    path.write_text(
        "import sqlalchemy as sa\nfrom alembic import op\nimport does_not_exist\n\n"
        "TABLE = 'products'\n\n\n"
        "def upgrade():\n"
        "    op.add_column(TABLE, sa.Column('code', sa.String(20)))\n"
        "    with op.batch_alter_table('orders') as batch_op:\n"
        "        batch_op.drop_column('note')\n"
        "    op.execute('UPDATE products SET code = sku')\n\n\n"
        "def downgrade():\n    pass\n"
    )
    changes, irreversible = describe_migration(path)
    assert changes == [
        "Add column code to products",
        "Remove column note from orders",
        "Raw SQL operation",
    ]
    assert irreversible
    path.write_text(
        path.read_text().replace(
            "def downgrade():\n    pass", "def downgrade():\n    op.drop_column('products', 'code')"
        )
    )
    assert describe_migration(path) == (changes, False)
