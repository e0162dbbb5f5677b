"""What an adopted env.py used to hold, as settings: INCLUDE_OBJECT, INCLUDE_NAME,
PROCESS_REVISION_DIRECTIVES and TARGET_METADATA, given as dotted paths."""

from __future__ import annotations

import sqlite3

HOOKS = """
def include_object(obj, name, type_, reflected, compare_to):
    return not (type_ == "table" and name.startswith("legacy_"))


def include_name(name, type_, parent_names):
    return not (type_ == "table" and name.startswith("legacy_"))


def keep_no_archive_ops(context, revision, directives):
    script = directives[0]
    script.upgrade_ops.ops[:] = [
        op for op in script.upgrade_ops.ops if getattr(op, "table_name", None) != "archive"
    ]
"""

SNAPSHOT = """import sqlalchemy as sa

# An old snapshot of the models, kept for a data migration (MLflow's initial_models.py).
snapshot_metadata = sa.MetaData()
sa.Table("products", snapshot_metadata, sa.Column("id", sa.Integer, primary_key=True))
"""


def settings_with(project, **values: str) -> None:
    (project.path / "project" / "hooks.py").write_text(HOOKS)
    with (project.path / "project" / "settings.py").open("a") as handle:
        for name, value in values.items():
            handle.write(f"{name} = {value!r}\n")


def add_legacy_table(project) -> None:
    with sqlite3.connect(project.sqlite_file) as connection:
        connection.execute("create table legacy_orders (id integer primary key)")


def test_a_table_the_filters_hide_is_not_dropped(project):
    project.manage("migrate")
    add_legacy_table(project)
    unfiltered = project.run("makemigrations", "--check")
    assert unfiltered.returncode == 1 and "Delete table legacy_orders" in unfiltered.stdout
    for setting, path in [
        ("INCLUDE_OBJECT", "project.hooks.include_object"),
        ("INCLUDE_NAME", "project.hooks.include_name"),
    ]:
        settings = project.path / "project" / "settings.py"
        original = settings.read_text()
        settings_with(project, **{setting: path})
        result = project.run("makemigrations", "--check")
        assert (result.returncode, result.stdout.strip()) == (0, "No changes detected"), setting
        settings.write_text(original)


def test_process_revision_directives_shapes_what_makemigrations_writes(project):
    project.manage("migrate")
    project.edit(
        "project/models/catalogue.py",
        "class Product(Base):",
        'class Archive(Base):\n    __tablename__ = "archive"\n\n'
        "    id: Mapped[int] = mapped_column(primary_key=True)\n\n\nclass Product(Base):",
    )
    assert project.run("makemigrations", "--check").returncode == 1
    settings_with(project, PROCESS_REVISION_DIRECTIVES="project.hooks.keep_no_archive_ops")
    result = project.run("makemigrations", "--check")
    assert (result.returncode, result.stdout.strip()) == (0, "No changes detected")


def test_two_metadata_with_one_table_need_target_metadata(project):
    (project.path / "project" / "models" / "snapshot.py").write_text(SNAPSHOT)
    result = project.run("makemigrations", "--check")
    assert result.returncode == 1
    assert "The table products is defined in two different MetaData collections" in result.stderr
    assert "TARGET_METADATA" in result.stderr and "Traceback" not in result.stderr
    settings_with(project, TARGET_METADATA="project.models.base.Base.metadata")
    result = project.run("makemigrations", "--check")
    assert (result.returncode, result.stdout.strip()) == (0, "No changes detected"), result.stderr


def test_a_dotted_path_that_names_nothing_is_a_settings_error(project):
    settings_with(project, INCLUDE_OBJECT="project.hooks.no_such_function")
    result = project.run("makemigrations", "--check")
    assert result.returncode == 1
    assert (
        "INCLUDE_OBJECT names project.hooks.no_such_function, but project.hooks has no "
        "'no_such_function'" in result.stderr
    )
    assert "Traceback" not in result.stderr
    settings_with(project, INCLUDE_NAME="not a path")
    result = project.run("showmigrations")
    assert result.returncode == 1 and "is not a dotted path" in result.stderr


def test_an_index_for_another_dialect_is_not_a_change(project):
    """Index(...).ddl_if(dialect="postgresql") is never created on SQLite (create_all skips
    it too), so its absence there is no change to migrate (Prefect's trigram indexes)."""
    project.manage("migrate")
    with (project.path / "project" / "models" / "catalogue.py").open("a") as handle:
        handle.write(
            '\nsa.Index("ix_products_name_pg_only", Product.name).ddl_if(dialect="postgresql")\n'
        )
    result = project.run("makemigrations", "--check")
    assert (result.returncode, result.stdout.strip()) == (0, "No changes detected"), result.stdout
    with (project.path / "project" / "models" / "catalogue.py").open("a") as handle:
        handle.write(
            'sa.Index("ix_products_name_sqlite", Product.name).ddl_if(dialect=("sqlite",))\n'
        )
    result = project.run("makemigrations", "--check")
    assert (
        result.returncode == 1
        and "Create index ix_products_name_sqlite on products" in result.stdout
    )
