#!/usr/bin/env bash
# scripts/quickstart.sh — install dependencies, build, and run dbpoold in the
# foreground on etc/dbpoold.conf (a SQLite pool; no database server needed).
# Sockets and the database live in ./run so nothing needs root beyond apt.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh build
RUN="$PWD/run"
mkdir -p "$RUN"
export DBPOOLD_DAEMON_SOCKET="$RUN/dbpoold.sock"
export DBPOOLD_DAEMON_STATUS_SOCKET="$RUN/status.sock"
export DBPOOLD_POOL_APP_FILE_PATH="$RUN/app.db"
cat <<MSG
dbpoold: client socket  $DBPOOLD_DAEMON_SOCKET
dbpoold: status socket  $DBPOOLD_DAEMON_STATUS_SOCKET
dbpoold: database       $DBPOOLD_POOL_APP_FILE_PATH (pool "app", SQLite)
Try, in another terminal:
  build/dbpool -S $DBPOOLD_DAEMON_SOCKET -d app -c "select sqlite_version() as v, 1+1 as two"
  curl -s --unix-socket $DBPOOLD_DAEMON_STATUS_SOCKET http://localhost/pools
Stop with Ctrl-C.
MSG
exec build/dbpoold -c etc/dbpoold.conf
