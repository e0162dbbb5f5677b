"""pytest-alembic's fixtures for the example project: its alembic.ini, and fresh databases.

The configuration is what plain ``alembic`` reads (alembic.ini, the project's env.py),
and the engine goes to env.py through ``config.attributes["connection"]``, as
pytest-alembic hands it in: passing these tests proves that env.py plays by Alembic's rules.
Each test runs once on SQLite and once on a new PostgreSQL database, dropped afterwards.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import alembic.config
import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN_URL = os.environ.get("SQLMANAGE_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")

sys.path.insert(0, str(ROOT))  # where 'alembic' would run: the project's folder


@pytest.fixture
def alembic_config():
    config = alembic.config.Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "project" / "migrations"))
    return config


@pytest.fixture(params=["sqlite", "postgresql"])
def alembic_engine(request, tmp_path):
    if request.param == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
        yield engine
        engine.dispose()
        return
    yield from _postgres_engine()


def _postgres_engine():
    """A new PostgreSQL database for one test; fails (never skips) when the server is down."""
    name = f"pytest_alembic_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is unreachable: {exc.orig}", pytrace=False)
    engine = sa.create_engine(admin.url.set(database=name))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()
