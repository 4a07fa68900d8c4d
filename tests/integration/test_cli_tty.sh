#!/usr/bin/env bash
# test_cli_tty.sh — the interactive dbpool in a real terminal (tmux).
#
# Starts dbpoold on a SQLite pool, runs $DBPOOL_BIN inside a detached tmux
# pane, types into it with `send-keys` and awaits what the pane shows with
# `capture-pane` (polled against a deadline; nothing sleeps to synchronise):
# the psql-like prompt through BEGIN / an error / ROLLBACK and a continued
# statement, arrow-up recalling the previous line, history kept across runs
# ($DBPOOL_HISTORY), \timing, \x, \dt, \d NAME, \i FILE and tab completion
# of backslash commands and of a table created during the session. Every
# check runs; the script exits 1 if any failed, 77 (skip) without tmux.
# The pool is SQLite, or PostgreSQL / MariaDB when DBPOOL_TEST_BACKEND says
# so (run-pg-tests.sh and run-mysql-tests.sh run it with their servers).
#
#   DBPOOLD_BIN=$PWD/build/dbpoold DBPOOL_BIN=$PWD/build/dbpool \
#       bash tests/integration/test_cli_tty.sh
set -euo pipefail

: "${DBPOOLD_BIN:?set DBPOOLD_BIN to the dbpoold binary (make check does)}"
: "${DBPOOL_BIN:?set DBPOOL_BIN to the dbpool binary (make check does)}"
if ! command -v tmux >/dev/null; then
    echo "test_cli_tty.sh: SKIP: tmux is not installed (bash scripts/deps.sh installs it)" >&2
    exit 77
fi

BACKEND=${DBPOOL_TEST_BACKEND:-sqlite}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dbpool-tty.XXXXXX")
SOCK=$WORK/d.sock
TMUX_SOCK=                      # this run's tmux server (start_cli)
RUNS=0
DAEMON_PID=
FAILED=0
CHECKS=0

tm() { tmux -S "$TMUX_SOCK" "$@"; }

cleanup() {
    for sock in "$WORK"/tmux*.sock; do
        [ -S "$sock" ] && tmux -S "$sock" kill-server 2>/dev/null || true
    done
    if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
    fi
    if [ "$FAILED" -ne 0 ] && [ -f "$WORK/dbpoold.log" ]; then
        echo "---- dbpoold log ----" >&2
        tail -n 20 "$WORK/dbpoold.log" >&2
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

# The "app" pool on the backend under test.
pool_config() {
    case $BACKEND in
        postgres) echo "{ name = \"app\"; type = \"postgres\"; postgres = { host = \"$DBPOOL_TEST_PG_HOST\"; port = ${DBPOOL_TEST_PG_PORT:-5432}; name = \"$DBPOOL_TEST_PG_DB\"; username = \"$DBPOOL_TEST_PG_USER\"; maxOpenConns = 2; }; }" ;;
        mysql) echo "{ name = \"app\"; type = \"mysql\"; mysql = { host = \"$DBPOOL_TEST_MYSQL_HOST\"; name = \"$DBPOOL_TEST_MYSQL_DB\"; username = \"$DBPOOL_TEST_MYSQL_USER\"; passwordFile = \"$DBPOOL_TEST_MYSQL_PASSWORD_FILE\"; maxOpenConns = 2; }; }" ;;
        *) echo "{ name = \"app\"; type = \"sqlite\"; sqlite = { filePath = \"$WORK/app.db\"; maxOpenConns = 2; }; }" ;;
    esac
}

start_daemon() {
    cat >"$WORK/dbpoold.conf" <<CONF
daemon = { socket = "$SOCK"; statusSocket = "$WORK/s.sock"; shutdownTimeout = "5s"; };
pools = ( $(pool_config) );
CONF
    "$DBPOOLD_BIN" -c "$WORK/dbpoold.conf" 2>"$WORK/dbpoold.log" &
    DAEMON_PID=$!
    local deadline=$((SECONDS + 10))
    until "$DBPOOL_BIN" -S "$SOCK" -q -c 'select 1' >/dev/null 2>&1; do
        kill -0 "$DAEMON_PID" 2>/dev/null || { fail "dbpoold exited during start-up"; exit 1; }
        [ "$SECONDS" -lt "$deadline" ] || { fail "dbpoold did not answer within 10 s"; exit 1; }
        sleep 0.02
    done
    "$DBPOOL_BIN" -S "$SOCK" -q -c 'DROP TABLE IF EXISTS ttywidgets' >/dev/null
}

# A new dbpool in a fresh tmux server (the pane shows only this run; a
# server of its own, as a new one on a socket being shut down can fail).
start_cli() {
    [ -z "$TMUX_SOCK" ] || tm kill-server 2>/dev/null || true
    RUNS=$((RUNS + 1))
    TMUX_SOCK=$WORK/tmux$RUNS.sock
    tm -f /dev/null new-session -d -x 160 -y 50 \
        "env TERM=xterm DBPOOL_HISTORY='$WORK/history' '$DBPOOL_BIN' -S '$SOCK'; sleep 600"
}

pane() { tm capture-pane -p -J -S -500; }

# The last non-blank line of the pane (the prompt and what is typed after it).
last_line() { pane | sed -e 's/[[:space:]]*$//' | grep -v '^$' | tail -n 1; }

# await NAME COMMAND...: polls until COMMAND succeeds (deadline 10 s).
await() {
    local name=$1 deadline=$((SECONDS + 10))
    shift
    CHECKS=$((CHECKS + 1))
    until "$@"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            fail "$name" "the pane shows:" "$(pane | grep -v '^$' | tail -n 15)"
            return 0
        fi
        sleep 0.05
    done
}

shows() { pane | grep -Eq -- "$1"; }                  # an extended regex anywhere
prompt_is() { [ "$(last_line)" = "$1" ]; }             # the last line, exactly
count_is() { [ "$(pane | grep -Ec -- "$1")" -eq "$2" ]; }

# Types a line and Enter. tmux reads an argument ending in ';' as its own
# command separator, so a final ';' goes as a key of its own.
type_line() {
    local text=$1
    if [ "${text%;}" != "$text" ]; then
        tm send-keys -l -- "${text%;}"
        tm send-keys -H 3b
    else
        tm send-keys -l -- "$text"
    fi
    tm send-keys Enter
}

# ---------------------------------------------------------------- checks

test_prompt() {
    await "the first prompt is app=>" prompt_is "app=>"
    type_line "BEGIN;"
    await "inside a transaction the prompt is app=*>" prompt_is "app=*>"
    type_line "SELECT no_such_column;"
    await "the error is shown" shows "ERROR.*no_such_column"
    if [ "$BACKEND" = postgres ]; then
        await "an error in a transaction makes the prompt app=!>" prompt_is "app=!>"
    else
        # SQLite and MySQL keep a transaction usable after a failed statement.
        await "after an error the $BACKEND transaction is still open: app=*>" prompt_is "app=*>"
    fi
    type_line "ROLLBACK;"
    await "after ROLLBACK the prompt is app=> again" prompt_is "app=>"
    type_line "SELECT"
    await "a statement not yet complete shows app->" prompt_is "app->"
    type_line "'continued' AS c;"
    await "the continued statement runs" shows "^ *continued *$"
}

test_arrow_up() {
    type_line "SELECT 'uparrow' AS x;"
    await "a statement's output" count_is "^ *uparrow *$" 1
    tm send-keys Up
    await "arrow-up recalls the previous line" prompt_is "app=> SELECT 'uparrow' AS x;"
    tm send-keys Enter
    await "the recalled line runs again" count_is "^ *uparrow *$" 2
}

test_timing_and_x() {
    type_line '\timing on'
    await "\\timing on says so" shows "^Timing is on\\.$"
    type_line "SELECT 7 AS seven;"
    await "\\timing prints Time: N.NNN ms" shows "^Time: [0-9]+\\.[0-9]{3} ms$"
    type_line '\timing off'
    await "\\timing off says so" shows "^Timing is off\\.$"
    type_line '\x'
    await "\\x toggles expanded output on" shows "^Expanded display is on\\.$"
    type_line "SELECT 1 AS a, 'two' AS bb;"
    await "\\x prints a record header" shows "^-\\[ RECORD 1 \\]-$"
    await "\\x prints name | value lines" shows "^bb \\| two$"
    type_line '\x off'
    await "\\x off" shows "^Expanded display is off\\.$"
}

test_describe_and_complete() {
    type_line "CREATE TABLE ttywidgets (id INTEGER PRIMARY KEY, label TEXT NOT NULL DEFAULT 'w');"
    await "CREATE TABLE runs" prompt_is "app=>"
    type_line '\dt'
    await "\\dt lists the new table" shows "^( *| *public +\\| )ttywidgets *$"
    type_line '\d ttywidgets'
    await "\\d shows a column's type, nullability and default" \
        shows "^ *label +\\| +(TEXT|text) +\\| +not null +\\| +'w'(::text)? *$"
    type_line '\d nothing_here'
    await "\\d of a missing table says so" shows 'did not find a table named "nothing_here"'
    tm send-keys -l -- "SELECT count(*) AS n FROM ttywid"
    tm send-keys Tab
    await "Tab completes a table created in this session" \
        prompt_is "app=> SELECT count(*) AS n FROM ttywidgets"
    tm send-keys C-u
    tm send-keys -l -- '\tim'
    tm send-keys Tab
    await "Tab completes a backslash command" prompt_is 'app=> \timing'
    tm send-keys C-u
}

test_include() {
    printf "INSERT INTO ttywidgets (id, label) VALUES (1, 'from-file');\nSELECT label AS l FROM ttywidgets;\n" \
        >"$WORK/script.sql"
    type_line "\\i $WORK/script.sql"
    await "\\i runs the file's statements" shows "^ *from-file *$"
}

test_history_persists() {
    type_line "SELECT 'remember me' AS r;"
    await "the statement before \\q runs" shows "^ *remember me *$"
    type_line '\q'
    await "\\q quits" shows "^app=> \\\\q$"
    local deadline=$((SECONDS + 10))
    until [ -s "$WORK/history" ] || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.05; done
    start_cli
    await "a second run starts" prompt_is "app=>"
    tm send-keys Up Up
    await "arrow-up in a new run recalls the last run's lines" \
        prompt_is "app=> SELECT 'remember me' AS r;"
    tm send-keys C-u
    type_line '\q'
}

start_daemon
start_cli
test_prompt
test_arrow_up
test_timing_and_x
test_describe_and_complete
test_include
test_history_persists

if [ "$FAILED" -ne 0 ]; then
    echo "test_cli_tty.sh: $FAILED of $CHECKS checks failed" >&2
    exit 1
fi
echo "test_cli_tty.sh: all $CHECKS checks passed"
