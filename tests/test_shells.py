"""shell and dbshell, typed into on a real pseudo-terminal and driven from scripts."""

from __future__ import annotations

import importlib.util

import pytest

from conftest import execute, finish, spawn
from sqlmanage.actions.dbshell import ClientCommand, client_command
from sqlmanage.database import parse_url

SECRET = "s3cret-Pw"


def seed(url: str) -> None:
    """Two products in a migrated example database."""
    execute(
        url,
        "insert into categories (id, name) values (1, 'books')",
        "insert into products (id, name, price, category_id, discount_rate) values (1, 'Dune', 9.5, 1, 0)",
        "insert into products (id, name, price, category_id, discount_rate) values (2, 'Emma', 7.0, 1, 0)",
    )


def with_password(url: str) -> str:
    """The test server trusts every local connection, so any password lets the client in."""
    return url.replace("postgres@", f"postgres:{SECRET}@", 1)


@pytest.fixture
def migrated(project):
    project.manage("migrate", "-v", "0")
    seed(f"sqlite:///{project.sqlite_file}")
    return project


def test_shell_has_a_session_and_every_model_on_a_terminal(migrated):
    child = spawn(migrated, "shell", "-i", "python")
    child.expect_exact("10 objects imported automatically (use -v 2 for details).")
    child.expect_exact(">>> ")
    child.sendline("print('count=%d' % session.query(Product).count())")
    child.expect_exact("count=2")
    # The idle session holds no SQLite lock: another program can write meanwhile.
    migrated.manage("dbshell", "--", "insert into categories (id, name) values (2, 'films')")
    child.sendline("print('categories=%d' % session.query(Category).count())")
    child.expect_exact("categories=2")
    child.sendline(
        "print('models:', sorted(n for n, v in globals().items() if hasattr(v, '__mapper__')))"
    )
    child.expect_exact("models: ['Category', 'Customer', 'Product', 'Review']")
    child.sendline(
        "print('name=' + session.scalars(select(Product.name).order_by(Product.id.desc())).first())"
    )
    child.expect_exact("name=Emma")
    child.sendline("exit()")
    assert finish(child) == 0


def test_shell_without_ipython_says_so(migrated):
    child = spawn(migrated, "shell", "-i", "ipython", "-v", "0")
    if importlib.util.find_spec("IPython") is None:
        child.expect_exact("Error: Couldn't import ipython interface.")
        assert finish(child) == 1
    else:
        child.expect(r"In \[1\]: ")
        child.sendline("print('count=%d' % session.query(Product).count())")
        child.expect_exact("count=2")
        child.sendline("exit")
        assert finish(child) == 0


def test_shell_runs_code_from_the_command_line_and_from_stdin(migrated):
    result = migrated.manage(
        "shell", "-v", "2", "-c", "print('count=%d' % session.query(Product).count())"
    )
    lines = result.lines
    assert lines[:2] == ["10 objects imported automatically:", ""]
    assert "  from project.models.catalogue import Category, Product" in lines
    assert "  from project.models.reviews import Customer, Review" in lines
    assert "  from sqlalchemy import func, select" in lines
    assert f"  engine = create_engine('sqlite:///{migrated.sqlite_file}')" in lines
    assert "  metadata  # MetaData with 4 tables: categories, customers, products, reviews" in lines
    assert lines[-1] == "count=2"

    script = "for product in session.scalars(select(Product).order_by(Product.name)):\n    print(product.name)\n"
    assert migrated.manage("shell", "-v", "0", stdin=script).lines == ["Dune", "Emma"]

    failed = migrated.run(
        "shell", "-v", "0", "-c", "session.add(Product(name='x')); session.flush()"
    )
    assert failed.returncode == 1
    assert failed.stdout == ""
    assert (
        "sqlite3.IntegrityError" in failed.stderr and "NOT NULL constraint failed" in failed.stderr
    )
    assert (
        'Traceback (most recent call last):\n  File "<command>", line 1, in <module>\n'
        in failed.stderr
    )
    assert "Unexpected error" not in failed.stderr


@pytest.mark.postgres
def test_shell_on_an_async_url_uses_a_sync_driver_on_the_same_database(migrated, pg_url):
    env = {"DATABASE_URL": pg_url.replace("postgresql://", "postgresql+asyncpg://")}
    migrated.manage("migrate", "-v", "0", env=env)
    seed(pg_url)
    result = migrated.manage(
        "shell", "-c", "print('count=%d' % session.query(Product).count())", env=env
    )
    assert result.lines == [
        "10 objects imported automatically (use -v 2 for details).",
        "The database URL names the async driver asyncpg; engine and session use the synchronous "
        "driver psycopg2 on the same database.",
        "",
        "count=2",
    ]


def test_dbshell_opens_sqlite3_on_a_terminal(migrated):
    child = spawn(migrated, "dbshell")
    child.expect_exact("sqlite> ")
    child.sendline("select 'n=' || count(*) from products;")
    child.expect_exact("n=2")
    child.sendline(".quit")
    assert finish(child) == 0


def test_dbshell_passes_parameters_and_the_exit_status_of_sqlite3(migrated, tmp_path):
    assert migrated.manage("dbshell", "--", "select name from products order by id").lines == [
        "Dune",
        "Emma",
    ]

    failed = migrated.run("dbshell", "--", ".exit 3")
    assert failed.returncode == 3
    assert (
        failed.stderr
        == f"Error: \"sqlite3 {migrated.sqlite_file} '.exit 3'\" returned non-zero exit status 3.\n"
    )

    with open(migrated.path / "project" / "settings.py", "a") as settings:
        settings.write(
            "DATABASES = {'other': {'URL': f\"sqlite:///{BASE_DIR / 'other.sqlite3'}\"}}\n"
        )
    other = migrated.manage("dbshell", "--database", "other", "--", "pragma database_list")
    assert other.stdout.strip() == f"0|main|{migrated.path / 'other.sqlite3'}"

    no_client = migrated.run("dbshell", env={"PATH": str(tmp_path / "empty")})
    assert no_client.returncode == 1
    assert no_client.stderr.splitlines()[0] == (
        "Error: You appear not to have the 'sqlite3' program installed or on your path."
    )


@pytest.mark.postgres
def test_dbshell_opens_psql_on_a_terminal(project, pg_url):
    env = {"DATABASE_URL": with_password(pg_url), "PAGER": "cat"}
    project.manage("migrate", "-v", "0", env=env)
    seed(pg_url)
    child = spawn(project, "dbshell", env=env)
    child.expect(r"=# ")
    child.sendline("select 'n=' || count(*) from products;")
    child.expect_exact("n=2")
    child.sendline("\\q")
    assert finish(child) == 0


@pytest.mark.postgres
def test_psql_gets_the_password_in_its_environment_never_in_its_arguments(project, pg_url):
    env = {"DATABASE_URL": with_password(pg_url)}
    project.manage("migrate", "-v", "0", env=env)
    shell_line = "\\! echo \"password=$PGPASSWORD\"; tr '\\0' ' ' < /proc/$PPID/cmdline; echo"
    result = project.manage(
        "dbshell",
        "--",
        "-A",
        "-t",
        "-c",
        "select 'n=' || count(*) from products",
        "-c",
        shell_line,
        env=env,
    )
    n_line, password_line, psql_argv = result.lines
    assert n_line == "n=0"
    assert password_line == f"password={SECRET}"
    assert "psql" in psql_argv and "-U postgres -h 127.0.0.1 -p 5432" in psql_argv
    assert SECRET not in psql_argv

    failed = project.run("dbshell", "--", "-c", "select nonsense", env=env)
    assert failed.returncode == 1
    assert 'column "nonsense" does not exist' in failed.stderr
    assert (
        "returned non-zero exit status 1." in failed.stderr and "psql -U postgres" in failed.stderr
    )
    assert SECRET not in failed.stderr


@pytest.mark.mariadb
def test_dbshell_runs_the_mariadb_client_with_the_password_in_its_environment(project, mariadb_url):
    assert project.manage(
        "dbshell", "--", "-N", "-e", "select 40 + 2", env={"DATABASE_URL": mariadb_url}
    ).lines == ["42"]
    wrong = mariadb_url.replace("root@", f"root:{SECRET}@", 1)
    refused = project.run("dbshell", "--", "-e", "select 1", env={"DATABASE_URL": wrong})
    assert refused.returncode == 1
    assert "(using password: YES)" in refused.stderr, "MYSQL_PWD did not reach the client"
    assert SECRET not in refused.stderr


@pytest.mark.parametrize(
    "url, args",
    [
        (
            f"postgresql://app:{SECRET}@db.example:6543/shop?sslmode=require",
            ["psql", "-U", "app", "-h", "db.example", "-p", "6543", "-c", "select 1", "shop"],
        ),
        (
            f"postgresql+asyncpg://app:{SECRET}@db.example/shop",
            ["psql", "-U", "app", "-h", "db.example", "-c", "select 1", "shop"],
        ),
        (
            f"mysql+pymysql://app:{SECRET}@db.example:3307/shop?charset=utf8mb4",
            [
                "mysql",
                "--user=app",
                "--host=db.example",
                "--port=3307",
                "--default-character-set=utf8mb4",
                "shop",
                "-c",
                "select 1",
            ],
        ),
        (
            f"mariadb+pymysql://app:{SECRET}@db.example/shop",
            ["mariadb", "--user=app", "--host=db.example", "shop", "-c", "select 1"],
        ),
    ],
)
def test_client_command_puts_the_password_only_in_the_environment(url, args, tmp_path, monkeypatch):
    for program in ("mysql", "mariadb"):  # both on PATH: each URL gets its own client
        (tmp_path / program).touch(mode=0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    command = client_command(parse_url(url), ["-c", "select 1"])
    assert command.args == args
    assert command.env.get("PGPASSWORD", command.env.get("MYSQL_PWD")) == SECRET
    if "sslmode" in url:
        assert command.env["PGSSLMODE"] == "require"


def test_a_mysql_url_falls_back_on_the_mariadb_client(tmp_path, monkeypatch):
    (tmp_path / "mariadb").touch(mode=0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert client_command(parse_url("mysql+pymysql://app@db.example/shop")).program == "mariadb"
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert client_command(parse_url("mysql+pymysql://app@db.example/shop")).program == "mysql"


def test_client_command_for_sqlite_files_and_memory(tmp_path):
    path = tmp_path / "db.sqlite3"
    assert client_command(parse_url(f"sqlite:///{path}"), [".tables"]) == ClientCommand(
        ["sqlite3", str(path), ".tables"]
    )
    assert client_command(parse_url("sqlite+aiosqlite://")) == ClientCommand(["sqlite3"])
