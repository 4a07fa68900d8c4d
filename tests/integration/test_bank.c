/*
 * test_bank.c — the bank-transfer invariant under load and faults, against
 * the real dbpoold (doc/reliability.md, "Bank-transfer invariant").
 *
 * NTHREADS clients move money between NACCOUNTS accounts inside
 * transactions through the daemon. Each transfer debits one account,
 * credits another and inserts a row with a unique id into `transfers`.
 * Transactions are committed, rolled back at random, carry a nested
 * transaction (protocol BEGIN inside one: a savepoint) whose transfer is
 * rolled back, or are abandoned by dropping the session mid-transaction.
 * Meanwhile (PostgreSQL, MariaDB on InnoDB) a fault thread terminates
 * random server connections of the pool (pg_terminate_backend, KILL) and
 * restarts the server (fast and immediate shutdowns — on MariaDB a clean
 * shutdown and a crash — alternately) — on the fault server of
 * fault_tools.h.
 *
 * Each client keeps a ledger of what it was told:
 *   committed  COMMIT answered READY 'I'               -> must be present
 *   rolled back ROLLBACK answered, a savepoint rolled
 *              back, the session dropped before COMMIT,
 *              or the transaction aborted by an error  -> must be absent
 *   unknown    COMMIT answered CONN_LOST (the commit may or may not have
 *              happened), or a request not answered    -> either
 * and at the end, read from the server directly (libpq, Connector/C;
 * through the daemon for SQLite): the total balance is unchanged, every account's balance
 * matches the transfers table, the ledger holds, no request went
 * unanswered for FC_ANSWER_MS, no session of the pool is left in a
 * transaction, and the daemon still serves.
 *
 * Every request has a deadline (fc_* raw client): a daemon that hangs fails
 * the test with counts instead of blocking it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault_tools.h"
#include "harness.h"
#include "common/proto.h"

#define NTHREADS 16
#define NACCOUNTS 256
#define START_BALANCE 1000
#define FC_ANSWER_MS 8000
#define PG_DURATION_MS 20000
#define SQLITE_DURATION_MS 8000
#define KILL_EVERY_MS 700
#define RESTART_EVERY_MS 5000

/* ================================================================ ledger */

/* Ids, each with why it is on the list (for the failure message). */
struct idlist {
    int64_t *v;
    const char **why;
    size_t n, cap;
};

static void idl_add_why(struct idlist *l, int64_t id, const char *why)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        int64_t *g = realloc(l->v, cap * sizeof(*g));
        const char **w = realloc(l->why, cap * sizeof(*w));
        if (!g || !w)
            abort();
        l->v = g;
        l->why = w;
        l->cap = cap;
    }
    l->why[l->n] = why;
    l->v[l->n++] = id;
}

static void idl_add(struct idlist *l, int64_t id)
{
    idl_add_why(l, id, "");
}

static void idl_free(struct idlist *l)
{
    free(l->v);
    free(l->why);
    memset(l, 0, sizeof(*l));
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static bool idl_has_sorted(const struct idlist *l, int64_t id)
{
    return bsearch(&id, l->v, l->n, sizeof(id), cmp_i64) != NULL;
}

/* ================================================================ clients */

struct client {
    int no;
    pthread_t tid;
    unsigned seed;
    int fd;
    int64_t seq;
    uint64_t deadline;
    struct idlist committed, rolled_back, unknown;
    struct idlist tx_ids;        /* ids of the open transaction (outer level) */
    int hangs, odd, commits, rollbacks, drops, aborted, sp_rollbacks, conn_errors;
    char first_problem[400];
};

static void problem(struct client *c, int *counter, const char *what, const struct fc_res *r)
{
    char d[300];
    if ((*counter)++ == 0 && !c->first_problem[0])
        snprintf(c->first_problem, sizeof(c->first_problem), "client %d: %s: %s", c->no, what,
                 fc_describe(r, d, sizeof(d)));
}

/* The transaction's ids end up on `to`, because of `why`. */
static void settle_why(struct client *c, struct idlist *to, const char *why)
{
    for (size_t i = 0; i < c->tx_ids.n; i++)
        idl_add_why(to, c->tx_ids.v[i], why);
    c->tx_ids.n = 0;
}

static void settle(struct client *c, struct idlist *to)
{
    settle_why(c, to, "");
}

static void drop_session(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* A request of the transaction failed: work out where its ids go. Returns
 * false (the transaction is over). */
static bool tx_failed(struct client *c, const char *what, const struct fc_res *r)
{
    struct fc_res rb;

    if (r->kind == FC_TIMEOUT || r->kind == FC_EOF || r->kind == FC_BAD) {
        problem(c, r->kind == FC_TIMEOUT ? &c->hangs : &c->odd, what, r);
        settle(c, &c->unknown);
        drop_session(c);
        return false;
    }
    if (r->code == DBPOOL_E_CONN_LOST || r->code == DBPOOL_E_UNAVAILABLE ||
        r->code == DBPOOL_E_POOL_TIMEOUT)
        c->conn_errors++;
    /* 'T' or 'E': roll it back, level by level (an error inside a nested
     * transaction leaves the outer one open after the first ROLLBACK). */
    for (char tx = r->tx; tx != 'I' && c->fd >= 0;) {
        fc_send_empty(c->fd, PT_ROLLBACK);
        fc_read(c->fd, FC_ANSWER_MS, &rb);
        if (rb.kind != FC_READY && rb.kind != FC_ERROR) {
            problem(c, rb.kind == FC_TIMEOUT ? &c->hangs : &c->odd, "ROLLBACK after an error",
                    &rb);
            drop_session(c);
        }
        tx = rb.tx;
    }
    c->aborted++;
    /* aborted: nothing of it may be there */
    settle_why(c, &c->rolled_back, r->code == DBPOOL_E_CONN_LOST ? "aborted by CONN_LOST"
                                 : r->code == DBPOOL_E_SQL ? "aborted by an SQL error, rolled back"
                                 : "aborted by an error, rolled back");
    return false;
}

static bool step(struct client *c, const char *sql, const dbpool_value *p, size_t n,
                 const char *what)
{
    struct fc_res r;
    fc_query(c->fd, sql, p, n, FC_ANSWER_MS, &r);
    if (r.kind == FC_READY && r.tx == 'T')
        return true;
    if (r.kind == FC_READY) {
        problem(c, &c->odd, what, &r);     /* the transaction vanished */
        settle(c, &c->unknown);
        return false;
    }
    return tx_failed(c, what, &r);
}

static bool control(struct client *c, uint8_t type, char want_tx, const char *what,
                    struct fc_res *r)
{
    if (type == PT_BEGIN ? !fc_send_begin(c->fd) : !fc_send_empty(c->fd, type)) {
        memset(r, 0, sizeof(*r));
        r->kind = FC_EOF;
    } else {
        fc_read(c->fd, FC_ANSWER_MS, r);
    }
    if (r->kind == FC_READY && r->tx == want_tx)
        return true;
    if (r->kind == FC_READY)
        problem(c, &c->odd, what, r);
    return false;
}

/* Debit, credit (in account order: no deadlocks between clients), record. */
static bool transfer(struct client *c, int64_t id)
{
    int src = (int)(rand_r(&c->seed) % NACCOUNTS) + 1;
    int dst = (int)((unsigned)(src + (int)(rand_r(&c->seed) % (NACCOUNTS - 1))) % NACCOUNTS) + 1;
    int64_t amount = 1 + rand_r(&c->seed) % 50;
    dbpool_value debit[2] = { dbpool_int(amount), dbpool_int(src) };
    dbpool_value credit[2] = { dbpool_int(amount), dbpool_int(dst) };
    dbpool_value row[4] = { dbpool_int(id), dbpool_int(src), dbpool_int(dst),
                            dbpool_int(amount) };
    static const char debit_sql[] = "UPDATE accounts SET balance = balance - ? WHERE id = ?";
    static const char credit_sql[] = "UPDATE accounts SET balance = balance + ? WHERE id = ?";

    if (src < dst) {
        if (!step(c, debit_sql, debit, 2, "debit") || !step(c, credit_sql, credit, 2, "credit"))
            return false;
    } else if (!step(c, credit_sql, credit, 2, "credit") ||
               !step(c, debit_sql, debit, 2, "debit")) {
        return false;
    }
    return step(c, "INSERT INTO transfers VALUES (?, ?, ?, ?)", row, 4, "insert");
}

/* A nested transaction with one transfer, rolled back. */
static bool rolled_back_savepoint(struct client *c)
{
    struct fc_res r;
    int64_t id = (int64_t)c->no * 100000000 + ++c->seq;

    if (!control(c, PT_BEGIN, 'T', "nested BEGIN", &r))
        return r.kind == FC_READY ? false : tx_failed(c, "nested BEGIN", &r);
    if (!transfer(c, id)) {
        idl_add_why(&c->rolled_back, id, "in a nested transaction of an aborted one");
        return false;
    }
    if (!control(c, PT_ROLLBACK, 'T', "ROLLBACK of the nested transaction", &r)) {
        idl_add(&c->unknown, id);
        return r.kind == FC_READY ? false : tx_failed(c, "nested ROLLBACK", &r);
    }
    idl_add_why(&c->rolled_back, id, "in a nested transaction rolled back (savepoint)");
    c->sp_rollbacks++;
    return true;
}

static void end_transaction(struct client *c)
{
    struct fc_res r;
    unsigned pick = (unsigned)rand_r(&c->seed) % 100;

    if (pick < 15) {
        if (control(c, PT_ROLLBACK, 'I', "ROLLBACK", &r)) {
            c->rollbacks++;
            settle_why(c, &c->rolled_back, "ROLLBACK answered READY 'I'");
        } else if (r.kind != FC_READY) {
            tx_failed(c, "ROLLBACK", &r);
        } else {
            settle(c, &c->unknown);
        }
    } else if (pick < 22) {
        drop_session(c);                    /* mid-transaction: rolled back */
        c->drops++;
        settle_why(c, &c->rolled_back, "the session was dropped inside the transaction");
    } else if (control(c, PT_COMMIT, 'I', "COMMIT", &r)) {
        c->commits++;
        settle(c, &c->committed);
    } else if (r.kind == FC_ERROR && r.code == DBPOOL_E_CONN_LOST) {
        c->conn_errors++;
        settle(c, &c->unknown);             /* the commit may have happened */
    } else if (r.kind == FC_ERROR && r.code == DBPOOL_E_TX_STATE) {
        c->aborted++;
        settle_why(c, &c->rolled_back, "COMMIT of a failed transaction (TX_STATE)");
    } else if (r.kind == FC_READY) {
        settle(c, &c->unknown);
    } else {
        tx_failed(c, "COMMIT", &r);
    }
}

static void one_transaction(struct client *c)
{
    struct fc_res r;

    if (!control(c, PT_BEGIN, 'T', "BEGIN", &r)) {
        if (r.kind != FC_READY && r.kind != FC_ERROR)
            tx_failed(c, "BEGIN", &r);
        return;
    }
    int n = 1 + (int)(rand_r(&c->seed) % 3);
    for (int i = 0; i < n; i++) {
        int64_t id = (int64_t)c->no * 100000000 + ++c->seq;
        idl_add(&c->tx_ids, id);
        if (!transfer(c, id))
            return;
        if (rand_r(&c->seed) % 100 < 30 && !rolled_back_savepoint(c))
            return;
    }
    end_transaction(c);
}

static void *client_main(void *p)
{
    struct client *c = p;
    while (h_now_ms() < c->deadline) {
        if (c->fd < 0) {
            c->fd = fc_open(h_paths()->sock, FC_ANSWER_MS);
            if (c->fd < 0) {
                struct fc_res r = { .kind = FC_EOF };
                problem(c, &c->odd, "connect", &r);
                h_sleep_ms(50);
                continue;
            }
        }
        one_transaction(c);
        if (c->conn_errors && rand_r(&c->seed) % 4 == 0)
            h_sleep_ms(20);                  /* do not spin while the server is down */
    }
    drop_session(c);
    return NULL;
}

/* ================================================================ faults */

struct faulter {
    pthread_t tid;
    uint64_t deadline;
    int kills, restarts, failures;
};

static void *faulter_main(void *p)
{
    struct faulter *f = p;
    struct obs *obs = NULL;
    uint64_t next_restart = h_now_ms() + RESTART_EVERY_MS;

    while (h_now_ms() < f->deadline) {
        h_sleep_ms(KILL_EVERY_MS);           /* the fault rate under test */
        if (h_now_ms() >= next_restart) {
            char mode = f->restarts % 2 ? 'i' : 'f';
            if (fs_shutdown_nothrow(mode) != 0 || fs_resume_nothrow() != 0)
                f->failures++;
            f->restarts++;
            obs_close(&obs);
            next_restart = h_now_ms() + RESTART_EVERY_MS;
            continue;
        }
        long n = obs_kill_random(&obs);
        if (n > 0)
            f->kills += (int)n;
    }
    obs_close(&obs);
    return NULL;
}

/* ================================================================ checks */

static void setup_tables(void)
{
    char sql[8192];
    size_t pos;
    int fd = fc_open(h_paths()->sock, FC_ANSWER_MS);
    struct fc_res r;

    cr_assert_geq(fd, 0, "setup session: %s", strerror(errno));
    fc_query(fd, "CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance BIGINT NOT NULL)", NULL,
             0, FC_ANSWER_MS, &r);
    cr_assert(fc_is(&r, 0), "CREATE TABLE accounts: %s", r.msg);
    fc_query(fd, "CREATE TABLE transfers (id BIGINT PRIMARY KEY, src INTEGER NOT NULL, "
             "dst INTEGER NOT NULL, amount BIGINT NOT NULL)", NULL, 0, FC_ANSWER_MS, &r);
    cr_assert(fc_is(&r, 0), "CREATE TABLE transfers: %s", r.msg);
    pos = (size_t)snprintf(sql, sizeof(sql), "INSERT INTO accounts VALUES ");
    for (int i = 1; i <= NACCOUNTS; i++)
        pos += (size_t)snprintf(sql + pos, sizeof(sql) - pos, "%s(%d, %d)", i > 1 ? ", " : "",
                                i, START_BALANCE);
    fc_query(fd, sql, NULL, 0, FC_ANSWER_MS, &r);
    cr_assert(fc_is(&r, 0), "INSERT INTO accounts: %s", r.msg);
    close(fd);
}

/* A server backend (PostgreSQL, MariaDB) on the fault server, not SQLite. */
static bool is_server(void)
{
    return strcmp(h_profile()->name, "sqlite") != 0;
}

/* One number from the database: the server directly, else a session
 * through the daemon (SQLite). */
static long db_num(struct obs **obs, const char *sql)
{
    if (is_server())
        return obs_int(obs, sql);
    dbpool_conn *c = h_connect();
    long v = (long)h_scalar(c, sql);
    dbpool_close(c);
    return v;
}

/* Every transfer id in the table, sorted. */
static void add_id(void *arg, long long v)
{
    idl_add(arg, v);
}

static void db_ids(struct obs **obs, struct idlist *out)
{
    static const char sql[] = "SELECT id FROM transfers ORDER BY id";
    if (is_server()) {
        cr_assert(obs_each(obs, sql, add_id, out), "reading transfers: %s", obs_error(*obs));
    } else {
        dbpool_conn *c = h_connect();
        dbpool_result *r = h_query(c, sql, NULL, 0);
        for (size_t i = 0; i < dbpool_result_nrows(r); i++)
            idl_add(out, dbpool_result_value(r, i, 0)->u.i);
        dbpool_result_free(r);
        dbpool_close(c);
    }
}

struct totals {
    int hangs, odd, commits, rollbacks, drops, aborted, sp_rollbacks, conn_errors;
    size_t committed, rolled_back, unknown;
    const char *first_problem;
};

static void check_ledger(struct client *cl, struct obs **obs, const struct totals *t)
{
    struct idlist ids = { 0 };
    db_ids(obs, &ids);
    size_t missing = 0, resurrected = 0;
    int64_t first_missing = 0, first_resurrected = 0;
    const char *why = "";

    for (int i = 0; i < NTHREADS; i++) {
        for (size_t k = 0; k < cl[i].committed.n; k++)
            if (!idl_has_sorted(&ids, cl[i].committed.v[k]) && missing++ == 0)
                first_missing = cl[i].committed.v[k];
        for (size_t k = 0; k < cl[i].rolled_back.n; k++)
            if (idl_has_sorted(&ids, cl[i].rolled_back.v[k]) && resurrected++ == 0) {
                first_resurrected = cl[i].rolled_back.v[k];
                why = cl[i].rolled_back.why[k];
            }
    }
    cr_assert_eq(missing, 0, "%zu of %zu transfers the clients saw committed are missing "
                 "(first: id %lld)", missing, t->committed, (long long)first_missing);
    cr_assert_eq(resurrected, 0, "%zu of %zu transfers the clients saw rolled back are present "
                 "(first: id %lld: %s)", resurrected, t->rolled_back,
                 (long long)first_resurrected, why);
    cr_assert_leq(ids.n, t->committed + t->unknown, "the table has %zu transfers, the clients "
                  "committed %zu (+ %zu unknown)", ids.n, t->committed, t->unknown);
    idl_free(&ids);
}

static void check_balances(struct obs **obs)
{
    long sum = db_num(obs, "SELECT sum(balance) FROM accounts");
    cr_assert_eq(sum, (long)NACCOUNTS * START_BALANCE, "the money is not preserved: the sum "
                 "of the balances is %ld, expected %d", sum, NACCOUNTS * START_BALANCE);
    long wrong = db_num(obs, "SELECT count(*) FROM accounts a WHERE balance <> 1000 "
                        "- COALESCE((SELECT sum(amount) FROM transfers WHERE src = a.id), 0) "
                        "+ COALESCE((SELECT sum(amount) FROM transfers WHERE dst = a.id), 0)");
    cr_assert_eq(wrong, 0, "%ld accounts' balances do not match their transfers (a transfer's "
                 "updates and its row were not atomic)", wrong);
}

static struct totals sum_up(struct client *cl)
{
    struct totals t = { 0 };
    for (int i = 0; i < NTHREADS; i++) {
        t.hangs += cl[i].hangs;
        t.odd += cl[i].odd;
        t.commits += cl[i].commits;
        t.rollbacks += cl[i].rollbacks;
        t.drops += cl[i].drops;
        t.aborted += cl[i].aborted;
        t.sp_rollbacks += cl[i].sp_rollbacks;
        t.conn_errors += cl[i].conn_errors;
        t.committed += cl[i].committed.n;
        t.rolled_back += cl[i].rolled_back.n;
        t.unknown += cl[i].unknown.n;
        if (!t.first_problem && cl[i].first_problem[0])
            t.first_problem = cl[i].first_problem;
    }
    return t;
}

static bool pool_quiet(void)
{
    char *body = NULL;
    int st = h_http_get("/pools", &body);
    bool q = st == 200 && H_JSON_NUM(body, "servers", "busy") == 0 &&
             H_JSON_NUM(body, "clients", "active") == 0 &&
             H_JSON_NUM(body, "clients", "waiting") == 0;
    free(body);
    return q;
}

/* ================================================================ the test */

static void bank_init(void)
{
    fs_init();
}

static void bank_fini(void)
{
    h_fini();
    fs_cleanup();
}

TestSuite(bank, .init = bank_init, .fini = bank_fini, .timeout = 150);

Test(bank, transfers_keep_the_invariant_under_faults)
{
    bool srv = is_server();
    struct h_opts o = {
        .max_open_conns = srv ? 8 : 4,
        .pool_settings = srv ? "acquireTimeout = \"2s\"; timeout = \"1s\"; retryDelay = \"100ms\"; retryMaxDelay = \"500ms\"; "
                              "maxRetries = 2; healthCheckInterval = \"200ms\";"
                            : "acquireTimeout = \"5s\";",
    };
    static struct client cl[NTHREADS];
    struct faulter f = { 0 };
    struct obs *obs = NULL;
    uint64_t duration = srv ? PG_DURATION_MS : SQLITE_DURATION_MS;

    h_start(&o);
    cr_assert_eq(fs_durable_nothrow(), 0, "cannot make the fault server's commits durable");
    setup_tables();
    if (fs_mysql())   /* the invariant needs transactions: InnoDB, MariaDB's default engine */
        cr_assert_eq(obs_int(&obs, "SELECT count(*) FROM information_schema.TABLES WHERE "
                             "TABLE_SCHEMA = 'dbpool_test' AND ENGINE <> 'InnoDB'"), 0,
                     "the bank tables are not InnoDB tables (the server's default storage "
                     "engine was changed?): set default_storage_engine = InnoDB");
    uint64_t deadline = h_now_ms() + duration;
    for (int i = 0; i < NTHREADS; i++) {
        cl[i] = (struct client){ .no = i + 1, .seed = 0x9e3779b9u * (unsigned)(i + 1),
                                 .fd = -1, .deadline = deadline };
        cr_assert_eq(pthread_create(&cl[i].tid, NULL, client_main, &cl[i]), 0);
    }
    if (srv) {
        f.deadline = deadline - 2000;        /* the last seconds run without faults */
        cr_assert_eq(pthread_create(&f.tid, NULL, faulter_main, &f), 0);
        pthread_join(f.tid, NULL);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(cl[i].tid, NULL);
    if (srv)
        fs_cleanup();                        /* the server runs, whatever happened */

    struct totals t = sum_up(cl);
    cr_log_info("bank (%s, %d clients, %llu ms): %d commits, %d rollbacks, %d dropped sessions, "
                "%d aborted by errors (%d connection errors), %d savepoints rolled back; "
                "ledger: %zu committed, %zu rolled back, %zu unknown; faults: %d server "
                "connections terminated, %d server restarts", h_profile()->name, NTHREADS,
                (unsigned long long)duration, t.commits, t.rollbacks, t.drops, t.aborted,
                t.conn_errors, t.sp_rollbacks, t.committed, t.rolled_back, t.unknown, f.kills,
                f.restarts);
    cr_assert_eq(t.hangs, 0, "%d requests were not answered within %d ms (the daemon hung); "
                 "first: %s", t.hangs, FC_ANSWER_MS, t.first_problem);
    cr_assert_eq(t.odd, 0, "%d undocumented outcomes (EOF, a transaction that vanished); "
                 "first: %s", t.odd, t.first_problem);
    cr_assert_eq(f.failures, 0, "the fault thread could not restart the server");
    cr_assert_geq(t.commits, 50, "too few commits (%d) for the test to mean anything",
                  t.commits);
    cr_assert_geq(t.rollbacks + t.drops + t.sp_rollbacks, 20, "too few rollbacks");
    if (srv)
        cr_assert(f.kills > 0 && f.restarts > 0, "no faults were injected");

    check_balances(&obs);
    check_ledger(cl, &obs, &t);
    cr_assert(H_AWAIT(pool_quiet(), 10000), "the pool did not go back to rest");
    if (srv)
        cr_assert(H_AWAIT(obs_busy_backends(&obs) == 0, 10000),
                  "a session of the pool is left active or idle in transaction");
    /* The pool may still be down after the last restart until its next
     * backoff attempt (retryMaxDelay 500ms). */
    dbpool_conn *c = h_connect();
    cr_assert(H_AWAIT(dbpool_exec(c, "SELECT 1") == 0, 5000),
              "the daemon does not serve after the test: %s", dbpool_last_error(c)->message);
    dbpool_close(c);
    for (int i = 0; i < NTHREADS; i++) {
        idl_free(&cl[i].committed);
        idl_free(&cl[i].rolled_back);
        idl_free(&cl[i].unknown);
        idl_free(&cl[i].tx_ids);
    }
    obs_close(&obs);
    h_stop_ok();
}
