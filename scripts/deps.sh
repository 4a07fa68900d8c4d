#!/usr/bin/env bash
# scripts/deps.sh — install the Debian 12 packages dbpoold needs to build,
# run and test. Idempotent; uses sudo only when not already root.
set -euo pipefail

PKGS=(build-essential autoconf automake libtool pkg-config
      libevent-dev libsqlite3-dev sqlite3 libconfig-dev libcriterion-dev
      libpq-dev postgresql
      # MySQL/MariaDB: the driver's Connector/C, a throwaway server for the
      # tests (tests/mysql/mysql-harness.sh) and sysbench for bench/compare.sh
      libmariadb-dev mariadb-server mariadb-client sysbench
      curl jq valgrind procps
      # the interactive dbpool: libedit (line editing, history) and tmux for
      # its terminal test (tests/integration/test_cli_tty.sh)
      libedit-dev tmux
      # systemd-socket-activate and systemd-analyze for tests/integration/test_systemd
      # and tests/systemd/test_units.sh; its pkg-config file names the unit directory
      systemd
      # libsystemd for sd_notify/sd_listen_fds (configure --with-libsystemd;
      # the daemon builds and runs without it too)
      libsystemd-dev
      # the man pages' lint in the test suite (tests/man/check-man.sh)
      mandoc
      # the Python client's tests (tests/python/run.sh): python3, and venv +
      # pip for its offline `pip install` test
      python3 python3-venv python3-pip
      # the Go database/sql driver and its tests (clients/go, tests/go/run.sh)
      golang-go
      # fuzzing (--enable-fuzzing, make fuzz): clang 14, its libFuzzer and
      # sanitizer runtimes (libclang_rt.fuzzer*), llvm-symbolizer for reports
      clang libclang-rt-14-dev llvm)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "deps: installing ${missing[*]}" >&2
# Installing mariadb-server must not leave a system server running (the
# tests start their own, tests/mysql/mysql-harness.sh): a policy-rc.d that
# forbids starting services while apt runs (only if there is none already),
# and the service disabled afterwards where systemd runs.
policy=/usr/sbin/policy-rc.d
own_policy=false
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# scripts/deps.sh: no service starts during this install\nexit 101\n' |
        $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    own_policy=true
fi
trap '! $own_policy || $SUDO rm -f "$policy"' EXIT
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    $SUDO systemctl disable --now mariadb >/dev/null 2>&1 || true
fi
