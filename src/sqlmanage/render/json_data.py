"""Machine-readable output for ``--format json``."""

from __future__ import annotations

import json


def showmigrations(status) -> str:
    data = {
        "project": status.label,
        "app_labels": list(status.trees),
        "database": status.database,
        "database_heads": list(status.database_heads),
        "heads": list(status.heads),
        "applied": status.applied_count,
        "pending": status.pending_count,
        "missing_files": list(status.missing_files),
        "migrations": [
            {
                "id": s.migration.revision,
                "app_label": status.tree_of.get(s.migration.revision, status.label),
                "name": s.migration.name,
                "number": s.migration.number,
                "message": s.migration.message,
                "parents": list(s.migration.parents),
                "depends_on": list(s.migration.dependencies),
                "created": s.migration.created.isoformat() if s.migration.created else None,
                "applied": s.applied,
                "applied_at": s.applied_at.isoformat() if s.applied_at else None,
                "verified": s.verified,
                "changed_since_applied": s.changed,
                "half_applied": s.half_applied,
                "path": str(s.migration.path),
            }
            for s in status.migrations
        ],
    }
    return json.dumps(data, indent=2)
