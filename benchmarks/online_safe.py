"""Migrations under load: how long the application waits while a migration runs.

    python benchmarks/online_safe.py                  # 1,000,000 rows, 4 clients, every change kind
    python benchmarks/online_safe.py --rows 200000 --only add_index,set_not_null

A copy of the example project gets a table ``items`` of ``--rows`` rows on a PostgreSQL
database of its own. For each change kind the model is changed and the migration written
twice: by ``manage.py makemigrations`` (sqlmanage's online-safe form) and by plain ``alembic
revision --autogenerate``. Each runs (``manage.py migrate`` / ``alembic upgrade head``) while
``--clients`` threads send INSERT, UPDATE and SELECT statements to the table without pause,
each in its own autocommitted transaction; every statement's time is recorded. The table
gives, per change kind and tool, over the statements that overlapped the migration: how many
ran, the longest one, the 99th percentile, and how many failed. Then the migration is undone
(not measured) and the next one runs on the same table.

It creates and drops its own ``sqlmanage_bench_*`` database; it is not part of the test run.
Every loop is bounded: the clients stop when the migration ends or after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
PG_DEFAULT = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
BASELINE_SECONDS = 5.0

MODELS = '''"""Written by benchmarks/online_safe.py."""
import sqlalchemy as sa

from project.models.base import Base

owners = sa.Table("owners", Base.metadata, sa.Column("id", sa.Integer(), primary_key=True))
items = sa.Table(
    "items", Base.metadata,
    sa.Column("id", sa.BigInteger(), primary_key=True),
{columns})
'''

START = {
    "name": 'sa.Column("name", sa.String(50), nullable=False)',
    "note": 'sa.Column("note", sa.String(50), index=True)',
    "code": 'sa.Column("code", sa.String(40), nullable=False)',
    "qty": 'sa.Column("qty", sa.Integer())',
    "owner_id": 'sa.Column("owner_id", sa.Integer())',
}

CHANGES = {
    "add_index": {"name": 'sa.Column("name", sa.String(50), nullable=False, index=True)'},
    "drop_index": {"note": 'sa.Column("note", sa.String(50))'},
    "add_unique": {"code": 'sa.Column("code", sa.String(40), nullable=False, unique=True)'},
    "add_check": {"qty_check": 'sa.CheckConstraint("qty >= 0", name="qty_not_negative")'},
    "add_foreign_key": {
        "owner_id": 'sa.Column("owner_id", sa.Integer(), sa.ForeignKey("owners.id"))'
    },
    "set_not_null": {"qty": 'sa.Column("qty", sa.Integer(), nullable=False, server_default="0")'},
}

STATEMENTS = {  # what the application sends; qty and owner_id keep every constraint above true
    "insert": "INSERT INTO items (name, note, code, qty, owner_id) "
    "VALUES ('new', 'n', md5(random()::text || clock_timestamp()::text), 1, 1)",
    "update": "UPDATE items SET qty = qty + 1 WHERE id = (random() * %(rows)s)::bigint + 1",
    "select": "SELECT name, qty FROM items WHERE id = (random() * %(rows)s)::bigint + 1",
}


@dataclass
class Load:
    """Statement times (start, seconds) and failures of the application's clients."""

    times: list[tuple[float, float]] = field(default_factory=list)
    failures: list[tuple[float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def client(url: str, statement: str, load: Load, stop: threading.Event, deadline: float) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        connection.exec_driver_sql("SET application_name = 'bench-client'")
        while not stop.is_set() and time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                connection.exec_driver_sql(statement)
                elapsed = time.perf_counter() - started
                with load.lock:
                    load.times.append((started, elapsed))
            except Exception as exc:  # a failed application query is a result
                with load.lock:
                    load.failures.append((started, type(exc).__name__))
    engine.dispose()


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def module(columns: dict[str, str]) -> str:
    return MODELS.format(columns="".join(f"    {line},\n" for line in columns.values()))


class Bench:
    def __init__(self, args):
        self.args = args
        self.admin = sa.create_engine(
            args.pg_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
        )
        self.database = f"sqlmanage_bench_{uuid.uuid4().hex[:10]}"
        self.url = (
            sa.engine.make_url(args.pg_url)
            .set(database=self.database)
            .render_as_string(hide_password=False)
        )
        self.folder = Path(tempfile.mkdtemp(prefix="online-safe-"))
        self.env = {k: v for k, v in os.environ.items() if k not in ("SQLMANAGE_SETTINGS_MODULE",)}
        self.env["DATABASE_URL"] = self.url

    def run(self, *command: str) -> subprocess.CompletedProcess:
        completed = subprocess.run(
            command, cwd=self.folder, env=self.env, capture_output=True, text=True, timeout=600
        )
        if completed.returncode != 0:
            sys.exit(f"{' '.join(command)} failed:\n{completed.stdout}\n{completed.stderr}")
        return completed

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        return self.run(sys.executable, "manage.py", *args)

    def alembic(self, *args: str) -> subprocess.CompletedProcess:
        return self.run(sys.executable, "-m", "alembic", *args)

    def write_models(self, columns: dict[str, str]) -> None:
        (self.folder / "project" / "models" / "bench.py").write_text(module(columns))

    def setup(self) -> None:
        shutil.copy(ROOT / "manage.py", self.folder)
        shutil.copy(ROOT / "alembic.ini", self.folder)
        shutil.copytree(
            ROOT / "project",
            self.folder / "project",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "db.sqlite3"),
        )
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {self.database}")
        self.write_models(START)
        self.manage("makemigrations", "--noinput", "-n", "bench_start")
        self.manage("migrate", "--noinput")
        engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        with engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO owners SELECT generate_series(1, 10)")
            connection.exec_driver_sql(
                "INSERT INTO items (id, name, note, code, qty, owner_id) "
                "SELECT i, 'item ' || i, 'note ' || mod(i, 1000), md5(i::text), mod(i, 100), 1 + mod(i, 10) "
                f"FROM generate_series(1, {self.args.rows}) AS i"
            )
            connection.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('items', 'id'), {self.args.rows})"
            )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE items")
        engine.dispose()

    def measure(self, kind: str | None, tool: str | None) -> dict:
        """Write the migration with ``tool``, run it under load, undo it; the application's waits.

        ``kind`` None: the same load for BASELINE_SECONDS without a migration (the machine's floor).
        """
        versions = self.folder / "project" / "migrations" / "versions"
        before = set(versions.glob("*.py"))
        written = None
        if kind is not None:
            self.write_models({**START, **CHANGES[kind]})
            if tool == "sqlmanage":
                self.manage("makemigrations", "--noinput", "-n", kind)
            else:
                self.alembic("revision", "--autogenerate", "-m", kind)
            (written,) = set(versions.glob("*.py")) - before

        load, stop = Load(), threading.Event()
        deadline = time.perf_counter() + self.args.max_seconds
        threads = []
        for index in range(self.args.clients):
            name = list(STATEMENTS)[index % len(STATEMENTS)]
            statement = STATEMENTS[name] % {"rows": self.args.rows}
            thread = threading.Thread(
                target=client, args=(self.url, statement, load, stop, deadline)
            )
            threads.append(thread)
            thread.start()
        time.sleep(1.0)  # the clients are connected and running before the migration starts
        started = time.perf_counter()
        if kind is None:
            time.sleep(BASELINE_SECONDS)
        elif tool == "sqlmanage":
            self.manage("migrate", "--noinput")
        else:
            self.alembic("upgrade", "head")
        ended = time.perf_counter()
        stop.set()
        for thread in threads:
            thread.join()

        during = [s for begin, s in load.times if begin + s >= started and begin <= ended]
        failed = [f for f in load.failures if started <= f[0] <= ended]
        if kind is None:
            pass
        elif tool == "sqlmanage":
            self.manage("migrate", "-1", "--noinput")
        else:
            self.alembic("downgrade", "-1")
        if written is not None:
            written.unlink()
            self.write_models(START)
        return {
            "kind": kind,
            "tool": tool,
            "migration": ended - started,
            "queries": len(during),
            "max": max(during, default=0.0),
            "p99": percentile(during, 0.99),
            "failed": len(failed),
        }

    def teardown(self) -> None:
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")
        self.admin.dispose()
        shutil.rmtree(self.folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--only", help="Comma-separated change kinds (default: all).")
    parser.add_argument(
        "--max-seconds", type=float, default=300.0, help="Bound on one migration's load."
    )
    parser.add_argument("--pg-url", default=PG_DEFAULT)
    args = parser.parse_args()
    kinds = args.only.split(",") if args.only else list(CHANGES)
    bench = Bench(args)
    rows = []
    try:
        bench.setup()
        print(f"{args.rows:,} rows, {args.clients} clients (INSERT, UPDATE, SELECT)", flush=True)
        print(
            "| change | tool | migration (s) | app queries | longest wait (ms) | p99 (ms) | failed |"
        )
        print("|---|---|---:|---:|---:|---:|---:|")
        for kind, tool in [(None, None)] + [
            (k, t) for k in kinds for t in ("sqlmanage", "alembic")
        ]:
            row = bench.measure(kind, tool)
            rows.append(row)
            label = {"sqlmanage": "sqlmanage", "alembic": "plain Alembic", None: "(no migration)"}[
                tool
            ]
            print(
                f"| {kind or 'baseline'} | {label} | "
                f"{row['migration']:.2f} | {row['queries']:,} | {row['max'] * 1000:.0f} | "
                f"{row['p99'] * 1000:.1f} | {row['failed']} |",
                flush=True,
            )
    finally:
        bench.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
