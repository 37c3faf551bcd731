#!/usr/bin/env bash
# Loads `pinbench serve` with wrk from the same machine, and in the same run nginx answering a fixed 200
# to the same requests (the HTTP ceiling here): single-record posts with keep-alive, then 500-record posts
# of pin records, then 500-record posts rotating over pin, geo and user (the original emulator's mix).
# Prints requests/s, records/s, p99 latency and the ratio to nginx. Servers are started and stopped by PID
# on free loopback ports. pinbench answers 200 only once records are in its log, so 500-record loads write
# hundreds of MB/s: once the kernel's dirty pages pass dirty_background_ratio, disk writeback sets the pace
# (nginx writes nothing). Each load starts after a sync, and the last line gives the log's write rate.
#
#   [ROUNDS=3] [TLS=1] perf/serve_vs_nginx.sh [SECONDS] [CONNECTIONS]   (each figure: the median of ROUNDS runs)
# TLS=1: both serve HTTPS with the same certificate (a test CA from Tests/InteropTests/Peers/make_certs.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
CONNS=${2:-64}
BIN=${BIN:-.build/release/pinbench}
[ -x "$BIN" ] || swift build -c release --product pinbench >/dev/null
command -v wrk >/dev/null && command -v nginx >/dev/null || { echo "needs wrk and nginx: apt-get install wrk nginx-light" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pinbench-serve-perf.XXXXXX")
PIDS=()
# TERM first: nginx's master then stops its worker (a KILLed master leaves the worker holding our stdout).
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

"$BIN" emulate --count 500 --out "$WORK/emu" >/dev/null
python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
rows = {k: [json.loads(l) for l in open(f"{w}/emu/{k}.jsonl")] for k in ("pin", "geo", "user")}
one = json.dumps({"records": [{"value": rows["pin"][0]}]})
many = json.dumps({"records": [{"value": r} for r in rows["pin"][:500]]})
for name, body in (("one", one), ("many", many)):
    with open(f"{w}/{name}.lua", "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/vnd.kafka.json.v2+json"\n')
        f.write("wrk.body = " + json.dumps(body) + "\n")
# The original emulator's mix: every post is a pin, a geo and a user record, each to its own topic; here
# 500-record posts rotate over the three topics (pin 550 B, geo 110 B, user 100 B per record on average).
with open(f"{w}/mixed.lua", "w") as f:
    f.write('local bodies, paths, i = {}, {}, 0\n')
    for n, k in enumerate(("pin", "geo", "user")):
        f.write(f"paths[{n}] = {json.dumps('/topics/pinbench.' + k)}\n")
        f.write(f"bodies[{n}] = {json.dumps(json.dumps({'records': [{'value': r} for r in rows[k][:500]]}))}\n")
    f.write('local headers = {["Content-Type"] = "application/vnd.kafka.json.v2+json"}\n')
    f.write('request = function() local k = i % 3; i = i + 1; return wrk.format("POST", paths[k], headers, bodies[k]) end\n')
PY

SCHEME=http; SERVE_TLS=(); NGINX_SSL=""; NGINX_CERTS=""
if [ "${TLS:-0}" = 1 ]; then
  bash Tests/InteropTests/Peers/make_certs.sh "$WORK/certs"
  SCHEME=https
  SERVE_TLS=(--tls-cert "$WORK/certs/server.pem" --tls-key "$WORK/certs/server.key")
  NGINX_SSL=" ssl"
  NGINX_CERTS="ssl_certificate $WORK/certs/server.pem; ssl_certificate_key $WORK/certs/server.key; ssl_protocols TLSv1.2 TLSv1.3;"
fi
SP=$(free_port)
"$BIN" serve --listen "127.0.0.1:$SP" --data-dir "$WORK/data" "${SERVE_TLS[@]}" >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$SP"
NP=$(free_port)
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx;
  proxy_temp_path $WORK/nginx; fastcgi_temp_path $WORK/nginx; uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
  client_max_body_size 20m;
  server {
    listen 127.0.0.1:$NP$NGINX_SSL;
    $NGINX_CERTS
    location / { client_body_buffer_size 1m; default_type application/json;
      return 200 '{"offsets":[{"partition":0,"offset":0,"error_code":null,"error":null}],"key_schema_id":null,"value_schema_id":null}'; }
  }
}
NGX
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
PIDS+=($!)
wait_port "$NP"

run() {  # port lua -> "req/s p99_ms"
  sync  # every load starts with no dirty pages waiting for the disk (earlier loads' writes would else slow it)
  wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$WORK/$2.lua" "$SCHEME://127.0.0.1:$1/topics/pinbench.pin" > "$WORK/wrk.out"
  python3 - "$WORK/wrk.out" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
m = re.search(r"99%\s+([\d.]+)(us|ms|s)", t)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print(rps, p99, int(non2xx.group(1)) if non2xx else 0)
PY
}
ROUNDS=${ROUNDS:-3}
printf 'wrk -t2 -c%d -d%ss over %s on %d cores (wrk, server and nginx share them); median of %d alternating rounds\n' "$CONNS" "$SECS" "$SCHEME" "$(nproc)" "$ROUNDS"
printf '%-22s %12s %14s %10s %8s %10s\n' load "requests/s" "records/s" "p99 ms" non-2xx "vs nginx"
median() { tr ' ' '\n' | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
for load in one many mixed; do
  PRS=""; PLS=""; PES=0; NRS=""; NLS=""; NES=0
  for _ in $(seq "$ROUNDS"); do
    read -r PR PL PE < <(run "$SP" "$load")
    read -r NR NL NE < <(run "$NP" "$load")
    PRS="$PRS $PR"; PLS="$PLS $PL"; PES=$((PES + PE)); NRS="$NRS $NR"; NLS="$NLS $NL"; NES=$((NES + NE))
  done
  PR=$(echo $PRS | median); PL=$(echo $PLS | median); NR=$(echo $NRS | median); NL=$(echo $NLS | median)
  n=$([ "$load" = one ] && echo 1 || echo 500)
  label=$([ "$load" = mixed ] && echo "pinbench, 500 mixed" || echo "pinbench, $n-record")
  printf '%-22s %12.0f %14.0f %10.2f %8d %10.2f   (rounds:%s)\n' "$label" "$PR" "$(echo "$PR*$n" | bc -l)" "$PL" "$PES" "$(echo "$PR/$NR" | bc -l)" "$PRS"
  printf '%-22s %12.0f %14s %10.2f %8d\n' "nginx fixed 200" "$NR" "-" "$NL" "$NES"
done
LOG_MB=$(du -sm "$WORK/data" | cut -f1)
printf 'pinbench wrote %d MB of log in %d s of loads (%.0f MB/s on average)\n' "$LOG_MB" $((3 * ROUNDS * SECS)) "$(echo "$LOG_MB / (3 * $ROUNDS * $SECS)" | bc -l)"
