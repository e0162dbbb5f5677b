"""``check``: everything that can be wrong with a project, each check reported on its own.

Django's system check framework, for migrations. Every check has the id its problems carry
(``sqlmanage.E005``) and returns what it found, or Issues with a level, a message and a hint.
A check whose prerequisite failed (the database is unreachable, so unapplied migrations
cannot be counted) is skipped, never run into a second error; an unexpected exception in one
check becomes that check's issue, so the others still run. Nothing here prints.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmanage.errors import SqlmanageError
from sqlmanage.redaction import redact

DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50
LEVELS = {"DEBUG": DEBUG, "INFO": INFO, "WARNING": WARNING, "ERROR": ERROR, "CRITICAL": CRITICAL}
TAGS = ("settings", "models", "migrations", "database")
PASSED, WARNED, FAILED, SKIPPED = "ok", "warning", "error", "skipped"
PASSWORD_IN_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"]*:([^\s@/'\"{}]+)@")
PASSWORD_SOURCES = {  # environment variables and files a driver reads a password from
    "postgresql": (("PGPASSWORD", "PGPASSFILE"), "~/.pgpass"),
    "mysql": (("MYSQL_PWD",), "~/.my.cnf"),
    "mariadb": (("MYSQL_PWD",), "~/.my.cnf"),
}


def level_name(level: int) -> str:
    """Django's name for a level: the highest named level at or below it."""
    for name, value in sorted(LEVELS.items(), key=lambda item: item[1], reverse=True):
        if level >= value:
            return name
    return "DEBUG"


@dataclass(frozen=True)
class Issue:
    """One problem, as Django's CheckMessage: what, where (``obj``), and what to do."""

    id: str
    level: int
    message: str
    hint: str | None = None
    obj: str | None = None

    @property
    def level_name(self) -> str:
        return level_name(self.level)

    def __str__(self) -> str:
        hint = f"\n\tHINT: {self.hint}" if self.hint else ""
        return f"{self.obj or '?'}: ({self.id}) {self.message}{hint}"


@dataclass
class CheckResult:
    """One check run (or skipped) for one database."""

    id: str
    title: str
    tags: tuple[str, ...]
    status: str
    issues: list[Issue] = field(default_factory=list)
    detail: str = ""  # what it found when it passed, or why it was not run
    database: str | None = None
    skipped_because: tuple[str, ...] = ()
    traceback: str | None = None  # of an exception caught in the check, for --traceback


@dataclass
class Report:
    results: list[CheckResult]
    silenced_ids: frozenset[str] = frozenset()

    @property
    def issues(self) -> list[Issue]:
        """The issues that are not silenced, in check order."""
        return [i for r in self.results for i in r.issues if i.id not in self.silenced_ids]

    @property
    def silenced(self) -> list[Issue]:
        return [i for r in self.results for i in r.issues if i.id in self.silenced_ids]

    def serious(self, fail_level: int = ERROR) -> list[Issue]:
        return [i for i in self.issues if i.level >= fail_level]


@dataclass(frozen=True)
class Check:
    """A check: ``run`` returns what it found (text) or Issues, or raises a SqlmanageError."""

    key: str
    id: str
    title: str
    tags: tuple[str, ...]
    run: Callable[[_Context], object]
    requires: tuple[str, ...] = ()
    deploy: bool = False
    per_database: bool = True


class _Context:
    """What the checks of one database share: the settings, the project, the status read once."""

    def __init__(self, settings_module: str | None, settings=None, alias: str | None = None):
        self.settings_module = settings_module
        self.settings = settings
        self.alias = alias
        self.status: Any = None
        self._project: Any = None

    @property
    def project(self):
        if self._project is None:
            from sqlmanage.project import Project

            self._project = Project(self.settings, self.alias)
        return self._project

    @property
    def label(self) -> str:
        return self.project.label

    def command(self, text: str) -> str:
        """A manage.py command line for this database: --database for any but the default."""
        from sqlmanage.settings import DEFAULT_ALIAS

        return text if self.alias in (None, DEFAULT_ALIAS) else f"{text} --database {self.alias}"


def _settings_check(ctx: _Context):
    from sqlmanage.settings import load_settings

    ctx.settings = load_settings(ctx.settings_module)
    return ctx.settings.module_name


def _models_check(ctx: _Context):
    metadata = ctx.project.metadata
    tables = sum(len(m.tables) for m in metadata)
    return f"{tables} table{'s' if tables != 1 else ''} in {', '.join(ctx.project.database.models)}"


def _migration_files_check(ctx: _Context):
    from sqlmanage.engine.plan import require_recordable_revisions

    history = ctx.project.history
    history.import_modules(history.migrations)
    require_recordable_revisions(history)
    count = len(history.migrations)
    return f"{count} migration{'s' if count != 1 else ''} in {ctx.project.migrations_dir}"


def _single_head_check(ctx: _Context):
    history = ctx.project.history
    history.require_single_head()
    if len(history.trees) > 1:
        return "heads: " + ", ".join(
            f"{history.by_id[history.tree_heads(t)[0]].name} ({t})" for t in history.trees
        )
    return (
        f"head is {history.by_id[history.heads[0]].name}" if history.heads else "no migrations yet"
    )


def _database_check(ctx: _Context):
    from sqlmanage.database import display_url, is_empty_sqlite
    from sqlmanage.engine.status import read_database_state

    project = ctx.project
    read_database_state(project)
    shown = display_url(project.url)
    return f"{shown} (not created yet)" if is_empty_sqlite(project.url) else shown


def _status(ctx: _Context):
    if ctx.status is None:
        from sqlmanage.engine.status import migration_status

        ctx.status = migration_status(ctx.project)
    return ctx.status


def _known_revisions_check(ctx: _Context):
    status = _status(ctx)
    if not status.database_heads:
        return "nothing applied yet"
    issues = [
        Issue(
            "sqlmanage.E006",
            ERROR,
            f"The database records revision {revision}, which has no migration file.",
            "Restore the file (this code may be older than the database), and check that the "
            "database and VERSION_TABLE are this project's, not another project's.",
            ctx.label,
        )
        for revision in status.missing_files
    ]
    if issues:
        return issues
    by_id = ctx.project.history.by_id
    return "at " + ", ".join(by_id[r].name if r in by_id else r for r in status.database_heads)


def _unapplied_check(ctx: _Context):
    status = _status(ctx)
    half = [
        Issue(
            "sqlmanage.E007",
            ERROR,
            f"{state.migration.name} was cut off while it ran, on a database that cannot roll DDL "
            "back: part of it may be applied.",
            "Compare the schema with the migration, finish or undo it by hand, then record the "
            f"real state with '{ctx.command('python manage.py migrate --fake')} <migration>'.",
            ctx.label,
        )
        for state in status.half_applied
    ]
    pending = [s.migration.name for s in status.migrations if not s.applied]
    if half:
        return half
    if not pending:
        count = len(status.migrations)
        return f"all {count} applied" if count else "no migrations yet"
    shown = ", ".join(pending[:5]) + (f" and {len(pending) - 5} more" if len(pending) > 5 else "")
    return [
        Issue(
            "sqlmanage.E007",
            ERROR,
            f"{len(pending)} unapplied migration{'s' if len(pending) != 1 else ''}: {shown}.",
            f"Run '{ctx.command('python manage.py migrate')}' to apply {'it' if len(pending) == 1 else 'them'}.",
            ctx.label,
        )
    ]


def _edited_check(ctx: _Context):
    status = _status(ctx)
    issues = [
        Issue(
            "sqlmanage.E008",
            ERROR,
            f"{state.migration.name} was changed after it was applied; the database ran the "
            "earlier version.",
            "Restore the file, or put the change in a new migration.",
            ctx.label,
        )
        for state in status.changed
    ]
    if issues:
        return issues
    verified = sum(1 for s in status.migrations if s.applied and s.verified)
    unverified = sum(1 for s in status.migrations if s.applied and not s.verified)
    if not verified and not unverified:
        return "nothing applied yet"
    detail = f"{verified} applied file{'s' if verified != 1 else ''} unchanged"
    if unverified:
        detail += f"; {unverified} applied without sqlmanage, not verifiable yet"
    return detail


def _blocking_locks_check(ctx: _Context):
    from sqlmanage.actions.blocking_locks import blocking_operations

    if ctx.project.url.get_backend_name() != "postgresql":
        return "not PostgreSQL"
    pending = [s.migration for s in _status(ctx).migrations if not s.applied]
    found = blocking_operations(ctx.project, pending)
    if not found:
        return (
            f"{len(pending)} unapplied, none takes a blocking lock"
            if pending
            else "nothing unapplied"
        )
    return [
        Issue(
            "sqlmanage.E010",
            ERROR,
            f"{b.migration} ({b.path.name}) on {b.table}: {b.what}.",
            "Write the safe form (makemigrations does, on PostgreSQL), or accept the lock with the "
            "line 'sqlmanage_safety_assured = True' in the migration file.",
            ctx.label,
        )
        for b in found
    ]


def _model_changes_check(ctx: _Context):
    from sqlmanage.engine.autodetect.detect import detect_changes
    from sqlmanage.engine.autodetect.operations import describe_all

    script, _ = detect_changes(ctx.project)
    if script.upgrade_ops.is_empty():
        return "no changes"
    changes = [c.text for c in describe_all(script.upgrade_ops.ops)]
    shown = "; ".join(changes[:5]) + (f"; and {len(changes) - 5} more" if len(changes) > 5 else "")
    return [
        Issue(
            "sqlmanage.E009",
            ERROR,
            f"Your models in '{ctx.label}' have changes that are not yet reflected in a migration: "
            f"{shown}.",
            f"Run '{ctx.command('python manage.py makemigrations')}', then "
            f"'{ctx.command('python manage.py migrate')}'.",
            ctx.label,
        )
    ]


def _embedded_sqlite_check(ctx: _Context):
    from sqlmanage.database import sqlite_file

    url = _parsed_url(ctx)
    path = sqlite_file(url) if url is not None else None
    default = ctx.settings.base_dir / "db.sqlite3"
    if path is not None and _same_file(path, default):
        return [
            Issue(
                "sqlmanage.W001",
                WARNING,
                f"The database is the embedded SQLite default ({path}).",
                "Point DATABASE_URL (an environment variable) at the production database.",
                ctx.label,
            )
        ]
    return "not the embedded default"


def _password_check(ctx: _Context):
    url = _parsed_url(ctx)
    if url is None or url.get_backend_name() == "sqlite" or not url.host:
        return "no network connection"
    if url.password:
        return "has a password"
    variables, password_file = PASSWORD_SOURCES.get(url.get_backend_name(), ((), None))
    if any(os.environ.get(v) for v in variables) or (
        password_file and Path(password_file).expanduser().exists()
    ):
        return "password from the environment"
    return [
        Issue(
            "sqlmanage.W002",
            WARNING,
            f"The database URL has no password (user '{url.username or ''}' at {url.host}).",
            "Give the database user a password (or a client certificate) and put it in DATABASE_URL; "
            "trust authentication must not reach production.",
            ctx.label,
        )
    ]


def _password_in_settings_check(ctx: _Context):
    module = sys.modules.get(ctx.settings.module_name)
    path = Path(getattr(module, "__file__", "") or "")
    try:
        source = path.read_text(encoding="utf-8")
    except OSError:
        return "settings file not readable"
    if PASSWORD_IN_URL.search(source):
        return [
            Issue(
                "sqlmanage.W003",
                WARNING,
                f"A database password is written in {path.name}, so it ends up in version control.",
                "Read it from the environment instead: the DATABASE_URL environment variable "
                "overrides the setting (or use os.environ in the settings).",
                ctx.settings.module_name,
            )
        ]
    return "no password in the file"


def _parsed_url(ctx: _Context):
    try:
        return ctx.project.url
    except SqlmanageError:
        return None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


CHECKS = (
    Check(
        "settings",
        "sqlmanage.E001",
        "The settings module imports",
        ("settings",),
        _settings_check,
        per_database=False,
    ),
    Check(
        "models",
        "sqlmanage.E002",
        "Every model module imports",
        ("models",),
        _models_check,
        ("settings",),
    ),
    Check(
        "migration_files",
        "sqlmanage.E003",
        "Every migration file loads",
        ("migrations",),
        _migration_files_check,
        ("settings",),
    ),
    Check(
        "single_head",
        "sqlmanage.E004",
        "The history has a single head",
        ("migrations",),
        _single_head_check,
        ("migration_files",),
    ),
    Check(
        "database",
        "sqlmanage.E005",
        "The database is reachable",
        ("database",),
        _database_check,
        ("settings",),
    ),
    Check(
        "known_revisions",
        "sqlmanage.E006",
        "The database records only known migrations",
        ("database", "migrations"),
        _known_revisions_check,
        ("migration_files", "database"),
    ),
    Check(
        "unapplied",
        "sqlmanage.E007",
        "Every migration is applied",
        ("database", "migrations"),
        _unapplied_check,
        ("known_revisions",),
    ),
    Check(
        "edited",
        "sqlmanage.E008",
        "No applied migration was edited since",
        ("database", "migrations"),
        _edited_check,
        ("migration_files", "database"),
    ),
    Check(
        "model_changes",
        "sqlmanage.E009",
        "The models match the migrations",
        ("models", "migrations"),
        _model_changes_check,
        ("models", "single_head", "database"),
    ),
    Check(
        "blocking_locks",
        "sqlmanage.E010",
        "Unapplied migrations take no blocking lock on an existing table",
        ("database", "migrations"),
        _blocking_locks_check,
        ("migration_files", "known_revisions"),
    ),
    Check(
        "embedded_sqlite",
        "sqlmanage.W001",
        "The database is not the embedded SQLite default",
        ("database",),
        _embedded_sqlite_check,
        ("settings",),
        deploy=True,
    ),
    Check(
        "password",
        "sqlmanage.W002",
        "The database connection has a password",
        ("database",),
        _password_check,
        ("settings",),
        deploy=True,
    ),
    Check(
        "password_in_settings",
        "sqlmanage.W003",
        "No database password in the settings file",
        ("settings",),
        _password_in_settings_check,
        ("settings",),
        deploy=True,
        per_database=False,
    ),
)
BY_KEY = {check.key: check for check in CHECKS}


def available_tags(deploy: bool = False) -> list[str]:
    return sorted({tag for check in CHECKS if deploy or not check.deploy for tag in check.tags})


def run_checks(
    settings_module: str | None = None,
    database: str | None = None,
    tags: tuple[str, ...] | list[str] = (),
    deploy: bool = False,
) -> Report:
    """Run every check (those with one of ``tags``, and what they need) for one or every database.

    ``database`` None means every database in DATABASES. A ``database`` alias that the
    settings do not have is a SettingsError, as for any command.
    """
    chosen = _selected(tags, deploy)
    context = _Context(settings_module)
    results: list[CheckResult] = []
    outcomes: dict[tuple[str | None, str], CheckResult] = {}

    def run(checks, ctx, alias):
        results.extend(_run(check, ctx, outcomes, alias) for check in checks if check.key in chosen)

    run([c for c in CHECKS if not c.per_database and not c.deploy], context, None)
    settings_result = outcomes.get((None, "settings"))
    if settings_result is not None and settings_result.status == PASSED:
        aliases = (
            [context.settings.database(database).alias]
            if database
            else list(context.settings.databases)
        )
    else:
        aliases = [database]
    for alias in aliases:
        run(
            [c for c in CHECKS if c.per_database],
            _Context(settings_module, context.settings, alias),
            alias,
        )
    run([c for c in CHECKS if not c.per_database and c.deploy], context, None)
    return Report(results, frozenset(_silenced_ids(context.settings)))


def _selected(tags, deploy: bool) -> set[str]:
    """The checks to run: those with a wanted tag (all without tags), plus their prerequisites.

    The database is the exception: it is reached only when its tag is wanted, so that
    ``--tag migrations`` runs where there is no database (the checks that need one are
    reported as skipped).
    """
    wanted = {
        check.key
        for check in CHECKS
        if (deploy or not check.deploy) and (not tags or set(tags) & set(check.tags))
    }
    pending = list(wanted)
    while pending:
        for requirement in BY_KEY[pending.pop()].requires:
            if requirement not in wanted and requirement != "database":
                wanted.add(requirement)
                pending.append(requirement)
    return wanted


def _run(check: Check, ctx: _Context, outcomes: dict, alias: str | None) -> CheckResult:
    result = CheckResult(check.id, check.title, check.tags, PASSED, database=alias)
    blocked, not_run, inherited = [], [], None
    for requirement in check.requires:
        prior = outcomes.get((alias, requirement)) or outcomes.get((None, requirement))
        if prior is None:
            not_run.append(BY_KEY[requirement])
        elif prior.status == SKIPPED:
            inherited = inherited or prior
        elif prior.status not in (PASSED, WARNED):
            blocked.append(prior.id)
    if blocked or not_run or inherited:
        result.status = SKIPPED
        if blocked:
            result.skipped_because = tuple(blocked)
            result.detail = f"not checked, because {', '.join(blocked)} did not pass"
        elif inherited:  # name the root cause, not the skipped check in between
            result.skipped_because, result.detail = inherited.skipped_because, inherited.detail
        else:
            result.skipped_because = tuple(c.id for c in not_run)
            needed = ", ".join(f"{c.id} (--tag {c.tags[0]})" for c in not_run)
            result.detail = f"not checked: it needs {needed}"
    else:
        try:
            found = check.run(ctx)
        except SqlmanageError as exc:
            found = [Issue(check.id, ERROR, exc.message, exc.hint, _obj(ctx))]
            result.traceback = traceback.format_exc()
        except Exception as exc:
            found = [
                Issue(
                    check.id,
                    ERROR,
                    redact(f"The check failed unexpectedly: {type(exc).__name__}: {exc}"),
                    "This may be a bug in sqlmanage; run with --traceback to see where it happened.",
                    _obj(ctx),
                )
            ]
            result.traceback = redact(traceback.format_exc())
        if isinstance(found, list):
            result.issues = found
            if any(issue.level >= ERROR for issue in found):
                result.status = FAILED
            elif found:
                result.status = WARNED
        else:
            result.detail = str(found or "")
    outcomes[(alias, check.key)] = result
    return result


def _obj(ctx: _Context) -> str | None:
    """Where an issue is: the database's label once the settings are known, else the module."""
    if ctx.settings is None:
        from sqlmanage.settings import find_settings_module

        try:
            return find_settings_module(ctx.settings_module)
        except SqlmanageError:
            return ctx.settings_module
    try:
        return ctx.label
    except SqlmanageError:
        return ctx.settings.module_name


def _silenced_ids(settings) -> set[str]:
    """Django's SILENCED_SYSTEM_CHECKS, read from the settings module when it imported."""
    if settings is None:
        return set()
    module = sys.modules.get(settings.module_name)
    value = getattr(module, "SILENCED_SYSTEM_CHECKS", ())
    if isinstance(value, str):
        return {value}
    return (
        {v for v in value if isinstance(v, str)} if isinstance(value, (list, tuple, set)) else set()
    )
