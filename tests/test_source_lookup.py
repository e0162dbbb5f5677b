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


class EditableFinder:
    """What an editable install puts on sys.meta_path: a package found outside sys.path."""

    def __init__(self, name: str, location):
        self.name, self.location = name, location

    def find_spec(self, fullname, path=None, target=None):
        from importlib.util import spec_from_file_location

        if fullname != self.name:
            return None
        init = self.location / "__init__.py"
        return spec_from_file_location(
            fullname, init, submodule_search_locations=[str(self.location)]
        )


def test_a_package_only_an_editable_finder_knows_is_found_without_running_it(tmp_path, monkeypatch):
    package = tmp_path / "src" / "editableframework"
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('the framework was imported')\n")
    (package / "models" / "__init__.py").write_text("")
    monkeypatch.setattr(
        sys, "meta_path", [*sys.meta_path, EditableFinder("editableframework", package)]
    )

    found = _spec_without_import("editableframework.models")
    assert found.submodule_search_locations == [str(package / "models")]
    assert "editableframework" not in sys.modules


def test_a_finder_that_needs_its_parent_imported_gives_no_answer(tmp_path, monkeypatch):
    class NeedsParent:
        def find_spec(self, fullname, path=None, target=None):
            if fullname.startswith("needsparent"):
                raise ImportError("import the parent first")
            return None

    monkeypatch.setattr(sys, "meta_path", [NeedsParent(), *sys.meta_path])
    assert _spec_without_import("needsparent.models") is None
    assert "needsparent" not in sys.modules
