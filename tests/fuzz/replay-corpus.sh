#!/usr/bin/env bash
# tests/fuzz/replay-corpus.sh — `make check` test: runs every fuzz target
# once over each input of its seed corpus (tests/fuzz/corpus/<target>),
# which includes the inputs of every crash found and fixed. Without
# libFuzzer the targets are built with tests/fuzz/replay_main.c; with it,
# libFuzzer's own main runs the named files once each.
set -euo pipefail
: "${TOP_SRCDIR:?run through make check}" "${TOP_BUILDDIR:?run through make check}"
status=0
for t in proto session config status sqlsplit; do
    mapfile -t files < <(find "$TOP_SRCDIR/tests/fuzz/corpus/$t" -type f | sort)
    if [ ${#files[@]} -eq 0 ]; then
        echo "replay: $t: no seed inputs in tests/fuzz/corpus/$t" >&2
        status=1
        continue
    fi
    if "$TOP_BUILDDIR/tests/fuzz/fuzz_$t" "${files[@]}" >"$TOP_BUILDDIR/tests/fuzz/replay-$t.out" 2>&1; then
        echo "replay: $t: ${#files[@]} inputs ok"
    else
        echo "replay: $t: FAILED (see tests/fuzz/replay-$t.out in the build directory)" >&2
        tail -n 30 "$TOP_BUILDDIR/tests/fuzz/replay-$t.out" >&2
        status=1
    fi
done
exit $status
