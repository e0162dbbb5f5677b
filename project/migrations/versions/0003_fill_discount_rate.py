"""fill discount rate

Revision ID: 0003_fill_discount_rate
Revises: 0002_add_products_discount_rate
Create Date: 2026-11-24 23:00:36

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0003_fill_discount_rate'
down_revision: Union[str, Sequence[str], None] = '0002_add_products_discount_rate'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # The data-migration pattern: 0002 added discount_rate as a nullable column; fill the
    # existing rows here with SQLAlchemy Core (never the models, which keep changing), then
    # set NOT NULL. Batch mode rebuilds the table on SQLite, which cannot ALTER a column.
    products = sa.table(
        "products",
        sa.column("id", sa.Integer),
        sa.column("discount_rate", sa.Float),
    )
    op.execute(
        products.update()
        .where(products.c.discount_rate.is_(None))
        .values(discount_rate=0.0)
    )
    with op.batch_alter_table("products") as batch_op:
        batch_op.alter_column("discount_rate", existing_type=sa.Float(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("products") as batch_op:
        batch_op.alter_column("discount_rate", existing_type=sa.Float(), nullable=True)
