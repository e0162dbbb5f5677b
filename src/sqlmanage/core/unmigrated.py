"""Django's "your models have changes" notice after a no-op migrate, without its usual cost.

Comparing the models with the schema means importing every model module and reflecting the
database: seconds on a big project, on every deploy. Two ways around it, both exact (see
``comparison_cache``): when no project source file changed since a comparison that found
nothing here, the answer is known without importing anything; on a fresh checkout, where no
such memory exists, the head migration's recorded fingerprint is compared with the models'
own, and only a missing or different one means comparing.
"""

from __future__ import annotations

import logging

log = logging.getLogger("sqlmanage")


def models_have_unmigrated_changes(project) -> bool:
    """Whether the models hold changes that no migration has (compared only when needed)."""
    from sqlmanage.core.comparison_cache import is_remembered, remember, sources_key

    key = sources_key(project)
    if is_remembered(project, key):
        return False
    if _head_fingerprint_matches(project):
        log.debug("The models match the fingerprint the head migration records: not compared.")
        remember(project, key)
        return False
    from sqlmanage.core.makemigrations import detect_changes

    script, _ = detect_changes(project)
    if not script.upgrade_ops.is_empty():
        return True
    remember(project, key)
    return False


def _head_fingerprint_matches(project) -> bool:
    from sqlmanage.core import comparison_cache

    history = project.history
    if len(history.heads) != 1:
        return False
    try:
        recorded, _ = comparison_cache.read_fingerprint(history.by_id[history.heads[0]].path)
    except (OSError, SyntaxError, ValueError):
        return False
    if recorded is None:
        return False
    current = comparison_cache.fingerprint(project, comparison_cache.project_server_version(project))
    return current == recorded
