"""Alembic's environment for this project.

The body lives in sqlmanage, so 'alembic upgrade head' and 'python manage.py migrate' run with
the same settings, models and options. It honours config.attributes["connection"], offline
mode (--sql) and async database URLs.
"""

from sqlmanage.alembic_env import run_migrations

run_migrations()
