"""``migrate --prune``: forget the audit records of migrations whose files are gone.

Django deletes such rows from django_migrations. Here the audit trail holds one record per
run; Alembic's version table holds only where the database stands, so a revision there
without a file is not pruned (removing it would move the database): it is reported, for
``migrate --fake`` to record where the database really stands.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Prunable:
    revisions: tuple[str, ...]  # audit records to delete
    standing: tuple[str, ...]  # version-table revisions without a file: not pruned


def prunable(project) -> Prunable:
    """The revisions recorded as applied whose migration files are gone."""
    from sqlmanage.engine.status import read_database_state

    history = project.history
    heads, records = read_database_state(project)
    inside = history.inside_squashes(heads)

    def gone(revision: str) -> bool:
        return revision not in history.by_id and revision not in history.squashes

    revisions = tuple(
        sorted(r for r, record in (records or {}).items() if record.applied and gone(r))
    )
    standing = tuple(r for r in heads if r not in history.by_id and r not in inside)
    return Prunable(revisions, standing)


def prune(project, revisions) -> None:
    """Delete every audit record of ``revisions``, in one transaction."""
    from sqlmanage.database import connect
    from sqlmanage.engine.audit import audit_table

    table = audit_table(project.settings)

    def delete(connection) -> None:
        with connection.begin():
            connection.execute(table.delete().where(table.c.revision.in_(list(revisions))))

    if revisions:
        connect(project.url, delete)
