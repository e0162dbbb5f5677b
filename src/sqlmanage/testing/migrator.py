"""Walk a test database through the migration history, for data-migration tests.

The pattern (Django's django-test-migrations, for SQLAlchemy): migrate to the migration
before the one under test, insert rows with the schema of that moment (``table()`` reflects
it: never the models, which describe the latest schema), migrate on, and assert::

    migrator.migrate("0002")
    products = migrator.table("products")
    migrator.connection.execute(products.insert(), [{"name": "Tea", "price": 3.5}])
    migrator.migrate("0003")
    assert migrator.connection.execute(sa.select(products.c.discount_rate)).scalar() == 0.0

Targets are ``manage.py migrate``'s: a number, a name or prefix, ``+1``/``-1``, ``head``,
``zero``; forward or back. Migrations run through sqlmanage's own code path (env.py, the
lock, the audit trail), exactly as ``manage.py migrate`` runs them.
"""

from __future__ import annotations

from sqlmanage.errors import SqlmanageError
from sqlmanage.testing.checks import MigrationCheckFailed, explain


class Migrator:
    """A database and the project's migrations, moved back and forth on request."""

    def __init__(self, project, url: str):
        self.project = project
        self.url = url
        self._engine = None
        self._connection = None

    def migrate(self, target: str = "head") -> list[str]:
        """Bring the database to ``target``; return the migrations applied or unapplied.

        What ``connection`` did so far is committed first, so rows inserted before the
        migration are there for it to transform.
        """
        from sqlmanage.engine.apply import apply_migrations

        self._release_connection(commit=True)
        try:
            plan = apply_migrations(self.project, target, on_event=_ignore)
        except SqlmanageError as exc:
            raise MigrationCheckFailed(explain(exc)) from None
        return [("" if step.forward else "-") + step.migration.name for step in plan.steps]

    @property
    def current(self) -> tuple[str, ...]:
        """The names of the migrations the database is at (empty before the first one)."""
        from sqlmanage.engine.status import read_database_heads

        history = self.project.history
        return tuple(
            history.by_id[r].name if r in history.by_id else r
            for r in read_database_heads(self.project)
        )

    @property
    def engine(self):
        """A synchronous SQLAlchemy Engine on the test database (also for an async URL)."""
        if self._engine is None:
            self._engine = sync_engine(self.url)
        return self._engine

    @property
    def connection(self):
        """An open Connection; ``migrate()`` commits and closes it, the next use opens another."""
        if self._connection is None:
            self._connection = self.engine.connect()
        return self._connection

    def table(self, name: str, schema: str | None = None):
        """The table as it is now in the database (reflected): the schema of this migration."""
        import sqlalchemy as sa

        return sa.Table(name, sa.MetaData(), autoload_with=self.connection, schema=schema)

    def close(self) -> None:
        """Roll back what is not committed and release every connection."""
        self._release_connection(commit=False)
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _release_connection(self, commit: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if commit and connection.in_transaction():
            connection.commit()
        connection.close()


def _ignore(*event) -> None:
    """Migrations run quietly under test; failures raise."""


def sync_engine(url: str):
    """A plain synchronous Engine, as the application would make it (the installed driver).

    An async URL gets the synchronous driver of the same database (the one sqlmanage would
    pick for a bare URL): tests that insert rows and read them back need no event loop.
    """
    import sqlalchemy as sa

    from sqlmanage.database import is_async, parse_url

    parsed = parse_url(url)
    if is_async(parsed):
        bare = parsed.set(drivername=parsed.get_backend_name())
        parsed = parse_url(bare.render_as_string(hide_password=False))
    return sa.create_engine(parsed)
