"""The one error type for user mistakes, and its named cases.

Commands and core functions raise these; ``cli.main`` is the only place that turns them into
stderr text and an exit code. Foreign exceptions are translated where they are understood
(settings, discovery, database, history), never left to reach the user as a traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlmanage.actions.check import Report


class SqlmanageError(Exception):
    """A mistake the user can fix: what is wrong, and a hint on what to do."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


class SettingsError(SqlmanageError):
    """The settings module is missing, cannot be imported or holds a bad value."""


class ModelImportError(SqlmanageError):
    """A model module failed to import during discovery."""


class DatabaseUnavailable(SqlmanageError):
    """The database cannot be reached, or refused the connection."""


class DriverMissing(SqlmanageError):
    """The DBAPI driver that the URL needs is not installed."""


class MigrationFileError(SqlmanageError):
    """A migration file does not parse, or the history it forms is broken."""


class UnknownMigration(SqlmanageError):
    """A target names no migration."""


class UnknownLabel(SqlmanageError):
    """An APP_LABEL names no migration tree."""


class AmbiguousMigration(SqlmanageError):
    """A target prefix matches several migrations."""


class MultipleHeads(SqlmanageError):
    """The history has several heads where one is needed."""


class UnknownDatabaseRevision(SqlmanageError):
    """The database records a revision that no migration file has."""


class InputRequired(SqlmanageError):
    """An answer was needed but prompting is off (Django's exit code 3)."""

    exit_code = 3


class MigrationFailed(SqlmanageError):
    """A migration raised while it ran; ``reason`` is its own error (``Type: message``), for
    callers that report it in words of their own (the pytest plugin's checks)."""

    def __init__(self, message: str, hint: str | None = None, reason: str = ""):
        super().__init__(message, hint)
        self.reason = reason or message


class Interrupted(SqlmanageError):
    """Ctrl-C or SIGTERM during a run (exit 130, as a shell reports SIGINT)."""

    exit_code = 130


class HalfApplied(SqlmanageError):
    """A migration was cut off on a database that cannot roll DDL back."""


class UnknownCommand(SqlmanageError):
    """A command name that names no command: Django's two lines, without 'Error:'."""

    plain = True


class CommandUsageError(SqlmanageError):
    """call_command arguments that click rejects (a usage error, status 2 on the command line)."""

    exit_code = 2


class FileWriteError(SqlmanageError):
    """A file could not be written (permissions, full disk, a file in the way)."""


class RunLockTimeout(SqlmanageError):
    """Another run kept the migration lock longer than --lock-timeout."""


class LockTimeout(SqlmanageError):
    """A migration could not have its table locks within the timeout, in any of its tries."""


class QuitRequested(SqlmanageError):
    """The user chose to quit at one of makemigrations' questions (Django's exit code 3)."""

    exit_code = 3


class ClientFailed(SqlmanageError):
    """dbshell's client failed; the command exits with its status (128 + N when killed by
    signal N)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class SystemCheckError(SqlmanageError):
    """Issues at or above the fail level were found; ``report`` has every result."""

    def __init__(self, report: Report, failing_ids: list[str]):
        super().__init__(f"System check failed: {', '.join(failing_ids)}.")
        self.report = report
