"""The launch server's child is what ``python SCRIPT`` would be: each script below runs both
ways, forked and as a fresh interpreter, and must give the same exit status and output."""

from __future__ import annotations

import os
import re
import signal
import sys

import pytest

from conftest import LAUNCHER

PROBE = """\
import atexit, os, sys, threading, time
print("argv", sys.argv)
print("path0", sys.path[0])
print("file", __file__, __name__)
print("cwd", os.getcwd())
print("env", os.environ.get("PROBE_VALUE"), "DATABASE_URL" in os.environ)
print("bytecode", sys.dont_write_bytecode)
print("stdin", sys.stdin.read().strip() or "-")
print("tty", sys.stdout.isatty(), sys.stdout.encoding, sys.stderr.errors)
print("main", sys.modules["__main__"].__file__ == __file__)
print("heavy", "sqlmanage" in sys.modules, "project" in sys.modules)
atexit.register(lambda: print("atexit ran", flush=True))
threading.Thread(target=lambda: (time.sleep(0.2), print("thread ended"))).start()
print("to stderr", file=sys.stderr)
"""

ENDINGS = {
    "exit code": "raise SystemExit(3)",
    "exit message": 'raise SystemExit("refused")',
    "exception": "raise ValueError('broken')",
    "exit 256": "sys.exit(256)",
    "closed stdout": "sys.stdout.close()",
    "normal": "pass",
}


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "app").mkdir()
    return tmp_path


def both(folder, command: list[str], env: dict, stdin: str | None = None):
    forked = LAUNCHER.run(command, cwd=folder, env=env, input=stdin)
    fresh = LAUNCHER.run(command, cwd=folder, env=env, input=stdin, real_process=True)
    return forked, fresh


def without_addresses(text: str) -> str:
    return re.sub(r" at 0x[0-9a-f]+", " at 0x", text)


def base_env(**extra: str) -> dict:
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTHONDONTWRITEBYTECODE")
    }
    env.update(extra)
    return env


@pytest.mark.parametrize("ending", ENDINGS)
def test_a_forked_script_behaves_as_a_fresh_interpreter(folder, ending):
    (folder / "app" / "probe.py").write_text(PROBE + ENDINGS[ending] + "\n")
    forked, fresh = both(
        folder, [sys.executable, "app/probe.py", "x y"], base_env(PROBE_VALUE="1"), "typed"
    )
    assert LAUNCHER._forkable([sys.executable, "app/probe.py"], base_env())
    assert (forked.returncode, forked.stdout) == (fresh.returncode, fresh.stdout)
    assert without_addresses(forked.stderr) == without_addresses(fresh.stderr)
    assert "atexit ran" in fresh.stdout or ending == "closed stdout"
    assert "heavy False False" in fresh.stdout or ending == "closed stdout"


def test_python_m_runs_the_module_as_main(folder):
    (folder / "app" / "__init__.py").write_text("")
    (folder / "app" / "__main__.py").write_text(PROBE)
    forked, fresh = both(folder, [sys.executable, "-m", "app", "--flag"], base_env())
    assert (forked.returncode, forked.stdout, forked.stderr) == (
        fresh.returncode,
        fresh.stdout,
        fresh.stderr,
    )
    assert f"argv ['{folder / 'app' / '__main__.py'}', '--flag']" in fresh.stdout


def test_pythondontwritebytecode_is_honoured_and_other_start_variables_need_a_fresh_interpreter(
    folder,
):
    (folder / "app" / "probe.py").write_text(PROBE)
    forked, fresh = both(
        folder, [sys.executable, "app/probe.py"], base_env(PYTHONDONTWRITEBYTECODE="1")
    )
    assert "bytecode True" in forked.stdout and forked.stdout == fresh.stdout
    assert not LAUNCHER._forkable(
        [sys.executable, "app/probe.py"], base_env(PYTHONPATH="/elsewhere")
    )
    assert not LAUNCHER._forkable([sys.executable, "-c", "pass"], base_env())
    assert not LAUNCHER._forkable([sys.executable, "-B", "app/probe.py"], base_env())


def test_an_interrupted_script_dies_of_sigint_both_ways(folder):
    (folder / "app" / "probe.py").write_text("raise KeyboardInterrupt\n")
    forked, fresh = both(folder, [sys.executable, "app/probe.py"], base_env())
    assert forked.returncode == fresh.returncode == -signal.SIGINT
    assert forked.stderr.splitlines()[-1] == fresh.stderr.splitlines()[-1] == "KeyboardInterrupt"


def test_a_missing_script_or_module_fails_as_python_does(folder):
    for command in ([sys.executable, "app/missing.py"], [sys.executable, "-m", "missing_module"]):
        forked, fresh = both(folder, command, base_env())
        assert (forked.returncode, forked.stdout, forked.stderr) == (
            fresh.returncode,
            fresh.stdout,
            fresh.stderr,
        )


def test_several_forked_runs_at_once_can_be_watched_and_signalled(folder):
    (folder / "app" / "wait.py").write_text(
        "import time\nprint('ready', flush=True)\ntime.sleep(60)\n"
    )
    runs = [LAUNCHER.popen([sys.executable, "app/wait.py"], folder, base_env()) for _ in range(3)]
    for run in runs:
        seen = b""
        while not seen.endswith(b"\n"):  # unbuffered (python -u), print writes twice
            chunk = os.read(run.stdout.fileno(), 100)
            assert chunk, seen
            seen += chunk
        assert seen == b"ready\n"
        assert run.poll() is None
    for run in runs:
        run.send_signal(signal.SIGTERM)
        assert run.communicate(timeout=30) == (b"", b"")
        assert run.returncode == -signal.SIGTERM
