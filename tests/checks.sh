# shellcheck shell=bash
# tests/checks.sh — helpers shared by the shell tests (sourced, not run):
# each check counts in CHECKS and a failed one in FAILED, with its details
# on stderr, so a script runs every check and exits 1 at the end if any
# failed.
#   . "$TOP_SRCDIR/tests/checks.sh"
FAILED=0
CHECKS=0

# fail NAME [DETAIL...]: report a failed check.
fail() {
    FAILED=$((FAILED + 1))
    printf 'FAIL: %s\n' "$1" >&2
    shift
    for line in "$@"; do printf '      %s\n' "$line" >&2; done
}

# check NAME COMMAND...: the command succeeds.
check() {
    local name=$1
    shift
    CHECKS=$((CHECKS + 1))
    "$@" >/dev/null 2>&1 || fail "$name" "command: $*"
}

# check_eq NAME GOT WANTED
check_eq() {
    CHECKS=$((CHECKS + 1))
    [ "$2" = "$3" ] || fail "$1" "got:    $(printf '%q' "$2")" "wanted: $(printf '%q' "$3")"
}
