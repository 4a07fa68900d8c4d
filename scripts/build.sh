#!/usr/bin/env bash
# scripts/build.sh [BUILD_DIR] [configure args...] — autoreconf + configure +
# make in an out-of-tree build directory (default ./build).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
shift || true
# autoreconf must run clean: a warning (a macro out of order, a missing
# directory) fails the build here, so it is fixed before it spreads.
if ! { [ -x configure ] && [ configure -nt configure.ac ] && [ Makefile.in -nt Makefile.am ]; }; then
    autoreconf -fi >/dev/null 2>autoreconf.log || { cat autoreconf.log >&2; exit 1; }
    if grep -qi 'warning' autoreconf.log; then
        echo "build.sh: autoreconf -fi printed warnings; fix configure.ac / Makefile.am:" >&2
        cat autoreconf.log >&2
        exit 1
    fi
fi
mkdir -p "$BUILD_DIR"
cd "$BUILD_DIR"
if [ ! -f Makefile ] || [ ../configure -nt config.status ]; then
    ../configure --quiet "$@"
fi
make -j"$(nproc)" >/dev/null
