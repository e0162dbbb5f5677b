"""Plain Alembic for ``run.py --real-history``: ``python plain_alembic.py upgrade`` runs
``alembic upgrade heads`` with the current folder's alembic.ini in a worker thread (a project
whose env.py starts its own event loop, as Prefect's does, cannot run inside one that is
already running). Exits with Alembic's exit code; a traceback goes to stderr."""

import sys
import threading
import traceback

from alembic.config import main

result = {"code": 0}


def run() -> None:
    try:
        main(argv=[*(sys.argv[1:] or ["upgrade"]), "heads"], prog="alembic")
    except SystemExit as stop:
        code = stop.code
        result["code"] = code if isinstance(code, int) else (0 if code is None else 1)
    except BaseException:
        traceback.print_exc()
        result["code"] = 1


thread = threading.Thread(target=run, name="plain-alembic")
thread.start()
thread.join()
sys.exit(result["code"])
