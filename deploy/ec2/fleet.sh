#!/usr/bin/env bash
# A fleet flood over plain ssh: worker I of N on the I-th host, every one starting at the same wall-clock
# moment (--start-at, a little ahead so ssh and start-up fit in), then the reports and HdrHistogram logs
# copied back and merged here. No coordinator: ssh, the hosts' clocks (keep them on NTP/chrony; each
# worker says how late it woke) and the merge.
#
#   deploy/ec2/fleet.sh OUT_DIR HOST... -- PINBENCH_RUN_ARGS...
#   e.g. deploy/ec2/fleet.sh fleet-out ec2-user@10.0.1.11 ec2-user@10.0.1.12 -- \
#          --count 8000000 --rate 400000 --kafka b-1.x.kafka.us-east-1.amazonaws.com:9098 --kafka-config client.properties
#
# SSH (default "ssh") and SCP (default "scp") run the remote side; PINBENCH (default "pinbench") is the
# binary on the hosts; LEAD (default 20) the seconds between now and the common start.
set -euo pipefail
OUT=$1; shift
HOSTS=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do HOSTS+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#HOSTS[@]} -ge 1 ] || { echo "usage: fleet.sh OUT_DIR HOST... -- RUN_ARGS..." >&2; exit 64; }
SSH=${SSH:-ssh}; SCP=${SCP:-scp}; PINBENCH=${PINBENCH:-pinbench}
N=${#HOSTS[@]}
START=$(( $(date +%s) + ${LEAD:-20} ))
mkdir -p "$OUT"
PIDS=()
for i in "${!HOSTS[@]}"; do
  h=${HOSTS[$i]}
  remote="/tmp/pinbench-fleet-$START-$i"
  # shellcheck disable=SC2029  # the arguments are expanded here on purpose
  $SSH "$h" "mkdir -p $remote && $PINBENCH run --worker $i/$N --start-at $START $* --quiet --report-json $remote/worker.json --hlog $remote/worker.hlog" \
    > "$OUT/worker-$i.log" 2>&1 &
  PIDS+=($!)
done
FAILED=0
for i in "${!PIDS[@]}"; do
  wait "${PIDS[$i]}" || { echo "worker $i on ${HOSTS[$i]} failed: see $OUT/worker-$i.log" >&2; FAILED=1; }
done
for i in "${!HOSTS[@]}"; do
  remote="/tmp/pinbench-fleet-$START-$i"
  $SCP "${HOSTS[$i]}:$remote/worker.json" "$OUT/worker-$i.json"
  $SCP "${HOSTS[$i]}:$remote/worker.hlog" "$OUT/worker-$i.hlog"
done
[ "$FAILED" = 0 ] || exit 1
"${LOCAL_PINBENCH:-$PINBENCH}" report merge "$OUT"/worker-*.json --out "$OUT/fleet"
