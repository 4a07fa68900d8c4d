#!/usr/bin/env bash
# test_install.sh — `make install` into a temporary root (DESTDIR) and the
# installed files at work, as a packager and an admin would use them:
#   - the layout: dbpoold in sbin, dbpool in bin, libdbpool.so with its
#     soname link (no static archive), dbpool.h, dbpool.pc, the sample
#     configuration in $(sysconfdir)/dbpoold/, the four man pages;
#   - the INSTALLED dbpoold, on the installed sample configuration moved to
#     temporary paths, answers a query from the INSTALLED dbpool, which
#     loads the INSTALLED libdbpool (LD_LIBRARY_PATH into the root);
#   - pkg-config (PKG_CONFIG_SYSROOT_DIR, PKG_CONFIG_PATH) builds a small
#     program against the installed header and library, and it queries the
#     daemon too;
#   - a second `make install` keeps an edited configuration, and
#     `make uninstall` removes everything but that edited file.
# Every check runs; exit 1 if any failed.
#
#   TOP_SRCDIR=$PWD TOP_BUILDDIR=$PWD/build bash tests/install/test_install.sh
# shellcheck disable=SC2154  # bindir, sbindir, ...: from make print-install-dirs (eval)
set -euo pipefail

: "${TOP_SRCDIR:?set TOP_SRCDIR to the source tree (make check does)}"
: "${TOP_BUILDDIR:?set TOP_BUILDDIR to the build tree (make check does)}"
# A make of our own, not a part of the make running the tests.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
MAKE=${MAKE:-make}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dbpool-install.XXXXXX")
ROOT=$WORK/root
DAEMON_PID=
# shellcheck source=SCRIPTDIR/../checks.sh
. "$TOP_SRCDIR/tests/checks.sh"

cleanup() {
    if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
    fi
    if [ "$FAILED" -ne 0 ]; then
        for f in install.log dbpoold.log cc.log; do
            [ -f "$WORK/$f" ] && { echo "---- $f ----" >&2; tail -n 30 "$WORK/$f" >&2; }
        done
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# ---------------------------------------------------------------- install

do_install() {
    "$MAKE" -C "$TOP_BUILDDIR" install DESTDIR="$ROOT" >>"$WORK/install.log" 2>&1 ||
        { fail "make install DESTDIR=$ROOT failed"; exit 1; }
}

# prefix, bindir, sbindir, libdir, ... as the build configured them.
dirs=$("$MAKE" -s -C "$TOP_BUILDDIR" --no-print-directory print-install-dirs) ||
    { echo "test_install.sh: 'make print-install-dirs' failed in $TOP_BUILDDIR" >&2; exit 1; }
eval "$dirs"
do_install

check_layout() {
    check "dbpoold is installed in sbindir" test -x "$ROOT$sbindir/dbpoold"
    check "dbpoold is not in bindir" test ! -e "$ROOT$bindir/dbpoold"
    check "dbpool is installed in bindir" test -x "$ROOT$bindir/dbpool"
    check "libdbpool.so.1 (the soname) is installed" test -e "$ROOT$libdir/libdbpool.so.1"
    check "libdbpool.so (the link for -ldbpool) is installed" test -L "$ROOT$libdir/libdbpool.so"
    check "no static libdbpool.a by default" test ! -e "$ROOT$libdir/libdbpool.a"
    check "dbpool.h is installed" test -f "$ROOT$includedir/dbpool.h"
    check "dbpool.pc is installed" test -f "$ROOT$pkgconfigdir/dbpool.pc"
    check "the sample configuration is in sysconfdir/dbpoold" test -f "$ROOT$dbpoolconfdir/dbpoold.conf"
    check "no configuration directly in sysconfdir" test ! -e "$ROOT$sysconfdir/dbpoold.conf"
    local page
    for page in man8/dbpoold.8 man5/dbpoold.conf.5 man1/dbpool.1 man3/libdbpool.3; do
        check "man page $page is installed" test -f "$ROOT$mandir/$page"
    done
    check "the installed dbpoold's -h names the installed configuration" \
        grep -qF "$dbpoolconfdir/dbpoold.conf" <("$ROOT$sbindir/dbpoold" -h)
}

# ---------------------------------------------------------------- run it

# The installed sample with its run-state and state paths moved into WORK.
adjust_config() {
    sed -e "s|\"$runstatedir/dbpoold/|\"$WORK/run/|g" \
        -e "s|\"$localstatedir/lib/dbpoold/|\"$WORK/lib/|g" \
        "$ROOT$dbpoolconfdir/dbpoold.conf" >"$WORK/dbpoold.conf"
    mkdir -p "$WORK/run" "$WORK/lib"
    CHECKS=$((CHECKS + 1))
    grep -q "\"$WORK/run/dbpoold.sock\"" "$WORK/dbpoold.conf" ||
        fail "the installed sample names its client socket under runstatedir ($runstatedir/dbpoold/)"
    CHECKS=$((CHECKS + 1))
    grep -q "\"$WORK/lib/app.db\"" "$WORK/dbpoold.conf" ||
        fail "the installed sample keeps its SQLite database under localstatedir ($localstatedir/lib/dbpoold/)"
}

installed_dbpool() {
    LD_LIBRARY_PATH="$ROOT$libdir" "$ROOT$bindir/dbpool" -S "$WORK/run/dbpoold.sock" -d app "$@"
}

# Start the installed daemon and await a working session (deadline 10 s).
# h-systemd: start it under systemd-socket-activate here as well.
start_daemon() {
    "$ROOT$sbindir/dbpoold" -c "$WORK/dbpoold.conf" 2>"$WORK/dbpoold.log" &
    DAEMON_PID=$!
    local deadline=$((SECONDS + 10))
    until installed_dbpool -q -c 'select 1' >/dev/null 2>&1; do
        kill -0 "$DAEMON_PID" 2>/dev/null || { fail "the installed dbpoold exited during start-up"; exit 1; }
        [ "$SECONDS" -lt "$deadline" ] || { fail "the installed dbpoold did not answer within 10 s"; exit 1; }
        sleep 0.02
    done
}

check_query() {
    check "the installed dbpoold -t accepts the installed sample" "$ROOT$sbindir/dbpoold" -t -c "$WORK/dbpoold.conf"
    start_daemon
    local out
    out=$(installed_dbpool --csv -c "create table t(x integer)" -c "insert into t values (40), (2)" \
          -c "select sum(x) as total from t" 2>&1) || true
    check_eq "the installed dbpool answers a query through the installed dbpoold" "$out" $'total\n42'
    out=$(LD_LIBRARY_PATH="$ROOT$libdir" ldd "$ROOT$bindir/dbpool" | awk '/libdbpool/ { print $3 }')
    check_eq "the installed dbpool loads the installed libdbpool" "$out" "$ROOT$libdir/libdbpool.so.1"
}

# ---------------------------------------------------------------- pkg-config

check_pkg_config() {
    local flags out
    flags=$(PKG_CONFIG_SYSROOT_DIR="$ROOT" PKG_CONFIG_PATH="$ROOT$pkgconfigdir" \
            pkg-config --cflags --libs dbpool 2>&1) || { fail "pkg-config dbpool" "$flags"; return; }
    flags=${flags%" "}
    check_eq "pkg-config gives the installed include and lib directories" "$flags" \
        "-I$ROOT$includedir -L$ROOT$libdir -ldbpool"
    cat >"$WORK/hello.c" <<'C'
#include <stdio.h>
#include <dbpool.h>

int main(int argc, char **argv)
{
    dbpool_error err;
    dbpool_conn *c = dbpool_connect(argc > 1 ? argv[1] : NULL, "app", "install-test", &err);
    dbpool_value p[1] = { dbpool_int(41) };
    dbpool_result *r;

    if (!c) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    if (dbpool_query(c, "select ? + 1", p, 1, &r) != 0) {
        fprintf(stderr, "%s\n", dbpool_last_error(c)->message);
        return 1;
    }
    printf("%lld\n", (long long)dbpool_result_value(r, 0, 0)->u.i);
    dbpool_result_free(r);
    dbpool_close(c);
    return 0;
}
C
    # A sanitizer build's libdbpool needs the program built with the same.
    local san=
    grep -q libasan <<<"$(ldd "$ROOT$libdir/libdbpool.so.1")" && san="-fsanitize=address,undefined"
    # shellcheck disable=SC2086  # the flags are words
    if ! ${CC:-cc} $san -o "$WORK/hello" "$WORK/hello.c" $flags >"$WORK/cc.log" 2>&1; then
        fail "a program builds against the installed libdbpool with pkg-config's flags"
        return
    fi
    out=$(LD_LIBRARY_PATH="$ROOT$libdir" "$WORK/hello" "$WORK/run/dbpoold.sock" 2>&1) || true
    check_eq "the program built with pkg-config queries the installed dbpoold" "$out" "42"
}

stop_daemon() {
    kill -TERM "$DAEMON_PID"
    local rc=0
    wait "$DAEMON_PID" || rc=$?
    DAEMON_PID=
    check_eq "the installed dbpoold stops cleanly on SIGTERM" "$rc" 0
    check "its client socket is removed" test ! -e "$WORK/run/dbpoold.sock"
}

# ---------------------------------------------------------------- reinstall, uninstall

check_reinstall_and_uninstall() {
    local conf=$ROOT$dbpoolconfdir/dbpoold.conf left
    echo "# edited by the admin" >>"$conf"
    do_install
    check "a second make install keeps the edited configuration" grep -q "edited by the admin" "$conf"
    "$MAKE" -C "$TOP_BUILDDIR" uninstall DESTDIR="$ROOT" >>"$WORK/install.log" 2>&1 ||
        fail "make uninstall DESTDIR=$ROOT failed"
    left=$(cd "$ROOT" && find . -type f -o -type l | sort)
    check_eq "make uninstall removes every file but the edited configuration" "$left" \
        ".$dbpoolconfdir/dbpoold.conf"
}

check_layout
adjust_config
check_query
check_pkg_config
stop_daemon
check_reinstall_and_uninstall
if [ "$FAILED" -ne 0 ]; then
    echo "test_install.sh: $FAILED of $CHECKS checks failed" >&2
    exit 1
fi
echo "test_install.sh: $CHECKS checks passed"
