"""Finding the settings as Django does, DATABASE_URL, several databases."""

from __future__ import annotations

import sqlite3
import sys


def write_other_settings(project, filename: str = "other.sqlite3") -> None:
    (project.path / "project" / "other_settings.py").write_text(
        "from project.settings import *  # noqa: F401,F403\n"
        f"DATABASE_URL = f\"sqlite:///{{BASE_DIR / '{filename}'}}\"\n"
    )


def applied(path) -> set[str]:
    with sqlite3.connect(path) as connection:
        return {v for (v,) in connection.execute("select version_num from alembic_version")}


def test_settings_option_beats_the_environment_which_beats_manage_py(project):
    write_other_settings(project)
    other = project.path / "other.sqlite3"

    project.manage("migrate", "0001", "--settings", "project.other_settings")
    assert applied(other) == {"0001_initial"} and not project.sqlite_file.exists()

    env = {"SQLMANAGE_SETTINGS_MODULE": "project.other_settings"}
    project.manage("migrate", "0002", env=env)
    assert (
        applied(other) == {"0002_add_products_discount_rate"} and not project.sqlite_file.exists()
    )

    project.manage("migrate", "0001", "--settings", "project.settings", env=env)
    assert applied(project.sqlite_file) == {"0001_initial"}
    assert applied(other) == {"0002_add_products_discount_rate"}


def test_without_any_setting_the_package_beside_manage_py_is_found(project):
    result = project.run("migrate", program=[sys.executable, "-m", "sqlmanage"])
    assert result.returncode == 0, result.stderr
    assert applied(project.sqlite_file) == {"0003_fill_discount_rate"}


def test_several_settings_packages_need_a_choice(project):
    (project.path / "second").mkdir()
    (project.path / "second" / "settings.py").write_text("")
    result = project.run("showmigrations", program=[sys.executable, "-m", "sqlmanage"])
    assert result.returncode == 1
    assert "Several packages" in result.stderr and "--settings" in result.stderr


def test_database_url_environment_variable_overrides_the_settings(project):
    elsewhere = project.path / "elsewhere.sqlite3"
    project.manage("migrate", env={"DATABASE_URL": f"sqlite:///{elsewhere}"})
    assert applied(elsewhere) == {"0003_fill_discount_rate"}
    assert not project.sqlite_file.exists()


def test_database_option_picks_an_alias_from_databases(project):
    with (project.path / "project" / "settings.py").open("a") as settings:
        settings.write(
            '\nDATABASES = {"reporting": {"URL": f"sqlite:///{BASE_DIR / \'reporting.sqlite3\'}"}}\n'
        )
    project.manage("migrate", "0001", "--database", "reporting")
    assert applied(project.path / "reporting.sqlite3") == {"0001_initial"}
    assert not project.sqlite_file.exists()
    unknown = project.run("migrate", "--database", "nope")
    assert unknown.returncode == 1
    assert "No database named 'nope'" in unknown.stderr and "reporting" in unknown.stderr


def test_models_setting_names_what_to_import(project):
    """MODELS can point at a single module; only its tables reach the migration."""
    for path in project.versions.glob("*.py"):
        path.unlink()
    with (project.path / "project" / "settings.py").open("a") as settings:
        settings.write('\nMODELS = ["project.models.catalogue"]\n')
    result = project.manage("makemigrations", "--dry-run")
    assert "    + Create table products" in result.lines
    assert not any("reviews" in line for line in result.lines)


def _settings_package(project, extra: str = "") -> None:
    """project/settings.py becomes project/settings/__init__.py, with no MIGRATIONS or BASE_DIR."""
    (project.path / "project" / "settings.py").unlink()
    package = project.path / "project" / "settings"
    package.mkdir()
    (package / "__init__.py").write_text(
        f'DATABASE_URL = "sqlite:///{project.sqlite_file}"\n' + extra
    )


def test_a_settings_package_finds_the_migrations_and_models_beside_it(project):
    _settings_package(project)
    shown = project.manage("showmigrations", "--format", "plain")
    assert " [ ] 0001_initial" in shown.lines and " [ ] 0003_fill_discount_rate" in shown.lines
    project.manage("migrate")
    assert project.manage("makemigrations", "--check").returncode == 0
    assert not (project.path / "project" / "settings" / "migrations").exists()


def test_a_module_inside_a_settings_package_finds_them_too(project):
    _settings_package(project)
    (project.path / "project" / "settings" / "production.py").write_text(
        f'DATABASE_URL = "sqlite:///{project.path / "prod.sqlite3"}"\n'
    )
    project.manage("migrate", "--settings", "project.settings.production")
    shown = project.manage(
        "showmigrations", "--format", "plain", "--settings", "project.settings.production"
    )
    assert " [X] 0003_fill_discount_rate" in shown.lines


def test_makemigrations_never_starts_a_second_history_beside_one(project):
    project.edit(
        "project/settings.py",
        'MIGRATIONS = BASE_DIR / "project" / "migrations"',
        'MIGRATIONS = BASE_DIR / "project" / "db" / "migrations"',
    )
    before = sorted(
        p.relative_to(project.path) for p in project.path.rglob("*") if "__pycache__" not in p.parts
    )
    result = project.run("makemigrations", "--noinput")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "holds a history of 3 migrations" in result.stderr
    assert "second history" in result.stderr and "Set MIGRATIONS" in result.stderr
    assert "Traceback" not in result.stderr
    after = sorted(
        p.relative_to(project.path) for p in project.path.rglob("*") if "__pycache__" not in p.parts
    )
    assert after == before
