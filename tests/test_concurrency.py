"""Concurrent migrate runs against one database: each migration runs exactly once.

A pending migration creates a table, is held there, and inserts a row; N processes of
``manage.py migrate --noinput`` start together. The migration is released only once every
other run has said it waits for the lock (events read from their output, not a guess at
timing), so the runs really overlap. All must exit 0, the row must exist once, and every run
but one must have waited for the lock, saying so once on stderr.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time

import pytest

from conftest import LAUNCHER, direct_engine, inspect_schema, migration_file, version_rows

HOLD = "SQLMANAGE_TEST_HOLD"  # a file: 0004_slow waits, its table created, until it exists
WAITING = "Waiting for the migration lock"
SLOW_MIGRATION = migration_file(
    "0004_slow",
    upgrade=(
        '    op.create_table("events", sa.Column("id", sa.Integer, primary_key=True), sa.Column("note", sa.String(20)))\n'
        "    import os\n"
        f'    release = os.environ.get("{HOLD}")\n'
        "    if release:\n"
        '        print("0004_slow holds its table", flush=True)\n'
        "        deadline = time.monotonic() + 90\n"
        "        while not os.path.exists(release):\n"
        '            assert time.monotonic() < deadline, "0004_slow was never released"\n'
        "            time.sleep(0.02)\n"
        "    op.execute(\"INSERT INTO events (note) VALUES ('once')\")"
    ),
    downgrade='    op.drop_table("events")',
)


def start_together(
    project,
    count: int,
    env: dict,
    *args: str,
    command=None,
    running: str = "0004_slow holds its table",
) -> list[subprocess.CompletedProcess]:
    """Start ``count`` runs at once; release 0004_slow when one runs it and all others wait."""
    release = project.path / "release-0004"
    env = project.environment({**env, HOLD: str(release)})
    command = command or [sys.executable, "manage.py", "migrate", "--noinput", *args]
    processes = [LAUNCHER.popen(command, project.path, env) for _ in range(count)]
    seen = {(i, name): b"" for i in range(count) for name in ("stdout", "stderr")}
    selector = selectors.DefaultSelector()
    for i, process in enumerate(processes):
        selector.register(process.stdout, selectors.EVENT_READ, (i, "stdout"))
        selector.register(process.stderr, selectors.EVENT_READ, (i, "stderr"))

    def output(i: int) -> str:
        return (seen[i, "stdout"] + seen[i, "stderr"]).decode()

    def overlapping() -> bool:
        holders = [i for i in range(count) if running in output(i)]
        return len(holders) == 1 and all(
            WAITING in output(i) for i in range(count) if i != holders[0]
        )

    deadline = time.monotonic() + 120
    try:
        while not overlapping():
            assert selector.get_map(), "every run ended before they overlapped:\n" + "\n".join(
                map(output, range(count))
            )
            assert time.monotonic() < deadline, "the runs never overlapped:\n" + "\n".join(
                map(output, range(count))
            )
            for key, _ in selector.select(timeout=1):
                chunk = os.read(key.fileobj.fileno(), 65536)
                if chunk:
                    seen[key.data] += chunk
                else:
                    selector.unregister(key.fileobj)
        release.touch()
        results = []
        for i, process in enumerate(processes):
            stdout, stderr = process.communicate(timeout=120)
            results.append(
                subprocess.CompletedProcess(
                    process.args,
                    process.returncode,
                    (seen[i, "stdout"] + stdout).decode(),
                    (seen[i, "stderr"] + stderr).decode(),
                )
            )
        return results
    finally:
        selector.close()
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def assert_applied_once(results, url: str) -> None:
    for result in results:
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
    applying = [
        line for r in results for line in r.stdout.splitlines() if "Applying 0004_slow" in line
    ]
    assert len(applying) == 1, applying
    # Every other run waited (the one that applied 0004 may have waited for an earlier step),
    # and a run says so once, however many steps it waits for.
    others = [r for r in results if "Applying 0004_slow" not in r.stdout]
    assert all(WAITING in r.stderr for r in others), [r.stderr for r in others]
    assert all(r.stderr.count(WAITING) <= 1 for r in results), [r.stderr for r in results]
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

    from sqlmanage.engine.lock import advisory_key, lock_name

    database_name = pg_url.rsplit("/", 1)[1]
    key = advisory_key(lock_name(database_name, None, "alembic_version"))
    holder = direct_engine(pg_url)
    try:
        with holder.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            connection.commit()
            result = project.run(
                "migrate", "--noinput", "--lock-timeout", "1", env={"DATABASE_URL": pg_url}
            )
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
    assert sorted(p.name for p in release.iterdir()) == ["app.sqlite3"], (
        "a lock file beside the link"
    )


@pytest.mark.postgres
def test_a_killed_runner_releases_the_lock(project, pg_url):
    """SIGKILL in the middle of a migration: nothing half-applied, and the next run completes."""
    import signal

    (project.versions / "0004_slow.py").write_text(SLOW_MIGRATION)
    env = {"DATABASE_URL": pg_url}
    project.manage("migrate", "0003", env=env)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=project.path,
        env=project.environment({**env, HOLD: str(project.path / "never-released")}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    seen = b""
    while b"0004_slow holds its table" not in seen:  # its CREATE TABLE ran, uncommitted
        chunk = os.read(process.stdout.fileno(), 4096)
        assert chunk, (
            f"the run ended before 0004_slow ran: {seen.decode()} {process.stderr.read().decode()}"
        )
        seen += chunk
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert version_rows(pg_url) == {"0003_fill_discount_rate"}
    assert "events" not in inspect_schema(pg_url), "the killed migration left its table behind"
    # A lock the dead run still held would make this run give up after 10 seconds, exit 1.
    result = project.run("migrate", "--noinput", "--lock-timeout", "10", env=env)
    assert result.returncode == 0, result.stderr
    assert_applied_once([result], pg_url)


@pytest.mark.postgres
def test_plain_alembic_upgrades_at_once_apply_each_migration_once(project, pg_url):
    """Plain 'alembic upgrade head' goes through the same per-transaction lock and re-check."""
    (project.versions / "0004_slow.py").write_text(SLOW_MIGRATION)
    results = start_together(
        project,
        4,
        {"DATABASE_URL": pg_url},
        command=[sys.executable, "-m", "alembic", "upgrade", "head"],
    )
    for result in results:
        assert result.returncode == 0, result.stdout + result.stderr
    running = [
        line for r in results for line in r.stderr.splitlines() if "Running upgrade 0003" in line
    ]
    assert len(running) == 1, running
    assert version_rows(pg_url) == {"0004_slow"}
    engine = direct_engine(pg_url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM events").scalar() == 1
    finally:
        engine.dispose()


@pytest.mark.mariadb
def test_mariadb_run_reading_while_another_changes_the_audit_table(project, mariadb_url):
    """A run starts while another changes sqlmanage's audit table: no ER_TABLE_DEF_CHANGED.

    MariaDB refuses (1412) a REPEATABLE READ read of a table created or altered after the
    transaction's snapshot was taken. The version table and the audit table are read before
    the migration lock, while another run may be creating or upgrading them: each read must
    see the table as it is then, not through a snapshot taken by the read before it.
    Here the audit table has an older sqlmanage's layout (no version_table column), which
    the other run rebuilds (ALGORITHM=COPY: a new table to a snapshot, as a CREATE is); the
    test holds the table (LOCK TABLES) until the new run, having read the version table,
    waits to read it, then makes the other run's ALTER. Fails with 1412 when one snapshot
    serves both reads.
    """
    from sqlalchemy import text

    from sqlmanage.engine.audit import AUDIT_TABLE

    env = {"DATABASE_URL": mariadb_url}
    assert project.alembic("upgrade", "0001", env=env).returncode == 0
    engine = direct_engine(mariadb_url)
    with engine.connect() as other, engine.connect() as watcher:
        other.exec_driver_sql(
            f"CREATE TABLE {AUDIT_TABLE} (id INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY, "
            "revision VARCHAR(32) NOT NULL, direction VARCHAR(16) NOT NULL, "
            "applied_at DATETIME NOT NULL, duration_ms INTEGER, db_user VARCHAR(128), "
            "host VARCHAR(255), checksum VARCHAR(64))"
        )
        other.exec_driver_sql(f"LOCK TABLES {AUDIT_TABLE} WRITE")
        process = LAUNCHER.popen(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            project.path,
            project.environment(env),
        )
        try:
            waiting = text(
                "SELECT count(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() "
                "AND STATE = 'Waiting for table metadata lock' AND INFO LIKE :select"
            )
            deadline = time.monotonic() + 60
            while not watcher.execute(waiting, {"select": f"SELECT%FROM {AUDIT_TABLE}%"}).scalar():
                watcher.commit()
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the new run never came to read the audit table"
                time.sleep(0.02)
            other.exec_driver_sql(
                f"ALTER TABLE {AUDIT_TABLE} ADD COLUMN version_table VARCHAR(128), ALGORITHM=COPY"
            )
            other.exec_driver_sql("UNLOCK TABLES")
            stdout, stderr = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    engine.dispose()
    output = stdout.decode() + stderr.decode()
    assert process.returncode == 0, output
    assert "Applying 0002" in stdout.decode()
    assert version_rows(mariadb_url) == {"0003_fill_discount_rate"}


def _read_with_the_lock(url: str, driver: str, on_wait, settings=()) -> tuple:
    """What a migration's transaction sees: sqlmanage's lock, then the version table, and
    the lock_timeout it runs under."""
    import asyncio
    from pathlib import Path

    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    from sqlmanage.engine.lock import migration_lock
    from sqlmanage.settings import Settings

    versions = sa.table("alembic_version", sa.column("version_num"))
    read = sa.select(versions.c.version_num)

    def run(connection):
        with migration_lock(connection, Settings("tests", Path.cwd(), {}), 30, on_wait) as lock:
            assert type(lock).__name__ == "_PostgresLock"
            try:
                applied, heads = lock.hold_and_read(connection, settings, read)
                limit = connection.exec_driver_sql("SHOW lock_timeout").scalar()
                return applied, heads, limit
            finally:
                connection.rollback()

    rest = url.split("://", 1)[1]
    if driver == "psycopg2":
        engine = sa.create_engine(f"postgresql+psycopg2://{rest}", poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as connection:
                return run(connection)
        finally:
            engine.dispose()

    async def run_async():
        engine = create_async_engine(f"postgresql+asyncpg://{rest}", poolclass=sa.pool.NullPool)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(run)
        finally:
            await engine.dispose()

    return asyncio.run(run_async())


@pytest.mark.postgres
@pytest.mark.parametrize("driver", ["psycopg2", "asyncpg"])
@pytest.mark.parametrize("when", ["before", "while-waiting"])
def test_version_read_with_the_lock_sees_the_last_holders_commit(pg_url, driver, when):
    """Another run moves the version table and commits just before this run gets the lock
    (before it asks, or while it waits in the server): this run's read must see the move.

    The lock and the read travel together on psycopg2; were they one statement, the read's
    snapshot would predate the lock (and so the commit made while waiting). Did the lock
    statement not stop the read when the lock is held elsewhere, the run would not wait.
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from sqlmanage.engine.lock import advisory_key, lock_name

    database = pg_url.rsplit("/", 1)[1]
    key = advisory_key(lock_name(database, None, "alembic_version"))
    setup = direct_engine(pg_url)
    other = direct_engine(pg_url)
    told = threading.Event()
    try:
        with setup.begin() as connection:
            connection.exec_driver_sql(
                "CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"
            )
            connection.exec_driver_sql("INSERT INTO alembic_version VALUES ('0001')")
        with other.connect() as holder:
            holder.exec_driver_sql(f"SELECT pg_advisory_xact_lock({key})")
            holder.exec_driver_sql("UPDATE alembic_version SET version_num = '0002'")
            if when == "before":
                holder.commit()
                found = _read_with_the_lock(pg_url, driver, lambda notice: told.set())
                assert found == (True, {"0002"}, "0")
                assert not told.is_set()
                return
            pool = ThreadPoolExecutor(1)
            try:
                reading = pool.submit(
                    _read_with_the_lock,
                    pg_url,
                    driver,
                    lambda notice: told.set(),
                    (("lock_timeout", "2000ms"),),
                )
                deadline = time.monotonic() + 30
                with setup.connect() as watcher:
                    while True:
                        waiting = watcher.exec_driver_sql(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory'"
                            " AND datname = current_database()"
                        ).scalar()
                        watcher.rollback()  # pg_stat_activity holds still within a transaction
                        if waiting:
                            break
                        assert time.monotonic() < deadline, "the run never waited in the server"
                        assert not reading.done(), f"did not wait for the lock: {reading.result()}"
                        time.sleep(0.02)
            finally:
                holder.commit()  # the move and the lock's release, at once
                pool.shutdown()
            # the step's settings hold in the transaction it runs in (begun again here)
            assert reading.result() == (True, {"0002"}, "2s")
            assert told.is_set(), "the run waited without saying who holds the lock"
    finally:
        setup.dispose()
        other.dispose()
