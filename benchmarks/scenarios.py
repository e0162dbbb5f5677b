"""Generate the benchmark scenarios: a long migration history, or a wide schema.

    python benchmarks/scenarios.py history --revisions 1000 --out /tmp/bench-history
    python benchmarks/scenarios.py schema --tables 500 --out /tmp/bench-schema

Each writes two copies of one project into OUT, with identical models and migration files:

- ``OUT/sqlmanage/``: laid out like the example project (manage.py, alembic.ini,
  project/settings.py, project/models/, project/migrations/ with sqlmanage's env.py);
- ``OUT/alembic/``: a plain ``alembic init`` project (Alembic's own env.py with
  ``target_metadata`` set to the same models, its script.py.mako, sqlalchemy.url in alembic.ini).

The database: an SQLite file ``db.sqlite3`` in each copy by default; ``--url`` writes another
one into both (``{copy}`` in it becomes ``sqlmanage`` or ``alembic``, so that each copy gets
its own database). At run time the environment variable ``DATABASE_URL`` overrides it for
both tools, as sqlmanage documents and as many Alembic projects' env.py do.

The history (revision 1 creates 20 tables; then, in turn: add a nullable column, index it,
create a small table with a foreign key to that table, set the column NOT NULL) is written
the way Alembic's autogenerate writes it with ``render_as_batch``. The models always match
the schema at head, so ``makemigrations --check`` and ``alembic check`` find no changes.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CREATE_DATE = "2026-11-25 00:00:00"
COPIES = ("sqlmanage", "alembic")
TABLES_PER_MODULE = 50

# The 20 tables of revision 1. Table i has a foreign key to table (i - 1) // 2, so a batch
# rebuild on SQLite reflects a short chain of referenced tables, as in a real schema.
BASE_TABLES = [
    "accounts",
    "users",
    "teams",
    "projects",
    "tasks",
    "comments",
    "tags",
    "labels",
    "folders",
    "files",
    "customers",
    "orders",
    "products",
    "invoices",
    "payments",
    "suppliers",
    "shipments",
    "reviews",
    "events",
    "webhooks",
]

NAMING_CONVENTION = """NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}"""


@dataclass
class Column:
    """One column, rendered both as a model attribute and as autogenerate's sa.Column."""

    name: str
    sa_type: str  # as autogenerate renders it, e.g. "sa.String(length=50)"
    model_type: str  # as a model declares it, e.g. "sa.String(50)"
    python_type: str
    nullable: bool = True
    primary_key: bool = False
    index: bool = False
    unique: bool = False
    references: str | None = None  # "table.column"

    def model_line(self) -> str:
        args = [self.model_type]
        if self.references:
            args.append(f'sa.ForeignKey("{self.references}")')
        if self.primary_key:
            args.append("primary_key=True")
        else:
            args.append(f"nullable={self.nullable}")
        if self.index:
            args.append("index=True")
        if self.unique:
            args.append("unique=True")
        annotation = (
            self.python_type
            if (self.primary_key or not self.nullable)
            else f"{self.python_type} | None"
        )
        return f"    {self.name}: Mapped[{annotation}] = mapped_column({', '.join(args)})"

    def migration_line(self) -> str:
        return f"    sa.Column('{self.name}', {self.sa_type}, nullable={self.nullable}),"


@dataclass
class Table:
    name: str
    columns: list[Column] = field(default_factory=list)
    module: str = "tables"

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def class_name(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))

    def model_source(self) -> str:
        lines = [f"class {self.class_name()}(Base):", f'    __tablename__ = "{self.name}"', ""]
        lines += [c.model_line() for c in self.columns]
        return "\n".join(lines)

    def create_source(self) -> str:
        """op.create_table(...) and its indexes, as autogenerate renders them in batch mode."""
        lines = [f"    op.create_table('{self.name}',"]
        lines += [c.migration_line() for c in self.columns]
        constraints = []
        for c in self.columns:
            if c.references:
                target_table = c.references.split(".")[0]
                constraints.append(
                    f"    sa.ForeignKeyConstraint(['{c.name}'], ['{c.references}'], "
                    f"name=op.f('fk_{self.name}_{c.name}_{target_table}'))"
                )
        pk = [c.name for c in self.columns if c.primary_key]
        constraints.append(
            f"    sa.PrimaryKeyConstraint({', '.join(repr(n) for n in pk)}, name=op.f('pk_{self.name}'))"
        )
        for c in self.columns:
            if c.unique:
                constraints.append(
                    f"    sa.UniqueConstraint('{c.name}', name=op.f('uq_{self.name}_{c.name}'))"
                )
        lines += [line + "," for line in constraints[:-1]] + [constraints[-1], "    )"]
        indexed = [c for c in self.columns if c.index]
        if indexed:
            lines.append(f"    with op.batch_alter_table('{self.name}', schema=None) as batch_op:")
            for c in indexed:
                lines.append(
                    f"        batch_op.create_index(batch_op.f('ix_{self.name}_{c.name}'), ['{c.name}'], unique=False)"
                )
            lines.append("")
        return "\n".join(lines)

    def drop_source(self) -> str:
        lines = []
        indexed = [c for c in self.columns if c.index]
        if indexed:
            lines.append(f"    with op.batch_alter_table('{self.name}', schema=None) as batch_op:")
            for c in reversed(indexed):
                lines.append(f"        batch_op.drop_index(batch_op.f('ix_{self.name}_{c.name}'))")
            lines.append("")
        lines.append(f"    op.drop_table('{self.name}')")
        return "\n".join(lines)


@dataclass
class Migration:
    number: int
    slug: str
    upgrade: str
    downgrade: str

    @property
    def revision(self) -> str:
        return f"{self.number:04d}_{self.slug}"

    def source(self, parent: str | None) -> str:
        message = self.slug.replace("_", " ")
        return f'''"""{message}

Revision ID: {self.revision}
Revises: {parent or ""}
Create Date: {CREATE_DATE}

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = {self.revision!r}
down_revision: Union[str, Sequence[str], None] = {parent!r}
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
{self.upgrade}
    # ### end Alembic commands ###


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
{self.downgrade}
    # ### end Alembic commands ###
'''


@dataclass
class Scenario:
    """The models at head and the migrations that lead there."""

    tables: list[Table]
    migrations: list[Migration]


def _id_column() -> Column:
    return Column("id", "sa.Integer()", "sa.Integer()", "int", nullable=False, primary_key=True)


def history_scenario(revisions: int) -> Scenario:
    """Revision 1 creates 20 tables; then add a column, index it, add a table, set NOT NULL."""
    tables = []
    for i, name in enumerate(BASE_TABLES):
        columns = [
            _id_column(),
            Column("name", "sa.String(length=100)", "sa.String(100)", "str", nullable=False),
            Column("created_at", "sa.DateTime()", "sa.DateTime()", "datetime"),
        ]
        if i:
            parent = BASE_TABLES[(i - 1) // 2]
            columns.append(
                Column(
                    f"{parent}_id", "sa.Integer()", "sa.Integer()", "int", references=f"{parent}.id"
                )
            )
        tables.append(Table(name, columns, module="core"))

    initial = Migration(
        1,
        "initial",
        "\n".join(t.create_source() for t in tables),
        "\n".join(t.drop_source() for t in reversed(tables)),
    )
    migrations = [initial]
    by_name = {t.name: t for t in tables}
    for number in range(2, revisions + 1):
        step, cycle = (number - 2) % 4, (number - 2) // 4
        table = by_name[BASE_TABLES[cycle % len(BASE_TABLES)]]
        column_name = f"field_{cycle}"
        batch = f"    with op.batch_alter_table('{table.name}', schema=None) as batch_op:\n"
        if step == 0:
            table.columns.append(
                Column(column_name, "sa.String(length=50)", "sa.String(50)", "str")
            )
            migrations.append(
                Migration(
                    number,
                    f"add_{table.name}_{column_name}",
                    batch
                    + f"        batch_op.add_column(sa.Column('{column_name}', sa.String(length=50), nullable=True))\n",
                    batch + f"        batch_op.drop_column('{column_name}')\n",
                )
            )
        elif step == 1:
            table.column(column_name).index = True
            index = f"ix_{table.name}_{column_name}"
            migrations.append(
                Migration(
                    number,
                    index,
                    batch
                    + f"        batch_op.create_index(batch_op.f('{index}'), ['{column_name}'], unique=False)\n",
                    batch + f"        batch_op.drop_index(batch_op.f('{index}'))\n",
                )
            )
        elif step == 2:
            item = Table(
                f"item_{cycle}",
                [
                    _id_column(),
                    Column(
                        f"{table.name}_id",
                        "sa.Integer()",
                        "sa.Integer()",
                        "int",
                        nullable=False,
                        references=f"{table.name}.id",
                    ),
                    Column("label", "sa.String(length=50)", "sa.String(50)", "str"),
                ],
                module=f"items_{cycle // TABLES_PER_MODULE:02d}",
            )
            tables.append(item)
            migrations.append(
                Migration(number, f"create_{item.name}", item.create_source(), item.drop_source())
            )
        else:
            table.column(column_name).nullable = False
            migrations.append(
                Migration(
                    number,
                    f"alter_{table.name}_{column_name}",
                    batch + f"        batch_op.alter_column('{column_name}',\n"
                    "               existing_type=sa.VARCHAR(length=50),\n"
                    "               nullable=False)\n",
                    batch + f"        batch_op.alter_column('{column_name}',\n"
                    "               existing_type=sa.VARCHAR(length=50),\n"
                    "               nullable=True)\n",
                )
            )
    return Scenario(tables, migrations)


# Mixed types for the wide schema: (name, autogenerate's rendering, model type, python type).
EXTRA_COLUMNS = [
    ("views", "sa.BigInteger()", "sa.BigInteger()", "int"),
    ("rank", "sa.SmallInteger()", "sa.SmallInteger()", "int"),
    ("photo", "sa.LargeBinary()", "sa.LargeBinary()", "bytes"),
    ("data", "sa.JSON()", "sa.JSON()", "dict"),
]


def schema_scenario(table_count: int) -> Scenario:
    """``table_count`` tables of mixed types, each with a foreign key, an index and a unique
    constraint, in modules of 50, and one initial migration that creates them all."""
    tables = []
    for i in range(table_count):
        name = f"entity_{i:04d}"
        parent = f"entity_{(i - 1) // 2:04d}" if i else name
        extra = EXTRA_COLUMNS[i % len(EXTRA_COLUMNS)]
        tables.append(
            Table(
                name,
                [
                    _id_column(),
                    Column(
                        "code",
                        "sa.String(length=40)",
                        "sa.String(40)",
                        "str",
                        nullable=False,
                        unique=True,
                    ),
                    Column(
                        "name",
                        "sa.String(length=200)",
                        "sa.String(200)",
                        "str",
                        nullable=False,
                        index=True,
                    ),
                    Column("description", "sa.Text()", "sa.Text()", "str"),
                    Column(
                        "price",
                        "sa.Numeric(precision=12, scale=2)",
                        "sa.Numeric(12, 2)",
                        "Decimal",
                        nullable=False,
                    ),
                    Column("quantity", "sa.Integer()", "sa.Integer()", "int", nullable=False),
                    Column("weight", "sa.Float()", "sa.Float()", "float"),
                    Column("is_active", "sa.Boolean()", "sa.Boolean()", "bool", nullable=False),
                    Column(
                        "created_at", "sa.DateTime()", "sa.DateTime()", "datetime", nullable=False
                    ),
                    Column("available_on", "sa.Date()", "sa.Date()", "date"),
                    Column(*extra),
                    Column(
                        "parent_id",
                        "sa.Integer()",
                        "sa.Integer()",
                        "int",
                        references=f"{parent}.id",
                    ),
                ],
                module=f"part_{i // TABLES_PER_MODULE:02d}",
            )
        )
    initial = Migration(
        1,
        "initial",
        "\n".join(t.create_source() for t in tables),
        "\n".join(t.drop_source() for t in reversed(tables)),
    )
    return Scenario(tables, [initial])


def model_modules(scenario: Scenario) -> dict[str, str]:
    """project/models/*.py: base.py, one module per group of tables, and an __init__ that
    imports them all (plain Alembic's env.py sees only what is imported)."""
    modules: dict[str, list[Table]] = {}
    for table in scenario.tables:
        modules.setdefault(table.module, []).append(table)
    header = (
        "from datetime import date, datetime\nfrom decimal import Decimal\n\n"
        "import sqlalchemy as sa\nfrom sqlalchemy.orm import Mapped, mapped_column\n\n"
        "from project.models.base import Base\n"
    )
    files = {
        "base.py": (
            '"""The declarative base; named constraints, as on every real project."""\n\n'
            "from sqlalchemy import MetaData\nfrom sqlalchemy.orm import DeclarativeBase\n\n"
            f"{NAMING_CONVENTION}\n\n\nclass Base(DeclarativeBase):\n"
            "    metadata = MetaData(naming_convention=NAMING_CONVENTION)\n"
        ),
    }
    for module, tables in modules.items():
        body = "\n\n\n".join(t.model_source() for t in tables)
        files[f"{module}.py"] = f"{header}\n\n{body}\n"
    imports = "\n".join(f"from project.models import {m}  # noqa: F401" for m in modules)
    files["__init__.py"] = (
        '"""Every model module, imported so that plain Alembic\'s env.py sees every table."""\n\n'
        f'from project.models.base import Base\n{imports}\n\n__all__ = ["Base"]\n'
    )
    return files


def _sqlmanage_files(url: str | None) -> dict[str, str]:
    templates = ROOT / "src" / "sqlmanage" / "templates" / "migrations"
    if not templates.is_dir():
        from importlib.resources import files as package_files

        templates = package_files("sqlmanage") / "templates" / "migrations"
    database_url = repr(url) if url else "f\"sqlite:///{BASE_DIR / 'db.sqlite3'}\""
    return {
        "manage.py": (ROOT / "manage.py").read_text(encoding="utf-8"),
        "alembic.ini": (ROOT / "alembic.ini").read_text(encoding="utf-8"),
        "project/__init__.py": "",
        "project/settings.py": (
            '"""Settings of a generated benchmark project."""\n\nfrom pathlib import Path\n\n'
            "BASE_DIR = Path(__file__).resolve().parent.parent\n\n"
            "# The environment variable DATABASE_URL overrides this.\n"
            f"DATABASE_URL = {database_url}\n"
        ),
        "project/migrations/env.py": (templates / "env.py").read_text(encoding="utf-8"),
        "project/migrations/script.py.mako": (templates / "script.py.mako").read_text(
            encoding="utf-8"
        ),
    }


def _alembic_files(url: str | None) -> dict[str, str]:
    """What ``alembic init`` writes, with target_metadata set and DATABASE_URL honoured."""
    import alembic
    from mako.template import Template

    generic = Path(alembic.__file__).parent / "templates" / "generic"
    ini = Template(filename=str(generic / "alembic.ini.mako")).render_unicode(
        script_location="project/migrations"
    )
    placeholder = "sqlalchemy.url = driver://user:pass@localhost/dbname"
    assert placeholder in ini, "alembic.ini.mako changed"
    ini = ini.replace(
        placeholder, f"sqlalchemy.url = {(url or 'sqlite:///db.sqlite3').replace('%', '%%')}"
    )

    env = (generic / "env.py").read_text(encoding="utf-8")
    replacements = {
        "from logging.config import fileConfig\n": "import os\nfrom logging.config import fileConfig\n",
        "target_metadata = None\n": (
            "from project.models import Base\n\ntarget_metadata = Base.metadata\n\n"
            'if os.environ.get("DATABASE_URL"):\n'
            '    config.set_main_option("sqlalchemy.url", os.environ["DATABASE_URL"].replace("%", "%%"))\n'
        ),
        "            connection=connection, target_metadata=target_metadata\n": (
            "            connection=connection,\n"
            "            target_metadata=target_metadata,\n"
            '            render_as_batch=connection.dialect.name == "sqlite",\n'
        ),
    }
    for old, new in replacements.items():
        assert old in env, f"alembic's generic env.py changed: {old!r}"
        env = env.replace(old, new)
    return {
        "alembic.ini": ini,
        "project/__init__.py": "",
        "project/migrations/env.py": env,
        "project/migrations/script.py.mako": (generic / "script.py.mako").read_text(
            encoding="utf-8"
        ),
    }


def write_scenario(scenario: Scenario, out: Path, url: str | None = None) -> dict[str, Path]:
    """Write both copies into ``out``; return {"sqlmanage": path, "alembic": path}."""
    shared = {f"project/models/{name}": text for name, text in model_modules(scenario).items()}
    parent = None
    for migration in scenario.migrations:
        shared[f"project/migrations/versions/{migration.revision}.py"] = migration.source(parent)
        parent = migration.revision
    copies = {}
    for copy, own in (("sqlmanage", _sqlmanage_files), ("alembic", _alembic_files)):
        root = out / copy
        if root.exists():
            shutil.rmtree(root)
        for relative, text in {
            **own(url.replace("{copy}", copy) if url else None),
            **shared,
        }.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        copies[copy] = root
    return copies


def generate(kind: str, size: int, out: Path, url: str | None = None) -> dict[str, Path]:
    """Generate the ``history`` (size = revisions) or ``schema`` (size = tables) scenario."""
    if kind == "history":
        scenario = history_scenario(size)
    elif kind == "schema":
        scenario = schema_scenario(size)
    else:
        raise ValueError(f"unknown scenario {kind!r}")
    return write_scenario(scenario, out, url)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    history = sub.add_parser("history", help="revision 1 creates 20 tables, then N-1 small steps")
    history.add_argument("--revisions", type=int, default=1000)
    schema = sub.add_parser("schema", help="M tables of mixed types, one initial migration")
    schema.add_argument("--tables", type=int, default=500)
    for command in (history, schema):
        command.add_argument("--out", type=Path, required=True, help="folder for the two copies")
        command.add_argument(
            "--url",
            help="database URL for both copies ({copy} becomes the copy's name); "
            "default: db.sqlite3 in each copy",
        )
    args = parser.parse_args(argv)
    size = args.revisions if args.kind == "history" else args.tables
    if size < 1:
        parser.error("the size must be at least 1")
    copies = generate(args.kind, size, args.out, args.url)
    for copy, path in copies.items():
        print(f"{copy:10} {path}")


if __name__ == "__main__":
    sys.exit(main())
