"""Django's "your models have changes" notice after a no-op migrate, without its usual cost.

Comparing the models with the schema means importing every model module and reflecting the
database: seconds on a big project, on every deploy. When no project source file changed
since a comparison that found nothing, the answer is known without importing anything; on a
fresh checkout, where nothing is remembered, the head migration's recorded fingerprint
answers unless it is missing or differs (see ``comparison_cache``).
"""

from __future__ import annotations


def models_have_unmigrated_changes(project) -> bool:
    """Whether the models hold changes that no migration has (compared only when needed)."""
    from sqlmanage.engine.autodetect.comparison_cache import is_remembered, remember, sources_key

    key = sources_key(project)
    if is_remembered(project, key):
        return False
    from sqlmanage.engine.autodetect.detect import detect_changes

    script, _ = detect_changes(project)
    if not script.upgrade_ops.is_empty():
        return True
    remember(project, key)
    return False
