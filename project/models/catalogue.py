"""The catalogue from the Alembic guide this project grew from: categories and products."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from project.models.base import Base


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (sa.Index("idx_products_category", "category_id", "is_active"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    price: Mapped[float] = mapped_column(sa.Float(), nullable=False)
    stock: Mapped[int | None] = mapped_column(sa.Integer(), server_default="0")
    is_active: Mapped[bool | None] = mapped_column(sa.Boolean(), server_default=sa.text("true"))
    category_id: Mapped[int | None] = mapped_column(sa.ForeignKey("categories.id"))
    created_at: Mapped[datetime | None] = mapped_column(sa.DateTime(), server_default=sa.func.now())
    discount_rate: Mapped[float] = mapped_column(sa.Float(), nullable=False)
