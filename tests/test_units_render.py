"""Unit tests of the renderers: Django's lines and the JSON, made from data alone.

The data is what core returns (a history read from real files, a plan, migration states);
the lines are the ones CI scripts parse, so they are compared whole.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from sqlmanage.engine.plan import plan_migrations
from sqlmanage.engine.status import MigrationState, Status
from sqlmanage.render import json_data, plain, printable
from test_units_history import Folder, linear


@pytest.fixture
def history(tmp_path):
    folder = Folder(tmp_path)
    linear(folder, "0001_initial", "0002_items", "0003_prices")
    return folder.history()


def status_of(history, states: dict, missing=()) -> Status:
    migrations = [
        MigrationState(m, **states.get(m.revision, {"applied": False})) for m in history.migrations
    ]
    applied = [s.migration.revision for s in migrations if s.applied]
    return Status(
        "shop",
        "sqlite:///db.sqlite3",
        migrations,
        tuple(applied[-1:]),
        tuple(missing),
        history.heads,
    )


def test_showmigrations_marks_applied_changed_and_missing(history):
    status = status_of(
        history,
        {
            "0001_initial": {"applied": True, "applied_at": datetime(2024, 3, 1, 10, 20, 30)},
            "0002_items": {"applied": True, "changed": True},
        },
        missing=("0009_gone",),
    )
    assert list(plain.showmigrations(status, plan=False, verbosity=1)) == [
        ("shop", "label"),
        (" [X] 0001_initial", None),
        (" [X] 0002_items (file changed since it was applied)", "error"),
        (" [ ] 0003_prices", None),
        (" [?] 0009_gone (recorded in the database; no migration file)", "error"),
    ]
    verbose = [text for text, _ in plain.showmigrations(status, plan=False, verbosity=2)]
    assert verbose[1] == " [X] 0001_initial (applied at 2024-03-01 10:20:30)"
    assert verbose[2] == (
        " [X] 0002_items (applied outside sqlmanage; not verified until the next "
        "migrate) (file changed since it was applied)"
    )


def test_showmigrations_plan_lists_parents_at_verbosity_two(history):
    status = status_of(history, {"0001_initial": {"applied": True}})
    assert [t for t, _ in plain.showmigrations(status, plan=True, verbosity=2)] == [
        "[X]  0001_initial",
        "[ ]  0002_items ... (0001_initial)",
        "[ ]  0003_prices ... (0002_items)",
    ]


def test_an_empty_history_says_so(tmp_path):
    empty = Folder(tmp_path).history()
    status = status_of(empty, {})
    assert list(plain.showmigrations(status, plan=False, verbosity=1)) == [
        ("shop", "label"),
        (" (no migrations)", None),
    ]
    assert list(plain.showmigrations(status, plan=True, verbosity=1)) == [("(no migrations)", None)]


@pytest.mark.parametrize(
    ("current", "target", "line"),
    [
        ((), None, "  Apply all migrations: shop"),
        (("0003_prices",), "zero", "  Unapply all migrations: shop"),
        ((), "+1", "  Apply the next 1 migration: shop"),
        (("0003_prices",), "-2", "  Unapply the last 2 migrations: shop"),
        ((), "0002", "  Target specific migration: 0002_items, from shop"),
    ],
)
def test_the_heading_says_what_the_target_means(history, current, target, line):
    heading = [
        t for t, _ in plain.migration_heading(plan_migrations(history, current, target), "shop")
    ]
    assert heading == ["Operations to perform:", line, "Running migrations:"]


def test_a_plan_with_nothing_to_do_says_so(history):
    plan = plan_migrations(history, ("0003_prices",), None)
    assert list(plain.migration_heading(plan, "shop"))[-1] == ("  No migrations to apply.", None)
    assert list(plain.planned_operations(plan, [])) == [
        ("Planned operations:", "heading"),
        ("  No planned migration operations.", None),
    ]


def test_planned_operations_going_back_are_undone_in_reverse_and_irreversible_ones_flagged(history):
    plan = plan_migrations(history, ("0003_prices",), "0001")
    descriptions = [(["Add column code to products", "Raw SQL operation"], True), ([], False)]
    assert list(plain.planned_operations(plan, descriptions)) == [
        ("Planned operations:", "heading"),
        ("0003_prices", "label"),
        ("    Undo Raw SQL operation -> IRREVERSIBLE", "error"),
        ("    Undo Add column code to products -> IRREVERSIBLE", "error"),
        ("0002_items", "label"),
        ("    (no operations)", None),
    ]


def test_step_lines_are_djangos(history):
    [step] = plan_migrations(history, (), "+1").steps
    assert plain.step_started(step) == "  Applying 0001_initial..."
    [back] = plan_migrations(history, ("0001_initial",), "-1").steps
    assert plain.step_started(back) == "  Unapplying 0001_initial..."
    assert plain.step_done(None, fake=False) == " OK"
    assert plain.step_done(0.0314, fake=True) == " FAKED (0.031s)"


def test_control_characters_in_names_are_shown_escaped():
    assert printable("0002_items") == "0002_items"
    assert printable("0002_\x1b[31mred\n") == "0002_\\x1b[31mred\\n"


def test_json_carries_every_state(history):
    status = status_of(
        history,
        {
            "0001_initial": {"applied": True, "applied_at": datetime(2024, 3, 1, 10, 20, 30)},
            "0002_items": {"applied": True, "half_applied": True},
        },
    )
    data = json.loads(json_data.showmigrations(status))
    assert (data["project"], data["applied"], data["pending"], data["heads"]) == (
        "shop",
        2,
        1,
        ["0003_prices"],
    )
    first, second, third = data["migrations"]
    assert (first["id"], first["number"], first["verified"], first["applied_at"]) == (
        "0001_initial",
        1,
        True,
        "2024-03-01T10:20:30",
    )
    assert first["created"] == "2024-03-01T10:20:30"
    assert (second["verified"], second["half_applied"], second["parents"]) == (
        False,
        True,
        ["0001_initial"],
    )
    assert (third["applied"], third["changed_since_applied"]) == (False, False)
