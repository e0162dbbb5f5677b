"""Settings of the example project, read by manage.py and by plain alembic alike."""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# The environment variable DATABASE_URL overrides this, e.g.
#   DATABASE_URL=postgresql://postgres@127.0.0.1/shop python manage.py migrate
DATABASE_URL = f"sqlite:///{BASE_DIR / 'db.sqlite3'}"

# Every module under these packages is imported, so every table is seen by makemigrations.
MODELS = ["project.models"]

# Where env.py, script.py.mako and versions/ live.
MIGRATIONS = BASE_DIR / "project" / "migrations"
