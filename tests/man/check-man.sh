#!/usr/bin/env bash
# check-man.sh — the manual pages in man/ render cleanly and document every
# command-line option, so pages and programs cannot drift apart:
#   - `mandoc -T lint -W style` and `groff -ww -z -mandoc` report nothing
#     (mandoc's "referenced manual not found", which depends on the pages
#     installed on this machine, and "operating system explicitly
#     specified", as the pages name dbpoold in .Os on purpose, aside);
#   - every option `dbpoold -h` and `dbpool --help` print has an ".It Fl"
#     entry in man/dbpoold.8 and man/dbpool.1 (dbpoolctl, dbpool-migrate -help:
#     man/dbpoolctl.8, man/dbpool-migrate.1), and every entry there is an
#     option of the program.
# The configuration keys of man/dbpoold.conf.5 are checked against the code
# by tests/unit/test_man_config.c. Every check runs; exit 1 if any failed,
# 77 (skipped) without mandoc (bash scripts/deps.sh installs it).
#
#   TOP_SRCDIR=$PWD DBPOOLD_BIN=$PWD/build/dbpoold DBPOOL_BIN=$PWD/build/dbpool \
#       bash tests/man/check-man.sh
set -euo pipefail

: "${TOP_SRCDIR:?set TOP_SRCDIR to the source tree (make check does)}"
: "${DBPOOLD_BIN:?set DBPOOLD_BIN to the dbpoold binary (make check does)}"
: "${DBPOOL_BIN:?set DBPOOL_BIN to the dbpool binary (make check does)}"
if ! command -v mandoc >/dev/null; then
    echo "check-man.sh: SKIP: mandoc is not installed (bash scripts/deps.sh, or apt-get install mandoc)"
    exit 77
fi

MAN=$TOP_SRCDIR/man
PAGES=(dbpoold.8 dbpoold.conf.5 dbpool.1 libdbpool.3 dbpoolctl.8 dbpool-migrate.1)
# shellcheck source=SCRIPTDIR/../checks.sh
. "$TOP_SRCDIR/tests/checks.sh"

# ---------------------------------------------------------------- lint

lint_pages() {
    local page out
    for page in "${PAGES[@]}"; do
        if [ ! -f "$MAN/$page" ]; then
            fail "man/$page does not exist"
            continue
        fi
        out=$(mandoc -T lint -W style "$MAN/$page" 2>&1 |
              grep -v -e 'referenced manual not found' -e 'operating system explicitly specified' \
                      -e 'mandoc.db' || true)
        [ -z "$out" ] || fail "mandoc -T lint -W style man/$page" "$out"
        out=$(groff -ww -z -mandoc "$MAN/$page" 2>&1 || true)
        [ -z "$out" ] || fail "groff -ww -z -mandoc man/$page" "$out"
    done
}

# ---------------------------------------------------------------- options

# The options a --help text names: -X and --long tokens, one per line.
help_options() {
    grep -oE '(^|[[:space:],(])--?[A-Za-z?][A-Za-z-]*' | sed -E 's/^[[:space:],(]//' |
        grep -vE '^-(-)?$' | sort -u
}

# The options a page documents in its ".It Fl ..." entries, one per line
# (".It Fl S Ar path , Fl \-socket Ns = Ns Ar path" gives -S and --socket).
page_options() {
    grep -E '^\.It Fl ' "$1" |
        awk '{ for (i = 1; i < NF; i++) if ($i == "Fl") print "-" $(i + 1) }' |
        sed -e 's/\\-/-/g' | sort -u
}

# check_options PROGRAM HELP_TEXT PAGE
check_options() {
    local prog=$1 help=$2 page=$3 opt
    local -a in_help in_page
    mapfile -t in_help < <(help_options <<<"$help")
    mapfile -t in_page < <(page_options "$MAN/$page")
    [ "${#in_help[@]}" -gt 0 ] || fail "$prog: no options found in its help" "$help"
    # (here-strings, not `printf | grep -q`: with pipefail, grep quitting
    # early would fail the pipeline whenever printf caught SIGPIPE)
    for opt in "${in_help[@]}"; do
        grep -qxF -- "$opt" <<<"$(printf '%s\n' "${in_page[@]}")" ||
            fail "$prog: option $opt of its help is not documented in man/$page" \
                 "add an \".It Fl\" entry for it"
    done
    for opt in "${in_page[@]}"; do
        grep -qxF -- "$opt" <<<"$(printf '%s\n' "${in_help[@]}")" ||
            fail "man/$page documents $opt, which $prog --help does not list" \
                 "remove it from the page, or add it to the program's usage()"
    done
}

lint_pages
if [ -f "$MAN/dbpoold.8" ]; then
    check_options dbpoold "$("$DBPOOLD_BIN" -h)" dbpoold.8
fi
if [ -f "$MAN/dbpool.1" ]; then
    check_options dbpool "$("$DBPOOL_BIN" --help)" dbpool.1
fi
if [ -f "$MAN/dbpoolctl.8" ] && [ -n "${DBPOOLCTL_BIN:-}" ]; then
    check_options dbpoolctl "$("$DBPOOLCTL_BIN" --help)" dbpoolctl.8
fi
if [ -f "$MAN/dbpool-migrate.1" ] && [ -n "${DBPOOL_MIGRATE_BIN:-}" ]; then
    check_options dbpool-migrate "$("$DBPOOL_MIGRATE_BIN" -help 2>&1)" dbpool-migrate.1
fi
if [ "$FAILED" -ne 0 ]; then
    echo "check-man.sh: $FAILED check(s) failed" >&2
    exit 1
fi
echo "check-man.sh: ${#PAGES[@]} pages lint-free, options of dbpoold, dbpool, dbpoolctl and dbpool-migrate documented"
