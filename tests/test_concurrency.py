"""Concurrent migrate runs against one database: each migration runs exactly once.

A pending migration creates a table, sleeps and inserts a row; N processes of
``manage.py migrate --noinput`` start together. All must exit 0, the row must exist once,
and every run but one must have waited for the lock (and said so once on stderr).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import direct_engine, inspect_schema, migration_file, version_rows

SLOW_MIGRATION = migration_file(
    "0004_slow",
    upgrade=(
        '    op.create_table("events", sa.Column("id", sa.Integer, primary_key=True), sa.Column("note", sa.String(20)))\n'
        '    time.sleep(0.6)\n'
        '    op.execute("INSERT INTO events (note) VALUES (\'once\')")'
    ),
    downgrade='    op.drop_table("events")',
)


def start_together(project, count: int, env: dict, *args: str) -> list[subprocess.CompletedProcess]:
    processes = [
        subprocess.Popen(
            [sys.executable, "manage.py", "migrate", "--noinput", *args], cwd=project.path,
            env=project.environment(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(count)
    ]
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    return results


def assert_applied_once(results, url: str) -> None:
    for result in results:
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
    applying = [line for r in results for line in r.stdout.splitlines() if "Applying 0004_slow" in line]
    assert len(applying) == 1, applying
    waited = [r for r in results if "Waiting for the migration lock" in r.stderr]
    assert len(waited) >= 1 or len(results) == 1
    for result in waited:
        assert result.stderr.count("Waiting for the migration lock") == 1
    assert version_rows(url) == {"0004_slow"}
    engine = direct_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM events").scalar() == 1
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("count", [2, 4, 8])
@pytest.mark.parametrize("start", ["empty", "head-minus-one"])
def test_postgresql_concurrent_migrates_apply_each_migration_once(project, pg_url, count, start):
    (project.versions / "0004_slow.py").write_text(SLOW_MIGRATION)
    env = {"DATABASE_URL": pg_url}
    if start == "head-minus-one":
        project.manage("migrate", "0003", env=env)
    assert_applied_once(start_together(project, count, env), pg_url)


@pytest.mark.mariadb
def test_mariadb_concurrent_migrates_apply_each_migration_once(project, mariadb_url):
    (project.versions / "0004_slow.py").write_text(SLOW_MIGRATION)
    env = {"DATABASE_URL": mariadb_url}
    assert_applied_once(start_together(project, 4, env), mariadb_url)


def test_sqlite_concurrent_migrates_apply_each_migration_once(project):
    (project.versions / "0004_slow.py").write_text(SLOW_MIGRATION)
    assert_applied_once(start_together(project, 4, {}), f"sqlite:///{project.sqlite_file}")


@pytest.mark.postgres
def test_postgresql_lock_timeout_gives_up_with_who_holds_it(project, pg_url):
    """A lock held elsewhere: --lock-timeout 1 exits 1 naming the holder, having changed nothing."""
    from sqlalchemy import text

    from sqlmanage.core.lock import advisory_key, lock_name

    database_name = pg_url.rsplit("/", 1)[1]
    key = advisory_key(lock_name(database_name, None, "alembic_version"))
    holder = direct_engine(pg_url)
    try:
        with holder.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            connection.commit()
            result = project.run("migrate", "--noinput", "--lock-timeout", "1", env={"DATABASE_URL": pg_url})
            assert result.returncode == 1
            assert "Waiting for the migration lock" in result.stderr
            assert "Gave up waiting for the migration lock" in result.stderr
            assert "held by pid" in result.stderr
            assert "Traceback" not in result.stderr
            assert version_rows(pg_url) == set()
            read_only = project.run("showmigrations", env={"DATABASE_URL": pg_url})
            assert read_only.returncode == 0, "a read-only command waited for the lock"
            plan = project.run("migrate", "--plan", env={"DATABASE_URL": pg_url})
            assert plan.returncode == 0
    finally:
        holder.dispose()


def test_sqlite_lock_timeout(project):
    import fcntl

    project.manage("migrate", "0001")
    with open(f"{project.sqlite_file}.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        result = project.run("migrate", "--noinput", "--lock-timeout", "0.5")
    assert result.returncode == 1
    assert "Gave up waiting for the migration lock" in result.stderr
    assert project.sqlite_version() == {"0001_initial"}


def test_sqlite_lock_sits_beside_the_real_file_not_a_symlink(project, tmp_path):
    """Capistrano-style release folders each link to one shared database file: a run
    through a release's link waits for the lock that a run on the real file holds."""
    import fcntl
    import sqlite3

    shared = tmp_path / "shared"
    shared.mkdir()
    sqlite3.connect(shared / "app.sqlite3").close()
    release = tmp_path / "releases" / "20261203"
    release.mkdir(parents=True)
    (release / "app.sqlite3").symlink_to(shared / "app.sqlite3")
    linked = {"DATABASE_URL": f"sqlite:///{release / 'app.sqlite3'}"}
    project.manage("migrate", "0001", env=linked)
    with open(shared / "app.sqlite3.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        result = project.run("migrate", "--noinput", "--lock-timeout", "0.5", env=linked)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Gave up waiting for the migration lock" in result.stderr
    assert sorted(p.name for p in release.iterdir()) == ["app.sqlite3"], "a lock file beside the link"


@pytest.mark.postgres
def test_a_killed_runner_releases_the_lock(project, pg_url):
    """SIGKILL in the middle of a migration: nothing half-applied, and the next run completes."""
    import signal
    import time

    (project.versions / "0004_slow.py").write_text(SLOW_MIGRATION.replace("time.sleep(0.6)", "time.sleep(5)"))
    env = {"DATABASE_URL": pg_url}
    project.manage("migrate", "0003", env=env)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=project.path,
        env=project.environment(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(2.5)  # start-up and the lock take well under a second; 0004 sleeps for 5
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert version_rows(pg_url) == {"0003_fill_discount_rate"}
    assert "events" not in inspect_schema(pg_url), "the killed migration left its table behind"
    started = time.monotonic()
    result = project.run("migrate", "--noinput", "--lock-timeout", "10", env=env)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 10
    assert_applied_once([result], pg_url)


@pytest.mark.postgres
def test_plain_alembic_upgrades_at_once_apply_each_migration_once(project, pg_url):
    """Plain 'alembic upgrade head' goes through the same per-transaction lock and re-check."""
    (project.versions / "0004_slow.py").write_text(SLOW_MIGRATION)
    env = project.environment({"DATABASE_URL": pg_url})
    processes = [
        subprocess.Popen([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=project.path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stdout + stderr
    running = [line for _, stderr in outputs for line in stderr.splitlines() if "Running upgrade 0003" in line]
    assert len(running) == 1, running
    assert version_rows(pg_url) == {"0004_slow"}
    engine = direct_engine(pg_url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM events").scalar() == 1
    finally:
        engine.dispose()
