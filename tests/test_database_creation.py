"""Databases sqlmanage creates beside the configured one (the pytest plugin's test databases,
makemigrations' scratch database): also before the configured database exists, from the
server's default database, and always dropped again."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from conftest import MARIADB_ADMIN, PG_ADMIN_URL, with_driver
from sqlmanage.testing import create_database


def _databases(admin_url: str) -> set[str]:
    engine = sa.create_engine(with_driver(admin_url))
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                rows = connection.exec_driver_sql("SELECT datname FROM pg_database")
            else:
                rows = connection.exec_driver_sql("SHOW DATABASES")
            return {name for (name,) in rows}
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "admin_url",
    [
        pytest.param(PG_ADMIN_URL, marks=pytest.mark.postgres, id="postgresql"),
        pytest.param(MARIADB_ADMIN, marks=pytest.mark.mariadb, id="mariadb"),
    ],
)
def test_a_database_is_created_from_the_server_default_when_the_configured_one_is_missing(
    admin_url, tmp_path
):
    missing = f"nowhere_{uuid.uuid4().hex[:8]}"
    configured = sa.make_url(with_driver(admin_url)).set(database=missing)
    fresh = create_database(
        configured.render_as_string(hide_password=False), "configured", tmp_path
    )
    name = sa.make_url(fresh.url).database
    try:
        assert name.startswith(f"test_{missing}_")
        assert name in _databases(admin_url)
        assert missing not in _databases(admin_url)
    finally:
        fresh.drop()
    assert name not in _databases(admin_url)
