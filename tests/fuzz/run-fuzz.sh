#!/usr/bin/env bash
# tests/fuzz/run-fuzz.sh SRCDIR BUILDDIR — the body of `make fuzz` (a build
# configured with --enable-fuzzing). Runs each libFuzzer target in turn,
# starting from its seed corpus in tests/fuzz/corpus/<target>, and prints
# the figures doc/reliability.md records (execs, exec/s, seconds, cov, ft).
# Fails when a target crashes, a sanitizer reports, an input leaks or times
# out, or libFuzzer leaves an artifact.
#
# Environment:
#   FUZZ_SECONDS  seconds per target (default 60)
#   FUZZ_RUNS     run this many inputs instead of a time bound
#   FUZZ_TARGETS  subset, e.g. "proto config" (default: all five)
#   FUZZ_NICE     nice level for the fuzzer (default 0)
#   FUZZ_ARGS     extra libFuzzer flags
# Working corpora (what the fuzzer adds), logs and artifacts go to
# BUILDDIR/fuzz-work/<target>/ — never into the source tree.
set -uo pipefail
SRC=${1:?usage: run-fuzz.sh SRCDIR BUILDDIR}
BUILD=${2:?usage: run-fuzz.sh SRCDIR BUILDDIR}
SECONDS_PER=${FUZZ_SECONDS:-60}
TARGETS=${FUZZ_TARGETS:-proto session config status sqlsplit}
NICE=${FUZZ_NICE:-0}

options() {
    case $1 in
        proto)    echo "-max_len=4096" ;;
        session)  echo "-max_len=8192 -timeout=60" ;;
        # libconfig 1.5 leaks on some syntax errors (tests/lsan.supp): a
        # per-input leak check would run a full LSan scan on each of those
        # inputs (10x slower). Leaks of ours still fail the run at exit.
        config)   echo "-max_len=4096 -detect_leaks=0 -dict=$SRC/tests/fuzz/dict/config.dict" ;;
        status)   echo "-max_len=4096 -dict=$SRC/tests/fuzz/dict/status.dict" ;;
        sqlsplit) echo "-max_len=4096 -dict=$SRC/tests/fuzz/dict/sqlsplit.dict" ;;
        *) echo "run-fuzz.sh: unknown target '$1' (proto session config status sqlsplit)" >&2
           return 1 ;;
    esac
}

# "execs exec/s cov ft" from a libFuzzer log.
figures() {
    local log=$1 execs rate cov ft
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    echo "${execs:-?} ${rate:-?} ${cov:-?} ${ft:-?}"
}

# Third-party leaks (tests/lsan.supp); UBSan reports abort like crashes.
export LSAN_OPTIONS="suppressions=$SRC/tests/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
# A 16 MiB quarantine (default 256) still catches a use of memory freed by
# the same input or thousands of inputs before, and runs 2-3x faster: fresh
# quarantine-sized memory for every allocation costs page faults.
export ASAN_OPTIONS="quarantine_size_mb=16${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

status=0
summary=()
for t in $TARGETS; do
    opts=$(options "$t") || exit 2
    bin=$BUILD/tests/fuzz/fuzz_$t
    work=$BUILD/fuzz-work/$t
    mkdir -p "$work/corpus" "$work/artifacts"
    stamp=$work/.started
    touch "$stamp"
    if [ -n "${FUZZ_RUNS:-}" ]; then bound="-runs=$FUZZ_RUNS"; else bound="-max_total_time=$SECONDS_PER"; fi
    log=$work/fuzz.log
    cmd=(nice -n "$NICE" "$bin" $bound -timeout=30 $opts -print_final_stats=1
         -artifact_prefix="$work/artifacts/" ${FUZZ_ARGS:-} "$work/corpus" "$SRC/tests/fuzz/corpus/$t")
    echo "fuzz: $t: ${cmd[*]}" >&2
    start=$(date +%s)
    "${cmd[@]}" >"$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    read -r execs rate cov ft < <(figures "$log")
    new=$(find "$work/artifacts" -type f -newer "$stamp" | head -n 5)
    if [ $rc -ne 0 ] || [ -n "$new" ]; then
        status=1
        echo "fuzz: $t: FAILED (exit $rc) — log $log" >&2
        grep -E 'ERROR|FAILURE|runtime error|SUMMARY|Test unit written' "$log" | head -n 20 >&2
        [ -n "$new" ] && echo "fuzz: $t: artifacts: $new (reproduce: $bin <file>)" >&2
        result=FAILED
    else
        result=ok
    fi
    summary+=("$(printf '%-9s %-6s execs=%-10s exec/s=%-7s seconds=%-6s cov=%-6s ft=%s' \
                "$t" "$result" "$execs" "$rate" "$took" "$cov" "$ft")")
done
echo "fuzz: summary"
printf '  %s\n' "${summary[@]}"
exit $status
