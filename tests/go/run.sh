#!/usr/bin/env bash
# tests/go/run.sh — the Go database/sql driver's tests (clients/go): `go vet`,
# then `go test` against a real dbpoold ($DBPOOLD_BIN, started by the tests'
# TestMain on a SQLite pool in a temporary directory). Under
# tests/pg/run-pg-tests.sh the DBPOOL_TEST_PG_* variables are set and the
# PostgreSQL tests run too; without them they are skipped. Nothing is
# downloaded: the driver uses the standard library only (GOPROXY=off). Exit
# status 77 (skipped) only when `go` is not installed (scripts/deps.sh
# installs golang-go).
set -euo pipefail

: "${DBPOOLD_BIN:?set DBPOOLD_BIN to the dbpoold binary (make check does)}"
src=${TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${TOP_BUILDDIR:-$src/build}

if ! command -v go >/dev/null 2>&1; then
    echo "tests/go/run.sh: SKIP: the go command is missing; install golang-go (bash scripts/deps.sh)" >&2
    exit 77
fi
export GOPROXY=off GOTOOLCHAIN=local GOFLAGS=${GOFLAGS:-} GOTELEMETRY=off
export GOCACHE=${GOCACHE:-$build/tests/go/cache}
export GOPATH=${GOPATH:-$build/tests/go/gopath}
mkdir -p "$GOCACHE" "$GOPATH"

cd "$src/clients/go"
echo "== go vet"
go vet ./...
echo "== go test"
go test -count=1 -v ./... 2>&1 | grep -v '^=== RUN' || exit 1
