#!/usr/bin/env bash
# scripts/quickstart.sh — install dependencies, build, and run dbpoold in the
# foreground on etc/dbpoold.conf (a SQLite pool; no database server needed).
# Once the daemon answers, the example schema (migrations/sqlite) is applied
# through it with dbpool-migrate, and its state shown: what a new user sees
# working in the first minute. Sockets and the database live in ./run so
# nothing needs root beyond apt.
#
# For tests/migrate/test_quickstart.sh: QUICKSTART_NO_SETUP=1 skips deps.sh
# and the build, QUICKSTART_BUILD=DIR takes the programs from DIR instead of
# ./build, QUICKSTART_RUN=DIR puts the sockets and the database in DIR
# instead of ./run.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${QUICKSTART_NO_SETUP:-0}" != 1 ]; then
    bash scripts/deps.sh
    bash scripts/build.sh build
fi
BUILD=${QUICKSTART_BUILD:-build}
RUN=${QUICKSTART_RUN:-$PWD/run}
mkdir -p "$RUN"
export DBPOOLD_DAEMON_SOCKET="$RUN/dbpoold.sock"
export DBPOOLD_DAEMON_STATUS_SOCKET="$RUN/status.sock"
export DBPOOLD_POOL_APP_FILE_PATH="$RUN/app.db"
MIGRATE="$BUILD/dbpool-migrate -S $DBPOOLD_DAEMON_SOCKET -d app -path migrations/sqlite"

# Runs beside the daemon (the shell's pid becomes dbpoold's through exec):
# awaits a working session, applies the migrations, shows the result.
apply_example_schema() {
    local daemon=$1 deadline=$((SECONDS + 30))
    until "$BUILD/dbpool" -S "$DBPOOLD_DAEMON_SOCKET" -q -c 'select 1' >/dev/null 2>&1; do
        kill -0 "$daemon" 2>/dev/null || return 0      # it failed to start: its log says why
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "quickstart: dbpoold did not answer within 30 s; migrations not applied" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "quickstart: applying the example schema (migrations/sqlite) through dbpoold:" >&2
    if ! $MIGRATE up; then
        echo "quickstart: dbpool-migrate up failed (above); the daemon keeps running" >&2
        return 1
    fi
    $MIGRATE status || true
    "$BUILD/dbpool" -S "$DBPOOLD_DAEMON_SOCKET" -c \
        "select type, name from sqlite_master where name not like 'sqlite_%' order by type desc, name"
    cat <<MSG
dbpoold: client socket  $DBPOOLD_DAEMON_SOCKET
dbpoold: status socket  $DBPOOLD_DAEMON_STATUS_SOCKET
dbpoold: database       $DBPOOLD_POOL_APP_FILE_PATH (pool "app", SQLite, schema version $($MIGRATE version 2>&1))
Try, in another terminal:
  $BUILD/dbpool -S $DBPOOLD_DAEMON_SOCKET -d app -c "insert into health_status (service, status) values ('web', 'ok')" -c "select * from health_status"
  $MIGRATE down 1
  curl -s --unix-socket $DBPOOLD_DAEMON_STATUS_SOCKET http://localhost/pools
Stop with Ctrl-C.
MSG
}

apply_example_schema $$ &
exec "$BUILD/dbpoold" -c etc/dbpoold.conf
