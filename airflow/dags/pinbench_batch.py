"""Daily batch job of the pinbench pipeline: land -> clean -> analyze for one day (`pinbench batch`).

The original pipeline ran a Databricks notebook from Airflow once a day; this DAG runs the same job with
pinbench on the worker. Set the Airflow Variables `pinbench_bin`, `pinbench_source` (e.g. `--kafka
host:9092` or `--data-dir /srv/pinbench/data`) and `pinbench_root` to match the deployment.
"""
from datetime import datetime, timedelta

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.operators.bash import BashOperator

default_args = {
    "owner": "pinbench",
    "depends_on_past": False,
    "retries": 2,
    "retry_delay": timedelta(minutes=2),
}

with DAG(
    dag_id="pinbench_batch",
    description="land -> clean -> analyze one day of Pinterest posts with pinbench",
    default_args=default_args,
    schedule="@daily",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    tags=["pinbench"],
) as dag:
    BashOperator(
        task_id="batch",
        bash_command=(
            "{{ var.value.get('pinbench_bin', 'pinbench') }} batch --date {{ ds }} "
            "{{ var.value.get('pinbench_source', '--data-dir /srv/pinbench/data') }} "
            "--landing {{ var.value.get('pinbench_root', '/srv/pinbench') }}/landing "
            "--tables {{ var.value.get('pinbench_root', '/srv/pinbench') }}/tables "
            "--out {{ var.value.get('pinbench_root', '/srv/pinbench') }}/analysis"
        ),
    )
