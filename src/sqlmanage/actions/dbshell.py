"""The database's own command-line client for a URL, as Django's ``dbshell`` runs it.

The password goes to the client through its environment (``PGPASSWORD``, ``MYSQL_PWD``),
never on its command line, where ``ps`` and error messages would show it. The client runs as
a child process and its exit status becomes the command's, as in Django.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlmanage.errors import ClientFailed, SqlmanageError
from sqlmanage.redaction import redact

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

# libpq's environment variables for the URL query options psql would otherwise not see.
PG_QUERY_ENVIRONMENT = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
}
CLIENT_PACKAGES = {
    "psql": "postgresql-client",
    "sqlite3": "sqlite3",
    "mariadb": "mariadb-client",
    "mysql": "mysql-client (or mariadb-client)",
}


@dataclass
class ClientCommand:
    """The client's argv and the variables added to its environment (the password among them)."""

    args: list[str]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def program(self) -> str:
        return self.args[0]


def client_command(url: URL, parameters: list[str] | tuple[str, ...] = ()) -> ClientCommand:
    """The command line that opens the client on ``url``; ``parameters`` go to the client."""
    backend = url.get_backend_name()
    if backend == "postgresql":
        return _psql(url, list(parameters))
    if backend == "sqlite":
        database = url.database
        return ClientCommand(["sqlite3", *([database] if database else []), *parameters])
    if backend in ("mysql", "mariadb"):
        return _mysql(url, backend, list(parameters))
    raise SqlmanageError(
        f"dbshell does not know the command-line client of {backend} databases.",
        hint="It runs psql for PostgreSQL, sqlite3 for SQLite and mariadb (or mysql) for "
        "MySQL and MariaDB.",
    )


def _psql(url: URL, parameters: list[str]) -> ClientCommand:
    args = ["psql"]
    host = url.host or _query_value(url, "host")
    if url.username:
        args += ["-U", url.username]
    if host:
        args += ["-h", host]
    if url.port:
        args += ["-p", str(url.port)]
    args += parameters
    args.append(url.database or "postgres")
    env = {}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    for key, variable in PG_QUERY_ENVIRONMENT.items():
        value = _query_value(url, key)
        if value:
            env[variable] = value
    return ClientCommand(args, env)


def _mysql(url: URL, backend: str, parameters: list[str]) -> ClientCommand:
    """mariadb for MariaDB URLs and mysql for MySQL ones, each falling back on the other."""
    preferred = ["mariadb", "mysql"] if backend == "mariadb" else ["mysql", "mariadb"]
    program = next((name for name in preferred if shutil.which(name)), preferred[0])
    args = [program]
    if url.username:
        args.append(f"--user={url.username}")
    socket = _query_value(url, "unix_socket")
    if socket:
        args.append(f"--socket={socket}")
    elif url.host:
        args.append(f"--host={url.host}")
    if url.port:
        args.append(f"--port={url.port}")
    charset = _query_value(url, "charset")
    if charset:
        args.append(f"--default-character-set={charset}")
    if url.database:
        args.append(url.database)
    args += parameters
    return ClientCommand(args, {"MYSQL_PWD": str(url.password)} if url.password else {})


def _query_value(url: URL, key: str) -> str | None:
    value = url.query.get(key)
    if isinstance(value, tuple):
        value = value[-1] if value else None
    return value


def run_client(command: ClientCommand) -> int:
    """Run the client in the foreground; Ctrl-C goes to it (to cancel a query), not to us."""
    previous = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        completed = subprocess.run(command.args, env={**os.environ, **command.env})
    except FileNotFoundError:
        package = CLIENT_PACKAGES.get(command.program, command.program)
        raise SqlmanageError(
            f"You appear not to have the '{command.program}' program installed or on your path.",
            hint=f"Install it (the package is usually called {package}) and run dbshell again.",
        ) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if completed.returncode != 0:
        raise ClientFailed(
            redact(
                f'"{shlex.join(command.args)}" returned non-zero exit status {completed.returncode}.'
            ),
            exit_code=completed.returncode
            if completed.returncode > 0
            else 128 - completed.returncode,
        )
    return 0
