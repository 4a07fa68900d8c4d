#!/usr/bin/env bash
#
# bench/compare.sh — dbpoold against PgBouncer and direct PostgreSQL: one
# command, one run, one Markdown table.
#
#   bench/compare.sh [--duration S] [--warmup S] [--repeat R] [--idle N]
#                    [--results FILE] [--keep]
#
# What it does, in order:
#   1. installs what is missing (postgresql, pgbouncer, the build
#      dependencies; apt-get, as root) and builds dbpoold and dbpool-bench
#   2. in one temporary directory, all on Unix sockets: starts a throwaway
#      PostgreSQL (tests/pg/pg-harness.sh, port $PGPORT_TEST or 54400),
#      loads `pgbench -i -s 10`, starts PgBouncer (transaction mode,
#      default_pool_size = 20, max_client_conn = 12000; as the postgres user
#      when run as root, PgBouncer refuses root) and dbpoold (one postgres
#      pool, maxOpenConns = 20, logLevel "warn")
#   3. idle clients: 10,000 connections held open by `dbpool-bench --idle`
#      against dbpoold and against PgBouncer; VmRSS of the daemon before and
#      after gives the memory per idle client
#   4. throughput rows: select and tpcb at 20 and 200 clients, and
#      connect-per-transaction (select) at 20 clients, each against direct
#      PostgreSQL, PgBouncer and dbpoold with dbpool-bench, plus pgbench's own
#      figure (-M extended) for direct and PgBouncer. The order of the five
#      runs rotates from row to row so machine drift hits every target alike.
#      Before every tpcb run the tables are vacuumed and pgbench_history
#      truncated (what pgbench itself does; pgbench then runs with -n).
#      --repeat R makes every run R times (order rotating) and reports each
#      target's median run: on a busy machine, the way to steady figures.
#   5. prints the table, the agreement of dbpool-bench's libpq mode with
#      pgbench, and finally
#        ratio dbpoold/pgbouncer tps: min=X median=Y
#      then stops everything it started (also on failure or Ctrl-C).
#
# Environment: DBPOOLD (daemon binary, default build/dbpoold), DBPOOL_BENCH
# (default build/dbpool-bench, compiled by hand into the temporary directory
# when the build does not produce it), PGPORT_TEST (54400), PGBENCH_JOBS (2).
# Progress goes to stderr, the table to stdout.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=10
WARMUP=2
IDLE=10000
SCALE=10
POOL_SIZE=20
LO=20
HI=200
RESULTS=""
KEEP=0
REPEAT=1
PGBENCH_JOBS=${PGBENCH_JOBS:-2}
export PGPORT_TEST=${PGPORT_TEST:-54400}
PGB_PORT=6432

say() { printf 'compare: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

usage() {
    sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

COMMAND="bench/compare.sh${*:+ $*}"
while [ $# -gt 0 ]; do
    case $1 in
    --duration) DURATION=${2:?--duration needs seconds}; shift 2 ;;
    --warmup)   WARMUP=${2:?--warmup needs seconds}; shift 2 ;;
    --idle)     IDLE=${2:?--idle needs a count}; shift 2 ;;
    --results)  RESULTS=${2:?--results needs a file}; shift 2 ;;
    --repeat)   REPEAT=${2:?--repeat needs a count}; shift 2 ;;
    --keep)     KEEP=1; shift ;;
    -h|--help)  usage ;;
    *)          say "unknown argument: $1"; usage ;;
    esac
done
# whole seconds: pgbench's progress report (-P 1) has one-second intervals
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "--duration: expected whole seconds, got $DURATION"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "--warmup: expected whole seconds, got $WARMUP"
[[ $IDLE =~ ^[0-9]+$ ]] || die "--idle: expected a count, got $IDLE"
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "--repeat: expected a count >= 1, got $REPEAT"

is_root() { [ "$(id -u)" -eq 0 ]; }
as_pg() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }

# ---------------------------------------------------------------- install

install_deps() {
    local missing=() p
    bash "$ROOT/scripts/deps.sh" || die "installing the build dependencies failed (scripts/deps.sh)"
    for p in postgresql pgbouncer; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return
    is_root || die "missing packages: ${missing[*]} (install them, or run as root)"
    say "installing ${missing[*]}"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    # Debian's package starts its own PgBouncer where it can; it listens on
    # other sockets and does not disturb ours.
}

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
build_programs() {
    DBPOOLD=${DBPOOLD:-$ROOT/build/dbpoold}
    BENCH=${DBPOOL_BENCH:-$ROOT/build/dbpool-bench}
    if [ "$DBPOOLD" = "$ROOT/build/dbpoold" ]; then
        say "building (scripts/build.sh build)"
        bash "$ROOT/scripts/build.sh" build >&2 || die "the build failed"
    fi
    [ -x "$DBPOOLD" ] || die "no daemon at $DBPOOLD (set DBPOOLD)"
    if [ ! -x "$BENCH" ] || { [ "$BENCH" = "$ROOT/build/dbpool-bench" ] && [ "$ROOT/bench/dbpool-bench.c" -nt "$BENCH" ]; }; then
        # the build does not produce it (yet): compile it by hand
        BENCH=$WORK/dbpool-bench
        say "compiling dbpool-bench into $BENCH"
        # shellcheck disable=SC2046  # pkg-config's flags are meant to split
        gcc -O2 -Wall -Wextra -I"$ROOT/include" -I"$ROOT/src" -o "$BENCH" "$ROOT/bench/dbpool-bench.c" \
            "$ROOT/build/.libs/libdbpool.so" -Wl,-rpath,"$ROOT/build/.libs" \
            $(pkg-config --cflags --libs libpq) -lpthread -lm >&2 || die "compiling dbpool-bench failed"
    fi
}

# ---------------------------------------------------------------- cleanup

WORK=""
DBPOOLD_PID=""
IDLE_PID=""
PG_STARTED=0

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    [ -n "$IDLE_PID" ] && kill "$IDLE_PID" 2>/dev/null && wait "$IDLE_PID" 2>/dev/null
    if [ -n "$DBPOOLD_PID" ] && kill -0 "$DBPOOLD_PID" 2>/dev/null; then
        say "stopping dbpoold"
        kill -TERM "$DBPOOLD_PID"
        for _ in $(seq 100); do kill -0 "$DBPOOLD_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$DBPOOLD_PID" 2>/dev/null
        wait "$DBPOOLD_PID" 2>/dev/null
    fi
    if [ -n "$WORK" ] && [ -f "$WORK/pgb/pgbouncer.pid" ]; then
        local p
        p=$(cat "$WORK/pgb/pgbouncer.pid" 2>/dev/null)
        if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
            say "stopping PgBouncer"
            kill -TERM "$p"
            for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$p" 2>/dev/null
        fi
    fi
    if [ "$PG_STARTED" = 1 ]; then
        if [ "$KEEP" = 1 ]; then
            say "stopping PostgreSQL (keeping its directory)"
            as_pg "$PGBIN/pg_ctl" stop -D "$WORK/pg/data" -m fast -w >&2
        else
            bash "$ROOT/tests/pg/pg-harness.sh" stop "$WORK/pg"
        fi
    fi
    if [ -n "$WORK" ]; then
        if [ "$KEEP" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- start

raise_fd_limit() {
    local want=65536 hard
    ulimit -n "$want" 2>/dev/null || {
        hard=$(ulimit -Hn)
        [ "$hard" = unlimited ] && hard=$want
        ulimit -n "$hard"
    }
    if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((IDLE + 200)) ]; then
        die "open-file limit $(ulimit -n) is too low for $IDLE idle clients (raise the hard limit, or use --idle)"
    fi
    say "open-file limit $(ulimit -n)"
}

start_postgres() {
    say "starting PostgreSQL"
    PG_STARTED=1
    eval "$(bash "$ROOT/tests/pg/pg-harness.sh" start "$WORK/pg")"
    export PGHOST PGPORT PGUSER PGDATABASE
    DIRECT="host=$PGHOST port=$PGPORT dbname=$PGDATABASE user=$PGUSER"
    say "loading pgbench -i -s $SCALE"
    pgbench -i -q -s "$SCALE" >"$WORK/pgbench-init.log" 2>&1 ||
        { cat "$WORK/pgbench-init.log" >&2; die "pgbench -i failed"; }
}

start_pgbouncer() {
    local d=$WORK/pgb
    mkdir -p "$d"
    cat >"$d/pgbouncer.ini" <<EOF
[databases]
$PGDATABASE = host=$PGHOST port=$PGPORT dbname=$PGDATABASE user=$PGUSER

[pgbouncer]
listen_addr =
listen_port = $PGB_PORT
unix_socket_dir = $d
auth_type = trust
auth_file = $d/userlist.txt
pool_mode = transaction
default_pool_size = $POOL_SIZE
max_client_conn = 12000
logfile = $d/pgbouncer.log
pidfile = $d/pgbouncer.pid
log_connections = 0
log_disconnections = 0
EOF
    printf '"%s" ""\n' "$PGUSER" >"$d/userlist.txt"
    say "starting PgBouncer"
    if is_root; then
        chown -R postgres: "$d"
        runuser -u postgres -- sh -c "ulimit -n $(ulimit -n) && exec pgbouncer -d '$d/pgbouncer.ini'" >&2 ||
            { cat "$d/pgbouncer.log" >&2; die "PgBouncer did not start"; }
    else
        pgbouncer -d "$d/pgbouncer.ini" >&2 || { cat "$d/pgbouncer.log" >&2; die "PgBouncer did not start"; }
    fi
    for _ in $(seq 50); do [ -S "$d/.s.PGSQL.$PGB_PORT" ] && [ -s "$d/pgbouncer.pid" ] && break; sleep 0.1; done
    [ -S "$d/.s.PGSQL.$PGB_PORT" ] || { cat "$d/pgbouncer.log" >&2; die "PgBouncer's socket did not appear"; }
    PGB_PID=$(cat "$d/pgbouncer.pid")
    BOUNCER="host=$d port=$PGB_PORT dbname=$PGDATABASE user=$PGUSER"
}

start_dbpoold() {
    local d=$WORK/dp
    mkdir -p "$d"
    cat >"$d/dbpoold.conf" <<EOF
# compare.sh: dbpoold in front of the throwaway server, sized like PgBouncer
daemon = {
    socket = "$d/dbpoold.sock";
    statusSocket = "";
    logLevel = "warn";
    maxClients = 12000;
};
pools = (
    {
        name = "bench";
        type = "postgres";
        postgres = {
            host = "$PGHOST";
            port = $PGPORT;
            name = "$PGDATABASE";
            username = "$PGUSER";
            maxOpenConns = $POOL_SIZE;
            maxIdleConns = $POOL_SIZE;     # keep them, as PgBouncer does
            connMaxLifetime = "1h";        # PgBouncer's server_lifetime
            connMaxIdleTime = "10m";       # PgBouncer's server_idle_timeout
            acquireTimeout = "2m";         # PgBouncer's query_wait_timeout
        };
    }
);
EOF
    say "starting dbpoold"
    # In its own session, like PgBouncer (-d) and PostgreSQL (pg_ctl): with
    # the kernel's autogroup scheduling a session is one CPU-share group, and
    # a daemon left in this script's session would share its group with the
    # benchmark client (on a systemd host every service has its own group).
    setsid "$DBPOOLD" -c "$d/dbpoold.conf" >"$d/dbpoold.log" 2>&1 &
    DBPOOLD_PID=$!
    for _ in $(seq 100); do [ -S "$d/dbpoold.sock" ] && break; kill -0 "$DBPOOLD_PID" 2>/dev/null || break; sleep 0.1; done
    [ -S "$d/dbpoold.sock" ] || { cat "$d/dbpoold.log" >&2; die "dbpoold did not start"; }
    DBPOOL="dbpool:$d/dbpoold.sock:bench"
}

# ---------------------------------------------------------------- runs

# json_num FILE KEY — a number from dbpool-bench's one-line JSON.
json_num() { sed -n "s/.*\"$2\":\([-0-9.e+]*\).*/\1/p" "$1" | head -n 1; }

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# reset_tpcb — what pgbench does before a tpcb run, done for every target alike
reset_tpcb() {
    psql -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d "$PGDATABASE" \
        -c 'VACUUM pgbench_branches' -c 'VACUUM pgbench_tellers' -c 'TRUNCATE pgbench_history' >&2 ||
        die "resetting the tpcb tables failed"
}

# bench_run ID TARGET WORKLOAD CLIENTS [-C]  -> $WORK/r/ID.json
bench_run() {
    local id=$1 target=$2 wl=$3 clients=$4 cpt=${5:-}
    local out=$WORK/r/$id.json
    [ "$wl" = tpcb ] && reset_tpcb
    "$BENCH" --target "$target" --workload "$wl" --clients "$clients" --duration "$DURATION" \
        --warmup "$WARMUP" --scale "$SCALE" --jobs "$PGBENCH_JOBS" $cpt --json --label "$id" >"$out" 2>"$WORK/r/$id.err" ||
        { cat "$WORK/r/$id.err" >&2; die "dbpool-bench failed: $id"; }
    if [ -n "$RESULTS" ]; then cat "$out" >>"$RESULTS"; fi
    say "$(printf '%-34s %10.1f tps  client CPU %6.1f us/tx  p50 %7.3f ms  p99 %8.3f ms  errors %s' "$id" \
        "$(json_num "$out" tps)" "$(json_num "$out" client_cpu_us_per_tx)" "$(json_num "$out" p50)" \
        "$(json_num "$out" p99)" "$(json_num "$out" errors)")"
}

# pgbench_run ID HOST PORT WORKLOAD CLIENTS [-C] -> $WORK/r/ID.tps
# pgbench has no warm-up option: it runs WARMUP + DURATION + 1 seconds with a
# progress line every second (-P 1), and the tps is the mean of the lines for
# the seconds WARMUP .. WARMUP + DURATION — the window dbpool-bench measures
# (the last second is never reported by pgbench, hence the + 1).
pgbench_run() {
    local id=$1 host=$2 port=$3 wl=$4 clients=$5 cpt=${6:-} sflag="" jobs=$PGBENCH_JOBS
    local out=$WORK/r/$id.log
    [ "$wl" = select ] && sflag=-S
    [ "$wl" = tpcb ] && reset_tpcb
    # pgbench opens connections synchronously, one at a time per thread:
    # with -C that would cap it at -j connections in progress, so there it
    # gets a thread per client, like dbpool-bench
    [ -n "$cpt" ] && jobs=$clients
    [ "$clients" -lt "$jobs" ] && jobs=$clients
    local TIMEFORMAT='%U %S' u s n
    { time pgbench -n -M extended $sflag $cpt -c "$clients" -j "$jobs" -T $((WARMUP + DURATION + 1)) -P 1 \
        -h "$host" -p "$port" -U "$PGUSER" "$PGDATABASE" >"$out" 2>&1; } 2>"$WORK/r/$id.time" ||
        { cat "$out" >&2; die "pgbench failed: $id"; }
    # pgbench's own CPU per transaction (whole run), to compare with dbpool-bench's
    read -r u s <"$WORK/r/$id.time"
    n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
    awk -v u="$u" -v s="$s" -v n="${n:-0}" 'BEGIN { printf "%.2f\n", (n > 0) ? (u + s) * 1e6 / n : 0 }' >"$WORK/r/$id.cpu"
    awk -v lo="$WARMUP" -v hi="$((WARMUP + DURATION))" '
        /^progress: / { t = $2 + 0; if (t > lo + 0.5 && t < hi + 0.5) { sum += $4; n++ } }
        END { if (n > 0) printf "%.1f\n", sum / n; else print "0" }' "$out" >"$WORK/r/$id.tps"
    if [ -n "$RESULTS" ]; then
        printf '{"label":"%s","driver":"pgbench","tps":%s}\n' "$id" "$(cat "$WORK/r/$id.tps")" >>"$RESULTS"
    fi
    say "$(printf '%-34s %10.1f tps  client CPU %6.1f us/tx' "$id" "$(cat "$WORK/r/$id.tps")" "$(cat "$WORK/r/$id.cpu")")"
}

# scenario NAME WORKLOAD CLIENTS [-C] — the five runs of one row, rotated by ROW
ROW=0
# With --repeat R, the five runs are made R times (the order rotating on every
# round) and each target's figures are those of its median-tps run.
scenario() {
    local name=$1 wl=$2 clients=$3 cpt=${4:-} runs i k r t
    say "--- $name ($wl, $clients clients${cpt:+, connection per transaction})"
    for ((r = 1; r <= REPEAT; r++)); do
        runs=("bench_run $name.direct.r$r $DIRECT_Q"
              "bench_run $name.pgbouncer.r$r $BOUNCER_Q"
              "bench_run $name.dbpoold.r$r $DBPOOL_Q"
              "pgbench_run $name.pgbench-direct.r$r $PGHOST_Q $PGPORT"
              "pgbench_run $name.pgbench-pgbouncer.r$r $WORK_Q/pgb $PGB_PORT")
        for ((i = 0; i < 5; i++)); do
            k=$(( (i + ROW) % 5 ))
            eval "${runs[$k]} $wl $clients $cpt"
        done
        ROW=$((ROW + 1))
    done
    for t in direct pgbouncer dbpoold; do
        median_run "$name.$t" json
        cp "$WORK/r/$name.$t.r$MEDIAN.json" "$WORK/r/$name.$t.json"
    done
    for t in pgbench-direct pgbench-pgbouncer; do
        median_run "$name.$t" tps
        cp "$WORK/r/$name.$t.r$MEDIAN.tps" "$WORK/r/$name.$t.tps"
        cp "$WORK/r/$name.$t.r$MEDIAN.cpu" "$WORK/r/$name.$t.cpu"
    done
}

# median_run PREFIX json|tps — sets MEDIAN to the round whose tps is the
# median (the lower one of the middle two for an even count)
median_run() {
    local prefix=$1 kind=$2 r
    MEDIAN=$(for ((r = 1; r <= REPEAT; r++)); do
                 if [ "$kind" = json ]; then v=$(json_num "$WORK/r/$prefix.r$r.json" tps)
                 else v=$(cat "$WORK/r/$prefix.r$r.tps"); fi
                 echo "$v $r"
             done | sort -g | sed -n "$(( (REPEAT + 1) / 2 ))p" | cut -d' ' -f2)
}

# idle_run NAME TARGET PID — RSS of PID before and with IDLE clients open
idle_run() {
    local name=$1 target=$2 pid=$3 before after out=$WORK/r/idle.$1.out
    sleep 1
    before=$(rss_kib "$pid")
    "$BENCH" --target "$target" --idle "$IDLE" >"$out" 2>&1 &
    IDLE_PID=$!
    for _ in $(seq 600); do
        grep -q '^holding' "$out" && break
        kill -0 "$IDLE_PID" 2>/dev/null || { cat "$out" >&2; die "dbpool-bench --idle failed against $name"; }
        sleep 0.1
    done
    grep -q '^holding' "$out" || die "$IDLE idle clients against $name: not open after 60 s"
    sleep 2    # let the daemon settle
    after=$(rss_kib "$pid")
    kill "$IDLE_PID"
    wait "$IDLE_PID" || true
    IDLE_PID=""
    echo "$before $after" >"$WORK/r/idle.$name"
    say "$(printf 'idle %-10s RSS %d KiB -> %d KiB: %.2f KiB per client' "$name" "$before" "$after" \
        "$(awk -v a="$after" -v b="$before" -v n="$IDLE" 'BEGIN { print (a - b) / n }')")"
}

# ---------------------------------------------------------------- report

fmt_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'; }

print_table() {
    local name wl clients label d b p
    echo
    echo "| workload | clients | direct tps | PgBouncer tps | dbpoold tps | direct p50 / p99 ms | PgBouncer p50 / p99 ms | dbpoold p50 / p99 ms | dbpoold/PgBouncer | dbpoold/direct | pgbench direct tps | pgbench PgBouncer tps | errors (d/B/p) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    : >"$WORK/ratios"
    : >"$WORK/agreement"
    while read -r name clients label; do
        d=$WORK/r/$name.direct.json b=$WORK/r/$name.pgbouncer.json p=$WORK/r/$name.dbpoold.json
        local dt bt pt gd gb
        dt=$(json_num "$d" tps) bt=$(json_num "$b" tps) pt=$(json_num "$p" tps)
        gd=$(cat "$WORK/r/$name.pgbench-direct.tps") gb=$(cat "$WORK/r/$name.pgbench-pgbouncer.tps")
        printf '| %s | %s | %.0f | %.0f | %.0f | %.2f / %.2f | %.2f / %.2f | %.2f / %.2f | %s | %s | %.0f | %.0f | %s/%s/%s |\n' \
            "$label" "$clients" "$dt" "$bt" "$pt" \
            "$(json_num "$d" p50)" "$(json_num "$d" p99)" \
            "$(json_num "$b" p50)" "$(json_num "$b" p99)" \
            "$(json_num "$p" p50)" "$(json_num "$p" p99)" \
            "$(fmt_ratio "$pt" "$bt")" "$(fmt_ratio "$pt" "$dt")" "$gd" "$gb" \
            "$(json_num "$d" errors)" "$(json_num "$b" errors)" "$(json_num "$p" errors)"
        fmt_ratio "$pt" "$bt" >>"$WORK/ratios"; echo >>"$WORK/ratios"
        printf '%s direct %s %s %s %s\n%s pgbouncer %s %s %s %s\n' \
            "$name" "$dt" "$gd" "$(json_num "$d" client_cpu_us_per_tx)" "$(cat "$WORK/r/$name.pgbench-direct.cpu")" \
            "$name" "$bt" "$gb" "$(json_num "$b" client_cpu_us_per_tx)" "$(cat "$WORK/r/$name.pgbench-pgbouncer.cpu")" \
            >>"$WORK/agreement"
    done <"$WORK/rows"
    local bd ad bb ab
    read -r bd ad <"$WORK/r/idle.dbpoold"
    read -r bb ab <"$WORK/r/idle.pgbouncer"
    printf '| idle clients held open: RSS KiB per client (lower is better) | %s | — | %.2f | %.2f | — | %s → %s MiB | %s → %s MiB | %s | — | — | — | — |\n' \
        "$IDLE" \
        "$(awk -v a="$ab" -v b="$bb" -v n="$IDLE" 'BEGIN { print (a - b) / n }')" \
        "$(awk -v a="$ad" -v b="$bd" -v n="$IDLE" 'BEGIN { print (a - b) / n }')" \
        "$(awk -v v="$bb" 'BEGIN { printf "%.1f", v / 1024 }')" "$(awk -v v="$ab" 'BEGIN { printf "%.1f", v / 1024 }')" \
        "$(awk -v v="$bd" 'BEGIN { printf "%.1f", v / 1024 }')" "$(awk -v v="$ad" 'BEGIN { printf "%.1f", v / 1024 }')" \
        "$(awk -v a="$ad" -v b="$bd" -v c="$ab" -v e="$bb" 'BEGIN { if (c - e > 0) printf "%.2f", (a - b) / (c - e); else print "n/a" }')"
    echo
    # dbpool-bench's libpq mode against pgbench, same settings and window
    echo "dbpool-bench (libpq) vs pgbench -M extended, same settings: tps difference; client CPU per transaction, dbpool-bench | pgbench"
    awk '{ dev = ($4 > 0) ? ($3 / $4 - 1) * 100 : 0; if (dev > 10 || dev < -10) bad++
           printf "- %s %s: %+.1f%%; %.1f | %.1f us\n", $1, $2, dev, $5, $6 }
         END { printf "- %d of %d outside ±10%%\n", bad, NR }' "$WORK/agreement"
    sort -g "$WORK/ratios" | awk '{ v[NR] = $1 } END {
        med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "ratio dbpoold/pgbouncer tps: min=%.2f median=%.2f\n", v[1], med }'
}

# ---------------------------------------------------------------- main

WORK=$(mktemp -d /tmp/dbpcmp.XXXXXX)
chmod 755 "$WORK"
mkdir -p "$WORK/r"
install_deps
build_programs
raise_fd_limit
start_postgres
start_pgbouncer
start_dbpoold
if [ -n "$RESULTS" ]; then : >"$RESULTS"; fi

printf -v DIRECT_Q '%q' "$DIRECT"
printf -v BOUNCER_Q '%q' "$BOUNCER"
printf -v DBPOOL_Q '%q' "$DBPOOL"
printf -v PGHOST_Q '%q' "$PGHOST"
printf -v WORK_Q '%q' "$WORK"

say "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -n 1); load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "warm-up: 3 s of select through every target"
for t in "$DIRECT" "$BOUNCER" "$DBPOOL"; do
    "$BENCH" --target "$t" --clients "$LO" --duration 3 --warmup 0 --scale "$SCALE" >/dev/null ||
        die "warm-up against $t failed"
done

say "--- idle clients: $IDLE"
idle_run dbpoold "$DBPOOL" "$DBPOOLD_PID"
idle_run pgbouncer "$BOUNCER" "$PGB_PID"

: >"$WORK/rows"
# rows of the table: NAME CLIENTS LABEL...
cat >"$WORK/rows" <<EOF
select-$LO $LO select (pgbench -S)
select-$HI $HI select (pgbench -S)
tpcb-$LO $LO tpcb (pgbench default)
tpcb-$HI $HI tpcb (pgbench default)
connect-$LO $LO select, new connection per transaction (pgbench -S -C)
EOF
scenario select-$LO select $LO
scenario select-$HI select $HI
scenario tpcb-$LO tpcb $LO
scenario tpcb-$HI tpcb $HI
scenario connect-$LO select $LO -C

say "done; load average $(cut -d' ' -f1-3 /proc/loadavg)"
{
    echo "dbpoold vs PgBouncer vs direct PostgreSQL — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -n 1); PostgreSQL $("$PGBIN/postgres" --version | awk '{ print $3 }'), $(pgbouncer --version | head -n 1)"
    echo "command: $COMMAND (${DURATION} s measured per run after ${WARMUP} s warm-up$([ "$REPEAT" -gt 1 ] && echo ", median of $REPEAT rounds"); dbpool-bench --jobs $PGBENCH_JOBS, pgbench -j $PGBENCH_JOBS -M extended -n -P 1, the same window)"
    print_table
}
