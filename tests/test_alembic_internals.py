"""Each private Alembic use of ``sqlmanage.engine.alembic_internals``, checked against the installed
Alembic: it exists and behaves as sqlmanage relies on.

A failure names the function and the Alembic version, so a new Alembic release that moves
something is found here, not in the middle of a user's migration run. In-process, on real
SQLite databases and real Alembic objects; no subprocess.
"""

from __future__ import annotations

import os
import textwrap
from contextlib import contextmanager
from pathlib import Path

import alembic
import pytest
import sqlalchemy as sa
from alembic.autogenerate import produce_migrations, render_python_code
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.operations import Operations, ops
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import RevisionMap

from sqlmanage.engine import alembic_internals


@contextmanager
def relied_on(name: str):
    """Turn a missing or changed Alembic internal into one clear failure."""
    try:
        yield
    except (AttributeError, ImportError, TypeError, KeyError) as exc:
        pytest.fail(
            f"Alembic {alembic.__version__} no longer provides what "
            f"sqlmanage.engine.alembic_internals.{name} relies on ({type(exc).__name__}: {exc}). "
            "Look for a public way in this Alembic's changelog, else follow the internal, and "
            "change that one function.",
            pytrace=False,
        )


@pytest.fixture
def connection():
    engine = sa.create_engine("sqlite://")
    with engine.connect() as connection:
        yield connection
    engine.dispose()


def migration_module(
    folder: Path, revision: str, body: str = "pass", down: str | None = None
) -> Path:
    path = folder / f"{revision}_step.py"
    path.write_text(
        textwrap.dedent(f'''\
        """{revision}"""
        from alembic import op
        import sqlalchemy as sa

        revision = {revision!r}
        down_revision = {down!r}
        branch_labels = None
        depends_on = None


        def upgrade():
            {body}


        def downgrade():
            pass
        ''')
    )
    return path


def script_directory(tmp_path: Path, **options) -> ScriptDirectory:
    (tmp_path / "versions").mkdir(exist_ok=True)
    return ScriptDirectory(str(tmp_path), **options)


def test_ensure_version_table_creates_alembic_own_table(connection):
    with relied_on("ensure_version_table"):
        context = MigrationContext.configure(connection, opts={"version_table": "schema_versions"})
        alembic_internals.ensure_version_table(context)
    columns = {c["name"] for c in sa.inspect(connection).get_columns("schema_versions")}
    assert columns == {"version_num"}


def test_running_environment_options_hold_the_runs_migration_function(tmp_path):
    def steps(heads, context):
        return []

    with EnvironmentContext(Config(), script_directory(tmp_path), fn=steps):
        with relied_on("running_environment_options"):
            options = alembic_internals.running_environment_options()
        assert options["fn"] is steps


def test_revision_step_runs_a_migration_and_records_it(tmp_path, connection):
    directory = script_directory(tmp_path)
    path = migration_module(
        tmp_path / "versions", "a1", "op.create_table('made', sa.Column('id', sa.Integer))"
    )
    module = alembic_internals.import_migration_file(path)
    script = Script(module, "a1", str(path))
    revision_map = RevisionMap(lambda: iter([script]))
    assert revision_map.get_revision("a1") is script
    ran = []

    def steps(heads, context):
        with relied_on("revision_step"):
            step = alembic_internals.revision_step(revision_map, script, True)
            assert step.revision is script and step.migration_fn is module.upgrade
            original = step.migration_fn

            def announced(**kw):  # callers replace migration_fn to wrap the migration
                ran.append(step.revision.revision)
                return original(**kw)

            step.migration_fn = announced
        yield step

    with EnvironmentContext(Config(), directory, fn=steps) as context:
        context.configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
    assert ran == ["a1"]
    assert "made" in sa.inspect(connection).get_table_names()
    assert connection.exec_driver_sql(
        "select version_num from alembic_version"
    ).scalars().all() == ["a1"]


def run_one_step(tmp_path, connection, upgrade):
    """Run ``upgrade`` as revision a1's migration, one transaction per migration, as migrate does."""
    directory = script_directory(tmp_path)
    path = migration_module(tmp_path / "versions", "a1")
    script = Script(alembic_internals.import_migration_file(path), "a1", str(path))
    revision_map = RevisionMap(lambda: iter([script]))
    revision_map.get_revision("a1")

    def steps(heads, context):
        step = alembic_internals.revision_step(revision_map, script, True)
        step.migration_fn = lambda **kw: upgrade(context)
        yield step

    with EnvironmentContext(Config(), directory, fn=steps) as context:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()


def test_restart_migration_transaction_is_the_one_alembic_commits(tmp_path):
    import sqlite3

    database = tmp_path / "restart.sqlite3"
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        connection.exec_driver_sql("create table rows (n integer)")
        connection.commit()

        def upgrade(migration_context):
            migration_context.connection.exec_driver_sql("insert into rows values (1)")
            with relied_on("restart_migration_transaction"):
                alembic_internals.restart_migration_transaction(migration_context)
            migration_context.connection.exec_driver_sql("insert into rows values (2)")

        run_one_step(tmp_path, connection, upgrade)
        with sqlite3.connect(database) as committed:  # what Alembic committed, from outside
            assert committed.execute("select n from rows").fetchall() == [(2,)]
            assert committed.execute("select version_num from alembic_version").fetchall() == [
                ("a1",)
            ]
    engine.dispose()


def test_around_autocommit_blocks_sees_each_block_start_and_the_transaction_after_it(
    tmp_path, connection
):
    import alembic.op

    connection.exec_driver_sql("create table rows (n integer)")
    connection.commit()
    events = []

    def upgrade(migration_context):
        with relied_on("around_autocommit_blocks"):
            with (
                alembic_internals.around_autocommit_blocks(
                    migration_context,
                    lambda: events.append("before"),
                    lambda: events.append(("after", migration_context.connection.in_transaction())),
                ),
                alembic.op.get_context().autocommit_block(),
            ):
                events.append("inside")
                migration_context.connection.exec_driver_sql("insert into rows values (1)")
            assert "autocommit_block" not in vars(migration_context), "the wrapper was left behind"

    run_one_step(tmp_path, connection, upgrade)
    assert events == ["before", "inside", ("after", True)]
    assert connection.exec_driver_sql("select n from rows").scalars().all() == [1]


def test_batch_reflects_its_table_only(connection):
    connection.exec_driver_sql("create table parent (id integer primary key)")
    connection.exec_driver_sql(
        "create table child (id integer primary key, parent_id integer references parent (id))"
    )
    operations = Operations(MigrationContext.configure(connection))
    with relied_on("batch_reflects_its_table_only"):
        with (
            alembic_internals.batch_reflects_its_table_only(),
            operations.batch_alter_table("child", recreate="always") as batch,
        ):
            assert batch.impl.reflect_kwargs.get("resolve_fks") is False
            batch.add_column(sa.Column("note", sa.Text()))
        with operations.batch_alter_table("child") as batch:
            assert "resolve_fks" not in batch.impl.reflect_kwargs, "the class was left patched"
    columns = {c["name"] for c in sa.inspect(connection).get_columns("child")}
    assert columns == {"id", "parent_id", "note"}
    assert sa.inspect(connection).get_foreign_keys("child")[0]["referred_table"] == "parent"


def test_installed_as_op_puts_back_the_environments_operations(connection):
    import alembic.op

    other = sa.create_engine("sqlite://")
    with other.connect() as other_connection:
        environment = MigrationContext.configure(connection)
        ours = Operations(MigrationContext.configure(other_connection))
        with Operations.context(environment), relied_on("installed_as_op"):
            with alembic_internals.installed_as_op(ours):
                assert alembic.op.get_context() is ours.migration_context
                alembic.op.create_table("ours", sa.Column("id", sa.Integer))
            assert alembic.op.get_context() is environment
        with relied_on("installed_as_op"), alembic_internals.installed_as_op(ours):
            assert alembic.op.get_context() is ours.migration_context
        with pytest.raises(AttributeError):
            alembic.op.get_context()  # outside a run, op is left empty as Alembic leaves it
        assert sa.inspect(other_connection).get_table_names() == ["ours"]
    other.dispose()
    assert sa.inspect(connection).get_table_names() == []


def test_clear_op_after_a_run_that_raised(tmp_path, connection):
    import alembic.context
    import alembic.op

    def steps(heads, context):
        raise RuntimeError("a migration failed")

    with (
        pytest.raises(RuntimeError, match="a migration failed"),
        EnvironmentContext(Config(), script_directory(tmp_path), fn=steps) as context,
    ):
        context.configure(connection=connection)
        context.run_migrations()
    with pytest.raises(AttributeError):
        alembic.context.get_context()  # Alembic takes its context back itself
    assert alembic.op.get_context() is not None, "Alembic now takes op back too: clear_op can go"
    with relied_on("clear_op"):
        alembic_internals.clear_op()
        alembic_internals.clear_op()  # nothing installed: nothing to do
    for proxy in (alembic.op, alembic.context):
        with pytest.raises(AttributeError):
            proxy.get_context()


def test_render_operation_renders_in_the_given_context(connection):
    context = MigrationContext.configure(
        connection,
        opts={
            "sqlalchemy_module_prefix": "sa.",
            "alembic_module_prefix": "op.",
            "user_module_prefix": None,
        },
    )
    autogen_context = AutogenContext(context)
    from sqlalchemy.dialects import postgresql

    operation = ops.AddColumnOp("runs", sa.Column("data", postgresql.JSONB()))
    with relied_on("render_operation"):
        lines = alembic_internals.render_operation(autogen_context, operation)
    assert len(lines) == 1 and lines[0].startswith(
        "op.add_column('runs', sa.Column('data', postgresql.JSONB("
    )
    assert autogen_context.imports == {"from sqlalchemy.dialects import postgresql"}


def test_alter_column_renders_its_new_name():
    with relied_on("render_alter_column_with_new_name"):
        alembic_internals.render_alter_column_with_new_name()
    code = render_python_code(ops.UpgradeOps([ops.AlterColumnOp("runs", "old", modify_name="new")]))
    assert "new_column_name='new'" in code, f"Alembic {alembic.__version__} renders {code!r}"


def test_is_plugin_registered_sees_the_process_registry():
    from sqlmanage.engine.autodetect.comparison import OWN_PLUGIN, plugin_options

    if not plugin_options():
        assert alembic_internals.alembic_version() < (1, 18), (
            f"Alembic {alembic.__version__} should have autogenerate plugins (1.18+)"
        )
        return
    with relied_on("is_plugin_registered"):
        assert alembic_internals.is_plugin_registered(OWN_PLUGIN)
        assert not alembic_internals.is_plugin_registered("sqlmanage.never_registered")


def test_knows_dropped_original_tells_a_recorded_drop_from_a_hand_made_one(connection):
    connection.exec_driver_sql("create table kept (id integer primary key, gone text)")
    connection.exec_driver_sql("create table dropped (id integer primary key)")
    metadata = sa.MetaData()
    sa.Table("kept", metadata, sa.Column("id", sa.Integer, primary_key=True))
    context = MigrationContext.configure(connection, opts={"target_metadata": metadata})
    script = produce_migrations(context, metadata)
    found = {type(o).__name__: o for o in script.upgrade_ops.ops}
    drop_column = next(o for o in found["ModifyTableOps"].ops if isinstance(o, ops.DropColumnOp))
    with relied_on("knows_dropped_original"):
        assert alembic_internals.knows_dropped_original(drop_column)
        assert alembic_internals.knows_dropped_original(found["DropTableOp"])
        assert not alembic_internals.knows_dropped_original(ops.DropColumnOp("kept", "gone"))
        assert not alembic_internals.knows_dropped_original(ops.DropTableOp("dropped"))
    assert isinstance(drop_column.to_column().type, sa.Text)


def test_post_write_hooks_runner_runs_alembic_ini_hooks(tmp_path):
    from alembic.script import write_hooks

    from sqlmanage.engine.autodetect.naming import run_post_write_hooks

    seen = []

    @write_hooks.register("sqlmanage_internals_probe")
    def probe(filename, options):
        seen.append((Path(filename), options.get("marker")))

    ini = tmp_path / "alembic.ini"
    ini.write_text(
        "[alembic]\nscript_location = .\n\n[post_write_hooks]\nhooks = probe\n"
        "probe.type = sqlmanage_internals_probe\nprobe.marker = here\n"
    )
    written = tmp_path / "0001_initial.py"
    written.write_text("")
    with relied_on("post_write_hooks_runner"):
        assert alembic_internals.post_write_hooks_runner() is not None, (
            f"Alembic {alembic.__version__} has no alembic.script.write_hooks._run_hooks, which "
            "sqlmanage.engine.alembic_internals.post_write_hooks_runner relies on"
        )
        assert run_post_write_hooks(Config(str(ini)), written) == ["probe"]
    assert seen == [(written, "here")]


def test_revision_file_paths_lists_every_location_as_alembic_does(tmp_path):
    first, second = tmp_path / "versions", tmp_path / "more"
    (second / "nested").mkdir(parents=True)
    first.mkdir()
    migration_module(first, "a1")
    migration_module(second, "b1", down="a1")
    migration_module(second / "nested", "c1", down="b1")
    for name in ("__init__.py", ".#a1_step.py", "notes.txt"):
        (first / name).write_text("")
    with relied_on("revision_file_paths"):
        flat = script_directory(tmp_path, version_locations=[str(first), str(second)])
        nested = script_directory(
            tmp_path, version_locations=[str(first), str(second)], recursive_version_locations=True
        )
        assert sorted(p.name for p in alembic_internals.revision_file_paths(flat)) == [
            "a1_step.py",
            "b1_step.py",
        ]
        assert sorted(p.name for p in alembic_internals.revision_file_paths(nested)) == [
            "a1_step.py",
            "b1_step.py",
            "c1_step.py",
        ]
        assert [
            p.name for p in alembic_internals.revision_file_paths(script_directory(tmp_path))
        ] == ["a1_step.py"]


def test_imported_script_is_alembics_own(tmp_path):
    directory = script_directory(tmp_path)
    path = migration_module(tmp_path / "versions", "a1")
    with relied_on("imported_script"):
        script = alembic_internals.imported_script(directory, path)
    assert (script.revision, script.down_revision, Path(script.path)) == ("a1", None, path)


def test_import_migration_file_imports_the_module(tmp_path):
    path = migration_module(tmp_path, "a1", "return 'ran'")
    with relied_on("import_migration_file"):
        module = alembic_internals.import_migration_file(path)
    assert (module.revision, module.upgrade()) == ("a1", "ran")


def test_feed_revision_map_replaces_importing_every_module(tmp_path):
    directory = script_directory(tmp_path)
    (tmp_path / "versions" / "broken.py").write_text("raise RuntimeError('imported')\n")
    first = migration_module(tmp_path, "a1")
    second = migration_module(tmp_path, "b1", down="a1")
    fed = [
        Script(alembic_internals.import_migration_file(p), r, str(p))
        for p, r in ((first, "a1"), (second, "b1"))
    ]
    with relied_on("feed_revision_map"):
        alembic_internals.feed_revision_map(directory, lambda: iter(fed))
        assert directory.get_heads() == ["b1"]
        assert directory.get_revision("a1") is fed[0]
        assert [s.revision for s in directory.walk_revisions()] == ["b1", "a1"]


def test_resolved_dependencies_are_revision_ids_with_labels_resolved(tmp_path):
    labelled = migration_module(tmp_path, "l1")
    labelled.write_text(
        labelled.read_text().replace("branch_labels = None", "branch_labels = ('lookup',)")
    )
    base = migration_module(tmp_path, "a1")
    dependent = migration_module(tmp_path, "b1", down="a1")
    dependent.write_text(
        dependent.read_text().replace("depends_on = None", "depends_on = 'lookup'")
    )
    scripts = [
        Script(alembic_internals.import_migration_file(p), p.stem.split("_")[0], str(p))
        for p in (labelled, base, dependent)
    ]
    revision_map = RevisionMap(lambda: iter(scripts))
    with relied_on("resolved_dependencies"):
        assert alembic_internals.resolved_dependencies(revision_map.get_revision("b1")) == ("l1",)
        assert alembic_internals.resolved_dependencies(revision_map.get_revision("a1")) == ()
    assert revision_map.get_revision("b1").dependencies == "lookup"


def test_own_branch_labels_are_the_files_not_the_inherited_ones(tmp_path):
    root = migration_module(tmp_path, "a1")
    root.write_text(root.read_text().replace("branch_labels = None", "branch_labels = ('shop',)"))
    child = migration_module(tmp_path, "b1", down="a1")
    scripts = [
        Script(alembic_internals.import_migration_file(p), p.stem.split("_")[0], str(p))
        for p in (root, child)
    ]
    revision_map = RevisionMap(lambda: iter(scripts))
    assert "shop" in revision_map.get_revision("b1").branch_labels
    with relied_on("own_branch_labels"):
        assert alembic_internals.own_branch_labels(revision_map.get_revision("a1")) == ("shop",)
        assert alembic_internals.own_branch_labels(revision_map.get_revision("b1")) == ()


def test_version_locations_are_the_resolved_folders(tmp_path):
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    (tmp_path / "versions").mkdir()
    (tmp_path / "more").mkdir()
    config = Config()
    config.set_main_option("script_location", str(tmp_path))
    # Alembic 1.16 renamed the option (the old name warns there, the new one is unknown before).
    separator = (
        "path_separator"
        if alembic_internals.alembic_version() >= (1, 16)
        else "version_path_separator"
    )
    config.set_main_option(separator, "os")
    config.set_main_option(
        "version_locations", os.pathsep.join([str(tmp_path / "versions"), str(tmp_path / "more")])
    )
    with relied_on("version_locations"):
        located = alembic_internals.version_locations(ScriptDirectory.from_config(config))
    assert [path.resolve() for path in located] == [tmp_path / "versions", tmp_path / "more"]
