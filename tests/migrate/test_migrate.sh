#!/usr/bin/env bash
# test_migrate.sh — dbpool-migrate end to end: every command against a real
# dbpoold and a real database, asserting golang-migrate's output lines, exit
# codes and the contents of schema_migrations and schema_migrations_history.
# The backend comes from the environment like the other suites:
#   (nothing)                          SQLite (make check)
#   DBPOOL_TEST_BACKEND=postgres + DBPOOL_TEST_PG_HOST/_PORT/_DB/_USER
#                                      (tests/pg/run-pg-tests.sh)
#   DBPOOL_TEST_BACKEND=mysql + DBPOOL_TEST_MYSQL_HOST/_USER/_DB/_PASSWORD_FILE
#                                      (tests/mysql/run-mysql-tests.sh)
# On PostgreSQL and MySQL the test creates a database of its own (through a
# second pool on the harness's database) and drops it at the end, so it
# shares the server with nothing. Every check runs; exits 1 if any failed.
#
#   DBPOOLD_BIN=$PWD/build/dbpoold DBPOOL_BIN=$PWD/build/dbpool \
#       DBPOOL_MIGRATE_BIN=$PWD/build/dbpool-migrate bash tests/migrate/test_migrate.sh
set -euo pipefail

: "${DBPOOLD_BIN:?set DBPOOLD_BIN to the dbpoold binary (make check does)}"
: "${DBPOOL_BIN:?set DBPOOL_BIN to the dbpool binary (make check does)}"
: "${DBPOOL_MIGRATE_BIN:?set DBPOOL_MIGRATE_BIN to the dbpool-migrate binary (make check does)}"
BACKEND=${DBPOOL_TEST_BACKEND:-sqlite}
command -v jq >/dev/null || { echo "test_migrate.sh: jq is required" >&2; exit 1; }
command -v curl >/dev/null || { echo "test_migrate.sh: curl is required" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dbpool-migrate.XXXXXX")
SOCK=$WORK/d.sock
MIG=$WORK/migrations
DB=dbpool_migrate_$$
DAEMON_PID=
BG_PIDS=()
# shellcheck source=SCRIPTDIR/../checks.sh
. "$(cd "$(dirname "$0")" && pwd)/../checks.sh"

drop_own_database() {
    case $BACKEND in
        postgres) "$DBPOOL_BIN" -S "$SOCK" -d boot -q -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" ;;
        mysql) "$DBPOOL_BIN" -S "$SOCK" -d boot -q -c "DROP DATABASE IF EXISTS $DB" ;;
    esac
}

cleanup() {
    for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        drop_own_database >/dev/null 2>&1 || true
        kill "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
    fi
    if [ "$FAILED" -ne 0 ] && [ -f "$WORK/dbpoold.log" ]; then
        echo "---- dbpoold log ----" >&2
        tail -n 40 "$WORK/dbpoold.log" >&2
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# ---------------------------------------------------------------- helpers

# run CMD...: runs it (stdin from $INPUT, else nothing); sets RC, OUT and ERR.
run() {
    RC=0
    "$@" <"${INPUT:-/dev/null}" >"$WORK/out" 2>"$WORK/err" || RC=$?
    OUT=$(cat "$WORK/out")
    ERR=$(cat "$WORK/err")
}

# expect_rc NAME RC_WANTED: the last run's exit status.
expect_rc() {
    CHECKS=$((CHECKS + 1))
    [ "$RC" -eq "$2" ] || fail "$1" "exit $RC (wanted $2)" "stdout: $OUT" "stderr: $ERR"
}

# expect_err NAME PATTERN: the last run's stderr matches the extended regex.
expect_err() {
    CHECKS=$((CHECKS + 1))
    grep -Eq -- "$2" <<<"$ERR" || fail "$1" "stderr does not match /$2/:" "$ERR"
}

# expect_out NAME PATTERN: the last run's stdout matches the extended regex.
expect_out() {
    CHECKS=$((CHECKS + 1))
    grep -Eq -- "$2" <<<"$OUT" || fail "$1" "stdout does not match /$2/:" "$OUT"
}

migrate() { "$DBPOOL_MIGRATE_BIN" -S "$SOCK" -d app -path "$MIG" "$@"; }

# bg_migrate ARGS...: dbpool-migrate in the background (the program itself,
# not a subshell, so that a signal reaches it); its pid in BG.
bg_migrate() {
    "$DBPOOL_MIGRATE_BIN" -S "$SOCK" -d app -path "$MIG" "$@" >"$WORK/a.out" 2>"$WORK/a.err" &
    BG=$!
    BG_PIDS+=("$BG")
}

# sql SQL: the rows of SQL on the app pool as CSV, without the header;
# booleans as 0/1 whatever the backend sends.
sql() {
    "$DBPOOL_BIN" -S "$SOCK" -d app -q --csv -c "$1" | tail -n +2 |
        sed -E 's/(^|,)(t|true)(,|$)/\11\3/g; s/(^|,)(f|false)(,|$)/\10\3/g'
}

# The schema_migrations row as "version,dirty" ("" when there is none).
version_row() { sql "SELECT version, dirty FROM schema_migrations"; }

has_table() {
    case $BACKEND in
        sqlite) sql "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='$1'" ;;
        postgres) sql "SELECT count(*) FROM information_schema.tables WHERE table_schema=current_schema() AND table_name='$1'" ;;
        mysql) sql "SELECT count(*) FROM information_schema.tables WHERE table_schema=DATABASE() AND table_name='$1'" ;;
    esac
}

# await_sql NAME SQL WANTED: polls until SQL yields WANTED (deadline 20 s).
await_sql() {
    local deadline=$((SECONDS + 20))
    until [ "$(sql "$2" 2>/dev/null)" = "$3" ]; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            fail "$1" "\"$2\" never gave \"$3\" (last: $(sql "$2" 2>&1))"
            return 1
        fi
        sleep 0.02
    done
}

# slow_sql N: a statement that keeps the server busy for about N seconds
# (on SQLite N times 7 million rows of a recursive CTE: about N seconds
# on an idle machine, longer on a busy one).
slow_sql() {
    case $BACKEND in
        sqlite) echo "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $(($1 * 7000000))) SELECT count(*) FROM c;" ;;
        postgres) echo "SELECT pg_sleep($1);" ;;
        mysql) echo "SELECT SLEEP($1);" ;;
    esac
}

pool_conf() {
    case $BACKEND in
        sqlite) echo "{ name = \"app\"; type = \"sqlite\"; sqlite = { filePath = \"$WORK/app.db\"; maxOpenConns = 3; }; }" ;;
        postgres) echo "{ name = \"$1\"; type = \"postgres\"; postgres = { host = \"$DBPOOL_TEST_PG_HOST\"; port = ${DBPOOL_TEST_PG_PORT:-5432}; name = \"$2\"; username = \"$DBPOOL_TEST_PG_USER\"; maxOpenConns = 8; }; }" ;;
        mysql) echo "{ name = \"$1\"; type = \"mysql\"; mysql = { host = \"$DBPOOL_TEST_MYSQL_HOST\"; name = \"$2\"; username = \"$DBPOOL_TEST_MYSQL_USER\"; passwordFile = \"$DBPOOL_TEST_MYSQL_PASSWORD_FILE\"; maxOpenConns = 8; }; }" ;;
    esac
}

# write_config POOLS: the daemon's configuration with the given pools.
write_config() {
    cat >"$WORK/dbpoold.conf" <<EOF
daemon = { socket = "$SOCK"; statusSocket = "$WORK/s.sock"; logLevel = "info"; shutdownTimeout = "5s"; };
pools = ( $1 );
EOF
}

start_daemon() {
    "$DBPOOLD_BIN" -c "$WORK/dbpoold.conf" 2>>"$WORK/dbpoold.log" &
    DAEMON_PID=$!
    local deadline=$((SECONDS + 15))
    until "$DBPOOL_BIN" -S "$SOCK" -d "$1" -q -c 'select 1' >/dev/null 2>&1; do
        if ! kill -0 "$DAEMON_PID" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            fail "dbpoold did not start (pool $1)"
            exit 1
        fi
        sleep 0.02
    done
}

stop_daemon() {
    kill "$DAEMON_PID"
    wait "$DAEMON_PID" 2>/dev/null || true
    DAEMON_PID=
}

# SQLite: one pool. Servers: first a "boot" pool on the harness's database
# to create our own, then "app" on ours beside it.
setup() {
    local harness_db
    if [ "$BACKEND" = sqlite ]; then
        write_config "$(pool_conf app)"
        start_daemon app
        return
    fi
    if [ "$BACKEND" = postgres ]; then harness_db=$DBPOOL_TEST_PG_DB; else harness_db=$DBPOOL_TEST_MYSQL_DB; fi
    write_config "$(pool_conf boot "$harness_db")"
    start_daemon boot
    "$DBPOOL_BIN" -S "$SOCK" -d boot -q -c "CREATE DATABASE $DB"
    stop_daemon
    write_config "$(pool_conf boot "$harness_db"), $(pool_conf app "$DB")"
    start_daemon app
}

# write_migration FILE CONTENT
write_migration() { printf '%s\n' "$2" >"$MIG/$1"; }

base_migrations() {
    rm -rf "$MIG"
    mkdir -p "$MIG"
    write_migration 000001_create_users.up.sql "CREATE TABLE mt_users (id int primary key, name varchar(40));
INSERT INTO mt_users (id, name) VALUES (1, 'semi;colon');  -- a comment; with a semicolon"
    write_migration 000001_create_users.down.sql "DROP TABLE mt_users;"
    write_migration 000002_add_orders.up.sql "CREATE TABLE mt_orders (id int primary key);
CREATE TABLE mt_items (id int primary key);"
    write_migration 000002_add_orders.down.sql "DROP TABLE mt_items;
DROP TABLE mt_orders;"
    # a gap: 3 and 4 do not exist
    write_migration 000005_index.up.sql "CREATE INDEX mt_users_name ON mt_users (name);"
    write_migration 000005_index.down.sql "DROP INDEX mt_users_name$([ "$BACKEND" = mysql ] && echo ' ON mt_users');"
}

# ---------------------------------------------------------------- usage

test_usage() {
    run "$DBPOOL_MIGRATE_BIN"
    expect_rc "no command: usage error" 2
    expect_err "no command prints the usage" '^Usage: dbpool-migrate OPTIONS COMMAND'
    run "$DBPOOL_MIGRATE_BIN" -S "$SOCK" frobnicate
    expect_rc "an unknown command is a usage error" 2
    run "$DBPOOL_MIGRATE_BIN" -nosuchflag up
    expect_rc "an unknown flag is a usage error" 2
    expect_err "an unknown flag is named like Go's flag package" 'flag provided but not defined: -nosuchflag'
    run "$DBPOOL_MIGRATE_BIN" -help
    expect_rc "-help exits 0" 0
    expect_err "-help lists the commands" 'goto \[--dry-run\] V'
    run "$DBPOOL_MIGRATE_BIN" -version
    expect_rc "-version exits 0" 0
    expect_err "-version prints a version" '^[0-9]+\.[0-9]+'
    run "$DBPOOL_MIGRATE_BIN" -database "postgres://x" up
    expect_rc "-database is refused" 1
    expect_err "-database: says to name the pool" 'name the pool with -d POOL'
    run migrate goto
    expect_rc "goto without V" 1
    check_eq "goto without V: golang-migrate's message" "$ERR" "error: please specify version argument V"
    run migrate up x
    check_eq "up with a bad N" "$ERR" "error: can't read limit argument N"
    run migrate force -2
    check_eq "force below -1" "$ERR" "error: argument V must be >= -1"
    run migrate down -all 1
    check_eq "down -all with N" "$ERR" "error: -all cannot be used with other arguments"
    run "$DBPOOL_MIGRATE_BIN" -S "$SOCK" -d app -path "$WORK/nonexistent" up
    expect_rc "a missing -path directory" 1
    expect_err "a missing -path is named" 'nonexistent: No such file or directory'
    run "$DBPOOL_MIGRATE_BIN" -S "$SOCK" -d nosuchpool -path "$MIG" version
    expect_rc "an unknown pool" 1
    expect_err "an unknown pool is named" 'nosuchpool'
}

# ---------------------------------------------------------------- create

test_create() {
    local d=$WORK/created
    run "$DBPOOL_MIGRATE_BIN" create -ext sql -dir "$d" -seq -digits 3 first
    expect_rc "create -seq" 0
    check_eq "create prints the absolute paths" "$ERR" "$d/001_first.up.sql
$d/001_first.down.sql"
    run "$DBPOOL_MIGRATE_BIN" create -ext .sql -dir "$d" -seq -digits 3 second
    check_eq "create -seq counts on" "$(cd "$d" && ls | tr '\n' ' ')" \
        "001_first.down.sql 001_first.up.sql 002_second.down.sql 002_second.up.sql "
    run "$DBPOOL_MIGRATE_BIN" create -ext sql -dir "$d" -seq -digits 1 x
    : # 3 fits in one digit
    expect_rc "create -seq -digits 1 while 3 fits" 0
    touch "$d/9_nine.up.sql"
    run "$DBPOOL_MIGRATE_BIN" create -ext sql -dir "$d" -seq -digits 1 y
    expect_rc "create -seq past the digits" 1
    check_eq "the sequence overflow message" "$ERR" "error: Next sequence number 10 too large. At most 1 digits are allowed"
    run "$DBPOOL_MIGRATE_BIN" create -dir "$d" z
    check_eq "create without -ext" "$ERR" "error: -ext flag must be specified"
    run "$DBPOOL_MIGRATE_BIN" create -ext sql
    check_eq "create without a name" "$ERR" "error: please specify name"
    run "$DBPOOL_MIGRATE_BIN" create -ext sql -dir "$d/ts" stamp
    expect_rc "create with a timestamp" 0
    check_eq "a timestamp version has 14 digits (20060102150405)" \
        "$(ls "$d/ts" | grep -cE '^[0-9]{14}_stamp\.(up|down)\.sql$')" 2
    run "$DBPOOL_MIGRATE_BIN" create -ext sql -dir "$d/ts" -format 2006 dup
    run "$DBPOOL_MIGRATE_BIN" create -ext sql -dir "$d/ts" -format 2006 dup
    expect_rc "a duplicate version" 1
    expect_err "a duplicate version is refused" "^error: duplicate migration version: $(date -u +%Y)$"
    run "$DBPOOL_MIGRATE_BIN" create -ext sql -dir "$d" -seq -format unix w
    check_eq "-seq and -format" "$ERR" "error: The seq and format options are mutually exclusive"
}

# ---------------------------------------------------------------- up, down, version

test_tables_created() {
    run migrate version
    expect_rc "version of a fresh database" 1
    check_eq "version of a fresh database" "$ERR" "error: no migration"
    check_eq "schema_migrations exists" "$(has_table schema_migrations)" 1
    check_eq "schema_migrations_history exists" "$(has_table schema_migrations_history)" 1
    case $BACKEND in
        sqlite)
            check_eq "SQLite: golang-migrate's DDL" \
                "$(sql "SELECT sql FROM sqlite_master WHERE name IN ('schema_migrations','version_unique') ORDER BY type DESC" | sed -E 's/^"(.*)"$/\1/')" \
                "CREATE TABLE schema_migrations (version uint64,dirty bool)
CREATE UNIQUE INDEX version_unique ON schema_migrations (version)" ;;
        postgres)
            check_eq "PostgreSQL: golang-migrate's columns" \
                "$(sql "SELECT column_name || ' ' || data_type || ' ' || is_nullable FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'schema_migrations' ORDER BY ordinal_position")" \
                "version bigint NO
dirty boolean NO"
            check_eq "PostgreSQL: the primary key is version" \
                "$(sql "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'schema_migrations'::regclass AND i.indisprimary")" \
                "version" ;;
        mysql)
            check_eq "MySQL: golang-migrate's columns" \
                "$(sql "SELECT CONCAT(column_name, ' ', column_type, ' ', is_nullable, ' ', column_key) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'schema_migrations' ORDER BY ordinal_position")" \
                "version bigint(20) NO PRI
dirty tinyint(1) NO " ;;
    esac
}

test_up_down() {
    run migrate up 1
    expect_rc "up 1" 0
    expect_err "up 1 prints golang-migrate's line" '^1/u create_users \([0-9.]+(ns|µs|ms|s)\)$'
    check_eq "after up 1" "$(version_row)" "1,0"
    check_eq "the migration's data" "$(sql "SELECT name FROM mt_users")" "semi;colon"
    run migrate version
    check_eq "version after up 1" "$ERR" "1"
    run migrate up
    expect_rc "up" 0
    check_eq "up runs the rest, over the gap" "$(sed -E 's/ \(.*\)$//' <<<"$ERR")" "2/u add_orders
5/u index"
    check_eq "after up" "$(version_row)" "5,0"
    run migrate up
    expect_rc "up again" 0
    check_eq "up again: no change" "$ERR" "no change"
    run migrate up 1
    expect_rc "up 1 at the end" 1
    check_eq "up 1 at the end" "$ERR" "error: file does not exist"
    run migrate down 1
    expect_rc "down 1" 0
    expect_err "down 1 prints golang-migrate's line" '^5/d index \('
    check_eq "after down 1" "$(version_row)" "2,0"
    run migrate down 5
    expect_rc "down past the first" 1
    check_eq "down past the first: lines, then the short limit" "$(sed -E 's/ \(.*\)$//' <<<"$ERR")" "2/d add_orders
1/d create_users
error: limit 3 short"
    check_eq "after down to nothing: no row" "$(version_row)" ""
    check_eq "the down migrations ran" "$(has_table mt_users)" 0
    run migrate up 7
    expect_rc "up 7 with three files" 1
    check_eq "up 7: three run, then the short limit" "$(sed -E 's/ \(.*\)$//' <<<"$ERR")" "1/u create_users
2/u add_orders
5/u index
error: limit 4 short"
    INPUT=<(echo n) run migrate down
    expect_rc "bare down, answered n" 1
    check_eq "bare down asks, and gives up on n" "$ERR" "Are you sure you want to apply all down migrations? [y/N]
Not applying all down migrations"
    check_eq "bare down answered n changed nothing" "$(version_row)" "5,0"
    INPUT=<(echo y) run migrate down
    expect_rc "bare down, answered y" 0
    expect_err "bare down answered y applies all" '^1/d create_users'
    run migrate version
    check_eq "version after down all" "$ERR" "error: no migration"
    run migrate down -all
    check_eq "down -all at nothing: no change" "$ERR" "no change"
}

test_goto_force() {
    run migrate goto 2
    expect_rc "goto 2" 0
    check_eq "goto 2 from nothing" "$(sed -E 's/ \(.*\)$//' <<<"$ERR")" "1/u create_users
2/u add_orders"
    run migrate goto 3
    expect_rc "goto a version without a file" 1
    expect_err "goto 3: golang-migrate's message" '^error: no migration found for version 3'
    run migrate goto 1
    check_eq "goto 1 goes down" "$(sed -E 's/ \(.*\)$//' <<<"$ERR")" "2/d add_orders"
    run migrate goto 1
    check_eq "goto the current version" "$ERR" "no change"
    run migrate force 5
    expect_rc "force 5" 0
    check_eq "force writes the row" "$(version_row)" "5,0"
    run migrate force -1
    expect_rc "force -1" 0
    check_eq "force -1 empties the table" "$(version_row)" ""
    run migrate force 1
    check_eq "force back to 1" "$(version_row)" "1,0"
}

# A row written by hand as golang-migrate leaves it (dirty), then continued.
test_dirty_by_hand() {
    sql "DELETE FROM schema_migrations" >/dev/null
    if [ "$BACKEND" = postgres ]; then
        sql "INSERT INTO schema_migrations (version, dirty) VALUES (2, true)" >/dev/null
    else
        sql "INSERT INTO schema_migrations (version, dirty) VALUES (2, 1)" >/dev/null
    fi
    run migrate up
    expect_rc "up on a dirty database" 1
    check_eq "up on a dirty database" "$ERR" "error: Dirty database version 2. Fix and force version."
    run migrate version
    check_eq "version of a dirty database" "$ERR" "2 (dirty)"
    expect_rc "version of a dirty database exits 0" 0
    run migrate status
    expect_rc "status on a dirty database" 3
    expect_err "status says dirty" '^dirty: version 2'
    sql "CREATE TABLE mt_orders (id int primary key)" >/dev/null
    sql "CREATE TABLE mt_items (id int primary key)" >/dev/null
    run migrate force 2
    run migrate up
    expect_rc "up after force" 0
    check_eq "up after force continues at 5" "$(sed -E 's/ \(.*\)$//' <<<"$ERR")" "5/u index"
}

# ---------------------------------------------------------------- failures, transactions

test_failing_migration() {
    write_migration 000006_breaks.up.sql "CREATE TABLE mt_six (x int);
SELECT * FROM mt_no_such_table;"
    write_migration 000006_breaks.down.sql "DROP TABLE mt_six;"
    run migrate up
    expect_rc "a failing migration" 1
    expect_err "the failure names the statement and its line" '^error: migration failed: .* in line 2: SELECT \* FROM mt_no_such_table'
    if [ "$BACKEND" = mysql ]; then
        check_eq "MySQL: golang-migrate's behaviour, dirty" "$(version_row)" "6,1"
        check_eq "MySQL: the first statement stays" "$(has_table mt_six)" 1
        expect_err "MySQL: says how to recover" 'now dirty at version 6.*force'
        sql "DROP TABLE mt_six" >/dev/null
        run migrate force 5
    else
        expect_err "rolled back, and says so" 'rolled back: the database is unchanged and not dirty'
        check_eq "in a transaction: still at 5, not dirty" "$(version_row)" "5,0"
        check_eq "in a transaction: the first statement rolled back" "$(has_table mt_six)" 0
    fi
    # opting out of the transaction: golang-migrate's dirty behaviour everywhere
    write_migration 000006_breaks.up.sql "-- dbpool:no-transaction
CREATE TABLE mt_six (x int);
SELECT * FROM mt_no_such_table;"
    run migrate up
    expect_rc "a failing no-transaction migration" 1
    check_eq "no-transaction: dirty at 6" "$(version_row)" "6,1"
    check_eq "no-transaction: the first statement stays" "$(has_table mt_six)" 1
    sql "DROP TABLE mt_six" >/dev/null
    write_migration 000006_breaks.up.sql "CREATE TABLE mt_six (x int);"
    run migrate force 5
    run migrate up
    expect_rc "up after the fix and force" 0
    check_eq "at 6 after the fix" "$(version_row)" "6,0"
}

# ---------------------------------------------------------------- history, status, dry run

test_history_and_status() {
    local sum
    sum=$(sha256sum "$MIG/000006_breaks.up.sql" | cut -d' ' -f1)
    check_eq "the history row of 6: direction, checksum, who" \
        "$(sql "SELECT version, name, direction, checksum FROM schema_migrations_history WHERE version = 6 ORDER BY id DESC LIMIT 1")" \
        "6,breaks,up,$sum"
    expect_out_by=$(sql "SELECT applied_by FROM schema_migrations_history ORDER BY id DESC LIMIT 1")
    check_eq "applied_by is user@host" "$expect_out_by" "$(id -un)@$(hostname)"
    check_eq "force is recorded" "$(sql "SELECT count(*) FROM schema_migrations_history WHERE direction = 'force'")" \
        "$(sql "SELECT count(*) FROM schema_migrations_history WHERE direction = 'force' AND checksum = ''")"
    run migrate status
    expect_rc "status, all applied" 0
    expect_out "status: the version" '^database version: 6$'
    expect_out "status: applied" '^6 +applied +breaks'
    write_migration 000007_later.up.sql "CREATE TABLE mt_seven (x int);"
    run migrate status
    expect_rc "status with a pending migration" 0
    expect_out "status: pending" '^7 +pending +later'
    # drift: an applied file edited afterwards
    write_migration 000006_breaks.up.sql "CREATE TABLE mt_six (x int, y int);"
    run migrate status
    expect_rc "status with a changed file" 3
    expect_out "status: changed" '^6 +CHANGED +breaks'
    expect_err "status explains the change" '^changed: version 6 \(breaks\)'
    write_migration 000006_breaks.up.sql "CREATE TABLE mt_six (x int);"
    # a file numbered below the current version that never ran
    write_migration 000003_forgotten.up.sql "CREATE TABLE mt_three (x int);"
    run migrate status
    expect_rc "status with a skipped migration" 3
    expect_out "status: skipped" '^3 +SKIPPED +forgotten'
    expect_err "status explains the skip" '^skipped: version 3 \(forgotten\)'
    rm "$MIG/000003_forgotten.up.sql"
    # dry run
    run migrate up --dry-run
    expect_rc "up --dry-run" 0
    check_eq "up --dry-run says what would run" "$ERR" "7/u later (dry run: 1 statement, $([ "$BACKEND" = mysql ] && echo without || echo in) a transaction)"
    check_eq "up --dry-run ran nothing" "$(version_row),$(has_table mt_seven)" "6,0,0"
    run migrate -verbose up --dry-run
    expect_err "-verbose up --dry-run lists the statements" 'Would execute line 1: CREATE TABLE mt_seven \(x int\)$'
    expect_err "-verbose ends with the time taken" 'Finished after [0-9.]+(µs|ms|s)$'
    run migrate goto --dry-run 2
    expect_err "goto --dry-run" '^6/d breaks \(dry run'
    check_eq "goto --dry-run ran nothing" "$(version_row)" "6,0"
    run migrate up
    check_eq "up after the dry run" "$(version_row)" "7,0"
}

test_duplicates() {
    write_migration 07_again.up.sql "SELECT 1;"
    run migrate up
    expect_rc "a duplicate migration file" 1
    expect_err "a duplicate migration file is named" 'duplicate migration file: 07_again.up.sql|duplicate migration file: 000007_later.up.sql'
    rm "$MIG/07_again.up.sql"
}

# ---------------------------------------------------------------- concurrency, signals

# slow_pair [N]: 8 is a no-transaction migration (its dirty row is visible
# while it runs) that keeps the server busy for N seconds (3); 9 follows it.
slow_pair() {
    write_migration 000008_slow.up.sql "-- dbpool:no-transaction
$(slow_sql "${1:-3}")"
    write_migration 000008_slow.down.sql "SELECT 1;"
    write_migration 000009_after.up.sql "CREATE TABLE mt_nine (x int);"
    write_migration 000009_after.down.sql "DROP TABLE mt_nine;"
}

test_two_at_once() {
    slow_pair
    bg_migrate up
    local a=$BG
    await_sql "the first migrator runs 8" "SELECT version, dirty FROM schema_migrations" "8,1" || return 0
    run migrate -lock-timeout 300 up
    local b_rc=$RC b_err=$ERR
    local a_rc=0
    wait "$a" || a_rc=$?
    check_eq "the first migrator applied 8 and 9" "$a_rc:$(sed -E 's/ \(.*\)$//' "$WORK/a.err" | tr '\n' ' ')" "0:8/u slow 9/u after "
    check_eq "the second waited for the lock, then found nothing to do" "$b_rc:$b_err" "0:no change"
    check_eq "at 9" "$(version_row)" "9,0"
}

# golang_lock_key NAME...: golang-migrate's GenerateAdvisoryLockId, computed
# here independently: the CRC-32 of the names joined by NUL bytes (gzip's
# trailer holds the CRC-32 of its input), times 1486364155, mod 2^32.
golang_lock_key() {
    local crc first=1 n
    crc=$(for n in "$@"; do
              [ $first -eq 1 ] || printf '\0'
              first=0
              printf '%s' "$n"
          done | gzip -c | tail -c8 | head -c4 | od -An -tu4 | tr -d ' ')
    echo $(((crc * 1486364155) & 0xFFFFFFFF))
}

# While a migrator runs, the lock it holds is golang-migrate's.
check_lock_is_golang_migrates() {
    local key
    case $BACKEND in
        postgres)
            key=$(golang_lock_key "$(sql "SELECT current_schema()")" schema_migrations "$DB")
            check_eq "PostgreSQL: the advisory lock has golang-migrate's key" \
                "$(sql "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND granted")" "$key" ;;
        mysql)
            key=$(golang_lock_key "$DB:schema_migrations")
            check_eq "MySQL: GET_LOCK holds golang-migrate's name" \
                "$(sql "SELECT IS_USED_LOCK('$key') IS NOT NULL")" 1 ;;
    esac
    check_eq "the migrator's session is pinned (GET /clients), on every backend" \
        "$(curl -s --unix-socket "$WORK/s.sock" http://localhost/clients |
           jq -r --argjson pid "$BG" '.clients[] | select(.pid == $pid) | "\(.name) \(.pinned)"')" \
        "dbpool-migrate true"
}

# A migrator that holds the lock for long: the lock is golang-migrate's,
# another one times out; killed, it leaves no lock behind (the daemon resets
# its pinned connection), only its dirty version.
test_lock_timeout() {
    run migrate goto 7
    slow_pair 20
    bg_migrate up
    local a=$BG
    await_sql "the first migrator runs 8" "SELECT version, dirty FROM schema_migrations" "8,1" || return 0
    run migrate -lock-timeout 1 version
    expect_rc "the lock timeout" 1
    expect_err "golang-migrate's lock timeout message" "^error: timeout: can't acquire database lock"
    check_lock_is_golang_migrates
    kill -KILL "$a"
    wait "$a" 2>/dev/null || true
    run migrate -lock-timeout 120 force 7
    expect_rc "after the holder was killed the lock is free again" 0
    check_eq "the killed migration left 8 dirty; force 7 cleared it" "$(version_row)" "7,0"
    slow_pair
}

test_sigint() {
    run migrate goto 7
    bg_migrate up
    local a=$BG
    await_sql "the migrator runs 8" "SELECT version, dirty FROM schema_migrations" "8,1" || return 0
    kill -INT "$a"
    local a_rc=0
    wait "$a" || a_rc=$?
    check_eq "SIGINT: exit 1" "$a_rc" 1
    check_eq "SIGINT: golang-migrate's message, 8 finishes, 9 does not run" \
        "$(sed -E 's/ \([0-9.]+[µmn]?s\)$//' "$WORK/a.err")" "Stopping after this running migration ...
8/u slow
error: stopped before 9/u: run the command again to continue"
    check_eq "SIGINT: at 8, clean" "$(version_row)" "8,0"
    check_eq "SIGINT: 9 did not run" "$(has_table mt_nine)" 0
}

# ---------------------------------------------------------------- drop

test_drop() {
    INPUT=<(echo n) run migrate drop
    expect_rc "drop answered n" 1
    check_eq "drop asks" "$ERR" "Are you sure you want to drop the entire database schema? [y/N]
Aborted dropping the entire database schema"
    check_eq "drop answered n keeps the tables" "$(has_table mt_users)" 1
    run migrate drop -f
    expect_rc "drop -f" 0
    check_eq "drop -f drops every table" \
        "$(has_table mt_users)$(has_table mt_orders)$(has_table schema_migrations)$(has_table schema_migrations_history)" "0000"
    run migrate version
    check_eq "after drop: no migration" "$ERR" "error: no migration"
}

setup
base_migrations
test_usage
test_create
test_tables_created
test_up_down
test_goto_force
test_dirty_by_hand
test_failing_migration
test_history_and_status
test_duplicates
test_two_at_once
test_lock_timeout
test_sigint
test_drop

if [ "$FAILED" -ne 0 ]; then
    echo "test_migrate.sh ($BACKEND): $FAILED of $CHECKS checks failed" >&2
    exit 1
fi
echo "test_migrate.sh ($BACKEND): $CHECKS checks passed"
