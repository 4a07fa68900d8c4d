#!/usr/bin/env bash
# test_cli.sh — integration test of the dbpool CLI and of `dbpoold -t`.
#
# Starts the real daemon ($DBPOOLD_BIN) on sockets in a temporary directory
# with a SQLite pool, then runs $DBPOOL_BIN against it and checks output,
# exit status and error messages: -c chains in one session, --csv quoting,
# --json types (checked with jq), errors stopping the run, -f scripts,
# $DBPOOL_SOCKET / $DBPOOL_POOL defaults, --timeout / --connect-timeout and
# their environment variables (against a slow statement and a daemon stopped
# with SIGSTOP), --pin (a TEMP table across transactions), and `dbpoold -t`
# on good and bad configurations. Every check runs; the script exits 1 if any failed.
#
#   DBPOOLD_BIN=$PWD/build/dbpoold DBPOOL_BIN=$PWD/build/dbpool \
#       bash tests/integration/test_cli.sh
set -euo pipefail

: "${DBPOOLD_BIN:?set DBPOOLD_BIN to the dbpoold binary (make check does)}"
: "${DBPOOL_BIN:?set DBPOOL_BIN to the dbpool binary (make check does)}"
command -v jq >/dev/null || { echo "test_cli.sh: jq is required" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dbpool-cli.XXXXXX")
SOCK=$WORK/d.sock
DAEMON_PID=
FAILED=0
CHECKS=0

cleanup() {
    if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -CONT "$DAEMON_PID" 2>/dev/null || true     # if a timeout test left it stopped
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

fail() {
    FAILED=$((FAILED + 1))
    printf 'FAIL: %s\n' "$1" >&2
    shift
    for line in "$@"; do printf '      %s\n' "$line" >&2; done
}

# run CMD...: runs it, sets RC, OUT and ERR (never aborts the script).
run() {
    RC=0
    "$@" >"$WORK/out" 2>"$WORK/err" || RC=$?
    OUT=$(cat "$WORK/out")
    ERR=$(cat "$WORK/err")
}

# expect NAME RC_WANTED OUT_WANTED: checks the last run.
expect() {
    CHECKS=$((CHECKS + 1))
    if [ "$RC" -ne "$2" ] || [ "$OUT" != "$3" ]; then
        fail "$1" "exit $RC (wanted $2)" "stdout: $(printf '%q' "$OUT")" \
             "wanted: $(printf '%q' "$3")" "stderr: $ERR"
    fi
}

# expect_err NAME PATTERN: the last run's stderr matches the extended regex.
expect_err() {
    CHECKS=$((CHECKS + 1))
    if ! grep -Eq -- "$2" <<<"$ERR"; then
        fail "$1" "stderr does not match /$2/:" "$ERR"
    fi
}

# expect_jq NAME FILTER: the last run's stdout satisfies the jq filter.
expect_jq() {
    CHECKS=$((CHECKS + 1))
    if ! jq -e "$2" <<<"$OUT" >/dev/null 2>&1; then
        fail "$1" "jq filter failed: $2" "stdout: $OUT" "stderr: $ERR"
    fi
}

dbpool() { "$DBPOOL_BIN" -S "$SOCK" "$@"; }

write_config() {
    cat >"$WORK/dbpoold.conf" <<EOF
daemon = {
    socket = "$SOCK";
    statusSocket = "$WORK/s.sock";
    logLevel = "info";
    shutdownTimeout = "5s";
};
pools = (
    { name = "app"; type = "sqlite"; sqlite = { filePath = "$WORK/app.db"; maxOpenConns = 3; }; },
    { name = "other"; type = "sqlite"; sqlite = { filePath = "$WORK/other.db"; maxOpenConns = 1; }; }
);
EOF
}

# Start the daemon and await a working session (deadline 10 s).
start_daemon() {
    "$DBPOOLD_BIN" -c "$WORK/dbpoold.conf" 2>"$WORK/dbpoold.log" &
    DAEMON_PID=$!
    local deadline=$((SECONDS + 10))
    until "$DBPOOL_BIN" -S "$SOCK" -q -c 'select 1' >/dev/null 2>&1; do
        if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            fail "dbpoold exited during start-up"
            exit 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            fail "dbpoold did not answer within 10 s"
            exit 1
        fi
        sleep 0.02
    done
}

# ---------------------------------------------------------------- dbpoold -t

test_config_check() {
    run "$DBPOOLD_BIN" -t -c "$WORK/dbpoold.conf"
    expect "dbpoold -t on a valid config exits 0" 0 "$OUT"
    CHECKS=$((CHECKS + 1))
    grep -q "valid" <<<"$OUT$ERR" || fail "dbpoold -t says the config is valid" "$OUT$ERR"

    cat >"$WORK/bad.conf" <<'EOF'
daemon = {
    socket = "/tmp/x.sock";
    bogusKey = 1;
    shutdownTimeout = "soon";
};
pools = (
    { name = "app"; type = "sqlite"; sqlite = { maxOpenConns = 0; }; }
);
EOF
    run "$DBPOOLD_BIN" -t -c "$WORK/bad.conf"
    expect "dbpoold -t on an invalid config exits 1" 1 "$OUT"
    expect_err "-t names the unknown key" "bogusKey"
    expect_err "-t names the bad duration" "shutdownTimeout"
    expect_err "-t names the missing filePath" "filePath"
    expect_err "-t names the out-of-range maxOpenConns" "maxOpenConns"
    expect_err "-t gives file and line" "bad\.conf:[0-9]+"

    # a mysql pool is valid configuration: the MySQL/MariaDB driver exists
    cat >"$WORK/mysql.conf" <<'EOF'
daemon = { socket = "/tmp/x.sock"; };
pools = (
    { name = "db"; type = "mysql";
      mysql = { host = "localhost"; name = "app"; username = "app"; password = "x"; }; }
);
EOF
    run "$DBPOOLD_BIN" -t -c "$WORK/mysql.conf"
    expect "dbpoold -t on a mysql pool exits 0" 0 "$OUT"
    CHECKS=$((CHECKS + 1))
    grep -q "valid" <<<"$OUT$ERR" || fail "dbpoold -t says the mysql config is valid" "$OUT$ERR"

    run "$DBPOOLD_BIN" -t -c "$WORK/does-not-exist.conf"
    expect "dbpoold -t on a missing file exits 1" 1 ""
    expect_err "-t names the missing file" "does-not-exist\.conf"
}

# ---------------------------------------------------------------- dbpool

test_command_chain() {
    run dbpool --csv -c "create table t(a)" -c "begin" -c "insert into t values (1)" \
        -c "rollback" -c "select count(*) from t"
    expect "-c chain: rollback across -c arguments" 0 $'count(*)\n0'

    run dbpool --csv -c "begin" -c "insert into t values (5)" \
        -c "select count(*) as n from t" -c "commit" -c "select count(*) as n from t"
    expect "-c chain: one session, transaction spans -c" 0 $'n\n1\nn\n1'

    run dbpool --csv -c "select 1 as a; select 2 as b"
    expect "-c with two statements" 0 $'a\n1\nb\n2'
}

test_csv() {
    dbpool -q -c "create table q(id integer, s text)" \
        -c "insert into q values (1, 'a,b'), (2, 'say \"hi\"'), (3, 'line1
line2'), (4, null), (5, ''), (6, 'plain')"
    run dbpool --csv -c "select id, s from q order by id"
    expect "--csv header, rows and RFC 4180 quoting" 0 \
        $'id,s\n1,"a,b"\n2,"say ""hi"""\n3,"line1\nline2"\n4,\n5,""\n6,plain'

    run dbpool --csv -c "select 1 as x where 0"
    expect "--csv empty result still has its header" 0 "x"

    run dbpool --csv -c "insert into q values (7, 'x')"
    expect "--csv prints nothing for statements without rows" 0 ""
}

test_json() {
    run dbpool --json -c "select 1 as i, 2.5 as f, null as n, 'x\"y' as s, -7 as neg"
    expect_jq "--json is one array of objects" 'type == "array" and length == 1'
    expect_jq "--json integer stays a number" '.[0].i == 1 and (.[0].i | type) == "number"'
    expect_jq "--json float stays a number" '.[0].f == 2.5 and (.[0].f | type) == "number"'
    expect_jq "--json NULL is null" '.[0] | has("n") and .n == null'
    expect_jq "--json text is an escaped string" '.[0].s == "x\"y" and .[0].neg == -7'

    run dbpool --json -c "select 9007199254740993 as big"
    CHECKS=$((CHECKS + 1))
    grep -q '"big": *9007199254740993[^0-9.]' <<<"$OUT" ||
        fail "--json 64-bit integers are printed exactly, unquoted" "$OUT"

    run dbpool --json -c "select id, s from q where id in (4, 6) order by id"
    expect_jq "--json rows in order" '[.[].id] == [4, 6] and .[0].s == null and .[1].s == "plain"'
}

test_errors() {
    run dbpool --csv -c "select 1 as a" -c "selekt oops" -c "insert into t values (99)"
    CHECKS=$((CHECKS + 1))
    [ "$RC" -eq 1 ] || fail "an SQL error exits 1" "exit $RC"
    expect_err "the error is on stderr with code, SQLSTATE and SQLite's code" \
        "ERROR \[SQL 42601, vendor 1\]: .*syntax error"
    CHECKS=$((CHECKS + 1))
    [ "$OUT" = $'a\n1' ] || fail "output before the error is kept, nothing after" "$OUT"
    run dbpool --csv -c "select count(*) as n from t where a = 99"
    expect "-c after an error does not run" 0 $'n\n0'
    run dbpool -c "select ?"
    expect_err "errors SQLite did not number show no vendor code" "ERROR \[SQL 07001\]: "

    run "$DBPOOL_BIN" -S "$WORK/no-such.sock" -c "select 1"
    CHECKS=$((CHECKS + 1))
    [ "$RC" -eq 1 ] || fail "a connection failure exits 1" "exit $RC"
    expect_err "a connection failure names the socket" "no-such\.sock"

    run dbpool -d nope -c "select 1"
    CHECKS=$((CHECKS + 1))
    [ "$RC" -eq 1 ] || fail "an unknown pool exits 1" "exit $RC"
    expect_err "an unknown pool is reported" "UNKNOWN_POOL|nope"

    run "$DBPOOL_BIN" --no-such-option
    CHECKS=$((CHECKS + 1))
    [ "$RC" -eq 2 ] || fail "a usage error exits 2" "exit $RC"
}

test_files() {
    cat >"$WORK/script.sql" <<'EOF'
-- a comment; with a semicolon
CREATE TABLE f (a INTEGER, s TEXT);
INSERT INTO f VALUES (1, 'semi;colon');
/* a block; comment */
INSERT INTO f VALUES (2, 'it''s');

SELECT a, s FROM f ORDER BY a
EOF
    run dbpool --csv -f "$WORK/script.sql"
    expect "-f runs a multi-statement file" 0 $'a,s\n1,semi;colon\n2,it\'s'

    run dbpool --csv -f - <<<"select count(*) as n from f; select max(a) as m from f;"
    expect "-f - reads stdin" 0 $'n\n2\nm\n2'

    run dbpool --csv -c "select 0 as z" -f "$WORK/script.sql"
    CHECKS=$((CHECKS + 1))
    [ "$RC" -eq 1 ] || fail "re-running the script fails on CREATE TABLE" "exit $RC"
    expect_err "a script error names the file" "script\.sql"

    printf 'select 1 as one;\n\nselekt 2;\nselect 3;\n' >"$WORK/bad.sql"
    run dbpool --csv -f "$WORK/bad.sql"
    CHECKS=$((CHECKS + 1))
    [ "$RC" -eq 1 ] && [ "$OUT" = $'one\n1' ] || fail "a script stops at its first error" \
        "exit $RC" "$OUT"
    expect_err "a script error names the line" "bad\.sql.*3|line 3"
}

test_env_defaults() {
    RC=0
    OUT=$(DBPOOL_SOCKET=$SOCK "$DBPOOL_BIN" --csv -c "select 7 as n" 2>"$WORK/err") || RC=$?
    ERR=$(cat "$WORK/err")
    expect "DBPOOL_SOCKET is the default socket" 0 $'n\n7'

    RC=0
    OUT=$(DBPOOL_SOCKET=$SOCK DBPOOL_POOL=other "$DBPOOL_BIN" --csv \
        -c "create table only_in_other(a)" -c "select count(*) as n from only_in_other" \
        2>"$WORK/err") || RC=$?
    ERR=$(cat "$WORK/err")
    expect "DBPOOL_POOL selects the pool" 0 $'n\n0'
    run dbpool -q -c "select * from only_in_other"
    CHECKS=$((CHECKS + 1))
    [ "$RC" -eq 1 ] || fail "pool app must not see pool other's table" "exit $RC"
}

test_open_transaction_at_exit() {
    run dbpool -c "begin" -c "insert into t values (42)"
    CHECKS=$((CHECKS + 1))
    [ "$RC" -eq 0 ] || fail "ending inside a transaction still exits 0" "exit $RC" "$ERR"
    expect_err "ending inside a transaction warns" "[Tt]ransaction"
    run dbpool --csv -c "select count(*) as n from t where a = 42"
    expect "the open transaction was rolled back" 0 $'n\n0'
}

# --pin: one server connection for the whole session, so a TEMP table made
# in one transaction is there in the next; it ends with the session.
test_pin() {
    run dbpool --pin --csv -c "begin" -c "create temp table pin_tmp(x)" \
        -c "insert into pin_tmp values (1)" -c "commit" \
        -c "begin" -c "insert into pin_tmp values (2)" -c "commit" \
        -c "insert into pin_tmp values (3)" -c "select count(*) as n from pin_tmp"
    expect "--pin: a TEMP table lasts across the session's transactions" 0 $'n\n3'

    run dbpool --pin --csv -c "select count(*) as n from temp.sqlite_master where name = 'pin_tmp'"
    expect "--pin: the next session does not see the last one's TEMP table" 0 $'n\n0'

    run dbpool --pin -d nope -c "select 1"
    CHECKS=$((CHECKS + 1))
    [ "$RC" -eq 1 ] || fail "--pin on an unknown pool exits 1" "exit $RC"

    run dbpool --pin -c "begin" -c "select 1 as one"
    expect_err "--pin: ending pinned inside a transaction still warns" "[Tt]ransaction"
    run dbpool --csv -c "select count(*) as n from t where a = 5"
    expect "--pin: the daemon serves unpinned sessions after pinned ones" 0 $'n\n1'
}

# await_file NAME FILE PATTERN: FILE gets a line matching PATTERN within 10 s.
await_file() {
    local deadline=$((SECONDS + 10))
    CHECKS=$((CHECKS + 1))
    until grep -Eq -- "$3" "$2" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            fail "$1" "no /$3/ in $2 within 10 s:" "$(cat "$2" 2>/dev/null)"
            return 1
        fi
        sleep 0.01
    done
}

# --pin beyond the pool's maxPinned (1 on SQLite: the writer) fails at once
# with LIMIT and says what to do; once the holder is gone (killed in the
# middle of an endless statement), pinning works again.
test_pin_limit() {
    local holder deadline
    "$DBPOOL_BIN" -S "$SOCK" --pin --csv --timeout=60s -c "select 'held' as pin" -c "$ENDLESS_SQL" \
        >"$WORK/pin.out" 2>&1 &
    holder=$!
    if await_file "the first --pin session runs" "$WORK/pin.out" '^held$'; then
        run dbpool --pin -c "select 1"
        CHECKS=$((CHECKS + 1))
        [ "$RC" -eq 1 ] || fail "--pin beyond maxPinned exits 1" "exit $RC" "$ERR"
        expect_err "--pin beyond maxPinned reports LIMIT" 'ERROR \[LIMIT 53[0-9]{3}\]'
        expect_err "--pin beyond maxPinned names maxPinned" "maxPinned"
        run dbpool --csv -c "select 2 as n"
        expect "an unpinned session reads while the writer is pinned" 0 $'n\n2'
    fi
    kill "$holder" 2>/dev/null || true
    wait "$holder" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    until run dbpool --pin --csv -c "select 3 as n"; [ "$RC" -eq 0 ] || [ "$SECONDS" -ge "$deadline" ]; do
        sleep 0.01
    done
    expect "--pin works again once the pinned session is gone" 0 $'n\n3'
}

test_table_format() {
    run dbpool -c "select 1 as num, 'x' as txt"
    CHECKS=$((CHECKS + 1))
    grep -q "num" <<<"$OUT" && grep -q "(1 row)" <<<"$OUT" ||
        fail "the default table format has a header and a row count" "$OUT"
}

now_ms() { date +%s%3N; }

# expect_took NAME START_MS MIN_MS MAX_MS: the last run took MIN..MAX ms.
expect_took() {
    local took=$(($(now_ms) - $2))
    CHECKS=$((CHECKS + 1))
    if [ "$took" -lt "$3" ] || [ "$took" -gt "$4" ]; then
        fail "$1" "took $took ms, wanted $3..$4 ms" "stderr: $ERR"
    fi
}

ENDLESS_SQL="WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 4000000000) SELECT count(*) FROM s"

test_timeout_flags() {
    run dbpool --timeout=abc -c "select 1"
    expect "--timeout=abc is a usage error" 2 ""
    expect_err "--timeout=abc names the flag and the value" '--timeout: "abc" is not a duration'
    run dbpool --connect-timeout=10 -c "select 1"
    expect "--connect-timeout without a unit is a usage error" 2 ""
    expect_err "--connect-timeout=10 names the flag" '--connect-timeout: "10" is not a duration'
    run dbpool --csv --connect-timeout=2s --timeout=1m30s -c "select 1 as n"
    expect "valid --connect-timeout and --timeout" 0 $'n\n1'
    run dbpool --csv --connect-timeout=0 --timeout=0 -c "select 1 as n"
    expect "0 is no limit" 0 $'n\n1'

    run env DBPOOL_TIMEOUT=soon "$DBPOOL_BIN" -S "$SOCK" -c "select 1"
    expect "an invalid DBPOOL_TIMEOUT is a usage error" 2 ""
    expect_err "an invalid DBPOOL_TIMEOUT is named" 'DBPOOL_TIMEOUT="soon" is not a duration'
    run env DBPOOL_CONNECT_TIMEOUT=-1s "$DBPOOL_BIN" -S "$SOCK" -c "select 1"
    expect "an invalid DBPOOL_CONNECT_TIMEOUT is a usage error" 2 ""
    expect_err "an invalid DBPOOL_CONNECT_TIMEOUT is named" 'DBPOOL_CONNECT_TIMEOUT="-1s"'
    run env DBPOOL_TIMEOUT=soon DBPOOL_CONNECT_TIMEOUT=soon "$DBPOOL_BIN" -S "$SOCK" --csv \
        --timeout=5s --connect-timeout=5s -c "select 2 as n"
    expect "flags win over the environment" 0 $'n\n2'
}

test_timeouts_apply() {
    local t0
    t0=$(now_ms)
    run dbpool --timeout=300ms -c "select 1" -c "$ENDLESS_SQL"
    # the statement would run for minutes: ending within 10 s proves the
    # timeout (it takes ~0.5 s; a loaded ASan run in CI once took 3.6 s)
    expect_took "--timeout=300ms ends an endless statement in time" "$t0" 300 10000
    CHECKS=$((CHECKS + 1))
    [ "$RC" -eq 1 ] || fail "a timed-out statement exits 1" "exit $RC"
    expect_err "a timed-out statement reports TIMEOUT" 'ERROR \[TIMEOUT 57014\]: .*request timeout'

    t0=$(now_ms)
    run env DBPOOL_TIMEOUT=300ms "$DBPOOL_BIN" -S "$SOCK" -c "$ENDLESS_SQL"
    expect_took "DBPOOL_TIMEOUT=300ms ends an endless statement in time" "$t0" 300 10000
    expect_err "DBPOOL_TIMEOUT reports TIMEOUT" 'ERROR \[TIMEOUT'

    kill -STOP "$DAEMON_PID"
    t0=$(now_ms)
    run dbpool --connect-timeout=300ms -c "select 1"
    expect_took "--connect-timeout=300ms gives up on a stopped daemon in time" "$t0" 300 3000
    CHECKS=$((CHECKS + 1))
    [ "$RC" -eq 1 ] || fail "a connect timeout exits 1" "exit $RC"
    expect_err "a connect timeout says so" 'ERROR \[TIMEOUT\]: .*connect timeout'
    t0=$(now_ms)
    run env DBPOOL_CONNECT_TIMEOUT=300ms "$DBPOOL_BIN" -S "$SOCK" -c "select 1"
    expect_took "DBPOOL_CONNECT_TIMEOUT=300ms gives up in time" "$t0" 300 3000
    expect_err "DBPOOL_CONNECT_TIMEOUT reports TIMEOUT" 'ERROR \[TIMEOUT\]'
    kill -CONT "$DAEMON_PID"

    run dbpool --csv -c "select 3 as n"
    expect "the daemon serves again after SIGCONT" 0 $'n\n3'
}

# ---------------------------------------------------------------- main

write_config
test_config_check
start_daemon
test_command_chain
test_csv
test_json
test_errors
test_files
test_env_defaults
test_open_transaction_at_exit
test_table_format
test_pin
test_pin_limit
test_timeout_flags
test_timeouts_apply

kill "$DAEMON_PID"
RC=0
wait "$DAEMON_PID" || RC=$?
DAEMON_PID=
CHECKS=$((CHECKS + 1))
[ "$RC" -eq 0 ] || fail "dbpoold exits 0 on SIGTERM" "exit $RC"
CHECKS=$((CHECKS + 1))
[ ! -e "$SOCK" ] || fail "dbpoold removes its socket on exit"
CHECKS=$((CHECKS + 1))
if grep -Eq "AddressSanitizer|LeakSanitizer|runtime error:" "$WORK/dbpoold.log"; then
    fail "sanitizer report in the daemon log" "$(grep -E -A20 'Sanitizer|runtime error' "$WORK/dbpoold.log" | head -40)"
fi

if [ "$FAILED" -ne 0 ]; then
    echo "test_cli.sh: $FAILED of $CHECKS checks failed" >&2
    exit 1
fi
echo "test_cli.sh: all $CHECKS checks passed"
