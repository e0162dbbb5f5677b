"""sqlmanage: Django's manage.py migration commands for SQLAlchemy projects, on Alembic."""

__version__ = "0.1.0"
