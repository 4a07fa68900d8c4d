/*
 * backend_sqlite.c — the SQLite driver ("sqlite") behind struct
 * backend_driver (backend.h): the driver's overview, and its loop side
 * (delivery, operations, creating connections, pool-level calls). The
 * worker side is in sqlite_worker.c and sqlite_exec.c; the map of the
 * folder is in sqlite_internal.h.
 *
 * THREADING MODEL
 *
 * sqlite3 calls block (disk I/O, lock waits) and the event loop must never
 * block, so every connection owns one worker thread, started by conn_new.
 * The worker is the only thread that calls into the connection's sqlite3
 * handle (opened SQLITE_OPEN_NOMUTEX). The one exception is
 * sqlite3_interrupt(), which SQLite allows from any thread; cancel() and
 * close() call it on the loop thread, under the connection's mutex, only
 * while the handle is published in c->db (the worker unpublishes it under the
 * same mutex before closing it).
 *
 *   loop thread                              worker thread
 *   connect/exec/ping: put the job in    ->  takes the job and runs it
 *     c->job, signal c->cv
 *                                        <-  rows: copies them into a chunk;
 *                                            appends full chunks to c->queue
 *                                            and event_active(c->ev); waits
 *                                            while CHUNKS_IN_FLIGHT are queued
 *   on_worker_event: hands columns and
 *     rows of the head chunk to the sink,
 *     frees consumed chunks, signals cv
 *                                        <-  result: stored in c->result,
 *                                            event_active(c->ev)
 *   complete: sink->done / done, only
 *     after the last row was delivered
 *
 * All user callbacks run on the loop thread, from on_worker_event (a
 * per-connection libevent user event, event_new(base, -1, 0, ...), activated
 * from the worker; the daemon enables libevent's pthread locking before it
 * creates the base). A chunk is self-contained (values plus copies of their
 * text/blob bytes), immutable once queued, and consumed only by the loop, so
 * delivery needs the mutex only to look at and pop the queue head. Because
 * the worker waits for room in a queue of at most CHUNKS_IN_FLIGHT chunks,
 * a huge result never sits in memory whole; when sink->row returns false the
 * loop simply stops draining (remembering its position in the head chunk)
 * and the worker stalls once the queue is full, until resume().
 *
 * OWNERSHIP AND LIFETIME
 *
 * struct backend_conn is reference counted (c->refs; see conn_unref): one
 * reference for the loop side, dropped by close() (or, when close() is called
 * from inside one of our callbacks, when on_worker_event unwinds), and one for
 * the worker, dropped when it exits. The last one frees the connection and
 * any queued chunks. close() marks the connection closed under the mutex,
 * interrupts the running statement, frees c->ev on the loop thread and
 * returns at once; the worker notices, finishes, sqlite3_close_v2()s the
 * handle and exits. The worker calls event_active only under the mutex and
 * only while !c->closed, so it never touches the freed event.
 *
 * exec() copies the statement text and parameters (one allocation owned by
 * the job): close() may abandon an operation whose worker still runs, and
 * after close() the caller may free what it passed.
 *
 * The only mutable global state is the worker-thread tracker used by
 * quiesce() (see "Worker tracking" in sqlite_worker.c).
 */
#include "backend/sqlite/sqlite_internal.h"
#include "backend/sqlite/backend_sqlite.h"

#include <signal.h>
#include <strings.h>

/* ----------------------------------------------------- loop: delivery */

static void pop_chunk(struct backend_conn *c)
{
    struct chunk *ch;

    lock(&c->mu);
    ch = c->q_head;
    c->q_head = ch->next;
    if (!c->q_head)
        c->q_tail = NULL;
    c->nqueued--;
    wake(c);
    unlock(&c->mu);
    sqd_chunk_free(ch);
    c->pos = 0;
}

/* Hand the head chunk's columns and remaining rows to the sink. Returns true
 * when the chunk is consumed, false when delivery must stop here (paused,
 * closed). After cancel() rows are discarded and counted. */
static bool deliver_chunk(struct backend_conn *c, struct chunk *ch)
{
    if (ch->cols && !ch->cols_sent && !c->lcanceled) {
        ch->cols_sent = true;
        if (c->sink.columns)
            c->sink.columns(c->arg, ch->ncols, ch->cols);
        if (c->lclosed)
            return false;
    }
    while (c->pos < ch->nrows) {
        const dbpool_value *row;
        bool more;
        if (c->lcanceled) {
            c->dropped += (int64_t)(ch->nrows - c->pos);
            c->pos = ch->nrows;
            break;
        }
        row = ch->vals + c->pos * ch->ncols;
        c->pos++;
        more = c->sink.row ? c->sink.row(c->arg, ch->ncols, row) : true;
        if (c->lclosed)
            return false;
        if (!more && !c->lcanceled) {
            c->paused = true;
            if (c->pos < ch->nrows)
                return false;
        }
    }
    return true;
}

static void complete(struct backend_conn *c)
{
    struct backend_result r;
    backend_done_fn done = c->done;
    void *arg = c->arg;
    bool wrote;

    lock(&c->mu);
    r = c->result;
    wrote = c->result_wrote;
    c->result_ready = false;
    unlock(&c->mu);
    if (r.ok && c->dropped > 0) {
        /* cancel() discarded rows of a statement that had finished. */
        char txstate = r.txstate;
        sqd_canceled_result(&r);
        r.txstate = txstate;
        if (wrote)
            snprintf(r.err.message, sizeof(r.err.message),
                     "canceling statement due to user request (the statement had already "
                     "completed and its changes were kept; %lld rows were not delivered)",
                     (long long)c->dropped);
    }
    c->txstate = r.txstate;
    c->op = OP_NONE;
    c->done = NULL;
    c->arg = NULL;
    memset(&c->sink, 0, sizeof(c->sink));
    c->paused = c->lcanceled = false;
    c->dropped = 0;
    c->pos = 0;
    if (done)
        done(arg, &r);
}

/* Deliver queued chunks, then the result. Bounded per wake-up so one fast
 * stream cannot monopolise the loop; reschedules itself when it stops early. */
static void deliver(struct backend_conn *c)
{
    for (int n = 0; !c->lclosed && c->op != OP_NONE && !c->paused; n++) {
        struct chunk *ch;
        bool ready;

        lock(&c->mu);
        ch = c->q_head;
        ready = c->result_ready;
        unlock(&c->mu);
        if (!ch) {
            if (ready)   /* the worker posts the result after its last chunk */
                complete(c);
            return;
        }
        if (n == CHUNKS_IN_FLIGHT) {
            event_active(c->ev, 0, 0);
            return;
        }
        if (!deliver_chunk(c, ch))
            return;
        pop_chunk(c);
    }
}

static void on_worker_event(evutil_socket_t fd, short what, void *arg)
{
    struct backend_conn *c = arg;

    (void)fd;
    (void)what;
    c->depth++;
    deliver(c);
    if (--c->depth == 0 && c->lclosed)
        sqd_conn_unref(c);   /* close() was called from one of our callbacks */
}

/* --------------------------------------------------- loop: operations */

static void start_op(struct backend_conn *c, enum op_kind kind, backend_done_fn done, void *arg,
                     const struct backend_sink *sink, struct qcopy *q)
{
    if (c->op != OP_NONE) {
        fprintf(stderr, "backend_sqlite: operation started while another is in flight\n");
        abort();   /* contract violation (backend.h: one operation at a time) */
    }
    c->op = kind;
    c->done = done;
    c->arg = arg;
    if (sink)
        c->sink = *sink;
    c->paused = c->lcanceled = false;
    c->dropped = 0;
    c->pos = 0;
    lock(&c->mu);
    atomic_store(&c->cancel_req, false);
    c->job = kind;
    c->job_q = q;
    wake(c);
    unlock(&c->mu);
}

static void sq_connect(struct backend_conn *c, backend_done_fn done, void *arg)
{
    start_op(c, OP_CONNECT, done, arg, NULL, NULL);
}

static void sq_exec(struct backend_conn *c, const struct backend_query *q,
                    const struct backend_sink *sink, void *arg)
{
    /* NULL on out-of-memory: the worker then reports DBPOOL_E_INTERNAL. */
    start_op(c, OP_EXEC, sink->done, arg, sink, sqd_qcopy_new(q));
}

static void sq_ping(struct backend_conn *c, backend_done_fn done, void *arg)
{
    start_op(c, OP_PING, done, arg, NULL, NULL);
}

static void sq_cancel(struct backend_conn *c)
{
    if (c->op == OP_NONE || c->lcanceled)
        return;
    lock(&c->mu);
    atomic_store(&c->cancel_req, true);
    if (c->running && c->db)
        sqlite3_interrupt(c->db);
    wake(c);   /* a worker waiting for queue room or in the busy handler */
    unlock(&c->mu);
    c->lcanceled = true;
    c->paused = false;   /* queued rows are discarded, not waited on */
    event_active(c->ev, 0, 0);
}

static void sq_resume(struct backend_conn *c)
{
    if (!c->paused)
        return;
    c->paused = false;
    event_active(c->ev, 0, 0);   /* via the loop: no deep recursion into the sink */
}

static char sq_txstate(const struct backend_conn *c)
{
    return c->txstate;
}

static void sq_close(struct backend_conn *c)
{
    if (!c)
        return;
    sqd_workers_closing_add();   /* before the worker can see closed and finish */
    lock(&c->mu);
    c->closed = true;
    atomic_store(&c->close_req, true);
    if (c->running && c->db)
        sqlite3_interrupt(c->db);
    wake(c);
    unlock(&c->mu);
    event_free(c->ev);   /* the worker no longer activates it: closed is set */
    c->ev = NULL;
    c->lclosed = true;
    if (c->depth == 0)
        sqd_conn_unref(c);   /* else on_worker_event drops the loop's reference */
    sqd_workers_reap();
}

/* ----------------------------------------------------- loop: creation */

static bool valid_word(const char *s)
{
    size_t n = 0;

    if (!s)
        return true;   /* default */
    for (; s[n]; n++)
        if (!((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z')))
            return false;
    return n > 0 && n < 16;
}

static bool check_config(const struct pool_config *pool, char *errbuf, size_t errlen)
{
    const struct sqlite_options *cfg = sqlite_opts(pool);
    const char *bad = NULL, *key = NULL;

    if (!cfg->file_path || !*cfg->file_path) {
        snprintf(errbuf, errlen, "pool \"%s\": filePath is required for a sqlite pool",
                 pool->name ? pool->name : "");
        return false;
    }
    if (!valid_word(cfg->journal_mode))
        bad = cfg->journal_mode, key = "journalMode";
    else if (!valid_word(cfg->sync_mode))
        bad = cfg->sync_mode, key = "syncMode";
    else if (!valid_word(cfg->auto_vacuum))
        bad = cfg->auto_vacuum, key = "autoVacuum";
    if (bad) {
        snprintf(errbuf, errlen, "pool \"%s\": %s \"%s\" is not a valid value",
                 pool->name ? pool->name : "", key, bad);
        return false;
    }
    return true;
}

static bool init_sync(struct backend_conn *c, char *errbuf, size_t errlen)
{
    pthread_condattr_t attr;
    int rc;

    rc = pthread_mutex_init(&c->mu, NULL);
    if (rc != 0)
        goto fail;
    rc = pthread_condattr_init(&attr);
    if (rc == 0) {
        rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        if (rc == 0)
            rc = pthread_cond_init(&c->cv, &attr);
        must(pthread_condattr_destroy(&attr), "pthread_condattr_destroy");
    }
    if (rc == 0)
        return true;
    must(pthread_mutex_destroy(&c->mu), "pthread_mutex_destroy");
fail:
    snprintf(errbuf, errlen, "cannot create SQLite connection: %s", strerror(rc));
    return false;
}

/* The worker blocks all signals: they belong to the loop thread. */
static bool start_worker(struct backend_conn *c, char *errbuf, size_t errlen)
{
    sigset_t all, old;
    int rc;

    if (sigfillset(&all) != 0) {
        snprintf(errbuf, errlen, "cannot start the SQLite worker thread: sigfillset failed");
        return false;
    }
    must(pthread_sigmask(SIG_SETMASK, &all, &old), "pthread_sigmask");
    rc = pthread_create(&c->rec->tid, NULL, sqd_worker_main, c);
    must(pthread_sigmask(SIG_SETMASK, &old, NULL), "pthread_sigmask");
    if (rc != 0) {
        snprintf(errbuf, errlen, "cannot start the SQLite worker thread: %s", strerror(rc));
        return false;
    }
    return true;
}

/* Ownership: the returned connection belongs to the caller until close(). */
static struct backend_conn *sq_conn_new(const struct pool_config *cfg, struct event_base *base,
                                        enum backend_role role, char *errbuf, size_t errlen)
{
    struct backend_conn *c;

    sqd_workers_reap();
    if (!check_config(cfg, errbuf, errlen))
        return NULL;
    c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(errbuf, errlen, "cannot create SQLite connection: out of memory");
        return NULL;
    }
    c->cfg = cfg;
    c->role = role;
    c->txstate = 'I';
    c->refs = 2;   /* the loop's (close) and the worker's (exit) */
    atomic_init(&c->cancel_req, false);
    atomic_init(&c->close_req, false);
    snprintf(c->server_info, sizeof(c->server_info), "SQLite %s", sqlite3_libversion());
    if (!init_sync(c, errbuf, errlen)) {
        free(c);
        return NULL;
    }
    c->rec = calloc(1, sizeof(*c->rec));
    c->ev = event_new(base, -1, 0, on_worker_event, c);
    if (!c->rec || !c->ev) {
        snprintf(errbuf, errlen, "cannot create SQLite connection: out of memory");
    } else if (start_worker(c, errbuf, errlen)) {
        return c;
    }
    if (c->ev)
        event_free(c->ev);
    free(c->rec);
    sqd_conn_free(c);
    return NULL;
}

/* ---------------------------------------------------- pool-level calls */

/* One writer; the other connections are readers. An in-memory database is
 * private to its connection, so it gets no readers. */
static void sq_pool_limits(const struct pool_config *cfg, int *max_writers, int *max_readers)
{
    *max_writers = 1;
    *max_readers = cfg->max_open_conns > 1 ? cfg->max_open_conns - 1 : 0;
    if (sqlite_opts(cfg)->file_path && strcmp(sqlite_opts(cfg)->file_path, ":memory:") == 0)
        *max_readers = 0;
}

/* Writers take the write lock up front (BEGIN IMMEDIATE) so a transaction
 * can never fail to upgrade from read to write with SQLITE_BUSY; readers and
 * read-only transactions use a deferred BEGIN. */
static const char *sq_begin_sql(bool read_only, enum backend_role role)
{
    return (read_only || role == ROLE_READER) ? "BEGIN" : "BEGIN IMMEDIATE";
}

/* A connection a client left inside a transaction: ROLLBACK on its worker. */
static void sq_reset(struct backend_conn *c, backend_done_fn done, void *arg)
{
    backend_reset_by_rollback(sq_exec, c, done, arg);
}

/* PRAGMA can write, so it goes to the writer. */
static enum backend_role sq_route(const char *sql, size_t len)
{
    static const char *const read_kw[] = { "SELECT", "WITH", "VALUES", "EXPLAIN", NULL };

    return sql_starts_with_keyword(sql, len, read_kw) ? ROLE_READER : ROLE_WRITER;
}

static const char *sq_server_info(const struct backend_conn *c)
{
    return c->server_info;
}

const struct backend_driver backend_sqlite_driver = {
    .name = "sqlite",
    .pool_limits = sq_pool_limits,
    .conn_new = sq_conn_new,
    .connect = sq_connect,
    .exec = sq_exec,
    .ping = sq_ping,
    .cancel = sq_cancel,
    .resume = sq_resume,
    .txstate = sq_txstate,
    .close = sq_close,
    .begin_sql = sq_begin_sql,
    .tx_sql = backend_standard_tx_sql,
    .reset = sq_reset,
    .route = sq_route,
    .server_info = sq_server_info,
    .quiesce = sqd_quiesce,
    .teardown_pending = sqd_teardown_pending,
};
