#!/usr/bin/env bash
# test_cli_mysql.sh — the dbpool CLI's script splitter (src/common/sqlsplit.c)
# against a real MariaDB through a mysql pool: # and "-- " comments, "--"
# without a space (an operator, not a comment), /* */ comments and /*! */
# executable comments, backslash escapes in strings, and CREATE PROCEDURE /
# CREATE TRIGGER / BEGIN NOT ATOMIC bodies with semicolons inside, without
# any DELIMITER command; and --pin (a TEMPORARY table and a user variable
# across transactions). Run by tests/mysql/run-mysql-tests.sh with the
# server's environment (DBPOOL_TEST_MYSQL_HOST, _USER, _DB, _PASSWORD_FILE);
# it starts its own dbpoold on sockets in a temporary directory. Every check
# runs; exits 1 if any failed.
set -euo pipefail

: "${DBPOOLD_BIN:?set DBPOOLD_BIN to the dbpoold binary (make check does)}"
: "${DBPOOL_BIN:?set DBPOOL_BIN to the dbpool binary (make check does)}"
: "${DBPOOL_TEST_MYSQL_HOST:?start a server with tests/mysql/mysql-harness.sh start DIR and eval its output}"
: "${DBPOOL_TEST_MYSQL_USER:?}" "${DBPOOL_TEST_MYSQL_DB:?}" "${DBPOOL_TEST_MYSQL_PASSWORD_FILE:?}"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dbpool-myc.XXXXXX")
SOCK=$WORK/d.sock
DAEMON_PID=
FAILED=0
CHECKS=0

cleanup() {
    if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
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

dbpool() { "$DBPOOL_BIN" -S "$SOCK" "$@"; }

start_daemon() {
    cat >"$WORK/dbpoold.conf" <<EOF
daemon = { socket = "$SOCK"; statusSocket = "$WORK/s.sock"; logLevel = "info"; shutdownTimeout = "5s"; };
pools = (
    { name = "app"; type = "mysql";
      mysql = { host = "$DBPOOL_TEST_MYSQL_HOST"; name = "$DBPOOL_TEST_MYSQL_DB";
                username = "$DBPOOL_TEST_MYSQL_USER"; passwordFile = "$DBPOOL_TEST_MYSQL_PASSWORD_FILE";
                maxOpenConns = 2; }; }
);
EOF
    "$DBPOOLD_BIN" -c "$WORK/dbpoold.conf" 2>"$WORK/dbpoold.log" &
    DAEMON_PID=$!
    local deadline=$((SECONDS + 15))
    until "$DBPOOL_BIN" -S "$SOCK" -q -c 'select 1' >/dev/null 2>&1; do
        if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            fail "dbpoold exited during start-up (a mysql pool)"
            exit 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            fail "dbpoold with a mysql pool did not answer within 15 s"
            exit 1
        fi
        sleep 0.02
    done
}

test_comments() {
    dbpool -q -c "drop table if exists cm" -c "create table cm (id int primary key, s text)"
    cat >"$WORK/comments.sql" <<'EOF'
# a hash comment; with a semicolon
insert into cm values (1, 'a'); -- a dash comment; with a semicolon
insert into cm values (2, 'b;c') /* a block comment; with a semicolon */;
insert into cm values (3, 5--1);
/*! insert into cm values (4, 'exec') */;
insert into cm values (5, 'back\'slash;');
insert into cm values (6, "dq;\"x");
EOF
    run dbpool --csv -f "$WORK/comments.sql"
    expect "the script with MySQL comments runs" 0 ""
    run dbpool --csv -c "select id, s from cm order by id"
    expect "every statement ran once, semicolons in comments and strings kept" 0 \
        $'id,s\n1,a\n2,b;c\n3,6\n4,exec\n5,back\'slash;\n6,"dq;""x"'
}

test_routine_bodies() {
    cat >"$WORK/routines.sql" <<'EOF'
drop procedure if exists fill;
drop table if exists pt;
create table pt (n int, doubled int);
create trigger pt_double before insert on pt for each row
begin
    set new.doubled = new.n * 2;
    if new.n < 0 then set new.doubled = 0; end if;
end;
create procedure fill(IN k INT)
begin
    declare i int default 0;
    while i < k do
        insert into pt (n) values (i); -- one row; per turn
        set i = i + 1;
    end while;
end;
call fill(4);
begin not atomic
    declare x int default 10;
    insert into pt (n) values (x);
end;
EOF
    run dbpool --csv -f "$WORK/routines.sql"
    expect "procedure, trigger and BEGIN NOT ATOMIC bodies without DELIMITER" 0 ""
    run dbpool --csv -c "select count(*) as n, sum(doubled) as d from pt"
    expect "the procedure ran its loop, the trigger fired per row" 0 $'n,d\n5,32'
}

test_errors() {
    run dbpool --csv -c "select 1 as a" -c "selekt 2" -c "select 3 as c"
    CHECKS=$((CHECKS + 1))
    [ "$RC" -ne 0 ] && [ "$OUT" = $'a\n1' ] && grep -Eq "42000|SQL syntax" <<<"$ERR" ||
        fail "a syntax error stops the run with MySQL's SQLSTATE/message" "rc $RC" "$OUT" "$ERR"
}

# --pin: the session keeps one server connection, so a TEMPORARY table and
# a user variable made in one transaction are there in the next; both end
# with the session (the daemon resets the connection).
test_pin() {
    run dbpool --pin --csv -c "create temporary table pin_tmp (x int)" -c "set @pin_v := 40" \
        -c "begin" -c "insert into pin_tmp values (1)" -c "commit" \
        -c "begin" -c "insert into pin_tmp values (2)" -c "commit" \
        -c "select count(*) + @pin_v as n from pin_tmp"
    expect "--pin: a TEMPORARY table and @variable last across transactions" 0 $'n\n42'
    run dbpool --pin --csv -c "select @pin_v is null as unset"
    expect "--pin: the next session has no @variable" 0 $'unset\n1'
    run dbpool --pin --csv -c "select count(*) as n from pin_tmp"
    CHECKS=$((CHECKS + 1))
    [ "$RC" -eq 1 ] && grep -q "pin_tmp" <<<"$ERR" ||
        fail "--pin: the next session has no TEMPORARY table" "rc $RC" "$OUT" "$ERR"
}

start_daemon
test_pin
test_comments
test_routine_bodies
test_errors
echo "test_cli_mysql.sh: $CHECKS checks, $FAILED failed"
[ "$FAILED" -eq 0 ]
