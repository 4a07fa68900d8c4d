#!/usr/bin/env bash
#
# mysql-harness.sh — a throwaway MariaDB server for the tests (the MySQL
# counterpart of tests/pg/pg-harness.sh).
#
#   mysql-harness.sh start DIR   mariadb-install-db (first time) and start a
#                                server in DIR, then print `export ...` lines
#                                on stdout, for eval:
#                                  eval "$(bash tests/mysql/mysql-harness.sh start /tmp/myt)"
#   mysql-harness.sh env DIR     print the same export lines for a running server
#   mysql-harness.sh stop DIR    stop the server (SIGTERM, then SIGKILL after
#                                60 s), remove DIR
#   mysql-harness.sh pause DIR   stop the server but keep DIR, so `resume`
#                                brings the same data back (tests of a
#                                database that goes away and returns)
#   mysql-harness.sh resume DIR  start a paused server again; prints the export
#                                lines like `start` (it is `start` on an existing DIR)
#   mysql-harness.sh crash DIR   SIGKILL the server (no shutdown; keeps DIR;
#                                `resume` recovers it)
#   mysql-harness.sh freeze DIR  SIGSTOP the server and wait until it is
#                                stopped: it keeps its connections but answers
#                                nothing (a hung or overloaded server)
#   mysql-harness.sh thaw DIR    SIGCONT a frozen server (harmless on one that
#                                is not frozen; `stop`, `pause` and `crash`
#                                work on a frozen server too)
#   mysql-harness.sh sql DIR     run the SQL on stdin as the server's root user
#                                (for tests that need a side channel)
#
# The server listens only on the Unix socket DIR/mysqld.sock
# (--skip-networking), so servers in different directories never collide and
# the system's MariaDB (/run/mysqld, port 3306) is never touched: every
# program runs with --no-defaults, no my.cnf is read. Durability is off
# (innodb_flush_log_at_trx_commit = 0, no doublewrite): the data is
# disposable.
#
# Users (all from localhost, i.e. the socket):
#   root        no password; the bootstrap administrator (`sql` uses it)
#   dbpool      password 'secret' (also in DIR/password, mode 0600, owned by
#               the calling user), ALL PRIVILEGES WITH GRANT OPTION - the
#               tests' user; it may KILL other sessions
#   dbpool_ro   password 'secret', SELECT only on dbpool_test - for tests of
#               refused writes and privilege errors
# Database dbpool_test, character set utf8mb4.
#
# The printed variables: DBPOOL_TEST_MYSQL_HOST (the socket path), _USER, _DB,
# _PASSWORD_FILE, and MYSQL_UNIX_PORT for the mariadb command-line client.
#
# mariadbd refuses to run as root, so as root (CI) it runs as the `mysql`
# system user (created by the mariadb-server package); DIR is chowned to it
# and made traversable. Not as root, the server runs as the calling user.
# The server is started through `setpriv`, which execs it, not through
# `runuser` or `su`: those stay as its parent and, being job-control aware,
# stop themselves when their child is stopped (a freeze) and never reap it
# until they are continued too. So mariadbd has no parent of ours: once it
# dies it may stay a zombie (a container's init may not reap orphans),
# which the harness counts as gone.
#
# Everything is idempotent: `start` on a running server only prints the
# environment; `stop` on a missing or half-started DIR is fine. Readiness is
# polled (mariadb-admin ping), never waited for with a fixed sleep. Progress
# and errors go to stderr, so stdout is safe to eval.
set -euo pipefail

START_DEADLINE_S=${MYSQL_START_DEADLINE_S:-60}
STOP_DEADLINE_S=${MYSQL_STOP_DEADLINE_S:-60}
PASSWORD=secret

say() { printf 'mysql-harness: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

usage() {
    cat >&2 <<'EOF'
usage: mysql-harness.sh start DIR   start a throwaway MariaDB in DIR; prints export lines
       mysql-harness.sh env DIR     print the export lines for the server in DIR
       mysql-harness.sh stop DIR    stop it and remove DIR
       mysql-harness.sh pause DIR   stop it, keep DIR
       mysql-harness.sh resume DIR  start a paused server again
       mysql-harness.sh crash DIR   SIGKILL it, keep DIR
       mysql-harness.sh freeze DIR  SIGSTOP it (it keeps its connections, answers nothing)
       mysql-harness.sh thaw DIR    SIGCONT a frozen server
       mysql-harness.sh sql DIR     run the SQL on stdin as root
EOF
    exit 2
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# Run a command as the server's owner.
as_owner() {
    if is_root; then
        runuser -u mysql -- "$@"
    else
        "$@"
    fi
}

ensure_mariadb_installed() {
    if command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; then
        return
    fi
    is_root || die "MariaDB is not installed (no mariadbd); install the mariadb-server package (scripts/deps.sh)"
    say "installing MariaDB (scripts/deps.sh would do the same)"
    bash "$(dirname "$0")/../../scripts/deps.sh" >&2 ||
        die "could not install mariadb-server; run scripts/deps.sh"
}

mariadbd_bin() {
    command -v mariadbd 2>/dev/null || echo /usr/sbin/mariadbd
}

# As root: hand DIR to the mysql user and make sure it can reach DIR.
prepare_dir_for_owner() {
    local dir=$1 p
    chmod 755 "$dir"
    is_root || return 0
    id mysql >/dev/null 2>&1 || die "the mysql system user does not exist (is the mariadb-server package installed?)"
    chown mysql: "$dir"
    p=$(dirname "$dir")
    while [ "$p" != "/" ]; do
        if ! runuser -u mysql -- test -x "$p"; then
            say "making $p traversable (o+x) for the mysql user"
            chmod o+x "$p"
        fi
        p=$(dirname "$p")
    done
}

print_env() {
    local dir=$1
    [ -f "$dir/password" ] || die "no server state in $dir (run start first)"
    printf 'export DBPOOL_TEST_MYSQL_HOST=%q DBPOOL_TEST_MYSQL_USER=dbpool DBPOOL_TEST_MYSQL_DB=dbpool_test DBPOOL_TEST_MYSQL_PASSWORD_FILE=%q MYSQL_UNIX_PORT=%q\n' \
        "$dir/mysqld.sock" "$dir/password" "$dir/mysqld.sock"
}

server_pid() {
    local dir=$1 pid
    [ -f "$dir/mysqld.pid" ] || return 1
    pid=$(cat "$dir/mysqld.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    # Only ours: the process must be a mariadbd on this data directory.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--datadir=$dir/data" || return 1
    echo "$pid"
}

server_running() { server_pid "$1" >/dev/null; }

# The state letter of a process (R, S, T, Z, ...); empty when it is gone.
proc_state() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    stat=${stat##*) }
    printf '%s' "${stat%% *}"
}

# Gone, or a zombie nobody reaps (see "runs as" above).
pid_gone() {
    local st
    st=$(proc_state "$1")
    [ -z "$st" ] || [ "$st" = Z ]
}

init_datadir() {
    local dir=$1
    say "mariadb-install-db in $dir/data"
    rm -rf "$dir/data"
    # A private tmpdir: bootstraps running at once in the shared /tmp can
    # collide on their temporary tables' names.
    as_owner mariadb-install-db --no-defaults --datadir="$dir/data" --tmpdir="$dir/tmp" \
        --auth-root-authentication-method=normal --skip-test-db \
        >"$dir/install.log" 2>&1 || {
        grep -E "ERROR|error" "$dir/install.log" | head -n 20 >&2
        die "mariadb-install-db failed (the log: $dir/install.log)"
    }
}

launch_server() {
    local dir=$1 owner=()
    rm -f "$dir/mysqld.pid"
    # setsid, setpriv and mariadbd exec each other: no process of ours stays
    # as the server's parent (see above). Every descriptor redirected: the
    # server must not hold the caller's stdout (a $(...) around `start`
    # would never end).
    is_root && owner=(setpriv --reuid=mysql --regid=mysql --init-groups --)
    setsid ${owner[@]+"${owner[@]}"} "$(mariadbd_bin)" --no-defaults \
        --datadir="$dir/data" --socket="$dir/mysqld.sock" --pid-file="$dir/mysqld.pid" \
        --log-error="$dir/mysqld.log" --skip-networking --skip-name-resolve \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
        --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 --innodb-buffer-pool-size=64M \
        --max-connections=500 --max-allowed-packet=64M --tmpdir="$dir/tmp" \
        </dev/null >>"$dir/mysqld.out" 2>&1 &
}

# Poll until the server answers on its socket; fail early if it died.
wait_ready() {
    local dir=$1 deadline
    deadline=$(( $(date +%s) + START_DEADLINE_S ))
    until mariadb-admin --no-defaults --socket="$dir/mysqld.sock" -uroot --connect-timeout=2 \
            ping >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            tail -n 30 "$dir/mysqld.log" >&2 || true
            die "server in $dir not ready after ${START_DEADLINE_S}s"
        fi
        if [ -s "$dir/mysqld.pid" ] && ! server_running "$dir"; then
            tail -n 30 "$dir/mysqld.log" >&2 || true
            die "mariadbd in $dir exited during start-up (log above)"
        fi
        sleep 0.1
    done
}

root_sql() {
    local dir=$1
    mariadb --no-defaults --socket="$dir/mysqld.sock" -uroot --batch --skip-column-names
}

create_users() {
    local dir=$1
    root_sql "$dir" >&2 <<EOF
CREATE DATABASE IF NOT EXISTS dbpool_test CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
CREATE USER IF NOT EXISTS 'dbpool'@'localhost' IDENTIFIED BY '$PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO 'dbpool'@'localhost' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'dbpool_ro'@'localhost' IDENTIFIED BY '$PASSWORD';
GRANT SELECT ON dbpool_test.* TO 'dbpool_ro'@'localhost';
EOF
    # The password file belongs to the calling user (who runs the daemon).
    (umask 077; printf '%s\n' "$PASSWORD" >"$dir/password")
    chmod 600 "$dir/password"
}

cmd_start() {
    local dir=$1
    ensure_mariadb_installed
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd -P)
    # Unix socket paths are limited to 107 bytes.
    [ ${#dir} -le 80 ] || die "directory path too long for a Unix socket: $dir"
    if server_running "$dir"; then
        say "server in $dir already running"
        print_env "$dir"
        return
    fi
    prepare_dir_for_owner "$dir"
    as_owner mkdir -p "$dir/tmp"
    [ -d "$dir/data/mysql" ] || init_datadir "$dir"
    say "starting MariaDB in $dir (socket $dir/mysqld.sock)"
    launch_server "$dir"
    wait_ready "$dir"
    create_users "$dir"
    print_env "$dir"
}

# SIGTERM (a clean shutdown) and wait for the process to go; SIGKILL after
# the deadline.
stop_server() {
    local dir=$1 pid deadline
    pid=$(server_pid "$dir") || return 0
    say "stopping MariaDB in $dir (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    kill -CONT "$pid" 2>/dev/null || true   # a frozen server must run to shut down
    deadline=$(( $(date +%s) + STOP_DEADLINE_S ))
    while ! pid_gone "$pid"; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            say "mariadbd $pid did not stop in ${STOP_DEADLINE_S}s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        sleep 0.05
    done
}

cmd_stop() {
    local dir=$1
    [ -d "$dir" ] || return 0
    dir=$(cd "$dir" && pwd -P)
    stop_server "$dir"
    rm -rf "$dir"
}

cmd_pause() {
    local dir=$1
    [ -d "$dir/data/mysql" ] || die "no server in $dir (run start first)"
    dir=$(cd "$dir" && pwd -P)
    server_running "$dir" || { say "server in $dir is not running"; return 0; }
    say "pausing MariaDB in $dir"
    stop_server "$dir"
}

cmd_crash() {
    local dir=$1 pid
    [ -d "$dir/data/mysql" ] || die "no server in $dir (run start first)"
    dir=$(cd "$dir" && pwd -P)
    pid=$(server_pid "$dir") || { say "server in $dir is not running"; return 0; }
    say "killing MariaDB in $dir (pid $pid, SIGKILL)"
    kill -KILL "$pid"
    while ! pid_gone "$pid"; do sleep 0.02; done
}

# SIGSTOP, then wait until the kernel shows the process stopped (the
# signal takes effect asynchronously): a test's next statement must meet a
# frozen server.
cmd_freeze() {
    local dir=$1 pid deadline
    [ -d "$dir/data/mysql" ] || die "no server in $dir (run start first)"
    dir=$(cd "$dir" && pwd -P)
    pid=$(server_pid "$dir") || die "no server running in $dir: nothing to freeze"
    say "freezing MariaDB in $dir (pid $pid, SIGSTOP)"
    kill -STOP "$pid"
    deadline=$(( $(date +%s) + 10 ))
    until [ "$(proc_state "$pid")" = T ]; do
        [ "$(date +%s)" -lt "$deadline" ] || die "mariadbd $pid did not stop after SIGSTOP"
        sleep 0.01
    done
}

cmd_thaw() {
    local dir=$1 pid
    [ -d "$dir/data/mysql" ] || die "no server in $dir (run start first)"
    dir=$(cd "$dir" && pwd -P)
    pid=$(server_pid "$dir") || { say "server in $dir is not running"; return 0; }
    say "thawing MariaDB in $dir (pid $pid, SIGCONT)"
    kill -CONT "$pid"
}

cmd_resume() {
    [ -d "$1/data/mysql" ] || die "no server in $1 (run start first)"
    cmd_start "$1"
}

cmd_sql() {
    local dir=$1
    dir=$(cd "$dir" && pwd -P)
    server_running "$dir" || die "no server running in $dir"
    root_sql "$dir"
}

[ $# -eq 2 ] || usage
case $1 in
start)  cmd_start "$2" ;;
env)    print_env "$(cd "$2" && pwd -P)" ;;
stop)   cmd_stop "$2" ;;
pause)  cmd_pause "$2" ;;
resume) cmd_resume "$2" ;;
crash)  cmd_crash "$2" ;;
freeze) cmd_freeze "$2" ;;
thaw)   cmd_thaw "$2" ;;
sql)    cmd_sql "$2" ;;
*)      usage ;;
esac
