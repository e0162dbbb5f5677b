"""Unit tests of settings resolution, database URLs and password redaction, in process.

Settings modules are real files in a temporary folder, imported as a command imports them;
each test uses a package name of its own, so the imports never meet.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

from sqlmanage.database import display_url, parse_url
from sqlmanage.errors import SettingsError
from sqlmanage.redaction import MASK, redact, register_secret
from sqlmanage.settings import database_url_variable, find_settings_module, load_settings


@pytest.fixture
def package(tmp_path, monkeypatch):
    """Write ``<unique package>/settings.py``; returns a function (text) -> module name."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "argv", ["manage.py"])  # a manage.py that is not in tmp_path
    for variable in ("DATABASE_URL", "SQLMANAGE_SETTINGS_MODULE", "DATABASE_URL_REPLICA"):
        monkeypatch.delenv(variable, raising=False)
    name = f"shop_{uuid.uuid4().hex[:10]}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")

    def write(text: str) -> str:
        (tmp_path / name / "settings.py").write_text(text)
        return f"{name}.settings"

    yield write
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


def test_defaults_put_everything_beside_settings_py(package, tmp_path):
    module = package("")
    settings = load_settings(module)
    package_dir = (tmp_path / module.split(".")[0]).resolve()
    default = settings.database("default")
    assert settings.base_dir == package_dir.parent
    assert default.url == f"sqlite:///{package_dir.parent / 'db.sqlite3'}"
    assert default.models == [f"{module.split('.')[0]}.models"]
    assert default.migrations == package_dir / "migrations"
    assert default.label == module.split(".")[0]
    assert (settings.version_table, settings.compare_type, settings.include_schemas) == (
        "alembic_version",
        True,
        False,
    )


def test_the_one_settings_package_in_the_folder_is_found_without_being_named(package):
    module = package("")
    assert find_settings_module() == module


def test_the_environment_beats_the_folder_and_an_explicit_name_beats_both(package, monkeypatch):
    package("")
    monkeypatch.setenv("SQLMANAGE_SETTINGS_MODULE", "other.settings")
    assert find_settings_module() == "other.settings"
    assert find_settings_module("third.settings") == "third.settings"
    with pytest.raises(SettingsError, match="'project/settings' is not a settings module name"):
        find_settings_module("project/settings")


def test_database_url_from_the_environment_overrides_the_settings(package, monkeypatch):
    module = package(
        'DATABASE_URL = "sqlite:///from_settings.db"\n'
        'DATABASES = {"replica": {"URL": "sqlite:///replica.db", "MIGRATIONS": "replica_migrations"}}\n'
    )
    assert load_settings(module).database(None).url == "sqlite:///from_settings.db"
    monkeypatch.setenv("DATABASE_URL", "sqlite:///from_env.db")
    monkeypatch.setenv("DATABASE_URL_REPLICA", "sqlite:///replica_env.db")
    settings = load_settings(module)
    assert settings.database("default").url == "sqlite:///from_env.db"
    replica = settings.database("replica")
    assert (replica.url, replica.label) == (
        "sqlite:///replica_env.db",
        f"{module.split('.')[0]}:replica",
    )
    assert replica.migrations == settings.base_dir / "replica_migrations"


def test_alias_variables_are_upper_case_with_underscores():
    assert database_url_variable("default") == "DATABASE_URL"
    assert database_url_variable("read-only.eu") == "DATABASE_URL_READ_ONLY_EU"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "COMPARE_TYPE = 'yes'\n",
            r"\.COMPARE_TYPE must be a boolean or the dotted path of a comparison function, not 'yes'",
        ),
        ("MODELS = 3\n", r"\.MODELS must be a string or a list of strings"),
        (
            "DATABASES = {'replica': {'URL': 'sqlite://', 'MODLES': []}}\n",
            r"unknown key\(s\): MODLES",
        ),
        ("DATABASES = {'replica': {}}\n", r"DATABASES\['replica'\] has no URL"),
        (
            "INCLUDE_OBJECT = 'not a path'\n",
            r"INCLUDE_OBJECT is 'not a path', which is not a dotted path",
        ),
        (
            "import nothing_here_at_all\n",
            r"raised ModuleNotFoundError: No module named 'nothing_here_at_all'",
        ),
        ("x = (\n", r"has a syntax error"),
    ],
)
def test_a_wrong_setting_is_a_message_naming_it(package, text, message):
    module = package(text)
    with pytest.raises(SettingsError, match=message):
        load_settings(module)


def test_an_unknown_alias_lists_the_known_ones(package):
    settings = load_settings(package("DATABASES = {'replica': {'URL': 'sqlite://'}}\n"))
    with pytest.raises(SettingsError, match="No database named 'archive'") as raised:
        settings.database("archive")
    assert raised.value.hint == "Known aliases: default, replica."


def test_a_url_password_is_masked_in_every_spelling():
    secret = f"pw-{uuid.uuid4().hex[:8]}/+&"
    register_secret(secret)
    text = f"plain {secret}, quoted {secret.replace('/', '%2F').replace('+', '%2B').replace('&', '%26')}"
    assert redact(text) == f"plain {MASK}, quoted {MASK}"
    assert redact("nothing secret here") == "nothing secret here"


def test_one_character_secrets_are_not_masked_everywhere():
    register_secret("e")
    register_secret(None)
    assert redact("every letter e stays") == "every letter e stays"


def test_parsing_a_url_registers_its_password_and_picks_the_installed_driver():
    secret = f"s3cret{uuid.uuid4().hex[:6]}"
    url = parse_url(f"postgres://app:{secret}@db.example:5432/shop?sslpassword=key{secret}")
    assert url.drivername == "postgresql+psycopg2"
    assert secret not in display_url(url)
    assert (
        display_url(url)
        == "postgresql+psycopg2://app:***@db.example:5432/shop?sslpassword=%2A%2A%2A"
    )
    assert redact(f"connection to {secret} failed") == f"connection to {MASK} failed"


def test_an_unparsable_url_is_shown_without_its_password():
    secret = f"hidden{uuid.uuid4().hex[:6]}"
    with pytest.raises(SettingsError) as raised:
        parse_url(f"postgresql://app:{secret}@db:notaport/shop")
    assert secret not in str(raised.value)
    assert "postgresql://app:***@db:notaport/shop" in raised.value.message


def test_an_at_sign_in_the_password_asks_for_percent_encoding():
    with pytest.raises(SettingsError, match="has an '@' in its password") as raised:
        parse_url("postgresql://app:p@ss@db/shop")
    assert "%40" in raised.value.hint


def test_a_settings_package_is_at_home_in_its_parent(package, tmp_path):
    module = package("")
    name = module.split(".")[0]
    folder = tmp_path / name
    (folder / "settings.py").unlink()
    (folder / "settings").mkdir()
    (folder / "settings" / "__init__.py").write_text("")
    (folder / "settings" / "prod.py").write_text("VERSION_TABLE = 'shop_versions'\n")
    settings = load_settings(f"{name}.settings.prod")
    assert settings.version_table == "shop_versions"
    assert settings.database(None).migrations == folder.resolve() / "migrations"
    assert settings.database(None).models == [f"{name}.models"]
    assert Path(settings.base_dir) == folder.resolve().parent
