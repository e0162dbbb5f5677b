"""Test support for projects that use sqlmanage: fresh databases, a migrator, ready checks.

The pytest plugin (``sqlmanage.pytest_plugin``) is a thin layer of fixtures and hooks over
these modules; they can also be used without pytest.
"""

from sqlmanage.testing.checks import MigrationCheckFailed
from sqlmanage.testing.databases import FreshDatabase, create_database, project_for
from sqlmanage.testing.migrator import Migrator

__all__ = ["MigrationCheckFailed", "Migrator", "FreshDatabase", "create_database", "project_for"]
