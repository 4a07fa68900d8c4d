#!/usr/bin/env bash
# scripts/deps.sh — install the Debian 12 packages dbpoold needs to build,
# run and test. Idempotent; uses sudo only when not already root.
set -euo pipefail

PKGS=(build-essential autoconf automake libtool pkg-config
      libevent-dev libsqlite3-dev sqlite3 libconfig-dev libcriterion-dev
      libpq-dev postgresql
      curl jq valgrind procps
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
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
