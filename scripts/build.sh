#!/usr/bin/env bash
# scripts/build.sh [BUILD_DIR] [configure args...] — autoreconf + configure +
# make in an out-of-tree build directory (default ./build).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
shift || true
[ -x configure ] && [ configure -nt configure.ac ] && [ Makefile.in -nt Makefile.am ] || autoreconf -fi >/dev/null
mkdir -p "$BUILD_DIR"
cd "$BUILD_DIR"
if [ ! -f Makefile ] || [ ../configure -nt config.status ]; then
    ../configure --quiet "$@"
fi
make -j"$(nproc)" >/dev/null
