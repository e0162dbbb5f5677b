"""``migrate --all-databases``: every database of DATABASES brought up to its head at once.

Alembic's ``context`` and ``op`` are module-level proxies that one migration run installs
for the whole process, so two runs cannot share a process. Each alias therefore migrates in
a worker process of its own (``python -m sqlmanage.actions.all_databases``), started in a
session of its own so that a Ctrl-C reaches it exactly once, forwarded as SIGTERM (which
rolls its migration back and releases its lock). A worker writes its outcome as JSON to a
file, so whatever a migration prints cannot garble it. One failing database does not stop
the others.

``--check`` and ``--plan`` read only: they run in this process, the database reads in
threads (no Alembic proxy is involved in reading a version table).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlmanage.redaction import redact

MAX_PARALLEL = 8
POLL_SECONDS = 0.05

OK = "OK"
FAILED = "FAILED"
INTERRUPTED = "INTERRUPTED"
NOT_STARTED = "NOT STARTED"
UNAPPLIED = "UNAPPLIED"


@dataclass
class DatabaseOutcome:
    """What happened to one database: the migrations it applied (or, checking, lacks)."""

    alias: str
    database: str
    result: str
    migrations: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    traceback: str | None = None
    plan: object = None  # the Plan, for --plan

    @property
    def failed(self) -> bool:
        return self.result != OK


@dataclass
class AllDatabases:
    """Every database's outcome, in settings order; ``interrupted`` by Ctrl-C or SIGTERM."""

    outcomes: list[DatabaseOutcome]
    seconds: float
    interrupted: bool = False

    @property
    def failed(self) -> list[DatabaseOutcome]:
        return [outcome for outcome in self.outcomes if outcome.failed]


def shown_database(settings, alias: str) -> str:
    """The alias's URL as it may be shown (password masked), or a note if it does not parse."""
    from sqlmanage.database import display_url, parse_url
    from sqlmanage.errors import SqlmanageError

    try:
        return display_url(parse_url(settings.databases[alias].url))
    except SqlmanageError:
        return "(invalid URL)"


def migrate_all_databases(
    settings,
    *,
    lock_timeout: float | None = None,
    on_done: Callable[[DatabaseOutcome], None] = lambda outcome: None,
    max_parallel: int = MAX_PARALLEL,
) -> AllDatabases:
    """Migrate every alias to its head, each in its own process, up to ``max_parallel`` at once."""
    aliases = list(settings.databases)
    shown = {alias: shown_database(settings, alias) for alias in aliases}
    started = time.perf_counter()
    outcomes: dict[str, DatabaseOutcome] = {}
    interrupted = False
    with tempfile.TemporaryDirectory(prefix="sqlmanage-") as scratch:
        waiting = list(aliases)
        running: dict[str, _Worker] = {}
        try:
            while waiting or running:
                while waiting and len(running) < max_parallel:
                    alias = waiting.pop(0)
                    running[alias] = _Worker.start(
                        settings, alias, lock_timeout, Path(scratch) / str(aliases.index(alias))
                    )
                for alias, worker in list(running.items()):
                    if worker.process.poll() is not None:
                        outcomes[alias] = worker.outcome(shown[alias])
                        del running[alias]
                        on_done(outcomes[alias])
                time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:
            interrupted = True
            for worker in running.values():
                worker.process.terminate()
            for alias, worker in running.items():
                worker.process.wait()
                outcomes[alias] = worker.outcome(shown[alias])
            for alias in waiting:
                outcomes[alias] = DatabaseOutcome(alias, shown[alias], NOT_STARTED)
    return AllDatabases(
        [outcomes[alias] for alias in aliases], time.perf_counter() - started, interrupted
    )


@dataclass
class _Worker:
    alias: str
    process: subprocess.Popen
    result_file: Path
    log_file: Path
    started: float

    @classmethod
    def start(cls, settings, alias: str, lock_timeout: float | None, files: Path) -> _Worker:
        """Start the worker; ``files`` is where its result (.json) and output (.log) go."""
        result_file, log_file = files.with_suffix(".json"), files.with_suffix(".log")
        command = [
            sys.executable,
            "-m",
            __name__,
            settings.module_name,
            alias,
            str(result_file),
            "" if lock_timeout is None else str(lock_timeout),
        ]
        with open(log_file, "wb") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_worker_environment(settings),
                start_new_session=True,
            )
        return cls(alias, process, result_file, log_file, time.perf_counter())

    def outcome(self, shown: str) -> DatabaseOutcome:
        """The worker's own report, or what its log says if it died before writing one."""
        seconds = time.perf_counter() - self.started
        try:
            data = json.loads(self.result_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log = self.log_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()
            reason = (
                log[-1]
                if log
                else f"the worker process exited with status {self.process.returncode}"
            )
            return DatabaseOutcome(self.alias, shown, FAILED, error=redact(reason), seconds=seconds)
        data.pop("plan", None)
        return DatabaseOutcome(**{**data, "database": data.get("database") or shown})


def _worker_environment(settings) -> dict[str, str]:
    """The parent's environment, with the folders it found the project in on PYTHONPATH."""
    from sqlmanage.settings import search_dirs

    folders = [str(folder) for folder in search_dirs()]
    module = sys.modules.get(settings.module_name)
    module_file = getattr(module, "__file__", None)
    if module_file:
        root = Path(module_file).resolve().parent
        for _ in range(settings.module_name.count(".")):
            root = root.parent
        folders.insert(0, str(root))
    env = dict(os.environ)
    if env.get("PYTHONPATH"):
        folders.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(folders)
    return env


def _work(settings_module: str, alias: str, lock_timeout: float | None) -> DatabaseOutcome:
    """In the worker process: migrate one alias to its head and say how it went."""
    from sqlmanage.database import display_url, first_line
    from sqlmanage.engine.apply import apply_migrations
    from sqlmanage.errors import Interrupted, SqlmanageError
    from sqlmanage.project import Project

    outcome = DatabaseOutcome(alias, "", FAILED)
    started = time.perf_counter()

    def on_event(event, subject, seconds=None):
        if event == "done":
            outcome.migrations.append(subject.migration.name)
        elif event == "wait":
            outcome.warnings.append(subject)
        elif event == "changed":
            names = ", ".join(migration.name for migration in subject)
            outcome.warnings.append(
                f"applied migrations changed since they ran: {names}. The database ran the "
                "earlier version; put further changes in a new migration."
            )

    try:
        project = Project.load(settings_module, alias)
        outcome.database = display_url(project.url)
        apply_migrations(project, None, on_event=on_event, lock_timeout=lock_timeout)
        outcome.result = OK
    except Interrupted as exc:
        outcome.result, outcome.error = INTERRUPTED, exc.message
    except KeyboardInterrupt:
        outcome.result, outcome.error = INTERRUPTED, "Interrupted."
    except SqlmanageError as exc:
        outcome.error = exc.message
        outcome.traceback = traceback.format_exc()
    except Exception as exc:
        outcome.error = f"{type(exc).__name__}: {first_line(exc)}"
        outcome.traceback = traceback.format_exc()
    outcome.seconds = time.perf_counter() - started
    if outcome.error:
        lines = outcome.error.strip().splitlines()
        outcome.error = redact(lines[0] if lines else outcome.error)
    if outcome.traceback:
        outcome.traceback = redact(outcome.traceback)
    outcome.warnings = [redact(w) for w in outcome.warnings]
    return outcome


def check_all_databases(settings, plans: bool = False) -> AllDatabases:
    """Every alias's unapplied migrations (``--check``), and its plan (``--plan``); read-only."""
    from sqlmanage.engine.plan import plan_migrations
    from sqlmanage.engine.status import read_database_heads
    from sqlmanage.errors import SqlmanageError
    from sqlmanage.project import Project

    started = time.perf_counter()
    outcomes = []
    projects = {}
    for alias in settings.databases:  # files are read here, one alias after the other
        outcome = DatabaseOutcome(alias, shown_database(settings, alias), OK)
        outcomes.append(outcome)
        try:
            project = Project(settings, alias)
            _ = project.url, project.history  # parsed and loaded before the threads start
            projects[alias] = project
        except SqlmanageError as exc:
            outcome.result, outcome.error = FAILED, redact(exc.message)

    def read(outcome: DatabaseOutcome) -> None:
        project = projects.get(outcome.alias)
        if project is None:
            return
        begun = time.perf_counter()
        try:
            plan = plan_migrations(project.history, read_database_heads(project), None)
        except SqlmanageError as exc:
            outcome.result, outcome.error = FAILED, redact(exc.message)
        else:
            outcome.migrations = [step.migration.name for step in plan.steps]
            outcome.result = UNAPPLIED if plan.steps else OK
            outcome.plan = plan if plans else None
        outcome.seconds = time.perf_counter() - begun

    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(outcomes))) as pool:
        list(pool.map(read, outcomes))
    return AllDatabases(outcomes, time.perf_counter() - started)


def _main(argv: list[str]) -> int:
    """The worker's entry point: SETTINGS_MODULE ALIAS RESULT_FILE [LOCK_TIMEOUT]."""
    settings_module, alias, result_file, lock_timeout = (argv + [""])[:4]

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    outcome = _work(settings_module, alias, float(lock_timeout) if lock_timeout else None)
    data = asdict(outcome)
    data.pop("plan")
    from sqlmanage.files import write_atomic

    write_atomic(Path(result_file), json.dumps(data))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
