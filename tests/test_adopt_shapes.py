"""Adopting histories shaped like MLflow's and Prefect's, written by the tests.

What the real projects showed (their histories were adopted in a scratch environment):

- MLflow ships ``sqlalchemy.url = ""``; its env.py imports a declarative base from a module
  that declares no table (the application imports the models before running Alembic); it
  leaves ``compare_server_default`` unset, so its autogenerate never compares server
  defaults, and its migrations set defaults the models do not have.
- Prefect's ``include_object`` reads a module-level ``dialect`` that env.py computes from the
  application's settings; env.py passes ``template_args={"dialect": ...}`` to its
  ``script.py.mako``, and picks ``versions/sqlite`` or ``versions/postgresql`` itself.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from conftest import ALEMBIC_INI_LOGGING, Project, another_database
from test_schema_identity import database_schema

SQLMANAGE = [sys.executable, "-m", "sqlmanage"]


# --- MLflow's shape -------------------------------------------------------------------------

MLFLOW_INI = (
    '[alembic]\nscript_location = %(here)s/migrations\nprepend_sys_path = .\nsqlalchemy.url = ""\n'
    + ALEMBIC_INI_LOGGING
)

MLFLOW_ENV = """from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config

from tracker.db.base_sql_model import Base

target_metadata = Base.metadata


def run_migrations_offline():
    url = config.get_main_option("sqlalchemy.url")
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    engine = engine_from_config(
        config.get_section(config.config_ini_section), prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
"""

MLFLOW_FILES = {
    "tracker/__init__.py": "",
    "tracker/db/__init__.py": "",
    "tracker/db/base_sql_model.py": "from sqlalchemy.orm import declarative_base\n\nBase = declarative_base()\n",
    "tracker/store/__init__.py": "",
    # The models: default=0 in Python, while the migration gave the column a server default.
    "tracker/store/models.py": """import sqlalchemy as sa

from tracker.db.base_sql_model import Base


class SqlExperiment(Base):
    __tablename__ = "experiments"

    experiment_id = sa.Column(sa.Integer, primary_key=True)
    name = sa.Column(sa.String(256), nullable=False)
    lifecycle_stage = sa.Column(sa.String(32), default="active")


class SqlMetric(Base):
    __tablename__ = "metrics"

    key = sa.Column(sa.String(250), primary_key=True)
    experiment_id = sa.Column(sa.Integer, sa.ForeignKey("experiments.experiment_id"), primary_key=True)
    step = sa.Column(sa.BigInteger, default=0, nullable=False)
""",
    "migrations/versions/451aebb31d03_create_experiments.py": '''"""create experiments"""
import sqlalchemy as sa
from alembic import op

revision = "451aebb31d03"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "experiments",
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("lifecycle_stage", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("experiment_id"),
    )


def downgrade():
    op.drop_table("experiments")
''',
    "migrations/versions/90e64c465722_create_metrics.py": '''"""create metrics"""
import sqlalchemy as sa
from alembic import op

revision = "90e64c465722"
down_revision = "451aebb31d03"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "metrics",
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.ForeignKeyConstraint(["experiment_id"], ["experiments.experiment_id"]),
        sa.PrimaryKeyConstraint("key", "experiment_id"),
    )


def downgrade():
    op.drop_table("metrics")
''',
}


def write_files(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def with_url(ini: Path, url: str) -> None:
    """What MLflow does in code before running Alembic: sqlalchemy.url set to the database."""
    from conftest import with_driver

    text = ini.read_text()
    ini.write_text(text.replace('sqlalchemy.url = ""', f"sqlalchemy.url = {with_driver(url)}"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_databases(request, tmp_path) -> tuple[str, str]:
    """One database for the adopted project, one for the team's own plain alembic."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'adopted.sqlite3'}", f"sqlite:///{tmp_path / 'team.sqlite3'}"
    return another_database(request, "postgresql"), another_database(request, "postgresql")


def test_adopting_an_mlflow_shaped_history(tmp_path, two_databases):
    adopted_url, team_url = two_databases
    root = tmp_path / "tracker_project"
    write_files(root, {"alembic.ini": MLFLOW_INI, "migrations/env.py": MLFLOW_ENV, **MLFLOW_FILES})
    team = tmp_path / "team_copy"
    shutil.copytree(root, team)
    with_url(team / "alembic.ini", team_url)
    assert Project(team).alembic("upgrade", "head").returncode == 0

    adopted = Project(root).run("adopt", program=SQLMANAGE)
    assert adopted.returncode == 0, adopted.stderr
    settings = (root / "sqlmanage_settings.py").read_text()
    # ini's "" is no URL: the adopter is told, the settings do not name a database '""'.
    assert "'\"\"'" not in settings
    assert "! the database URL:" in adopted.stdout
    # The base's module declares no table: MODELS names the modules that do.
    assert "MODELS = ['tracker.store.models']" in settings
    assert (
        "+ MODELS: tracker.store.models (they define the tables of tracker.db.base_sql_model"
        in adopted.stdout
    )
    assert "TARGET_METADATA = 'tracker.db.base_sql_model.Base.metadata'" in settings
    # env.py compared no server defaults (Alembic's default): neither does the adopted project.
    assert "COMPARE_SERVER_DEFAULT = False" in settings

    project = Project(root)
    env = {"DATABASE_URL": adopted_url}
    project.manage("migrate", env=env)
    assert (
        project.manage("makemigrations", "--check", env=env).stdout.strip() == "No changes detected"
    )
    assert database_schema(adopted_url) == database_schema(team_url)
    back = project.manage("migrate", "-1", env=env)
    assert "Unapplying 90e64c465722_create_metrics..." in back.stdout
    project.manage("migrate", env=env)
    assert database_schema(adopted_url) == database_schema(team_url)
    assert "CREATE TABLE metrics" in project.manage("sqlmigrate", "90e64c", env=env).stdout


# --- Prefect's shape ------------------------------------------------------------------------

PREFECT_INI = (
    "[alembic]\nscript_location = %(here)s/migrations\nprepend_sys_path = .\npath_separator = os\n"
    "file_template = %%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d%%(second).2d_%%(rev)s_%%(slug)s\n"
    + ALEMBIC_INI_LOGGING
)

PREFECT_ENV = """from typing import Optional

import sqlalchemy
from alembic import context

from orchestrator.database import get_dialect, provide_database_interface

db_interface = provide_database_interface()
config = context.config
target_metadata = db_interface.Base.metadata
dialect = get_dialect(db_interface.connection_url)


def include_object(
    object: sqlalchemy.schema.SchemaItem,
    name: str,
    type_: str,
    reflected: bool,
    compare_to: Optional[sqlalchemy.schema.SchemaItem],
) -> bool:
    if type_ == "index" and reflected and name.startswith("gin"):
        return False
    if dialect.name == "sqlite" and type_ == "table" and name == "sqlite_only_cache":
        return False
    return True


def do_run_migrations(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        render_as_batch=dialect.name == "sqlite",
        transaction_per_migration=True,
        template_args={"dialect": dialect.name, "team": "orchestration"},
    )
    with context.begin_transaction():
        context.run_migrations()


context.script.version_locations = [db_interface.versions_dir]
with sqlalchemy.create_engine(db_interface.connection_url).connect() as connection:
    do_run_migrations(connection)
"""

PREFECT_MAKO = '''"""${message}

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

<%
    sqlite = dialect == "sqlite"
%>
# Written for ${dialect} by ${team}.


def upgrade():
    ${upgrades if upgrades else "pass"}
% if sqlite:
    # SQLite: foreign keys are checked at the end of the batch.
% endif


def downgrade():
    ${downgrades if downgrades else "pass"}
'''


def prefect_migration(revision: str, dialect: str) -> str:
    return f'''"""initial migration"""
import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "flow",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flow")),
    )
    op.create_index(op.f("ix_flow__name"), "flow", ["name"])  # {dialect}


def downgrade():
    op.drop_index(op.f("ix_flow__name"), table_name="flow")
    op.drop_table("flow")
'''


PREFECT_FILES = {
    "orchestrator/__init__.py": "",
    # The application's database module: what env.py computes its values from. Importing it is
    # slow in the real project; the settings must not import it.
    "orchestrator/database.py": """import os
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

HERE = Path(__file__).resolve().parent.parent


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention={"ix": "ix_%(table_name)s__%(column_0_N_name)s",
                                              "pk": "pk_%(table_name)s"})


class Flow(Base):
    __tablename__ = "flow"
    __table_args__ = (sa.Index("ix_flow__name", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))


class DatabaseInterface:
    Base = Base

    def __init__(self):
        self.connection_url = os.environ["ORCHESTRATOR_DATABASE_CONNECTION_URL"]
        self.versions_dir = str(HERE / "migrations" / "versions" / get_dialect(self.connection_url).name)


def provide_database_interface():
    return DatabaseInterface()


def get_dialect(url):
    return sa.engine.make_url(url).get_dialect()
""",
    "migrations/versions/sqlite/2022_01_20_115236_9725c1cbee35_initial_migration.py": prefect_migration(
        "9725c1cbee35", "sqlite"
    ),
    "migrations/versions/postgresql/2022_01_20_115236_25f6f5a0da27_initial_migration.py": prefect_migration(
        "25f6f5a0da27", "postgresql"
    ),
}


def test_adopting_a_prefect_shaped_history(tmp_path):
    root = tmp_path / "orchestrator_project"
    write_files(
        root,
        {
            "alembic.ini": PREFECT_INI,
            "migrations/env.py": PREFECT_ENV,
            "migrations/script.py.mako": PREFECT_MAKO,
            **PREFECT_FILES,
        },
    )
    database = f"sqlite:///{tmp_path / 'orchestrator.sqlite3'}"
    env = {"DATABASE_URL": database, "ORCHESTRATOR_DATABASE_CONNECTION_URL": database}

    adopted = Project(root).run("adopt", program=SQLMANAGE)
    assert adopted.returncode == 0, adopted.stderr
    settings = (root / "sqlmanage_settings.py").read_text()
    hooks = (root / "env_hooks.py").read_text()
    # include_object is copied with everything it reads, in env.py's order, to a module of
    # its own: the settings stay free of the application's database module.
    assert "INCLUDE_OBJECT = 'env_hooks.include_object'" in settings
    assert "from orchestrator.database import get_dialect, provide_database_interface" in hooks
    assert (
        hooks.index("db_interface = provide_database_interface()")
        < hooks.index("dialect = get_dialect(db_interface.connection_url)")
        < hooks.index("def include_object(")
    )
    assert (
        "! include_object() uses dialect, db_interface, which env.py computes when it runs"
        in adopted.stdout
    )
    # template_args: the dialect comes from makemigrations, the plain values from TEMPLATE_ARGS.
    assert "TEMPLATE_ARGS = {'team': 'orchestration'}" in settings
    assert (
        "+ script.py.mako's ${dialect}: makemigrations passes the database's dialect name"
        in adopted.stdout
    )
    assert (
        "! env.py picks one of versions/postgresql, versions/sqlite per database" in adopted.stdout
    )

    # What the note says: one migrations folder per dialect, picked in the settings.
    for dialect in ("sqlite", "postgresql"):
        folder = root / f"migrations_{dialect}"
        (folder / "versions").mkdir(parents=True)
        for name in ("env.py", "script.py.mako"):
            shutil.copy(root / "migrations" / name, folder / name)
        for path in (root / "migrations" / "versions" / dialect).glob("*.py"):
            shutil.copy(path, folder / "versions" / path.name)
    Project(root).edit(
        "sqlmanage_settings.py",
        "MODELS = []  # the packages or modules that define your models",
        "MODELS = ['orchestrator.database']",
    )
    Project(root).edit(
        "sqlmanage_settings.py",
        "MIGRATIONS = BASE_DIR / 'migrations'",
        "MIGRATIONS = BASE_DIR / ('migrations_postgresql' if (DATABASE_URL or '').startswith('postgres') "
        "else 'migrations_sqlite')",
    )
    project = Project(root)
    light = project.run(
        "-c",
        "import sqlmanage_settings, sys; print('orchestrator.database' in sys.modules)",
        env=env,
        program=[sys.executable],
    )
    assert light.stdout.strip() == "False", light.stderr

    project.manage("migrate", env=env)
    assert project.manage("showmigrations", env=env).lines[1:] == [
        " [X] 2022_01_20_115236_9725c1cbee35_initial_migration"
    ]
    assert (
        project.manage("makemigrations", "--check", env=env).stdout.strip() == "No changes detected"
    )

    project.edit(
        "orchestrator/database.py",
        "    name: Mapped[str] = mapped_column(sa.String(100))\n",
        "    name: Mapped[str] = mapped_column(sa.String(100))\n"
        "    note: Mapped[str | None] = mapped_column(sa.Text())\n",
    )
    made = project.manage("makemigrations", "-n", "add_note", env=env)
    written = sorted((root / "migrations_sqlite" / "versions").glob("*_add_note.py"))
    assert len(written) == 1, made.stdout
    text = written[0].read_text()
    assert "# Written for sqlite by orchestration." in text
    assert "# SQLite: foreign keys are checked at the end of the batch." in text
    project.manage("migrate", env=env)
    assert (
        project.manage("makemigrations", "--check", env=env).stdout.strip() == "No changes detected"
    )


# --- Airflow's shape ------------------------------------------------------------------------

AIRFLOW_INI = (
    "[alembic]\nscript_location = %(here)s/migrations\nsqlalchemy.url = scheme://localhost/airflow\n"
    + ALEMBIC_INI_LOGGING
)

AIRFLOW_ENV = """from __future__ import annotations

import contextlib

from alembic import context

from scheduler import models, settings
from scheduler.utils.db import compare_server_default, compare_type


def include_object(_, name, type_, *args):
    if name == "sqlite_sequence":
        return False
    if type_ == "table" and name not in target_metadata.tables:
        return False
    return True


models.import_all_models()
config = context.config
target_metadata = models.base.Base.metadata
version_table = "scheduler_version"


def run_migrations_online():
    with contextlib.ExitStack() as stack:
        connection = stack.push(settings.engine().connect())
        context.configure(
            connection=connection,
            transaction_per_migration=True,
            target_metadata=target_metadata,
            compare_type=compare_type,
            compare_server_default=compare_server_default,
            include_object=include_object,
            render_as_batch=True,
            version_table=version_table,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
"""

AIRFLOW_FILES = {
    "scheduler/__init__.py": "",
    "scheduler/settings.py": """import os

import sqlalchemy as sa


def engine():
    return sa.create_engine(os.environ["SCHEDULER_SQL_ALCHEMY_CONN"])
""",
    "scheduler/models/__init__.py": """def import_all_models():
    import scheduler.models.dag  # noqa: F401
""",
    "scheduler/models/base.py": "from sqlalchemy.orm import declarative_base\n\nBase = declarative_base()\n",
    # The model says String(250); the history made VARCHAR(200) and a server default the model
    # lacks. The team's own comparison callables call both equal, so its autogenerate is clean.
    "scheduler/models/dag.py": """import sqlalchemy as sa

from scheduler.models.base import Base


class DagModel(Base):
    __tablename__ = "dag"

    dag_id = sa.Column(sa.String(250), primary_key=True)
    is_paused = sa.Column(sa.Boolean, default=False)
""",
    "scheduler/utils/__init__.py": "",
    "scheduler/utils/db.py": """import sqlalchemy as sa


def compare_type(context, inspected_column, metadata_column, inspected_type, metadata_type):
    if isinstance(inspected_type, sa.String) and isinstance(metadata_type, sa.String):
        return False
    return None


def compare_server_default(context, inspected_column, metadata_column, inspected_default,
                           metadata_default, rendered_metadata_default):
    return False
""",
    "migrations/versions/0000_2_6_2_squashed_migrations.py": '''"""squashed migrations"""
import sqlalchemy as sa
from alembic import op

revision = "e959f08ac86c"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "dag",
        sa.Column("dag_id", sa.String(200), nullable=False),
        sa.Column("is_paused", sa.Boolean(), nullable=True, server_default=sa.false()),
        sa.PrimaryKeyConstraint("dag_id"),
    )


def downgrade():
    op.drop_table("dag")
''',
}


def test_adopting_an_airflow_shaped_history(tmp_path):
    root = tmp_path / "scheduler_project"
    write_files(
        root, {"alembic.ini": AIRFLOW_INI, "migrations/env.py": AIRFLOW_ENV, **AIRFLOW_FILES}
    )
    database = f"sqlite:///{tmp_path / 'scheduler.sqlite3'}"

    adopted = Project(root).run("adopt", program=SQLMANAGE)
    assert adopted.returncode == 0, adopted.stderr
    settings = (root / "sqlmanage_settings.py").read_text()
    # The ini's URL is a placeholder env.py never reads: not taken as the database.
    assert "scheme://localhost/airflow" not in settings
    assert (
        "! alembic.ini's sqlalchemy.url (scheme://localhost/airflow): env.py never reads it"
        in adopted.stdout
    )
    # compare_type / compare_server_default are the team's callables: named, not dropped.
    assert "COMPARE_TYPE = 'scheduler.utils.db.compare_type'" in settings
    assert "COMPARE_SERVER_DEFAULT = 'scheduler.utils.db.compare_server_default'" in settings
    # version_table=version_table: the module-level value it names.
    assert "VERSION_TABLE = 'scheduler_version'" in settings
    assert "! env.py runs models.import_all_models() when it loads" in adopted.stdout
    assert "MODELS = ['scheduler.models.dag']" in settings
    # target_metadata is an attribute of an import, not something env.py computes.
    assert "include_object() uses target_metadata, which env.py computes" not in adopted.stdout

    project = Project(root)
    env = {"DATABASE_URL": database}
    project.manage("migrate", env=env)
    assert (
        project.manage("makemigrations", "--check", env=env).stdout.strip() == "No changes detected"
    )
    project.edit(
        "sqlmanage_settings.py",
        "COMPARE_TYPE = 'scheduler.utils.db.compare_type'",
        "COMPARE_TYPE = True",
    )
    changed = project.run("makemigrations", "--check", env=env)
    assert changed.returncode == 1 and "Alter column dag_id on dag" in changed.stdout
