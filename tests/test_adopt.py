"""Adopting an existing Alembic project: hex ids, date file names, the team's own env.py with
an include_object filter and its URL from an environment variable, operations in helper
functions, and a first migration that expects tables the application created itself.

The project is written by the tests, shaped like the real ones (MLflow, Prefect, Airflow).
Before adoption, plain alembic with the project's own env.py builds one database; after
``sqlmanage adopt``, ``manage.py migrate`` builds another, and the two must be identical.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from conftest import ALEMBIC_INI_LOGGING, Project, another_database, with_driver
from test_schema_identity import database_schema

SQLMANAGE = [sys.executable, "-m", "sqlmanage"]

ALEMBIC_INI = (
    """[alembic]
script_location = %(here)s/migrations
prepend_sys_path = .
path_separator = os
file_template = %%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d-%%(rev)s_%%(slug)s
sqlalchemy.url = driver://user:pass@localhost/dbname
"""
    + ALEMBIC_INI_LOGGING
)

# The team's env.py, in the shape of Alembic's generic template.
TEAM_ENV = """import os

from alembic import context
from sqlalchemy import create_engine, pool

from app.models import Base

config = context.config
target_metadata = Base.metadata
IGNORED_TABLES = {"legacy_audit"}


def include_object(object, name, type_, reflected, compare_to):
    if type_ == "table" and name in IGNORED_TABLES:
        return False
    return True


def run_migrations_offline():
    context.configure(
        url=os.environ["APP_DATABASE_URL"], target_metadata=target_metadata, literal_binds=True,
        include_object=include_object, compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    engine = create_engine(os.environ["APP_DATABASE_URL"], poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata,
            include_object=include_object, compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
"""

MAKO = '''"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
"""
from alembic import op
import sqlalchemy as sa
${imports if imports else ""}

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade():
    ${upgrades if upgrades else "pass"}


def downgrade():
    ${downgrades if downgrades else "pass"}
'''

MODELS = """import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class LegacyUser(Base):
    __tablename__ = "legacy_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(sa.String(50))
    email: Mapped[str | None] = mapped_column(sa.String(100))


class Experiment(Base):
    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (sa.Index("ix_runs_status", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(sa.ForeignKey("experiments.id"))
    status: Mapped[str] = mapped_column(sa.String(20))
    note: Mapped[str | None] = mapped_column(sa.Text())
"""

# What the application creates before the first migration (MLflow's InitialBase.create_all).
LEGACY = """import sqlalchemy as sa

legacy_metadata = sa.MetaData()
sa.Table("legacy_users", legacy_metadata, sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("name", sa.String(50)))
sa.Table("legacy_audit", legacy_metadata, sa.Column("id", sa.Integer, primary_key=True))


def create_tables(connection):
    legacy_metadata.create_all(connection)
"""

MIGRATIONS = {
    "2024_01_05_1200-1a2b3c4d5e6f_add_email_to_legacy_users.py": (
        "1a2b3c4d5e6f",
        None,
        """
def upgrade():
    op.add_column("legacy_users", sa.Column("email", sa.String(100), nullable=True))


def downgrade():
    op.drop_column("legacy_users", "email")
""",
    ),
    "2024_02_10_0930-9f8e7d6c5b4a_create_experiments.py": (
        "9f8e7d6c5b4a",
        "1a2b3c4d5e6f",
        """
def upgrade():
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade():
    op.drop_table("experiments")
""",
    ),
    "2024_03_01_0800-c0ffee123456_create_runs.py": (
        "c0ffee123456",
        "9f8e7d6c5b4a",
        """
def _create_runs():
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.ForeignKeyConstraint(["experiment_id"], ["experiments.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_runs_status", "runs", ["status"])


def upgrade():
    _create_runs()


def downgrade():
    op.drop_index("ix_runs_status", table_name="runs")
    op.drop_table("runs")
""",
    ),
    "2024_04_01_0800-d00dfeed0042_add_runs_note.py": (
        "d00dfeed0042",
        "c0ffee123456",
        """
def upgrade():
    with op.batch_alter_table("runs") as batch_op:
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("runs") as batch_op:
        batch_op.drop_column("note")
""",
    ),
}


def write_team_project(root: Path) -> None:
    (root / "app").mkdir(parents=True)
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "models.py").write_text(MODELS)
    (root / "app" / "legacy.py").write_text(LEGACY)
    (root / "alembic.ini").write_text(ALEMBIC_INI)
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    (root / "migrations" / "env.py").write_text(TEAM_ENV)
    (root / "migrations" / "script.py.mako").write_text(MAKO)
    for name, (revision, down, body) in MIGRATIONS.items():
        (versions / name).write_text(
            f'"""{name}"""\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
            f"revision = {revision!r}\ndown_revision = {down!r}\nbranch_labels = None\n"
            f"depends_on = None\n\n{body}"
        )


def versions_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((root / "migrations" / "versions").glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def create_legacy_tables(root: Path, url: str) -> None:
    """What the application does before its first migration, outside Alembic."""
    from conftest import direct_engine

    sys.path.insert(0, str(root))
    try:
        import importlib

        legacy = importlib.import_module("app.legacy")
        engine = direct_engine(url)
        with engine.begin() as connection:
            legacy.create_tables(connection)
        engine.dispose()
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == "app" or n.startswith("app.")]:
            del sys.modules[name]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_databases(request, tmp_path) -> tuple[str, str]:
    """One database for the adopted project, one for the team's own plain alembic."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'adopted.sqlite3'}", f"sqlite:///{tmp_path / 'team.sqlite3'}"
    return another_database(request, "postgresql"), another_database(request, "postgresql")


def test_adopting_a_team_project(tmp_path, two_databases):
    root = tmp_path / "team"
    write_team_project(root)
    team = Project(root)
    adopted_url, team_url = two_databases
    before = versions_digest(root)

    # The team's way, before adoption: the application's tables, then plain alembic.
    create_legacy_tables(root, team_url)
    upgraded = team.alembic("upgrade", "head", env={"APP_DATABASE_URL": with_driver(team_url)})
    assert upgraded.returncode == 0, upgraded.stderr

    dry = team.run("adopt", "--dry-run", program=SQLMANAGE)
    assert dry.returncode == 0, dry.stderr
    assert (
        "Would write:" in dry.stdout
        and "migrations/env.py (replaced; the original kept as env.py.orig)" in dry.stdout
    )
    assert not (root / "sqlmanage_settings.py").exists() and not (root / "manage.py").exists()

    adopted = team.run("adopt", program=SQLMANAGE)
    assert adopted.returncode == 0, adopted.stderr
    assert (
        "+ INCLUDE_OBJECT: include_object() copied from env.py into env_hooks.py" in adopted.stdout
    )
    assert "+ MODELS: app.models (where target_metadata comes from)" in adopted.stdout
    assert (
        "+ DATABASE_URL: the environment variable APP_DATABASE_URL, as env.py read it"
        in adopted.stdout
    )
    assert (root / "migrations" / "env.py.orig").read_text() == TEAM_ENV
    assert "sqlmanage.alembic_env" in (root / "migrations" / "env.py").read_text()
    assert "sqlmanage_settings = sqlmanage_settings" in (root / "alembic.ini").read_text()
    assert versions_digest(root) == before, "adopt touched versions/"
    settings = (root / "sqlmanage_settings.py").read_text()
    hooks = (root / "env_hooks.py").read_text()
    assert 'IGNORED_TABLES = {"legacy_audit"}' in hooks and "def include_object(" in hooks
    assert "INCLUDE_OBJECT = 'env_hooks.include_object'" in settings
    assert "TARGET_METADATA = 'app.models.Base.metadata'" in settings
    assert "COMPARE_TYPE = True" in settings
    assert "COMPARE_SERVER_DEFAULT = False" in settings  # env.py left it to Alembic's default

    # The pre-history the first migration expects cannot be read from env.py: the team names it.
    with (root / "sqlmanage_settings.py").open("a") as handle:
        handle.write('\nBASELINE = "app.legacy.create_tables"\nBASELINE_ON_MIGRATE = True\n')

    env = {"APP_DATABASE_URL": adopted_url}
    shown = team.manage("showmigrations", env=env)
    assert shown.lines[1:] == [
        " [ ] 2024_01_05_1200-1a2b3c4d5e6f_add_email_to_legacy_users",
        " [ ] 2024_02_10_0930-9f8e7d6c5b4a_create_experiments",
        " [ ] 2024_03_01_0800-c0ffee123456_create_runs",
        " [ ] 2024_04_01_0800-d00dfeed0042_add_runs_note",
    ]
    assert team.manage("makemigrations", "--check", env=env).stdout.strip() == "No changes detected"
    team.manage("migrate", env=env)
    assert team.manage("makemigrations", "--check", env=env).stdout.strip() == "No changes detected"
    assert database_schema(adopted_url) == database_schema(team_url)

    back = team.manage("migrate", "-3", env=env)
    assert "Unapplying 2024_03_01_0800-c0ffee123456_create_runs..." in back.stdout
    assert [line[:4] for line in team.manage("showmigrations", env=env).lines[1:]] == [
        " [X]",
        " [ ]",
        " [ ]",
        " [ ]",
    ]
    team.manage("migrate", env=env)
    assert database_schema(adopted_url) == database_schema(team_url)

    sql = team.manage("sqlmigrate", "c0ffee", env=env).stdout
    assert "CREATE TABLE runs" in sql and "CREATE INDEX ix_runs_status ON runs (status)" in sql
    plan = team.manage("migrate", "--plan", "9f8e7d6c5b4a", env=env).lines
    at = plan.index("2024_03_01_0800-c0ffee123456_create_runs")
    assert plan[at + 1 : at + 3] == [
        "    Undo Create index ix_runs_status on runs",
        "    Undo Create table runs",
    ]

    # Plain alembic's autogenerate through the new env.py sees neither sqlmanage's audit table
    # nor the tables the team's filter hides.
    checked = team.alembic("check", env={"DATABASE_URL": adopted_url})
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "sqlmanage_migrations" not in checked.stdout + checked.stderr


def test_migrate_refuses_a_kept_env_py(tmp_path):
    """A project that has settings but still its own env.py is told how to switch, and
    nothing runs: that env.py would migrate whatever database it connects to, unlocked."""
    root = tmp_path / "team"
    write_team_project(root)
    (root / "team_settings.py").write_text(
        "from pathlib import Path\nBASE_DIR = Path(__file__).resolve().parent\n"
        'MODELS = ["app.models"]\nMIGRATIONS = BASE_DIR / "migrations"\n'
    )
    elsewhere = tmp_path / "elsewhere.sqlite3"
    result = Project(root).run(
        "migrate",
        "--settings",
        "team_settings",
        program=SQLMANAGE,
        env={
            "APP_DATABASE_URL": f"sqlite:///{elsewhere}",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'named.sqlite3'}",
        },
    )
    assert result.returncode == 1
    assert "is the project's own env.py, not sqlmanage's" in result.stderr
    assert "sqlmanage adopt" in result.stderr and "Traceback" not in result.stderr
    assert not elsewhere.exists() and not (tmp_path / "named.sqlite3").exists()


def test_adopt_refuses_without_alembic_ini_and_twice(tmp_path):
    result = Project(tmp_path).run("adopt", program=SQLMANAGE)
    assert result.returncode == 1 and "No alembic.ini in" in result.stderr
    root = tmp_path / "team"
    write_team_project(root)
    assert Project(root).run("adopt", program=SQLMANAGE).returncode == 0
    again = Project(root).run("adopt", program=SQLMANAGE)
    assert again.returncode == 1 and "already sqlmanage's env.py" in again.stderr


def test_an_adopted_project_without_its_url_variable_says_so(tmp_path):
    """The team's env.py read APP_DATABASE_URL; with it unset, the adopted project names it
    instead of quietly using an SQLite file beside manage.py."""
    root = tmp_path / "team"
    write_team_project(root)
    assert Project(root).run("adopt", program=SQLMANAGE).returncode == 0
    result = Project(root).run("showmigrations")
    assert result.returncode == 1
    assert "Set APP_DATABASE_URL: the database URL is read from it." in result.stderr
    assert "Traceback" not in result.stderr and not (root / "db.sqlite3").exists()
