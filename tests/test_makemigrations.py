"""makemigrations on SQLite: discovery, Django-style names, the flags, the written files."""

from __future__ import annotations

import ast
import re

from conftest import add_discount_code

FILE_NAME = re.compile(r"^\d{4}_[a-z0-9_]+\.py$")


def revision_of(path) -> str:
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "revision":
            return node.value.value
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "revision":
            return node.value.value
    raise AssertionError(f"no revision in {path}")


def test_initial_migration_sees_a_model_module_that_nothing_imports(project):
    """reviews.py is imported by no other module; its tables still reach 0001_initial."""
    for path in project.versions.glob("*.py"):
        path.unlink()
    models_init = (project.path / "project/models/__init__.py").read_text()
    assert "reviews" not in models_init.split('"""')[-1]

    result = project.manage("makemigrations")

    assert project.migration_files() == ["0001_initial.py"]
    assert result.lines[:2] == [
        "Migrations for 'project':",
        "  project/migrations/versions/0001_initial.py",
    ]
    for table in ("categories", "products", "customers", "reviews"):
        assert f"    + Create table {table}" in result.lines
    assert "    + Create index idx_products_category on products" in result.lines
    source = (project.versions / "0001_initial.py").read_text()
    assert "op.create_table('reviews'" in source and "op.create_table('customers'" in source
    assert revision_of(project.versions / "0001_initial.py") == "0001_initial"
    assert not project.sqlite_file.exists(), "makemigrations created the database file"

    project.manage("migrate")
    assert {"reviews", "customers"} <= project.sqlite_tables()


def test_no_changes_detected_at_head(project):
    project.manage("migrate")
    result = project.manage("makemigrations")
    assert result.lines == ["No changes detected"]
    assert project.run("makemigrations", "--check").returncode == 0


def test_a_new_column_gets_a_django_named_revision(project):
    project.manage("migrate")
    add_discount_code(project)

    result = project.manage("makemigrations")

    path = project.versions / "0004_add_products_discount_code.py"
    assert path.exists()
    assert result.lines == [
        "Migrations for 'project':",
        "  project/migrations/versions/0004_add_products_discount_code.py",
        "    + Add column discount_code to products",
    ]
    assert revision_of(path) == "0004_add_products_discount_code"
    source = path.read_text()
    assert "down_revision: Union[str, Sequence[str], None] = '0003_fill_discount_rate'" in source
    assert (
        "batch_op.add_column(sa.Column('discount_code', sa.String(length=20), nullable=True))"
        in source
    )
    project.manage("migrate")
    assert project.sqlite_version() == {"0004_add_products_discount_code"}
    assert project.manage("makemigrations", "--check").lines == ["No changes detected"]


def test_check_exits_1_and_writes_nothing_when_models_changed(project):
    project.manage("migrate")
    add_discount_code(project)
    before = project.migration_files()

    result = project.run("makemigrations", "--check")

    assert result.returncode == 1
    assert "    + Add column discount_code to products" in result.lines
    assert project.migration_files() == before


def test_dry_run_writes_nothing_and_shows_the_file_at_verbosity_3(project):
    project.manage("migrate")
    add_discount_code(project)

    plain = project.manage("makemigrations", "--dry-run")
    verbose = project.manage("makemigrations", "--dry-run", "-v", "3")

    assert "    + Add column discount_code to products" in plain.lines
    assert "def upgrade()" not in plain.stdout
    assert "revision: str = '0004_add_products_discount_code'" in verbose.stdout
    assert "def downgrade() -> None:" in verbose.stdout
    assert project.migration_files() == [
        "0001_initial.py",
        "0002_add_products_discount_rate.py",
        "0003_fill_discount_rate.py",
    ]


def test_name_option_wins_and_becomes_a_safe_slug(project):
    project.manage("migrate")
    add_discount_code(project)
    project.manage("makemigrations", "-n", "Discount Codes!")
    assert "0004_discount_codes.py" in project.migration_files()


def test_empty_migration_shows_the_data_migration_pattern(project):
    result = project.manage("makemigrations", "--empty", "-n", "fill_discount_code")

    path = project.versions / "0004_fill_discount_code.py"
    assert result.lines[1] == "  project/migrations/versions/0004_fill_discount_code.py"
    source = path.read_text()
    for step in ("op.add_column(", "op.execute(", "alter_column(", "nullable=False"):
        assert step in source
    compile(source, str(path), "exec")
    project.manage("migrate")
    assert project.sqlite_version() == {"0004_fill_discount_code"}


def test_empty_without_a_name_is_named_auto(project):
    project.manage("makemigrations", "--empty")
    new = [name for name in project.migration_files() if name.startswith("0004_")]
    assert len(new) == 1 and re.match(r"^0004_auto_\d{8}_\d{4}\.py$", new[0])


def test_long_names_fit_alembics_version_column(project):
    project.manage("makemigrations", "--empty", "-n", "x" * 200)
    (new,) = [p for p in project.versions.glob("0004_*.py")]
    assert FILE_NAME.match(new.name)
    assert len(revision_of(new)) <= 32
    project.manage("migrate")


def test_revision_ids_never_collide(project):
    """Two empty migrations with one name on two branches get distinct ids."""
    project.manage("makemigrations", "--empty", "-n", "same")
    first = project.versions / "0004_same.py"
    project.edit("project/migrations/versions/0004_same.py", "0004_same", "0003_same")
    first.rename(project.versions / "0003_same.py")
    project.edit(
        "project/migrations/versions/0003_same.py",
        "down_revision: Union[str, Sequence[str], None] = '0003_fill_discount_rate'",
        "down_revision: Union[str, Sequence[str], None] = '0002_add_products_discount_rate'",
    )
    project.manage("makemigrations", "--merge", "-n", "same")
    ids = [revision_of(p) for p in project.versions.glob("*.py")]
    assert len(ids) == len(set(ids))


def test_merge_writes_a_revision_with_both_heads_as_parents(project):
    (project.versions / "0003_other_branch.py").write_text(
        '"""other branch"""\n'
        "revision = '0003_other_branch'\n"
        "down_revision = '0002_add_products_discount_rate'\n"
        "branch_labels = None\ndepends_on = None\n\n"
        "def upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n"
    )
    conflict = project.run("makemigrations")
    assert conflict.returncode == 1
    assert "makemigrations --merge" in conflict.stderr

    result = project.manage("makemigrations", "--merge")

    (merge,) = [p for p in project.versions.glob("0004_merge*.py")]
    assert merge.name == "0004_merge_fill_other.py"
    assert result.lines[0] == "Merging project"
    source = merge.read_text()
    assert "'0003_fill_discount_rate'" in source and "'0003_other_branch'" in source
    assert "  Branch 0003_fill_discount_rate" in result.lines
    assert "  Branch 0003_other_branch" in result.lines
    project.manage("migrate")
    assert project.sqlite_version() == {revision_of(merge)}
    assert project.manage("makemigrations", "--merge").lines == ["No conflicts detected to merge."]


def test_dropping_a_column_is_flagged_for_review_in_output_and_file(project):
    project.manage("migrate")
    project.edit(
        "project/models/catalogue.py",
        '    stock: Mapped[int | None] = mapped_column(sa.Integer(), server_default="0")\n',
        "",
    )

    result = project.manage("makemigrations")

    assert "    - Remove column stock from products" in result.lines
    assert "      ! Drops the column and its data." in result.lines
    (path,) = project.versions.glob("0004_*.py")
    assert path.name == "0004_remove_products_stock.py"
    assert "# Review before applying:" in path.read_text()


def test_makemigrations_creates_a_missing_migrations_folder(project):
    import shutil

    shutil.rmtree(project.path / "project" / "migrations")
    result = project.manage("makemigrations")
    assert (project.path / "project/migrations/env.py").exists()
    assert (project.versions / "0001_initial.py").exists()
    assert "Created the migrations folder" in result.stdout
    project.manage("migrate")
    assert project.alembic("current").returncode == 0
