"""migrate behind PgBouncer, as production runs it: exactly once, nothing left on the pool.

PgBouncer (the Debian package; .ci/run installs it) is started here on loopback ports, in
transaction pooling and in session pooling, with a small pool and no ``server_reset_query``,
so a lock or a setting that a run left on a server connection stays there for the next
client to see. Four rounds of ten concurrent ``manage.py migrate`` runs (more with
SQLMANAGE_POOLER_ROUNDS, for a longer stress run) go through it while an application thread uses the same pool; afterwards every
migration must have run exactly once, ``pg_locks`` must hold no advisory lock, and no pooled
server connection may carry a setting changed for its session. The ten runs of a round are
forked from one interpreter that has imported the libraries already (see ``FORKED_RUNS``):
separate processes and connections, a tenth of the start-up cost.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import direct_engine, version_rows

CONCURRENT_RUNS = 10
ROUNDS = int(os.environ.get("SQLMANAGE_POOLER_ROUNDS", "4"))
MIGRATIONS_PER_ROUND = 2
POOL_SIZE = 4
# Parameters PgBouncer itself sets on a server connection to match each client's startup
# packet; anything else set for a session was left there by a client.
POOLER_TRACKED = {
    "application_name",
    "client_encoding",
    "datestyle",
    "timezone",
    "standard_conforming_strings",
    "intervalstyle",
}


# The runs of one round, forked at once from one interpreter that imported sqlmanage's and
# its libraries' modules: ten separate processes with their own connections, each running
# manage.py's entry point, without paying ten interpreter start-ups (most of a round's CPU).
FORKED_RUNS = r"""
import json, os, sys, tempfile, traceback
import alembic.command, alembic.runtime.migration, alembic.autogenerate, psycopg2, sqlalchemy.orm
import sqlmanage.cli, sqlmanage.commands.migrate, sqlmanage.engine.apply, sqlmanage.engine.status
runs, argv = json.loads(sys.argv[1])
folder = tempfile.mkdtemp(prefix="sqlmanage-pooler-runs-")
children = []
for number in range(runs):
    pid = os.fork()
    if pid:
        children.append(pid)
        continue
    code = 1
    try:
        for fd, stream in ((1, "out"), (2, "err")):
            target = os.open(f"{folder}/{number}.{stream}", os.O_WRONLY | os.O_CREAT, 0o600)
            os.dup2(target, fd)
            os.close(target)
        sys.argv = argv  # as manage.py: the project folder first on the path, its settings
        sys.path.insert(0, os.getcwd())
        os.environ.setdefault("SQLMANAGE_SETTINGS_MODULE", "project.settings")
        sqlmanage.cli.execute_from_command_line(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
results = []
for number, pid in enumerate(children):
    status = os.waitpid(pid, 0)[1]
    outputs = [open(f"{folder}/{number}.{stream}").read() for stream in ("out", "err")]
    results.append([os.waitstatus_to_exitcode(status), *outputs])
    for stream in ("out", "err"):
        os.unlink(f"{folder}/{number}.{stream}")
os.rmdir(folder)
print(json.dumps(results))
"""


def _concurrent_runs(project, env: dict, *args: str) -> list[tuple[int, str, str]]:
    """(exit code, stdout, stderr) of CONCURRENT_RUNS ``manage.py ARGS`` run at once."""
    argv = ["manage.py", *args]
    launcher = subprocess.run(
        [sys.executable, "-c", FORKED_RUNS, json.dumps([CONCURRENT_RUNS, argv])],
        cwd=project.path,
        env=project.environment(env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert launcher.returncode == 0, launcher.stdout + launcher.stderr
    return [tuple(result) for result in json.loads(launcher.stdout)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_pgbouncer(mode: str, databases: str = ""):
    """One PgBouncer in ``mode`` on a free loopback port; yield the port; stop it.

    ``databases`` are extra lines for its [databases] section (aliases)."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.path.exists(binary):
        pytest.fail(
            "pgbouncer is not installed: apt-get install -y pgbouncer (.ci/run does).",
            pytrace=False,
        )
    folder = Path(tempfile.mkdtemp(prefix=f"sqlmanage-pgbouncer-{mode}-"))
    port = _free_port()
    (folder / "users.txt").write_text('"postgres" ""\n')
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"{databases}"
        "* = host=127.0.0.1 port=5432\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder}/users.txt\n"
        f"pool_mode = {mode}\ndefault_pool_size = {POOL_SIZE}\nmax_client_conn = 200\n"
        "server_reset_query =\nserver_reset_query_always = 0\n"
        "ignore_startup_parameters = extra_float_digits\n"
        f"logfile = {folder}/pgbouncer.log\npidfile = {folder}/pgbouncer.pid\n"
    )
    command = [binary, "--quiet", str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        shutil.chown(folder, "postgres")
        for path in folder.iterdir():
            shutil.chown(path, "postgres")
        command[1:1] = ["-u", "postgres"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if process.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        if process.poll() is not None:
            log = (
                (folder / "pgbouncer.log").read_text()
                if (folder / "pgbouncer.log").exists()
                else ""
            )
            pytest.fail(
                f"pgbouncer did not start (exit {process.returncode}): {log}", pytrace=False
            )
        yield port
    finally:
        process.terminate()  # PgBouncer's immediate shutdown
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module", params=["transaction", "session"])
def pooler(request):
    """(mode, port) of a running PgBouncer."""
    for port in _start_pgbouncer(request.param):
        yield request.param, port


def _through(url: str, port: int) -> str:
    return url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{port}/")


def _round_migration(number: int, parent: str) -> tuple[str, str]:
    revision = f"{number:04d}_round"
    create = (
        '    op.execute("CREATE TABLE IF NOT EXISTS ledger (revision varchar(32), '
        'pid integer, setting text)")\n'
    )
    body = (
        f'"""{revision}"""\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
        f"revision = {revision!r}\ndown_revision = {parent!r}\nbranch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade():\n"
        f"{create}"
        f'    op.execute("CREATE TABLE t_{number} (id integer)")\n'
        "    op.execute(\"INSERT INTO ledger SELECT '" + revision + "', pg_backend_pid(), "
        "current_setting('synchronous_commit')\")\n"
        '    op.execute("SELECT pg_sleep(0.05)")\n\n\n'
        "def downgrade():\n"
        f'    op.execute("DROP TABLE t_{number}")\n'
    )
    return revision, body


class Application(threading.Thread):
    """Short transactions on the pool, as an application makes them, until told to stop.

    Each one records anything it finds on its server connection that it did not put there:
    an advisory lock held, or a setting changed for the session.
    """

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.stop = url, threading.Event()
        self.transactions, self.found, self.errors = 0, [], []

    def run(self) -> None:
        import psycopg2

        deadline = time.monotonic() + 600
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                connection = psycopg2.connect(self.url)
                try:
                    with connection, connection.cursor() as cursor:
                        cursor.execute(
                            "SELECT (SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() "
                            "AND locktype = 'advisory'), current_setting('synchronous_commit'), "
                            "(SELECT string_agg(name, ',') FROM pg_settings WHERE source = 'session' "
                            "AND lower(name) <> ALL(%s))",
                            (sorted(POOLER_TRACKED),),
                        )
                        locks, commit, changed = cursor.fetchone()
                        if locks or commit != "on" or changed:
                            self.found.append((locks, commit, changed))
                    self.transactions += 1
                finally:
                    connection.close()
            except Exception as exc:  # the pool is busy with migrations; note and go on
                self.errors.append(repr(exc))
            self.stop.wait(0.02)


def _pooled_connections_state(url: str, database: str) -> tuple[set[int], list]:
    """Visit every server connection of the pool at once: their pids, and what they carry."""
    import psycopg2

    clients = [psycopg2.connect(url) for _ in range(POOL_SIZE)]
    pids, carried = set(), []
    try:
        for client in clients:  # each holds its transaction open, so each has its own server
            cursor = client.cursor()
            cursor.execute(
                "SELECT pg_backend_pid(), (SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() "
                "AND locktype = 'advisory'), (SELECT coalesce(string_agg(name || '=' || setting, ','), '') "
                "FROM pg_settings WHERE source = 'session' AND lower(name) <> ALL(%s))",
                (sorted(POOLER_TRACKED),),
            )
            pid, locks, settings = cursor.fetchone()
            pids.add(pid)
            if locks or settings:
                carried.append((pid, locks, settings))
    finally:
        for client in clients:
            client.rollback()
            client.close()
    return pids, carried


@pytest.mark.postgres
def test_concurrent_migrates_through_pgbouncer_apply_each_migration_once_and_leave_nothing(
    project, pg_url, pooler
):
    mode, port = pooler
    pooled_url = _through(pg_url, port)
    database = pg_url.rsplit("/", 1)[1]
    env = {"DATABASE_URL": pooled_url}
    application = Application(pooled_url)
    application.start()
    parent, number, revisions, durations, cpu_seconds = "0003_fill_discount_rate", 4, [], [], []
    try:
        for _ in range(ROUNDS):
            for _ in range(MIGRATIONS_PER_ROUND):
                revision, body = _round_migration(number, parent)
                (project.versions / f"{revision}.py").write_text(body)
                revisions.append(revision)
                parent, number = revision, number + 1
            started, cpu = time.monotonic(), _children_cpu()
            outputs = _concurrent_runs(project, env, "migrate", "--noinput", "--lock-timeout", "60")
            durations.append(time.monotonic() - started)
            cpu_seconds.append(_children_cpu() - cpu)
            for code, stdout, stderr in outputs:
                assert code == 0, stdout + stderr
                assert "Traceback" not in stderr
            applying = [
                line
                for _, stdout, _ in outputs
                for line in stdout.splitlines()
                if "Applying" in line
            ]
            assert len(applying) == len(set(applying)), (
                f"a migration was announced twice: {applying}"
            )
    finally:
        application.stop.set()
        application.join(timeout=60)

    # A run after all of them neither waits nor finds anything to do.
    last = project.run("migrate", "--noinput", "--lock-timeout", "5", env=env)
    assert last.returncode == 0, last.stderr
    assert "No migrations to apply." in last.stdout
    assert "Waiting for the migration lock" not in last.stderr

    engine = direct_engine(pg_url)
    try:
        with engine.connect() as connection:
            ledger = connection.exec_driver_sql(
                "SELECT revision, count(*), min(setting), max(setting) FROM ledger GROUP BY revision"
            ).all()
            audit = dict(
                connection.exec_driver_sql(
                    "SELECT revision, count(*) FROM sqlmanage_migrations WHERE direction = 'apply' "
                    "GROUP BY revision"
                ).all()
            )
            advisory = connection.exec_driver_sql(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                f"WHERE d.datname = '{database}' AND l.locktype = 'advisory'"
            ).scalar()
    finally:
        engine.dispose()
    assert {row[0]: row[1] for row in ledger} == {revision: 1 for revision in revisions}
    assert all(row[2] == row[3] == "on" for row in ledger), ledger
    assert {r: audit.get(r) for r in revisions} == {r: 1 for r in revisions}
    assert version_rows(pg_url) == {revisions[-1]}
    assert advisory == 0, f"{advisory} advisory locks left in {database}"
    pids, carried = _pooled_connections_state(pooled_url, database)
    assert len(pids) == POOL_SIZE, "the check did not reach every pooled connection"
    assert carried == [], f"pooled server connections carry session state: {carried}"
    assert application.transactions > 0, application.errors[:3]
    assert application.found == [], f"the application found session state: {application.found[:5]}"
    print(
        f"\n{mode} pooling: {ROUNDS} rounds x {CONCURRENT_RUNS} runs, {len(revisions)} migrations, "
        f"duplicates 0, advisory locks left {advisory}, settings left 0, application transactions "
        f"{application.transactions}, round seconds {', '.join(f'{d:.1f}' for d in durations)}, "
        f"the runs' CPU seconds per round {', '.join(f'{c:.1f}' for c in cpu_seconds)}"
    )


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@pytest.mark.postgres
def test_an_alias_and_a_direct_url_share_one_lock(project, pg_url):
    """The lock is named after current_database(), not the URL: a run through a PgBouncer
    alias waits for a lock held under the real database's name."""
    import uuid

    from sqlalchemy import text

    from sqlmanage.engine.lock import advisory_key, lock_name

    database = pg_url.rsplit("/", 1)[1]
    alias = f"alias_{uuid.uuid4().hex[:8]}"
    for port in _start_pgbouncer(
        "transaction", f"{alias} = host=127.0.0.1 port=5432 dbname={database}\n"
    ):
        holder = direct_engine(pg_url)
        try:
            with holder.connect() as connection:
                key = advisory_key(lock_name(database, None, "alembic_version"))
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
                connection.commit()
                aliased = _through(pg_url, port).rsplit("/", 1)[0] + f"/{alias}"
                result = project.run(
                    "migrate", "--noinput", "--lock-timeout", "1", env={"DATABASE_URL": aliased}
                )
        finally:
            holder.dispose()
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"Waiting for the migration lock on {database}: held by pid" in result.stderr
    assert "Gave up waiting for the migration lock" in result.stderr
    assert version_rows(pg_url) == set()
