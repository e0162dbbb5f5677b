"""The example project's models on a freshly migrated database: what the migrations built
is what the application relies on (defaults, unique keys, foreign keys)."""

import pytest
import sqlalchemy as sa

from project.models.catalogue import Category, Product
from project.models.reviews import Customer, Review


def test_a_product_gets_the_database_defaults(db_session):
    tea = Product(name="Tea", price=3.5, discount_rate=0.0)
    db_session.add(tea)
    db_session.commit()
    db_session.refresh(tea)

    assert tea.stock == 0
    assert tea.is_active is True
    assert tea.created_at is not None


def test_reviews_belong_to_products_and_customers(db_session):
    books = Category(name="Books")
    db_session.add(books)
    db_session.flush()
    novel = Product(name="Novel", price=12.0, discount_rate=0.1, category_id=books.id)
    reader = Customer(email="ada@example.com", display_name="Ada")
    db_session.add_all([novel, reader])
    db_session.flush()
    db_session.add(Review(product_id=novel.id, customer_id=reader.id, rating=5, body="Gripping"))
    db_session.commit()

    ratings = db_session.execute(
        sa.select(Product.name, Customer.display_name, Review.rating)
        .join(Review, Review.product_id == Product.id)
        .join(Customer, Customer.id == Review.customer_id)
    ).all()
    assert ratings == [("Novel", "Ada", 5)]


def test_two_customers_cannot_share_an_email(db_session):
    db_session.add_all([
        Customer(email="ada@example.com", display_name="Ada"),
        Customer(email="ada@example.com", display_name="Ada again"),
    ])
    with pytest.raises(sa.exc.IntegrityError):
        db_session.commit()


def test_each_test_gets_its_own_database(sqlmanage_engine):
    with sqlmanage_engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(Customer.__table__)).scalar() == 0
