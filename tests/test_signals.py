"""SIGTERM and SIGINT act now: the statement running is cancelled, the run rolled back.

A pod told to stop has 30 seconds before SIGKILL. Here the migration's statement waits on a
lock that the test itself holds (or runs a statement that would take ten minutes); the run
must exit while that is still so, with exit 130 and nothing of the migration left behind.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from conftest import direct_engine, inspect_schema, migration_file, version_rows

WAITS_FOR_LOCK = migration_file(
    "0004_add_note",
    upgrade='    op.add_column("products", sa.Column("note", sa.String(20)))',
    downgrade='    op.drop_column("products", "note")',
)
LONG_STATEMENT = migration_file(
    "0004_add_note",
    upgrade=(
        '    op.add_column("products", sa.Column("note", sa.String(20)))\n'
        '    op.execute("SELECT pg_sleep(600)")'
    ),
    downgrade='    op.drop_column("products", "note")',
)
SQLITE_LONG_STATEMENT = migration_file(
    "0004_add_note",
    upgrade=(
        '    op.add_column("products", sa.Column("note", sa.String(20)))\n'
        '    open("statement-started", "w").close()\n'
        '    op.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) '
        'SELECT count(*) FROM n")'
    ),
    downgrade='    op.drop_column("products", "note")',
)


def _start(project, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=project.path,
        env=project.environment(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # SIGINT with a terminal's disposition, not the ignored one of a background job.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for_statement(monitor, process, event: str) -> None:
    """Until sqlmanage's statement is in the server, waiting on a lock or sleeping."""
    condition = "wait_event_type = 'Lock'" if event == "lock" else "query LIKE '%%pg_sleep(600)%%'"
    for _ in range(600):
        assert process.poll() is None, process.communicate()
        found = monitor.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sqlmanage' "
            f"AND datname = current_database() AND state = 'active' AND {condition}"
        ).scalar()
        if found:
            return
        time.sleep(0.1)
    pytest.fail("the migration's statement never reached the server")


def _assert_interrupted(process, stdout: str, stderr: str) -> None:
    assert process.returncode == 130, stdout + stderr
    assert "Interrupted while applying 0004_add_note" in stderr
    assert "rolled back" in stderr
    assert "Traceback" not in stderr


@pytest.mark.postgres
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("event", ["lock", "long"], ids=["waits-on-a-lock", "long-statement"])
def test_a_signal_cancels_the_running_statement(project, pg_url, signum, event):
    env = {"DATABASE_URL": pg_url}
    project.manage("migrate", env=env)
    (project.versions / "0004_add_note.py").write_text(
        WAITS_FOR_LOCK if event == "lock" else LONG_STATEMENT
    )
    engine = direct_engine(pg_url)
    try:
        with engine.connect() as blocker, engine.connect() as monitor:
            monitor.execution_options(isolation_level="AUTOCOMMIT")
            blocker.exec_driver_sql("SELECT count(*) FROM products")  # holds ACCESS SHARE
            if event == "long":
                blocker.rollback()
            process = _start(project, env)
            _wait_for_statement(
                monitor.execution_options(isolation_level="AUTOCOMMIT"), process, event
            )
            sent = time.monotonic()
            process.send_signal(signum)
            try:
                stdout, stderr = process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                pytest.fail("the run did not exit while its statement was still waiting")
            seconds = time.monotonic() - sent
            # The blocking transaction is still open here: the run did not wait for it.
            assert blocker.in_transaction() == (event == "lock")
    finally:
        engine.dispose()
    _assert_interrupted(process, stdout, stderr)
    doing = "waited on a lock" if event == "lock" else "ran a long statement"
    print(f"\n{signal.Signals(signum).name} while the migration {doing}: exit after {seconds:.2f}s")
    assert version_rows(pg_url) == {"0003_fill_discount_rate"}
    assert "note" not in inspect_schema(pg_url)["products"]


def test_sqlite_a_signal_interrupts_the_running_statement(project):
    project.manage("migrate")
    (project.versions / "0004_add_note.py").write_text(SQLITE_LONG_STATEMENT)
    marker = project.path / "statement-started"
    process = _start(project, {})
    for _ in range(600):
        if marker.exists() or process.poll() is not None:
            break
        time.sleep(0.1)
    assert marker.exists(), process.communicate()
    process.send_signal(signal.SIGTERM)
    try:
        stdout, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the run did not exit while its statement ran")
    _assert_interrupted(process, stdout, stderr)
    assert project.sqlite_version() == {"0003_fill_discount_rate"}


@pytest.mark.mariadb
def test_mariadb_a_signal_kills_the_query_waiting_on_a_lock(project, mariadb_url):
    env = {"DATABASE_URL": mariadb_url}
    project.manage("migrate", env=env)
    (project.versions / "0004_add_note.py").write_text(WAITS_FOR_LOCK)
    engine = direct_engine(mariadb_url)
    try:
        with engine.connect() as blocker, engine.connect() as monitor:
            blocker.exec_driver_sql("SELECT count(*) FROM products")  # holds the metadata lock
            process = _start(project, env)
            for _ in range(600):
                assert process.poll() is None, process.communicate()
                waiting = monitor.exec_driver_sql(
                    "SELECT count(*) FROM information_schema.processlist WHERE db = DATABASE() "
                    "AND state LIKE 'Waiting for table metadata lock%%'"
                ).scalar()
                monitor.rollback()
                if waiting:
                    break
                time.sleep(0.1)
            else:
                pytest.fail("the migration never waited on the lock")
            process.send_signal(signal.SIGTERM)
            try:
                stdout, stderr = process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                pytest.fail("the run did not exit while its statement was still waiting")
            assert blocker.in_transaction()
    finally:
        engine.dispose()
    assert process.returncode == 130, stdout + stderr
    assert "Interrupted while applying 0004_add_note" in stderr
    assert "Traceback" not in stderr
    assert version_rows(mariadb_url) == {"0003_fill_discount_rate"}
    assert "note" not in inspect_schema(mariadb_url)["products"]
