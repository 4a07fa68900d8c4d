#!/usr/bin/env bash
# test_migrate_compat.sh — dbpool-migrate against golang-migrate's contract
# and the safety it adds, through a real dbpoold on one backend
# (DBPOOL_TEST_BACKEND: sqlite (default; `make check`), postgres (run by
# tests/pg/run-pg-tests.sh) or mysql (tests/mysql/run-mysql-tests.sh), with
# those runners' server environment):
#   - ddl: the schema_migrations table it creates is golang-migrate's, as
#     the server reports it (sqlite_master.sql; information_schema and
#     pg_constraint/pg_indexes; SHOW CREATE TABLE) compared with the same
#     DDL run by hand (golang-migrate's statement, doc/migrations.md), and
#     its row is written as golang-migrate writes it; the history table has
#     the documented columns; the example schema (migrations/<backend>)
#     goes up and all the way down;
#   - takeover: a database left by golang-migrate (table and row written by
#     hand: version 2 clean, then version 3 dirty) is continued: `up`
#     applies only 3; dirty gives the exact error and exit 1, `version`
#     says "3 (dirty)", `force 2` then `up` repairs it;
#   - lock: while another session holds the migration lock (PostgreSQL:
#     pg_advisory_lock with the issue's key, CRC-32 of
#     "schema\0schema_migrations\0database" x 1486364155 mod 2^32; MySQL:
#     GET_LOCK of that key of "database:schema_migrations"; SQLite: the
#     pinned writer) -lock-timeout expires with golang-migrate's error;
#     while one dbpool-migrate holds it (its migration 2 waits on a gate the
#     test holds; on PostgreSQL pg_locks shows the key), a second one waits
#     and, once the gate opens, prints "no change";
#   - failure: a migration failing in the middle leaves, in a transaction
#     (PostgreSQL, SQLite), the version unchanged and not dirty with the
#     earlier migrations applied; with "-- dbpool:no-transaction" (and
#     always on MySQL) the database dirty, then `force` and a fixed file
#     let `up` finish;
#   - drift: an applied file edited afterwards makes `status` flag it (exit 3);
#   - sigint: SIGINT during `up` lets the running migration (held at the
#     gate) finish, starts no further one, and exits 1 at its version.
# Waits are on conditions (a marker row, pg_locks, the processlist, the
# status socket, a line of output), never on time. Every check runs; exit
# 1 if any failed.
#
#   TOP_SRCDIR=$PWD TOP_BUILDDIR=$PWD/build DBPOOLD_BIN=$PWD/build/dbpoold \
#     DBPOOL_BIN=$PWD/build/dbpool DBPOOL_MIGRATE_BIN=$PWD/build/dbpool-migrate \
#     bash tests/migrate/test_migrate_compat.sh
set -euo pipefail

: "${TOP_SRCDIR:?set TOP_SRCDIR to the source tree (make check does)}"
: "${DBPOOLD_BIN:?set DBPOOLD_BIN to the dbpoold binary (make check does)}"
: "${DBPOOL_BIN:?set DBPOOL_BIN to the dbpool binary (make check does)}"
MIGRATE_BIN=${DBPOOL_MIGRATE_BIN:-${TOP_BUILDDIR:?set DBPOOL_MIGRATE_BIN or TOP_BUILDDIR}/dbpool-migrate}
BACKEND=${DBPOOL_TEST_BACKEND:-sqlite}
command -v curl >/dev/null || { echo "test_migrate_compat.sh: curl is required" >&2; exit 1; }
command -v jq >/dev/null || { echo "test_migrate_compat.sh: jq is required" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dbpool-migcompat.XXXXXX")
SOCK=$WORK/d.sock
DAEMON_PID=
declare -A HOLDERS=()
# shellcheck source=SCRIPTDIR/../checks.sh
. "$TOP_SRCDIR/tests/checks.sh"

cleanup() {
    local h
    for h in "${HOLDERS[@]}"; do kill "$h" 2>/dev/null || true; done
    for h in $(jobs -p); do kill "$h" 2>/dev/null || true; done
    if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        reset_db >/dev/null 2>&1 || true
        kill "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
    fi
    if [ "$FAILED" -ne 0 ] && [ -f "$WORK/dbpoold.log" ]; then
        echo "---- dbpoold log ----" >&2
        grep -v 'event=nofile_limit' "$WORK/dbpoold.log" | tail -n 30 >&2
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# ---------------------------------------------------------------- backend

# The pool settings of pool $1: "app" (the migrated database, 4
# connections, 2 of them pinnable on a server), "side" (the same database,
# for the test's own statements and lock holders), "gate" (SQLite: a second
# file whose write lock is the gate; elsewhere the same database), "ref"
# (SQLite: a third file for golang-migrate's DDL run by hand).
pool_entry() {
    local name=$1 file=$WORK/$1.db pinned="maxPinned = 2;"
    case "$name" in side) file=$WORK/app.db ;; esac
    case "$BACKEND" in
    sqlite)
        echo "{ name = \"$name\"; type = \"sqlite\"; sqlite = { filePath = \"$file\"; maxOpenConns = 4; }; }" ;;
    postgres)
        echo "{ name = \"$name\"; type = \"postgres\"; postgres = { host = \"$DBPOOL_TEST_PG_HOST\";
            port = $DBPOOL_TEST_PG_PORT; name = \"$DBPOOL_TEST_PG_DB\"; username = \"$DBPOOL_TEST_PG_USER\";
            sslMode = \"disable\"; maxOpenConns = 4; $pinned }; }" ;;
    mysql)
        echo "{ name = \"$name\"; type = \"mysql\"; mysql = { host = \"$DBPOOL_TEST_MYSQL_HOST\";
            name = \"$DBPOOL_TEST_MYSQL_DB\"; username = \"$DBPOOL_TEST_MYSQL_USER\";
            passwordFile = \"$DBPOOL_TEST_MYSQL_PASSWORD_FILE\"; maxOpenConns = 4; $pinned }; }" ;;
    *) echo "test_migrate_compat.sh: unknown DBPOOL_TEST_BACKEND '$BACKEND'" >&2; exit 1 ;;
    esac
}

start_daemon() {
    cat >"$WORK/dbpoold.conf" <<EOF
daemon = { socket = "$SOCK"; statusSocket = "$WORK/s.sock"; logLevel = "info"; shutdownTimeout = "5s"; };
pools = ( $(pool_entry app), $(pool_entry side), $(pool_entry gate)$([ "$BACKEND" != sqlite ] || echo ", $(pool_entry ref)") );
EOF
    "$DBPOOLD_BIN" -c "$WORK/dbpoold.conf" 2>"$WORK/dbpoold.log" &
    DAEMON_PID=$!
    local deadline=$((SECONDS + 20))
    until "$DBPOOL_BIN" -S "$SOCK" -d side -q -c 'select 1' >/dev/null 2>&1; do
        if ! kill -0 "$DAEMON_PID" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            fail "dbpoold ($BACKEND pools) did not answer within 20 s"
            exit 1
        fi
        sleep 0.02
    done
}

# sql [POOL] -c ...: statements through dbpool on the side pool (quiet).
sql() { "$DBPOOL_BIN" -S "$SOCK" -d side -q "$@"; }
# q SQL: the result of a one-column query, rows on lines, no header.
q() { "$DBPOOL_BIN" -S "$SOCK" -d "${QPOOL:-side}" --csv -c "$1" 2>&1 | tail -n +2; }

case "$BACKEND" in
postgres)
    DB_NAME=$DBPOOL_TEST_PG_DB
    WAIT_SQL="select pg_sleep(600)"
    VERSION_SQL="select version || ':' || dirty::int from schema_migrations"
    exists_sql() { echo "select count(*) from information_schema.tables where table_schema = current_schema() and table_name = '$1'"; }
    ;;
mysql)
    DB_NAME=$DBPOOL_TEST_MYSQL_DB
    WAIT_SQL="select sleep(600)"
    VERSION_SQL="select concat(version, ':', cast(dirty as signed)) from schema_migrations"
    exists_sql() { echo "select count(*) from information_schema.tables where table_schema = database() and table_name = '$1'"; }
    ;;
*)
    DB_NAME=$WORK/app.db
    WAIT_SQL="WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 4000000000) SELECT count(*) FROM s"
    VERSION_SQL="select version || ':' || dirty from schema_migrations"
    exists_sql() { echo "select count(*) from sqlite_master where type = 'table' and name = '$1'"; }
    ;;
esac

# concat A B...: SQL concatenating the expressions.
concat() {
    if [ "$BACKEND" = mysql ]; then local IFS=,; echo "concat($*)"; return; fi
    local out=$1 e
    shift
    for e in "$@"; do out+=" || $e"; done
    echo "$out"
}

# golang-migrate's DDL for its table per backend (its drivers'
# ensureVersionTable; doc/migrations.md documents the same), $1 = a schema
# or database prefix ("" or mc_ref).
golang_migrate_ddl() {
    case "$BACKEND" in
    postgres) echo "CREATE TABLE IF NOT EXISTS \"${1:-public}\".\"schema_migrations\" (version bigint not null primary key, dirty boolean not null)" ;;
    mysql) echo "CREATE TABLE ${1:+\`$1\`.}\`schema_migrations\` (version bigint not null primary key, dirty boolean not null)" ;;
    *) echo "CREATE TABLE IF NOT EXISTS schema_migrations (version uint64,dirty bool); CREATE UNIQUE INDEX IF NOT EXISTS version_unique ON schema_migrations (version);" ;;
    esac
}

# golang-migrate's row (SetVersion): DELETE/TRUNCATE, then the row.
golang_migrate_set_version() {
    local dirty=$2
    case "$BACKEND" in
    postgres) dirty=$([ "$2" = 1 ] && echo true || echo false) ;;
    esac
    sql -c "delete from schema_migrations" -c "insert into schema_migrations (version, dirty) values ($1, $dirty)"
}

# Drops what the scenarios make, in the shared test database.
reset_db() {
    local tables="schema_migrations, schema_migrations_history, health_status, users, mc_t1, mc_t2, mc_t3, mc_gate, mc_marker"
    case "$BACKEND" in
    postgres)
        sql -c "drop table if exists $tables cascade" -c "drop function if exists users_touch_updated_at()" \
            -c "drop schema if exists mc_ref cascade" ;;
    mysql)
        sql -c "drop table if exists $tables" -c "drop database if exists mc_ref" ;;
    *)
        local t
        for t in ${tables//,/}; do sql -c "drop table if exists $t"; done
        "$DBPOOL_BIN" -S "$SOCK" -d gate -q -c "drop table if exists mc_gate"
        "$DBPOOL_BIN" -S "$SOCK" -d ref -q -c "drop table if exists schema_migrations" ;;
    esac
}

# ---------------------------------------------------------------- helpers

# migrate ARGS...: dbpool-migrate on pool app; sets RC, OUT (stdout), ERR (stderr).
migrate() {
    RC=0
    "$MIGRATE_BIN" -S "$SOCK" -d app "$@" >"$WORK/m.out" 2>"$WORK/m.err" || RC=$?
    OUT=$(cat "$WORK/m.out")
    ERR=$(cat "$WORK/m.err")
}

# Output lines without their Go durations: "1/u one (1.5ms)" -> "1/u one".
no_durations() { sed -E 's/ \([0-9.]+(h[0-9.]+m)?(m[0-9.]+)?(ns|µs|ms|s|m)\)$//'; }

check_rc() { check_eq "$1 (exit status; stderr: ${ERR//$'\n'/ | })" "$RC" "$2"; }
check_err_line() {
    CHECKS=$((CHECKS + 1))
    grep -Eq -- "$2" <<<"$ERR" || fail "$1" "no line /$2/ in stderr:" "$ERR"
}
check_version() { check_eq "$1" "$(q "$VERSION_SQL")" "$2"; }
check_exists() { check_eq "$1" "$(q "$(exists_sql "$2")")" "$3"; }

# await NAME COMMAND...: the command succeeds within 30 s.
await() {
    local what=$1 deadline=$((SECONDS + 30))
    shift
    until "$@" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            fail "$what (within 30 s)"
            return 1
        fi
        sleep 0.02
    done
}
q_is() { [ "$(q "$1")" = "$2" ]; }

# hold NAME POOL SQL...: a pinned dbpool session that runs the SQL, says
# "held" and then waits in WAIT_SQL until `release NAME` kills it (the
# daemon then resets its connection: locks and transactions end).
hold() {
    local name=$1 pool=$2 args=()
    shift 2
    for s in "$@"; do args+=(-c "$s"); done
    "$DBPOOL_BIN" -S "$SOCK" -d "$pool" --pin --csv "${args[@]}" -c "select 'held' as h" \
        -c "$WAIT_SQL" >"$WORK/hold-$name.out" 2>&1 &
    HOLDERS[$name]=$!
    await "holder $name takes its lock" grep -qx held "$WORK/hold-$name.out"
}
release() {
    kill "${HOLDERS[$1]}" 2>/dev/null || true
    wait "${HOLDERS[$1]}" 2>/dev/null || true
    unset "HOLDERS[$1]"
}

# lock_key NAME...: golang-migrate's advisory lock id, CRC-32 (gzip's
# trailer) of the NUL-joined names x 1486364155 mod 2^32. PostgreSQL's key
# is that of schema, table, database (the issue's vector: "database_name"
# alone gives 1764327054); MySQL's lock name that of "database:table".
lock_key() {
    local crc
    crc=$( { printf '%s' "$1"; shift; for n in "$@"; do printf '\0%s' "$n"; done; } |
           gzip -c | tail -c8 | od -An -tu4 -N4 | tr -d ' ')
    echo $(( (crc * 1486364155) % 4294967296 ))
}

# The first line of file $1 gets a name and a body; writes DIR/NNN_name.up/down.sql.
write_migration() {
    local dir=$1 v=$2 name=$3 up=$4 down=$5
    mkdir -p "$dir"
    printf '%s\n' "$up" >"$dir/$(printf '%06d' "$v")_$name.up.sql"
    printf '%s\n' "$down" >"$dir/$(printf '%06d' "$v")_$name.down.sql"
}

# ---------------------------------------------------------------- ddl

scenario_ddl() {
    local ex=$TOP_SRCDIR/migrations/$BACKEND got want
    reset_db
    migrate -path "$ex" up
    check_rc "ddl: up applies the example schema migrations/$BACKEND" 0
    check_eq "ddl: up prints golang-migrate's three lines" "$(no_durations <<<"$ERR")" \
        $'1/u create_health_status_table\n2/u add_user_table\n3/u add_indexes'
    check_version "ddl: the row is (3, clean), as golang-migrate writes it" "3:0"
    check_eq "ddl: schema_migrations has exactly one row" "$(q "select count(*) from schema_migrations")" 1

    case "$BACKEND" in
    sqlite)
        check_eq "ddl: SQLite stores version and dirty as integers, like go-sqlite3" \
            "$(q "select typeof(version) || ':' || typeof(dirty) from schema_migrations")" "integer:integer"
        "$DBPOOL_BIN" -S "$SOCK" -d ref -q -f - <<<"$(golang_migrate_ddl)"
        got=$(q "select type || '|' || name || '|' || sql from sqlite_master where tbl_name = 'schema_migrations' order by type, name")
        want=$(QPOOL=ref q "select type || '|' || name || '|' || sql from sqlite_master where tbl_name = 'schema_migrations' order by type, name")
        check_eq "ddl: sqlite_master has golang-migrate's table and index, byte for byte" "$got" "$want"
        check_eq "ddl: the history table has the documented columns (besides its key)" \
            "$(q "select group_concat(name, ' ') from pragma_table_info('schema_migrations_history') where name <> 'id'")" \
            "version name direction checksum applied_at duration_ms applied_by" ;;
    postgres)
        sql -c "create schema mc_ref" -c "$(golang_migrate_ddl mc_ref)"
        got=$(pg_table_shape public) want=$(pg_table_shape mc_ref)
        check_eq "ddl: columns, types, nullability, primary key and index match golang-migrate's" "$got" "$want"
        check "ddl: ... and are what golang-migrate's DDL says" grep -q "version:bigint:NO" <<<"$got"
        check_eq "ddl: the history table has the documented columns (besides its key)" \
            "$(q "select string_agg(column_name, ' ' order by ordinal_position) from information_schema.columns where table_schema = current_schema() and table_name = 'schema_migrations_history' and column_name <> 'id'")" \
            "version name direction checksum applied_at duration_ms applied_by" ;;
    mysql)
        sql -c "create database mc_ref" -c "$(golang_migrate_ddl mc_ref)"
        got=$("$DBPOOL_BIN" -S "$SOCK" -d side --csv -c "show create table schema_migrations" 2>&1)
        want=$("$DBPOOL_BIN" -S "$SOCK" -d side --csv -c "show create table mc_ref.schema_migrations" 2>&1)
        check_eq "ddl: SHOW CREATE TABLE matches golang-migrate's table byte for byte" "$got" "$want"
        check "ddl: ... which has golang-migrate's columns" grep -q '`version` bigint(20) NOT NULL' <<<"$got"
        check_eq "ddl: the history table has the documented columns (besides its key)" \
            "$(q "select group_concat(column_name order by ordinal_position separator ' ') from information_schema.columns where table_schema = database() and table_name = 'schema_migrations_history' and column_name <> 'id'")" \
            "version name direction checksum applied_at duration_ms applied_by" ;;
    esac

    migrate -path "$ex" down -all
    check_rc "ddl: down -all takes the example schema down" 0
    check_eq "ddl: down -all prints the three down lines" "$(no_durations <<<"$ERR")" \
        $'3/d add_indexes\n2/d add_user_table\n1/d create_health_status_table'
    check_eq "ddl: after down -all schema_migrations is empty (golang-migrate's nil version)" \
        "$(q "select count(*) from schema_migrations")" 0
    check_exists "ddl: down -all dropped health_status" health_status 0
    check_exists "ddl: down -all dropped users" users 0
}

# pg_table_shape SCHEMA: what PostgreSQL reports about SCHEMA.schema_migrations.
pg_table_shape() {
    q "select column_name || ':' || data_type || ':' || is_nullable || ':' || coalesce(column_default, '') from information_schema.columns where table_schema = '$1' and table_name = 'schema_migrations' order by ordinal_position"
    q "select contype || ':' || conname || ':' || pg_get_constraintdef(c.oid) from pg_constraint c join pg_class r on r.oid = c.conrelid join pg_namespace n on n.oid = r.relnamespace where n.nspname = '$1' and r.relname = 'schema_migrations' order by conname"
    q "select indexname || ':' || replace(indexdef, '$1.', '') from pg_indexes where schemaname = '$1' and tablename = 'schema_migrations' order by indexname"
}

# ---------------------------------------------------------------- takeover

# The state golang-migrate leaves after `up 2`: its table, migrations 1 and 2
# applied, and its row.
golang_migrate_state() {
    local ex=$TOP_SRCDIR/migrations/$BACKEND
    reset_db
    sql -c "$(golang_migrate_ddl)"
    sql -f "$ex/000001_create_health_status_table.up.sql" -f "$ex/000002_add_user_table.up.sql"
    golang_migrate_set_version "$1" "$2"
}

scenario_takeover() {
    local ex=$TOP_SRCDIR/migrations/$BACKEND
    golang_migrate_state 2 0
    migrate -path "$ex" up
    check_rc "takeover: up on golang-migrate's version 2" 0
    check_eq "takeover: up applies only migration 3" \
        "$(no_durations <<<"$ERR")" "3/u add_indexes"
    check_version "takeover: the row is now (3, clean)" "3:0"
    check_eq "takeover: the history records what dbpool-migrate ran, and only that" \
        "$(q "select $(concat version "':'" direction) from schema_migrations_history")" "3:up"
    migrate -path "$ex" up
    check_rc "takeover: a second up exits 0" 0
    check_eq "takeover: a second up says no change" "$ERR" "no change"

    golang_migrate_state 3 1
    migrate -path "$ex" up
    check_rc "takeover: up on golang-migrate's dirty version 3 fails" 1
    check_eq "takeover: ... with golang-migrate's exact error" "$ERR" \
        "error: Dirty database version 3. Fix and force version."
    check_version "takeover: the dirty row is left alone" "3:1"
    migrate -path "$ex" version
    check_rc "takeover: version on a dirty database exits 0" 0
    check_eq "takeover: version says 3 (dirty)" "$ERR" "3 (dirty)"
    migrate -path "$ex" force 2
    check_rc "takeover: force 2" 0
    check_version "takeover: force 2 writes (2, clean)" "2:0"
    migrate -path "$ex" up
    check_rc "takeover: up after force" 0
    check_eq "takeover: up after force applies 3" \
        "$(no_durations <<<"$ERR")" "3/u add_indexes"
    check_version "takeover: repaired: (3, clean)" "3:0"
}

# ---------------------------------------------------------------- failure

write_fail_dir() {
    local dir=$1 first=$2
    rm -rf "$dir"
    write_migration "$dir" 1 one "CREATE TABLE mc_t1 (id int);" "DROP TABLE mc_t1;"
    write_migration "$dir" 2 two "${first:+$first
}CREATE TABLE mc_t2 (id int);
INSERT INTO mc_no_such_table VALUES (1);" "DROP TABLE mc_t2;"
    write_migration "$dir" 3 three "CREATE TABLE mc_t3 (id int);" "DROP TABLE mc_t3;"
}

# repair DIR V: fix file 2, force V, up: everything applied.
repair_and_finish() {
    local dir=$1
    write_migration "$dir" 2 two "CREATE TABLE IF NOT EXISTS mc_t2 (id int);" "DROP TABLE mc_t2;"
    migrate -path "$dir" force "$2"
    check_rc "failure: force $2 after the failed migration" 0
    migrate -path "$dir" up
    check_rc "failure: up with the fixed file" 0
    check_version "failure: up with the fixed file reaches (3, clean)" "3:0"
    check_exists "failure: ... with migration 3 applied" mc_t3 1
}

scenario_failure() {
    local dir=$WORK/fail
    reset_db
    write_fail_dir "$dir" ""
    migrate -path "$dir" up
    check_rc "failure: up stops at the failing migration 2" 1
    check_err_line "failure: migration 1 was applied first" '^1/u one \('
    check_err_line "failure: the error names the database's complaint" '^error: .*mc_no_such_table'
    check_exists "failure: migration 1's table stays" mc_t1 1
    check_exists "failure: migration 3 never ran" mc_t3 0
    if [ "$BACKEND" = mysql ]; then
        check_version "failure: MySQL has no transactional DDL: dirty at 2, like golang-migrate" "2:1"
        check_exists "failure: ... with migration 2's CREATE TABLE committed" mc_t2 1
        migrate -path "$dir" up
        check_eq "failure: up on the dirty database gives golang-migrate's error" "$ERR" \
            "error: Dirty database version 2. Fix and force version."
        repair_and_finish "$dir" 1
        return
    fi
    check_version "failure: in a transaction: still (1, clean), not dirty" "1:0"
    check_exists "failure: ... and migration 2's CREATE TABLE rolled back" mc_t2 0

    reset_db
    write_fail_dir "$dir" "-- dbpool:no-transaction"
    migrate -path "$dir" up
    check_rc "failure: -- dbpool:no-transaction: up fails" 1
    check_version "failure: -- dbpool:no-transaction: dirty at 2, like golang-migrate" "2:1"
    check_exists "failure: ... with migration 2's first statement committed" mc_t2 1
    migrate -path "$dir" up
    check_eq "failure: up on the dirty database gives golang-migrate's error" "$ERR" \
        "error: Dirty database version 2. Fix and force version."
    repair_and_finish "$dir" 1
}

# ---------------------------------------------------------------- drift

scenario_drift() {
    local dir=$WORK/fail
    # (a) continues from scenario_failure: 1 applied by `up`, then `force 1`
    # after the failure, then 2 and 3: version 1's file is still the one
    # that ran, and editing it is drift.
    migrate -path "$dir" status
    check_rc "drift: status on untouched files exits 0" 0
    printf -- '-- edited after it was applied\n' >>"$dir/000001_one.up.sql"
    migrate -path "$dir" status
    check_rc "drift: status exits 3 when a file applied before a force changed" 3
    check "drift: ... and marks it CHANGED" grep -Eq '^1 +CHANGED +one' <<<"$OUT"

    # (b) the plain case: up, then an edit.
    reset_db
    dir=$WORK/drift
    rm -rf "$dir"
    write_migration "$dir" 1 one "CREATE TABLE mc_t1 (id int);" "DROP TABLE mc_t1;"
    write_migration "$dir" 2 two "CREATE TABLE mc_t2 (id int);" "DROP TABLE mc_t2;"
    migrate -path "$dir" up
    check_rc "drift: up" 0
    printf -- '-- edited after it was applied\n' >>"$dir/000001_one.up.sql"
    migrate -path "$dir" status
    check_rc "drift: status exits 3 when an applied file changed" 3
    check "drift: status marks version 1 CHANGED" grep -Eq '^1 +CHANGED +one' <<<"$OUT"
    check_err_line "drift: status says what to do about version 1" '^changed: version 1 \(one\)'
    check "drift: the unedited version stays applied" grep -Eq '^2 +applied +two' <<<"$OUT"
}

# ---------------------------------------------------------------- lock

# A gated migration directory: 2 writes a marker, then waits at the gate
# (a row the test holds locked; on SQLite the write lock of gate.db).
write_gated_dir() {
    local dir=$1 attach="" detach="" gate=mc_gate
    rm -rf "$dir"
    if [ "$BACKEND" = sqlite ]; then
        attach="ATTACH DATABASE '$WORK/gate.db' AS g;" detach="DETACH DATABASE g;" gate=g.mc_gate
    fi
    write_migration "$dir" 1 one "CREATE TABLE mc_t1 (id int);
CREATE TABLE mc_marker (n int);" "DROP TABLE mc_marker; DROP TABLE mc_t1;"
    write_migration "$dir" 2 gated "-- dbpool:no-transaction
$attach
INSERT INTO mc_marker VALUES (2);
INSERT INTO $gate VALUES (1);
$detach" "DELETE FROM mc_marker;"
    write_migration "$dir" 3 three "CREATE TABLE mc_t3 (id int);" "DROP TABLE mc_t3;"
}

# Close the gate: the holder keeps row 1 of mc_gate locked.
close_gate() {
    if [ "$BACKEND" = sqlite ]; then
        "$DBPOOL_BIN" -S "$SOCK" -d gate -q -c "create table if not exists mc_gate (id int primary key)" \
            -c "delete from mc_gate"
        hold gate gate "begin immediate" "insert into mc_gate values (1)"
    else
        sql -c "create table if not exists mc_gate (id int primary key)" -c "delete from mc_gate"
        hold gate side "begin" "insert into mc_gate values (1)"
    fi
}

# The lock is held by someone else: -lock-timeout ends the wait with
# golang-migrate's error; once it is free, up works.
scenario_lock_timeout() {
    local dir=$WORK/locked key name t0
    reset_db
    rm -rf "$dir"
    write_migration "$dir" 1 one "CREATE TABLE mc_t1 (id int);" "DROP TABLE mc_t1;"
    case "$BACKEND" in
    postgres)
        key=$(lock_key public schema_migrations "$DB_NAME")
        hold golang side "select pg_advisory_lock($key)" ;;
    mysql)
        name=$(lock_key "$DB_NAME:schema_migrations")
        hold golang side "select get_lock('$name', 0)" ;;
    *)
        hold golang app "select 1" ;;     # the pinned writer is SQLite's migration lock
    esac
    t0=$SECONDS
    migrate -path "$dir" -lock-timeout 2 up
    check_rc "lock: up while another session holds the lock fails" 1
    check_err_line "lock: ... with golang-migrate's lock timeout error" \
        "^error: timeout: can't acquire database lock"
    check "lock: ... after about -lock-timeout (2 s), not at once and not much later" \
        test $((SECONDS - t0)) -ge 1 -a $((SECONDS - t0)) -le 10
    check_eq "lock: nothing was applied while locked out" "$(q "$(exists_sql mc_t1)")" 0
    release golang
    migrate -path "$dir" -lock-timeout 30 up
    check_rc "lock: once the other session is gone, up runs" 0
    check_version "lock: ... and reaches (1, clean)" "1:0"
}

# A waits at the gate inside migration 2 holding the migration lock; B
# waits for the lock; the gate opens: A finishes, B says "no change".
scenario_two_migrators() {
    local dir=$WORK/gated key name a b rc_a=0 rc_b=0
    reset_db
    write_gated_dir "$dir"
    close_gate
    "$MIGRATE_BIN" -S "$SOCK" -d app -path "$dir" -lock-timeout 60 up >"$WORK/a.out" 2>"$WORK/a.err" &
    a=$!
    await "two: migrator A reaches the gate in migration 2 (its marker row)" q_is "select count(*) from mc_marker" 1
    case "$BACKEND" in
    postgres)
        key=$(lock_key public schema_migrations "$DB_NAME")
        check_eq "two: pg_locks shows A's advisory lock under the issue's key (CRC-32 of schema, table, database)" \
            "$(q "select classid::bigint * 4294967296 + objid::bigint from pg_locks where locktype = 'advisory' and granted and objsubid = 1 and database = (select oid from pg_database where datname = current_database())")" "$key" ;;
    mysql)
        name=$(lock_key "$DB_NAME:schema_migrations")
        check_eq "two: A holds GET_LOCK of golang-migrate's name for database:schema_migrations" \
            "$(q "select is_used_lock('$name') is not null")" 1 ;;
    esac
    "$MIGRATE_BIN" -S "$SOCK" -d app -path "$dir" -lock-timeout 60 up >"$WORK/b.out" 2>"$WORK/b.err" &
    b=$!
    case "$BACKEND" in
    postgres)
        await "two: migrator B waits for the advisory lock (pg_locks, not granted)" \
            q_is "select count(*) from pg_locks where locktype = 'advisory' and not granted and database = (select oid from pg_database where datname = current_database())" 1 ;;
    mysql)
        await "two: migrator B waits in GET_LOCK (processlist: User lock)" \
            q_is "select count(*) from information_schema.processlist where state = 'User lock'" 1 ;;
    *)
        await "two: migrator B is connected to the pool, waiting for the writer" pool_clients_at_least app 2 ;;
    esac
    check "two: B is still waiting while A holds the lock" kill -0 "$b"
    release gate
    wait "$a" || rc_a=$?
    wait "$b" || rc_b=$?
    check_eq "two: A finishes its up (exit 0)" "$rc_a" 0
    check_eq "two: A applied 1, 2 and 3" "$(no_durations <"$WORK/a.err")" $'1/u one\n2/u gated\n3/u three'
    check_eq "two: B waited, then exits 0" "$rc_b" 0
    check_eq "two: B says no change" "$(cat "$WORK/b.err")" "no change"
    check_version "two: the version is A's: (3, clean)" "3:0"
    check_eq "two: each migration ran once" "$(q "select count(*) from schema_migrations_history where direction = 'up'")" 3
}

# pool_clients_at_least POOL N: the status socket's /pools has N or more
# clients on POOL.
pool_clients_at_least() {
    curl -sf --unix-socket "$WORK/s.sock" http://localhost/pools |
        jq -e --arg p "$1" --argjson n "$2" '.[] | select(.name == $p) | .clients.connected >= $n'
}

# ---------------------------------------------------------------- sigint

scenario_sigint() {
    local dir=$WORK/gated a rc=0
    reset_db
    write_gated_dir "$dir"
    close_gate
    "$MIGRATE_BIN" -S "$SOCK" -d app -path "$dir" up >"$WORK/a.out" 2>"$WORK/a.err" &
    a=$!
    await "sigint: up is inside migration 2 (its marker row)" q_is "select count(*) from mc_marker" 1
    kill -INT "$a"
    await "sigint: dbpool-migrate says it stops after the running migration" \
        grep -q "Stopping after this running migration" "$WORK/a.err"
    check "sigint: ... and keeps running it" kill -0 "$a"
    release gate
    wait "$a" || rc=$?
    check_eq "sigint: up stopped by SIGINT exits 1" "$rc" 1
    check "sigint: migration 2 completed" grep -q "^2/u gated (" "$WORK/a.err"
    check "sigint: migration 3 never started" bash -c "! grep -q '^3/u' '$WORK/a.err'"
    check_version "sigint: the version is the completed migration's: (2, clean)" "2:0"
    check_exists "sigint: migration 3's table does not exist" mc_t3 0
}

# ---------------------------------------------------------------- --pin

# dbpool --pin on this backend: a temporary table lasts across transactions.
scenario_cli_pin() {
    local tmp="create temporary table mc_pin (x int)"
    local out
    out=$("$DBPOOL_BIN" -S "$SOCK" -d side --pin --csv -c "$tmp" -c "begin" -c "insert into mc_pin values (1)" \
        -c "commit" -c "begin" -c "insert into mc_pin values (2)" -c "commit" \
        -c "select count(*) as n from mc_pin" 2>&1) || true
    check_eq "dbpool --pin: a temporary table lasts across transactions ($BACKEND)" "$out" $'n\n2'
}

# ---------------------------------------------------------------- main

check_eq "the test's lock key agrees with the issue's vector" "$(lock_key database_name)" 1764327054
start_daemon
for s in ddl takeover failure drift lock_timeout two_migrators sigint cli_pin; do
    echo "== $s ($BACKEND)"
    "scenario_$s"
done

reset_db
kill "$DAEMON_PID"
rc=0
wait "$DAEMON_PID" || rc=$?
DAEMON_PID=
check_eq "dbpoold exits 0 on SIGTERM after the scenarios" "$rc" 0
check "no sanitizer report in the daemon log" \
    bash -c "! grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error:' '$WORK/dbpoold.log'"

if [ "$FAILED" -ne 0 ]; then
    echo "test_migrate_compat.sh ($BACKEND): $FAILED of $CHECKS checks failed" >&2
    exit 1
fi
echo "test_migrate_compat.sh ($BACKEND): all $CHECKS checks passed"
