"""benchmarks/run.py --real-history hooks for Airflow (apache-airflow 3.3.2).

Standard library only at import time."""

from pathlib import Path

HOME = Path(__file__).resolve().parent / "home"


def environment(url):
    """What Airflow's env.py reads: airflow.settings takes the database from
    [database] sql_alchemy_conn, i.e. AIRFLOW__DATABASE__SQL_ALCHEMY_CONN, and its config
    (airflow.cfg, written on first import) from AIRFLOW_HOME, kept in this folder."""
    return {
        "AIRFLOW_HOME": str(HOME),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
