#!/usr/bin/env python
"""The example project's command-line utility for migrations, like Django's manage.py."""

import os
import sys


def main():
    os.environ.setdefault("SQLMANAGE_SETTINGS_MODULE", "project.settings")
    try:
        from sqlmanage.cli import execute_from_command_line
    except ImportError as exc:
        raise SystemExit(
            "Couldn't import sqlmanage. Is it installed and available on your PYTHONPATH? "
            "Did you forget to activate a virtual environment? (pip install sqlmanage)"
        ) from exc
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
