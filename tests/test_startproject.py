"""startproject writes a project that makemigrations, migrate and plain alembic use unedited."""

from __future__ import annotations

import os
import sys
from importlib.resources import files
from pathlib import Path

import pytest

from conftest import Project, inspect_schema
from sqlmanage.cli import main

SQLMANAGE_MODULE = [sys.executable, "-m", "sqlmanage"]
CONSOLE_SCRIPT = [str(Path(sys.executable).with_name("sqlmanage"))]
SKELETON = [
    "alembic.ini",
    "manage.py",
    "shop/__init__.py",
    "shop/migrations/env.py",
    "shop/migrations/script.py.mako",
    "shop/models/__init__.py",
    "shop/models/base.py",
    "shop/settings.py",
]
CATALOGUE = """import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from shop.models.base import Base


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
"""


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def start(tmp_path: Path, *args: str, program=SQLMANAGE_MODULE) -> Project:
    """Run startproject in tmp_path (outside any project) and return the new project."""
    result = Project(tmp_path).run("startproject", "shop", *args, program=program)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.lines == [
        f"Created the project 'shop' in {tmp_path / 'shop'}",
        "",
        "Next steps:",
        "  cd shop",
        "  # add your models to shop/models/ (e.g. shop/models/catalogue.py)",
        "  python manage.py makemigrations",
        "  python manage.py migrate",
    ]
    return Project(tmp_path / "shop")


def full_cycle(shop: Project, env: dict[str, str], inspect_url: str) -> None:
    """A model, makemigrations, migrate, showmigrations; then a change applied by plain alembic."""
    (shop.path / "shop" / "models" / "catalogue.py").write_text(CATALOGUE)
    made = shop.manage("makemigrations", env=env)
    assert made.lines == [
        "Migrations for 'shop':",
        "  shop/migrations/versions/0001_initial.py",
        "    + Create table products",
    ]
    assert "Applying 0001_initial... OK" in shop.manage("migrate", env=env).stdout
    assert shop.manage("showmigrations", env=env).lines == ["shop", " [X] 0001_initial"]
    assert inspect_schema(inspect_url)["products"] == {"id", "name"}

    shop.edit("shop/models/catalogue.py", "    name:", "    price: Mapped[float | None]\n    name:")
    assert shop.manage("makemigrations", env=env).lines[-1] == "    + Add column price to products"
    upgraded = shop.alembic("upgrade", "head", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    current = shop.alembic("current", env=env)
    assert current.returncode == 0, current.stderr
    assert current.stdout.strip() == "0002_add_products_price (head)"
    assert inspect_schema(inspect_url)["products"] == {"id", "name", "price"}


@pytest.mark.parametrize(
    "template, program", [("default", CONSOLE_SCRIPT), ("async", SQLMANAGE_MODULE)]
)
def test_a_new_project_runs_the_whole_cycle_on_sqlite(tmp_path, template, program):
    shop = start(tmp_path, "--template", template, program=program)
    assert files_under(shop.path) == SKELETON
    assert (shop.path / "shop" / "migrations" / "versions").is_dir()
    assert os.access(shop.path / "manage.py", os.X_OK)
    migrations_templates = files("sqlmanage") / "templates" / "migrations"
    for name in ("env.py", "script.py.mako"):
        assert (shop.path / "shop" / "migrations" / name).read_text() == (
            migrations_templates / name
        ).read_text()
    assert (
        'os.environ.setdefault("SQLMANAGE_SETTINGS_MODULE", "shop.settings")'
        in (shop.path / "manage.py").read_text()
    )
    ini = (shop.path / "alembic.ini").read_text()
    assert (
        "script_location = shop/migrations\n" in ini
        and "sqlmanage_settings = shop.settings\n" in ini
    )
    settings = (shop.path / "shop" / "settings.py").read_text()
    if template == "async":
        assert "DATABASE_URL = f\"sqlite+aiosqlite:///{BASE_DIR / 'db.sqlite3'}\"" in settings
        assert "postgresql+asyncpg://" in settings
    else:
        assert "DATABASE_URL = f\"sqlite:///{BASE_DIR / 'db.sqlite3'}\"" in settings
    assert (
        "naming_convention=NAMING_CONVENTION"
        in (shop.path / "shop" / "models" / "base.py").read_text()
    )

    full_cycle(shop, {}, f"sqlite:///{shop.path / 'db.sqlite3'}")


@pytest.mark.postgres
@pytest.mark.parametrize("template", ["default", "async"])
def test_a_new_project_runs_the_whole_cycle_on_postgresql(tmp_path, pg_url, template):
    shop = start(tmp_path, "--template", template)
    url = (
        pg_url.replace("postgresql://", "postgresql+asyncpg://") if template == "async" else pg_url
    )
    full_cycle(shop, {"DATABASE_URL": url}, pg_url)
    assert not (shop.path / "db.sqlite3").exists()


def run_in(folder: Path, *args: str, capsys) -> tuple[int, str, str]:
    """startproject in-process (it needs no project), from ``folder``; sys.path is restored."""
    cwd, path = os.getcwd(), list(sys.path)
    os.chdir(folder)
    try:
        code = main(["startproject", *args])
    finally:
        os.chdir(cwd)
        sys.path[:] = path
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_into_an_existing_directory_and_never_over_a_file(tmp_path, capsys):
    here = tmp_path / "here"
    here.mkdir()
    code, out, err = run_in(here, "shop", ".", capsys=capsys)
    assert (code, err) == (0, "")
    assert "  cd " not in out and "  python manage.py migrate" in out
    assert files_under(here) == SKELETON

    target = tmp_path / "other"
    (target / "shop").mkdir(parents=True)
    (target / "alembic.ini").write_text("[alembic]\n")
    (target / "shop" / "settings.py").write_text("DATABASE_URL = 'mine'\n")
    code, out, err = run_in(tmp_path, "shop", "other", capsys=capsys)
    assert code == 1 and out == ""
    assert err.splitlines() == [
        "Error: Not overwriting existing files; nothing was written:",
        f"  {target / 'alembic.ini'}",
        f"  {target / 'shop' / 'settings.py'}",
        "Move them away, or start the project in another directory.",
    ]
    assert files_under(target) == ["alembic.ini", "shop/settings.py"]
    assert (target / "shop" / "settings.py").read_text() == "DATABASE_URL = 'mine'\n"

    (tmp_path / "blocked").mkdir()
    (tmp_path / "blocked" / "shop").write_text("a file where the package goes")
    code, _, err = run_in(tmp_path, "shop", "blocked", capsys=capsys)
    assert code == 1 and err.splitlines()[1:2] == [f"  {tmp_path / 'blocked' / 'shop'}"]
    assert files_under(tmp_path / "blocked") == ["shop"]

    (tmp_path / "shop").mkdir()
    code, _, err = run_in(tmp_path, "shop", capsys=capsys)
    assert code == 1
    assert err.startswith(f"Error: '{tmp_path / 'shop'}' already exists\n")

    code, _, err = run_in(tmp_path, "shop", "missing", capsys=capsys)
    assert code == 1
    assert (
        err
        == f"Error: Destination directory '{tmp_path / 'missing'}' does not exist, please create it first.\n"
    )
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize(
    "name, message",
    [
        (
            "my-shop",
            "'my-shop' is not a valid project name. Please make sure the name is a valid identifier.",
        ),
        (
            "1shop",
            "'1shop' is not a valid project name. Please make sure the name is a valid identifier.",
        ),
        (
            "class",
            "'class' is not a valid project name. Please make sure the name is a valid identifier.",
        ),
        (
            "os",
            "'os' conflicts with the name of an existing Python module and cannot be used as a project "
            "name. Please try another name.",
        ),
        (
            "sqlalchemy",
            "'sqlalchemy' conflicts with the name of an existing Python module and cannot be "
            "used as a project name. Please try another name.",
        ),
    ],
)
def test_a_name_that_cannot_be_the_package_is_refused(tmp_path, capsys, name, message):
    code, out, err = run_in(tmp_path, name, capsys=capsys)
    assert (code, out) == (1, "")
    assert err.splitlines()[0] == f"Error: {message}"
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_template_is_a_usage_error(tmp_path):
    result = Project(tmp_path).run(
        "startproject", "shop", "--template", "fancy", program=SQLMANAGE_MODULE
    )
    assert result.returncode == 2
    assert "'fancy' is not one of 'default', 'async'" in result.stderr
    assert list(tmp_path.iterdir()) == []
