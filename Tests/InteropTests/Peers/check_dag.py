"""Loads the Airflow DAG file and checks its schedule and command.

Uses Apache Airflow when it is installed; otherwise (CI does not install Airflow's ~100 packages) the file
is compiled and executed against minimal stand-ins for `airflow.DAG` and `BashOperator` that record what
the DAG declares. Either way the checks are the same. usage: check_dag.py DAG_FILE
"""
import importlib.util
import sys
import types
from datetime import timedelta

path = sys.argv[1]
compile(open(path).read(), path, "exec")

try:
    import airflow  # noqa: F401
    real = True
except ImportError:
    real = False
    created = []

    class DAG:
        def __init__(self, dag_id, **kw):
            self.dag_id, self.kw, self.tasks = dag_id, kw, []
            created.append(self)

        def __enter__(self):
            DAG.current = self
            return self

        def __exit__(self, *a):
            DAG.current = None

    class BashOperator:
        def __init__(self, task_id, bash_command, **kw):
            self.task_id, self.bash_command = task_id, bash_command
            DAG.current.tasks.append(self)

    mod = types.ModuleType("airflow")
    mod.DAG = DAG
    ops = types.ModuleType("airflow.operators")
    bash = types.ModuleType("airflow.operators.bash")
    bash.BashOperator = BashOperator
    sys.modules.update({"airflow": mod, "airflow.operators": ops, "airflow.operators.bash": bash})

spec = importlib.util.spec_from_file_location("dagfile", path)
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)

if real:
    dag = m.dag
    schedule = getattr(dag, "schedule_interval", None) or str(dag.timetable)
    args, catchup, tasks = dag.default_args, dag.catchup, dag.tasks
else:
    dag = created[0]
    schedule, args, catchup, tasks = dag.kw["schedule"], dag.kw["default_args"], dag.kw["catchup"], dag.tasks

problems = []
if "daily" not in str(schedule):
    problems.append(f"schedule {schedule}")
if args.get("retries") != 2:
    problems.append(f"retries {args.get('retries')}")
if args.get("retry_delay") != timedelta(minutes=2):
    problems.append(f"retry_delay {args.get('retry_delay')}")
if catchup is not False:
    problems.append(f"catchup {catchup}")
if len(tasks) != 1 or " batch --date {{ ds }} " not in tasks[0].bash_command:
    problems.append("the task must run `pinbench batch --date {{ ds }}`")
if problems:
    print("DAG problems:", problems)
    sys.exit(1)
print("DAG ok (airflow installed)" if real else "DAG ok (stand-ins; airflow not installed)")
