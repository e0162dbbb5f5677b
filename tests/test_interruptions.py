"""Interrupted and half-applied runs: rolled back where DDL is transactional, refused where not."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from conftest import execute, inspect_schema, migration_file, version_rows

HOLD = "SQLMANAGE_TEST_HOLD"  # set: the migration says where it is and waits to be killed
SLOW = migration_file(
    "0004_slow",
    upgrade=(
        '    op.create_table("events", sa.Column("id", sa.Integer, primary_key=True))\n'
        "    import os\n"
        f'    if os.environ.get("{HOLD}"):\n'
        '        print("0004_slow created events", flush=True)\n'
        "        time.sleep(120)"
    ),
    downgrade='    op.drop_table("events")',
)

HALF = migration_file(
    "0004_half",
    upgrade=(
        '    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))\n'
        '    op.execute("INSERT INTO no_such_table VALUES (1)")'
    ),
    downgrade='    op.drop_table("half_done")',
)


def _read_until(process, marker: str) -> str:
    """Read the run's stdout until ``marker`` (an event, not a guess at start-up time)."""
    import os

    seen = b""
    while marker.encode() not in seen:
        chunk = os.read(process.stdout.fileno(), 4096)
        assert chunk, f"the run ended before {marker!r}: {seen.decode()}"
        seen += chunk
    return seen.decode()


@pytest.mark.postgres
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_rolls_the_migration_back_and_releases_the_lock(project, pg_url, signum):
    env = {"DATABASE_URL": pg_url}
    project.manage("migrate", env=env)
    (project.versions / "0004_slow.py").write_text(SLOW)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=project.path,
        env=project.environment({**env, HOLD: "1"}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A run started from a background job inherits SIGINT ignored (no Ctrl-C reaches it
        # there); give it a terminal's default disposition, as when a developer presses Ctrl-C.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    started = _read_until(process, "0004_slow created events")  # inside the migration now
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=30)
    stdout = started + stdout
    assert process.returncode == 130, stdout + stderr
    assert "Interrupted while applying 0004_slow" in stderr
    assert "rolled back" in stderr
    assert "Traceback" not in stderr
    assert version_rows(pg_url) == {"0003_fill_discount_rate"}
    assert "events" not in inspect_schema(pg_url)
    again = project.run("migrate", "--noinput", "--lock-timeout", "2", env=env)
    assert again.returncode == 0, again.stderr
    assert version_rows(pg_url) == {"0004_slow"}


@pytest.mark.mariadb
def test_mariadb_half_applied_migration_is_refused_until_recorded(project, mariadb_url):
    env = {"DATABASE_URL": mariadb_url}
    project.manage("migrate", env=env)
    path = project.versions / "0004_half.py"
    path.write_text(HALF)

    failed = project.run("migrate", "--noinput", env=env)
    assert failed.returncode == 1
    assert "cannot roll back DDL" in failed.stderr
    assert "half_done" in inspect_schema(mariadb_url), "MariaDB committed the CREATE TABLE"

    refused = project.run("migrate", "--noinput", env=env)
    assert refused.returncode == 1
    assert "0004_half was cut off while it ran" in refused.stderr
    assert "migrate --fake" in refused.stderr

    # The user undoes it by hand, fixes the file, records the real state, and migrates.
    execute(mariadb_url, "DROP TABLE half_done")
    path.write_text(HALF.replace('    op.execute("INSERT INTO no_such_table VALUES (1)")\n', ""))
    project.manage("migrate", "--fake", "0003", env=env)
    project.manage("migrate", env=env)
    assert version_rows(mariadb_url) == {"0004_half"}
    assert "half_done" in inspect_schema(mariadb_url)


KILL_POINTS = migration_file(
    "0004_three",
    upgrade=(
        "    import os\n"
        '    for name in ("k1", "k2", "k3"):\n'
        '        op.create_table(name, sa.Column("id", sa.Integer, primary_key=True))\n'
        f'        if os.environ.get("{HOLD}") == name:\n'
        '            print(f"0004_three created {name}", flush=True)\n'
        "            time.sleep(120)"
    ),
    downgrade='    for name in ("k3", "k2", "k1"):\n        op.drop_table(name)',
)
ORDER = ["0001_initial", "0002_add_products_discount_rate", "0003_fill_discount_rate", "0004_three"]


def assert_whole(url: str) -> None:
    """Each migration is wholly applied or not at all, and the version table says which."""
    schema = inspect_schema(url)
    applied = version_rows(url)
    reached = ORDER.index(next(iter(applied))) if applied else -1
    present = {
        "0001_initial": {"categories", "products", "customers", "reviews"} <= set(schema),
        "0002_add_products_discount_rate": "discount_rate" in schema.get("products", set()),
        "0004_three": bool({"k1", "k2", "k3"} & set(schema)),
    }
    for index, name in enumerate(ORDER):
        if name in present:
            assert present[name] == (index <= reached), (name, applied, schema)
    if "0004_three" in applied:
        assert {"k1", "k2", "k3"} <= set(schema)


def kill_at(project, env: dict, marker: str, hold: str | None = None) -> None:
    """Run migrate, SIGKILL it the moment ``marker`` appears on its stdout."""
    extra = {HOLD: hold} if hold else {}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=project.path,
        env=project.environment({**env, **extra}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _read_until(process, marker)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_sigkill_never_leaves_a_half_applied_migration(project, request, kind):
    """SIGKILL inside a migration (after its first and after its last statement, before the
    commit): it is not applied and none of its tables exist. SIGKILL as each earlier migration
    starts: whatever it reached, each migration is whole. A final run completes."""
    if kind == "postgresql":
        url = request.getfixturevalue("pg_url")
        env = {"DATABASE_URL": url}
    else:
        url, env = f"sqlite:///{project.sqlite_file}", {}
    (project.versions / "0004_three.py").write_text(KILL_POINTS)
    project.manage("migrate", "0003", env=env)
    for table in ("k1", "k3"):
        kill_at(project, env, f"0004_three created {table}", hold=table)
        assert version_rows(url) == {"0003_fill_discount_rate"}
        assert not {"k1", "k2", "k3"} & set(inspect_schema(url)), f"killed after {table}"
        assert_whole(url)
    for name in ORDER[:3]:
        project.manage("migrate", "zero", "--noinput", "--lock-timeout", "10", env=env)
        kill_at(project, env, f"Applying {name}")
        assert_whole(url)
    final = project.run("migrate", "--noinput", "--lock-timeout", "10", env=env)
    assert final.returncode == 0, final.stderr
    assert version_rows(url) == {"0004_three"}
    assert_whole(url)
