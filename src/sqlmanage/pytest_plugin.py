"""sqlmanage's pytest plugin: migrated test databases, a migrator, and ready migration checks.

Installed with sqlmanage (a ``pytest11`` entry point named ``sqlmanage``; ``-p no:sqlmanage``
turns it off). Nothing happens until a test asks for a fixture or the checks are switched
on, and importing this module imports neither SQLAlchemy nor Alembic.

Fixtures:
    migrated_db        URL of a fresh database migrated to head (one per test)
    sqlmanage_engine   a SQLAlchemy Engine on it
    db_session         a Session on it
    migrator           a fresh empty database and ``migrate(target)``, for data migrations
    sqlmanage_settings the project's settings (session-wide)

Options (command line, or the same name without dashes in the ini file):
    --sqlmanage-db sqlite|configured   SQLite files (default) or the configured database's
                                       server (a new database per test, dropped afterwards)
    --sqlmanage-settings MODULE        the settings module, when manage.py does not say it;
                                       the project is the folder with a manage.py among the
                                       paths given, the rootdir, the current folder (and
                                       their parents) and the ini option pythonpath
    --sqlmanage-builtin-tests          add the checks: one head, every migration up and
                                       down, models match the migrations
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

KIND_OPTION = "sqlmanage_db"
SETTINGS_OPTION = "sqlmanage_settings"
BUILTIN_OPTION = "sqlmanage_builtin_tests"
MARKER = "sqlmanage_db"
CHECKS = {
    "single_head": "the migration history has one head",
    "migrations_up_and_down": "every migration upgrades and downgrades cleanly",
    "models_match_migrations": "the models match the migrations",
}
CHECKS_NODE_NAME = "sqlmanage"
MANAGE_PY_DEFAULT = re.compile(
    r"""setdefault\(\s*["']SQLMANAGE_SETTINGS_MODULE["']\s*,\s*["']([\w.]+)["']"""
)

_settings_key = pytest.StashKey[object]()
_checks_bound_key = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sqlmanage", "sqlmanage: migrated test databases and migration checks")
    group.addoption(
        "--sqlmanage-db",
        dest=KIND_OPTION,
        choices=("sqlite", "configured"),
        default=None,
        help="Where test databases are made: 'sqlite' files (default), or 'configured': a new "
        "database per test on the server of DATABASE_URL / the settings, dropped afterwards.",
    )
    group.addoption(
        "--sqlmanage-settings",
        dest=SETTINGS_OPTION,
        default=None,
        metavar="MODULE",
        help="The settings module (default: SQLMANAGE_SETTINGS_MODULE, the ini option, or "
        "the default of the manage.py found among the paths given, the rootdir and the current "
        "folder, or their parents).",
    )
    group.addoption(
        "--sqlmanage-builtin-tests",
        dest=BUILTIN_OPTION,
        action="store_true",
        default=None,
        help="Add sqlmanage's migration checks to the run: one head, every migration upgrades "
        "and downgrades cleanly, the models match the migrations.",
    )
    parser.addini(KIND_OPTION, "sqlmanage: 'sqlite' (default) or 'configured'.", default="sqlite")
    parser.addini(SETTINGS_OPTION, "sqlmanage: the settings module, e.g. project.settings.")
    parser.addini(
        BUILTIN_OPTION, "sqlmanage: run the migration checks.", type="bool", default=False
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(kind): make this test's database with 'sqlite' or on the 'configured' server.",
    )


# Settings: found as manage.py finds them.


def project_settings(config: pytest.Config):
    """The project's settings, loaded once per run; a SqlmanageError names what is wrong."""
    if _settings_key not in config.stash:
        config.stash[_settings_key] = _load_settings(config)
    return config.stash[_settings_key]


def _load_settings(config: pytest.Config):
    """Settings found as pytest-django finds a project, wherever pytest runs.

    The project folder is the first one with a manage.py among the paths pytest was given
    and their parents, the rootdir and its parents, the current folder and its parents, and
    the ini option ``pythonpath``'s folders. The module: --sqlmanage-settings, else
    SQLMANAGE_SETTINGS_MODULE, else the ini option sqlmanage_settings, else manage.py's
    default, else the one package with a settings.py in the project folder or a pythonpath
    folder.
    """
    from sqlmanage.errors import SettingsError
    from sqlmanage.settings import ENV_SETTINGS, find_settings_module, load_settings

    candidates = _candidate_dirs(config)
    project_dir = next((d for d in candidates if (d / "manage.py").is_file()), None)
    if project_dir is not None and str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))
    search = [project_dir] if project_dir else []
    search += [d for d in _pythonpath_dirs(config) if d != project_dir]
    module = (
        config.getoption(SETTINGS_OPTION)
        or os.environ.get(ENV_SETTINGS)
        or config.getini(SETTINGS_OPTION)
        or (_manage_py_default(project_dir) if project_dir else None)
        or next(filter(None, (_only_settings_package(d) for d in search)), None)
    )
    try:
        return load_settings(find_settings_module(module))
    except SettingsError as exc:
        raise SettingsError(exc.message, hint=_pytest_hint(exc, project_dir)) from exc


def _candidate_dirs(config: pytest.Config) -> list[Path]:
    """Where a manage.py may be: the paths pytest was given, the rootdir, the current folder
    (each with its parents), then the ini option pythonpath's folders."""
    base = Path(config.invocation_params.dir)
    starts = []
    for arg in config.args:
        if not arg.startswith("-"):
            path = Path(os.path.abspath(base / arg.split("::")[0]))
            starts.append(path if path.is_dir() else path.parent)
    starts += [config.rootpath, base]
    found: list[Path] = []
    for start in starts:
        for directory in (start, *start.parents):
            if directory not in found:
                found.append(directory)
    found += [d for d in _pythonpath_dirs(config) if d not in found]
    return found


def _pythonpath_dirs(config: pytest.Config) -> list[Path]:
    try:
        entries = config.getini("pythonpath")
    except ValueError:  # pytest without the pythonpath ini option
        return []
    return [Path(os.path.abspath(config.rootpath / entry)) for entry in entries]


def _pytest_hint(exc, project_dir: Path | None) -> str | None:
    """A settings error's hint in pytest's words: its options, not manage.py's --settings."""
    from sqlmanage.settings import ENV_SETTINGS

    if not exc.hint or "--settings" not in exc.hint:
        return exc.hint  # a settings module that fails to import: its own hint says what to fix
    where = (
        f"manage.py was found in {project_dir}"
        if project_dir
        else "no manage.py was found in the paths given to pytest, the rootdir, the current "
        "folder or their parents"
    )
    return (
        "Name the settings module with pytest's --sqlmanage-settings project.settings, the ini "
        f"option 'sqlmanage_settings = project.settings' or {ENV_SETTINGS}; add the project's "
        f"folder to the ini option 'pythonpath' when pytest runs from elsewhere ({where})."
    )


def _manage_py_default(directory: Path) -> str | None:
    """The settings module that manage.py sets as its default (Django's layout)."""
    manage_py = directory / "manage.py"
    if not manage_py.is_file():
        return None
    found = MANAGE_PY_DEFAULT.search(manage_py.read_text(encoding="utf-8", errors="replace"))
    return found.group(1) if found else None


def _only_settings_package(directory: Path) -> str | None:
    """The one package in the project folder that has a settings.py, as manage.py falls back to."""
    found = sorted(
        p.name for p in directory.iterdir() if p.is_dir() and (p / "settings.py").is_file()
    )
    return f"{found[0]}.settings" if len(found) == 1 else None


def _kind(config: pytest.Config, node=None) -> str:
    marker = node.get_closest_marker(MARKER) if node is not None else None
    if marker is not None:
        kind = marker.args[0] if marker.args else marker.kwargs.get("kind")
        if kind not in ("sqlite", "configured"):
            raise pytest.UsageError(
                f"@pytest.mark.{MARKER} takes 'sqlite' or 'configured', not {kind!r}."
            )
        return kind
    kind = config.getoption(KIND_OPTION) or config.getini(KIND_OPTION) or "sqlite"
    if kind not in ("sqlite", "configured"):
        raise pytest.UsageError(f"{KIND_OPTION} must be 'sqlite' or 'configured', not {kind!r}.")
    return kind


def _fail(exc) -> None:
    """A sqlmanage error in a fixture: its message and hint, no traceback into sqlmanage."""
    from sqlmanage.testing.checks import explain

    raise pytest.fail.Exception(f"sqlmanage: {explain(exc)}", pytrace=False) from None


# Fixtures.


@pytest.fixture(scope="session")
def sqlmanage_settings(pytestconfig: pytest.Config):
    """The project's settings (sqlmanage.settings.Settings), found as manage.py finds them."""
    from sqlmanage.errors import SqlmanageError

    try:
        return project_settings(pytestconfig)
    except SqlmanageError as exc:
        _fail(exc)


@pytest.fixture
def _sqlmanage_fresh_database(request: pytest.FixtureRequest, tmp_path: Path, sqlmanage_settings):
    """A new empty database for this test (SQLite file, or on the configured server)."""
    from sqlmanage.errors import SqlmanageError
    from sqlmanage.testing.databases import create_database

    kind = _kind(request.config, request.node)
    try:
        fresh = create_database(sqlmanage_settings.database(None).url, kind, tmp_path)
    except SqlmanageError as exc:
        _fail(exc)
    try:
        yield fresh
    finally:
        fresh.drop()


@pytest.fixture
def migrated_db(_sqlmanage_fresh_database, sqlmanage_settings) -> str:
    """The URL of a fresh database migrated to head by sqlmanage's migrate (one per test)."""
    from sqlmanage.engine.apply import apply_migrations
    from sqlmanage.errors import SqlmanageError
    from sqlmanage.testing.databases import project_for

    url = _sqlmanage_fresh_database.url
    try:
        apply_migrations(project_for(sqlmanage_settings, url), None, on_event=_ignore)
    except SqlmanageError as exc:
        _fail(exc)
    return url


@pytest.fixture
def sqlmanage_engine(migrated_db: str):
    """A SQLAlchemy Engine on ``migrated_db`` (synchronous, also for an async URL)."""
    from sqlmanage.testing.migrator import sync_engine

    engine = sync_engine(migrated_db)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def db_session(sqlmanage_engine):
    """A SQLAlchemy Session on ``migrated_db``; commit freely, the database is this test's own."""
    from sqlalchemy.orm import Session

    with Session(sqlmanage_engine) as session:
        yield session


@pytest.fixture
def migrator(_sqlmanage_fresh_database, sqlmanage_settings):
    """A Migrator on a fresh empty database: ``migrate("0002")``, insert, ``migrate("0003")``."""
    from sqlmanage.testing.databases import project_for
    from sqlmanage.testing.migrator import Migrator

    url = _sqlmanage_fresh_database.url
    walker = Migrator(project_for(sqlmanage_settings, url), url)
    try:
        yield walker
    finally:
        walker.close()


def _ignore(*event) -> None:
    """Migrations under test run quietly; failures raise."""


# The built-in checks: collected beside the first directory the run was asked to collect.


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    """Add the checks to the first directory given (or testpaths), when they are switched on.

    They run with ``pytest`` or ``pytest tests/``, not when single files or tests are
    picked, and only once per run.
    """
    report = yield
    config = collector.config
    if (
        report.passed
        and isinstance(collector, pytest.Directory)
        and not config.stash.get(_checks_bound_key, False)
        and _checks_enabled(config)
        and collector.path in _initial_directories(config)
    ):
        config.stash[_checks_bound_key] = True
        report.result.append(
            SqlmanageChecks.from_parent(collector, path=collector.path / CHECKS_NODE_NAME)
        )
    return report


def _checks_enabled(config: pytest.Config) -> bool:
    option = config.getoption(BUILTIN_OPTION)
    return bool(option) if option is not None else bool(config.getini(BUILTIN_OPTION))


def _initial_directories(config: pytest.Config) -> list[Path]:
    base = Path(config.invocation_params.dir)
    found = []
    for arg in config.args:
        path = Path(os.path.abspath(base / arg.split("::")[0]))
        if path.is_dir():
            found.append(path)
    return found


class SqlmanageChecks(pytest.File):
    """The migration checks of the project, as one collector of three tests."""

    def collect(self):
        for name in CHECKS:
            yield SqlmanageCheck.from_parent(self, name=name)


class SqlmanageCheck(pytest.Item):
    """One migration check, run on a fresh database of the chosen kind."""

    def runtest(self) -> None:
        import tempfile

        from sqlmanage.testing import checks
        from sqlmanage.testing.databases import create_database, project_for

        settings = project_settings(self.config)
        configured_url = settings.database(None).url
        if self.name == "single_head":
            checks.single_head(project_for(settings, configured_url))
            return
        check = checks.up_and_down if self.name == "migrations_up_and_down" else checks.models_match
        with tempfile.TemporaryDirectory(prefix="sqlmanage-") as directory:
            fresh = create_database(configured_url, _kind(self.config), Path(directory))
            try:
                check(project_for(settings, fresh.url))
            finally:
                fresh.drop()

    def repr_failure(self, excinfo, style=None):
        """The check's own explanation, not a traceback through sqlmanage."""
        from sqlmanage.errors import SqlmanageError
        from sqlmanage.testing.checks import MigrationCheckFailed, explain

        error = excinfo.value
        if isinstance(error, MigrationCheckFailed):
            return str(error)
        if isinstance(error, SqlmanageError):
            return explain(error)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"sqlmanage: {CHECKS[self.name]}"
