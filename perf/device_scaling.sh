#!/usr/bin/env bash
# Runs `perf/scaling.sh` on a machine with no Swift, from what `perf/device_pack.sh` put in .device/: unpacks
# pinbench and its libraries, puts wrk (and Tansu, if packed) on PATH, installs the DuckDB wheel into a
# virtual environment when python3 can take it, and runs the jobs. Output goes to stdout and, where the
# device tool gives one, to $OUT/scaling.txt.
#
#   [ROUNDS=3] [JOBS=…] [COUNTS="1 2 4 8 16"] bash perf/device_scaling.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f .device/pinbench.xz ] || { echo "no .device/pinbench.xz: run perf/device_pack.sh first (and carry .device)" >&2; exit 64; }
D=$(mktemp -d /tmp/pinbench-device.XXXXXX)
xz -dc .device/pinbench.xz > "$D/pinbench"; chmod +x "$D/pinbench"
tar -C "$D" -xJf .device/tools.tar.xz
export LD_LIBRARY_PATH="$D/libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="$D/bin:$PATH"
[ -x "$D/bin/tansu" ] && export TANSU="$D/bin/tansu"
if ls .device/duckdb-*.whl > /dev/null 2>&1 && python3 -m venv "$D/venv" 2> /dev/null; then
  "$D/venv/bin/pip" install -q --no-index .device/duckdb-*.whl 2> /dev/null && export PATH="$D/venv/bin:$PATH" \
    || echo "the DuckDB wheel does not fit this python3 ($(python3 --version)): the clean jobs run without their peer"
fi
"$D/pinbench" --version
N=$(nproc)
read -r -a COUNTS <<< "${COUNTS:-$(for c in 1 2 4 8 16 32 64; do [ "$c" -le "$N" ] && printf '%s ' "$c"; done)}"
BIN="$D/pinbench" perf/scaling.sh "${COUNTS[@]}" 2>&1 | tee "${OUT:-$D}/scaling.txt"
