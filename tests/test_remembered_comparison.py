"""A remembered "No changes detected" never hides a model change.

``makemigrations --check`` remembers a clean comparison under a fingerprint of the models
(engine/autodetect/comparison_cache.py). Every kind of model change that autogenerate sees must change
that fingerprint: here the models are made clean and remembered once, then each change in
turn must make ``--check`` fail although the clean answer for the old models is still
remembered. PostgreSQL, because it is where every one of these changes is a schema change.
"""

from __future__ import annotations

import json

import pytest

MODULE = "project/models/gate.py"
BASE = "project/models/base.py"

GATE = '''"""Written by tests/test_remembered_comparison.py."""

import sqlalchemy as sa

from project.models.base import Base

gate = sa.Table(
    "gate",
    Base.metadata,
    sa.Column("id", sa.Integer(), sa.Identity(start=1), primary_key=True),
    sa.Column("name", sa.String(30).with_variant(sa.String(60), "postgresql"), comment="the name"),
    sa.Column("qty", sa.Integer(), server_default="0", index=True),
    sa.Column("kind", sa.Enum("a", "b", name="gate_kind")),
    sa.Index("ix_gate_lower_name", sa.func.lower(sa.column("name"))),
    comment="the gate",
)
'''

# Each: (the text in GATE, or in base.py's naming convention, and what it becomes).
CHANGES = {
    "a variant for another dialect": ('String(60), "postgresql"', 'String(70), "postgresql"'),
    "identity options": ("sa.Identity(start=1)", "sa.Identity(start=5)"),
    "a column comment": ('comment="the name"', 'comment="its name"'),
    "a table comment": ('comment="the gate"', 'comment="the gate table"'),
    "a server default": ('server_default="0"', 'server_default="1"'),
    "an expression index": ("sa.func.lower(", "sa.func.upper("),
    "an enum label": ('sa.Enum("a", "b",', 'sa.Enum("a", "b", "c",'),
    "the naming convention": ('"ix": "ix_%(column_0_label)s"', '"ix": "idx_%(column_0_label)s"'),
}


@pytest.mark.postgres
def test_a_remembered_clean_comparison_never_hides_a_model_change(project, pg_url):
    env = {"DATABASE_URL": pg_url, "PYTHONDONTWRITEBYTECODE": "1"}  # edits within one second
    (project.path / MODULE).write_text(GATE)
    base = (project.path / BASE).read_text()
    project.manage("makemigrations", env=env)
    project.manage("migrate", env=env)
    assert project.manage("makemigrations", "--check", env=env).lines == ["No changes detected"]
    cache = project.path / "project/migrations/__pycache__/sqlmanage-clean-comparisons.json"
    remembered = json.loads(cache.read_text())["clean"]
    assert len(remembered) == 1

    hidden = []
    for kind, (old, new) in CHANGES.items():
        target = BASE if old in base else MODULE
        original = base if target == BASE else GATE
        assert old in original, kind
        (project.path / target).write_text(original.replace(old, new, 1))
        result = project.run("makemigrations", "--check", env=env)
        (project.path / target).write_text(original)
        if result.returncode != 1:
            hidden.append(f"{kind}: exited {result.returncode}: {result.stdout.strip()}")
    assert hidden == [], "the remembered clean comparison hid:\n" + "\n".join(hidden)
    assert json.loads(cache.read_text())["clean"] == remembered  # changes are never remembered
    assert project.manage("makemigrations", "--check", env=env).lines == ["No changes detected"]
