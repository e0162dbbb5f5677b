"""Start ``python manage.py ...`` for the tests without paying Python's start-up each time.

Most of a command's time in the suite is importing SQLAlchemy, Alembic, click and Rich. A
launch server, started once per test process, imports those third-party packages (never
sqlmanage, the project or its settings, so what a command imports, in what order, and how it
finds its settings stays exactly as in a fresh interpreter) and forks a child for each launch.
The child takes the test's working folder, environment, arguments and standard streams, runs
the script or module as ``python`` would (``__main__``, ``sys.path[0]``, ``sys.argv``, exit
status, atexit, an uncaught exception's traceback), and exits; the server reports its exit
status as a signal number or code, like ``subprocess``.

A launch is a real ``exec`` instead when its subject is the interpreter itself: any other
program or interpreter option (``-c``, ``-B``, ``-X``), an environment whose ``PYTHON*`` or
locale variables differ from the server's (they are read at interpreter start; only
PYTHONDONTWRITEBYTECODE is honoured in the child), a caller that asks for one
(``real_process=True``), or ``SQLMANAGE_TESTS_EXEC=1`` for every launch.

Run as a script, this file is the server: ``python launcher.py SOCKET``.
"""

from __future__ import annotations

import atexit
import json
import locale
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

# Read at interpreter start, so a child forked from the server could not honour a change;
# PYTHONDONTWRITEBYTECODE only sets sys.dont_write_bytecode, which the child sets itself.
START_VARIABLES = ("LANG", "LC_ALL", "LC_CTYPE")
HONOURED = ("PYTHONDONTWRITEBYTECODE",)
THIRD_PARTY = (
    "click",
    "sqlalchemy",
    "sqlalchemy.orm",
    "sqlalchemy.dialects.sqlite",
    "sqlalchemy.dialects.postgresql",
    "sqlalchemy.dialects.mysql",
    "sqlalchemy.ext.asyncio",
    "alembic",
    "alembic.command",
    "alembic.config",
    "alembic.autogenerate",
    "alembic.operations",
    "alembic.runtime.migration",
    "alembic.script",
    "alembic.ddl",
    "mako.template",
    "rich.console",
    "rich.table",
    "rich.text",
    "rich.markup",
    "psycopg2",
    "psycopg2.extensions",
    "pymysql",
)
FORCE_EXEC = "SQLMANAGE_TESTS_EXEC"
LOG = "SQLMANAGE_TESTS_LAUNCH_LOG"  # a file: one line per launch (test, fork/exec, seconds, argv)


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str


# ----------------------------------------------------------------------------------- client


class Launcher:
    """The test process's side: one launch server, started on first use."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.folder: str | None = None
        self.server_env: dict[str, str] = {}
        self.broken = False

    def run(
        self,
        command: list[str],
        cwd,
        env: dict[str, str],
        input: str | None = None,
        timeout: float = 120,
        real_process: bool = False,
    ) -> Completed:
        """``subprocess.run(command, cwd=, env=, input=, capture_output=True, text=True)``."""
        started = time.perf_counter()
        if real_process or os.environ.get(FORCE_EXEC) == "1" or not self._forkable(command, env):
            how = "exec"
            completed = subprocess.run(
                command,
                cwd=cwd,
                env=env,
                input=input,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            completed = Completed(completed.returncode, completed.stdout, completed.stderr)
        else:
            how = "fork"
            completed = self._fork(command, str(cwd), env, input, timeout)
        self._log(how, time.perf_counter() - started, command)
        return completed

    @staticmethod
    def _log(how: str, seconds: float, command: list[str]) -> None:
        if os.environ.get(LOG):
            with open(os.environ[LOG], "a", encoding="utf-8") as log:
                test = os.environ.get("PYTEST_CURRENT_TEST", "-").rpartition(" (")[0]
                shown = " ".join(command[1:])[:120].replace("\n", " ").replace("\t", " ")
                log.write(f"{test}\t{how}\t{seconds:.3f}\t{shown}\n")

    def _forkable(self, command: list[str], env: dict[str, str]) -> bool:
        if len(command) < 2 or command[0] != sys.executable or self.broken:
            return False
        if command[1] == "-m":
            if len(command) < 3:
                return False
        elif command[1].startswith("-"):
            return False
        if not self._server_started():
            return False
        changed = {
            k for k in set(env) | set(self.server_env) if env.get(k) != self.server_env.get(k)
        }
        return not any(
            (k.startswith("PYTHON") and k not in HONOURED) or k in START_VARIABLES for k in changed
        )

    def _server_started(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        self.folder = tempfile.mkdtemp(prefix="sqlmanage-launcher-")
        path = os.path.join(self.folder, "socket")
        self.server_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), path],
            env=self.server_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=None,
            start_new_session=True,
        )
        ready = self.process.stdout.readline()
        if ready.strip() != b"ready":
            self.broken = True
            self.process.kill()
            sys.stderr.write(
                "The launch server did not start: every launch is a fresh interpreter.\n"
            )
            return False
        atexit.register(self.stop)
        return True

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def popen(self, command: list[str], cwd, env: dict[str, str], real_process: bool = False):
        """``subprocess.Popen(command, cwd=, env=, stdout=PIPE, stderr=PIPE)``, binary pipes:
        for tests that run several commands at once and watch their output as it comes."""
        if real_process or os.environ.get(FORCE_EXEC) == "1" or not self._forkable(command, env):
            self._log("exec", 0, command)
            return subprocess.Popen(
                command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        self._log("fork", 0, command)
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        try:
            child = Forked(self, command, str(cwd), env, [0, out_write, err_write])
        finally:
            os.close(out_write)
            os.close(err_write)
        child.stdout, child.stderr = open(out_read, "rb"), open(err_read, "rb")  # noqa: SIM115 (the caller reads and closes them)
        return child

    def on_terminal(
        self, command: list[str], cwd, env: dict[str, str], rows: int, columns: int
    ) -> Completed:
        """``command`` with its three standard streams on a new pseudo-terminal of ``rows`` by
        ``columns``, as a developer's terminal runs a command that asks nothing: what the
        terminal showed (CR LF line ends, stdout and stderr interleaved) and the exit status."""
        import fcntl
        import pty
        import termios

        started = time.perf_counter()
        main, secondary = pty.openpty()
        fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        try:
            if os.environ.get(FORCE_EXEC) == "1" or not self._forkable(command, env):
                how = "exec"
                child: Forked | subprocess.Popen = subprocess.Popen(
                    command,
                    cwd=cwd,
                    env=env,
                    stdin=secondary,
                    stdout=secondary,
                    stderr=secondary,
                    start_new_session=True,
                )
            else:
                how = "fork"
                child = Forked(self, command, str(cwd), env, [secondary] * 3)
        finally:
            os.close(secondary)
        shown = b""
        try:
            while select.select([main], [], [], 60)[0]:
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # EIO: the last holder of the terminal's other end is gone
                    break
                if not chunk:
                    break
                shown += chunk
            else:
                child.kill()
                raise subprocess.TimeoutExpired(command, 60)
        finally:
            os.close(main)
        returncode = child.wait(60)
        self._log(how, time.perf_counter() - started, command)
        return Completed(returncode, shown.decode("utf-8", "replace"), "")

    def _fork(
        self, command: list[str], cwd: str, env: dict[str, str], input: str | None, timeout: float
    ) -> Completed:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            stdin_fd, writer = (0, None) if input is None else _stdin_pipe(input)
            try:
                child = Forked(self, command, cwd, env, [stdin_fd, out.fileno(), err.fileno()])
            finally:
                if input is not None:
                    os.close(stdin_fd)
            if writer is not None:
                writer.join()
            try:
                returncode = child.wait(timeout)
            except subprocess.TimeoutExpired:
                child.kill()
                raise
            return Completed(returncode, _text(out), _text(err))


class Forked:
    """A child of the launch server, with ``subprocess.Popen``'s ways to wait for it and
    signal it: the server sends its pid when it starts and its exit status when it ends."""

    def __init__(
        self, launcher: Launcher, command: list[str], cwd: str, env: dict[str, str], fds: list[int]
    ):
        self.args = command
        self.returncode: int | None = None
        self.stdout = self.stderr = None
        self._reply = b""
        request = json.dumps({"argv": command[1:], "cwd": cwd, "env": env}).encode()
        self._connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._connection.connect(os.path.join(launcher.folder, "socket"))
        socket.send_fds(self._connection, [struct.pack("!I", len(request)) + request], fds)
        self.pid = int(self._line(None))

    def _line(self, timeout: float | None) -> bytes:
        self._connection.settimeout(timeout)
        while b"\n" not in self._reply:
            chunk = self._connection.recv(64)
            if not chunk:
                raise RuntimeError(f"the launch server ended {self.args} without a status")
            self._reply += chunk
        line, _, self._reply = self._reply.partition(b"\n")
        return line

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            try:
                self.returncode = int(self._line(timeout))
            except TimeoutError:
                raise subprocess.TimeoutExpired(self.args, timeout) from None
            self._connection.close()
        return self.returncode

    def poll(self) -> int | None:
        if self.returncode is None and select.select([self._connection], [], [], 0)[0]:
            self.wait()
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout: float | None = None) -> tuple[bytes, bytes]:
        """Read both pipes to their end, then wait: their bytes."""
        import selectors

        read = {self.stdout: b"", self.stderr: b""}
        deadline = None if timeout is None else time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            for stream in read:
                selector.register(stream, selectors.EVENT_READ)
            while selector.get_map():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise subprocess.TimeoutExpired(self.args, timeout)
                for key, _ in selector.select(left):
                    chunk = os.read(key.fileobj.fileno(), 65536)
                    if chunk:
                        read[key.fileobj] += chunk
                    else:
                        selector.unregister(key.fileobj)
        for stream in read:
            stream.close()
        self.wait(None if deadline is None else max(deadline - time.monotonic(), 0.1))
        return read[self.stdout], read[self.stderr]


def _stdin_pipe(text: str):
    """A pipe that carries ``text`` as the child's standard input, as ``subprocess`` gives it."""
    read_end, write_end = os.pipe()
    data = text.encode(locale.getpreferredencoding(False))

    def feed() -> None:
        with open(write_end, "wb") as stream:
            try:
                stream.write(data)
            except BrokenPipeError:
                pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    return read_end, writer


def _text(stream) -> str:
    """Output decoded as ``subprocess.run(text=True)`` decodes it (universal newlines)."""
    stream.seek(0)
    data = stream.read().decode(locale.getpreferredencoding(False))
    return data.replace("\r\n", "\n").replace("\r", "\n")


# ----------------------------------------------------------------------------------- server


def serve(path: str) -> None:
    """Import the third-party packages, then fork a supervisor for each launch."""
    import importlib

    for name in THIRD_PARTY:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    base_path = sys.path[1:]  # without this file's folder, which a real launch never has
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # supervisors are reaped by the kernel
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    import gc

    gc.collect()
    gc.freeze()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    parent = os.getppid()
    listener.settimeout(1)
    while True:
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            if os.getppid() != parent:
                os._exit(0)  # the test process is gone, however it ended
            continue
        connection.settimeout(None)
        if os.fork() == 0:
            listener.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            _supervise(connection, base_path)
        connection.close()


def _supervise(connection: socket.socket, base_path: list[str]) -> None:
    """Receive one launch, fork its child, send back ``pid\\nreturncode\\n``."""
    try:
        data, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
        size = struct.unpack("!I", data[:4])[0]
        while len(data) < size + 4:
            data += connection.recv(1 << 20)
        request = json.loads(data[4 : 4 + size])
        child = os.fork()
        if child == 0:
            connection.close()
            try:
                _child(request, fds, base_path)
            except BaseException:  # the launcher's own failure, not the program's
                import traceback

                os.write(2, f"launch server: {traceback.format_exc()}".encode())
                os._exit(70)
        for fd in fds:
            os.close(fd)
        connection.sendall(f"{child}\n".encode())
        _, status = os.waitpid(child, 0)
        connection.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
    finally:
        os._exit(0)


def _child(request: dict, fds: list[int], base_path: list[str]) -> None:
    """Become ``python ARGV...`` in the test's folder, environment and streams."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    os.closerange(3, 1 << 16)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    sys.dont_write_bytecode = bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))
    argv = request["argv"]
    if argv[0] == "-m":
        sys.path[:] = [os.getcwd(), *base_path]
    else:
        sys.path[:] = [os.path.dirname(os.path.realpath(argv[0])), *base_path]
    import importlib

    importlib.invalidate_caches()
    sys.orig_argv = [sys.executable, *argv]
    _open_streams()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    code = 0
    interrupted = False
    try:
        if argv[0] == "-m":
            import runpy

            sys.argv = [argv[1], *argv[2:]]
            runpy._run_module_as_main(argv[1], alter_argv=True)
        else:
            sys.argv = list(argv)
            _run_script(argv[0])
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except KeyboardInterrupt:
        _print_uncaught()
        interrupted = True
    except BaseException:
        _print_uncaught()
        code = 1
    code = _finish(code)
    if interrupted:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(code)


def _open_streams() -> None:
    """New sys.stdin/stdout/stderr on fds 0-2, made as the interpreter made the server's: the
    same encoding and error handlers (same locale), buffered as it buffers them (-u, a tty)."""
    import io

    made = {}
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        model = getattr(sys, f"__{name}__")
        if mode == "w" and isinstance(model.buffer, io.FileIO):  # python -u, PYTHONUNBUFFERED
            made[name] = io.TextIOWrapper(
                io.FileIO(fd, "wb", closefd=False),
                model.encoding,
                model.errors,
                newline="\n",
                write_through=True,
            )
            continue
        made[name] = open(  # noqa: SIM115 (the child's standard stream for its whole life)
            fd,
            mode,
            encoding=model.encoding,
            errors=model.errors,
            closefd=False,
            newline="\n",
        )
        if name != "stdin":
            made[name].reconfigure(line_buffering=name == "stderr" or os.isatty(fd))
    for name, stream in made.items():
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _run_script(name: str) -> None:
    """``python NAME``: the file runs as ``__main__``, its ``__file__`` absolute."""
    import importlib.machinery
    import types

    path = os.path.abspath(name)
    try:
        with open(path, "rb") as source:
            code = compile(source.read(), path, "exec", dont_inherit=True)
    except OSError as exc:
        print(
            f"{sys.executable}: can't open file {path!r}: [Errno {exc.errno}] {exc.strerror}",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__cached__ = None
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", path)
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main
    exec(code, main.__dict__)


def _print_uncaught() -> None:
    """The traceback as the interpreter prints it: from the program's first frame, not ours."""
    kind, value, trace = sys.exc_info()
    while trace is not None and trace.tb_frame.f_code.co_filename == __file__:
        trace = trace.tb_next
    sys.excepthook(kind, value.with_traceback(trace), trace)


def _exit_code(value) -> int:
    """SystemExit's argument as the interpreter turns it into an exit status."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1


def _finish(code: int) -> int:
    """What the interpreter does on the way out: join threads, atexit, flush the streams."""
    try:
        threading._shutdown()
    except BaseException:
        pass
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        if stream is None or stream.closed:
            continue  # as the interpreter: a stream the program closed is not flushed
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 120
    return code


if __name__ == "__main__":
    serve(sys.argv[1])
