"""What MLflow creates before its first migration (mlflow.store.db.utils._initialize_tables:
the initial models' create_all, then Alembic), for sqlmanage's BASELINE."""

from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase


def create_tables(connection) -> None:
    InitialBase.metadata.create_all(connection)
