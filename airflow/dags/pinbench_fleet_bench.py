"""Nightly fleet bench: N pinbench workers on N hosts flood one load together, and their reports merge.

Runs `deploy/ec2/fleet.sh` (workers over ssh with a common --start-at, reports copied back, `pinbench
report merge`), then fails the run when the merged report flags a worker (late, stalled, short of its
slice) or the fleet's accounting does not hold. Airflow Variables: `pinbench_fleet_hosts` (space-separated
ssh targets), `pinbench_fleet_args` (the `run` arguments: count, rate, backend), `pinbench_root` (where the
nights' reports go), `pinbench_repo` (a checkout holding deploy/ec2/fleet.sh).
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
    "retries": 0,
    "retry_delay": timedelta(minutes=5),
}

OUT = "{{ var.value.get('pinbench_root', '/srv/pinbench') }}/fleet/{{ ds_nodash }}"

with DAG(
    dag_id="pinbench_fleet_bench",
    description="nightly: one load over many hosts, merged by HdrHistogram",
    default_args=default_args,
    schedule="0 2 * * *",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    tags=["pinbench", "bench"],
) as dag:
    flood = BashOperator(
        task_id="fleet_flood",
        bash_command=(
            "{{ var.value.get('pinbench_repo', '/opt/pinbench') }}/deploy/ec2/fleet.sh " + OUT + " "
            "{{ var.value.get('pinbench_fleet_hosts', 'localhost') }} -- "
            "{{ var.value.get('pinbench_fleet_args', '--duration 60s --rate 100000') }}"
        ),
    )
    check = BashOperator(
        task_id="check_merge",
        bash_command=(
            "python3 -c \"import json,sys; d=json.load(open(sys.argv[1])); "
            "sys.exit(0 if d['accounting_holds'] and not d['flags'] else 'fleet: ' + ('; '.join(d['flags']) or 'accounting does not hold'))\" "
            + OUT + "/fleet/report.json"
        ),
    )
    flood >> check
