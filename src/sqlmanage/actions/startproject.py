"""Write a new project's skeleton, as ``django-admin startproject`` does.

A template is a folder under ``templates/project/``: ``default`` holds every file, and another
template (``async``) holds only the files it changes. Files end in ``-tpl`` so that they are
never byte-compiled as Python, and ``{{ project_name }}`` (in contents) and ``project_name``
(in paths) become the project's name. The migrations folder is copied from the same
templates that makemigrations uses, so there is one env.py and one script.py.mako.

Nothing is written until every file has been checked: a name that cannot be a package, a
missing destination or a file that already exists stops the command with nothing changed.
"""

from __future__ import annotations

import importlib.util
import keyword
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path, PurePosixPath

from sqlmanage.actions.scaffold import MIGRATIONS_TEMPLATES
from sqlmanage.errors import FileWriteError, SqlmanageError
from sqlmanage.files import write_atomic

TEMPLATES = ("default", "async")
BASE_TEMPLATE = "default"
NAME_PLACEHOLDER = "{{ project_name }}"
NAME_IN_PATHS = "project_name"
TEMPLATE_SUFFIX = "-tpl"


@dataclass
class CreatedProject:
    """What startproject wrote: the folder of manage.py and each file, relative to it."""

    name: str
    template: str
    top_dir: Path
    files: list[PurePosixPath]


def validate_project_name(name: str) -> None:
    """Refuse names that cannot be imported as the project's package, in Django's words."""
    if not name.isidentifier() or keyword.iskeyword(name):
        raise SqlmanageError(
            f"'{name}' is not a valid project name. Please make sure the name is a valid "
            "identifier.",
            hint="Use letters, digits and underscores, not starting with a digit (e.g. shop).",
        )
    if _importable(name):
        raise SqlmanageError(
            f"'{name}' conflicts with the name of an existing Python module and cannot be used "
            "as a project name. Please try another name.",
            hint=f"The project's package would shadow the module '{name}' (or be shadowed by it).",
        )


def _importable(name: str) -> bool:
    """True for a real module or package; a bare folder (a namespace package) does not count."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin not in (None, "namespace")


def project_files(name: str, template: str) -> dict[PurePosixPath, str]:
    """Every file of the skeleton, relative to the project's top folder, with its contents."""
    if template not in TEMPLATES:
        raise SqlmanageError(
            f"Unknown project template '{template}'.",
            hint=f"Choose one of: {', '.join(TEMPLATES)}.",
        )
    root = files("sqlmanage") / "templates" / "project"
    rendered: dict[PurePosixPath, str] = {}
    for chosen in dict.fromkeys((BASE_TEMPLATE, template)):
        for relative, text in _walk(root / chosen, PurePosixPath()):
            path = PurePosixPath(
                *(name if part == NAME_IN_PATHS else part for part in relative.parts)
            )
            rendered[path] = text.replace(NAME_PLACEHOLDER, name)
    migrations = files("sqlmanage") / "templates" / "migrations"
    for file_name in MIGRATIONS_TEMPLATES:
        rendered[PurePosixPath(name, "migrations", file_name)] = (migrations / file_name).read_text(
            encoding="utf-8"
        )
    return rendered


def _walk(folder, relative: PurePosixPath):
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            if entry.name != "__pycache__":
                yield from _walk(entry, relative / entry.name)
        elif entry.name.endswith(TEMPLATE_SUFFIX):
            yield relative / entry.name[: -len(TEMPLATE_SUFFIX)], entry.read_text(encoding="utf-8")


def start_project(name: str, directory: str | None, template: str, cwd: Path) -> CreatedProject:
    """Check everything, then write the skeleton into ``directory`` (default: ``cwd/name``)."""
    validate_project_name(name)
    contents = project_files(name, template)
    if directory is None:
        top_dir = cwd / name
        if top_dir.exists():
            raise SqlmanageError(
                f"'{top_dir}' already exists",
                hint=f"To write the project into an existing folder, name it: "
                f"sqlmanage startproject {name} DIRECTORY",
            )
    else:
        top_dir = (cwd / Path(directory).expanduser()).resolve()
        if not top_dir.is_dir():
            what = (
                "is not a directory"
                if top_dir.exists()
                else "does not exist, please create it first"
            )
            raise SqlmanageError(f"Destination directory '{top_dir}' {what}.")
    versions = PurePosixPath(name, "migrations", "versions")
    in_the_way = dict.fromkeys(
        obstacle
        for path in [*contents, versions]
        if (obstacle := _obstacle(top_dir, path, is_folder=path == versions)) is not None
    )
    if in_the_way:
        listed = "".join(f"\n  {path}" for path in in_the_way)
        raise SqlmanageError(
            f"Not overwriting existing files; nothing was written:{listed}",
            hint="Move them away, or start the project in another directory.",
        )
    try:
        for path, text in contents.items():
            write_atomic(top_dir / path, text)
        (top_dir / versions).mkdir(parents=True, exist_ok=True)
        (top_dir / "manage.py").chmod(0o755)
    except FileWriteError as exc:
        raise SqlmanageError(
            f"Cannot write the project into {top_dir}: {exc.message}",
            hint="Check the folder's permissions and free space.",
        ) from exc
    except OSError as exc:
        raise SqlmanageError(
            f"Cannot write the project into {top_dir}: {exc.strerror or exc} ({exc.filename}).",
            hint="Check the folder's permissions and free space.",
        ) from exc
    return CreatedProject(name, template, top_dir, [*contents, versions])


def _obstacle(top_dir: Path, path: PurePosixPath, is_folder: bool) -> Path | None:
    """The existing file that writing ``path`` would overwrite or that sits where a folder goes."""
    target = top_dir / path
    for parent in list(reversed(target.parents))[len(top_dir.parents) + 1 :]:
        if parent.exists() and not parent.is_dir():
            return parent
    if is_folder:
        return target if target.exists() and not target.is_dir() else None
    return target if target.exists() or target.is_symlink() else None
