"""Migration files apply on every database, whichever database they were generated on.

Django's migrations are database-independent, and teams develop on SQLite and deploy on
PostgreSQL or MariaDB. For every pair (generated on X, applied on Y) of the three databases,
the change matrix's start models and changes (tests/test_change_matrix.py) are generated with
DATABASE_URL pointing at X; a fresh database Y is then migrated with those very files, must
be clean under ``makemigrations --check``, and ``migrate -1`` must give back its schema.

To keep this cheap, compatible changes (ones touching different columns, tables and enums)
are merged into a few migrations, each checked on its own, and every pair runs in one test.
"""

from __future__ import annotations

import re

import pytest

from test_change_matrix import (
    CHANGES,
    COLORS,
    ONLY_ON,
    START,
    Models,
    migration_body,
    new_files,
    outcome,
    schema_difference,
    snapshot,
    write_models,
)

DATABASE_KINDS = ("sqlite", "postgresql", "mariadb")
MARKS = {"sqlite": [], "postgresql": [pytest.mark.postgres], "mariadb": [pytest.mark.mariadb]}


def touched(models: Models) -> set[str]:
    """What a change touches: table lines, whole tables and enums, as labels."""
    labels: set[str] = set()
    for table in set(START.tables) | set(models.tables):
        old, new = START.tables.get(table), models.tables.get(table)
        if old is None or new is None:
            labels.add(f"table:{table}")
            lines = new or old or {}
            labels.update(
                f"enum:{e}" for line in lines.values() for e in re.findall(r"sa\.Enum\((\w+)", line)
            )
            continue
        for key in set(old) | set(new):
            if old.get(key) != new.get(key):
                labels.add(f"{table}.{key}")
                # and the columns its expressions use (a computed column, a partial index)
                literals = " ".join(re.findall(r'"([^"]*)"', new.get(key) or ""))
                words = set(re.findall(r"\w+", literals)) - {key}
                labels.update(f"{table}.{column}" for column in set(old) & words)
                for line in (old.get(key) or "", new.get(key) or ""):
                    labels.update(f"enum:{e}" for e in re.findall(r"sa\.Enum\((\w+)", line))
    if models.colors != COLORS:
        labels.add("enum:Color")
    return labels


def merged(kinds: list[str]) -> Models:
    """START with the changes of every kind applied together."""
    tables = {name: dict(lines) for name, lines in START.tables.items()}
    colors = COLORS
    for kind in kinds:
        change = CHANGES[kind]
        for name in set(START.tables) - set(change.tables):
            tables.pop(name, None)
        for name, lines in change.tables.items():
            if START.tables.get(name) == lines:
                continue
            target = tables.setdefault(name, {})
            start = START.tables.get(name, {})
            for key in set(start) - set(lines):
                target.pop(key, None)
            for key, line in lines.items():
                if start.get(key) != line:
                    target[key] = line
        if change.colors != COLORS:
            colors = change.colors
    return Models(tables, colors)


# Native enums are three different things: a PostgreSQL type, MariaDB's ENUM(...) column
# type, a VARCHAR on SQLite. The downgrade of a change touching one restores the type that
# was reflected where it was generated: from PostgreSQL that renders everywhere; from SQLite
# it is a bare VARCHAR (the enum is lost), from MariaDB a MySQL ENUM that SQLite cannot
# compile and that creates no PostgreSQL type. Not portable yet from those two.
ENUMS_PORTABLE_FROM = {"postgresql"}


def uses_enums(kind: str) -> bool:
    return any(label.startswith("enum:") for label in touched(CHANGES[kind]))


def groups(generated_on: str) -> list[list[str]]:
    """The portable changes, greedily packed into groups that touch nothing in common."""
    packed: list[tuple[list[str], set[str]]] = []
    for kind in CHANGES:
        if kind in ONLY_ON:
            continue
        if generated_on not in ENUMS_PORTABLE_FROM and uses_enums(kind):
            continue
        labels = touched(CHANGES[kind])
        for kinds, taken in packed:
            if (
                not labels & taken
                and not any(
                    a.startswith("table:") and any(b.startswith(a[6:] + ".") for b in taken)
                    for a in labels
                )
                and not any(
                    b.startswith("table:") and any(a.startswith(b[6:] + ".") for a in labels)
                    for b in taken
                )
            ):
                kinds.append(kind)
                taken.update(labels)
                break
        else:
            packed.append(([kind], set(labels)))
    return [kinds for kinds, _ in packed]


def comparable(schema: dict) -> dict:
    """A snapshot with column defaults spelled alike: a downgrade written on another database
    restores ``0`` where the database had ``'0'`` (the same default)."""

    def default(text):
        if text is None:
            return None
        text = re.sub(r"::[a-z ]+$", "", text.strip().strip("()"), flags=re.IGNORECASE)
        return text.strip("'").lower()

    result = {}
    for table, parts in schema.items():
        if isinstance(parts, dict):
            parts = dict(
                parts,
                columns=sorted(
                    (c[0], c[1], c[2], default(c[3])) + tuple(c[4:]) for c in parts["columns"]
                ),
            )
        result[table] = parts
    return result


def database(request, project, kind: str) -> tuple[dict[str, str], str]:
    if kind == "sqlite":
        return {}, f"sqlite:///{project.sqlite_file}"
    url = request.getfixturevalue("pg_url" if kind == "postgresql" else "mariadb_url")
    return {"DATABASE_URL": url}, url


def pairs() -> list:
    return [
        pytest.param(x, y, id=f"{x}-to-{y}", marks=MARKS[x] + MARKS[y])
        for x in DATABASE_KINDS
        for y in DATABASE_KINDS
        if x != y
    ]


@pytest.fixture
def other_project(tmp_path):
    """A second copy of the example project, for the database the files are applied on."""
    from conftest import copy_example_project

    return copy_example_project(tmp_path / "deploy")


@pytest.mark.parametrize(("generated_on", "applied_on"), pairs())
def test_migrations_generated_on_one_database_apply_on_another(
    request, project, other_project, generated_on, applied_on
):
    source_env, _ = database(request, project, generated_on)
    if generated_on == applied_on == "sqlite":
        raise AssertionError("pairs are of two databases")
    target_env, target_url = database(request, other_project, applied_on)

    # Generated on X: the start migration, then one migration per group against it.
    write_models(project, START)
    before = project.migration_files()
    project.manage("makemigrations", "--noinput", env=source_env)
    (start_name,) = new_files(project, before)
    project.manage("migrate", env=source_env)
    generated = []
    for kinds in groups(generated_on):
        write_models(project, merged(kinds))
        files = project.migration_files()
        made = project.manage("makemigrations", "--noinput", env=source_env)
        written = new_files(project, files)
        assert len(written) == 1, f"{kinds} on {generated_on}: {outcome(made)}"
        generated.append((kinds, written[0], (project.versions / written[0]).read_text()))
        (project.versions / written[0]).unlink()

    # Applied on Y: the same files, each change group up and down again.
    (other_project.versions / start_name).write_text((project.versions / start_name).read_text())
    write_models(other_project, START)
    other_project.manage("migrate", env=target_env)
    clean = other_project.run("makemigrations", "--check", env=target_env)
    assert clean.returncode == 0, f"the start migration from {generated_on}: {outcome(clean)}"
    start_schema = comparable(snapshot(target_url))

    failures = []
    passed = 0
    for kinds, name, text in generated:
        (other_project.versions / name).write_text(text)
        write_models(other_project, merged(kinds))
        body = migration_body(other_project, name)
        applied = other_project.run("migrate", env=target_env)
        check = (
            other_project.run("makemigrations", "--check", env=target_env)
            if applied.returncode == 0
            else None
        )
        unapplied = (
            other_project.run("migrate", "-1", env=target_env) if applied.returncode == 0 else None
        )
        after = comparable(snapshot(target_url))
        (other_project.versions / name).unlink()
        if applied.returncode != 0:
            failures.append(f"{kinds}: migrate {outcome(applied)}\n{body}")
        elif check.returncode != 0:
            failures.append(f"{kinds}: --check after migrate {outcome(check)}\n{body}")
        elif unapplied.returncode != 0:
            failures.append(f"{kinds}: migrate -1 {outcome(unapplied)}\n{body}")
        elif after != start_schema:
            failures.append(
                f"{kinds}: migrate -1 left\n{schema_difference(start_schema, after)}\n{body}"
            )
        else:
            passed += len(kinds)
            continue
        break  # not surely back at the start (MariaDB cannot even roll back DDL): stop here
    total = sum(len(kinds) for kinds, _, _ in generated)
    assert not failures, (
        f"generated on {generated_on}, applied on {applied_on}: {passed} of {total} changes pass\n"
        + "\n\n".join(failures)
    )
