# shellcheck shell=bash disable=SC2034
# bench/compare-mysql.sh — the MySQL rows of bench/compare.sh (sourced by
# it, not run on its own; it uses compare.sh's settings and helpers).
#
# dbpoold in front of MariaDB against MariaDB directly (dbpool-bench's
# Connector/C target), with `sysbench oltp_point_select` as the outside
# reference the direct client must agree with. There is no MySQL pooler in
# Debian to compare with, so the targets are against the server itself:
# dbpoold >= 0.9x direct at 20 clients, >= 1.2x at 200, >= 10x with a new
# connection per transaction.
#
#   1. a throwaway mariadbd in $WORK/my (own start and stop: the bench needs a
#      larger buffer pool than the test harness's), Unix socket only,
#      innodb_buffer_pool_size = 1G (both data sets stay in memory),
#      innodb_flush_log_at_trx_commit = 0 and no doublewrite (as the
#      PostgreSQL server runs with fsync = off), max_connections = 600;
#      otherwise MariaDB's defaults (thread_cache_size = 256: a new
#      connection reuses a cached server thread). Everyone logs in as the
#      user bench with a password (mysql_native_password), as an application
#      would.
#   2. database bench: pgbench's tables at the scale of the PostgreSQL rows
#      (dbpool-bench --init); database sbtest: sysbench's sbtest1 with
#      100000 * scale rows (the size of pgbench_accounts)
#   3. dbpoold with one mysql pool (maxOpenConns = 20, as the postgres pool)
#   4. rows mysql-select-20, -200, mysql-tpcb-20, -200, mysql-connect-20:
#      direct and dbpoold with dbpool-bench (the same workloads as the
#      PostgreSQL rows, ? placeholders), each with both client models
#      (non-blocking and a thread per client; dbpoold/direct compares the
#      better of each), plus sysbench in the select rows (--threads =
#      clients, --rand-type=uniform, the same window), checked against the
#      thread-per-client direct client; the order rotating, --repeat as for
#      the other rows; before every tpcb run pgbench_history is truncated.
#
# Direct connections prepare their statements once (the binary protocol,
# as sysbench does); with a new connection per transaction they send text
# (one round trip per statement, no prepare). dbpoold prepares and caches
# them per server connection (its statement cache).

MY_DB=bench
MY_ROW_NAMES="mysql-select-$LO mysql-select-$HI mysql-tpcb-$LO mysql-tpcb-$HI mysql-connect-$LO"
MY_PID=""
MYD_PID=""        # dbpoold in front of MariaDB
MY_DBPOOL=""

my_row_defs() {
    cat <<EOF
mysql-select-$LO select $LO - 0.9 select by primary key (sysbench oltp_point_select)
mysql-select-$HI select $HI - 1.2 select by primary key (sysbench oltp_point_select)
mysql-tpcb-$LO tpcb $LO - 0.9 tpcb-like transaction
mysql-tpcb-$HI tpcb $HI - 1.2 tpcb-like transaction
mysql-connect-$LO select $LO -C 10 select, new connection per transaction
EOF
}

my_sql() { mariadb --no-defaults --socket="$MY_SOCK" -uroot --batch --skip-column-names "$@"; }

# start_mariadb — a throwaway server in $WORK/my; sets MY_SOCK, MY_PID
start_mariadb() {
    local d=$WORK/my owner=()
    mkdir -p "$d/data" "$d/tmp"
    chmod 755 "$d"
    if is_root; then
        id mysql >/dev/null 2>&1 || die "no mysql system user (install mariadb-server)"
        chown -R mysql: "$d"
        owner=(runuser -u mysql --)
    fi
    say "starting MariaDB"
    "${owner[@]}" mariadb-install-db --no-defaults --datadir="$d/data" --auth-root-authentication-method=normal \
        --skip-test-db >"$d/install.log" 2>&1 || { cat "$d/install.log" >&2; die "mariadb-install-db failed"; }
    MY_SOCK=$d/mysqld.sock
    "${owner[@]}" setsid mariadbd --no-defaults --datadir="$d/data" --socket="$MY_SOCK" \
        --pid-file="$d/mysqld.pid" --log-error="$d/mysqld.log" --tmpdir="$d/tmp" --skip-networking \
        --skip-name-resolve --character-set-server=utf8mb4 --innodb-buffer-pool-size=1G \
        --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 --max-connections=600 \
        --max-allowed-packet=64M >/dev/null 2>&1 &
    MY_PID=$!
    for _ in $(seq 600); do
        mariadb-admin --no-defaults --socket="$MY_SOCK" -uroot --connect-timeout=2 ping >/dev/null 2>&1 && break
        kill -0 "$MY_PID" 2>/dev/null || { cat "$d/mysqld.log" >&2; die "mariadbd exited during start-up"; }
        sleep 0.1
    done
    my_sql -e 'SELECT 1' >/dev/null || { cat "$d/mysqld.log" >&2; die "MariaDB did not start"; }
    MY_PID=$(cat "$d/mysqld.pid")
}

stop_mariadb() {
    [ -n "$MY_PID" ] && kill -0 "$MY_PID" 2>/dev/null || return 0
    say "stopping MariaDB"
    kill -TERM "$MY_PID"
    for _ in $(seq 600); do kill -0 "$MY_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$MY_PID" 2>/dev/null
    MY_PID=""
}

# sysbench_args — the connection and data set options every sysbench call shares
sysbench_args() {
    echo "oltp_point_select --db-driver=mysql --mysql-socket=$MY_SOCK --mysql-user=bench --mysql-password=bench" \
        "--mysql-db=sbtest --tables=1 --table-size=$((100000 * SCALE))"
}

load_mysql() {
    MY_DIRECT="mysql:socket=$MY_SOCK user=bench password=bench db=$MY_DB"
    my_sql -e "CREATE DATABASE $MY_DB CHARACTER SET utf8mb4; CREATE DATABASE sbtest;
               CREATE USER bench@localhost IDENTIFIED BY 'bench';
               GRANT ALL ON $MY_DB.* TO bench@localhost; GRANT ALL ON sbtest.* TO bench@localhost" ||
        die "creating the MariaDB databases and user failed"
    say "loading pgbench's tables into MariaDB (dbpool-bench --init -s $SCALE)"
    "$BENCH" --target "$MY_DIRECT" --init --scale "$SCALE" >"$WORK/my-init.log" 2>&1 ||
        { cat "$WORK/my-init.log" >&2; die "dbpool-bench --init failed"; }
    say "loading sysbench's sbtest1 ($((100000 * SCALE)) rows)"
    # shellcheck disable=SC2046
    sysbench $(sysbench_args) prepare >"$WORK/sysbench-prepare.log" 2>&1 ||
        { cat "$WORK/sysbench-prepare.log" >&2; die "sysbench prepare failed"; }
}

# the mysql pool of dbpoold's config (start_dbpoold's POOLFN)
mysql_pool_conf() {
    cat <<EOF
    {
        name = "bench";
        type = "mysql";
        mysql = {
            host = "$MY_SOCK";
            name = "$MY_DB";
            username = "bench";
            password = "bench";
            maxOpenConns = $POOL_SIZE;
            maxIdleConns = $POOL_SIZE;
            connMaxLifetime = "1h";
            connMaxIdleTime = "10m";
            acquireTimeout = "2m";
        };
    }
EOF
}

# reset_my_tpcb — pgbench_history emptied before every tpcb run, for every target
reset_my_tpcb() { my_sql "$MY_DB" -e 'TRUNCATE pgbench_history' || die "truncating pgbench_history failed"; }

# cpu_ticks PID — user + system clock ticks of process PID so far (all its
# threads); 0 when it is gone
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# cpu_per_tx BEFORE AFTER TPS — microseconds of CPU per transaction between
# two cpu_ticks readings taken around a run of WARMUP + DURATION seconds at
# TPS (warm-up and measured window alike: the rate is steady)
cpu_per_tx() {
    awk -v b="$1" -v a="$2" -v t="$3" -v hz="$(getconf CLK_TCK)" -v s="$((WARMUP + DURATION))" \
        'BEGIN { printf "%.1f\n", (t > 0) ? (a - b) / hz * 1e6 / (t * s) : 0 }'
}

# my_bench_run ID TARGET WORKLOAD CLIENTS [-C] -> $WORK/r/ID.json, and the
# CPU per transaction of the server (ID.srvcpu) and of dbpoold (ID.dmncpu)
# during the run: with client, daemon and server on the same cores, these
# sums are what the throughput is made of
my_bench_run() {
    local TPCB_RESET=reset_my_tpcb s0 d0 tps
    s0=$(cpu_ticks "$MY_PID") d0=$(cpu_ticks "$MYD_PID")
    bench_run "$@"
    tps=$(json_num "$WORK/r/$1.json" tps)
    cpu_per_tx "$s0" "$(cpu_ticks "$MY_PID")" "$tps" >"$WORK/r/$1.srvcpu"
    cpu_per_tx "$d0" "$(cpu_ticks "$MYD_PID")" "$tps" >"$WORK/r/$1.dmncpu"
}

# sysbench_run ID CLIENTS -> $WORK/r/ID.tps, ID.cpu. sysbench 1.0 has no
# warm-up option: like pgbench it runs WARMUP + DURATION + 1 seconds with a
# report every second, and the tps is the mean of the seconds in the window.
sysbench_run() {
    local id=$1 clients=$2 out=$WORK/r/$1.log TIMEFORMAT='%U %S' u s n s0
    s0=$(cpu_ticks "$MY_PID")
    # shellcheck disable=SC2046
    { time sysbench $(sysbench_args) --threads="$clients" --rand-type=uniform \
        --time=$((WARMUP + DURATION + 1)) --report-interval=1 --histogram=off run >"$out" 2>&1; } \
        2>"$WORK/r/$id.time" || { cat "$out" >&2; die "sysbench failed: $id"; }
    read -r u s <"$WORK/r/$id.time"
    n=$(sed -n 's/^ *transactions: *\([0-9]*\).*/\1/p' "$out")
    awk -v u="$u" -v s="$s" -v n="${n:-0}" 'BEGIN { printf "%.2f\n", (n > 0) ? (u + s) * 1e6 / n : 0 }' >"$WORK/r/$id.cpu"
    awk -v lo="$WARMUP" -v hi="$((WARMUP + DURATION))" '
        /^\[ *[0-9]+s \]/ { t = $2 + 0; for (i = 1; i < NF; i++) if ($i == "tps:") v = $(i + 1)
                            if (t > lo + 0.5 && t < hi + 0.5) { sum += v; k++ } }
        END { if (k > 0) printf "%.1f\n", sum / k; else print "0" }' "$out" >"$WORK/r/$id.tps"
    # sysbench ran one second longer than the window cpu_per_tx assumes
    awk -v b="$s0" -v a="$(cpu_ticks "$MY_PID")" -v n="${n:-0}" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.1f\n", (n > 0) ? (a - b) / hz * 1e6 / n : 0 }' >"$WORK/r/$id.srvcpu"
    if [ -n "$RESULTS" ]; then
        printf '{"label":"%s","driver":"sysbench","tps":%s}\n' "$id" "$(cat "$WORK/r/$id.tps")" >>"$RESULTS"
    fi
    say "$(printf '%-34s %10.1f tps  client CPU %6.1f us/tx' "$id" "$(cat "$WORK/r/$id.tps")" "$(cat "$WORK/r/$id.cpu")")"
}

# my_scenario NAME WORKLOAD CLIENTS FLAG — the runs of one MySQL row: direct
# and dbpoold each with both client models (non-blocking, and a thread per
# client: ID.threads), sysbench in the select rows; with a connection per
# transaction only the thread per client exists
my_scenario() {
    local name=$1 wl=$2 clients=$3 cpt=${4:-} runs n i k r t a
    say "--- $name ($wl, $clients clients${cpt:+, connection per transaction}, MariaDB)"
    a="$wl $clients $cpt"
    for ((r = 1; r <= REPEAT; r++)); do
        runs=("my_bench_run $name.direct.r$r $MY_DIRECT_Q $a"
              "my_bench_run $name.dbpoold.r$r $MY_DBPOOL_Q $a")
        if [ -z "$cpt" ]; then
            runs+=("my_bench_run $name.direct.threads.r$r $MY_DIRECT_Q $a '--model threads'"
                   "my_bench_run $name.dbpoold.threads.r$r $MY_DBPOOL_Q $a '--model threads'")
        fi
        if [ "$wl" = select ] && [ -z "$cpt" ]; then runs+=("sysbench_run $name.sysbench.r$r $clients"); fi
        n=${#runs[@]}
        for ((i = 0; i < n; i++)); do
            k=$(( (i + ROW) % n ))
            eval "${runs[$k]}"
        done
        ROW=$((ROW + 1))
    done
    for t in direct dbpoold direct.threads dbpoold.threads; do
        [ -f "$WORK/r/$name.$t.r1.json" ] || continue
        median_run "$name.$t" json
        cp "$WORK/r/$name.$t.r$MEDIAN.json" "$WORK/r/$name.$t.json"
        cp "$WORK/r/$name.$t.r$MEDIAN.srvcpu" "$WORK/r/$name.$t.srvcpu"
        cp "$WORK/r/$name.$t.r$MEDIAN.dmncpu" "$WORK/r/$name.$t.dmncpu"
    done
    if [ -f "$WORK/r/$name.sysbench.r1.tps" ]; then
        median_run "$name.sysbench" tps
        cp "$WORK/r/$name.sysbench.r$MEDIAN.tps" "$WORK/r/$name.sysbench.tps"
        cp "$WORK/r/$name.sysbench.r$MEDIAN.cpu" "$WORK/r/$name.sysbench.cpu"
        cp "$WORK/r/$name.sysbench.r$MEDIAN.srvcpu" "$WORK/r/$name.sysbench.srvcpu"
    fi
}

# run_mysql — everything of the MySQL rows wanted (--rows): server, data,
# daemon, warm-up, rows
run_mysql() {
    local name wl clients flag target label line
    my_row_defs | while read -r name wl clients flag target label; do
        if row_wanted "$name"; then echo "$name $wl $clients $flag $target $label"; fi
    done >"$WORK/my-rows"
    [ -s "$WORK/my-rows" ] || return 0
    start_mariadb
    load_mysql
    start_dbpoold "$DBPOOLD" "$WORK/dp-my" MYD_PID MY_DBPOOL mysql_pool_conf
    printf -v MY_DIRECT_Q '%q' "$MY_DIRECT"
    printf -v MY_DBPOOL_Q '%q' "$MY_DBPOOL"
    say "MariaDB $(my_sql -e 'SELECT VERSION()'); warm-up: 3 s of select directly and through dbpoold"
    for t in "$MY_DIRECT" "$MY_DBPOOL"; do
        "$BENCH" --target "$t" --clients "$LO" --duration 3 --warmup 0 --scale "$SCALE" >/dev/null ||
            die "warm-up against $t failed"
    done
    mapfile -t MY_LINES <"$WORK/my-rows"
    for line in "${MY_LINES[@]}"; do
        read -r name wl clients flag _ <<<"$line"
        [ "$flag" = - ] && flag=""
        my_scenario "$name" "$wl" "$clients" "$flag"
    done
}

# better NAME TARGET — the run (JSON file) of TARGET with the higher tps of
# its two client models (the non-blocking one when it is the only one)
better() {
    local a=$WORK/r/$1.$2.json b=$WORK/r/$1.$2.threads.json
    if [ -f "$b" ] && awk -v x="$(json_num "$b" tps)" -v y="$(json_num "$a" tps)" 'BEGIN { exit !(x > y) }'; then
        echo "$b"
    else
        echo "$a"
    fi
}

# tps_pair NAME TARGET — "non-blocking / thread per client" tps of TARGET
tps_pair() {
    local a=$WORK/r/$1.$2.json b=$WORK/r/$1.$2.threads.json
    if [ -f "$b" ]; then
        printf '%.0f / %.0f' "$(json_num "$a" tps)" "$(json_num "$b" tps)"
    else
        printf '— / %.0f' "$(json_num "$a" tps)"
    fi
}

# errs NAME TARGET — errors of TARGET's runs, summed over both models
errs() {
    local n=0 f
    for f in "$WORK/r/$1.$2.json" "$WORK/r/$1.$2.threads.json"; do
        if [ -f "$f" ]; then n=$((n + $(json_num "$f" errors))); fi
    done
    echo "$n"
}

# cpu_line JSON — "client + dbpoold + server = total" µs per transaction of
# the run JSON (its .srvcpu and .dmncpu beside it)
cpu_line() {
    local b=${1%.json}
    awk -v c="$(json_num "$1" client_cpu_us_per_tx)" -v d="$(cat "$b.dmncpu")" -v s="$(cat "$b.srvcpu")" \
        'BEGIN { printf "%.1f + %.1f + %.1f = %.1f", c, d, s, c + d + s }'
}

# print_mysql_cpu — where each row's CPU goes, per transaction: client,
# dbpoold, server, for the run of each target in the table (and sysbench)
print_mysql_cpu() {
    local name wl clients flag target label sb
    echo "CPU per transaction, µs (client + dbpoold + MariaDB = total; the runs of the table; $(nproc) cores shared):"
    while read -r name wl clients flag target label; do
        sb=""
        if [ -f "$WORK/r/$name.sysbench.srvcpu" ]; then
            sb="; sysbench $(cat "$WORK/r/$name.sysbench.cpu") + 0 + $(cat "$WORK/r/$name.sysbench.srvcpu")"
        fi
        echo "- $name: direct $(cpu_line "$(better "$name" direct)"); dbpoold $(cpu_line "$(better "$name" dbpoold)")$sb"
    done <"$WORK/my-rows"
}

# print_mysql_table — the MySQL table, sysbench agreement, targets
print_mysql_table() {
    local name wl clients flag target label d p dt pt st ratio ok tt met=0 total=0
    [ -s "$WORK/my-rows" ] || return 0
    echo
    echo "dbpoold vs MariaDB directly (Connector/C) — MariaDB $(my_sql -e 'SELECT VERSION()')"
    echo
    echo "| workload | clients | direct tps (non-blocking / thread per client) | dbpoold tps (non-blocking / thread per client) | sysbench tps | direct p50 / p99 ms | dbpoold p50 / p99 ms | dbpoold/direct | target | errors (d/p) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    : >"$WORK/my-ratios"
    : >"$WORK/my-agreement"
    while read -r name wl clients flag target label; do
        d=$(better "$name" direct) p=$(better "$name" dbpoold)
        dt=$(json_num "$d" tps) pt=$(json_num "$p" tps) st=—
        ratio=$(fmt_ratio "$pt" "$dt")
        ok=$(awk -v r="$ratio" -v t="$target" 'BEGIN { print (r + 0 >= t + 0) ? "met" : "MISSED" }')
        total=$((total + 1))
        [ "$ok" = met ] && met=$((met + 1))
        if [ -f "$WORK/r/$name.sysbench.tps" ]; then
            st=$(printf %.0f "$(cat "$WORK/r/$name.sysbench.tps")")
            tt=$WORK/r/$name.direct.threads.json
            printf '%s %s %s %s %s %s\n' "$name" "$(json_num "$tt" tps)" "$(cat "$WORK/r/$name.sysbench.tps")" \
                "$(json_num "$WORK/r/$name.direct.json" tps)" "$(json_num "$tt" client_cpu_us_per_tx)" \
                "$(cat "$WORK/r/$name.sysbench.cpu")" >>"$WORK/my-agreement"
        fi
        echo "| $label | $clients | $(tps_pair "$name" direct) | $(tps_pair "$name" dbpoold) | $st | $(lat "$d") |" \
            "$(lat "$p") | $ratio | ≥ $target ($ok) | $(errs "$name" direct)/$(errs "$name" dbpoold) |"
        echo "$ratio" >>"$WORK/my-ratios"
    done <"$WORK/my-rows"
    echo
    echo "dbpoold/direct: the better client model of each (its p50 / p99 shown); with a connection per transaction both use a thread per client"
    if [ -s "$WORK/my-agreement" ]; then
        echo "dbpool-bench (Connector/C, direct, a thread per client like sysbench) vs sysbench oltp_point_select, same clients and window: tps difference; client CPU per transaction, dbpool-bench | sysbench; (the non-blocking client vs sysbench)"
        awk '{ dev = ($3 > 0) ? ($2 / $3 - 1) * 100 : 0; if (dev > 10 || dev < -10) bad++
               adev = ($3 > 0) ? ($4 / $3 - 1) * 100 : 0
               printf "- %s: %+.1f%%%s; %.1f | %.1f us; (non-blocking: %+.1f%%)\n", $1, dev,
                      (dev > 10 || dev < -10) ? " (DISAGREES)" : "", $5, $6, adev }
             END { printf "- %d of %d outside ±10%%\n", bad, NR }' "$WORK/my-agreement"
    fi
    print_mysql_cpu
    echo "mysql targets met: $met of $total"
    stats <"$WORK/my-ratios" | awk '{ printf "ratio dbpoold/direct (mysql) tps: min=%.2f median=%.2f\n", $1, $2 }'
}
