/*
 * dbpool-bench.c — the benchmark client: one workload definition driven
 * against dbpoold, against PostgreSQL / PgBouncer (through libpq) or against
 * MariaDB / MySQL (through Connector/C, bench-mysql.c), the same way, so the
 * only difference between two runs is the path to the server. bench/README.md says how to run it; bench/compare.sh runs the
 * whole comparison; doc/benchmarks.md has the method and results.
 *
 *   dbpool-bench --target dbpool:SOCKET:POOL               [options]
 *   dbpool-bench --target 'host=... port=... dbname=...'   [options]
 *   dbpool-bench --target 'mysql:socket=... user=... db=...' [options]
 *
 * WORKLOADS (pgbench's built-in scripts, over the tables of `pgbench -i`)
 *
 *   select   SELECT abalance FROM pgbench_accounts WHERE aid = $1
 *            (pgbench -S), aid uniform in [1, 100000 * scale]
 *   tpcb     BEGIN; three UPDATEs, one SELECT, one INSERT; END
 *            (pgbench's default "tpcb-like" script: same statements, same
 *            order, same random ranges)
 *   --connect-per-tx   a new connection for every transaction, closed
 *            afterwards (pgbench -C): the cost a pooler removes
 *
 * The statements, their parameters and the random draws live in one table
 * (TX_SELECT / TX_TPCB); a driver only knows how to connect, run one
 * statement with int64 parameters, and begin / commit / roll back:
 *
 *   libpq    text parameters, paramTypes NULL: the extended protocol with
 *            unnamed statements, exactly what `pgbench -M extended` sends;
 *            BEGIN and END are statements, as in pgbench's script.
 *   dbpool   QUERY frames with typed INT64 parameters (PostgreSQL sees them
 *            as int8; int4 = int8 comparisons use the int4 indexes) and
 *            BEGIN / COMMIT as protocol frames, the daemon's native way;
 *            each costs one round trip, like pgbench's BEGIN and END.
 *   mysql    statements prepared once per connection and executed with
 *            MYSQL_TYPE_LONGLONG parameters (sysbench's way); BEGIN and
 *            COMMIT as statements (bench-mysql.c). A MySQL server, direct
 *            or behind a dbpoold mysql pool, gets the statements with ?
 *            placeholders (TX_SELECT_MY / TX_TPCB_MY).
 *
 * TWO CLIENT MODELS
 *
 *   async (default)  --jobs J threads (default: CPUs), each driving its
 *            share of the clients with non-blocking I/O and epoll: one
 *            request in flight per client, the next sent as soon as the
 *            answer is complete. This is pgbench's model (-j threads, async
 *            libpq); on a small machine a thread per client costs the client
 *            side up to twice the CPU per transaction, which the server then
 *            lacks (doc/benchmarks.md). libpq: PQsendQueryParams /
 *            PQconsumeInput / PQgetResult. dbpool: libdbpool's non-blocking
 *            API, the same pattern: dbpool_send_query / dbpool_flush /
 *            dbpool_consume_input / dbpool_get_result.
 *   threads  one thread per client, blocking calls: PQexecParams, and
 *            libdbpool's dbpool_query / dbpool_begin / dbpool_commit.
 *            Used for --connect-per-tx (connecting blocks in both
 *            libraries; the connections are opened with PQconnectdb and
 *            dbpool_connect) and on request (--model threads).
 *
 * All clients connect before the clock starts (as in pgbench), run
 * --warmup seconds unmeasured, then --duration seconds measured: a
 * transaction counts when it completes inside that window. A failed
 * statement in a transaction is followed by ROLLBACK and counted as an
 * error; a broken connection is reopened and counted as an error.
 *
 * LATENCY: every transaction's latency goes into its thread's log-bucket
 * histogram (128 buckets per power of two: a reported percentile is within
 * 0.4% of the true value); histograms are merged after the run, the maximum
 * is exact. The client's own CPU time per transaction is reported too.
 *
 * IDLE MODE: --idle N opens N connections (libdbpool's dbpool_connect: the
 * HELLO handshake; libpq: a complete startup and login), prints
 * "holding N connections" and keeps them for --hold S seconds (0: until
 * SIGINT/SIGTERM), so a script can read the server's memory per idle client.
 *
 * Ownership: everything is allocated by main() or by the thread that uses
 * it, and freed by it; a connection belongs to the thread that opened it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "dbpool.h"
#include "dbpool-bench.h"

#define THREAD_STACK (256u * 1024)

/* ================================================================ time */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ================================================================ random */

/* splitmix64: small, fast, good enough for picking rows; one per thread. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static int64_t rng_range(uint64_t *s, int64_t lo, int64_t hi)
{
    uint64_t span = (uint64_t)(hi - lo) + 1;
    return lo + (int64_t)(rng_next(s) % span);
}

/* ================================================================ histogram */

/* Values (nanoseconds) below 256 have a bucket each; above, a power of two is
 * split into 128 buckets. */
#define H_SUB 128
#define H_BUCKETS ((64 - 6) * H_SUB)

struct histo {
    uint64_t count;
    uint64_t max;
    double sum;
    uint64_t b[H_BUCKETS];
};

static unsigned h_index(uint64_t v)
{
    if (v < 2 * H_SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);   /* >= 8 */
    return (e - 6) * H_SUB + (unsigned)((v >> (e - 7)) - H_SUB);
}

/* Middle of bucket i (the value reported for it). */
static double h_value(unsigned i)
{
    if (i < 2 * H_SUB)
        return i;
    unsigned e = i / H_SUB + 6;
    uint64_t lo = ((uint64_t)(i % H_SUB) + H_SUB) << (e - 7);
    uint64_t width = (uint64_t)1 << (e - 7);
    return (double)lo + (double)width / 2.0;
}

static void h_add(struct histo *h, uint64_t v)
{
    h->b[h_index(v)]++;
    h->count++;
    h->sum += (double)v;
    if (v > h->max)
        h->max = v;
}

static void h_merge(struct histo *into, const struct histo *h)
{
    for (unsigned i = 0; i < H_BUCKETS; i++)
        into->b[i] += h->b[i];
    into->count += h->count;
    into->sum += h->sum;
    if (h->max > into->max)
        into->max = h->max;
}

/* Percentile p (0-100) in nanoseconds. */
static double h_percentile(const struct histo *h, double p)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < H_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            double v = h_value(i);
            return v > (double)h->max ? (double)h->max : v;
        }
    }
    return (double)h->max;
}

/* ================================================================ workload */

/* pgbench -S */
static const struct stmt_def TX_SELECT[] = {
    { "SELECT abalance FROM pgbench_accounts WHERE aid = $1", 1, { V_AID } },
};

/* pgbench's built-in "tpcb-like" script (inside BEGIN ... END). */
static const struct stmt_def TX_TPCB[] = {
    { "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2", 2, { V_DELTA, V_AID } },
    { "SELECT abalance FROM pgbench_accounts WHERE aid = $1", 1, { V_AID } },
    { "UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2", 2, { V_DELTA, V_TID } },
    { "UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2", 2, { V_DELTA, V_BID } },
    { "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)",
      4, { V_TID, V_BID, V_AID, V_DELTA } },
};

/* The same two, in MySQL's placeholders: for MariaDB directly and for a
 * dbpoold pool of type mysql. */
static const struct stmt_def TX_SELECT_MY[] = {
    { "SELECT abalance FROM pgbench_accounts WHERE aid = ?", 1, { V_AID } },
};

static const struct stmt_def TX_TPCB_MY[] = {
    { "UPDATE pgbench_accounts SET abalance = abalance + ? WHERE aid = ?", 2, { V_DELTA, V_AID } },
    { "SELECT abalance FROM pgbench_accounts WHERE aid = ?", 1, { V_AID } },
    { "UPDATE pgbench_tellers SET tbalance = tbalance + ? WHERE tid = ?", 2, { V_DELTA, V_TID } },
    { "UPDATE pgbench_branches SET bbalance = bbalance + ? WHERE bid = ?", 2, { V_DELTA, V_BID } },
    { "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (?, ?, ?, ?, CURRENT_TIMESTAMP)",
      4, { V_TID, V_BID, V_AID, V_DELTA } },
};

struct workload {
    const char *name;
    const struct stmt_def *stmts;
    int nstmts;
    bool transaction;       /* wrap in BEGIN / COMMIT */
};

static const struct workload WORKLOADS[] = {
    { "select", TX_SELECT, 1, false },
    { "tpcb", TX_TPCB, 5, true },
};

static const struct workload WORKLOADS_MY[] = {
    { "select", TX_SELECT_MY, 1, false },
    { "tpcb", TX_TPCB_MY, 5, true },
};

/* The workload of the same name in MySQL's placeholders. */
static const struct workload *mysql_workload(const struct workload *w)
{
    return &WORKLOADS_MY[w - WORKLOADS];
}

static void draw_vars(uint64_t *rng, int64_t scale, int64_t v[NVARS])
{
    v[V_AID] = rng_range(rng, 1, 100000 * scale);
    v[V_BID] = rng_range(rng, 1, scale);
    v[V_TID] = rng_range(rng, 1, 10 * scale);
    v[V_DELTA] = rng_range(rng, -5000, 5000);
}

/* ================================================================ drivers */

/* ---- libpq ---- */

static void pq_err(PGconn *pg, const char *what, char *err)
{
    const char *m = PQerrorMessage(pg);
    size_t n;
    snprintf(err, ERRLEN, "%s: %s", what, m && *m ? m : "(no message)");
    n = strlen(err);
    while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
        err[--n] = '\0';
}

static void *pq_connect(const struct target *t, char *err)
{
    PGconn *pg = PQconnectdb(t->conninfo);
    if (pg == NULL) {
        snprintf(err, ERRLEN, "libpq: out of memory");
        return NULL;
    }
    if (PQstatus(pg) != CONNECTION_OK) {
        pq_err(pg, "connect", err);
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

static int pq_result(PGconn *pg, PGresult *r, const char *what, char *err)
{
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(r);
        return RC_OK;
    }
    if (r != NULL) {
        const char *m = PQresultErrorMessage(r);
        snprintf(err, ERRLEN, "%s: %s", what, m && *m ? m : PQresStatus(st));
        size_t n = strlen(err);
        while (n > 0 && err[n - 1] == '\n')
            err[--n] = '\0';
        PQclear(r);
    } else {
        pq_err(pg, what, err);
    }
    return PQstatus(pg) == CONNECTION_OK ? RC_ERR : RC_BROKEN;
}

static int pq_exec(void *conn, const struct stmt_def *s, const int64_t v[NVARS], char *err)
{
    PGconn *pg = conn;
    char buf[5][24];
    const char *vals[5];
    for (int i = 0; i < s->nparams; i++) {
        snprintf(buf[i], sizeof buf[i], "%" PRId64, v[s->vars[i]]);
        vals[i] = buf[i];
    }
    /* paramTypes NULL, text format: what pgbench -M extended sends */
    return pq_result(pg, PQexecParams(pg, s->sql, s->nparams, NULL, vals, NULL, NULL, 0), s->sql, err);
}

static int pq_simple(PGconn *pg, const char *sql, char *err)
{
    return pq_result(pg, PQexecParams(pg, sql, 0, NULL, NULL, NULL, NULL, 0), sql, err);
}

static int pq_begin(void *conn, char *err) { return pq_simple(conn, "BEGIN", err); }
static int pq_commit(void *conn, char *err) { return pq_simple(conn, "END", err); }

static void pq_abort(void *conn)
{
    PGconn *pg = conn;
    if (PQstatus(pg) == CONNECTION_OK && PQtransactionStatus(pg) != PQTRANS_IDLE)
        PQclear(PQexec(pg, "ROLLBACK"));
}

static int pq_scalar(void *conn, const char *sql, int64_t *out, char *err)
{
    PGconn *pg = conn;
    PGresult *r = PQexec(pg, sql);
    if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        if (r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK) {
            snprintf(err, ERRLEN, "%s: expected one row", sql);
            PQclear(r);
            return RC_ERR;
        }
        (void)pq_result(pg, r, sql, err);
        return RC_ERR;
    }
    *out = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return RC_OK;
}

static void pq_close(void *conn) { PQfinish(conn); }

static const struct driver DRIVER_PQ = {
    "libpq", pq_connect, pq_exec, pq_begin, pq_commit, pq_abort, pq_scalar, pq_close,
};

/* ---- libdbpool ---- */

static int dp_fail(dbpool_conn *c, const char *what, char *err)
{
    const dbpool_error *e = dbpool_last_error(c);
    snprintf(err, ERRLEN, "%.300s: %s%s%s%s: %.600s", what, dbpool_code_name(e->code),
             e->sqlstate[0] ? " (" : "", e->sqlstate, e->sqlstate[0] ? ")" : "", e->message);
    return dbpool_is_open(c) ? RC_ERR : RC_BROKEN;
}

static void *dp_connect(const struct target *t, char *err)
{
    dbpool_error e;
    dbpool_conn *c = dbpool_connect(t->socket, t->pool, "dbpool-bench", &e);
    if (c == NULL)
        snprintf(err, ERRLEN, "connect to %.200s pool %.70s: %s: %.600s", t->socket, t->pool,
                 dbpool_code_name(e.code), e.message);
    return c;
}

static int dp_exec(void *conn, const struct stmt_def *s, const int64_t v[NVARS], char *err)
{
    dbpool_value p[5];
    for (int i = 0; i < s->nparams; i++)
        p[i] = dbpool_int(v[s->vars[i]]);
    if (dbpool_query(conn, s->sql, p, (size_t)s->nparams, NULL) < 0)
        return dp_fail(conn, s->sql, err);
    return RC_OK;
}

static int dp_begin(void *conn, char *err)
{
    return dbpool_begin(conn, 0) < 0 ? dp_fail(conn, "BEGIN", err) : RC_OK;
}

static int dp_commit(void *conn, char *err)
{
    return dbpool_commit(conn) < 0 ? dp_fail(conn, "COMMIT", err) : RC_OK;
}

static void dp_abort(void *conn)
{
    if (dbpool_is_open(conn) && dbpool_txstate_of(conn) != DBPOOL_TX_IDLE)
        (void)dbpool_rollback(conn);
}

static int dp_scalar(void *conn, const char *sql, int64_t *out, char *err)
{
    dbpool_result *r = NULL;
    if (dbpool_query(conn, sql, NULL, 0, &r) < 0)
        return dp_fail(conn, sql, err);
    const dbpool_value *v = dbpool_result_nrows(r) == 1 ? dbpool_result_value(r, 0, 0) : NULL;
    int rc = RC_OK;
    if (v != NULL && v->type == DBPOOL_INT64) {
        *out = v->u.i;
    } else if (v != NULL && v->type == DBPOOL_TEXT) {
        *out = strtoll(v->u.s.ptr, NULL, 10);
    } else {
        snprintf(err, ERRLEN, "%s: expected one integer", sql);
        rc = RC_ERR;
    }
    dbpool_result_free(r);
    return rc;
}

static void dp_close(void *conn) { dbpool_close(conn); }

static const struct driver DRIVER_DP = {
    "libdbpool", dp_connect, dp_exec, dp_begin, dp_commit, dp_abort, dp_scalar, dp_close,
};

/* ================================================================ async drivers
 *
 * The same statements, sent without blocking so that one thread can drive
 * many clients (pgbench's model). A request is queued with send(), pushed
 * out with flush() when the socket was full, and its answer collected by
 * readable() whenever the socket has data: RC_PENDING until the request is
 * complete, then RC_OK / RC_ERR (request failed, connection usable) /
 * RC_BROKEN. Connecting is blocking (it happens before the run, as in
 * pgbench).
 */

/* ---- libpq, non-blocking: PQsendQueryParams + PQconsumeInput/PQgetResult,
 * the calls pgbench -M extended makes ---- */

struct apq {
    PGconn *pg;
    const char *sql;        /* the statement running, for messages */
    bool want_write;
    bool failed;            /* an error result was seen for this request */
};

static void *apq_connect(const struct target *t, char *err)
{
    PGconn *pg = pq_connect(t, err);
    if (pg == NULL)
        return NULL;
    struct apq *a = calloc(1, sizeof *a);
    if (a == NULL || PQsetnonblocking(pg, 1) != 0) {
        snprintf(err, ERRLEN, "libpq: cannot make the connection non-blocking");
        free(a);
        PQfinish(pg);
        return NULL;
    }
    a->pg = pg;
    return a;
}

static int apq_fd(void *conn) { return PQsocket(((struct apq *)conn)->pg); }
static bool apq_want_write(void *conn) { return ((struct apq *)conn)->want_write; }

static int apq_flush(void *conn, char *err)
{
    struct apq *a = conn;
    int r = PQflush(a->pg);
    if (r < 0) {
        pq_err(a->pg, a->sql, err);
        return RC_BROKEN;
    }
    a->want_write = r == 1;
    return RC_OK;
}

static int apq_send(void *conn, enum step_kind k, const struct stmt_def *s, const int64_t v[NVARS], char *err)
{
    struct apq *a = conn;
    char buf[5][24];
    const char *vals[5];
    int n = 0;

    switch (k) {
    case K_BEGIN: a->sql = "BEGIN"; break;
    case K_COMMIT: a->sql = "END"; break;
    case K_ROLLBACK: a->sql = "ROLLBACK"; break;
    case K_STMT:
        a->sql = s->sql;
        n = s->nparams;
        for (int i = 0; i < n; i++) {
            snprintf(buf[i], sizeof buf[i], "%" PRId64, v[s->vars[i]]);
            vals[i] = buf[i];
        }
        break;
    }
    a->failed = false;
    if (!PQsendQueryParams(a->pg, a->sql, n, NULL, n ? vals : NULL, NULL, NULL, 0)) {
        pq_err(a->pg, a->sql, err);
        return RC_BROKEN;
    }
    return apq_flush(a, err);
}

static int apq_readable(void *conn, char *err)
{
    struct apq *a = conn;
    if (!PQconsumeInput(a->pg)) {
        pq_err(a->pg, a->sql, err);
        return RC_BROKEN;
    }
    if (a->want_write && apq_flush(a, err) != RC_OK)
        return RC_BROKEN;
    while (!PQisBusy(a->pg)) {
        PGresult *r = PQgetResult(a->pg);
        if (r == NULL) {
            if (PQstatus(a->pg) != CONNECTION_OK)
                return RC_BROKEN;
            return a->failed ? RC_ERR : RC_OK;
        }
        ExecStatusType st = PQresultStatus(r);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && !a->failed) {
            a->failed = true;
            (void)pq_result(a->pg, r, a->sql, err);    /* formats the message, clears r */
        } else {
            PQclear(r);
        }
    }
    return RC_PENDING;
}

static bool apq_in_tx(void *conn) { return PQtransactionStatus(((struct apq *)conn)->pg) != PQTRANS_IDLE; }

static void apq_close(void *conn)
{
    struct apq *a = conn;
    PQfinish(a->pg);
    free(a);
}

static const struct adriver ADRIVER_PQ = {
    "libpq (non-blocking)", apq_connect, apq_fd, apq_send, apq_want_write, apq_flush,
    apq_readable, apq_in_tx, apq_close, NULL,
};

/* ---- libdbpool, non-blocking: dbpool_send_query / dbpool_flush /
 * dbpool_consume_input / dbpool_get_result (include/dbpool.h, "Non-blocking
 * use"), the calls an event-loop program makes; the connection is opened
 * with dbpool_connect_start / dbpool_connect_poll. ---- */

struct adp {
    dbpool_conn *c;
    bool want_write;
};

static void adp_error_text(const dbpool_error *e, const char *what, char *err)
{
    snprintf(err, ERRLEN, "%.300s: %s%s%s%s: %.600s", what, dbpool_code_name(e->code),
             e->sqlstate[0] ? " (" : "", e->sqlstate, e->sqlstate[0] ? ")" : "", e->message);
}

static void *adp_connect(const struct target *t, char *err)
{
    dbpool_error e;
    dbpool_poll_status st;
    struct adp *a = calloc(1, sizeof *a);

    if (a == NULL) {
        snprintf(err, ERRLEN, "out of memory");
        return NULL;
    }
    a->c = dbpool_connect_start(t->socket, t->pool, "dbpool-bench", &e);
    if (a->c == NULL) {
        adp_error_text(&e, "connect", err);
        free(a);
        return NULL;
    }
    while ((st = dbpool_connect_poll(a->c)) == DBPOOL_POLL_READING || st == DBPOOL_POLL_WRITING) {
        struct pollfd p = { dbpool_socket(a->c), st == DBPOOL_POLL_READING ? POLLIN : POLLOUT, 0 };
        (void)poll(&p, 1, dbpool_poll_timeout(a->c));
    }
    if (st != DBPOOL_POLL_OK) {
        adp_error_text(dbpool_last_error(a->c), t->socket, err);
        dbpool_close(a->c);
        free(a);
        return NULL;
    }
    return a;
}

static int adp_fd(void *conn) { return dbpool_socket(((struct adp *)conn)->c); }
static bool adp_want_write(void *conn) { return ((struct adp *)conn)->want_write; }

static int adp_flush(void *conn, char *err)
{
    struct adp *a = conn;
    int r = dbpool_flush(a->c);

    if (r < 0) {
        adp_error_text(dbpool_last_error(a->c), "send to dbpoold", err);
        return RC_BROKEN;
    }
    a->want_write = r == 1;
    return RC_OK;
}

static int adp_send(void *conn, enum step_kind k, const struct stmt_def *s, const int64_t v[NVARS], char *err)
{
    struct adp *a = conn;
    dbpool_value p[5];
    int rc = 0;

    switch (k) {
    case K_BEGIN: rc = dbpool_send_begin(a->c, 0); break;
    case K_COMMIT: rc = dbpool_send_commit(a->c); break;
    case K_ROLLBACK: rc = dbpool_send_rollback(a->c); break;
    case K_STMT:
        for (int i = 0; i < s->nparams; i++)
            p[i] = dbpool_int(v[s->vars[i]]);
        rc = dbpool_send_query(a->c, s->sql, p, (size_t)s->nparams);
        break;
    }
    if (rc < 0) {
        adp_error_text(dbpool_last_error(a->c), "send", err);
        return RC_BROKEN;
    }
    return adp_flush(a, err);
}

static int adp_readable(void *conn, char *err)
{
    struct adp *a = conn;
    dbpool_result *r;
    int rc;

    (void)dbpool_consume_input(a->c);   /* a failure shows in the result */
    if (a->want_write && dbpool_is_open(a->c) && adp_flush(a, err) != RC_OK)
        return RC_BROKEN;
    r = dbpool_get_result(a->c);
    if (r == NULL) {
        if (dbpool_is_open(a->c))
            return RC_PENDING;
        adp_error_text(dbpool_last_error(a->c), "dbpoold", err);
        return RC_BROKEN;
    }
    rc = RC_OK;
    if (dbpool_result_status_of(r) == DBPOOL_RESULT_ERROR) {
        adp_error_text(dbpool_result_error(r), "request", err);
        rc = dbpool_is_open(a->c) ? RC_ERR : RC_BROKEN;
    }
    dbpool_result_free(r);
    return rc;
}

static bool adp_in_tx(void *conn) { return dbpool_txstate_of(((struct adp *)conn)->c) != DBPOOL_TX_IDLE; }

static void adp_close(void *conn)
{
    struct adp *a = conn;
    dbpool_close(a->c);
    free(a);
}

static const struct adriver ADRIVER_DP = {
    "libdbpool (non-blocking)", adp_connect, adp_fd, adp_send, adp_want_write,
    adp_flush, adp_readable, adp_in_tx, adp_close, NULL,
};

/* ================================================================ options */

enum model { M_ASYNC, M_THREADS };

struct options {
    struct target target;
    const struct driver *drv;       /* thread-per-client model, idle mode */
    const struct adriver *adrv;     /* async model */
    enum model model;
    int jobs;                       /* async: threads */
    const struct workload *wl;
    bool connect_per_tx;
    int clients;
    double duration, warmup;
    int64_t scale;          /* 0: ask the database */
    bool json;
    long idle;              /* > 0: idle mode */
    double hold;
    const char *label;
    bool init;              /* --init: create the MySQL tables, then exit */
    bool text_protocol;     /* mysql: statements as text, nothing prepared */
};

static void usage(FILE *f)
{
    fprintf(f,
        "usage: dbpool-bench --target TARGET [options]\n"
        "\n"
        "TARGET:\n"
        "  dbpool:SOCKET:POOL          dbpoold's client socket and a pool name\n"
        "  'host=... port=... dbname=...'  a libpq conninfo or URI: PostgreSQL or PgBouncer\n"
        "  'mysql:socket=PATH user=U db=DB'  MariaDB / MySQL directly (Connector/C); keys:\n"
        "                              socket, host, port, user, password, db\n"
        "\n"
        "workload (tables from `pgbench -i -s SCALE`):\n"
        "  -w, --workload select|tpcb  select: pgbench -S; tpcb: pgbench's default script (default select)\n"
        "  -C, --connect-per-tx        a new connection for every transaction (pgbench -C);\n"
        "                              implies --model threads\n"
        "  -c, --clients N             concurrent clients (default 1)\n"
        "      --model async|threads   async (default): --jobs threads drive the clients with\n"
        "                              non-blocking I/O, like pgbench (libpq's non-blocking API;\n"
        "                              libdbpool's dbpool_send_query/consume_input/get_result).\n"
        "                              threads: one thread per client, blocking calls\n"
        "                              (PQexecParams; libdbpool's dbpool_query/begin/commit;\n"
        "                              Connector/C's blocking calls, its *_start/_cont in async)\n"
        "  -j, --jobs J                threads of the async model (default: CPUs, at most N)\n"
        "  -T, --duration S            measured seconds (default 10)\n"
        "      --warmup S              seconds run before measuring (default 2)\n"
        "  -s, --scale K               pgbench scale (default: count(*) of pgbench_branches)\n"
        "      --json                  one JSON object on stdout instead of text\n"
        "      --label TEXT            a name for this run, echoed in the output\n"
        "\n"
        "idle mode:\n"
        "      --idle N                open N connections and hold them; prints\n"
        "                              \"holding N connections\" when all are open\n"
        "      --hold S                how long to hold them (default 0: until SIGINT/SIGTERM)\n"
        "\n"
        "mysql: targets (a dbpoold pool of type mysql is recognised from its HELLO answer\n"
        "and gets the same statements, with ? placeholders):\n"
        "      --init                  create and fill pgbench's tables at --scale (default 10)\n"
        "                              in the database, like pgbench -i, then exit\n"
        "      --text-protocol         send statements as text with the values written in;\n"
        "                              default: prepared once per connection (binary protocol,\n"
        "                              like sysbench), text with --connect-per-tx\n"
        "\n"
        "Exit status: 0 when the run completed (errors are counted and reported),\n"
        "1 when it could not run (bad target, connect failure, missing tables), 2 on usage errors.\n");
}

static int parse_target(const char *s, struct target *t)
{
    memset(t, 0, sizeof *t);
    if (strncmp(s, "mysql:", 6) == 0)
        return my_parse_target(s + 6, t);
    if (strncmp(s, "dbpool:", 7) == 0) {
        const char *rest = s + 7;
        const char *colon = strrchr(rest, ':');
        if (colon == NULL || colon == rest || colon[1] == '\0') {
            fprintf(stderr, "dbpool-bench: --target %s: expected dbpool:SOCKET:POOL\n", s);
            return -1;
        }
        t->is_dbpool = true;
        t->kind = T_DBPOOL;
        t->socket = strndup(rest, (size_t)(colon - rest));
        t->pool = strdup(colon + 1);
        return t->socket && t->pool ? 0 : -1;
    }
    t->conninfo = strdup(s);
    return t->conninfo ? 0 : -1;
}

static int parse_double(const char *opt, const char *s, double min, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || end == s || *end || !(d >= min)) {
        fprintf(stderr, "dbpool-bench: %s: expected a number >= %g, got \"%s\"\n", opt, min, s);
        return -1;
    }
    *out = d;
    return 0;
}

static int parse_long(const char *opt, const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "dbpool-bench: %s: expected an integer in [%ld, %ld], got \"%s\"\n",
                opt, min, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    enum { O_WARMUP = 256, O_JSON, O_IDLE, O_HOLD, O_LABEL, O_MODEL, O_INIT, O_TEXT };
    static const struct option longopts[] = {
        { "target", required_argument, NULL, 't' },
        { "workload", required_argument, NULL, 'w' },
        { "connect-per-tx", no_argument, NULL, 'C' },
        { "clients", required_argument, NULL, 'c' },
        { "duration", required_argument, NULL, 'T' },
        { "warmup", required_argument, NULL, O_WARMUP },
        { "scale", required_argument, NULL, 's' },
        { "json", no_argument, NULL, O_JSON },
        { "idle", required_argument, NULL, O_IDLE },
        { "hold", required_argument, NULL, O_HOLD },
        { "label", required_argument, NULL, O_LABEL },
        { "model", required_argument, NULL, O_MODEL },
        { "jobs", required_argument, NULL, 'j' },
        { "init", no_argument, NULL, O_INIT },
        { "text-protocol", no_argument, NULL, O_TEXT },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *target = NULL;
    long l;
    int ch;

    memset(o, 0, sizeof *o);
    o->wl = &WORKLOADS[0];
    o->clients = 1;
    o->duration = 10;
    o->warmup = 2;
    bool model_set = false;
    while ((ch = getopt_long(argc, argv, "t:w:Cc:T:s:j:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 't': target = optarg; break;
        case 'w':
            o->wl = NULL;
            for (size_t i = 0; i < sizeof WORKLOADS / sizeof WORKLOADS[0]; i++)
                if (strcmp(optarg, WORKLOADS[i].name) == 0)
                    o->wl = &WORKLOADS[i];
            if (o->wl == NULL) {
                fprintf(stderr, "dbpool-bench: --workload: expected select or tpcb, got \"%s\"\n", optarg);
                return -1;
            }
            break;
        case 'C': o->connect_per_tx = true; break;
        case 'c':
            if (parse_long("--clients", optarg, 1, 100000, &l) < 0)
                return -1;
            o->clients = (int)l;
            break;
        case 'T':
            if (parse_double("--duration", optarg, 0.001, &o->duration) < 0)
                return -1;
            break;
        case O_WARMUP:
            if (parse_double("--warmup", optarg, 0, &o->warmup) < 0)
                return -1;
            break;
        case 's':
            if (parse_long("--scale", optarg, 1, 1000000, &l) < 0)
                return -1;
            o->scale = l;
            break;
        case O_JSON: o->json = true; break;
        case O_IDLE:
            if (parse_long("--idle", optarg, 1, 10000000, &o->idle) < 0)
                return -1;
            break;
        case O_HOLD:
            if (parse_double("--hold", optarg, 0, &o->hold) < 0)
                return -1;
            break;
        case O_LABEL: o->label = optarg; break;
        case O_INIT: o->init = true; break;
        case O_TEXT: o->text_protocol = true; break;
        case O_MODEL:
            if (strcmp(optarg, "async") == 0) {
                o->model = M_ASYNC;
            } else if (strcmp(optarg, "threads") == 0) {
                o->model = M_THREADS;
            } else {
                fprintf(stderr, "dbpool-bench: --model: expected async or threads, got \"%s\"\n", optarg);
                return -1;
            }
            model_set = true;
            break;
        case 'j':
            if (parse_long("--jobs", optarg, 1, 10000, &l) < 0)
                return -1;
            o->jobs = (int)l;
            break;
        case 'h': usage(stdout); exit(0);
        default: return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "dbpool-bench: unexpected argument \"%s\"\n", argv[optind]);
        return -1;
    }
    if (target == NULL) {
        fprintf(stderr, "dbpool-bench: --target is required\n");
        return -1;
    }
    if ((o->init || o->text_protocol) && strncmp(target, "mysql:", 6) != 0) {
        fprintf(stderr, "dbpool-bench: %s is for a mysql: target (PostgreSQL: pgbench -i)\n",
                o->init ? "--init" : "--text-protocol");
        return -1;
    }
    if (parse_target(target, &o->target) < 0)
        return -1;
    o->drv = o->target.kind == T_DBPOOL ? &DRIVER_DP : o->target.kind == T_MYSQL ? &DRIVER_MY : &DRIVER_PQ;
    o->adrv = o->target.kind == T_DBPOOL ? &ADRIVER_DP : o->target.kind == T_MYSQL ? &ADRIVER_MY : &ADRIVER_PQ;
    if (o->connect_per_tx) {
        /* connecting blocks (libpq and libdbpool alike): a thread per client */
        if (model_set && o->model == M_ASYNC) {
            fprintf(stderr, "dbpool-bench: --connect-per-tx needs --model threads (connecting blocks)\n");
            return -1;
        }
        o->model = M_THREADS;
    }
    if (o->jobs == 0) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        o->jobs = ncpu > 0 ? (int)ncpu : 1;
    }
    if (o->jobs > o->clients)
        o->jobs = o->clients;
    return 0;
}

/* ================================================================ signals */

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Many clients need many descriptors: raise the soft limit to the hard one. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ================================================================ the run */

struct shared {
    const struct options *o;
    pthread_barrier_t connected, go;
    uint64_t t_measure, t_end;          /* set by main between the barriers */
    atomic_int connect_failures;
    pthread_mutex_t err_mu;
    char first_error[ERRLEN];
};

struct client {
    struct shared *sh;
    int id;
    pthread_t thread;
    uint64_t rng;
    uint64_t tx, errors, reconnects;    /* inside the measured window */
    uint64_t tx_all;                    /* including warm-up */
    struct histo h;
};

static void note_error(struct shared *sh, const char *err)
{
    pthread_mutex_lock(&sh->err_mu);
    if (sh->first_error[0] == '\0')
        snprintf(sh->first_error, sizeof sh->first_error, "%s", err);
    pthread_mutex_unlock(&sh->err_mu);
}

/* One transaction of the workload on conn. */
static int run_tx(const struct driver *d, const struct workload *w, void *conn,
                  const int64_t v[NVARS], char *err)
{
    int rc;
    if (w->transaction && (rc = d->begin(conn, err)) != RC_OK)
        return rc;
    for (int i = 0; i < w->nstmts; i++) {
        if ((rc = d->exec(conn, &w->stmts[i], v, err)) != RC_OK) {
            if (rc == RC_ERR)
                d->abort(conn);
            return rc;
        }
    }
    if (w->transaction && (rc = d->commit(conn, err)) != RC_OK) {
        if (rc == RC_ERR)
            d->abort(conn);
        return rc;
    }
    return RC_OK;
}

static void *client_main(void *arg)
{
    struct client *cl = arg;
    struct shared *sh = cl->sh;
    const struct options *o = sh->o;
    const struct driver *d = o->drv;
    char err[ERRLEN];
    int64_t v[NVARS];
    void *conn = NULL;

    if (!o->connect_per_tx) {
        conn = d->connect(&o->target, err);
        if (conn == NULL) {
            atomic_fetch_add(&sh->connect_failures, 1);
            note_error(sh, err);
        }
    }
    pthread_barrier_wait(&sh->connected);
    pthread_barrier_wait(&sh->go);
    if (atomic_load(&sh->connect_failures) > 0)
        goto out;

    for (;;) {
        uint64_t t0 = now_ns();
        if (t0 >= sh->t_end || g_stop)
            break;
        draw_vars(&cl->rng, o->scale, v);
        int rc = RC_OK;
        if (conn == NULL) {
            conn = d->connect(&o->target, err);
            if (conn == NULL)
                rc = RC_BROKEN;
            else if (!o->connect_per_tx)
                cl->reconnects++;
        }
        if (conn != NULL) {
            rc = run_tx(d, o->wl, conn, v, err);
            if (rc == RC_BROKEN || o->connect_per_tx) {
                d->close(conn);
                conn = NULL;
            }
        }
        uint64_t t1 = now_ns();
        bool counted = t1 >= sh->t_measure && t1 < sh->t_end;
        if (rc == RC_OK) {
            cl->tx_all++;
            if (counted) {
                cl->tx++;
                h_add(&cl->h, t1 - t0);
            }
        } else {
            if (counted)
                cl->errors++;
            note_error(sh, err);
            if (conn == NULL && rc == RC_BROKEN)
                usleep(10000);      /* do not spin on a server that is down */
        }
    }
out:
    if (conn != NULL)
        d->close(conn);
    return NULL;
}

/* ================================================================ the async model
 *
 * --jobs J threads; each owns clients i, i+J, i+2J, ... and drives them with
 * epoll: every client has at most one request in flight, the next one is
 * sent as soon as the answer is complete (pgbench's loop). A failed
 * statement inside a transaction is followed by ROLLBACK; a broken
 * connection is reopened (blocking; only in failure cases). A request the
 * driver finished without waiting (adriver.complete) gets no socket event:
 * its client goes on the worker's ready list. After each epoll batch the
 * clients on the list then are served once each, and epoll is polled again
 * before those that finished again are: a client whose requests keep
 * finishing at once must not keep its thread from the others' answers.
 */

struct aclient {
    void *conn;
    uint64_t t0;
    int64_t v[NVARS];
    int step;               /* index in the transaction's steps */
    bool rolling_back;
    bool out_armed;         /* EPOLLOUT registered */
    bool queued;            /* on the worker's ready list */
    char err[ERRLEN];
};

struct worker {
    struct shared *sh;
    pthread_t thread;
    int epfd;
    int nclients;
    struct aclient *cl;     /* owned */
    struct aclient **ready; /* owned: clients whose answer is complete */
    struct aclient **batch; /* owned: the ones being served */
    int nready;
    uint64_t rng;
    uint64_t tx, errors, reconnects;    /* inside the measured window */
    uint64_t tx_all;                    /* including warm-up */
    struct histo h;
};

static int nsteps(const struct workload *w) { return w->nstmts + (w->transaction ? 2 : 0); }

static int w_arm(struct worker *w, struct aclient *c, int op)
{
    const struct adriver *d = w->sh->o->adrv;
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    c->out_armed = d->want_write(c->conn);
    ev.events = EPOLLIN | (c->out_armed ? EPOLLOUT : 0);
    ev.data.ptr = c;
    return epoll_ctl(w->epfd, op, d->fd(c->conn), &ev);
}

static void w_update(struct worker *w, struct aclient *c)
{
    const struct adriver *d = w->sh->o->adrv;
    if (d->want_write(c->conn) != c->out_armed)
        (void)w_arm(w, c, EPOLL_CTL_MOD);
    if (d->complete != NULL && !c->queued && d->complete(c->conn)) {
        c->queued = true;
        w->ready[w->nready++] = c;
    }
}

static int w_send(struct worker *w, struct aclient *c)
{
    const struct options *o = w->sh->o;
    const struct workload *wl = o->wl;
    const struct stmt_def *s = NULL;
    enum step_kind k = K_STMT;
    int i = c->step;

    if (c->rolling_back)
        k = K_ROLLBACK;
    else if (wl->transaction && i == 0)
        k = K_BEGIN;
    else if (wl->transaction && i == wl->nstmts + 1)
        k = K_COMMIT;
    else
        s = &wl->stmts[wl->transaction ? i - 1 : i];
    int rc = o->adrv->send(c->conn, k, s, c->v, c->err);
    if (rc == RC_OK)
        w_update(w, c);
    return rc;
}

static void w_broken(struct worker *w, struct aclient *c);

static void w_start(struct worker *w, struct aclient *c)
{
    uint64_t now = now_ns();
    if (now >= w->sh->t_end || g_stop)
        return;             /* the run is over: leave the client idle */
    draw_vars(&w->rng, w->sh->o->scale, c->v);
    c->t0 = now;
    c->step = 0;
    c->rolling_back = false;
    if (w_send(w, c) != RC_OK)
        w_broken(w, c);
}

static void w_finish(struct worker *w, struct aclient *c, bool ok)
{
    uint64_t t1 = now_ns();
    bool counted = t1 >= w->sh->t_measure && t1 < w->sh->t_end;
    if (ok) {
        w->tx_all++;
        if (counted) {
            w->tx++;
            h_add(&w->h, t1 - c->t0);
        }
    } else {
        if (counted)
            w->errors++;
        note_error(w->sh, c->err);
    }
    w_start(w, c);
}

/* The connection is gone: count the error, reconnect, go on. */
static void w_broken(struct worker *w, struct aclient *c)
{
    const struct adriver *d = w->sh->o->adrv;
    uint64_t t1 = now_ns();
    if (t1 >= w->sh->t_measure && t1 < w->sh->t_end)
        w->errors++;
    note_error(w->sh, c->err);
    (void)epoll_ctl(w->epfd, EPOLL_CTL_DEL, d->fd(c->conn), NULL);
    d->close(c->conn);
    c->conn = NULL;
    while (!g_stop && now_ns() < w->sh->t_end) {
        c->conn = d->connect(&w->sh->o->target, c->err);
        if (c->conn != NULL)
            break;
        note_error(w->sh, c->err);
        usleep(10000);      /* do not spin on a server that is down */
    }
    if (c->conn == NULL)
        return;
    w->reconnects++;
    if (w_arm(w, c, EPOLL_CTL_ADD) < 0) {
        snprintf(c->err, ERRLEN, "epoll_ctl: %s", strerror(errno));
        note_error(w->sh, c->err);
        d->close(c->conn);
        c->conn = NULL;
        return;
    }
    w_start(w, c);
}

static void w_event(struct worker *w, struct aclient *c, uint32_t events)
{
    const struct adriver *d = w->sh->o->adrv;
    if (c->conn == NULL)
        return;
    if ((events & EPOLLOUT) && d->want_write(c->conn)) {
        if (d->flush(c->conn, c->err) != RC_OK) {
            w_broken(w, c);
            return;
        }
        w_update(w, c);
    }
    if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        return;
    switch (d->readable(c->conn, c->err)) {
    case RC_PENDING:
        w_update(w, c);
        return;
    case RC_OK:
        if (c->rolling_back) {
            w_finish(w, c, false);          /* the error was recorded in c->err */
            return;
        }
        if (++c->step == nsteps(w->sh->o->wl)) {
            w_finish(w, c, true);
            return;
        }
        if (w_send(w, c) != RC_OK)
            w_broken(w, c);
        return;
    case RC_ERR:
        if (!c->rolling_back && d->in_tx(c->conn)) {
            c->rolling_back = true;
            if (w_send(w, c) != RC_OK)
                w_broken(w, c);
            return;
        }
        w_finish(w, c, false);
        return;
    default:
        w_broken(w, c);
        return;
    }
}

/* Clients whose answer the driver completed without a socket event. */
static void w_serve_ready(struct worker *w)
{
    const struct adriver *d = w->sh->o->adrv;
    int n = w->nready;
    memcpy(w->batch, w->ready, (size_t)n * sizeof *w->batch);
    w->nready = 0;
    for (int i = 0; i < n && !g_stop; i++) {
        struct aclient *c = w->batch[i];
        c->queued = false;
        if (c->conn != NULL && d->complete(c->conn))
            w_event(w, c, EPOLLIN);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct shared *sh = w->sh;
    const struct adriver *d = sh->o->adrv;
    struct epoll_event evs[64];
    char err[ERRLEN];

    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < w->nclients; i++) {
        struct aclient *c = &w->cl[i];
        c->conn = w->epfd < 0 ? NULL : d->connect(&sh->o->target, err);
        if (c->conn == NULL || w_arm(w, c, EPOLL_CTL_ADD) < 0) {
            if (w->epfd < 0 || c->conn != NULL)
                snprintf(err, sizeof err, "epoll: %s", strerror(errno));
            atomic_fetch_add(&sh->connect_failures, 1);
            note_error(sh, err);
            break;
        }
    }
    pthread_barrier_wait(&sh->connected);
    pthread_barrier_wait(&sh->go);
    if (atomic_load(&sh->connect_failures) > 0)
        goto out;

    for (int i = 0; i < w->nclients; i++)
        w_start(w, &w->cl[i]);
    w_serve_ready(w);
    while (!g_stop) {
        uint64_t now = now_ns();
        if (now >= sh->t_end)
            break;
        uint64_t left_ms = (sh->t_end - now) / 1000000u + 1;
        int wait_ms = w->nready > 0 ? 0 : left_ms < 100 ? (int)left_ms : 100;
        int n = epoll_wait(w->epfd, evs, 64, wait_ms);
        if (n < 0 && errno != EINTR) {
            snprintf(err, sizeof err, "epoll_wait: %s", strerror(errno));
            note_error(sh, err);
            break;
        }
        for (int i = 0; i < n; i++)
            w_event(w, evs[i].data.ptr, evs[i].events);
        w_serve_ready(w);
    }
out:
    for (int i = 0; i < w->nclients; i++)
        if (w->cl[i].conn != NULL)
            d->close(w->cl[i].conn);
    if (w->epfd >= 0)
        close(w->epfd);
    return NULL;
}

/* ================================================================ running */

static const char *init_hint(bool mysql)
{
    return mysql ? "dbpool-bench --target mysql:... --init -s SCALE" : "pgbench -i -s SCALE";
}

/* MySQL's placeholders for a MySQL server, direct or behind dbpoold; what
 * a direct MySQL connection prepares. */
static void choose_statements(struct options *o, bool mysql)
{
    if (!mysql)
        return;
    o->wl = mysql_workload(o->wl);
    if (o->target.kind == T_MYSQL && !o->connect_per_tx && !o->text_protocol)
        my_set_prepared(o->wl->stmts, o->wl->nstmts);
    else
        my_set_prepared(NULL, 0);
}

/* Scale from the database (what pgbench does), checked against --scale;
 * the statements' dialect from the target (or the pool's backend). */
static int check_scale(struct options *o)
{
    char err[ERRLEN];
    int64_t n = 0;
    bool mysql = o->target.kind == T_MYSQL;
    choose_statements(o, mysql);
    void *conn = o->drv->connect(&o->target, err);
    if (conn == NULL) {
        fprintf(stderr, "dbpool-bench: %s\n", err);
        return -1;
    }
    if (o->target.kind == T_DBPOOL && strcmp(dbpool_backend(conn), "mysql") == 0) {
        mysql = true;
        choose_statements(o, mysql);
    }
    int rc = o->drv->scalar(conn, "SELECT count(*) FROM pgbench_branches", &n, err);
    o->drv->close(conn);
    if (rc != RC_OK) {
        fprintf(stderr, "dbpool-bench: %s\n(create the tables with `%s`)\n", err, init_hint(mysql));
        return -1;
    }
    if (n < 1) {
        fprintf(stderr, "dbpool-bench: pgbench_branches is empty (run `%s`)\n", init_hint(mysql));
        return -1;
    }
    if (o->scale == 0)
        o->scale = n;
    else if (o->scale != n)
        fprintf(stderr, "dbpool-bench: warning: --scale %" PRId64 " but pgbench_branches has %"
                PRId64 " rows\n", o->scale, n);
    return 0;
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static const char *target_text(const struct options *o, char *buf, size_t n)
{
    const struct mysql_target *m = &o->target.my;
    if (o->target.is_dbpool)
        snprintf(buf, n, "dbpool:%s:%s", o->target.socket, o->target.pool);
    else if (o->target.kind == T_MYSQL)
        snprintf(buf, n, "mysql:%s%s%s%s db=%s", m->socket ? "socket=" : "host=",
                 m->socket ? m->socket : m->host ? m->host : "localhost",
                 m->user ? " user=" : "", m->user ? m->user : "", m->db);
    else
        snprintf(buf, n, "%s", o->target.conninfo);
    return buf;
}

/* cpu_per_tx: this process's CPU time (user + system, whole run) in
 * microseconds per completed transaction: what the client itself costs. */
static void report(const struct options *o, const struct histo *h, uint64_t errors,
                   uint64_t reconnects, double secs, double cpu_per_tx, const char *first_error)
{
    char tbuf[1024];
    double tps = (double)h->count / secs;
    double ms = 1e-6;
    double p50 = h_percentile(h, 50) * ms, p90 = h_percentile(h, 90) * ms,
           p99 = h_percentile(h, 99) * ms, p999 = h_percentile(h, 99.9) * ms,
           mx = (double)h->max * ms, mean = h->count ? h->sum / (double)h->count * ms : 0;

    const char *driver = o->model == M_THREADS ? o->drv->name : o->adrv->name;
    char mbuf[64];
    if (o->model == M_THREADS)
        snprintf(mbuf, sizeof mbuf, "one thread per client");
    else
        snprintf(mbuf, sizeof mbuf, "%d thread%s, non-blocking", o->jobs, o->jobs == 1 ? "" : "s");
    target_text(o, tbuf, sizeof tbuf);
    if (o->json) {
        printf("{\"label\":");
        json_str(stdout, o->label ? o->label : "");
        printf(",\"target\":");
        json_str(stdout, tbuf);
        printf(",\"driver\":\"%s\",\"model\":\"%s\",\"threads\":%d,"
               "\"workload\":\"%s\",\"connect_per_tx\":%s,"
               "\"clients\":%d,\"scale\":%" PRId64 ",\"duration_s\":%.3f,\"warmup_s\":%.3f,"
               "\"transactions\":%" PRIu64 ",\"tps\":%.2f,\"errors\":%" PRIu64 ","
               "\"reconnects\":%" PRIu64 ","
               "\"latency_ms\":{\"mean\":%.4f,\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f,"
               "\"p99_9\":%.4f,\"max\":%.4f},\"client_cpu_us_per_tx\":%.2f,\"first_error\":",
               driver, o->model == M_THREADS ? "threads" : "async",
               o->model == M_THREADS ? o->clients : o->jobs, o->wl->name, o->connect_per_tx ? "true" : "false", o->clients,
               o->scale, secs, o->warmup, h->count, tps, errors, reconnects,
               mean, p50, p90, p99, p999, mx, cpu_per_tx);
        if (first_error[0])
            json_str(stdout, first_error);
        else
            printf("null");
        printf("}\n");
    } else {
        if (o->label)
            printf("run:          %s\n", o->label);
        printf("target:       %s (%s)\n", tbuf, driver);
        printf("workload:     %s%s, scale %" PRId64 ", %d clients (%s)\n",
               o->wl->name, o->connect_per_tx ? ", connection per transaction" : "",
               o->scale, o->clients, mbuf);
        printf("duration:     %.1f s measured after %.1f s warm-up\n", secs, o->warmup);
        printf("transactions: %" PRIu64 " (%.1f tps)\n", h->count, tps);
        printf("errors:       %" PRIu64 "%s", errors, reconnects ? "" : "\n");
        if (reconnects)
            printf(" (%" PRIu64 " reconnects)\n", reconnects);
        printf("latency ms:   p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (mean %.3f)\n",
               p50, p90, p99, p999, mx, mean);
        printf("client CPU:   %.1f us per transaction (user + system, this process)\n", cpu_per_tx);
        if (first_error[0])
            printf("first error:  %s\n", first_error);
    }
    fflush(stdout);
}

/* Starts one thread per client (threads model) or --jobs workers (async),
 * lets them connect, times the run, merges what they measured. */
static int run_benchmark(struct options *o)
{
    struct shared sh;
    struct client *cl = NULL;
    struct worker *wk = NULL;
    pthread_attr_t attr;
    bool threads = o->model == M_THREADS;
    int n = threads ? o->clients : o->jobs, rc = 0;

    if (check_scale(o) < 0)
        return 1;
    memset(&sh, 0, sizeof sh);
    sh.o = o;
    pthread_mutex_init(&sh.err_mu, NULL);
    pthread_barrier_init(&sh.connected, NULL, (unsigned)n + 1);
    pthread_barrier_init(&sh.go, NULL, (unsigned)n + 1);
    if (threads)
        cl = calloc((size_t)n, sizeof *cl);
    else
        wk = calloc((size_t)n, sizeof *wk);
    if (cl == NULL && wk == NULL) {
        fprintf(stderr, "dbpool-bench: out of memory\n");
        return 1;
    }
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    uint64_t seed = now_ns() ^ ((uint64_t)getpid() << 32);
    for (int i = 0; i < n; i++) {
        uint64_t rng = seed + (uint64_t)i * 0x632BE59BD9B4E019ull;
        int e;
        if (threads) {
            cl[i].sh = &sh;
            cl[i].id = i;
            cl[i].rng = rng;
            e = pthread_create(&cl[i].thread, &attr, client_main, &cl[i]);
        } else {
            wk[i].sh = &sh;
            wk[i].rng = rng;
            wk[i].epfd = -1;
            wk[i].nclients = o->clients / n + (i < o->clients % n ? 1 : 0);
            wk[i].cl = calloc((size_t)wk[i].nclients, sizeof *wk[i].cl);
            wk[i].ready = calloc((size_t)wk[i].nclients, sizeof *wk[i].ready);
            wk[i].batch = calloc((size_t)wk[i].nclients, sizeof *wk[i].batch);
            if (wk[i].cl == NULL || wk[i].ready == NULL || wk[i].batch == NULL) {
                fprintf(stderr, "dbpool-bench: out of memory\n");
                exit(1);
            }
            e = pthread_create(&wk[i].thread, &attr, worker_main, &wk[i]);
        }
        if (e != 0) {
            /* threads already started wait at the barrier forever: give up */
            fprintf(stderr, "dbpool-bench: cannot start thread %d: %s\n", i, strerror(e));
            exit(1);
        }
    }
    pthread_attr_destroy(&attr);

    pthread_barrier_wait(&sh.connected);
    uint64_t t0 = now_ns();
    sh.t_measure = t0 + (uint64_t)(o->warmup * 1e9);
    sh.t_end = sh.t_measure + (uint64_t)(o->duration * 1e9);
    pthread_barrier_wait(&sh.go);

    struct histo *h = calloc(1, sizeof *h);
    uint64_t errors = 0, reconnects = 0, tx_all = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(threads ? cl[i].thread : wk[i].thread, NULL);
        const struct histo *th = threads ? &cl[i].h : &wk[i].h;
        if (h != NULL)
            h_merge(h, th);
        errors += threads ? cl[i].errors : wk[i].errors;
        tx_all += threads ? cl[i].tx_all : wk[i].tx_all;
        reconnects += threads ? cl[i].reconnects : wk[i].reconnects;
        if (!threads) {
            free(wk[i].cl);
            free(wk[i].ready);
            free(wk[i].batch);
        }
    }
    uint64_t t_stop = now_ns();

    if (atomic_load(&sh.connect_failures) > 0) {
        fprintf(stderr, "dbpool-bench: %d of %d clients could not connect; first error: %s\n",
                atomic_load(&sh.connect_failures), o->clients, sh.first_error);
        rc = 1;
    } else if (h == NULL) {
        fprintf(stderr, "dbpool-bench: out of memory\n");
        rc = 1;
    } else {
        double secs = o->duration;
        if (g_stop && t_stop < sh.t_end)          /* interrupted: what was measured */
            secs = t_stop > sh.t_measure ? (double)(t_stop - sh.t_measure) / 1e9 : 0.001;
        struct rusage ru;
        double cpu_us = 0;
        if (getrusage(RUSAGE_SELF, &ru) == 0)
            cpu_us = (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec +
                     (double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec;
        report(o, h, errors, reconnects, secs, tx_all ? cpu_us / (double)tx_all : 0, sh.first_error);
    }
    free(h);
    pthread_barrier_destroy(&sh.connected);
    pthread_barrier_destroy(&sh.go);
    pthread_mutex_destroy(&sh.err_mu);
    free(cl);
    free(wk);
    return rc;
}

/* ================================================================ idle mode */

static int run_idle(const struct options *o)
{
    char err[ERRLEN], tbuf[1024];
    void **conns = calloc((size_t)o->idle, sizeof *conns);
    long opened = 0;
    int rc = 0;

    if (conns == NULL) {
        fprintf(stderr, "dbpool-bench: out of memory\n");
        return 1;
    }
    uint64_t t0 = now_ns();
    for (; opened < o->idle && !g_stop; opened++) {
        conns[opened] = o->drv->connect(&o->target, err);
        if (conns[opened] == NULL) {
            fprintf(stderr, "dbpool-bench: idle connection %ld of %ld: %s\n", opened + 1, o->idle, err);
            rc = 1;
            break;
        }
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    target_text(o, tbuf, sizeof tbuf);
    if (rc == 0 && !g_stop) {
        if (o->json) {
            printf("{\"label\":");
            json_str(stdout, o->label ? o->label : "");
            printf(",\"target\":");
            json_str(stdout, tbuf);
            printf(",\"driver\":\"%s\",\"idle\":%ld,\"connect_s\":%.3f}\n", o->drv->name, opened, secs);
        }
        /* the line scripts wait for: printed last, after everything else */
        printf("holding %ld connections (opened in %.2f s)\n", opened, secs);
        fflush(stdout);
        uint64_t until = o->hold > 0 ? now_ns() + (uint64_t)(o->hold * 1e9) : UINT64_MAX;
        while (!g_stop && now_ns() < until)
            usleep(50000);
    }
    for (long i = 0; i < opened; i++)
        o->drv->close(conns[i]);
    free(conns);
    return rc;
}

/* ================================================================ main */

int main(int argc, char **argv)
{
    struct options o;
    int rc;

    if (parse_options(argc, argv, &o) < 0) {
        fprintf(stderr, "try dbpool-bench --help\n");
        return 2;
    }
    install_signals();
    raise_fd_limit();
    if (o.target.kind == T_MYSQL && my_library_init() < 0)
        return 1;
    if (o.init)
        rc = my_init_tables(&o.target, o.scale ? o.scale : 10, false);
    else
        rc = o.idle > 0 ? run_idle(&o) : run_benchmark(&o);
    if (o.target.kind == T_MYSQL) {
        my_free_target(&o.target);
        my_library_end();
    }
    free(o.target.conninfo);
    free(o.target.socket);
    free(o.target.pool);
    return rc;
}
