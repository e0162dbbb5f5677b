"""Every use of Alembic's private API, each behind a named function saying why.

Everything else in sqlmanage uses Alembic's public API. What is here has no public
equivalent in the Alembic versions sqlmanage supports (1.13 and later); each function is
checked against the installed Alembic by ``tests/test_alembic_internals.py``, whose failure
names the function and what went missing, so a new Alembic release that moves one of them
fails there, loudly, instead of somewhere inside a migration run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

COLUMN_RENAME_RENDERED_FROM = (1, 15, 2)  # Alembic's issue #1635


def alembic_version() -> tuple[int, ...]:
    import alembic

    return tuple(int(part) for part in alembic.__version__.split(".")[:3] if part.isdigit())


def ensure_version_table(migration_context) -> None:
    """Create Alembic's version table if it is missing, as Alembic itself defines it.

    ``command.ensure_version`` is the public form, but it runs env.py; sqlmanage needs the
    table made inside env.py, on the locked connection, before anything reads it.
    """
    migration_context._ensure_version_table()


def running_environment_options() -> dict:
    """The options of the EnvironmentContext that env.py runs in (its ``fn`` among them).

    ``alembic.context`` exposes the running context's methods, not the object: its options,
    where Alembic keeps the migration function (``command.upgrade``'s, or sqlmanage's), are
    reachable only through the module proxy.
    """
    from alembic import context

    return context._proxy.context_opts  # type: ignore[attr-defined]


def revision_step(revision_map, script, forward: bool):
    """Alembic's step that runs one migration up or down, for an EnvironmentContext ``fn``.

    ``fn`` must yield Alembic's own step objects; ScriptDirectory builds them only in its
    private ``_upgrade_revs``/``_downgrade_revs``, which plan from the database's heads and
    not from sqlmanage's plan. The step's ``migration_fn`` is replaced by callers to wrap
    the migration (announce it, bound it, render its SQL).
    """
    from alembic.runtime.migration import RevisionStep

    return RevisionStep(revision_map, script, forward)


@contextmanager
def batch_reflects_its_table_only() -> Iterator[None]:
    """Batch rebuilds (SQLite) reflect the table without every table its foreign keys reach.

    Alembic only needs the referenced tables' names, which it stubs itself; reflecting them,
    recursively, for every rebuild is most of a long SQLite history's run time. A migration
    that passes its own ``reflect_kwargs`` keeps them. Migrations call ``op.batch_alter_table``
    on the Operations that Alembic installs itself, so the default can only be given where
    the batch implementation is built, for the whole class: the caller holds the lock that
    serialises Alembic runs (``alembic_env.alembic_run``).
    """
    from alembic.operations.batch import BatchOperationsImpl

    original = BatchOperationsImpl.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.reflect_kwargs.setdefault("resolve_fks", False)

    BatchOperationsImpl.__init__ = init  # type: ignore[method-assign]
    try:
        yield
    finally:
        BatchOperationsImpl.__init__ = original  # type: ignore[method-assign]


def restart_migration_transaction(migration_context) -> None:
    """Roll back the running migration's transaction and begin it again, in Alembic's place.

    Alembic keeps a migration's transaction in ``MigrationContext._transaction`` and its
    per-migration block reads it from there on exit (its own ``autocommit_block`` swaps it
    the same way); there is no public way to restart it.
    """
    transaction = migration_context._transaction
    if transaction is not None and transaction.is_active:
        transaction.rollback()
    elif migration_context.connection.in_transaction():
        migration_context.connection.rollback()
    migration_context._transaction = migration_context.connection.begin()


@contextmanager
def around_autocommit_blocks(
    migration_context, before: Callable[[], None], after: Callable[[], None]
) -> Iterator[None]:
    """Call ``before`` as each ``autocommit_block()`` the migration runs starts, and ``after``
    once it is over and Alembic has begun the transaction that follows it.

    Migrations reach the block as ``op.get_context().autocommit_block()``; Alembic has no hook
    around it, so the method is wrapped on this one MigrationContext for the migration's run.
    """
    original = migration_context.autocommit_block

    @contextmanager
    def autocommit_block():
        before()
        with original():
            yield
        after()

    migration_context.autocommit_block = autocommit_block
    try:
        yield
    finally:
        del migration_context.autocommit_block


@contextmanager
def installed_as_op(operations) -> Iterator[None]:
    """Make ``operations`` what ``alembic.op`` calls reach, then put back what was there.

    ``Operations.context`` is the public way, but it builds its own Operations (so no
    annotating one can be installed) and on exit leaves ``op`` empty rather than restoring
    the environment's, which the next migration of the run still needs.
    """
    import alembic.op

    previous = alembic.op._proxy  # type: ignore[attr-defined]
    operations._install_proxy()
    try:
        yield
    finally:
        if previous is not None:
            previous._install_proxy()
        else:
            operations._remove_proxy()


def clear_op() -> None:
    """Empty ``alembic.op`` as a run that ended normally leaves it.

    ``Operations.context`` does not take its proxy back when a migration raises, so after a
    failed run ``op`` still reaches that run's (closed) connection. Alembic has no public way
    to remove an installed proxy. (``alembic.context`` is taken back by the EnvironmentContext
    that installed it, on any exit.)
    """
    import alembic.op

    installed = getattr(alembic.op, "_proxy", None)
    if installed is not None:
        installed._remove_proxy()


def render_operation(autogen_context, operation) -> list[str]:
    """The Python lines Alembic renders for one operation, in a renderer's own context.

    ``autogenerate.render_python_code`` renders a whole UpgradeOps in a context of its own;
    a renderer that wraps Alembic's rendering of an operation must render it in the context
    it was given (its imports, its batch mode).
    """
    from alembic.autogenerate.render import render_op

    return render_op(autogen_context, operation)


def render_alter_column_with_new_name() -> None:
    """On Alembic before 1.15.2, render ``alter_column``'s ``new_column_name`` (Alembic issue #1635).

    Those versions drop it, which would turn an answered rename question into a migration
    that renames nothing. Their dispatcher refuses a second renderer for one operation and
    they no longer change, so their renderer is wrapped and set in the registry directly.
    """
    if alembic_version() >= COLUMN_RENAME_RENDERED_FROM:
        return
    from alembic.autogenerate import render, renderers
    from alembic.operations import ops

    render_alter_column = render._alter_column

    def render_with_new_name(autogen_context, operation) -> str:
        text = render_alter_column(autogen_context, operation)
        if operation.modify_name is None or "new_column_name=" in text:
            return text
        return f"{text[:-1]}, new_column_name={operation.modify_name!r})"

    renderers._registry[(ops.AlterColumnOp, "default")] = render_with_new_name


def is_plugin_registered(name: str) -> bool:
    """Whether an autogenerate plugin of that name exists in this process (Alembic 1.18+).

    ``Plugin(name)`` registers itself in a process-wide registry and refuses a second one of
    the same name; Alembic offers no public lookup.
    """
    from alembic.runtime import plugins

    return name in plugins._all_plugins


def knows_dropped_original(operation) -> bool:
    """Whether autogenerate recorded what a DropColumnOp/DropTableOp drops (its columns, type).

    ``to_column()``/``to_table()`` always answer, with an untyped stand-in when nothing was
    recorded; only the private ``_reverse`` tells the two apart.
    """
    return operation._reverse is not None


def post_write_hooks_runner() -> Callable[[str, object], None] | None:
    """Alembic's runner of alembic.ini's ``post_write_hooks`` (``path``, hook configuration),
    or None on an Alembic without it.

    ``alembic revision`` runs the hooks from inside ``ScriptDirectory.generate_revision``;
    the runner itself has no public name.
    """
    from alembic.script import write_hooks

    return getattr(write_hooks, "_run_hooks", None)


def import_migration_file(path: Path):
    """Import a migration file as Alembic does (its module name, its .pyc handling).

    Alembic's ``util.load_python_file``: no underscore, but not documented either.
    """
    from alembic import util

    return util.load_python_file(str(path.parent), path.name)


def revision_file_paths(script_directory) -> Iterator[Path]:
    """Every migration file of a ScriptDirectory, as Alembic's own loader lists them.

    Its ``version_locations`` resolved (``pkg:path`` forms included), walked recursively when
    ``recursive_version_locations`` says so, only files Alembic would load; each file once.
    The public ``version_locations`` holds the ini's raw text, and the listing and the file
    name pattern are private.
    """
    import warnings

    from alembic.script import Script
    from alembic.script.base import _only_source_rev_file

    loaded: set[Path] = set()
    for location in version_locations(script_directory):
        location = Path(location)
        if not location.exists():
            continue
        for listed in Script._list_py_dir(script_directory, location):
            path = Path(listed).resolve()
            if path in loaded:
                warnings.warn(
                    f"File {path} loaded twice! ignoring. Please ensure "
                    "version_locations is unique.",
                    stacklevel=2,
                )
                continue
            loaded.add(path)
            if _only_source_rev_file.match(path.name):
                yield path


def imported_script(script_directory, path: Path):
    """Alembic's own Script for a file, importing it; None when it is not a migration.

    For a file whose header needs executing to be known. The factory is private, and was
    renamed in 1.16 (``_from_filename`` became ``_from_path``).
    """
    from alembic.script import Script

    if hasattr(Script, "_from_path"):
        return Script._from_path(script_directory, path)
    return Script._from_filename(script_directory, str(path.parent), path.name)  # type: ignore[attr-defined]


def feed_revision_map(script_directory, scripts: Callable[[], Iterable]) -> None:
    """Make ``script_directory`` build its RevisionMap from ``scripts`` instead of importing
    every migration module.

    ScriptDirectory builds its map from its private ``_load_revisions``; ``RevisionMap`` (public)
    takes any generator of Scripts, but the directory's map is only reachable as an attribute
    set in its constructor.
    """
    from alembic.script.revision import RevisionMap

    script_directory.revision_map = RevisionMap(scripts)


def version_locations(script_directory) -> list[Path]:
    """The folders a ScriptDirectory reads migrations from, ``pkg:path`` forms resolved.

    The public ``version_locations`` is the ini's text; the resolved list is private.
    """
    return [Path(location) for location in script_directory._version_locations]


def own_branch_labels(script) -> tuple[str, ...]:
    """The branch labels a migration file declares itself.

    Alembic's public ``branch_labels`` also holds the labels it passes down from the
    migration's ancestors; the file's own are kept only in the private ``_orig_branch_labels``.
    """
    return tuple(sorted(script._orig_branch_labels or ()))


def resolved_dependencies(script) -> tuple[str, ...]:
    """The revision ids a Script's ``depends_on`` names, branch labels resolved by its map.

    Alembic's RevisionMap resolves them when it is built and keeps them only in the private
    ``_resolved_dependencies``; ``dependencies`` is the file's text (a label or an id).
    """
    return tuple(script._resolved_dependencies or ())
