#!/usr/bin/env bash
# test_units.sh — the systemd units in systemd/ are valid and hardened:
# `systemd-analyze verify` accepts dbpoold.service, dbpoold.socket,
# dbpoold-status.socket and the example dbpool-migrate.service (generated
# as make does, with ExecStart pointing at the programs just built, since
# verify checks that they exist), and `systemd-analyze security
# --offline=true` rates dbpoold.service's exposure at most MAX_EXPOSURE and
# dbpool-migrate.service's at most MAX_MIGRATE_EXPOSURE (doc/operations.md
# reports the figures). dbpool-migrate.service runs after dbpoold.service
# and requires it. The sockets'
# names must be the ones the daemon looks for. Skipped (exit 77) where
# systemd-analyze is missing or too old for --offline.
set -euo pipefail
: "${TOP_SRCDIR:?set TOP_SRCDIR (make check does)}"
: "${TOP_BUILDDIR:?set TOP_BUILDDIR (make check does)}"
MAX_EXPOSURE=${MAX_EXPOSURE:-2.0}
MAX_MIGRATE_EXPOSURE=${MAX_MIGRATE_EXPOSURE:-1.0}

command -v systemd-analyze >/dev/null 2>&1 ||
    { echo "SKIP: systemd-analyze is not installed (Debian: package systemd)"; exit 77; }
for prog in dbpoold dbpool-migrate; do
    [ -x "$TOP_BUILDDIR/$prog" ] || { echo "FAIL: $TOP_BUILDDIR/$prog is not built"; exit 1; }
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/dbpoold-units.XXXXXX")
trap 'rm -rf "$dir"' EXIT
for unit in dbpoold.service dbpoold.socket dbpoold-status.socket dbpool-migrate.service; do
    sed -e "s|@sbindir@|$TOP_BUILDDIR|g" -e "s|@bindir@|$TOP_BUILDDIR|g" -e "s|@sysconfdir@|/etc|g" \
        -e "s|@datadir@|/usr/share|g" "$TOP_SRCDIR/systemd/$unit.in" > "$dir/$unit"
done

fail=0
# --man=no: the man pages named in Documentation= are installed, not here.
if out=$(cd "$dir" && systemd-analyze verify --man=no ./dbpoold.service ./dbpoold.socket \
        ./dbpoold-status.socket ./dbpool-migrate.service 2>&1) && [ -z "$out" ]; then
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

# The oneshot starts once dbpoold is ready, and needs it.
if grep -qx "After=dbpoold.service" "$dir/dbpool-migrate.service" &&
   grep -qx "Requires=dbpoold.service" "$dir/dbpool-migrate.service" &&
   grep -qx "Type=oneshot" "$dir/dbpool-migrate.service"; then
    echo "PASS: dbpool-migrate.service is a oneshot after and requiring dbpoold.service"
else
    echo "FAIL: dbpool-migrate.service must be Type=oneshot with After= and Requires=dbpoold.service"; fail=1
fi

if ! sec=$(cd "$dir" && systemd-analyze security --offline=true --no-pager ./dbpoold.service 2>&1); then
    if grep -q "offline" <<<"$sec"; then
        echo "SKIP: this systemd-analyze has no --offline (systemd < 252): exposure not checked"
        exit $(( fail ? 1 : 77 ))
    fi
    echo "FAIL: systemd-analyze security:"; echo "$sec"; exit 1
fi
# exposure UNIT MAX: systemd-analyze security's exposure of UNIT is at most MAX.
exposure() {
    local unit=$1 max=$2 sec score
    sec=$(cd "$dir" && systemd-analyze security --offline=true --no-pager "./$unit" 2>&1) ||
        { echo "FAIL: systemd-analyze security $unit:"; echo "$sec"; fail=1; return; }
    score=$(grep -oE "Overall exposure level for $unit: [0-9.]+" <<<"$sec" | grep -oE '[0-9.]+$' || true)
    if [ -z "$score" ]; then
        echo "FAIL: no exposure level in:"; echo "$sec"; fail=1
    elif awk -v s="$score" -v m="$max" 'BEGIN { exit !(s <= m) }'; then
        echo "PASS: systemd-analyze security: $unit exposure $score (at most $max)"
    else
        echo "FAIL: $unit exposure $score is above $max: the hardening in $unit.in weakened:"
        grep '✗' <<<"$sec" || true
        fail=1
    fi
}
exposure dbpoold.service "$MAX_EXPOSURE"
exposure dbpool-migrate.service "$MAX_MIGRATE_EXPOSURE"
exit $fail
