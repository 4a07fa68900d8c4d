#!/usr/bin/env bash
# scripts/test.sh — install dependencies, build, and run the whole test
# suite (make check). Used by .ci/run. Set SANITIZE=1 to also run the suite
# under AddressSanitizer/UBSan in a second build directory. Then a fuzzing
# smoke pass: every libFuzzer target for FUZZ_SMOKE_SECONDS (default 10) in
# build-fuzz (--enable-fuzzing, clang); FUZZ=0 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh build
status=0
make -C build check -j"$(nproc)" || status=$?
if [ $status -ne 0 ]; then
    for f in build/tests/*/*.log; do
        [ -f "$f" ] && { echo "==== $f"; tail -n 60 "$f"; }
    done
    exit $status
fi
if [ "${SANITIZE:-1}" = 1 ]; then
    bash scripts/build.sh build-asan --enable-sanitizers
    ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp" \
        make -C build-asan check -j"$(nproc)" || status=$?
    if [ $status -ne 0 ]; then
        for f in build-asan/tests/*/*.log; do
            [ -f "$f" ] && { echo "==== $f"; tail -n 60 "$f"; }
        done
    fi
fi
if [ "${FUZZ:-1}" = 1 ] && command -v clang >/dev/null; then
    bash scripts/build.sh build-fuzz --enable-fuzzing
    make -C build-fuzz fuzz FUZZ_SECONDS="${FUZZ_SMOKE_SECONDS:-10}" || status=$?
fi
exit $status
