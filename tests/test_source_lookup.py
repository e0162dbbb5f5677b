"""Finding the models' files for the remembered comparison imports no package to do it
(``find_spec`` would import each parent package, seconds for some frameworks)."""

from __future__ import annotations

import sys

from sqlmanage.engine.autodetect.comparison_cache import _spec_without_import


def test_a_nested_module_is_found_without_running_its_packages(tmp_path, monkeypatch):
    package = tmp_path / "heavyframework"
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('the framework was imported')\n")
    (package / "models" / "__init__.py").write_text(
        "raise RuntimeError('the models were imported')\n"
    )
    (package / "models" / "dag.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))

    found = _spec_without_import("heavyframework.models")
    assert found.submodule_search_locations == [str(package / "models")]
    assert _spec_without_import("heavyframework.models.dag").origin == str(
        package / "models" / "dag.py"
    )
    assert "heavyframework" not in sys.modules


def test_a_module_already_imported_answers_from_its_spec():
    assert _spec_without_import("sqlmanage.engine").name == "sqlmanage.engine"
