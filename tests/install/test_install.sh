#!/usr/bin/env bash
# test_install.sh — `make install` into a temporary root (DESTDIR) and the
# installed files at work, as a packager and an admin would use them:
#   - the layout: dbpoold in sbin, dbpool in bin, libdbpool.so with its
#     soname link (no static archive), dbpool.h, dbpool.pc, the sample
#     configuration in $(sysconfdir)/dbpoold/, the four man pages, the
#     example migrations in $(datadir)/dbpool/migrations/;
#   - the INSTALLED dbpoold, on the installed sample configuration moved to
#     temporary paths, answers a query from the INSTALLED dbpool, which
#     loads the INSTALLED libdbpool (LD_LIBRARY_PATH into the root);
#   - the INSTALLED systemd units (dbpoold's and the example
#     dbpool-migrate.service): `systemd-analyze verify` accepts them
#     (their install paths moved under the root), and the installed dbpoold runs the way
#     dbpoold.service's ExecStart runs it, under systemd-socket-activate
#     with the sockets named as dbpoold.socket and dbpoold-status.socket
#     name them and a NOTIFY_SOCKET the test reads: READY=1, a query through
#     the passed socket, RELOADING=1 ... READY=1 around a SIGHUP, STOPPING=1
#     (skipped with a message when the build installs no units or
#     systemd-socket-activate is missing);
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
NOTIFY_PID=
# shellcheck source=SCRIPTDIR/../checks.sh
. "$TOP_SRCDIR/tests/checks.sh"

cleanup() {
    if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
    fi
    if [ -n "$NOTIFY_PID" ]; then
        kill "$NOTIFY_PID" 2>/dev/null || true
        wait "$NOTIFY_PID" 2>/dev/null || true
    fi
    if [ "$FAILED" -ne 0 ]; then
        for f in install.log dbpoold.log dbpoold-sd.log notify.log cc.log; do
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
    check "dbpool-migrate is installed in bindir" test -x "$ROOT$bindir/dbpool-migrate"
    check "libdbpool.so.1 (the soname) is installed" test -e "$ROOT$libdir/libdbpool.so.1"
    check "libdbpool.so (the link for -ldbpool) is installed" test -L "$ROOT$libdir/libdbpool.so"
    check "no static libdbpool.a by default" test ! -e "$ROOT$libdir/libdbpool.a"
    check "dbpool.h is installed" test -f "$ROOT$includedir/dbpool.h"
    check "dbpool.pc is installed" test -f "$ROOT$pkgconfigdir/dbpool.pc"
    check "the sample configuration is in sysconfdir/dbpoold" test -f "$ROOT$dbpoolconfdir/dbpoold.conf"
    check "no configuration directly in sysconfdir" test ! -e "$ROOT$sysconfdir/dbpoold.conf"
    local page
    for page in man8/dbpoold.8 man5/dbpoold.conf.5 man1/dbpool.1 man3/libdbpool.3 man1/dbpool-migrate.1; do
        check "man page $page is installed" test -f "$ROOT$mandir/$page"
    done
    local b
    for b in sqlite postgres mysql; do
        check "the example migrations for $b are in dbpooldatadir/migrations/$b" \
            cmp -s "$TOP_SRCDIR/migrations/$b/000001_create_health_status_table.up.sql" \
            "$ROOT$dbpooldatadir/migrations/$b/000001_create_health_status_table.up.sql"
        check_eq "all six example migration files for $b are installed" \
            "$(ls "$ROOT$dbpooldatadir/migrations/$b" 2>/dev/null | grep -c '\.sql$')" 6
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

# await WHAT CONDITION...: poll the condition (10 ms steps) until it holds;
# 1 and a failed check WHAT when the daemon exits or 10 s pass first.
await() {
    local what=$1 deadline=$((SECONDS + 10))
    shift
    until "$@" >/dev/null 2>&1; do
        if ! kill -0 "$DAEMON_PID" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            fail "$what (within 10 s, while the daemon runs)"
            return 1
        fi
        sleep 0.01
    done
}

# Start the installed daemon and await a working session (deadline 10 s).
start_daemon() {
    "$ROOT$sbindir/dbpoold" -c "$WORK/dbpoold.conf" 2>"$WORK/dbpoold.log" &
    DAEMON_PID=$!
    await "the installed dbpoold answers" installed_dbpool -q -c 'select 1' || exit 1
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

# ---------------------------------------------------------------- under systemd

# The value of KEY= in an installed unit (the first one).
unit_value() {
    sed -n "s/^$2=//p" "$ROOT$systemdsystemunitdir/$1" | head -n 1
}

# The installed units: generated with the install paths (no @...@ left),
# and accepted by `systemd-analyze verify` with those paths moved under the
# install root (verify checks that ExecStart's program exists; a --root
# without systemd's own units and /bin/kill cannot load them).
check_units_verify() {
    local dir=$WORK/units unit out
    mkdir -p "$dir"
    for unit in dbpoold.service dbpoold.socket dbpoold-status.socket dbpool-migrate.service; do
        check "the installed $unit has every @...@ substituted" \
            test -z "$(grep -o '@[a-z_]*@' "$ROOT$systemdsystemunitdir/$unit")"
        sed -e "s|=$sbindir/|=$ROOT$sbindir/|" -e "s|=$bindir/|=$ROOT$bindir/|" \
            -e "s| $dbpoolconfdir/| $ROOT$dbpoolconfdir/|" \
            "$ROOT$systemdsystemunitdir/$unit" >"$dir/$unit"
    done
    check_eq "the installed dbpoold.service runs the installed dbpoold on the installed configuration" \
        "$(unit_value dbpoold.service ExecStart)" "$sbindir/dbpoold -c $dbpoolconfdir/dbpoold.conf"
    check_eq "the installed dbpool-migrate.service runs the installed dbpool-migrate on the installed examples" \
        "$(unit_value dbpool-migrate.service ExecStart | cut -d' ' -f1)" "$bindir/dbpool-migrate"
    check "the installed dbpool-migrate.service's default MIGRATIONS is the installed example" \
        grep -qF "MIGRATIONS=$dbpooldatadir/migrations/sqlite " "$ROOT$systemdsystemunitdir/dbpool-migrate.service"
    out=$(cd "$dir" && systemd-analyze verify --man=no ./dbpoold.service ./dbpoold.socket \
          ./dbpoold-status.socket ./dbpool-migrate.service 2>&1) || true
    check_eq "systemd-analyze verify accepts the installed units" "$out" ""
}

# A datagram socket at $WORK/notify, as NOTIFY_SOCKET: each message is a
# line of $WORK/notify.log, its lines joined by '|'.
start_notify_receiver() {
    cat >"$WORK/notify-recv.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

int main(int argc, char **argv)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char buf[4096];
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    ssize_t n;

    if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path) || fd < 0)
        return 2;
    strcpy(sa.sun_path, argv[1]);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return 1;
    while ((n = recv(fd, buf, sizeof(buf) - 1, 0)) >= 0) {
        buf[n] = '\0';
        for (char *p = buf; (p = strchr(p, '\n')) != NULL; p++)
            *p = '|';
        printf("%s\n", buf);
        fflush(stdout);
    }
    return 1;
}
C
    ${CC:-cc} -o "$WORK/notify-recv" "$WORK/notify-recv.c" >>"$WORK/cc.log" 2>&1 ||
        { fail "the notify receiver does not build"; return 1; }
    "$WORK/notify-recv" "$WORK/notify" >"$WORK/notify.log" &
    NOTIFY_PID=$!
    local deadline=$((SECONDS + 10))
    until [ -S "$WORK/notify" ]; do
        [ "$SECONDS" -lt "$deadline" ] || { fail "the notify receiver does not listen"; return 1; }
        sleep 0.01
    done
}

# The numbers of the messages (lines of notify.log) with the line $1.
notify_lines() {
    grep -nE "(^|\|)$1(\||\$)" "$WORK/notify.log" | cut -d: -f1
}

# Some message has the line $1.
notified() {
    [ -n "$(notify_lines "$1")" ]
}

# RELOADING=1 with MONOTONIC_USEC=, and a READY=1 (the second) after it.
reload_notified() {
    local reloading ready
    reloading=$(notify_lines 'RELOADING=1' | head -n 1)
    ready=$(notify_lines 'READY=1' | sed -n 2p)
    [ -n "$reloading" ] && [ -n "$ready" ] && [ "$reloading" -lt "$ready" ] &&
        sed -n "${reloading}p" "$WORK/notify.log" | grep -qE '(^|\|)MONOTONIC_USEC=[0-9]+(\||$)'
}

# The installed dbpoold as dbpoold.service starts it: ExecStart's command
# line (its paths under the install root), the sockets made by
# systemd-socket-activate with the installed socket units' names, the
# installed configuration as installed but for the SQLite file (an
# environment override, as a drop-in's Environment= would set it).
check_under_systemd() {
    if [ -z "$systemdsystemunitdir" ] || [ "$systemdsystemunitdir" = no ]; then
        echo "test_install.sh: the build installs no systemd units (--with-systemdsystemunitdir=no): not run under systemd"
        return
    fi
    check_units_verify
    if ! command -v systemd-socket-activate >/dev/null; then
        echo "test_install.sh: SKIP the run under systemd: systemd-socket-activate is not installed (Debian: systemd)"
        return
    fi
    local -a exec_start
    read -r -a exec_start <<<"$(unit_value dbpoold.service ExecStart)"
    exec_start[0]=$ROOT${exec_start[0]}
    exec_start[2]=$ROOT${exec_start[2]}
    local client_name status_name out rc=0 sock=$WORK/sa/dbpoold.sock status=$WORK/sa/status.sock
    client_name=$(unit_value dbpoold.socket FileDescriptorName)
    status_name=$(unit_value dbpoold-status.socket FileDescriptorName)
    mkdir -p "$WORK/sa"
    start_notify_receiver || return
    NOTIFY_SOCKET=$WORK/notify DBPOOLD_POOL_APP_FILE_PATH=$WORK/lib/sd.db \
        systemd-socket-activate -E NOTIFY_SOCKET -E DBPOOLD_POOL_APP_FILE_PATH \
        -l "$sock" --fdname="$client_name" -l "$status" --fdname="$status_name" \
        "${exec_start[@]}" 2>"$WORK/dbpoold-sd.log" &
    DAEMON_PID=$!
    await "systemd-socket-activate listens on both sockets" test -S "$sock" -a -S "$status" || return
    out=$(LD_LIBRARY_PATH="$ROOT$libdir" "$ROOT$bindir/dbpool" -S "$sock" -d app --csv \
          -c "select 40 + 2 as answer" 2>&1) || true
    check_eq "under systemd-socket-activate the installed dbpoold answers on the passed socket" \
        "$out" $'answer\n42'
    await "READY=1 on the notify socket" notified 'READY=1' || return
    out=$(curl -s --unix-socket "$status" -o /dev/null -w '%{http_code}' http://localhost/health || true)
    check_eq "the passed status socket serves /health" "$out" 200
    kill -HUP "$DAEMON_PID"
    await "a SIGHUP gives RELOADING=1 (with MONOTONIC_USEC=) and then READY=1" reload_notified
    check "the SIGHUP reloaded the configuration" grep -q "event=reload_done" "$WORK/dbpoold-sd.log"
    kill -TERM "$DAEMON_PID"
    wait "$DAEMON_PID" || rc=$?
    DAEMON_PID=
    check_eq "the installed dbpoold stops cleanly under systemd-socket-activate" "$rc" 0
    check "STOPPING=1 on SIGTERM" notified 'STOPPING=1'
    check "the passed client socket stays (it is systemd's)" test -S "$sock"
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
check_under_systemd
check_reinstall_and_uninstall
if [ "$FAILED" -ne 0 ]; then
    echo "test_install.sh: $FAILED of $CHECKS checks failed" >&2
    exit 1
fi
echo "test_install.sh: $CHECKS checks passed"
