#!/usr/bin/env bash
# test_quickstart.sh — README's first command, scripts/quickstart.sh, does
# what a new user is promised: dbpoold runs in the foreground on
# etc/dbpoold.conf, the example schema (migrations/sqlite) is applied
# through it with dbpool-migrate and shown (the three "N/u name (...)"
# lines, status, schema version 3), the tables answer through dbpool, a
# second run says "no change", and Ctrl-C (SIGINT) stops the daemon with
# exit 0. The setup steps (apt, the build) are skipped: it runs on this
# build (QUICKSTART_NO_SETUP, QUICKSTART_BUILD) with its sockets and
# database in a temporary directory (QUICKSTART_RUN). Every check runs;
# exit 1 if any failed.
#
#   TOP_SRCDIR=$PWD TOP_BUILDDIR=$PWD/build bash tests/migrate/test_quickstart.sh
set -euo pipefail

: "${TOP_SRCDIR:?set TOP_SRCDIR to the source tree (make check does)}"
: "${TOP_BUILDDIR:?set TOP_BUILDDIR to the build tree (make check does)}"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dbpool-quickstart.XXXXXX")
QS_PID=
# shellcheck source=SCRIPTDIR/../checks.sh
. "$TOP_SRCDIR/tests/checks.sh"

cleanup() {
    if [ -n "$QS_PID" ] && kill -0 "$QS_PID" 2>/dev/null; then
        kill "$QS_PID" 2>/dev/null || true
        wait "$QS_PID" 2>/dev/null || true
    fi
    if [ "$FAILED" -ne 0 ]; then
        for f in run1.out run2.out; do
            [ -f "$WORK/$f" ] && { echo "---- $f ----" >&2; tail -n 40 "$WORK/$f" >&2; }
        done
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# start_quickstart OUT: runs it in the background (its pid becomes
# dbpoold's: it ends with exec) and awaits its last line (30 s).
start_quickstart() {
    local out=$WORK/$1 deadline=$((SECONDS + 30))
    QUICKSTART_NO_SETUP=1 QUICKSTART_BUILD=$TOP_BUILDDIR QUICKSTART_RUN=$WORK/run \
        bash "$TOP_SRCDIR/scripts/quickstart.sh" >"$out" 2>&1 &
    QS_PID=$!
    until grep -q "^Stop with Ctrl-C" "$out"; do
        if ! kill -0 "$QS_PID" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            fail "quickstart.sh printed its instructions within 30 s, with the daemon running"
            return 1
        fi
        sleep 0.05
    done
}

# stop_quickstart NAME: Ctrl-C, as the user would; the daemon exits 0.
stop_quickstart() {
    local rc=0
    kill -INT "$QS_PID"
    wait "$QS_PID" || rc=$?
    QS_PID=
    check_eq "$1" "$rc" 0
}

has_line() { grep -Eq -- "$2" "$WORK/$1"; }

dbpool_run() { "$TOP_BUILDDIR/dbpool" -S "$WORK/run/dbpoold.sock" -d app "$@"; }

first_run() {
    start_quickstart run1.out || return 0
    local n m
    for m in "1/u create_health_status_table" "2/u add_user_table" "3/u add_indexes"; do
        check "the first run applies \"$m\" and prints its line" \
            has_line run1.out "^$m \\([0-9.]+(ns|µs|ms|s)\\)$"
    done
    check "the first run shows the schema version" has_line run1.out 'schema version 3\)'
    check "the first run lists the tables" has_line run1.out '^ table +\| users$'
    n=$(dbpool_run --csv -c "insert into health_status (service, status) values ('web', 'ok')" \
        -c "select count(*) as n from health_status where status = 'ok'" 2>&1) || true
    check_eq "the example tables answer through the quick start's daemon" "$n" $'n\n1'
    m=$(dbpool_run --csv -c "select version, dirty from schema_migrations" 2>&1) || true
    check_eq "schema_migrations holds golang-migrate's row: version 3, clean" "$m" $'version,dirty\n3,0'
    stop_quickstart "Ctrl-C stops the quick start's daemon with exit 0"
}

second_run() {
    start_quickstart run2.out || return 0
    check "a second run has nothing to apply: no change" has_line run2.out '^no change$'
    check "a second run applies nothing" bash -c "! grep -q '/u ' '$WORK/run2.out'"
    stop_quickstart "Ctrl-C stops the second run's daemon with exit 0"
}

first_run
second_run
if [ "$FAILED" -ne 0 ]; then
    echo "test_quickstart.sh: $FAILED of $CHECKS checks failed" >&2
    exit 1
fi
echo "test_quickstart.sh: all $CHECKS checks passed"
