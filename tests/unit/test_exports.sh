#!/usr/bin/env bash
# test_exports.sh — libdbpool's shared object exports its public API and
# nothing else: every function declared in include/dbpool.h is exported, and
# every exported symbol starts with dbpool_ (the wire format, the duration
# parser and the library's internal functions stay private, so they cannot
# clash with an application's own symbols).
set -euo pipefail
: "${TOP_BUILDDIR:?set TOP_BUILDDIR (make check does)}"
: "${TOP_SRCDIR:?set TOP_SRCDIR (make check does)}"
so=$TOP_BUILDDIR/.libs/libdbpool.so
[ -e "$so" ] || { echo "test_exports.sh: $so not built (shared libraries disabled?)"; exit 77; }
exported=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sort -u)
fail=0
stray=$(grep -v '^dbpool_' <<<"$exported" || true)
if [ -n "$stray" ]; then
    echo "FAIL: libdbpool exports symbols outside its API:"; echo "$stray" | head -20; fail=1
fi
declared=$(grep -oE '\bdbpool_[a-z0-9_]+[[:space:]]*\(' "$TOP_SRCDIR/include/dbpool.h" |
           tr -d '( \t' | sort -u)
inline=$(grep -oE 'static inline [^(]*\bdbpool_[a-z0-9_]+\(' "$TOP_SRCDIR/include/dbpool.h" |
         grep -oE 'dbpool_[a-z0-9_]+\($' | tr -d '(' | sort -u || true)
missing=$(comm -23 <(comm -23 <(echo "$declared") <(echo "$inline")) <(echo "$exported"))
if [ -n "$missing" ]; then
    echo "FAIL: declared in include/dbpool.h but not exported:"; echo "$missing"; fail=1
fi
n=$(wc -l <<<"$exported")
[ "$fail" -eq 0 ] && echo "PASS: libdbpool exports $n symbols, all dbpool_*, every declared function"
exit $fail
