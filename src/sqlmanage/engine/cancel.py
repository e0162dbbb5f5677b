"""SIGTERM and SIGINT stop the running statement now, not when it ends.

Python runs a signal handler only between bytecodes, and a driver blocked in C on a
statement (a lock wait, a long ALTER) does not return until the server answers: a pod
told to stop would run on until Kubernetes' grace period ends in SIGKILL. So while a run
holds its connection, the signal also wakes a watcher thread (``signal.set_wakeup_fd``),
which asks the server to cancel the statement the way the driver does it from another
thread: libpq's cancel request (PostgreSQL, through PgBouncer too), ``KILL QUERY`` on a
second connection (MySQL/MariaDB), ``interrupt()`` (SQLite). The statement fails at once,
the handler already installed (KeyboardInterrupt) unwinds the run, and the transaction
is rolled back.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_STOP = b"\0"


@contextmanager
def cancel_on_signal(connection) -> Iterator[None]:
    """Cancel ``connection``'s running statement when SIGINT or SIGTERM arrives."""
    cancel = _canceller(connection)
    if cancel is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    try:
        previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    except ValueError:
        os.close(read_end)
        os.close(write_end)
        yield
        return
    watcher = threading.Thread(
        target=_watch, args=(read_end, cancel), daemon=True, name="sqlmanage-cancel"
    )
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous)
        os.write(write_end, _STOP)
        watcher.join(timeout=5)
        os.close(write_end)
        if not watcher.is_alive():
            os.close(read_end)


def _watch(read_end: int, cancel: Callable[[], None]) -> None:
    wanted = {int(s) for s in SIGNALS}
    while True:
        data = os.read(read_end, 64)
        if not data:
            return
        if any(byte in wanted for byte in data):
            try:
                cancel()
            except Exception:  # the run is ending anyway; the handler's interrupt still comes
                pass
        if _STOP in data:
            return


def _canceller(connection) -> Callable[[], None] | None:
    """How to cancel this connection's statement from another thread; None if unknown."""
    if connection.dialect.is_async:
        return None
    dbapi_connection = connection.connection.dbapi_connection
    name = connection.dialect.name
    if name == "postgresql" and hasattr(dbapi_connection, "cancel"):
        return dbapi_connection.cancel
    if name == "sqlite" and hasattr(dbapi_connection, "interrupt"):
        return dbapi_connection.interrupt
    if name in ("mysql", "mariadb") and hasattr(dbapi_connection, "thread_id"):
        thread_id = int(dbapi_connection.thread_id())
        engine = connection.engine

        def kill_query() -> None:
            other = engine.raw_connection()
            try:
                cursor = other.cursor()
                cursor.execute(f"KILL QUERY {thread_id}")
            finally:
                other.close()

        return kill_query
    return None
