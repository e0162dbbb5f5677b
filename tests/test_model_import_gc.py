"""The cycle collector around the model import: paused while models are built, and their
objects left out of later collections only in a process that ends with its command.

Freezing objects in a library caller's process (tests calling ``call_command``, the pytest
plugin) would keep them, and whatever garbage there was, until that process exits.
"""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from sqlmanage import discovery
from sqlmanage.errors import ModelImportError


@pytest.fixture
def models_package(tmp_path, monkeypatch):
    package = tmp_path / "gc_models"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "good.py").write_text(
        "from sqlalchemy import Column, Integer, MetaData, Table\n"
        "metadata = MetaData()\nthings = Table('things', metadata, Column('id', Integer))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield package
    for name in [n for n in sys.modules if n.startswith("gc_models")]:
        del sys.modules[name]


def test_a_library_caller_keeps_its_collector_as_it_was(models_package):
    frozen = gc.get_freeze_count()
    assert gc.isenabled()
    modules = discovery.import_models(["gc_models"])
    assert [m.__name__ for m in modules] == ["gc_models", "gc_models.good"]
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def test_a_model_that_fails_to_import_leaves_the_collector_on(models_package):
    (models_package / "bad.py").write_text("raise RuntimeError('broken model')\n")
    with pytest.raises(ModelImportError, match="broken model"):
        discovery.import_models(["gc_models"])
    assert gc.isenabled()


def test_a_collector_switched_off_by_the_caller_stays_off(models_package):
    gc.disable()
    try:
        discovery.import_models(["gc_models"])
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_command_line_leaves_the_imported_models_out_of_later_collections(project):
    """main() owns its process: after the models are imported, they are frozen."""
    script = (
        "import gc, sys\n"
        "from sqlmanage import cli\n"
        "assert gc.get_freeze_count() == 0\n"
        "code = cli.main(['makemigrations', '--check'])\n"
        "print(code, gc.isenabled(), gc.get_freeze_count() > 0)\n"
    )
    project.manage("migrate")
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=project.path,
        env=project.environment({"SQLMANAGE_SETTINGS_MODULE": "project.settings"}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "0 True True"


def test_main_called_from_python_leaves_later_imports_unfrozen(models_package):
    from sqlmanage.cli import main

    assert main(["--help"]) == 0
    frozen = gc.get_freeze_count()
    discovery.import_models(["gc_models"])
    assert gc.get_freeze_count() == frozen
