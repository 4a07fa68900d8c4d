#!/bin/bash
# bench/cpu-per-tx.sh — CPU per transaction of dbpoold and of PgBouncer
# (utime+stime from /proc over one dbpool-bench run each), on one throwaway
# PostgreSQL. A quick companion to compare.sh when optimising the daemon:
# CPU per transaction is stable where tps on a shared machine is not.
# Usage: [DUR=S] [WORKLOADS="select tpcb connect"] [CLIENTS="20 200"]
#        [DBPOOLD="build/dbpoold other/build/dbpoold"] [ROUNDS=N] bash bench/cpu-per-tx.sh
#   DBPOOLD lists daemon binaries to compare (each gets its own daemon on the
#   same server; runs alternate between them, ROUNDS times).
#   (after scripts/build.sh build; needs pgbouncer)
# Output: "<daemon> <workload>-<clients> tps=<tps> cpu_ns_per_tx=<ns> client_ns_per_tx=<ns>"
set -u
cd "$(dirname "$0")/.."
D=$(mktemp -d /tmp/dbpool-cpu.XXXXXX); mkdir -p $D/pgb; chmod 755 $D
eval "$(PGPORT_TEST=54500 bash tests/pg/pg-harness.sh start $D/pg 2>/dev/null)"
pgbench -i -q -s 10 >/dev/null 2>&1
cat > $D/pgb/pgbouncer.ini <<EOI
[databases]
$PGDATABASE = host=$PGHOST port=$PGPORT dbname=$PGDATABASE user=$PGUSER
[pgbouncer]
listen_addr =
listen_port = 6499
unix_socket_dir = $D/pgb
auth_type = trust
auth_file = $D/pgb/userlist.txt
pool_mode = transaction
default_pool_size = 20
max_client_conn = 12000
logfile = $D/pgb/pgbouncer.log
pidfile = $D/pgb/pgbouncer.pid
EOI
printf '"%s" ""\n' "$PGUSER" > $D/pgb/userlist.txt; chown -R postgres: $D/pgb
runuser -u postgres -- pgbouncer -d $D/pgb/pgbouncer.ini
cat > $D/d.conf <<EOI
daemon = { socket = "$D/d.sock"; statusSocket = ""; logLevel = "warn"; };
pools = ( { name = "bench"; type = "postgres"; postgres = { host = "$PGHOST"; port = $PGPORT; name = "$PGDATABASE"; username = "$PGUSER"; maxOpenConns = 20; maxIdleConns = 20; }; } );
EOI
DAEMONS=(${DBPOOLD:-build/dbpoold}); DPS=()
for i in "${!DAEMONS[@]}"; do
  sed "s|$D/d.sock|$D/d$i.sock|" $D/d.conf > $D/d$i.conf
  setsid "${DAEMONS[$i]}" -c $D/d$i.conf 2>$D/d$i.log & DPS+=($!)   # own session = own autogroup, like pgbouncer -d
done
sleep 1; BP=$(cat $D/pgb/pgbouncer.pid)
ticks() { awk '{print $14+$15}' /proc/$1/stat; }
run() { # target pid workload clients name
  local wl=$3 flag=; [ $wl = connect ] && wl=select flag=-C
  local t0=$(ticks $2)
  local out=$( { TIMEFORMAT="client_ticks %U %S"; time build/dbpool-bench --target "$1" -w $wl $flag -c $4 -T ${DUR:-6} --warmup 0 --scale 10; } 2>&1)
  local t1=$(ticks $2)
  local n=$(echo "$out" | awk '/^transactions/ {print $2}'); local tps=$(echo "$out" | sed -n 's/^transactions.*(\(.*\) tps)/\1/p')
  local cl=$(echo "$out" | awk '/^client_ticks/ {printf "%d", ($2+$3)*1e9}')
  echo "$5 $3-$4 tps=$tps cpu_ns_per_tx=$(( (t1-t0)*10000000 / n )) client_ns_per_tx=$(( cl / n ))"
}
# WORKLOADS: any of select tpcb connect (connect = select with a new connection per transaction)
for r in $(seq ${ROUNDS:-1}); do for w in ${WORKLOADS:-select tpcb}; do for c in ${CLIENTS:-20}; do
  for i in "${!DAEMONS[@]}"; do
    run "dbpool:$D/d$i.sock:bench" ${DPS[$i]} $w $c "dbpoold[${DAEMONS[$i]}]"
  done
  run "host=$D/pgb port=6499 dbname=$PGDATABASE user=$PGUSER" $BP $w $c pgbouncer
done; done; done
kill ${DPS[@]}; kill $BP; bash tests/pg/pg-harness.sh stop $D/pg >/dev/null 2>&1; rm -rf $D
