"""``makemigrations``: write Alembic revisions for the changes in the models, Django's way."""

from __future__ import annotations

import click

from sqlmanage.commands.base import common_options, noinput_option
from sqlmanage.render.commands import shown_path


@click.command("makemigrations")
@click.argument("app_labels", nargs=-1, metavar="[APP_LABEL]...")
@click.option("-n", "--name", help="Use this name for the migration file(s).")
@click.option("--empty", is_flag=True, help="Create an empty migration, for a data migration.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Show what would be written; write nothing, never ask (with --noinput, exit 3 where "
    "a value would be needed).",
)
@click.option(
    "--no-header",
    is_flag=True,
    help="Leave out the generated header (Revision ID, Revises, Create Date) of the file's "
    "docstring, so the same changes always write the same file.",
)
@click.option(
    "--check",
    "check_changes",
    is_flag=True,
    help="Exit with status 1 if the models have changes without a migration; write nothing.",
)
@click.option("--merge", is_flag=True, help="Write a migration that merges several heads.")
@click.option(
    "--update",
    is_flag=True,
    help="Fold the model changes into the latest migration, which must not be applied yet.",
)
@click.option(
    "--scriptable",
    is_flag=True,
    help="Write only the paths of the new files to stdout; reports and questions go to stderr.",
)
@noinput_option
@common_options
def command(
    runtime, app_labels, name, empty, dry_run, no_header, check_changes, merge, update, scriptable
):
    """Create new migrations from the changes in your models.

    Compares every model (all modules under MODELS are imported) with the schema that the
    migration history produces and writes one Alembic revision, NNNN_<what it does>.py (in a
    history made by plain Alembic, or with file_template in alembic.ini, named as Alembic
    names it; alembic.ini's post_write_hooks run on the file). On a
    terminal it asks, as Django does, whether a column or table was renamed, and for a value
    for the existing rows when a NOT NULL column arrives; with --noinput (or off a terminal)
    it assumes no rename and exits with status 3 where a value is needed. APP_LABEL (Django's
    form) names the migration tree the new migration goes in (on its head, in its folder);
    a project with several trees needs it when there are changes to write.

    \b
    Examples:
      python manage.py makemigrations
      python manage.py makemigrations project
      python manage.py makemigrations -n add_discount_rate
      python manage.py makemigrations --empty -n fill_discount_rate
      python manage.py makemigrations --check --dry-run
      python manage.py makemigrations --merge
      python manage.py makemigrations --update
      python manage.py makemigrations --scriptable --noinput
    """
    from sqlmanage.actions.makemigrations import (
        make_merge,
        make_migration,
        record_fingerprint,
        update_latest,
    )
    from sqlmanage.actions.scaffold import ensure_migrations_folder
    from sqlmanage.engine.autodetect.naming import run_post_write_hooks
    from sqlmanage.render import plain

    project = runtime.project
    trees = tuple(dict.fromkeys(project.history.tree_label(label) for label in app_labels))
    if len(trees) > 1:
        raise click.UsageError(
            f"Give one app label: a migration goes in one tree ({', '.join(trees)} given)."
        )
    label = trees[0] if trees else None
    report = runtime.err if scriptable else runtime.out
    if name is not None and not name.strip():
        raise click.BadParameter("must not be empty.", param_hint="'-n' / '--name'")
    write = not (dry_run or check_changes)

    if merge:
        migration = make_merge(project, name, label)
        if migration is None:
            if runtime.verbosity >= 1:
                report("No conflicts detected to merge.")
            return 0
    else:
        if runtime.can_prompt(on_stderr=scriptable) and write:
            from sqlmanage.commands.questioner import InteractiveQuestioner

            questioner = InteractiveQuestioner(err=scriptable)
        elif write or (dry_run and not runtime.interactive):
            from sqlmanage.engine.autodetect.questions import NonInteractiveQuestioner

            questioner = NonInteractiveQuestioner()  # type: ignore[assignment]  # Django: --dry-run --noinput exits 3 too
        else:
            questioner = None  # --check, or --dry-run: report, never ask or refuse
        if update:
            if name:
                raise click.UsageError("--update keeps the latest migration's name; leave out -n.")
            migration = update_latest(project, questioner, label)
        else:
            migration = make_migration(project, name, empty, questioner, label)
        if migration is None:
            if runtime.verbosity >= 1:
                report("No changes detected")
            return 0

    if no_header:
        from sqlmanage.actions.no_header import without_header

        migration.source = without_header(migration.source)
    if write:
        if (
            ensure_migrations_folder(
                project.migrations_dir,
                tuple(d.migrations for d in project.settings.databases.values()),
            )
            and runtime.verbosity >= 1
        ):
            report(f"Created the migrations folder {shown_path(project.migrations_dir)}")
        migration.write()
        run_post_write_hooks(project.config, migration.path)
        if migration.changes:
            record_fingerprint(project, migration)
    if runtime.verbosity >= 1:
        history = project.history
        tree = migration.tree or project.label
        if merge:
            report(f"Merging {tree}", "heading")
            for head in history.tree_heads(tree):
                report(f"  Branch {history.by_id[head].name}")
        for text, style in plain.changes_written(
            tree, [(migration, shown_path(migration.path))], runtime.verbosity
        ):
            report(text, style)
    if dry_run and runtime.verbosity >= 3:
        report(migration.source)
    if scriptable and write:
        runtime.out(shown_path(migration.path))
    return 1 if check_changes else 0


command.word_keywords = (("app_label",),)  # type: ignore[attr-defined]  # call_command(..., app_label="project")
