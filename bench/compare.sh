#!/usr/bin/env bash
#
# bench/compare.sh — dbpoold against PgBouncer and direct PostgreSQL, and
# dbpoold against MariaDB directly: one command, one run, Markdown tables.
#
#   bench/compare.sh [--duration S] [--warmup S] [--repeat R] [--idle N]
#                    [--results FILE] [--keep] [--baseline PATH] [--rows LIST]
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
#   5. the MySQL rows (bench/compare-mysql.sh): a throwaway MariaDB, the same
#      workloads directly (Connector/C) and through a dbpoold mysql pool, and
#      sysbench oltp_point_select as the outside reference
#   6. prints the table, the agreement of dbpool-bench's libpq mode with
#      pgbench, and
#        ratio dbpoold/pgbouncer tps: min=X median=Y
#      then the MySQL table, the agreement of the Connector/C client with
#      sysbench, which of the targets (>= 0.9x / 1.2x / 10x direct) are met, and
#        ratio dbpoold/direct (mysql) tps: min=X median=Y
#      then stops everything it started (also on failure or Ctrl-C).
#
# --baseline PATH: a second dbpoold binary (e.g. build/dbpoold of an older
#   commit's git worktree) runs as the target "dbpoold-base": its own socket
#   and config, otherwise the same server, warm-up, pool settings and idle
#   measurement. Its run and dbpoold's are made back to back in the rotation,
#   their order swapping every round. The table adds its tps and p50/p99, the
#   column "dbpoold/base" (median over the rounds of dbpoold's tps over the
#   baseline's in the same round) and those per-round ratios' min-max; the
#   output ends with
#        ratio dbpoold/base tps: min=X median=Y
#   (over the rows' median ratios). Use it with --repeat 3 or more.
#   (PostgreSQL rows only: an older daemon has no mysql pools.)
# --rows LIST: only these throughput rows, comma-separated, of
#   select-20,select-200,tpcb-20,tpcb-200,connect-20 (PostgreSQL) and
#   mysql-select-20,mysql-select-200,mysql-tpcb-20,mysql-tpcb-200,
#   mysql-connect-20 (MariaDB) (default all). Without PostgreSQL rows no
#   PostgreSQL, PgBouncer or idle row is set up.
#   --idle 0 leaves out the idle-clients row.
#
# Environment: DBPOOLD (daemon binary, default build/dbpoold), DBPOOL_BENCH
# (default build/dbpool-bench, made by the build), PGPORT_TEST (54400),
# PGB_PORT (PgBouncer's port, naming its socket: 6432), PGBENCH_JOBS (2).
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
BASELINE=""
ROWS=""
PGBENCH_JOBS=${PGBENCH_JOBS:-2}
export PGPORT_TEST=${PGPORT_TEST:-54400}
PGB_PORT=${PGB_PORT:-6432}

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
    --baseline) BASELINE=${2:?--baseline needs the path of a dbpoold binary}; shift 2 ;;
    --rows)     ROWS=${2:?--rows needs a comma-separated list of rows}; shift 2 ;;
    -h|--help)  usage ;;
    *)          say "unknown argument: $1"; usage ;;
    esac
done
# whole seconds: pgbench's progress report (-P 1) has one-second intervals
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "--duration: expected whole seconds, got $DURATION"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "--warmup: expected whole seconds, got $WARMUP"
[[ $IDLE =~ ^[0-9]+$ ]] || die "--idle: expected a count, got $IDLE"
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "--repeat: expected a count >= 1, got $REPEAT"
[[ $PGB_PORT =~ ^[1-9][0-9]*$ ]] || die "PGB_PORT: expected a port number, got $PGB_PORT"

# the throughput rows: NAME WORKLOAD CLIENTS FLAG LABEL (FLAG - or -C)
PG_ROW_NAMES="select-$LO select-$HI tpcb-$LO tpcb-$HI connect-$LO"
# shellcheck source=bench/compare-mysql.sh
. "$ROOT/bench/compare-mysql.sh"
ALL_ROWS="$PG_ROW_NAMES $MY_ROW_NAMES"
row_defs() {
    cat <<EOF
select-$LO select $LO - select (pgbench -S)
select-$HI select $HI - select (pgbench -S)
tpcb-$LO tpcb $LO - tpcb (pgbench default)
tpcb-$HI tpcb $HI - tpcb (pgbench default)
connect-$LO select $LO -C select, new connection per transaction (pgbench -S -C)
EOF
}

# check_rows — every name in --rows is a row of the table
check_rows() {
    local r
    [ -n "$ROWS" ] || return 0
    for r in ${ROWS//,/ }; do
        [[ " $ALL_ROWS " == *" $r "* ]] ||
            die "--rows: no row named '$r' (the rows are: ${ALL_ROWS// /,})"
    done
    [ -n "${ROWS//,/}" ] || die "--rows: empty list (the rows are: ${ALL_ROWS// /,})"
}

# row_wanted NAME — true when NAME is to run (--rows, or all by default)
row_wanted() { [ -z "$ROWS" ] || [[ ",$ROWS," == *",$1,"* ]]; }

# any_wanted NAME... — true when one of the rows NAME... is to run
any_wanted() {
    local r
    for r; do if row_wanted "$r"; then return 0; fi; done
    return 1
}

# check_baseline — --baseline names an executable; made absolute
check_baseline() {
    [ -n "$BASELINE" ] || return 0
    if [ ! -f "$BASELINE" ] || [ ! -x "$BASELINE" ]; then
        die "--baseline: no executable at $BASELINE (give a dbpoold binary, e.g. build/dbpoold of a git worktree at an older commit)"
    fi
    BASELINE=$(cd "$(dirname "$BASELINE")" && pwd)/$(basename "$BASELINE")
}
check_rows
check_baseline

is_root() { [ "$(id -u)" -eq 0 ]; }
as_pg() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }

# ---------------------------------------------------------------- install

install_deps() {
    local missing=() p
    bash "$ROOT/scripts/deps.sh" || die "installing the build dependencies failed (scripts/deps.sh)"
    local pkgs="postgresql pgbouncer"
    # shellcheck disable=SC2086
    if any_wanted $MY_ROW_NAMES; then pkgs+=" mariadb-server mariadb-client sysbench"; fi
    for p in $pkgs; do
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
    # the build makes both; it runs for the default daemon, and for the
    # default client when that is missing or older than its source
    if [ "$DBPOOLD" = "$ROOT/build/dbpoold" ] ||
        { [ "$BENCH" = "$ROOT/build/dbpool-bench" ] && { [ ! -x "$BENCH" ] || [ "$ROOT/bench/dbpool-bench.c" -nt "$BENCH" ]; }; }; then
        say "building (scripts/build.sh build)"
        bash "$ROOT/scripts/build.sh" build >&2 || die "the build failed"
    fi
    [ -x "$DBPOOLD" ] || die "no daemon at $DBPOOLD (set DBPOOLD)"
    [ -x "$BENCH" ] || die "no dbpool-bench at $BENCH (run scripts/build.sh build, or set DBPOOL_BENCH)"
}

# ---------------------------------------------------------------- cleanup

WORK=""
DBPOOLD_PID=""
BASE_PID=""
DBPOOL=""          # dbpool-bench's --target for dbpoold, and for the baseline
BASE_DBPOOL=""
IDLE_PID=""
PG_STARTED=0

# stop_daemon NAME PID — TERM, up to 10 s, then KILL (a started child)
stop_daemon() {
    local name=$1 pid=$2
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    say "stopping $name"
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    [ -n "$IDLE_PID" ] && kill "$IDLE_PID" 2>/dev/null && wait "$IDLE_PID" 2>/dev/null
    stop_daemon dbpoold "$DBPOOLD_PID"
    stop_daemon dbpoold-base "$BASE_PID"
    stop_daemon "dbpoold (mysql)" "$MYD_PID"
    stop_mariadb
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

# the postgres pool of dbpoold's config (start_dbpoold's POOLFN)
pg_pool_conf() {
    cat <<EOF
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
EOF
}

# start_dbpoold BINARY DIR PIDVAR TARGETVAR [POOLFN] — a daemon with its own
# socket and config in DIR, its one pool "bench" printed by POOLFN (default
# pg_pool_conf); sets PIDVAR (at once, for cleanup) and TARGETVAR
# (dbpool-bench's --target)
start_dbpoold() {
    local bin=$1 d=$2 poolfn=${5:-pg_pool_conf} pid peruser=""
    # Every benchmark connection (up to $IDLE idle ones) has one uid: lift
    # maxClientsPerUser where the binary has it (a base build may not).
    grep -q maxClientsPerUser "$bin" && peruser="maxClientsPerUser = 0;"
    mkdir -p "$d"
    {
        cat <<EOF
# compare.sh: dbpoold in front of the throwaway server, sized like PgBouncer
daemon = {
    socket = "$d/dbpoold.sock";
    statusSocket = "";
    logLevel = "warn";
    maxClients = 12000;
    $peruser
};
pools = (
EOF
        "$poolfn"
        echo ");"
    } >"$d/dbpoold.conf"
    say "starting $bin"
    # In its own session, like PgBouncer (-d) and PostgreSQL (pg_ctl): with
    # the kernel's autogroup scheduling a session is one CPU-share group, and
    # a daemon left in this script's session would share its group with the
    # benchmark client (on a systemd host every service has its own group).
    setsid "$bin" -c "$d/dbpoold.conf" >"$d/dbpoold.log" 2>&1 &
    pid=$!
    printf -v "$3" '%s' "$pid"
    for _ in $(seq 100); do [ -S "$d/dbpoold.sock" ] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    [ -S "$d/dbpoold.sock" ] || { cat "$d/dbpoold.log" >&2; die "$bin did not start (its log is above)"; }
    printf -v "$4" '%s' "dbpool:$d/dbpoold.sock:bench"
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
# (before a tpcb run: $TPCB_RESET, default reset_tpcb)
bench_run() {
    local id=$1 target=$2 wl=$3 clients=$4 cpt=${5:-}
    local out=$WORK/r/$id.json
    if [ "$wl" = tpcb ]; then "${TPCB_RESET:-reset_tpcb}"; fi
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
# With --baseline the dbpoold run is a pair: dbpoold and dbpoold-base back to
# back, in one place of the rotation, which of them goes first swapping every
# round — so each round's ratio of the two compares runs made seconds apart.
scenario() {
    local name=$1 wl=$2 clients=$3 cpt=${4:-} runs i k r t a
    say "--- $name ($wl, $clients clients${cpt:+, connection per transaction})"
    a="$wl $clients $cpt"
    for ((r = 1; r <= REPEAT; r++)); do
        runs=("bench_run $name.direct.r$r $DIRECT_Q $a"
              "bench_run $name.pgbouncer.r$r $BOUNCER_Q $a"
              "$(daemon_runs "$name" "$r" "$a")"
              "pgbench_run $name.pgbench-direct.r$r $PGHOST_Q $PGPORT $a"
              "pgbench_run $name.pgbench-pgbouncer.r$r $WORK_Q/pgb $PGB_PORT $a")
        for ((i = 0; i < 5; i++)); do
            k=$(( (i + ROW) % 5 ))
            eval "${runs[$k]}"
        done
        ROW=$((ROW + 1))
    done
    for t in direct pgbouncer $DAEMONS; do
        median_run "$name.$t" json
        cp "$WORK/r/$name.$t.r$MEDIAN.json" "$WORK/r/$name.$t.json"
    done
    for t in pgbench-direct pgbench-pgbouncer; do
        median_run "$name.$t" tps
        cp "$WORK/r/$name.$t.r$MEDIAN.tps" "$WORK/r/$name.$t.tps"
        cp "$WORK/r/$name.$t.r$MEDIAN.cpu" "$WORK/r/$name.$t.cpu"
    done
}

# daemon_runs NAME ROUND ARGS — the command (for eval) of the dbpoold place in
# the rotation: dbpoold alone, or with the baseline, the pair in ROW's order
daemon_runs() {
    local d b
    d="bench_run $1.dbpoold.r$2 $DBPOOL_Q $3"
    if [ -z "$BASELINE" ]; then echo "$d"; return; fi
    b="bench_run $1.dbpoold-base.r$2 $BASE_Q $3"
    if ((ROW % 2)); then echo "$b; $d"; else echo "$d; $b"; fi
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
    say "$(printf 'idle %-12s RSS %d KiB -> %d KiB: %.2f KiB per client' "$name" "$before" "$after" \
        "$(awk -v a="$after" -v b="$before" -v n="$IDLE" 'BEGIN { print (a - b) / n }')")"
}

# ---------------------------------------------------------------- report

fmt_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'; }

# stats — "min median max" of the numbers on stdin (one a line; others, such
# as n/a, skipped); the median of an even count is the mean of the middle two
stats() {
    sort -g | awk '/^[0-9.]+$/ { v[++n] = $1 } END {
        if (n == 0) { print "n/a n/a n/a"; exit }
        med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
        printf "%.4f %.4f %.4f\n", v[1], med, v[n] }'
}

# round_ratios NAME — dbpoold's tps over dbpoold-base's, one line per round
round_ratios() {
    local r
    for ((r = 1; r <= REPEAT; r++)); do
        awk -v a="$(json_num "$WORK/r/$1.dbpoold.r$r.json" tps)" \
            -v b="$(json_num "$WORK/r/$1.dbpoold-base.r$r.json" tps)" \
            'BEGIN { if (b > 0) printf "%.4f\n", a / b; else print "n/a" }'
    done
}

# emit_row CELL... — one Markdown table row in the full layout (17 cells);
# without --baseline the baseline's four columns (6, 10, 13, 14) are left out
emit_row() {
    local out="|" i=0 c
    for c; do
        i=$((i + 1))
        if [ -z "$BASELINE" ] && [[ " 6 10 13 14 " == *" $i "* ]]; then continue; fi
        out+=" $c |"
    done
    echo "$out"
}

table_header() {
    local errors="errors (d/B/p)" cols i
    [ -n "$BASELINE" ] && errors="errors (d/B/p/b)"
    emit_row workload clients "direct tps" "PgBouncer tps" "dbpoold tps" "dbpoold-base tps" \
        "direct p50 / p99 ms" "PgBouncer p50 / p99 ms" "dbpoold p50 / p99 ms" "dbpoold-base p50 / p99 ms" \
        dbpoold/PgBouncer dbpoold/direct dbpoold/base "dbpoold/base per round (min–max)" \
        "pgbench direct tps" "pgbench PgBouncer tps" "$errors"
    cols=$(emit_row x x x x x x x x x x x x x x x x x | tr -cd '|' | wc -c)
    printf '|---|'
    for ((i = 2; i < cols; i++)); do printf -- '---:|'; done
    echo
}

# lat FILE — "p50 / p99" of a run, ms
lat() { printf '%.2f / %.2f' "$(json_num "$1" p50)" "$(json_num "$1" p99)"; }

# table_row NAME CLIENTS LABEL — one throughput row; notes the ratios and the
# agreement figures for the summary
table_row() {
    local name=$1 clients=$2 label=$3 d b p q dt bt pt qt gd gb lo med hi errs
    d=$WORK/r/$name.direct.json b=$WORK/r/$name.pgbouncer.json p=$WORK/r/$name.dbpoold.json
    q=$WORK/r/$name.dbpoold-base.json
    dt=$(json_num "$d" tps) bt=$(json_num "$b" tps) pt=$(json_num "$p" tps) qt=""
    gd=$(cat "$WORK/r/$name.pgbench-direct.tps") gb=$(cat "$WORK/r/$name.pgbench-pgbouncer.tps")
    errs="$(json_num "$d" errors)/$(json_num "$b" errors)/$(json_num "$p" errors)"
    lo="" med="" hi=""
    if [ -n "$BASELINE" ]; then
        qt=$(json_num "$q" tps)
        errs+="/$(json_num "$q" errors)"
        read -r lo med hi < <(round_ratios "$name" | stats)
        echo "$med" >>"$WORK/base-ratios"
    fi
    emit_row "$label" "$clients" "$(printf %.0f "$dt")" "$(printf %.0f "$bt")" "$(printf %.0f "$pt")" \
        "$([ -n "$qt" ] && printf %.0f "$qt")" "$(lat "$d")" "$(lat "$b")" "$(lat "$p")" \
        "$([ -n "$qt" ] && lat "$q")" "$(fmt_ratio "$pt" "$bt")" "$(fmt_ratio "$pt" "$dt")" \
        "$(fmt_num "$med")" "$(fmt_num "$lo")–$(fmt_num "$hi")" \
        "$(printf %.0f "$gd")" "$(printf %.0f "$gb")" "$errs"
    fmt_ratio "$pt" "$bt" >>"$WORK/ratios"; echo >>"$WORK/ratios"
    printf '%s direct %s %s %s %s\n%s pgbouncer %s %s %s %s\n' \
        "$name" "$dt" "$gd" "$(json_num "$d" client_cpu_us_per_tx)" "$(cat "$WORK/r/$name.pgbench-direct.cpu")" \
        "$name" "$bt" "$gb" "$(json_num "$b" client_cpu_us_per_tx)" "$(cat "$WORK/r/$name.pgbench-pgbouncer.cpu")" \
        >>"$WORK/agreement"
}

# fmt_num X — X with two decimals, or X as it is when it is not a number
fmt_num() { if [[ $1 =~ ^[0-9.]+$ ]]; then printf '%.2f' "$1"; else printf '%s' "$1"; fi; }

# per_client NAME — KiB of RSS per idle client of the daemon NAME
per_client() {
    local before after
    read -r before after <"$WORK/r/idle.$1"
    awk -v a="$after" -v b="$before" -v n="$IDLE" 'BEGIN { print (a - b) / n }'
}

# rss_mib NAME — "before → after MiB" of the daemon NAME in the idle run
rss_mib() {
    local before after
    read -r before after <"$WORK/r/idle.$1"
    awk -v b="$before" -v a="$after" 'BEGIN { printf "%.1f → %.1f MiB", b / 1024, a / 1024 }'
}

idle_row() {
    local dc bc qc="" qm="" qr=""
    dc=$(per_client dbpoold) bc=$(per_client pgbouncer)
    if [ -n "$BASELINE" ]; then
        qc=$(printf %.2f "$(per_client dbpoold-base)") qm=$(rss_mib dbpoold-base)
        qr=$(fmt_ratio "$dc" "$(per_client dbpoold-base)")
    fi
    emit_row "idle clients held open: RSS KiB per client (lower is better)" "$IDLE" — \
        "$(printf %.2f "$bc")" "$(printf %.2f "$dc")" "$qc" — "$(rss_mib pgbouncer)" "$(rss_mib dbpoold)" "$qm" \
        "$(fmt_ratio "$dc" "$bc")" — "$qr" — — — —
}

print_table() {
    local name wl clients flag label
    echo
    table_header
    : >"$WORK/ratios"
    : >"$WORK/base-ratios"
    : >"$WORK/agreement"
    while read -r name wl clients flag label; do
        table_row "$name" "$clients" "$label"
    done <"$WORK/rows"
    if [ "$IDLE" -gt 0 ]; then idle_row; fi
    echo
    # dbpool-bench's libpq mode against pgbench, same settings and window
    echo "dbpool-bench (libpq) vs pgbench -M extended, same settings: tps difference; client CPU per transaction, dbpool-bench | pgbench"
    awk '{ dev = ($4 > 0) ? ($3 / $4 - 1) * 100 : 0; if (dev > 10 || dev < -10) bad++
           printf "- %s %s: %+.1f%%; %.1f | %.1f us\n", $1, $2, dev, $5, $6 }
         END { printf "- %d of %d outside ±10%%\n", bad, NR }' "$WORK/agreement"
    stats <"$WORK/ratios" | awk '{ printf "ratio dbpoold/pgbouncer tps: min=%.2f median=%.2f\n", $1, $2 }'
    if [ -n "$BASELINE" ]; then
        stats <"$WORK/base-ratios" | awk '{ printf "ratio dbpoold/base tps: min=%.2f median=%.2f\n", $1, $2 }'
    fi
}

# ---------------------------------------------------------------- main

# run_postgres — the PostgreSQL part: server, PgBouncer, dbpoold (and the
# baseline), warm-up, idle clients, the rows wanted
run_postgres() {
    local line name wl clients flag
    start_postgres
    start_pgbouncer
    start_dbpoold "$DBPOOLD" "$WORK/dp" DBPOOLD_PID DBPOOL
    DAEMONS=dbpoold
    if [ -n "$BASELINE" ]; then
        start_dbpoold "$BASELINE" "$WORK/dp-base" BASE_PID BASE_DBPOOL
        DAEMONS="dbpoold dbpoold-base"
    fi
    printf -v DIRECT_Q '%q' "$DIRECT"
    printf -v BOUNCER_Q '%q' "$BOUNCER"
    printf -v DBPOOL_Q '%q' "$DBPOOL"
    printf -v BASE_Q '%q' "$BASE_DBPOOL"
    printf -v PGHOST_Q '%q' "$PGHOST"
    printf -v WORK_Q '%q' "$WORK"

    say "warm-up: 3 s of select through every target"
    for t in "$DIRECT" "$BOUNCER" "$DBPOOL" ${BASELINE:+"$BASE_DBPOOL"}; do
        "$BENCH" --target "$t" --clients "$LO" --duration 3 --warmup 0 --scale "$SCALE" >/dev/null ||
            die "warm-up against $t failed"
    done

    if [ "$IDLE" -gt 0 ]; then
        say "--- idle clients: $IDLE"
        idle_run dbpoold "$DBPOOL" "$DBPOOLD_PID"
        if [ -n "$BASELINE" ]; then idle_run dbpoold-base "$BASE_DBPOOL" "$BASE_PID"; fi
        idle_run pgbouncer "$BOUNCER" "$PGB_PID"
    fi

    mapfile -t ROW_LINES <"$WORK/rows"
    for line in "${ROW_LINES[@]}"; do
        read -r name wl clients flag _ <<<"$line"
        [ "$flag" = - ] && flag=""
        scenario "$name" "$wl" "$clients" "$flag"
    done
}

WORK=$(mktemp -d /tmp/dbpcmp.XXXXXX)
chmod 755 "$WORK"
mkdir -p "$WORK/r"
install_deps
build_programs
raise_fd_limit
if [ -n "$RESULTS" ]; then : >"$RESULTS"; fi
say "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -n 1); load average $(cut -d' ' -f1-3 /proc/loadavg)"

# the PostgreSQL rows of the table (--rows): NAME WORKLOAD CLIENTS FLAG LABEL
row_defs | while read -r name wl clients flag label; do
    if row_wanted "$name"; then echo "$name $wl $clients $flag $label"; fi
done >"$WORK/rows"
if [ -s "$WORK/rows" ]; then run_postgres; fi
run_mysql

say "done; load average $(cut -d' ' -f1-3 /proc/loadavg)"
{
    if [ -s "$WORK/rows" ]; then
        echo "dbpoold vs PgBouncer vs direct PostgreSQL — $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -n 1); PostgreSQL $("$PGBIN/postgres" --version | awk '{ print $3 }'), $(pgbouncer --version | head -n 1)"
    else
        echo "dbpoold vs direct MariaDB — $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -n 1)"
    fi
    echo "command: $COMMAND (${DURATION} s measured per run after ${WARMUP} s warm-up$([ "$REPEAT" -gt 1 ] && echo ", median of $REPEAT rounds"); dbpool-bench --jobs $PGBENCH_JOBS, pgbench -j $PGBENCH_JOBS -M extended -n -P 1, sysbench --threads = clients, the same window)"
    if [ -n "$BASELINE" ]; then echo "dbpoold: $DBPOOLD; dbpoold-base: $BASELINE"; fi
    if [ -s "$WORK/rows" ]; then print_table; fi
    print_mysql_table
}
