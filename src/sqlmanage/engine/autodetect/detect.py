"""Autodetection: the operations that take the schema the history builds to the models.

Alembic's ``produce_migrations`` against a database at the history's head (``baseline``),
then sqlmanage's passes over its result: column checks kept, Django's questions asked,
PostgreSQL enums kept in step, implicit MySQL indexes dropped, online-safe forms.
"""

from __future__ import annotations

from dataclasses import dataclass


def detect_changes(project, questioner=None, revision: str | None = None):
    """Compare the models with the schema the history produces, and render the differences.

    ``revision`` is where the history is taken to (default: its head). A ``questioner``
    answers Django's questions (renames, a value for NOT NULL); without one nothing is asked
    and nothing is assumed. Returns Alembic's MigrationScript and the template arguments
    (upgrades, downgrades, imports) that render it. A comparison with the head that found
    nothing is remembered (``comparison_cache``) until the models or migrations change; with
    nothing remembered, a head migration whose recorded fingerprint the models still match
    answers without comparing.
    """
    from sqlmanage.engine.autodetect import comparison_cache

    # A project's own filter or directives hook is code the remembered answer cannot see.
    remembering = revision is None and not project.has_autogenerate_hooks
    key = comparison_cache.models_key(project) if remembering else None
    if comparison_cache.is_remembered(project, key):
        return NO_CHANGES, {}
    if remembering and comparison_cache.head_fingerprint_matches(project):
        comparison_cache.remember(project, key)  # a fresh checkout: the head's record answers
        return NO_CHANGES, {}

    from alembic.autogenerate import produce_migrations
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import inspect

    from sqlmanage.engine.autodetect.comparison import (
        drop_checks_before_columns,
        keep_column_checks,
    )
    from sqlmanage.engine.autodetect.foreign_key_indexes import drop_implicit_indexes
    from sqlmanage.engine.autodetect.online_safe import make_online_safe
    from sqlmanage.engine.autodetect.pg_enums import keep_enums_in_step
    from sqlmanage.engine.autodetect.questions import resolve_questions
    from sqlmanage.engine.baseline import with_baseline

    metadata = project.metadata

    def compare(connection):
        options = project.context_options(connection.dialect.name)
        options.update(
            sqlalchemy_module_prefix="sa.", alembic_module_prefix="op.", user_module_prefix=None
        )
        context = MigrationContext.configure(connection, opts=options)
        script = produce_migrations(context, metadata)
        keep_column_checks(script)
        if questioner is not None and not script.upgrade_ops.is_empty():  # type: ignore[union-attr]
            existing = set(inspect(connection).get_table_names())
            resolve_questions(script, connection.dialect, questioner, existing)
        keep_enums_in_step(script, connection, metadata)
        drop_implicit_indexes(script, connection)
        drop_checks_before_columns(script, connection.dialect)
        directives = options.get("process_revision_directives")
        if directives is not None:
            directives(context, project.history.heads, [script])
        make_online_safe(script, connection)
        template_args = {} if script.upgrade_ops.is_empty() else rendered_code(context, script)  # type: ignore[union-attr]
        return script, template_args

    script, template_args = with_baseline(project, compare, revision)
    if script.upgrade_ops.is_empty():
        comparison_cache.remember(project, key)
    return script, template_args


def rendered_code(context, script) -> dict:
    """The template arguments of a migration file: its ``upgrades``, ``downgrades`` and ``imports``.

    Alembic's public ``render_python_code``, with the comparison's own context and options.
    What the rendering needs imported (a dialect's types) it collects in its AutogenContext,
    which ``render_python_code`` keeps to itself; that context reaches the ``render_item``
    hook, so it is taken there.
    """
    from alembic.autogenerate import render_python_code

    options = context.opts
    theirs = options.get("render_item")
    contexts: list = []

    def render_item(type_, obj, autogen_context):
        contexts.append(autogen_context)
        return theirs(type_, obj, autogen_context) if theirs else False

    def render(operations) -> str:
        return render_python_code(
            operations,
            sqlalchemy_module_prefix=options["sqlalchemy_module_prefix"],
            alembic_module_prefix=options["alembic_module_prefix"],
            render_as_batch=options.get("render_as_batch", False),
            render_item=render_item,
            migration_context=context,
            user_module_prefix=options.get("user_module_prefix"),
        )

    code = {
        script.upgrade_ops.upgrade_token: render(script.upgrade_ops),
        script.downgrade_ops.downgrade_token: render(script.downgrade_ops),
    }
    code["imports"] = "\n".join(sorted(set().union(*(c.imports for c in contexts))))
    return code


@dataclass(frozen=True)
class _NoOperations:
    ops: tuple = ()

    def is_empty(self) -> bool:
        return True


@dataclass(frozen=True)
class _NoChanges:
    """A remembered clean comparison, shaped like Alembic's MigrationScript (no Alembic import)."""

    upgrade_ops: _NoOperations = _NoOperations()
    downgrade_ops: _NoOperations = _NoOperations()


NO_CHANGES = _NoChanges()
