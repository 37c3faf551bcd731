#!/usr/bin/env bash
# Side by side, in one run, on the same `pinbench emulate` output: `pinbench clean` to Parquet + Delta,
# DuckDB (read_json + the cleaning in SQL + COPY ... (FORMAT parquet)) and Polars (scan_ndjson ->
# expressions -> sink_parquet), all snappy, pin partitioned by category, duplicates removed.
# Rounds alternate between the three and medians are reported (the machines are noisy).
# Prints rows/s (records in: pin + geo + user), CPU seconds, and pinbench's ratio to the faster peer.
#
#   perf/clean_vs_duckdb_polars.sh [POSTS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
POSTS=${1:-1000000}
ROUNDS=${2:-3}
BIN=${BIN:-.build/release/pinbench}
[ -x "$BIN" ] || swift build -c release --product pinbench >/dev/null
python3 -c 'import duckdb, polars' 2>/dev/null || python3 -m pip install -q duckdb polars
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pinbench-clean.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
"$BIN" emulate --count "$POSTS" --out "$WORK/in" >/dev/null
ROWS=$((3 * POSTS))
cat "$WORK"/in/*.jsonl > /dev/null  # page cache

# run NAME CMD...: wall and CPU seconds of one run, appended to $WORK/NAME.times
run() {
  local name=$1; shift
  rm -rf "$WORK/out"
  /usr/bin/time -f "%e %U %S" -o "$WORK/t" "$@" > /dev/null
  read -r wall usr sys < "$WORK/t"
  echo "$wall $(echo "$usr + $sys" | bc -l)" >> "$WORK/$name.times"
}
for r in $(seq "$ROUNDS"); do
  run pinbench "$BIN" clean --from "$WORK/in" --tables "$WORK/out"
  run duckdb python3 perf/clean_peers.py duckdb "$WORK/in" "$WORK/out"
  run polars python3 perf/clean_peers.py polars "$WORK/in" "$WORK/out"
done
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
printf 'input: %d posts = %d records, %.0f MB of JSON; %d rounds; %d cores\n' "$POSTS" "$ROWS" \
  "$(du -sb "$WORK/in" | awk '{print $1/1e6}')" "$ROUNDS" "$(nproc)"
declare -A RATE
for n in pinbench duckdb polars; do
  w=$(awk '{print $1}' "$WORK/$n.times" | median); c=$(awk '{print $2}' "$WORK/$n.times" | median)
  RATE[$n]=$(echo "$ROWS / $w" | bc -l)
  printf '%-9s %8.2f s  %10.0f rows/s  %6.2f CPU s\n' "$n" "$w" "${RATE[$n]}" "$c"
done
best=$(echo "if (${RATE[duckdb]} > ${RATE[polars]}) ${RATE[duckdb]} else ${RATE[polars]}" | bc -l)
printf 'ratio pinbench / duckdb %.2f, / polars %.2f, / faster peer %.2f (target >= 1.0)\n' \
  "$(echo "${RATE[pinbench]} / ${RATE[duckdb]}" | bc -l)" "$(echo "${RATE[pinbench]} / ${RATE[polars]}" | bc -l)" \
  "$(echo "${RATE[pinbench]} / $best" | bc -l)"
