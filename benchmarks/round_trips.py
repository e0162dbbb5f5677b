"""Round trips to the database per migration: sqlmanage's migrate against plain Alembic's upgrade.

    python benchmarks/round_trips.py                 # history of 100 revisions, PostgreSQL
    python benchmarks/round_trips.py --revisions 1000 --pg-url postgresql+psycopg2://postgres@127.0.0.1:5432/

Each tool runs in a process of its own, from an empty database to head, with SQLAlchemy
events counting what goes to the server: statements (cursor executes), and the transactions'
BEGIN, COMMIT and ROLLBACK, each of which psycopg2 sends as a round trip of its own. Wall
time on a shared machine is noise at this scale; the counts are exact and repeatable.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scenarios  # noqa: E402

PG_DEFAULT = "postgresql+psycopg2://postgres@127.0.0.1:5432/"

# Runs in the measured process: counts, then hands over to the tool's own entry point.
COUNTER = r"""
import collections, json, runpy, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine

counts = collections.Counter()

import time
started = {}

@event.listens_for(Engine, "before_cursor_execute")
def statement(conn, cursor, text, parameters, context, executemany):
    counts["statements"] += 1
    word = (text.split(None, 1) or ["?"])[0].upper()
    if "pg_try_advisory_xact_lock" in text:
        word = "SELECT (lock)"
    elif "alembic_version" in text and word == "SELECT":
        word = "SELECT (version)"
    counts["first word: " + word] += 1
    started[id(cursor)] = (word, time.perf_counter())

@event.listens_for(Engine, "after_cursor_execute")
def statement_done(conn, cursor, text, parameters, context, executemany):
    word, start = started.pop(id(cursor), ("?", time.perf_counter()))
    counts["ms: " + word] += (time.perf_counter() - start) * 1000

for name in ("begin", "commit", "rollback"):
    event.listen(Engine, name, lambda conn, _name=name: counts.__setitem__(_name, counts[_name] + 1))

out, tool, *argv = sys.argv[1:]
sys.argv = [tool, *argv]
try:
    if tool == "alembic":
        from alembic.config import main
        main(argv=argv, prog="alembic")
    else:
        runpy.run_path("manage.py", run_name="__main__")
except SystemExit as exc:
    if exc.code not in (0, None):
        raise
with open(out, "w") as f:
    json.dump(counts, f)
"""


def count(tool: str, cwd: Path, url: str) -> dict:
    import os

    env = {
        k: v for k, v in os.environ.items() if k not in ("SQLMANAGE_SETTINGS_MODULE", "NO_COLOR")
    }
    env["DATABASE_URL"] = url
    argv = (
        ["alembic", "upgrade", "head"]
        if tool == "alembic"
        else ["manage.py", "migrate", "--noinput"]
    )
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [sys.executable, "-c", COUNTER, out.name, *argv],
            cwd=cwd,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return json.loads(Path(out.name).read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revisions", type=int, default=100)
    parser.add_argument("--pg-url", default=PG_DEFAULT)
    parser.add_argument("--json", type=Path, help="also write the counts here")
    args = parser.parse_args(argv)
    import psycopg2
    from sqlalchemy.engine import make_url

    base = args.pg_url if args.pg_url.endswith("/") else args.pg_url + "/"
    server = make_url(base)
    admin = psycopg2.connect(
        host=server.host,
        port=server.port or 5432,
        user=server.username,
        password=server.password,
        dbname="postgres",
    )
    admin.autocommit = True
    results = {}
    with tempfile.TemporaryDirectory(prefix="sqlmanage-round-trips-") as work:
        copies = scenarios.generate("history", args.revisions, Path(work))
        for tool in ("sqlmanage", "alembic"):
            name = f"sqlmanage_bench_rt_{uuid.uuid4().hex[:8]}"
            with admin.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
            try:
                results[tool] = count(tool, copies[tool], base + name)
            finally:
                with admin.cursor() as cursor:
                    cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()
    keys = ["statements", "begin", "commit", "rollback"]
    print(f"{'':28} {'sqlmanage':>10} {'alembic':>10}   per migration (s / a)")
    for key in keys + ["round trips"]:
        values = []
        for tool in ("sqlmanage", "alembic"):
            found = results[tool]
            values.append(
                sum(found.get(k, 0) for k in keys) if key == "round trips" else found.get(key, 0)
            )
        print(
            f"{key:28} {values[0]:>10} {values[1]:>10}   {values[0] / args.revisions:6.2f} / "
            f"{values[1] / args.revisions:.2f}"
        )
    words = sorted({k for r in results.values() for k in r if k.startswith("first word: ")})
    for key in words:
        timing = "ms: " + key[12:]
        print(
            f"  {key[12:]:26} {results['sqlmanage'].get(key, 0):>10} {results['alembic'].get(key, 0):>10}"
            f"   {results['sqlmanage'].get(timing, 0):8.0f} ms / {results['alembic'].get(timing, 0):.0f} ms"
        )
    print(
        "(ms: time inside the driver's execute, the BEGIN psycopg2 sends before a transaction's first "
        "statement included; noisy on a shared machine)"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
