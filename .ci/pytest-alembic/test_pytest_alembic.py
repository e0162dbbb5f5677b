"""pytest-alembic's four default tests, imported as its documentation allows, so that each
runs with every alembic_engine of conftest.py (SQLite and PostgreSQL)."""

from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)

__all__ = [
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]
