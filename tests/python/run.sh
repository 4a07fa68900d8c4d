#!/usr/bin/env bash
# run.sh — the Python client's tests (clients/python/tests, standard unittest
# runner) against the real daemon ($DBPOOLD_BIN): a SQLite pool always, and a
# PostgreSQL pool too when tests/pg/run-pg-tests.sh has exported the
# harness's DBPOOL_TEST_PG_* variables, a MySQL pool when
# tests/mysql/run-mysql-tests.sh has exported DBPOOL_TEST_MYSQL_* (both call
# this script). Exit 77 (skip) without python3.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=${TOP_SRCDIR:-$(cd "$here/../.." && pwd)}
: "${DBPOOLD_BIN:?set DBPOOLD_BIN to the dbpoold binary (make check does)}"
command -v python3 >/dev/null || { echo "run.sh: python3 not found; skipping" >&2; exit 77; }

cd "$src/clients/python" || exit 1
export PYTHONPATH="$src/clients/python" PYTHONDONTWRITEBYTECODE=1
exec python3 -m unittest discover -s tests -v
