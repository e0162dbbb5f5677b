"""Migrations a busy PostgreSQL keeps serving through (docs/online-safe.md).

One migration holds every change kind that has a safe form, on a table with rows: the test
reads the safe form in the file, has squawk lint ``sqlmigrate``'s SQL (and counts what it
says of plain ``alembic revision --autogenerate`` for the same changes), applies it, checks
that the models are then clean, and unapplies it back to the schema before. The other
tests cover a cut-off concurrent build, a migration that cannot have its lock, and the
``check`` gate for hand-written migrations.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import direct_engine, execute, migration_file
from sqlmanage.actions.blocking_locks import blocking_in_sql
from test_change_matrix import changed, migrate_start, new_files, outcome, snapshot, write_models

SAFE_CHANGES = changed(
    items={
        "note": 'sa.Column("note", sa.String(50), index=True)',
        "name": 'sa.Column("name", sa.String(50), nullable=False)',
        "code": 'sa.Column("code", sa.String(20), nullable=False, unique=True)',
        "qty_check": 'sa.CheckConstraint("qty >= 0", name="qty_not_negative")',
        "owner_id": 'sa.Column("owner_id", sa.Integer(), sa.ForeignKey("owners.id"))',
        "qty": 'sa.Column("qty", sa.Integer(), nullable=False, server_default="0")',
    }
)

# squawk's rules about locks and timeouts (https://squawkhq.com/docs/rules): what the issue's
# referee counts. Style rules (prefer-bigint, prefer-text-field, ...) are not about locks.
LOCK_RULES = {
    "require-concurrent-index-creation",
    "require-concurrent-index-deletion",
    "ban-concurrent-index-creation-in-transaction",
    "constraint-missing-not-valid",
    "adding-foreign-key-constraint",
    "adding-not-nullable-field",
    "disallowed-unique-constraint",
    "adding-field-with-default",
    "changing-column-type",
    "adding-required-field",
    "adding-serial-primary-key-field",
    "require-lock-timeout",
    "require-statement-timeout",
}


def squawk(sql: str) -> list[dict]:
    """squawk's findings on ``sql``, as its JSON reporter gives them."""
    executable = shutil.which("squawk", path=str(Path(sys.executable).parent)) or "squawk"
    completed = subprocess.run(
        [executable, "--reporter", "json"],
        input=sql,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.stdout.strip(), f"squawk gave no report: {completed.stderr}"
    return json.loads(completed.stdout)


def lock_warnings(findings: list[dict]) -> list[str]:
    return [f["rule_name"] for f in findings if f["rule_name"] in LOCK_RULES]


@pytest.mark.postgres
def test_every_change_kind_gets_the_safe_form_and_round_trips(project, pg_url):
    env = {"DATABASE_URL": pg_url}
    migrate_start(project, env, pg_url)
    execute(
        pg_url,
        "INSERT INTO owners (id) VALUES (1)",
        *(
            f"INSERT INTO items (id, name, code, qty, owner_id) VALUES ({i}, 'n{i}', 'c{i}', {i}, 1)"
            for i in range(1, 6)
        ),
    )
    before = snapshot(pg_url)
    files = project.migration_files()
    write_models(project, SAFE_CHANGES)
    made = project.manage("makemigrations", "--noinput", env=env)
    (written,) = new_files(project, files)
    source = (project.versions / written).read_text()
    for form in (
        "postgresql_concurrently=True, if_not_exists=True",
        "postgresql_concurrently=True, if_exists=True",
        "'owners', ['owner_id'], ['id'], postgresql_not_valid=True",
        "'qty >= 0', postgresql_not_valid=True",
        "VALIDATE CONSTRAINT",
        "UNIQUE USING INDEX",
        'CHECK ("qty" IS NOT NULL) NOT VALID',
    ):
        assert form in source, f"no {form} in {written}:\n{source}"
    assert "+ Create index ix_items_note on items" in made.stdout
    assert "blocks writes" not in source, source

    (project.path / "project" / "settings.py").open("a").write(
        '\nMIGRATION_STATEMENT_TIMEOUT = 600\nDATABASES = {"default": {"MIGRATION_LOCK_TIMEOUT": 5}}\n'
    )
    sql = project.manage("sqlmigrate", written, env=env).stdout
    assert sql.startswith(
        "BEGIN;\nSET LOCAL lock_timeout = '5000ms';\nSET LOCAL statement_timeout = '600000ms';\n"
    )
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_items_note ON items (note)" in sql
    assert lock_warnings(squawk(sql)) == [], f"squawk on sqlmigrate {written}:\n{sql}"
    back = project.manage("sqlmigrate", written, "--backwards", env=env).stdout
    assert lock_warnings(squawk(back)) == [], f"squawk on sqlmigrate --backwards {written}:\n{back}"

    plain = plain_alembic_warnings(project, env, written)
    assert plain, "squawk found nothing in plain Alembic's form: the referee would prove nothing"

    gate = project.run("check", "--tag", "migrations", "--tag", "database", env=env)
    assert "0 unapplied" not in gate.stdout and "(sqlmanage.E010)" not in gate.stdout, outcome(gate)

    applied = project.run("migrate", env=env)
    assert applied.returncode == 0, f"migrate {outcome(applied)}\n{source}"
    after = snapshot(pg_url)["items"]
    assert ("uq_items_code", ("code",)) in after["unique constraints"]
    assert ("ix_items_note", ("note",), False) in [i[:3] for i in after["indexes"]]
    check = project.run("makemigrations", "--check", env=env)
    assert (check.returncode, check.lines) == (0, ["No changes detected"]), (
        f"{outcome(check)}\n{source}"
    )
    assert _invalid_or_leftover(pg_url) == []

    project.manage("migrate", "-1", env=env)
    assert snapshot(pg_url) == before, source


def plain_alembic_warnings(project, env, ours: str) -> list[str]:
    """squawk's lock warnings on what plain Alembic writes and runs for the same changes:
    ``alembic revision --autogenerate``, then ``alembic upgrade --sql`` of that revision."""
    aside = project.path / ours
    (project.versions / ours).rename(aside)
    try:
        made = project.alembic("revision", "--autogenerate", "-m", "plain", env=env)
        assert made.returncode == 0, outcome(made)
        (plain,) = [p for p in project.versions.glob("*plain*.py")]
        parent = next(
            line.split("=")[-1].strip(" '\"")
            for line in plain.read_text().splitlines()
            if line.startswith("down_revision")
        )
        revision = next(
            line.split("=")[-1].strip(" '\"")
            for line in plain.read_text().splitlines()
            if line.startswith("revision")
        )
        sql = project.alembic("upgrade", f"{parent}:{revision}", "--sql", env=env)
        assert sql.returncode == 0, outcome(sql)
        plain.unlink()
        return lock_warnings(squawk(sql.stdout))
    finally:
        aside.rename(project.versions / ours)


def _invalid_or_leftover(url: str) -> list[str]:
    """INVALID indexes, and the temporary NOT NULL checks, left on the server."""
    engine = direct_engine(url)
    try:
        with engine.connect() as connection:
            return [
                name
                for (name,) in connection.exec_driver_sql(
                    "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid "
                    "UNION ALL SELECT conname FROM pg_constraint WHERE right(conname, 9) = '_not_null'"
                )
            ]
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_cut_off_concurrent_build_leaves_nothing_a_rerun_trips_on(project, pg_url):
    env = {"DATABASE_URL": pg_url}
    migrate_start(project, env, pg_url)
    execute(pg_url, "INSERT INTO items (id, name, code) VALUES (1, 'a', 'same'), (2, 'b', 'same')")
    write_models(
        project,
        changed(items={"code": 'sa.Column("code", sa.String(20), nullable=False, unique=True)'}),
    )
    project.manage("makemigrations", "--noinput", env=env)

    failed = project.run("migrate", env=env)
    assert failed.returncode == 1, outcome(failed)
    assert "could not create unique index" in failed.stderr, outcome(failed)
    assert _invalid_or_leftover(pg_url) == ["uq_items_code"]  # what a failed CONCURRENTLY leaves

    execute(pg_url, "UPDATE items SET code = 'other' WHERE id = 2")
    project.manage("migrate", env=env)
    assert _invalid_or_leftover(pg_url) == []
    assert ("uq_items_code", ("code",)) in snapshot(pg_url)["items"]["unique constraints"]
    check = project.run("makemigrations", "--check", env=env)
    assert (check.returncode, check.lines) == (0, ["No changes detected"]), outcome(check)


@pytest.mark.postgres
def test_a_held_lock_makes_migrate_give_up_name_the_blocker_and_never_stall_readers(
    project, pg_url
):
    env = {"DATABASE_URL": pg_url}
    migrate_start(project, env, pg_url)
    (project.path / "project" / "settings.py").open("a").write("\nMIGRATION_LOCK_TRIES = 2\n")
    write_models(project, changed(items={"added": 'sa.Column("added", sa.String(30))'}))
    project.manage("makemigrations", "--noinput", env=env)
    lock_timeout = 0.3

    blocker = direct_engine(pg_url).connect()
    blocker.exec_driver_sql("SET application_name = 'blocker-test'")
    blocker_pid = blocker.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    blocker.commit()
    blocker.exec_driver_sql(
        "SELECT count(*) FROM items"
    ).all()  # ACCESS SHARE, held: idle in transaction

    waits: list[float] = []
    errors: list[BaseException] = []
    migrate_done = threading.Event()

    def reader() -> None:
        """A third session reading the table all the time that migrate runs."""
        import time

        engine = direct_engine(pg_url)
        try:
            with engine.connect() as connection:
                while not migrate_done.is_set():
                    started = time.perf_counter()
                    connection.exec_driver_sql("SELECT count(*) FROM items").all()
                    connection.commit()
                    waits.append(time.perf_counter() - started)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            engine.dispose()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        result = project.run("migrate", "--ddl-lock-timeout", str(lock_timeout), env=env)
    finally:
        migrate_done.set()
        thread.join(timeout=60)
        blocker.rollback()
        blocker.close()

    assert result.returncode == 1, outcome(result)
    assert "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    assert "could not get its lock within 0.3s (2 tries)" in message, outcome(result)
    assert f"pid {blocker_pid} (application 'blocker-test', idle in transaction for" in message, (
        outcome(result)
    )
    assert "query started" in message and "SELECT count(*) FROM items" in message, outcome(result)
    assert "Wait for that transaction to end" in message, outcome(result)
    assert "added" not in {c for c, *_ in snapshot(pg_url)["items"]["columns"]}
    assert errors == [] and waits, errors
    # Generous (a loaded machine): the reader queues behind the waiting ALTER for at most its
    # lock_timeout; unbounded, it would wait as long as the blocker holds the table.
    assert max(waits) < lock_timeout + 2.7, f"a reader waited {max(waits):.2f}s"

    project.manage("migrate", env=env)  # the blocker gone, the same migration applies
    assert "added" in {c for c, *_ in snapshot(pg_url)["items"]["columns"]}


HAND_WRITTEN = """\
    op.create_table("labels", sa.Column("id", sa.Integer(), primary_key=True), sa.Column("text", sa.String(20)))
    op.create_index("ix_labels_text", "labels", ["text"])
    op.create_index("ix_products_name", "products", ["name"])
    op.create_foreign_key("fk_products_label", "products", "labels", ["stock"], ["id"])
    op.alter_column("products", "stock", existing_type=sa.Integer(), nullable=False)"""


@pytest.mark.postgres
def test_check_fails_on_a_hand_written_blocking_migration_unless_its_author_accepts_it(
    project, pg_url
):
    env = {"DATABASE_URL": pg_url}
    project.manage("migrate", env=env)
    path = project.versions / "0004_hand_written.py"
    path.write_text(migration_file("0004_hand_written", HAND_WRITTEN, "    pass"))

    result = project.run("check", "--tag", "migrations", "--tag", "database", env=env)
    assert result.returncode == 1, outcome(result)
    found = [line for line in result.stdout.splitlines() if "(sqlmanage.E010)" in line]
    assert found == [
        "project: (sqlmanage.E010) 0004_hand_written (0004_hand_written.py) on products: CREATE INDEX "
        "without CONCURRENTLY blocks writes for the whole build.",
        "project: (sqlmanage.E010) 0004_hand_written (0004_hand_written.py) on products: ADD FOREIGN KEY "
        "without NOT VALID checks every row under a lock that blocks writes.",
        "project: (sqlmanage.E010) 0004_hand_written (0004_hand_written.py) on products: SET NOT NULL on "
        "stock scans the table under an ACCESS EXCLUSIVE lock.",
    ], outcome(result)
    assert "sqlmanage_safety_assured = True" in result.stdout

    path.write_text(
        path.read_text().replace(
            "depends_on = None\n", "depends_on = None\nsqlmanage_safety_assured = True\n"
        )
    )
    assured = project.run("check", "--tag", "migrations", "--tag", "database", env=env)
    assert "(sqlmanage.E010)" not in assured.stdout, outcome(assured)
    assert "(sqlmanage.E007) 1 unapplied migration: 0004_hand_written." in assured.stdout, outcome(
        assured
    )


@pytest.mark.postgres
def test_what_has_no_safe_form_is_flagged_with_the_multi_step_way(project, pg_url):
    env = {"DATABASE_URL": pg_url}
    migrate_start(project, env, pg_url)
    write_models(
        project,
        changed(
            items={
                "status": 'sa.Column("status", sa.BigInteger(), server_default="0")',
                "active": None,
            }
        ),
    )
    shown = project.manage("makemigrations", "--dry-run", "-v", "3", env=env).stdout
    assert "# Review before applying:" in shown, shown
    assert (
        "rewrites the table under an ACCESS EXCLUSIVE lock on PostgreSQL (reads and writes wait "
        "for the whole rewrite). Instead: add a column of the new type"
    ) in shown, shown
    assert "Deploy code that no longer reads it first" in shown, shown


def test_the_gate_reads_sql_created_tables_validated_checks_and_dropped_tables():
    sql = """BEGIN;
CREATE TABLE labels (id SERIAL NOT NULL, PRIMARY KEY (id));
CREATE INDEX ix_labels_id ON labels (id);
ALTER TABLE labels ADD CONSTRAINT fk_x FOREIGN KEY(id) REFERENCES items (id);
ALTER TABLE "items" ADD CONSTRAINT "items_qty_not_null" CHECK ("qty" IS NOT NULL) NOT VALID;
COMMIT;
ALTER TABLE "items" VALIDATE CONSTRAINT "items_qty_not_null";
BEGIN;
ALTER TABLE items ALTER COLUMN qty SET NOT NULL;
ALTER TABLE items ALTER COLUMN code SET NOT NULL;
ALTER TABLE items ADD CONSTRAINT uq_items_code UNIQUE USING INDEX uq_items_code;
ALTER TABLE items ADD CONSTRAINT uq_items_name UNIQUE (name);
DROP INDEX ix_tags_kind;
DROP TABLE tags;
DROP INDEX ix_items_note;
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS ix_items_a ON items (a);
COMMIT;
"""
    assert blocking_in_sql(sql) == [
        ("items", "SET NOT NULL on code scans the table under an ACCESS EXCLUSIVE lock"),
        ("items", "ADD UNIQUE/PRIMARY KEY builds its index under an ACCESS EXCLUSIVE lock"),
        (
            "index ix_items_note",
            "DROP INDEX without CONCURRENTLY blocks reads and writes of its table",
        ),
    ]


@pytest.mark.postgres
def test_a_lock_freed_between_tries_lets_the_retry_apply_the_migration(project, pg_url):
    env = {"DATABASE_URL": pg_url}
    migrate_start(project, env, pg_url)
    write_models(project, changed(items={"added": 'sa.Column("added", sa.String(30))'}))
    project.manage("makemigrations", "--noinput", env=env)

    blocker = direct_engine(pg_url).connect()
    blocker.exec_driver_sql("SELECT count(*) FROM items").all()  # held until the first try gives up
    first_try_gave_up = threading.Event()

    def release_after_the_first_try() -> None:
        """Watch the migration's ALTER wait for its lock, then stop waiting: then let go."""
        engine = direct_engine(pg_url)
        waiting = (
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND strpos(query, 'ALTER TABLE items ADD COLUMN added') = 1"
        )
        seen = False
        try:
            with engine.connect() as connection:
                for _ in range(3000):  # bounded: 60 s of polls
                    now = connection.exec_driver_sql(waiting).scalar()
                    connection.commit()
                    if now:
                        seen = True
                    elif seen:
                        first_try_gave_up.set()
                        return
                    threading.Event().wait(0.02)
        finally:
            engine.dispose()

    watcher = threading.Thread(target=release_after_the_first_try)
    watcher.start()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "migrate", "--ddl-lock-timeout", "1"],
        cwd=project.path,
        env=project.environment(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert first_try_gave_up.wait(timeout=60), "the migration never waited for its lock"
        blocker.rollback()
        stdout, stderr = process.communicate(timeout=60)
    finally:
        blocker.close()
        watcher.join(timeout=60)
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, f"{stdout}\n{stderr}"
    assert "added" in {c for c, *_ in snapshot(pg_url)["items"]["columns"]}
