"""benchmarks/run.py --real-history hooks for MLflow (mlflow-skinny 3.18.0).

Standard library only at import time; prepare() runs with this folder's .venv python."""


def environment(url):
    # MLflow's env.py reads no variable: its URL is alembic.ini's sqlalchemy.url, which
    # MLflow's code sets (the benchmark writes it into plain/alembic.ini). The adopted
    # project reads DATABASE_URL, which the benchmark sets.
    return {}


def prepare(url):
    """What MLflow creates before its first migration: the initial models' tables
    (mlflow.store.db.utils._initialize_tables, before it runs Alembic)."""
    import sqlalchemy
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        InitialBase.metadata.create_all(engine)
    finally:
        engine.dispose()
