"""Engines from URLs: driver choice, async support, friendly connection errors, no passwords.

Every connection sqlmanage opens goes through ``connect``, so a missing driver or an
unreachable server becomes one clear message wherever it happens, and an async URL
(``postgresql+asyncpg://``, ``sqlite+aiosqlite://``) runs the same synchronous code through
``run_sync``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlmanage.errors import DatabaseUnavailable, DriverMissing, SettingsError, SqlmanageError
from sqlmanage.redaction import redact, register_secret

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection

T = TypeVar("T")

CONNECT_TIMEOUT_SECONDS = 10
SECRET_QUERY_KEYS = ("password", "sslpassword", "passwd", "sslkey_password")

# For URLs that name no driver: the drivers to try, in order, by importable module.
DEFAULT_DRIVERS = {
    "postgresql": [("psycopg2", "psycopg2"), ("psycopg", "psycopg"), ("pg8000", "pg8000")],
    "mysql": [("mysqldb", "MySQLdb"), ("pymysql", "pymysql")],
    "mariadb": [("mysqldb", "MySQLdb"), ("pymysql", "pymysql")],
}

# Scheme aliases that dj-database-url and hosting platforms (Heroku, Render, Fly) use.
SCHEME_ALIASES = {"postgres": "postgresql", "pgsql": "postgresql"}

# The extra of sqlmanage that installs a driver, for the "missing driver" hint.
DRIVER_EXTRAS = {"pymysql": "mysql", "asyncpg": "async", "aiosqlite": "async"}

# SQLAlchemy's driver name for a DBAPI module that failed to import (a bare mysql:// URL).
DRIVER_MODULES = {
    "MySQLdb": "mysqldb",
    "psycopg2": "psycopg2",
    "psycopg": "psycopg",
    "pymysql": "pymysql",
}

# The pip package that provides each driver, for the "missing driver" hint.
DRIVER_PACKAGES = {
    "psycopg2": "psycopg2-binary",
    "psycopg": "psycopg[binary]",
    "psycopg_async": "psycopg[binary]",
    "asyncpg": "asyncpg",
    "pg8000": "pg8000",
    "pymysql": "pymysql",
    "mysqldb": "mysqlclient",
    "aiomysql": "aiomysql",
    "asyncmy": "asyncmy",
    "aiosqlite": "aiosqlite",
}


def parse_url(raw: str) -> URL:
    """Parse a database URL, remember its password for redaction, and pick an installed driver."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):
        raise SettingsError(
            f"DATABASE_URL is not a valid SQLAlchemy URL: '{redact(_mask_raw_url(raw))}'.",
            hint="It looks like dialect+driver://user:password@host:port/dbname, "
            "e.g. postgresql://postgres@127.0.0.1/app or sqlite:///db.sqlite3.",
        ) from None
    register_secret(url.password)
    backend, plus, driver = url.drivername.partition("+")
    if backend in SCHEME_ALIASES:
        url = url.set(drivername=SCHEME_ALIASES[backend] + plus + driver)
    for key in SECRET_QUERY_KEYS:
        register_secret(value if isinstance(value := url.query.get(key), str) else None)
    if url.host and "@" in url.host:
        raise SettingsError(
            "DATABASE_URL has an '@' in its password or user name.",
            hint="Percent-encode it as %40 (e.g. postgresql://user:p%40ss@host/db).",
        )
    return _with_installed_driver(url)


def _mask_raw_url(raw: str) -> str:
    """Mask everything that may be a password in a URL SQLAlchemy could not parse."""
    scheme, sep, rest = raw.partition("://")
    if not sep:
        scheme, rest = "", raw
    userinfo, at, host = rest.rpartition("@")
    if at:
        user, _, password = userinfo.partition(":")
        register_secret(password)
        rest = f"{user}:***@{host}" if password else f"{user}@{host}"
    return f"{scheme}{sep}{rest}"


def _with_installed_driver(url: URL) -> URL:
    """Give a bare ``postgresql://`` or ``mysql://`` the driver that is actually installed.

    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3, 2.0 to psycopg2; sqlmanage
    installs psycopg2-binary, so the URL must work with whichever one is there.
    """
    if "+" in url.drivername:
        return url
    for driver, module in DEFAULT_DRIVERS.get(url.drivername, []):
        if importlib.util.find_spec(module) is not None:
            return url.set(drivername=f"{url.drivername}+{driver}")
    return url


def display_url(url: URL) -> str:
    """The URL as it may be shown to a user: passwords masked, also in its query string."""
    hidden = {key: "***" for key in SECRET_QUERY_KEYS if key in url.query}
    return url.update_query_dict(hidden).render_as_string(hide_password=True)


def is_async(url: URL) -> bool:
    driver = url.drivername.partition("+")[2]
    return driver in {"asyncpg", "aiosqlite", "aiomysql", "asyncmy", "psycopg_async"}


def sqlite_file(url: URL) -> Path | None:
    """The file behind an SQLite URL, or None for other databases and in-memory SQLite."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def is_empty_sqlite(url: URL) -> bool:
    """True when an SQLite database file does not exist yet: it has no tables to read."""
    path = sqlite_file(url)
    return path is not None and not path.exists()


def create_engine(url: URL, **kwargs: Any):
    """Create an Engine (or AsyncEngine) for migration work: no pool, a connect timeout.

    On SQLite (pysqlite) the engine emits BEGIN itself, so DDL runs inside the transaction
    and a failing migration rolls back completely (pysqlite would otherwise autocommit DDL).
    """
    from sqlalchemy import create_engine as sa_create_engine, event, pool
    from sqlalchemy.exc import NoSuchModuleError

    kwargs.setdefault("poolclass", pool.NullPool)
    if url.get_backend_name() == "sqlite":
        # Batch rebuilds reflect a fresh Table per migration, so every statement is new and
        # each cached one pins its reflected tables: 100 MiB over a long history, for nothing.
        kwargs.setdefault("query_cache_size", 0)
    connect_args = dict(kwargs.pop("connect_args", {}))
    _add_connect_args(url, connect_args)
    try:
        if is_async(url):
            from sqlalchemy.ext.asyncio import create_async_engine

            engine: Any = create_async_engine(url, connect_args=connect_args, **kwargs)
        else:
            engine = sa_create_engine(url, connect_args=connect_args, **kwargs)
    except NoSuchModuleError:
        raise SettingsError(
            f"SQLAlchemy has no dialect for '{url.drivername}' (in {display_url(url)}).",
            hint="Use a URL such as postgresql://, postgresql+asyncpg://, mysql+pymysql:// "
            "or sqlite:///db.sqlite3.",
        ) from None
    except ImportError as exc:
        raise _driver_missing(url, exc) from None
    if url.get_backend_name() == "sqlite":
        core = getattr(engine, "sync_engine", engine)
        event.listen(core, "connect", _sqlite_manual_transactions)
        event.listen(core, "begin", _sqlite_begin)
    return engine


def _sqlite_manual_transactions(dbapi_connection, connection_record) -> None:
    dbapi_connection.isolation_level = None


def _sqlite_begin(connection) -> None:
    connection.exec_driver_sql("BEGIN")


def _add_connect_args(url: URL, connect_args: dict) -> None:
    """A connect timeout, and ``application_name=sqlmanage`` where PostgreSQL shows it."""
    backend, _, driver = url.drivername.partition("+")
    if backend == "postgresql" and driver in ("psycopg2", "psycopg", ""):
        if "connect_timeout" not in url.query:
            connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
        if "application_name" not in url.query:
            connect_args.setdefault("application_name", "sqlmanage")
    elif backend == "postgresql" and driver == "asyncpg":
        connect_args.setdefault("timeout", CONNECT_TIMEOUT_SECONDS)
        connect_args.setdefault("server_settings", {"application_name": "sqlmanage"})
    elif (
        backend in ("mysql", "mariadb")
        and driver == "pymysql"
        and "connect_timeout" not in url.query
    ):
        connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)


def _driver_missing(url: URL, exc: ImportError) -> DriverMissing:
    if getattr(exc, "name", None) == "greenlet":
        return DriverMissing(
            f"SQLAlchemy needs the greenlet package for the async URL {display_url(url)}.",
            hint="Install it: pip install 'sqlmanage[async]' (or pip install greenlet)",
        )
    module = getattr(exc, "name", None)
    driver = (
        url.drivername.partition("+")[2]
        or DRIVER_MODULES.get(module or "", module)
        or url.drivername
    )
    return DriverMissing(
        f"The database driver '{driver}' for {display_url(url)} is not installed.",
        hint=driver_hint(url.get_backend_name(), driver),
    )


def driver_hint(backend: str, driver: str) -> str:
    """Which pip package (and sqlmanage extra) installs ``driver``, and the alternative."""
    package = DRIVER_PACKAGES.get(driver, driver)
    extra = DRIVER_EXTRAS.get(driver)
    hint = f"Install it: pip install {repr(package) if '[' in package else package}"
    if extra:
        hint = f"Install it: pip install 'sqlmanage[{extra}]' (or pip install {package})"
    if backend in ("mysql", "mariadb") and driver == "mysqldb":
        hint += (
            f"; or use the pure-Python driver: pip install 'sqlmanage[mysql]' and a "
            f"{backend}+pymysql:// URL"
        )
    return hint


def first_line(exc: BaseException) -> str:
    """The driver's own message, first line: what a user needs from a database error."""
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return detail[0] if detail else type(exc).__name__


@contextmanager
def refused_by_database(url: URL) -> Iterator[None]:
    """A database error outside a migration (permissions, a missing schema) as a clear message."""
    from sqlalchemy.exc import DBAPIError

    try:
        yield
    except DBAPIError as exc:
        raise SqlmanageError(
            redact(f"The database {display_url(url)} refused: {first_line(exc)}"),
            hint="Check the user's privileges and the settings (VERSION_TABLE_SCHEMA, the URL).",
        ) from exc


def _unavailable(url: URL, exc: BaseException) -> DatabaseUnavailable:
    reason = first_line(exc)
    return DatabaseUnavailable(
        redact(f"Cannot connect to the database {display_url(url)}: {reason}"),
        hint="Check that the server is running and that DATABASE_URL (or the URL in your "
        "settings) names the right host, port, user and database.",
    )


def connect(url: URL, fn: Callable[[Connection], T], **engine_kwargs: Any) -> T:
    """Open one connection, call ``fn`` with it (a sync Connection, also for async URLs)."""
    from sqlalchemy.exc import DBAPIError

    engine = create_engine(url, **engine_kwargs)
    if is_async(url):
        import asyncio

        return asyncio.run(_connect_async(url, engine, fn))
    try:
        try:
            connection = engine.connect()
        except (DBAPIError, OSError) as exc:
            raise _unavailable(url, exc) from None
        except ImportError as exc:
            raise _driver_missing(url, exc) from None
        with connection, refused_by_database(url):
            return fn(connection)
    finally:
        engine.dispose()


async def _connect_async(url: URL, engine, fn: Callable[[Connection], T]) -> T:
    from sqlalchemy.exc import DBAPIError

    try:
        try:
            connection = await engine.connect()
        except (DBAPIError, OSError) as exc:
            raise _unavailable(url, exc) from None
        except ImportError as exc:
            raise _driver_missing(url, exc) from None
        try:
            with refused_by_database(url):
                return await connection.run_sync(fn)
        finally:
            await connection.close()
    finally:
        await engine.dispose()


def create_database_beside(url: URL, name: str, inspect: Callable[[Connection], T] | None = None):
    """CREATE DATABASE ``name`` on ``url``'s server; returns (the URL to drop it from, what
    ``inspect`` read on the configured database, or None).

    The configured database is the natural place to issue it from (managed servers often
    close ``postgres``); before that database exists, the server's default one is.
    """
    statement = f"CREATE DATABASE {name}"

    def create(connection):
        autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
        found = inspect(autocommit) if inspect is not None else None
        autocommit.exec_driver_sql(statement)
        return found

    try:
        return url, connect(url, create)
    except DatabaseUnavailable:
        admin_url = server_default_url(url)
        run_autocommit(admin_url, statement)
        return admin_url, None


def drop_database(admin_url: URL, name: str) -> None:
    """DROP DATABASE ``name``, closing PostgreSQL sessions still on it."""
    force = " WITH (FORCE)" if admin_url.get_backend_name() == "postgresql" else ""
    run_autocommit(admin_url, f"DROP DATABASE IF EXISTS {name}{force}")


def server_default_url(url: URL) -> URL:
    """The server's own default database: ``postgres``, or none at all on MySQL/MariaDB.
    (``URL.set(database=None)`` leaves the field as it was; NamedTuple's ``_replace`` clears it.)"""
    return url._replace(database="postgres" if url.get_backend_name() == "postgresql" else None)


def run_autocommit(url: URL, statement: str) -> None:
    """One statement outside any transaction (CREATE/DROP/ALTER DATABASE)."""

    def run(connection) -> None:
        connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(statement)

    connect(url, run)
