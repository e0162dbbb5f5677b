"""sqlmanage's pytest plugin, run by pytest itself (pytester) on copies of the example project.

Each scenario writes a small test module into a copy of the example project and runs pytest
on it in a subprocess (the plugin imports the project's settings and models, which must not
leak between scenarios), then asserts on the outcomes and on what a developer reads.
The same module runs under pytest 8 in CI (.ci/run), so both major versions are covered.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import sqlalchemy as sa

from conftest import ROOT, direct_engine

pytest_plugins = ["pytester"]

QUIET = ["-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning", "-v"]


@pytest.fixture
def example(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytester's folder holding a copy of the example project, settings found via manage.py."""
    for name in ("DATABASE_URL", "SQLMANAGE_SETTINGS_MODULE", "PYTEST_ADDOPTS"):
        monkeypatch.delenv(name, raising=False)
    shutil.copy(ROOT / "manage.py", pytester.path)
    shutil.copy(ROOT / "alembic.ini", pytester.path)
    shutil.copytree(
        ROOT / "project",
        pytester.path / "project",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "db.sqlite3"),
    )
    return pytester


def add_migration(
    pytester: pytest.Pytester,
    revision: str,
    upgrade: str,
    downgrade: str,
    down_revision: str = "0003_fill_discount_rate",
) -> None:
    versions = pytester.path / "project" / "migrations" / "versions"
    (versions / f"{revision}.py").write_text(
        f'"""{revision}"""\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
        f"revision = {revision!r}\ndown_revision = {down_revision!r}\n"
        "branch_labels = None\ndepends_on = None\n\n\n"
        f"def upgrade():\n    {upgrade}\n\n\ndef downgrade():\n    {downgrade}\n"
    )


def add_discount_code_to_the_model(pytester: pytest.Pytester) -> None:
    models = pytester.path / "project" / "models" / "catalogue.py"
    text = models.read_text()
    models.write_text(
        text.replace(
            "    discount_rate: Mapped[float]",
            "    discount_code: Mapped[str | None] = mapped_column(sa.String(20))\n"
            "    discount_rate: Mapped[float]",
        )
    )


FIXTURE_TESTS = """
import pytest
import sqlalchemy as sa

from project.models.catalogue import Product


def test_migrated_db_is_a_new_database_at_head(migrated_db, tmp_path):
    {url_assertion}
    engine = sa.create_engine(migrated_db.replace("postgresql://", "postgresql+psycopg2://"))
    with engine.connect() as connection:
        tables = set(sa.inspect(connection).get_table_names())
        version = connection.exec_driver_sql("select version_num from {version_table}").scalar()
    engine.dispose()
    assert {{"categories", "products", "customers", "reviews"}} <= tables
    assert version == "0003_fill_discount_rate"


def test_db_session_writes_through_the_models(db_session):
    db_session.add(Product(name="Tea", price=3.5, discount_rate=0.1))
    db_session.commit()
    assert db_session.scalar(sa.select(Product.name)) == "Tea"


def test_each_test_gets_a_database_of_its_own(sqlmanage_engine):
    with sqlmanage_engine.connect() as connection:
        assert connection.scalar(sa.select(sa.func.count()).select_from(Product.__table__)) == 0


def test_migrator_fills_discount_rate_and_walks_back(migrator):
    assert migrator.current == ()
    assert migrator.migrate("0002") == ["0001_initial", "0002_add_products_discount_rate"]
    products = migrator.table("products")
    migrator.connection.execute(products.insert(), [{{"name": "Tea", "price": 3.5}}])

    assert migrator.migrate("0003") == ["0003_fill_discount_rate"]

    assert migrator.connection.execute(sa.select(products.c.discount_rate)).scalar_one() == 0.0
    assert migrator.table("products").c.discount_rate.nullable is False
    assert migrator.migrate("-1") == ["-0003_fill_discount_rate"]
    assert migrator.current == ("0002_add_products_discount_rate",)
    with pytest.raises(AssertionError, match="Cannot find a migration matching '0009'"):
        migrator.migrate("0009")


@pytest.mark.sqlmanage_db("sqlite")
def test_the_marker_picks_sqlite(sqlmanage_engine):
    assert sqlmanage_engine.dialect.name == "sqlite"
"""

CHECK_LINES = [
    "*sqlmanage::single_head PASSED*",
    "*sqlmanage::migrations_up_and_down PASSED*",
    "*sqlmanage::models_match_migrations PASSED*",
]


def test_fixtures_migrator_and_checks_pass_on_sqlite(example):
    """Settings named by the ini option; SQLite files in tmp_path; checks switched on in the ini."""
    (example.path / "project" / "test_settings.py").write_text(
        "from project.settings import *  # noqa: F403\nVERSION_TABLE = 'test_versions'\n"
    )
    example.makeini(
        "[pytest]\nsqlmanage_settings = project.test_settings\nsqlmanage_builtin_tests = true\n"
    )
    example.makepyfile(
        test_app=FIXTURE_TESTS.format(
            url_assertion="assert migrated_db == f\"sqlite:///{tmp_path / 'db.sqlite3'}\"",
            version_table="test_versions",
        )
    )

    result = example.runpytest_subprocess(*QUIET)

    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(CHECK_LINES, consecutive=False)
    assert not (example.path / "db.sqlite3").exists(), "the developer's database was touched"


@pytest.mark.postgres
def test_fixtures_and_checks_on_the_configured_postgresql(example, pg_url, monkeypatch):
    """--sqlmanage-db=configured: a database per test on the server, dropped afterwards."""
    monkeypatch.setenv("DATABASE_URL", pg_url)
    server_database = pg_url.rsplit("/", 1)[1]
    example.makepyfile(
        test_app=FIXTURE_TESTS.format(
            url_assertion=f"assert migrated_db.rsplit('/', 1)[1].startswith('test_{server_database}_')",
            version_table="alembic_version",
        )
    )

    result = example.runpytest_subprocess(
        "--sqlmanage-db=configured", "--sqlmanage-builtin-tests", *QUIET
    )

    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(CHECK_LINES, consecutive=False)
    engine = direct_engine(pg_url)
    with engine.connect() as connection:
        left = (
            connection.execute(
                sa.text("select datname from pg_database where datname like :name"),
                {"name": f"test_{server_database}%"},
            )
            .scalars()
            .all()
        )
    engine.dispose()
    assert left == []


def test_a_failing_downgrade_and_a_model_change_without_migration(example):
    add_migration(
        example,
        "0004_add_notes",
        'op.add_column("customers", sa.Column("notes", sa.Text()))',
        'raise NotImplementedError("notes are kept forever")',
    )
    add_discount_code_to_the_model(example)

    result = example.runpytest_subprocess("--sqlmanage-builtin-tests", *QUIET)

    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*sqlmanage: every migration upgrades and downgrades cleanly*",
            "0004_add_notes does not downgrade cleanly:",
            "  Unapplying 0004_add_notes failed: NotImplementedError: notes are kept forever",
            "*sqlmanage: the models match the migrations*",
            "Your models in 'project' have changes that are not yet reflected in a migration:",
            "  - Remove column notes from customers",
            "  + Add column discount_code to products",
            "Run 'python manage.py makemigrations' to make a migration for them. It would hold:",
            "*batch_op.add_column(sa.Column('discount_code', sa.String(length=20), nullable=True))",
        ]
    )
    assert "Traceback" not in result.stdout.str() and "sqlmanage/" not in result.stdout.str()


def test_a_downgrade_that_leaves_a_column_behind(example):
    add_migration(
        example,
        "0004_add_notes",
        'op.add_column("customers", sa.Column("notes", sa.Text()))',
        "pass",
    )

    result = example.runpytest_subprocess("--sqlmanage-builtin-tests", "-k", "up_and_down", *QUIET)

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "0004_add_notes does not downgrade cleanly: after its downgrade the schema is not what "
            "it was before its upgrade:",
            "  left behind: column customers.notes TEXT NULL",
            "Make downgrade() in 0004_add_notes.py undo everything upgrade() does.",
        ]
    )


def test_two_heads_fail_the_check_and_the_fixtures_say_why(example):
    add_migration(
        example,
        "0004_add_notes",
        'op.add_column("customers", sa.Column("notes", sa.Text()))',
        'op.drop_column("customers", "notes")',
    )
    add_migration(
        example,
        "0004_add_labels",
        'op.add_column("categories", sa.Column("label", sa.Text()))',
        'op.drop_column("categories", "label")',
    )
    example.makepyfile(test_app="def test_needs_a_database(migrated_db):\n    pass\n")

    result = example.runpytest_subprocess(
        "--sqlmanage-builtin-tests", "-k", "head or needs", *QUIET
    )

    result.assert_outcomes(failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*sqlmanage: the migration history has one head*",
            "The migration history of 'project' has 2 heads; it must have one:",
            "  0004_add_labels (after 0003_fill_discount_rate)",
            "  0004_add_notes (after 0003_fill_discount_rate)",
            "Run 'python manage.py makemigrations --merge' to merge them.",
        ],
        consecutive=True,
    )
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_needs_a_database*",
            "sqlmanage: Conflicting migrations detected; multiple heads in the migration history "
            "(0004_add_labels, 0004_add_notes in project).",
        ]
    )


def test_checks_stay_out_of_runs_that_do_not_ask_or_that_pick_files(example):
    example.makepyfile(test_app="def test_plain():\n    pass\n")
    example.makeini("[pytest]\nsqlmanage_builtin_tests = true\n")

    picked = example.runpytest_subprocess("test_app.py", *QUIET)
    example.makeini("[pytest]\n")
    off = example.runpytest_subprocess(*QUIET)

    picked.assert_outcomes(passed=1)
    off.assert_outcomes(passed=1)


def test_the_plugin_imports_neither_sqlalchemy_nor_alembic():
    code = (
        "import sys, sqlmanage.pytest_plugin\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'alembic', 'rich'}))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "[]"


@pytest.fixture
def nested(example: pytest.Pytester) -> pytest.Pytester:
    """The project one folder down (shop/), pytest run from the folder above, which has its own ini."""
    shop = example.path / "shop"
    shop.mkdir()
    for name in ("manage.py", "alembic.ini", "project"):
        shutil.move(example.path / name, shop / name)
    (shop / "tests").mkdir()
    (shop / "tests" / "test_shop.py").write_text(
        "import sqlalchemy as sa\n\n\ndef test_at_head(sqlmanage_engine):\n"
        "    with sqlmanage_engine.connect() as connection:\n"
        "        assert connection.exec_driver_sql('select version_num from alembic_version').scalar() "
        "== '0003_fill_discount_rate'\n"
    )
    example.makeini("[pytest]\n")  # the rootdir is the folder above the project
    return example


def test_the_project_is_found_from_the_folder_above_as_pytest_django_does(nested):
    """`pytest shop/tests` from above: the manage.py among the given paths' parents is the project."""
    result = nested.runpytest_subprocess("shop/tests", *QUIET)
    result.assert_outcomes(passed=1)


def test_the_project_is_found_through_the_ini_pythonpath_and_settings_option(nested):
    (nested.path / "shop" / "manage.py").unlink()
    nested.makeini("[pytest]\npythonpath = shop\nsqlmanage_settings = project.settings\n")
    by_ini = nested.runpytest_subprocess("shop/tests", *QUIET)
    by_ini.assert_outcomes(passed=1)
    nested.makeini("[pytest]\npythonpath = shop\n")
    by_folder = nested.runpytest_subprocess("shop/tests", *QUIET)  # the one settings package there
    by_folder.assert_outcomes(passed=1)
    nested.makeini("[pytest]\npythonpath = shop\n")
    by_option = nested.runpytest_subprocess(
        "shop/tests", "--sqlmanage-settings", "project.settings", *QUIET
    )
    by_option.assert_outcomes(passed=1)


def test_hints_name_pytest_options_not_settings(nested):
    (nested.path / "shop" / "manage.py").unlink()
    result = nested.runpytest_subprocess("shop/tests", *QUIET)
    result.assert_outcomes(errors=1)
    output = result.stdout.str()
    assert "sqlmanage: No settings module found." in output
    assert "--sqlmanage-settings project.settings" in output
    assert "sqlmanage_settings = project.settings" in output
    assert "'pythonpath'" in output
    assert " --settings" not in output
    wrong = nested.runpytest_subprocess("shop/tests", "--sqlmanage-settings", "shop.nope", *QUIET)
    wrong.assert_outcomes(errors=1)
    assert "Settings module 'shop.nope' cannot be found." in wrong.stdout.str()
    assert " --settings" not in wrong.stdout.str()
