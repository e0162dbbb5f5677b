"""Unit tests of ``migrate TARGET``'s plan: which migrations run, in which direction and order.

The plan is a pure function of the history (real files, read as every command reads them)
and the revisions a database stands at; ``--plan``, ``--check``, ``--sql`` and the real run
all follow it.
"""

from __future__ import annotations

import pytest

from sqlmanage.engine.plan import (
    is_relative,
    is_zero,
    plan_migrations,
    require_recordable_revisions,
)
from sqlmanage.errors import MultipleHeads, SqlmanageError, UnknownDatabaseRevision
from test_units_history import Folder, linear, migration


@pytest.fixture
def folder(tmp_path) -> Folder:
    return Folder(tmp_path)


@pytest.fixture
def four(folder):
    linear(folder, "0001_initial", "0002_items", "0003_prices", "0004_codes")
    return folder.history()


def steps(plan) -> list[str]:
    return [("+" if step.forward else "-") + step.migration.revision[:4] for step in plan.steps]


def test_no_target_applies_everything_pending_in_order(four):
    assert steps(plan_migrations(four, (), None)) == ["+0001", "+0002", "+0003", "+0004"]
    assert steps(plan_migrations(four, ("0002_items",), None)) == ["+0003", "+0004"]
    assert steps(plan_migrations(four, ("0004_codes",), "head")) == []


def test_an_earlier_target_unapplies_what_came_after_it_newest_first(four):
    plan = plan_migrations(four, ("0004_codes",), "0002")
    assert plan.target.revision == "0002_items"
    assert steps(plan) == ["-0004", "-0003"]


def test_a_later_target_applies_up_to_it_and_no_further(four):
    plan = plan_migrations(four, ("0001_initial",), "0003_prices")
    assert (plan.target.revision, plan.target_label) == ("0003_prices", "0003_prices")
    assert steps(plan) == ["+0002", "+0003"]


def test_the_current_revision_as_target_does_nothing(four):
    assert steps(plan_migrations(four, ("0003_prices",), "3")) == []


@pytest.mark.parametrize("zero", ["zero", "ZERO", " base "])
def test_zero_unapplies_everything_applied(four, zero):
    plan = plan_migrations(four, ("0003_prices",), zero)
    assert plan.target is None
    assert steps(plan) == ["-0003", "-0002", "-0001"]


def test_relative_targets_move_that_many_steps(four):
    assert steps(plan_migrations(four, ("0001_initial",), "+2")) == ["+0002", "+0003"]
    assert steps(plan_migrations(four, ("0004_codes",), "-1")) == ["-0004"]
    assert steps(plan_migrations(four, ("0002_items",), "-2")) == ["-0002", "-0001"]


def test_a_relative_move_past_the_end_says_how_far_it_can_go(four):
    with pytest.raises(SqlmanageError, match=r"Cannot move \+3: only 2 migrations are unapplied"):
        plan_migrations(four, ("0002_items",), "+3")
    with pytest.raises(SqlmanageError, match=r"Cannot move -2: only 1 migration is applied"):
        plan_migrations(four, ("0001_initial",), "-2")


def test_a_database_at_a_revision_no_file_has_is_refused(four):
    with pytest.raises(
        UnknownDatabaseRevision, match="at revision 0009_gone, which no migration file"
    ):
        plan_migrations(four, ("0009_gone",), None)


def test_two_heads_need_a_merge_unless_heads_is_asked_for(folder):
    linear(folder, "0001_initial")
    folder.add("0002_a", "0001_initial")
    folder.add("0002_b", "0001_initial")
    history = folder.history()
    with pytest.raises(MultipleHeads):
        plan_migrations(history, (), None)
    with pytest.raises(MultipleHeads):
        plan_migrations(history, (), "head")
    assert steps(plan_migrations(history, (), "heads")) == ["+0001", "+0002", "+0002"]
    branch = plan_migrations(history, (), "0002_b")
    assert [s.migration.revision for s in branch.steps] == ["0001_initial", "0002_b"]


def test_unapplying_one_branch_leaves_the_other(folder):
    linear(folder, "0001_initial")
    folder.add("0002_a", "0001_initial")
    folder.add("0002_b", "0001_initial")
    history = folder.history()
    plan = plan_migrations(history, ("0002_a", "0002_b"), "0001")
    assert sorted(s.migration.revision for s in plan.steps) == ["0002_a", "0002_b"]
    assert not any(s.forward for s in plan.steps)


def test_a_database_inside_a_squashed_range_first_runs_the_rest_of_the_originals(folder):
    folder.add("0001_initial", None)
    folder.add("0003_prices", "0001_initial", name="0002_squashed_0002_0003")
    folder.add("0004_codes", "0003_prices")
    replaced = folder.versions / "replaced"
    replaced.mkdir()
    (replaced / "0002_items.py").write_text(migration("0002_items", "0001_initial"))
    (replaced / "0003_prices.py").write_text(migration("0003_prices", "0002_items"))
    history = folder.history()
    plan = plan_migrations(history, ("0002_items",), None)
    assert [(s.migration.path.parent.name, s.migration.revision) for s in plan.steps] == [
        ("replaced", "0003_prices"),
        ("versions", "0004_codes"),
    ]
    assert history.is_replaced(plan.steps[0].migration)


def test_revision_ids_longer_than_the_version_column_are_refused_before_any_run(folder):
    folder.add("0001_" + "x" * 28, None, name="0001_long")
    with pytest.raises(
        SqlmanageError,
        match=r"longer than the version table's 32 characters: 0001_x+ \(33 characters, in 0001_long.py\)",
    ):
        require_recordable_revisions(folder.history())
    require_recordable_revisions(Folder(folder.root.parent / "other").history())


def test_target_words():
    assert is_zero("zero") and is_zero(" Base ") and not is_zero("0001") and not is_zero(None)
    assert (
        is_relative("+1") and is_relative("-12") and not is_relative("+") and not is_relative("1")
    )


@pytest.mark.parametrize(
    ("current", "target", "goal", "count"),
    [
        ((), None, "all", 0),
        ((), "heads", "all", 0),
        (("0003_prices",), " Zero ", "zero", 0),
        ((), "+2", "next", 2),
        (("0004_codes",), "-3", "last", 3),
        ((), "0002", "migration", 0),
    ],
)
def test_the_plan_says_what_its_target_asked_for(four, current, target, goal, count):
    plan = plan_migrations(four, current, target)
    assert (plan.goal, plan.count) == (goal, count)
