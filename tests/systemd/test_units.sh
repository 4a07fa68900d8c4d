#!/usr/bin/env bash
# test_units.sh — the systemd units in systemd/ are valid and hardened:
# `systemd-analyze verify` accepts dbpoold.service, dbpoold.socket and
# dbpoold-status.socket (generated as make does, with ExecStart pointing at
# the dbpoold just built, since verify checks that the program exists), and
# `systemd-analyze security --offline=true` rates the service's exposure at
# most MAX_EXPOSURE (doc/operations.md reports the figure). The sockets'
# names must be the ones the daemon looks for. Skipped (exit 77) where
# systemd-analyze is missing or too old for --offline.
set -euo pipefail
: "${TOP_SRCDIR:?set TOP_SRCDIR (make check does)}"
: "${TOP_BUILDDIR:?set TOP_BUILDDIR (make check does)}"
MAX_EXPOSURE=${MAX_EXPOSURE:-2.0}

command -v systemd-analyze >/dev/null 2>&1 ||
    { echo "SKIP: systemd-analyze is not installed (Debian: package systemd)"; exit 77; }
[ -x "$TOP_BUILDDIR/dbpoold" ] || { echo "FAIL: $TOP_BUILDDIR/dbpoold is not built"; exit 1; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/dbpoold-units.XXXXXX")
trap 'rm -rf "$dir"' EXIT
for unit in dbpoold.service dbpoold.socket dbpoold-status.socket; do
    sed -e "s|@sbindir@|$TOP_BUILDDIR|g" -e "s|@sysconfdir@|/etc|g" \
        "$TOP_SRCDIR/systemd/$unit.in" > "$dir/$unit"
done

fail=0
# --man=no: the man pages named in Documentation= are installed, not here.
if out=$(cd "$dir" && systemd-analyze verify --man=no ./dbpoold.service ./dbpoold.socket \
        ./dbpoold-status.socket 2>&1) && [ -z "$out" ]; then
    echo "PASS: systemd-analyze verify accepts the units"
else
    echo "FAIL: systemd-analyze verify:"; echo "$out"; fail=1
fi

# The names the daemon takes its sockets by (src/daemon/sd_service.c).
for pair in dbpoold.socket:client dbpoold-status.socket:status; do
    unit=${pair%%:*} name=${pair#*:}
    if grep -qx "FileDescriptorName=$name" "$dir/$unit" &&
       grep -q "^Sockets=.*\b$unit\b" "$dir/dbpoold.service"; then
        echo "PASS: $unit passes its socket as \"$name\""
    else
        echo "FAIL: $unit must say FileDescriptorName=$name and be in dbpoold.service's Sockets="; fail=1
    fi
done

if ! sec=$(cd "$dir" && systemd-analyze security --offline=true --no-pager ./dbpoold.service 2>&1); then
    if grep -q "offline" <<<"$sec"; then
        echo "SKIP: this systemd-analyze has no --offline (systemd < 252): exposure not checked"
        exit $(( fail ? 1 : 77 ))
    fi
    echo "FAIL: systemd-analyze security:"; echo "$sec"; exit 1
fi
score=$(grep -oE 'Overall exposure level for dbpoold.service: [0-9.]+' <<<"$sec" | grep -oE '[0-9.]+$' || true)
if [ -z "$score" ]; then
    echo "FAIL: no exposure level in:"; echo "$sec"; fail=1
elif awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'; then
    echo "PASS: systemd-analyze security: exposure $score (at most $MAX_EXPOSURE)"
else
    echo "FAIL: exposure $score is above $MAX_EXPOSURE: the hardening in dbpoold.service.in weakened:"
    grep '✗' <<<"$sec" || true
    fail=1
fi
exit $fail
