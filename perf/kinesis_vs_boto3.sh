#!/usr/bin/env bash
# Side by side, in one run: pinbench's Kinesis PutRecords producer against boto3 `put_records` (batches of
# 500), sending the same emulated posts (pin, geo and user records into three streams) to the same moto
# server (started and stopped here by PID on a free loopback port). moto never throttles and caps near
# 10^4 records/s, so wall time measures moto; what this compares is each client's own CPU per record
# (user + system seconds of the client process, from /usr/bin/time). Target: pinbench <= 0.1x boto3.
# moto copies a shard's whole key list on every put (quadratic in records per shard), so the streams get
# SHARDS shards (default 100) to keep each shard small.
#
#   perf/kinesis_vs_boto3.sh [POSTS] [SHARDS]
#   MODE=run perf/kinesis_vs_boto3.sh [POSTS] [SHARDS]   pinbench's side is a whole flood (`run --kinesis
#       --ordered`: generators, rings, the sink stage) instead of `put-records` from the files
set -euo pipefail
cd "$(dirname "$0")/.."
POSTS=${1:-200000}
SHARDS=${2:-100}
BIN=${BIN:-.build/release/pinbench}
[ -x "$BIN" ] || swift build -c release --product pinbench >/dev/null
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pinbench-kinperf.XXXXXX")
MOTO_PID=""
cleanup() { [ -n "$MOTO_PID" ] && kill -9 "$MOTO_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
export AWS_ACCESS_KEY_ID=perf AWS_SECRET_ACCESS_KEY=perf AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
PEER=Tests/InteropTests/Peers/kinesis_peer.py

PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
python3 -m moto.server -H 127.0.0.1 -p "$PORT" >/dev/null 2>&1 &
MOTO_PID=$!
for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
EP="http://127.0.0.1:$PORT"
cpu_of() { awk -F': ' '/User time/{u=$2} /System time/{s=$2} END{printf "%.3f", u+s}' "$1"; }

"$BIN" emulate --count "$POSTS" --out "$WORK/emu" >/dev/null
python3 - "$EP" "$SHARDS" <<'PY'
import sys, boto3
k = boto3.client("kinesis", endpoint_url=sys.argv[1])
for side in ("pinbench", "boto3"):
    for kind in ("pin", "geo", "user"):
        k.create_stream(StreamName=f"perf-{side}-{kind}", ShardCount=int(sys.argv[2]))
PY

total_cpu() { local s=0; for f in "$@"; do s=$(echo "$s + $(cpu_of "$f")" | bc -l); done; echo "$s"; }
for kind in pin geo user; do
  if [ "${MODE:-put}" != run ]; then
    /usr/bin/time -v "$BIN" put-records --stream "perf-pinbench-$kind" --file "$WORK/emu/$kind.jsonl" --aws-endpoint "$EP" \
      > "$WORK/pb-$kind.json" 2> "$WORK/pb-$kind.time"
  fi
  /usr/bin/time -v python3 "$PEER" put "$EP" "perf-boto3-$kind" "$WORK/emu/$kind.jsonl" \
    > "$WORK/b3-$kind.json" 2> "$WORK/b3-$kind.time"
done
if [ "${MODE:-put}" = run ]; then
  /usr/bin/time -v "$BIN" run --kinesis --aws-endpoint "$EP" --stream-prefix perfrun --create-streams --shards "$SHARDS" \
    --count "$POSTS" --ordered --report-json "$WORK/run.json" --quiet 2> "$WORK/pb-run.time"
  python3 -c 'import json,sys;d=json.load(open(sys.argv[1]));json.dump({"accepted":d["records_out"],"seconds":d["seconds"]},open(sys.argv[2],"w"))' \
    "$WORK/run.json" "$WORK/pb-run.json"
fi
PB=$(total_cpu "$WORK"/pb-*.time)
B3=$(total_cpu "$WORK"/b3-*.time)
RECORDS=$((3 * POSTS))
python3 - "$RECORDS" "$PB" "$B3" "$WORK" <<'PY'
import json, sys, glob
records, pb, b3, work = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
acc = sum(json.load(open(f))["accepted"] for f in glob.glob(f"{work}/pb-*.json"))
sent = sum(json.load(open(f))["records"] for f in glob.glob(f"{work}/b3-*.json"))
wall_pb = sum(json.load(open(f))["seconds"] for f in glob.glob(f"{work}/pb-*.json"))
wall_b3 = sum(json.load(open(f))["seconds"] for f in glob.glob(f"{work}/b3-*.json"))
print(f"records: pinbench {acc} accepted, boto3 {sent} sent (of {records})")
print(f"{'client':10} {'CPU s':>8} {'CPU ms/1k rec':>14} {'wall s':>8}")
print(f"{'pinbench':10} {pb:8.2f} {pb / records * 1e6:14.2f} {wall_pb:8.1f}")
print(f"{'boto3':10} {b3:8.2f} {b3 / records * 1e6:14.2f} {wall_b3:8.1f}")
print(f"ratio pinbench/boto3 CPU per record: {pb / b3:.3f}x (target <= 0.1x)")
PY
