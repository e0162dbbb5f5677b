"""Side-by-side timings of sqlmanage and plain Alembic on the example project.

    python benchmarks/compare.py [--runs 7]

Each pair runs alternately on identical copies of the example project (SQLite), several
times; the table gives medians, peak RSS and the ratio sqlmanage / Alembic. Not part of the
test run. The full suite with large histories and schemas is issue 5's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs a command and reports its wall time and peak RSS, measured around that one child.
PROBE = r"""
import json, resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "rss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "code": code}))
"""


def copy_project(target: Path) -> Path:
    target.mkdir()
    for name in ("manage.py", "alembic.ini"):
        shutil.copy(ROOT / name, target)
    shutil.copytree(ROOT / "project", target / "project",
                    ignore=shutil.ignore_patterns("__pycache__", "db.sqlite3"))
    return target


def measure(command: list[str], cwd: Path, env: dict, prepare=None) -> dict:
    if prepare:
        prepare()
    out = subprocess.run([sys.executable, "-c", PROBE, *command], cwd=cwd, env=env,
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    if result["code"] != 0:
        raise SystemExit(f"{command} failed in {cwd}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTHONDONTWRITEBYTECODE")}
    manage = [sys.executable, "manage.py"]
    alembic = [sys.executable, "-m", "alembic"]

    with tempfile.TemporaryDirectory() as tmp:
        ours, theirs = copy_project(Path(tmp) / "ours"), copy_project(Path(tmp) / "theirs")

        def fresh(directory: Path):
            return lambda: (directory / "db.sqlite3").unlink(missing_ok=True)

        def at_head(directory: Path, command: list[str]):
            def prepare():
                if not (directory / "db.sqlite3").exists():
                    subprocess.run(command, cwd=directory, env=env, check=True, capture_output=True)
            return prepare

        pairs = [
            ("--help", manage + ["--help"], None, alembic + ["--help"], None),
            ("showmigrations vs alembic current", manage + ["showmigrations"],
             at_head(ours, manage + ["migrate"]), alembic + ["current"], at_head(theirs, alembic + ["upgrade", "head"])),
            ("showmigrations vs alembic history", manage + ["showmigrations"],
             at_head(ours, manage + ["migrate"]), alembic + ["history"], None),
            ("migrate (empty db) vs upgrade head", manage + ["migrate"], fresh(ours),
             alembic + ["upgrade", "head"], fresh(theirs)),
            ("migrate (at head) vs upgrade head", manage + ["migrate"], at_head(ours, manage + ["migrate"]),
             alembic + ["upgrade", "head"], at_head(theirs, alembic + ["upgrade", "head"])),
        ]
        for _, command, prepare, other, other_prepare in pairs:
            measure(command, ours, env, prepare)
            measure(other, theirs, env, other_prepare)

        print(f"{'scenario':38} {'sqlmanage':>10} {'alembic':>10} {'ratio':>6} {'RSS MiB':>15}")
        for label, command, prepare, other, other_prepare in pairs:
            ours_runs, theirs_runs = [], []
            for _ in range(runs):
                ours_runs.append(measure(command, ours, env, prepare))
                theirs_runs.append(measure(other, theirs, env, other_prepare))
            a = statistics.median(r["seconds"] for r in ours_runs)
            b = statistics.median(r["seconds"] for r in theirs_runs)
            rss_a = max(r["rss_kib"] for r in ours_runs) / 1024
            rss_b = max(r["rss_kib"] for r in theirs_runs) / 1024
            print(f"{label:38} {a:9.3f}s {b:9.3f}s {a / b:6.2f} {rss_a:6.1f} / {rss_b:6.1f}")
    print(f"\nmedians of {runs} alternating runs; {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
