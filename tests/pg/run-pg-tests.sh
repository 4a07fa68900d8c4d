#!/usr/bin/env bash
# run-pg-tests.sh — the PostgreSQL part of `make check`: start a throwaway
# PostgreSQL (pg-harness.sh), run the PostgreSQL driver tests and the
# protocol-level integration suite against a postgres pool, the
# PostgreSQL-specific integration tests (test_postgres: types, errors,
# streaming, cancel, resilience; one of them starts a second throwaway server
# itself through pg-harness.sh, found via DBPOOL_TEST_PG_HARNESS), dbpool-migrate's
# tests (tests/migrate/), the Python and Go clients' tests (tests/python/run.sh,
# tests/go/run.sh), and always stop the server afterwards.
# The fault matrix and the bank-transfer test (test_faults, test_bank) stop, restart and freeze their server, so they get
# a second throwaway server of their own (DBPOOL_TEST_PG_FAULT_DIR), also
# always stopped. Exit status: 1 if any test program failed, else 0.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${TOP_BUILDDIR:-$(pwd)}
dir=$(mktemp -d "${TMPDIR:-/tmp}/dbpool-pg.XXXXXX")
faultdir=$(mktemp -d "${TMPDIR:-/tmp}/dbpool-pgf.XXXXXX")
trap 'bash "$here/pg-harness.sh" stop "$dir" >/dev/null 2>&1 || true
      bash "$here/pg-harness.sh" stop "$faultdir" >/dev/null 2>&1 || true' EXIT

if ! env_lines=$(bash "$here/pg-harness.sh" start "$dir"); then
    echo "run-pg-tests: could not start PostgreSQL (see above)" >&2
    exit 1
fi
eval "$env_lines"
export DBPOOL_TEST_BACKEND=postgres
export DBPOOL_TEST_PG_HOST="$PGHOST" DBPOOL_TEST_PG_PORT="$PGPORT"
export DBPOOL_TEST_PG_DB="$PGDATABASE" DBPOOL_TEST_PG_USER="$PGUSER"
export DBPOOL_TEST_PG_HARNESS="$here/pg-harness.sh"

status=0
for t in tests/unit/test_backend_pg tests/integration/test_daemon tests/integration/test_postgres tests/integration/test_pin \
         tests/integration/test_lib_timeouts tests/integration/test_lib_async tests/integration/test_reload; do
    echo "== $t (postgres)"
    "$build/$t" || { echo "FAIL: $t (postgres)"; [ $status -ne 0 ] || status=1; }
done

echo "== tests/python/run.sh (postgres)"
bash "$here/../python/run.sh" || { echo "FAIL: tests/python/run.sh (postgres)"; status=1; }
echo "== tests/integration/test_cli_tty.sh (postgres)"
bash "$here/../integration/test_cli_tty.sh" || { echo "FAIL: test_cli_tty.sh (postgres)"; [ $status -ne 0 ] || status=1; }
echo "== tests/migrate/test_migrate.sh (postgres)"
bash "$here/../migrate/test_migrate.sh" || { echo "FAIL: test_migrate.sh (postgres)"; [ $status -ne 0 ] || status=1; }
echo "== tests/migrate/test_migrate_compat.sh (postgres)"
bash "$here/../migrate/test_migrate_compat.sh" ||
    { echo "FAIL: test_migrate_compat.sh (postgres)"; [ $status -ne 0 ] || status=1; }
echo "== tests/go/run.sh (postgres)"
rc=0; bash "$here/../go/run.sh" || rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then echo "FAIL: tests/go/run.sh (postgres)"; status=1; fi

echo "== fault server"
if ! bash "$here/pg-harness.sh" start "$faultdir" >/dev/null; then
    echo "run-pg-tests: could not start the fault server (see above)" >&2
    exit 1
fi
export DBPOOL_TEST_PG_FAULT_DIR="$faultdir"
for t in tests/integration/test_faults tests/integration/test_bank tests/integration/test_pin_faults; do
    echo "== $t (postgres, fault server)"
    "$build/$t" || { echo "FAIL: $t (postgres)"; [ $status -ne 0 ] || status=1; }
done
exit $status
