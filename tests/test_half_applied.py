"""MariaDB's half-applied mark is visible wherever the state is shown, not only to migrate."""

from __future__ import annotations

import json

import pytest

from test_interruptions import HALF  # the same cut-off migration


@pytest.mark.mariadb
def test_the_half_applied_mark_shows_in_showmigrations_json_and_check(project, mariadb_url):
    env = {"DATABASE_URL": mariadb_url}
    project.manage("migrate", env=env)
    (project.versions / "0004_half.py").write_text(HALF)
    assert project.run("migrate", "--noinput", env=env).returncode == 1

    plain = project.manage("showmigrations", "--format", "plain", env=env)
    assert " [ ] 0004_half (cut off while it ran: may be half-applied)" in plain.lines
    data = json.loads(project.manage("showmigrations", "--format", "json", env=env).stdout)
    flags = {m["name"]: m["half_applied"] for m in data["migrations"]}
    assert flags == {
        "0001_initial": False,
        "0002_add_products_discount_rate": False,
        "0003_fill_discount_rate": False,
        "0004_half": True,
    }
    check = project.run("check", env=env)
    assert check.returncode == 1
    assert "0004_half was cut off while it ran" in check.stdout
    assert "migrate --fake" in check.stdout

    project.manage("migrate", "--fake", "0003", env=env)  # the user records the real state
    after = project.manage("showmigrations", "--format", "plain", env=env)
    assert " [ ] 0004_half" in after.lines
