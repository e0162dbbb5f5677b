"""The data migration 0003_fill_discount_rate, tested the way Django's data migrations are:
walk to the migration before it, insert rows with the schema of that moment, walk on."""

import pytest
import sqlalchemy as sa


def test_existing_products_get_a_zero_discount_rate_and_keep_theirs(migrator):
    migrator.migrate("0002")
    products = migrator.table("products")
    migrator.connection.execute(
        products.insert(),
        [
            {"name": "Tea", "price": 3.5, "discount_rate": None},
            {"name": "Coffee", "price": 4.0, "discount_rate": 0.25},
        ],
    )

    assert migrator.migrate("0003") == ["0003_fill_discount_rate"]

    rates = dict(migrator.connection.execute(sa.select(products.c.name, products.c.discount_rate)).all())
    assert rates == {"Tea": 0.0, "Coffee": 0.25}
    assert migrator.table("products").c.discount_rate.nullable is False


def test_after_0003_a_product_needs_a_discount_rate(migrator):
    migrator.migrate("0003")
    products = migrator.table("products")
    with pytest.raises(sa.exc.IntegrityError):
        migrator.connection.execute(products.insert().values(name="Tea", price=3.5, discount_rate=None))


def test_unapplying_0003_keeps_the_rates_and_allows_null_again(migrator):
    migrator.migrate("0003")
    products = migrator.table("products")
    migrator.connection.execute(products.insert().values(name="Tea", price=3.5, discount_rate=0.1))

    assert migrator.migrate("0002") == ["-0003_fill_discount_rate"]

    products = migrator.table("products")
    assert products.c.discount_rate.nullable is True
    assert migrator.connection.execute(sa.select(products.c.discount_rate)).scalar_one() == 0.1
    assert migrator.current == ("0002_add_products_discount_rate",)
