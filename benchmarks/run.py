"""sqlmanage against plain Alembic on identical generated projects: the benchmark suite.

    python benchmarks/run.py                      # everything, SQLite and PostgreSQL (< 10 min)
    python benchmarks/run.py --quick              # small scenarios, 3 runs (~1.5 min)
    python benchmarks/run.py --only migrate-empty --backends sqlite --runs 3
    python benchmarks/run.py --out /tmp/bench     # keep the generated projects there

It generates the scenarios (benchmarks/scenarios.py: a history of N = 100 and 1,000
revisions, a schema of M = 100 and 500 tables) and compiles them (warm .pyc caches, as users
have), then, for each backend, runs every pair of commands on the two copies alternately: one
warm-up run each (none from an empty database, where every run starts alike), then several
measured runs (3 for a row whose first pair takes over 3 s). Each row gives the medians of
wall time, of CPU time and of peak RSS (the child's own ru_maxrss, from wait4), the ratio
sqlmanage / Alembic, the database's own floor (``psql -1 -f`` of ``alembic upgrade head
--sql``; ``sqlite3`` loading the statements that ``alembic upgrade head`` really executes) and
PASS/MISS against the targets (``Target``), which are stated for N = 1,000 and M = 500 (smaller
scenarios show the trend and are held to the memory target only).

PostgreSQL: 127.0.0.1:5432, user postgres (``--pg-url``); the script creates and drops its
own ``sqlmanage_bench_*`` databases. It is not part of the test run. Exit code 1 when a
command failed, 0 otherwise (a MISS is a result, not an error).
"""

from __future__ import annotations

import argparse
import compileall
import datetime
import fnmatch
import importlib.util
import json
import os
import platform
import py_compile
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scenarios  # noqa: E402

PG_DEFAULT = "postgresql+psycopg2://postgres@127.0.0.1:5432/"
DB_PREFIX = "sqlmanage_bench_"
ISSUE_HISTORY, ISSUE_SCHEMA = 1000, 500  # the sizes the time targets are stated for
SLOW_SECONDS = 3.0  # a row whose first pair of runs takes longer gets at most 3 runs

# Runs ``alembic ARGS`` in-process and writes every statement it sends to SQLite that changes
# something (reads and PRAGMAs left out), as one script for the sqlite3 floor.
CAPTURE = r"""
import sys
from sqlalchemy import event
from sqlalchemy.engine import Engine

statements = []

def literal(value):
    if value is None:
        return "NULL"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"

@event.listens_for(Engine, "before_cursor_execute")
def record(conn, cursor, statement, parameters, context, executemany):
    words = statement.split(None, 1)
    if not words or words[0].upper() in ("SELECT", "PRAGMA"):
        return
    for params in (parameters if executemany else [parameters]):
        params = list(params.values()) if isinstance(params, dict) else list(params or ())
        parts = statement.split("?")
        if len(parts) - 1 != len(params):
            raise SystemExit(f"cannot inline the parameters of {statement!r}")
        text = parts[0] + "".join(literal(p) + rest for p, rest in zip(params, parts[1:]))
        statements.append(text.strip().rstrip(";"))

from alembic.config import main
main(argv=sys.argv[2:], prog="alembic")
with open(sys.argv[1], "w", encoding="utf-8") as out:
    out.write("BEGIN;\n" + "".join(s + ";\n" for s in statements) + "COMMIT;\n")
"""


@dataclass
class Run:
    seconds: float
    rss_kib: int
    code: int
    stderr: str = ""
    cpu: float = (
        0.0  # user + system seconds of the child: steadier than wall time on a busy machine
    )


# Starts one command and reports its wall time, CPU time and peak RSS from wait4. It runs in
# a small interpreter of its own (python -I -S: about 8 MiB) because Linux starts a child's
# ru_maxrss at the RSS of the process that spawned it: spawned from this script, which has
# SQLAlchemy and psycopg2 loaded, every child would seem to need 60 MiB.
PROBE = r"""
import json, os, sys, time
with open(sys.argv[1], "wb") as err:
    actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
               (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
               (os.POSIX_SPAWN_DUP2, err.fileno(), 2)]
    start = time.perf_counter()
    pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ, file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "rss_kib": usage.ru_maxrss, "code": os.waitstatus_to_exitcode(status),
                  "cpu": usage.ru_utime + usage.ru_stime}))
"""


def measure(command: list[str], cwd: Path, env: dict) -> Run:
    """Wall time, CPU time and peak RSS of one run of ``command`` (stdout discarded)."""
    with tempfile.NamedTemporaryFile(prefix="bench-stderr-") as err:
        probe = subprocess.run(
            [sys.executable, "-I", "-S", "-c", PROBE, err.name, *command],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        if probe.returncode != 0:
            raise SystemExit(f"the probe failed to run {command}: {probe.stderr}")
        result = json.loads(probe.stdout)
        stderr = (
            Path(err.name).read_text(encoding="utf-8", errors="replace") if result["code"] else ""
        )
    return Run(result["seconds"], result["rss_kib"], result["code"], stderr, result["cpu"])


@dataclass
class Target:
    """The target for a row: a time ratio, a memory ratio, a ratio to the floor."""

    time: float | None = None
    memory: float | None = 1.0
    floor: float | None = None

    def describe(self) -> str:
        parts = []
        if self.time is not None:
            parts.append(f"≤{self.time:.2f}x")
        if self.floor is not None:
            parts.append(f"≤{self.floor:.1f}x floor")
        if self.memory is not None:
            parts.append(f"mem ≤{self.memory:.2f}x" if self.memory != 1.0 else "mem ≤1x")
        return ", ".join(parts)


@dataclass
class Row:
    name: str  # backend/scenario/pair: what --only matches
    backend: str
    scenario: str
    label: str
    target: Target
    runs: int = 0
    ours: float = 0.0
    theirs: float = 0.0
    ours_rss: float = 0.0  # MiB
    theirs_rss: float = 0.0
    ours_cpu: float = 0.0
    theirs_cpu: float = 0.0
    floor: float | None = None
    failed: str | None = None
    elapsed: float = 0.0  # seconds the row took, warm-up and floor included

    @property
    def ratio(self) -> float:
        return self.ours / self.theirs if self.theirs else float("nan")

    @property
    def cpu_ratio(self) -> float:
        return self.ours_cpu / self.theirs_cpu if self.theirs_cpu else float("nan")

    @property
    def floor_ratio(self) -> float | None:
        return self.ours / self.floor if self.floor else None

    def verdict(self) -> str:
        if self.failed:
            return "FAIL"
        missed = []
        if self.target.time is not None and self.ratio > self.target.time:
            missed.append("time")
        if self.target.floor is not None and (self.floor_ratio or 0) > self.target.floor:
            missed.append("floor")
        if self.target.memory is not None and self.ours_rss > self.target.memory * self.theirs_rss:
            missed.append("mem")
        return f"MISS ({', '.join(missed)})" if missed else "PASS"

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "backend": self.backend,
            "scenario": self.scenario,
            "command": self.label,
            "runs": self.runs,
            "sqlmanage_s": self.ours,
            "alembic_s": self.theirs,
            "ratio": self.ratio,
            "sqlmanage_cpu_s": self.ours_cpu,
            "alembic_cpu_s": self.theirs_cpu,
            "cpu_ratio": self.cpu_ratio,
            "floor_s": self.floor,
            "floor_ratio": self.floor_ratio,
            "sqlmanage_rss_mib": self.ours_rss,
            "alembic_rss_mib": self.theirs_rss,
            "target": self.target.describe(),
            "verdict": self.verdict(),
            "failed": self.failed,
        }


COLUMNS = "{:<10} {:<13} {:<48} {:>4} {:>9} {:>9} {:>6} {:>6} {:>8} {:>6} {:>13} {:<28} {}"


def print_header() -> None:
    print(
        COLUMNS.format(
            "backend",
            "scenario",
            "sqlmanage vs alembic",
            "runs",
            "sqlmanage",
            "alembic",
            "ratio",
            "cpu",
            "floor",
            "xfloor",
            "RSS MiB s/a",
            "target",
            "verdict",
        )
    )


def print_row(row: Row) -> None:
    if row.failed:
        print(
            COLUMNS.format(
                row.backend,
                row.scenario,
                row.label,
                row.runs,
                "-",
                "-",
                "-",
                "-",
                "-",
                "-",
                "-",
                row.target.describe(),
                "FAIL",
            ),
            flush=True,
        )
        return
    floor = f"{row.floor:.3f}s" if row.floor else "-"
    xfloor = f"{row.floor_ratio:.2f}" if row.floor else "-"
    rss = f"{row.ours_rss:.0f} / {row.theirs_rss:.0f}"
    print(
        COLUMNS.format(
            row.backend,
            row.scenario,
            row.label,
            row.runs,
            f"{row.ours:.3f}s",
            f"{row.theirs:.3f}s",
            f"{row.ratio:.2f}",
            f"{row.cpu_ratio:.2f}",
            floor,
            xfloor,
            rss,
            row.target.describe(),
            row.verdict(),
        )
        + f"  ({row.elapsed:.0f}s)",
        flush=True,
    )


def markdown(rows: list[Row]) -> str:
    lines = [
        "| backend | scenario | sqlmanage / Alembic | runs | sqlmanage | Alembic | ratio | CPU ratio "
        "| floor | x floor | peak RSS MiB (s / a) | target | verdict |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|---|",
    ]
    for r in rows:
        if r.failed:
            lines.append(
                f"| {r.backend} | {r.scenario} | `{r.label}` | {r.runs} | - | - | - | - | - | - | - "
                f"| {r.target.describe()} | FAIL |"
            )
            continue
        floor = f"{r.floor:.3f} s" if r.floor else ""
        xfloor = f"{r.floor_ratio:.2f}" if r.floor else ""
        lines.append(
            f"| {r.backend} | {r.scenario} | `{r.label}` | {r.runs} | {r.ours:.3f} s "
            f"| {r.theirs:.3f} s | {r.ratio:.2f} | {r.cpu_ratio:.2f} | {floor} | {xfloor} "
            f"| {r.ours_rss:.0f} / {r.theirs_rss:.0f} | {r.target.describe()} | {r.verdict()} |"
        )
    return "\n".join(lines) + "\n"


class Database:
    """One copy's database on one backend: its URL, and how to empty it."""

    def __init__(self, backend: str, copy_dir: Path, name: str, pg_url: str):
        self.backend, self.name = backend, name
        self.at_head = False
        if backend == "sqlite":
            self.path = copy_dir / "db.sqlite3"
            self.url = f"sqlite:///{self.path}"
        else:
            self.url = pg_url + name

    def reset(self, admin) -> None:
        self.at_head = False
        if self.backend == "sqlite":
            for suffix in ("", "-journal", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        else:
            admin.recreate(self.name)


class PostgresAdmin:
    """Creates and drops the benchmark's own databases through the server's 'postgres' one."""

    def __init__(self, pg_url: str):
        import psycopg2
        from sqlalchemy.engine import make_url

        url = make_url(pg_url)
        self.params = {
            "host": url.host,
            "port": url.port or 5432,
            "user": url.username,
            "password": url.password,
            "dbname": "postgres",
        }
        self.connection = psycopg2.connect(
            **{k: v for k, v in self.params.items() if v is not None}
        )
        self.connection.autocommit = True
        self.created: set[str] = set()

    def execute(self, sql: str):
        with self.connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone() if cursor.description else None

    def recreate(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.execute(f'CREATE DATABASE "{name}"')
        self.created.add(name)

    def drop_all(self) -> None:
        for name in sorted(self.created):
            self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.connection.close()

    def psql_args(self, database: str) -> list[str]:
        return [
            "psql",
            "-X",
            "-q",
            "-1",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.params["host"]),
            "-p",
            str(self.params["port"]),
            "-U",
            str(self.params["user"]),
            "-d",
            database,
        ]


@dataclass
class Pair:
    key: str  # the pair's short name in --only patterns
    label: str
    ours: list[str]
    theirs: list[str]
    target: Target
    state: str = "head"  # the database state each run starts from: head, empty, or none
    floor: bool = False
    checkout: str = "warm"  # fresh: sqlmanage's caches deleted before each of its runs


def with_fresh(pairs: list[Pair], targets: dict[str, Target] | None = None) -> list[Pair]:
    """Each pair, then the same on a fresh checkout: no ``__pycache__/sqlmanage-*.json``
    before any sqlmanage run (CI, a deploy's container). Alembic has no such cache, so its
    side runs as in the warm row; the projects' .pyc files stay in both. ``targets`` gives
    a fresh row its own target, by key (default: the warm row's)."""
    out = []
    for pair in pairs:
        fresh = Pair(
            f"{pair.key}-fresh",
            f"{pair.label} [fresh]",
            pair.ours,
            pair.theirs,
            (targets or {}).get(pair.key, pair.target),
            pair.state,
            pair.floor,
            "fresh",
        )
        out += [pair, fresh]
    return out


@dataclass
class Bench:
    args: argparse.Namespace
    work: Path
    admin: PostgresAdmin | None = None
    rows: list[Row] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    prepare_empty: object = None  # a real history's step before plain Alembic's first migration
    python: str = sys.executable  # a real history runs both tools with its own virtualenv
    extra_env: dict = field(default_factory=dict)

    def env(self, url: str | None) -> dict:
        env = {
            k: v
            for k, v in os.environ.items()
            if k
            not in (
                "PYTHONDONTWRITEBYTECODE",
                "SQLMANAGE_SETTINGS_MODULE",
                "DATABASE_URL",
                "NO_COLOR",
            )
        }
        if url:
            env["DATABASE_URL"] = url
        env.update(self.extra_env(url) if callable(self.extra_env) else self.extra_env)
        return env

    def selected(self, name: str) -> bool:
        patterns = self.args.only
        if not patterns:
            return True
        return any(
            fnmatch.fnmatch(name, p if any(c in p for c in "*?[") else f"*{p}*") for p in patterns
        )

    def fail(self, row: Row, what: str, command: list[str], cwd: Path, run: Run) -> None:
        row.failed = what
        shown = " ".join(
            Path(command[0]).name if i == 0 else part for i, part in enumerate(command)
        )
        self.failures.append(
            f"{row.name}: {what}\n  cd {cwd} && {shown}   (exit {run.code})\n"
            + "".join(f"  | {line}\n" for line in run.stderr.strip().splitlines()[-15:])
        )

    def measure_pair(self, row: Row, pair: Pair, copies: dict, databases: dict, floor=None) -> None:
        """Warm up, then alternate the two tools (and the floor) for the measured runs.

        Runs from an empty database need no warm-up run: the generated projects are compiled
        (compileall) beforehand, and every such run starts from the same empty database.
        """
        started = time.perf_counter()
        sides = [
            ("sqlmanage", pair.ours, copies["sqlmanage"], databases.get("sqlmanage")),
            ("alembic", pair.theirs, copies["alembic"], databases.get("alembic")),
        ]
        results: dict[str, list[Run]] = {"sqlmanage": [], "alembic": [], "floor": []}

        def once(side) -> Run | None:
            tool, command, cwd, database = side
            if pair.state == "empty":
                database.reset(self.admin)
                if self.prepare_empty is not None and tool == "alembic":
                    self.prepare_empty(database)
            elif pair.state == "head" and not self.at_head(row, tool, cwd, database):
                return None
            if pair.checkout == "fresh" and tool == "sqlmanage":
                drop_sqlmanage_caches(cwd)
            run = measure(command, cwd, self.env(database.url if database else None))
            if run.code != 0:
                self.fail(row, f"{tool} exited {run.code}", command, cwd, run)
                return None
            if pair.state == "empty":
                database.at_head = True
            return run

        if pair.state != "empty":
            for side in sides:
                if once(side) is None:
                    return
        runs, done = self.args.runs, 0
        while done < runs:
            seconds = 0.0
            for side in sides if done % 2 == 0 else sides[::-1]:
                run = once(side)
                if run is None:
                    return
                results[side[0]].append(run)
                seconds += run.seconds
            if floor is not None:
                run = floor()
                if run is None:
                    return
                results["floor"].append(run)
            if done == 0 and seconds >= SLOW_SECONDS:
                runs = min(runs, 3)
            done += 1
        row.elapsed = time.perf_counter() - started
        row.runs = runs
        row.ours = statistics.median(r.seconds for r in results["sqlmanage"])
        row.theirs = statistics.median(r.seconds for r in results["alembic"])
        row.ours_cpu = statistics.median(r.cpu for r in results["sqlmanage"])
        row.theirs_cpu = statistics.median(r.cpu for r in results["alembic"])
        row.ours_rss = statistics.median(r.rss_kib for r in results["sqlmanage"]) / 1024
        row.theirs_rss = statistics.median(r.rss_kib for r in results["alembic"]) / 1024
        if results["floor"]:
            row.floor = statistics.median(r.seconds for r in results["floor"])

    def at_head(self, row: Row, tool: str, cwd: Path, database) -> bool:
        """Bring a copy's database to head with its own tool (not timed), once."""
        if database.at_head:
            return True
        database.reset(self.admin)
        if self.prepare_empty is not None and tool == "alembic":
            self.prepare_empty(database)
        command = (
            [self.python, "manage.py", "migrate", "--noinput"]
            if tool == "sqlmanage"
            else [self.python, "-m", "alembic", "upgrade", "heads"]
        )
        run = measure(command, cwd, self.env(database.url))
        if run.code != 0:
            self.fail(row, f"{tool} could not migrate to head", command, cwd, run)
            return False
        database.at_head = True
        return True

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print_row(row)

    def sqlite_floor(self, row: Row, alembic_dir: Path, database: Database):
        """The statements `alembic upgrade head` really runs on SQLite, loaded by sqlite3."""
        script = self.work / f"{row.scenario}-sqlite.sql"
        if not script.exists():
            database.reset(self.admin)
            command = [sys.executable, "-c", CAPTURE, str(script), "upgrade", "head"]
            run = measure(command, alembic_dir, self.env(database.url))
            if run.code != 0:
                self.fail(
                    row,
                    "capturing the SQL of alembic upgrade head failed",
                    command,
                    alembic_dir,
                    run,
                )
                return None
            database.at_head = True
        target = self.work / f"{row.scenario}-floor.sqlite3"
        command = ["sqlite3", str(target), f".read {script}"]

        def load() -> Run | None:
            target.unlink(missing_ok=True)
            run = measure(command, self.work, os.environ.copy())
            if run.code != 0:
                self.fail(row, "sqlite3 could not load the SQL", command, self.work, run)
                return None
            return run

        return load

    def postgres_floor(self, row: Row, alembic_dir: Path, database: Database):
        """`alembic upgrade head --sql`, loaded by `psql -1 -f` into a fresh database."""
        script = self.work / f"{row.scenario}-postgresql.sql"
        if not script.exists():
            command = [sys.executable, "-m", "alembic", "upgrade", "head", "--sql"]
            with tempfile.TemporaryFile() as out:
                done = subprocess.run(
                    command,
                    cwd=alembic_dir,
                    env=self.env(database.url),
                    stdout=out,
                    stderr=subprocess.PIPE,
                )
                if done.returncode != 0:
                    self.fail(
                        row,
                        "alembic upgrade head --sql failed",
                        command,
                        alembic_dir,
                        Run(0, 0, done.returncode, done.stderr.decode()),
                    )
                    return None
                out.seek(0)
                lines = out.read().decode().splitlines(keepends=True)
            # psql -1 is the one transaction; the script's own BEGIN/COMMIT would end it early.
            script.write_text("".join(x for x in lines if x.strip() not in ("BEGIN;", "COMMIT;")))
        name = f"{DB_PREFIX}{row.scenario.replace('-', '_')}_floor"
        command = [*self.admin.psql_args(name), "-f", str(script)]

        def load() -> Run | None:
            self.admin.recreate(name)
            run = measure(command, self.work, os.environ.copy())
            if run.code != 0:
                self.fail(row, "psql could not load the SQL", command, self.work, run)
                return None
            return run

        return load

    def run_scenario(self, backend: str, kind: str, size: int, pairs: list[Pair]) -> None:
        scenario = f"{kind}-{size}"
        chosen = [p for p in pairs if self.selected(f"{backend}/{scenario}/{p.key}")]
        if not chosen:
            return
        copies = self.generate(kind, size)
        databases = {
            copy: Database(backend, path, f"{DB_PREFIX}{kind}_{size}_{copy}", self.args.pg_url)
            for copy, path in copies.items()
        }
        if not self.stamp_head(scenario, copies, databases["sqlmanage"]):
            return
        for pair in chosen:
            row = Row(
                f"{backend}/{scenario}/{pair.key}", backend, scenario, pair.label, pair.target
            )
            floor = None
            if pair.floor:
                make_floor = self.sqlite_floor if backend == "sqlite" else self.postgres_floor
                floor = make_floor(row, copies["alembic"], databases["alembic"])
                if floor is None:
                    self.add(row)
                    continue
            self.measure_pair(row, pair, copies, databases, floor)
            self.add(row)

    def stamp_head(self, scenario: str, copies: dict[str, Path], database: Database) -> bool:
        """Record the models' fingerprint in the head migration, as makemigrations does when
        it writes one, for this backend (the fingerprint names the database kind); the
        Alembic copy gets the same file. Not timed."""
        database.reset(self.admin)
        command = [sys.executable, "-c", STAMP]
        run = measure(command, copies["sqlmanage"], self.env(database.url))
        if run.code != 0:
            row = Row(
                f"{database.backend}/{scenario}/stamp",
                database.backend,
                scenario,
                "makemigrations' fingerprint of the head",
                Target(),
            )
            self.fail(
                row, "recording the head's fingerprint failed", command, copies["sqlmanage"], run
            )
            self.add(row)
            return False
        versions = Path("project") / "migrations" / "versions"
        for head in sorted((copies["sqlmanage"] / versions).glob("*.py"))[-1:]:
            shutil.copy(head, copies["alembic"] / versions / head.name)
            for copy in copies.values():
                py_compile.compile(
                    str(copy / versions / head.name),
                    invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP,
                )
        return True

    def run_real_history(self, backend: str, folder: Path) -> None:
        """A real project's history (``--real-history``): sqlmanage on the adopted project
        against plain Alembic on the project's own files, each from the folder's virtualenv,
        with this tree's sqlmanage first on the path. Nothing is installed here.

        ``folder`` is laid out as /tmp/realhist/NAME (see BENCHMARKS.md): ``.venv/``,
        ``project/`` (adopted), ``plain/`` (as shipped) and ``hooks.py`` (``environment(url)``:
        the variables the project's env.py reads; ``prepare(url)``: what the project creates
        before its first migration, for plain Alembic).
        """
        scenario = f"real-{folder.name}"
        pairs = real_history_pairs(folder)
        chosen = [p for p in pairs if self.selected(f"{backend}/{scenario}/{p.key}")]
        if not chosen:
            return
        out = self.work / scenario
        copies = {"sqlmanage": out / "sqlmanage", "alembic": out / "alembic"}
        for copy, source in (("sqlmanage", folder / "project"), ("alembic", folder / "plain")):
            shutil.rmtree(copies[copy], ignore_errors=True)
            shutil.copytree(
                source,
                copies[copy],
                ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3", "*.db", "work-*"),
            )
            compile_tree(copies[copy])
        databases = {
            copy: Database(
                backend, path, f"{DB_PREFIX}{scenario.replace('-', '_')}_{copy}", self.args.pg_url
            )
            for copy, path in copies.items()
        }
        hooks = load_hooks(folder)
        python = str(folder / ".venv" / "bin" / "python")
        environment = getattr(hooks, "environment", lambda url: {})
        set_ini_url(copies["alembic"] / "alembic.ini", databases["alembic"].url)

        def prepare(database: Database) -> None:
            if hasattr(hooks, "prepare"):
                code = f"import sys; sys.path.insert(0, {str(folder)!r}); import hooks; hooks.prepare({database.url!r})"
                subprocess.run(
                    [python, "-c", code],
                    check=True,
                    capture_output=True,
                    env=self.env(database.url),
                )

        saved = (self.python, self.extra_env, self.prepare_empty)
        self.python = python
        self.extra_env = lambda url: {
            **(environment(url) if url else {}),
            "PYTHONPATH": str(ROOT / "src"),
        }
        self.prepare_empty = prepare
        try:
            for pair in chosen:
                row = Row(
                    f"{backend}/{scenario}/{pair.key}", backend, scenario, pair.label, pair.target
                )
                self.measure_pair(row, pair, copies, databases)
                self.add(row)
        finally:
            self.python, self.extra_env, self.prepare_empty = saved

    def generate(self, kind: str, size: int) -> dict[str, Path]:
        out = self.work / f"{kind}-{size}"
        if not (out / "sqlmanage" / "manage.py").exists():
            scenarios.generate(kind, size, out)
            compile_tree(out)
        return {"sqlmanage": out / "sqlmanage", "alembic": out / "alembic"}

    def run_help(self) -> None:
        """`manage.py --help` and every command's `--help` against `alembic --help`."""
        copies = self.generate("history", min(self.args.history))
        manage = [sys.executable, "manage.py"]
        listing = subprocess.run(
            manage + ["--help"],
            cwd=copies["sqlmanage"],
            env=self.env(None),
            capture_output=True,
            text=True,
        )
        commands = commands_in_help(listing.stdout)
        alembic_help = [sys.executable, "-m", "alembic", "--help"]
        pairs = [
            Pair(
                f"{c} --help".strip(),
                f"manage.py {c} --help / alembic --help".replace("  ", " "),
                manage + [c, "--help"] if c else manage + ["--help"],
                alembic_help,
                Target(time=0.25),
                state="none",
            )
            for c in ["", *commands]
        ]
        for pair in pairs:
            name = f"any/help/{pair.key}"
            if not self.selected(name):
                continue
            row = Row(name, "-", "help", pair.label, pair.target)
            self.measure_pair(row, pair, copies, {})
            self.add(row)


# Records the models' fingerprint in the head migration of the project in the current folder,
# as makemigrations does for a migration it writes (core.makemigrations.record_fingerprint).
STAMP = r"""
import os, sys
sys.path.insert(0, os.getcwd())
from sqlmanage.project import Project
from sqlmanage.actions.makemigrations import NewMigration, record_fingerprint
project = Project.load()
head = project.history.by_id[project.history.head()]
if not record_fingerprint(project, NewMigration(head.revision, head.name, head.path, "", "", ["models"])):
    raise SystemExit(f"no fingerprint recorded in {head.path}: the models do not match the head")
"""


def drop_sqlmanage_caches(copy: Path) -> None:
    """A fresh checkout: none of sqlmanage's ``__pycache__/sqlmanage-*.json``."""
    for cache in copy.glob("**/__pycache__/sqlmanage-*.json"):
        cache.unlink()


def compile_tree(path: Path) -> None:
    """Warm .pyc caches, as users have them (and as an import would write them)."""
    compileall.compile_dir(
        path, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP
    )


def commands_in_help(text: str) -> list[str]:
    """The command names listed under 'Commands:' in a click help page (help itself left out)."""
    names, inside = [], False
    for line in text.splitlines():
        if line.strip() == "Commands:":
            inside = True
        elif inside and not line.startswith(" ") and line.strip():
            break
        elif inside and re.match(r"  \S", line):
            name = line.split()[0]
            if name != "help":
                names.append(name)
    return names


def history_pairs(backend: str, size: int) -> list[Pair]:
    """The history's pairs; the time targets are stated for 1,000 revisions, so a smaller
    history shows the trend and is held to the memory target only."""
    manage = [sys.executable, "manage.py"]
    alembic = [sys.executable, "-m", "alembic"]
    stated = size == ISSUE_HISTORY
    if not stated:
        empty = Target()
    elif backend == "sqlite":
        empty = Target(time=0.75, memory=0.5)
    else:
        empty = Target(time=1.0, floor=2.5)
    return with_fresh(
        [
            Pair(
                "migrate-empty",
                "migrate (empty db) / upgrade head",
                manage + ["migrate", "--noinput"],
                alembic + ["upgrade", "head"],
                empty,
                state="empty",
                floor=True,
            ),
            Pair(
                "showmigrations",
                "showmigrations / current",
                manage + ["showmigrations"],
                alembic + ["current"],
                Target(time=0.5 if stated else None),
            ),
            Pair(
                "migrate-noop",
                "migrate (at head) / upgrade head",
                manage + ["migrate", "--noinput"],
                alembic + ["upgrade", "head"],
                Target(time=0.5 if stated else None),
            ),
            Pair(
                "check",
                "makemigrations --check / check",
                manage + ["makemigrations", "--check"],
                alembic + ["check"],
                Target(),
            ),
        ],
        {"showmigrations": Target(), "migrate-noop": Target(time=0.75 if stated else None)},
    )


def schema_pairs(backend: str, size: int) -> list[Pair]:
    """The schema's pairs; the time target is stated for 500 tables."""
    manage = [sys.executable, "manage.py"]
    alembic = [sys.executable, "-m", "alembic"]
    return with_fresh(
        [
            Pair(
                "migrate-empty",
                "migrate (empty db) / upgrade head",
                manage + ["migrate", "--noinput"],
                alembic + ["upgrade", "head"],
                Target(),
                state="empty",
                floor=True,
            ),
            Pair(
                "check",
                "makemigrations --check / check",
                manage + ["makemigrations", "--check"],
                alembic + ["check"],
                Target(time=0.5 if size == ISSUE_SCHEMA else None),
            ),
        ]
    )


def real_history_pairs(folder: Path) -> list[Pair]:
    """No target: a real history shows where the time goes, on a project nobody generated."""
    python = str(folder / ".venv" / "bin" / "python")
    manage = [python, "manage.py"]
    upgrade = [python, str(Path(__file__).resolve().parent / "plain_alembic.py"), "upgrade"]
    return with_fresh(
        [
            Pair(
                "migrate-empty",
                "migrate (empty db) / upgrade heads",
                manage + ["migrate", "--noinput"],
                upgrade,
                Target(),
                state="empty",
            ),
            Pair(
                "showmigrations",
                "showmigrations / current",
                manage + ["showmigrations"],
                [python, "-m", "alembic", "current"],
                Target(),
            ),
            Pair(
                "migrate-noop",
                "migrate (at head) / upgrade heads",
                manage + ["migrate", "--noinput"],
                upgrade,
                Target(),
            ),
        ]
    )


def load_hooks(folder: Path):
    """The folder's hooks.py (standard library only at import time), or an empty module."""
    spec = importlib.util.spec_from_file_location(
        f"realhist_hooks_{folder.name}", folder / "hooks.py"
    )
    if spec is None or not (folder / "hooks.py").exists():
        return type(sys)("hooks")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def set_ini_url(ini: Path, url: str) -> None:
    """alembic.ini's sqlalchemy.url, for a project whose env.py reads it from there."""
    lines = [line for line in ini.read_text().splitlines() if not line.startswith("sqlalchemy.url")]
    lines.insert(lines.index("[alembic]") + 1, f"sqlalchemy.url = {url.replace('%', '%%')}")
    ini.write_text("\n".join(lines) + "\n")


ROOT = Path(__file__).resolve().parent.parent


def versions(admin: PostgresAdmin | None) -> dict[str, str]:
    found = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.node()}, {os.cpu_count()} cores, {platform.machine()}, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlalchemy": metadata.version("sqlalchemy"),
        "alembic": metadata.version("alembic"),
        "sqlmanage": metadata.version("sqlmanage"),
        "sqlite": sqlite3.sqlite_version,
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    if admin is not None:
        found["postgresql"] = admin.execute("SHOW server_version")[0]
    return found


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[1:6]),
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="only the small scenarios (N=100, M=100) and 3 runs: about 1.5 minutes",
    )
    parser.add_argument(
        "--runs",
        type=int,
        help="measured runs per command (default 5, 3 with --quick; "
        "at most 3 for commands slower than a few seconds)",
    )
    parser.add_argument(
        "--only",
        metavar="PATTERN",
        type=lambda s: [p for p in s.split(",") if p],
        default=[],
        help="rows whose backend/scenario/command contains PATTERN (comma-separated, "
        "globs allowed), e.g. 'sqlite/history-1000', 'migrate-empty', 'help'",
    )
    parser.add_argument(
        "--backends", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql"
    )
    parser.add_argument(
        "--history",
        type=lambda s: [int(x) for x in s.split(",")],
        help="history sizes (default 100,1000; 100 with --quick)",
    )
    parser.add_argument(
        "--schema",
        type=lambda s: [int(x) for x in s.split(",")],
        help="schema sizes (default 100,500; 100 with --quick)",
    )
    parser.add_argument(
        "--pg-url",
        default=PG_DEFAULT,
        help=f"PostgreSQL server URL ending in '/' (default {PG_DEFAULT})",
    )
    parser.add_argument(
        "--out", type=Path, help="generate the projects here and keep them (default: a temp dir)"
    )
    parser.add_argument(
        "--markdown", type=Path, help="also write the results as a Markdown table to this file"
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument(
        "--real-history",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="also a real project's history: a folder with .venv/, project/ (adopted), "
        "plain/ and hooks.py, as /tmp/realhist/NAME (repeatable; never installed here)",
    )
    args = parser.parse_args(argv)
    args.runs = args.runs or (3 if args.quick else 5)
    args.history = args.history or ([100] if args.quick else [100, 1000])
    args.schema = args.schema or ([100] if args.quick else [100, 500])
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(args.backends) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
    if not args.pg_url.endswith("/"):
        args.pg_url += "/"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    keep = args.out is not None
    work = args.out.resolve() if keep else Path(tempfile.mkdtemp(prefix="sqlmanage-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    admin = None
    if "postgresql" in args.backends:
        try:
            admin = PostgresAdmin(args.pg_url)
        except Exception as exc:  # the server is down or refuses us: say so and stop
            print(f"PostgreSQL at {args.pg_url} is not reachable: {exc}".strip(), file=sys.stderr)
            print("Start it, pass --pg-url, or run with --backends sqlite.", file=sys.stderr)
            return 1
    bench = Bench(args, work, admin)
    info = versions(admin)
    print("  ".join(f"{k}: {v}" for k, v in info.items()))
    print(f"projects in {work}{'' if keep else ' (removed at the end; --out DIR keeps them)'}\n")
    print_header()
    for location in importlib.util.find_spec("sqlmanage").submodule_search_locations:
        compile_tree(Path(location))
    try:
        bench.run_help()
        for backend in args.backends:
            for size in args.history:
                bench.run_scenario(backend, "history", size, history_pairs(backend, size))
            for size in args.schema:
                bench.run_scenario(backend, "schema", size, schema_pairs(backend, size))
            for folder in args.real_history:
                bench.run_real_history(backend, folder.resolve())
    finally:
        if admin is not None:
            admin.drop_all()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    info["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"\nload average at the end: {info['load average at end']} (a busy machine slows every row; "
        f"the CPU column, sqlmanage's CPU seconds / Alembic's, is steadier)"
    )
    print(
        f"medians of alternating runs (after one warm-up run each, except from an empty database); "
        f"ratio = sqlmanage / alembic; RSS = median peak RSS; floor = psql -1 -f / sqlite3 loading "
        f"the same SQL. {elapsed:.0f} s in all."
    )
    if args.markdown:
        args.markdown.write_text(markdown(bench.rows), encoding="utf-8")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"info": info, "rows": [r.as_dict() for r in bench.rows], "seconds": elapsed},
                indent=2,
            ),
            encoding="utf-8",
        )
    if bench.failures:
        print("\nFAILED COMMANDS:", file=sys.stderr)
        for failure in bench.failures:
            print(failure, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
