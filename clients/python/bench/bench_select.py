"""bench_select.py — round trips per second of the Python client, one process,
one connection: pgbench -S's statement (SELECT abalance FROM
pgbench_accounts WHERE aid = ?, aid uniform in [1, 100000 * scale]) in
autocommit, for comparison with
    dbpool-bench --target dbpool:SOCKET:POOL -c 1 -w select
on the same pool (doc/clients.md gives the figures).

    PYTHONPATH=clients/python python3 clients/python/bench/bench_select.py SOCKET POOL [SECONDS]

--init creates and fills pgbench_accounts (scale 1) through the client
first, for a SQLite pool that has no pgbench -i.
"""
import os
import random
import sys
import time

import dbpool


def init(conn):
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS pgbench_accounts")
    cur.execute("DROP TABLE IF EXISTS pgbench_branches")
    cur.execute("CREATE TABLE pgbench_branches (bid integer primary key, bbalance integer)")
    cur.execute("INSERT INTO pgbench_branches VALUES (1, 0)")
    cur.execute("CREATE TABLE pgbench_accounts (aid integer primary key, bid integer, "
                "abalance integer, filler char(84))")
    rows = [(aid, 1, 0, "") for aid in range(1, 100001)]
    cur.executemany("INSERT INTO pgbench_accounts VALUES (?, ?, ?, ?)", rows)


def run(conn, seconds, n_accounts):
    cur = conn.cursor()
    sql = "SELECT abalance FROM pgbench_accounts WHERE aid = ?"
    rnd = random.Random(1).randint
    execute, fetchone = cur.execute, cur.fetchone
    for _ in range(1000):                           # warm-up
        execute(sql, (rnd(1, n_accounts),))
        fetchone()
    n, start, cpu0 = 0, time.perf_counter(), os.times()
    end = start + seconds
    while True:
        for _ in range(1000):
            execute(sql, (rnd(1, n_accounts),))
            fetchone()
        n += 1000
        now = time.perf_counter()
        if now >= end:
            t = os.times()
            return (n / (now - start), (t.user - cpu0.user) / n * 1e6,
                    (t.system - cpu0.system) / n * 1e6)


def main(argv):
    args = [a for a in argv if a != "--init"]
    sock, pool = args[0], args[1]
    seconds = float(args[2]) if len(args) > 2 else 10
    conn = dbpool.connect(pool=pool, socket=sock, autocommit=True)
    if "--init" in argv:
        init(conn)
    scale = conn.cursor().execute("SELECT count(*) FROM pgbench_branches").fetchone()[0]
    rate, user, system = run(conn, seconds, 100000 * scale)
    print("python dbpool: %.0f round trips/s; client CPU per round trip: %.1f us user + "
          "%.1f us system (1 connection, %s pool, %gs)"
          % (rate, user, system, conn.backend, seconds))


if __name__ == "__main__":
    main(sys.argv[1:])
