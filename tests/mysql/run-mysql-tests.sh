#!/usr/bin/env bash
# run-mysql-tests.sh — the MySQL/MariaDB part of `make check`: start a
# throwaway MariaDB (mysql-harness.sh), run the driver's unit test
# (test_mysql_conn), the protocol-level integration suite (test_daemon) and
# the client-library timeout and non-blocking tests against a mysql pool, then the
# MySQL-specific integration tests (test_mysql: types, errors, transactions,
# cancel, streaming, load, status, resilience; test_mysql_types: the type
# mapping in both protocols, the statement cache, CALL), the CLI's script splitter
# (test_cli_mysql.sh), dbpool-migrate's tests (tests/migrate/) and the
# Python and Go clients' tests (tests/python/run.sh, tests/go/run.sh).
# The resilience and freeze cases (test_mysql's myresilience, myfreeze), the
# fault matrix (test_faults) and the bank-transfer invariant (test_bank)
# stop, crash, freeze and restart their server, so they
# get a second throwaway server of their own (DBPOOL_TEST_MYSQL_FAULT_DIR, run
# with the harness script found through DBPOOL_TEST_MYSQL_HARNESS). Both
# servers are always stopped. Exit status: 1 if any test program failed,
# else 0.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${TOP_BUILDDIR:-$(pwd)}
dir=$(mktemp -d "${TMPDIR:-/tmp}/dbpool-my.XXXXXX")
faultdir=$(mktemp -d "${TMPDIR:-/tmp}/dbpool-myf.XXXXXX")
# test_mysql leaves the fault server's lock file and harness log beside it.
trap 'bash "$here/mysql-harness.sh" stop "$dir" >/dev/null 2>&1 || true
      bash "$here/mysql-harness.sh" stop "$faultdir" >/dev/null 2>&1 || true
      rm -f "$faultdir.lock" "$faultdir.log"' EXIT

# Both servers start at once (mariadb-install-db takes seconds each).
bash "$here/mysql-harness.sh" start "$faultdir" >/dev/null 2>"$faultdir.start.log" &
fault_start=$!
if ! env_lines=$(bash "$here/mysql-harness.sh" start "$dir"); then
    echo "run-mysql-tests: could not start MariaDB (see above)" >&2
    exit 1
fi
eval "$env_lines"
export DBPOOL_TEST_BACKEND=mysql
export DBPOOL_TEST_MYSQL_HARNESS="$here/mysql-harness.sh"
if ! wait "$fault_start"; then
    cat "$faultdir.start.log" >&2
    echo "run-mysql-tests: could not start the fault server (see above)" >&2
    rm -f "$faultdir.start.log"
    exit 1
fi
rm -f "$faultdir.start.log"
export DBPOOL_TEST_MYSQL_FAULT_DIR="$faultdir"

status=0
for t in tests/unit/test_mysql_conn tests/integration/test_daemon tests/integration/test_pin \
         tests/integration/test_lib_timeouts tests/integration/test_lib_async tests/integration/test_mysql \
         tests/integration/test_mysql_types; do
    echo "== $t (mysql)"
    "$build/$t" || { echo "FAIL: $t (mysql)"; [ $status -ne 0 ] || status=1; }
done
echo "== tests/mysql/test_cli_mysql.sh (mysql)"
bash "$here/test_cli_mysql.sh" || { echo "FAIL: test_cli_mysql.sh"; [ $status -ne 0 ] || status=1; }
echo "== tests/integration/test_cli_tty.sh (mysql)"
bash "$here/../integration/test_cli_tty.sh" || { echo "FAIL: test_cli_tty.sh (mysql)"; [ $status -ne 0 ] || status=1; }
echo "== tests/python/run.sh (mysql)"
bash "$here/../python/run.sh" || { echo "FAIL: tests/python/run.sh (mysql)"; [ $status -ne 0 ] || status=1; }
echo "== tests/migrate/test_migrate.sh (mysql)"
bash "$here/../migrate/test_migrate.sh" || { echo "FAIL: test_migrate.sh (mysql)"; [ $status -ne 0 ] || status=1; }
echo "== tests/migrate/test_migrate_compat.sh (mysql)"
bash "$here/../migrate/test_migrate_compat.sh" ||
    { echo "FAIL: test_migrate_compat.sh (mysql)"; [ $status -ne 0 ] || status=1; }
echo "== tests/go/run.sh (mysql)"
rc=0; bash "$here/../go/run.sh" || rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then echo "FAIL: tests/go/run.sh (mysql)"; status=1; fi
# One cell at a time (-j1): every cell stops or freezes the one fault
# server, so parallel cells would only wait for each other's lock.
for t in tests/integration/test_faults tests/integration/test_bank tests/integration/test_pin_faults; do
    echo "== $t (mysql, fault server)"
    "$build/$t" -j1 || { echo "FAIL: $t (mysql)"; [ $status -ne 0 ] || status=1; }
done
exit $status
