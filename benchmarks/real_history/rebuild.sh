#!/usr/bin/env bash
# Builds ROOT/{mlflow,airflow} for benchmarks/run.py --real-history: each project installed
# from the package index in its own virtualenv (with this sqlmanage), its migrations as shipped
# (plain/) and adopted by sqlmanage (project/), and the hooks beside this script.
# Usage: bash benchmarks/real_history/rebuild.sh [ROOT=/tmp/realhist] [SQLMANAGE=this checkout]
# (about 5 minutes; nothing is installed outside ROOT).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=${1:-/tmp/realhist}; SQLMANAGE=${2:-$(cd "$HERE/../.." && pwd)}
mkdir -p "$ROOT"
export PIP_DISABLE_PIP_VERSION_CHECK=1

build() {  # name, pip spec, package's alembic.ini, package's migrations folder
  local name=$1 spec=$2 ini=$3 migrations=$4 dir="$ROOT/$1"
  rm -rf "$dir"; mkdir -p "$dir"; cd "$dir"
  python3.11 -m venv .venv
  .venv/bin/pip install -q "$spec" 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/pip install -q -e "$SQLMANAGE" 2>&1 | grep -v "^WARNING: Location" || true
  local site; site=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  mkdir plain
  cp -r "$site/$migrations" plain/migrations
  find plain -name __pycache__ -prune -exec rm -rf {} +
  rm -f plain/migrations/alembic.ini
  # the package's alembic.ini, its script_location pointed at the copy
  sed 's#^script_location = .*#script_location = %(here)s/migrations#' "$site/$ini" > plain/alembic.ini
  cp "$HERE/${name}_hooks.py" hooks.py
  cp -r plain project
}

build mlflow "mlflow-skinny==3.18.0" mlflow/store/db_migrations/alembic.ini mlflow/store/db_migrations
cd "$ROOT/mlflow/project"
PYTHONPATH="$SQLMANAGE/src" ../.venv/bin/python -m sqlmanage adopt > ../adopt.log
cp "$HERE/mlflow_baseline.py" .
cat >> sqlmanage_settings.py <<'PY'

# Added by hand after 'sqlmanage adopt' (docs/adoption.md, "History that starts before the
# first migration"): MLflow's first migration alters the tables its initial models create.
BASELINE = 'mlflow_baseline.create_tables'
BASELINE_ON_MIGRATE = True
PY

build airflow "apache-airflow==3.3.2" airflow/alembic.ini airflow/migrations
mkdir -p "$ROOT/airflow/home"
cd "$ROOT/airflow/project"
PYTHONPATH="$SQLMANAGE/src" AIRFLOW_HOME="$ROOT/airflow/home" ../.venv/bin/python -m sqlmanage adopt > ../adopt.log
echo "built $ROOT/mlflow and $ROOT/airflow"
