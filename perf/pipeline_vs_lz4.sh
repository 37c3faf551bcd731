#!/usr/bin/env bash
# Side by side, in one run, on the same bytes: the whole pinbench pipeline (emulate → rings → batch →
# lz4 → CRC → segment files) against bare `lz4 -1` compressing the emulator's output on one core.
# Prints MB/s of both and the ratio (pipeline / lz4). Repeats alternately and reports medians, because
# the machines are noisy.
#
#   perf/pipeline_vs_lz4.sh [POSTS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
POSTS=${1:-400000}
ROUNDS=${2:-3}
BIN=${BIN:-.build/release/pinbench}
[ -x "$BIN" ] || swift build -c release --product pinbench >/dev/null
command -v lz4 >/dev/null || { echo "lz4 is missing: apt-get install lz4" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pinbench-perf.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

"$BIN" emulate --count "$POSTS" --out "$WORK/emu" >/dev/null
cat "$WORK/emu/pin.jsonl" "$WORK/emu/geo.jsonl" "$WORK/emu/user.jsonl" > "$WORK/all.jsonl"
# The pipeline's payload is the same JSON without the newlines.
BYTES=$(( $(stat -c %s "$WORK/all.jsonl") - 3 * POSTS ))

now() { date +%s.%N; }
lz4_mbs=(); pipe_mbs=(); pipe_inner=()
for r in $(seq "$ROUNDS"); do
  cat "$WORK/all.jsonl" > /dev/null   # warm the page cache
  t0=$(now); taskset -c 0 lz4 -1 -c "$WORK/all.jsonl" > /dev/null; t1=$(now)
  lz4_mbs+=("$(echo "$BYTES / ($t1 - $t0) / 1000000" | bc -l)")
  rm -rf "$WORK/data"
  t0=$(now)
  "$BIN" run --count "$POSTS" --compression lz4 --data-dir "$WORK/data" --report-json "$WORK/report.json" --quiet
  t1=$(now)
  pipe_mbs+=("$(echo "$BYTES / ($t1 - $t0) / 1000000" | bc -l)")
  pipe_inner+=("$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["mb_per_s"])' "$WORK/report.json")")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
L=$(median "${lz4_mbs[@]}"); P=$(median "${pipe_mbs[@]}"); I=$(median "${pipe_inner[@]}")
printf 'payload: %d posts, %.1f MB of JSON, %d rounds, %d cores\n' "$POSTS" "$(echo "$BYTES/1000000" | bc -l)" "$ROUNDS" "$(nproc)"
printf 'lz4 -1 (one core)                 %8.1f MB/s\n' "$L"
printf 'pinbench run --compression lz4    %8.1f MB/s end to end (process wall time), %.1f MB/s in-run\n' "$P" "$I"
printf 'ratio pipeline / lz4              %8.2f   (target >= 0.5)\n' "$(echo "$P / $L" | bc -l)"
