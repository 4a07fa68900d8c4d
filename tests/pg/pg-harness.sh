#!/usr/bin/env bash
#
# pg-harness.sh — a throwaway PostgreSQL 15 server for the tests.
#
#   pg-harness.sh start DIR   initdb (first time) and start a server in DIR,
#                             then print `export PGHOST=... PGPORT=...` lines
#                             on stdout, for eval:
#                               eval "$(bash tests/pg/pg-harness.sh start /tmp/pgt)"
#   pg-harness.sh env DIR     print the same export lines for a running server
#   pg-harness.sh stop DIR    stop the server (pg_ctl stop -m fast), remove DIR
#   pg-harness.sh pause DIR   stop the server (pg_ctl stop -m fast) but keep DIR,
#                             so `resume` brings the same cluster back (tests of
#                             a database that goes away and returns)
#   pg-harness.sh resume DIR  start a paused server again; prints the export
#                             lines like `start` (it is `start` on an existing DIR)
#
# The server listens only on a Unix socket in DIR (listen_addresses = '');
# the port (54329, or $PGPORT_TEST) just names the socket file, so servers in
# different directories never collide. fsync is off: the data is disposable.
#
# Roles and authentication (pg_hba.conf, local connections only):
#   dbpool     LOGIN SUPERUSER, password 'secret', TRUST   - the tests' user;
#              superuser so tests can pg_terminate_backend() other sessions
#   dbpool_pw  LOGIN, password 'secret', SCRAM-SHA-256     - for testing
#              password authentication (right and wrong passwords)
#   postgres   the bootstrap superuser, TRUST
# Database dbpool_test is owned by dbpool.
#
# initdb refuses to run as root, so as root (CI) everything runs as the
# `postgres` system user (created by the postgresql package) through
# runuser; DIR is chowned to it and made traversable. Not as root, the
# server runs as the calling user.
#
# Everything is idempotent: `start` on a running server only prints the
# environment; `stop` on a missing or half-started DIR is fine. Progress and
# errors go to stderr, so stdout is safe to eval.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PORT=${PGPORT_TEST:-54329}
START_DEADLINE_S=${PG_START_DEADLINE_S:-60}

say() { printf 'pg-harness: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

usage() {
    cat >&2 <<'EOF'
usage: pg-harness.sh start DIR   start a throwaway PostgreSQL in DIR; prints export lines
       pg-harness.sh env DIR     print the export lines for the server in DIR
       pg-harness.sh stop DIR    stop it and remove DIR
       pg-harness.sh pause DIR   stop it, keep DIR
       pg-harness.sh resume DIR  start a paused server again
EOF
    exit 2
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# Run a command as the server's owner.
as_owner() {
    if is_root; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

ensure_postgres_installed() {
    if [ -x "$PGBIN/initdb" ] && [ -x "$PGBIN/pg_ctl" ]; then
        return
    fi
    is_root || die "PostgreSQL 15 is not installed ($PGBIN/initdb missing); install the postgresql package"
    say "installing PostgreSQL (apt-get install postgresql)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2
    apt-get install -y postgresql >&2
    [ -x "$PGBIN/initdb" ] || die "postgresql is installed but $PGBIN/initdb is missing (not version 15?); set PGBIN"
}

# As root: hand DIR to the postgres user and make sure it can reach DIR.
prepare_dir_for_owner() {
    local dir=$1 p
    chmod 755 "$dir"
    is_root || return 0
    id postgres >/dev/null 2>&1 || die "the postgres system user does not exist (is the postgresql package installed?)"
    chown postgres: "$dir"
    p=$(dirname "$dir")
    while [ "$p" != "/" ]; do
        if ! runuser -u postgres -- test -x "$p"; then
            say "making $p traversable (o+x) for the postgres user"
            chmod o+x "$p"
        fi
        p=$(dirname "$p")
    done
}

print_env() {
    local dir=$1 port
    port=$(cat "$dir/port" 2>/dev/null) || die "no server state in $dir (run start first)"
    printf 'export PGHOST=%q PGPORT=%q PGUSER=dbpool PGDATABASE=dbpool_test\n' "$dir" "$port"
}

server_running() {
    local dir=$1
    [ -f "$dir/data/postmaster.pid" ] && as_owner "$PGBIN/pg_ctl" status -D "$dir/data" >/dev/null 2>&1
}

init_cluster() {
    local dir=$1
    say "initdb in $dir/data"
    as_owner "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    as_owner tee -a "$dir/data/postgresql.conf" >/dev/null <<EOF

# pg-harness.sh: throwaway test server
listen_addresses = ''
unix_socket_directories = '$dir'
port = $PORT
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
password_encryption = 'scram-sha-256'
EOF
    as_owner tee "$dir/data/pg_hba.conf" >/dev/null <<'EOF'
# pg-harness.sh: Unix socket only. dbpool_pw tests password authentication.
local   all   dbpool_pw   scram-sha-256
local   all   all         trust
EOF
}

wait_ready() {
    local dir=$1 port deadline
    port=$(cat "$dir/port")
    deadline=$(( $(date +%s) + START_DEADLINE_S ))
    until "$PGBIN/pg_isready" -q -h "$dir" -p "$port" -d postgres -U postgres; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            tail -n 30 "$dir/postgres.log" >&2 || true
            die "server in $dir not ready after ${START_DEADLINE_S}s"
        fi
        sleep 0.1
    done
}

create_roles() {
    local dir=$1 port
    port=$(cat "$dir/port")
    as_owner "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres >&2 <<'EOF'
SELECT 'CREATE ROLE dbpool' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dbpool')
\gexec
ALTER ROLE dbpool LOGIN SUPERUSER PASSWORD 'secret';
SELECT 'CREATE ROLE dbpool_pw' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dbpool_pw')
\gexec
ALTER ROLE dbpool_pw LOGIN PASSWORD 'secret';
SELECT 'CREATE DATABASE dbpool_test OWNER dbpool'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'dbpool_test')
\gexec
EOF
}

cmd_start() {
    local dir=$1
    ensure_postgres_installed
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
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        rm -rf "$dir/data"
        echo "$PORT" >"$dir/port"
        init_cluster "$dir"
    fi
    [ -f "$dir/port" ] || echo "$PORT" >"$dir/port"
    say "starting PostgreSQL in $dir (socket $dir/.s.PGSQL.$(cat "$dir/port"))"
    as_owner "$PGBIN/pg_ctl" start -D "$dir/data" -l "$dir/postgres.log" -w -t "$START_DEADLINE_S" \
        >&2 || { tail -n 30 "$dir/postgres.log" >&2 || true; die "pg_ctl start failed"; }
    wait_ready "$dir"
    create_roles "$dir"
    print_env "$dir"
}

cmd_stop() {
    local dir=$1
    [ -d "$dir" ] || return 0
    dir=$(cd "$dir" && pwd -P)
    if [ -f "$dir/data/postmaster.pid" ]; then
        say "stopping PostgreSQL in $dir"
        as_owner "$PGBIN/pg_ctl" stop -D "$dir/data" -m fast -w -t 60 >&2 || say "pg_ctl stop failed; removing $dir anyway"
    fi
    rm -rf "$dir"
}

cmd_pause() {
    local dir=$1
    [ -f "$dir/data/PG_VERSION" ] || die "no cluster in $dir (run start first)"
    dir=$(cd "$dir" && pwd -P)
    if server_running "$dir"; then
        say "pausing PostgreSQL in $dir"
        as_owner "$PGBIN/pg_ctl" stop -D "$dir/data" -m fast -w -t 60 >&2 || die "pg_ctl stop failed"
    else
        say "server in $dir is not running"
    fi
}

cmd_resume() {
    [ -f "$1/data/PG_VERSION" ] || die "no cluster in $1 (run start first)"
    cmd_start "$1"
}

[ $# -eq 2 ] || usage
case $1 in
start)  cmd_start "$2" ;;
env)    print_env "$2" ;;
stop)   cmd_stop "$2" ;;
pause)  cmd_pause "$2" ;;
resume) cmd_resume "$2" ;;
*)      usage ;;
esac
