/*
 * backend_sqlite.c — the SQLite driver ("sqlite") behind struct
 * backend_driver (backend.h).
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
 * quiesce() (see "Worker tracking").
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <sqlite3.h>

#include "backend/backend.h"
#include "backend/sqlite/backend_sqlite.h"

enum {
    CHUNK_MAX_ROWS = 256,          /* rows per chunk ... */
    CHUNK_MAX_BYTES = 64 * 1024,   /* ... or this many bytes of values, whichever first */
    CHUNKS_IN_FLIGHT = 4,          /* queued, not yet consumed by the loop */
    BLOCK_FIRST = 4 * 1024,        /* first byte block of a chunk; doubles up to BLOCK_MAX */
    BLOCK_MAX = 64 * 1024,
    PROGRESS_STEPS = 1000,         /* VM steps between cancel checks */
};

/* Results of step_rows() besides SQLite's own codes. */
#define STEP_NOMEM (-1)       /* out of memory copying a row */
#define STEP_ABANDONED (-2)   /* cancel or close while waiting for queue room */

enum op_kind { OP_NONE = 0, OP_CONNECT, OP_EXEC, OP_PING };

/* Bytes of a chunk: a value never spans blocks, so pointers stay valid. */
struct block {
    struct block *next;
    size_t used, cap;
    char data[];
};

/* A batch of rows, self-contained. Filled by the worker, then immutable
 * except for the loop's cols_sent flag. */
struct chunk {
    struct chunk *next;     /* queue link */
    size_t ncols;
    dbpool_column *cols;    /* first chunk of a result: deliver columns() first */
    bool cols_sent;
    size_t nrows, cap_rows;
    dbpool_value *vals;     /* nrows * ncols */
    size_t bytes;           /* size accounting for CHUNK_MAX_BYTES */
    struct block *blocks;
};

/* exec's private copy of a backend_query: one allocation holding the struct,
 * the parameter array, the SQL (NUL-terminated) and the parameter bytes. */
struct qcopy {
    const char *sql;
    size_t sql_len;
    dbpool_value *params;
    size_t nparams;
    unsigned flags;
};

/* A worker thread, handed to the tracker when the worker exits. */
struct worker_rec {
    pthread_t tid;
    struct worker_rec *next;
};

struct backend_conn {
    /* Immutable after conn_new; read by both threads. */
    const struct pool_config *cfg;
    enum backend_role role;
    struct worker_rec *rec;
    char server_info[48];

    /* Shared, under workers.mu (see conn_unref). */
    int refs;

    /* Loop thread only. */
    struct event *ev;           /* worker -> loop wake-up; freed by close() */
    enum op_kind op;            /* operation in flight, OP_NONE when idle */
    backend_done_fn done;
    void *arg;
    struct backend_sink sink;
    size_t pos;                 /* next row in the queue's head chunk */
    bool paused;                /* sink->row returned false; waiting for resume() */
    bool lcanceled;             /* cancel() called for the operation in flight */
    bool lclosed;               /* close() called */
    int64_t dropped;            /* rows discarded after cancel() */
    int depth;                  /* nesting of on_worker_event (close from a callback) */
    char txstate;

    /* Worker thread only. */
    uint64_t busy_since_ms;

    /* Shared: under mu. cv is broadcast on every change the worker may wait
     * for (a job, queue room, cancel, close). */
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* CLOCK_MONOTONIC, for the busy handler's waits */
    bool closed;
    enum op_kind job;           /* submitted, not yet taken by the worker */
    struct qcopy *job_q;
    bool running;               /* the worker is executing a job */
    sqlite3 *db;                /* written by the worker under mu; read by cancel/close under mu */
    struct chunk *q_head, *q_tail;
    int nqueued;
    struct backend_result result;
    bool result_ready;
    bool result_wrote;          /* the statement completed and may have changed data */

    /* Written under mu, also read lock-free by the progress/busy handlers. */
    atomic_bool cancel_req;
    atomic_bool close_req;
};

/* ---------------------------------------------------------------- locking */

/* pthread mutex/condvar calls fail only on programming errors (invalid or
 * unowned objects): there is nothing to recover, so abort loudly. */
static void must(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "backend_sqlite: %s failed: %s\n", what, strerror(rc));
        abort();
    }
}

static void lock(pthread_mutex_t *m) { must(pthread_mutex_lock(m), "pthread_mutex_lock"); }
static void unlock(pthread_mutex_t *m) { must(pthread_mutex_unlock(m), "pthread_mutex_unlock"); }

static void cwait(struct backend_conn *c) { must(pthread_cond_wait(&c->cv, &c->mu), "pthread_cond_wait"); }
static void wake(struct backend_conn *c) { must(pthread_cond_broadcast(&c->cv), "pthread_cond_broadcast"); }

static uint64_t monotonic_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        abort();   /* cannot fail for CLOCK_MONOTONIC */
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Wait on c->cv (mu held) until deadline_ms on the monotonic clock. */
static void cwait_until(struct backend_conn *c, uint64_t deadline_ms)
{
    struct timespec ts;
    int rc;

    ts.tv_sec = (time_t)(deadline_ms / 1000u);
    ts.tv_nsec = (long)(deadline_ms % 1000u) * 1000000L;
    rc = pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    if (rc != ETIMEDOUT)
        must(rc, "pthread_cond_timedwait");
}

static bool stop_requested(struct backend_conn *c)
{
    return atomic_load(&c->cancel_req) || atomic_load(&c->close_req);
}

/* ------------------------------------------------------- worker tracking */

/*
 * Worker tracking — the file's only mutable global state, because it is
 * process-wide resource tracking: quiesce() must wait for the workers of
 * every closed connection, whichever pool closed it. `closing` counts
 * workers told to stop that have not finished yet; `finished` lists exited
 * workers not yet joined. Workers are joinable; finished ones are joined by
 * quiesce() and, so a long-running daemon does not accumulate them, also
 * opportunistically by conn_new() and close(): a worker on that list has done
 * all its work and is only returning from its start routine.
 */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int closing;
    struct worker_rec *finished;
} workers = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, NULL };

static void workers_closing_add(void)
{
    lock(&workers.mu);
    workers.closing++;
    unlock(&workers.mu);
}

/* Called by a worker as its very last action. */
static void workers_finished(struct worker_rec *rec)
{
    lock(&workers.mu);
    rec->next = workers.finished;
    workers.finished = rec;
    workers.closing--;
    must(pthread_cond_broadcast(&workers.cv), "pthread_cond_broadcast");
    unlock(&workers.mu);
}

static void workers_join(struct worker_rec *list)
{
    while (list) {
        struct worker_rec *next = list->next;
        must(pthread_join(list->tid, NULL), "pthread_join");
        free(list);
        list = next;
    }
}

static void workers_reap(void)
{
    struct worker_rec *list;

    lock(&workers.mu);
    list = workers.finished;
    workers.finished = NULL;
    unlock(&workers.mu);
    workers_join(list);
}

static void sq_quiesce(void)
{
    struct worker_rec *list;

    lock(&workers.mu);
    while (workers.closing > 0)
        must(pthread_cond_wait(&workers.cv, &workers.mu), "pthread_cond_wait");
    list = workers.finished;
    workers.finished = NULL;
    unlock(&workers.mu);
    workers_join(list);
}

/* ----------------------------------------------------------------- chunks */

static void chunk_free(struct chunk *ch)
{
    if (!ch)
        return;
    while (ch->blocks) {
        struct block *b = ch->blocks;
        ch->blocks = b->next;
        free(b);
    }
    free(ch->cols);
    free(ch->vals);
    free(ch);
}

static struct chunk *chunk_new(size_t ncols)
{
    struct chunk *ch = calloc(1, sizeof(*ch));

    if (ch)
        ch->ncols = ncols;
    return ch;
}

/* n bytes inside the chunk, stable until the chunk is freed. */
static char *chunk_bytes(struct chunk *ch, size_t n)
{
    struct block *b = ch->blocks;
    char *p;

    if (!b || b->cap - b->used < n) {
        size_t cap = b ? b->cap * 2 : BLOCK_FIRST;
        if (cap > BLOCK_MAX)
            cap = BLOCK_MAX;
        if (cap < n)
            cap = n;
        b = malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = ch->blocks;
        ch->blocks = b;
    }
    p = b->data + b->used;
    b->used += n;
    ch->bytes += n;
    return p;
}

static const char *chunk_strdup(struct chunk *ch, const char *s, bool lower)
{
    size_t n = strlen(s);
    char *p = chunk_bytes(ch, n + 1);

    if (!p)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char ch_ = s[i];
        p[i] = (lower && ch_ >= 'A' && ch_ <= 'Z') ? (char)(ch_ - 'A' + 'a') : ch_;
    }
    p[n] = '\0';
    return p;
}

/* Column names and lower-cased declared types ("" when none). */
static bool chunk_set_columns(struct chunk *ch, sqlite3_stmt *stmt)
{
    ch->cols = calloc(ch->ncols, sizeof(*ch->cols));
    if (!ch->cols)
        return false;
    for (size_t i = 0; i < ch->ncols; i++) {
        const char *name = sqlite3_column_name(stmt, (int)i);
        const char *decl = sqlite3_column_decltype(stmt, (int)i);
        if (!name)
            return false;   /* sqlite3_column_name fails only when out of memory */
        ch->cols[i].name = chunk_strdup(ch, name, false);
        ch->cols[i].decl_type = chunk_strdup(ch, decl ? decl : "", true);
        if (!ch->cols[i].name || !ch->cols[i].decl_type)
            return false;
    }
    return true;
}

static bool copy_bytes_value(struct chunk *ch, dbpool_value *v, dbpool_type type,
                             const void *src, int n)
{
    char *dst;

    if (n < 0 || (n > 0 && !src))
        return false;   /* SQLite returns NULL for a non-empty value only when out of memory */
    dst = chunk_bytes(ch, (size_t)n + 1);
    if (!dst)
        return false;
    if (n > 0)
        memcpy(dst, src, (size_t)n);
    dst[n] = '\0';      /* TEXT is NUL-terminated as a courtesy */
    v->type = type;
    v->u.s.ptr = dst;
    v->u.s.len = (size_t)n;
    return true;
}

/* Typed per value by its storage class (sqlite3_column_type). */
static bool copy_value(struct chunk *ch, sqlite3_stmt *stmt, int i, dbpool_value *v)
{
    const void *p;

    switch (sqlite3_column_type(stmt, i)) {
    case SQLITE_INTEGER:
        v->type = DBPOOL_INT64;
        v->u.i = sqlite3_column_int64(stmt, i);
        return true;
    case SQLITE_FLOAT:
        v->type = DBPOOL_FLOAT64;
        v->u.f = sqlite3_column_double(stmt, i);
        return true;
    case SQLITE_TEXT:
        p = sqlite3_column_text(stmt, i);   /* text first, then bytes */
        return copy_bytes_value(ch, v, DBPOOL_TEXT, p, sqlite3_column_bytes(stmt, i));
    case SQLITE_BLOB:
        p = sqlite3_column_blob(stmt, i);
        return copy_bytes_value(ch, v, DBPOOL_BLOB, p, sqlite3_column_bytes(stmt, i));
    default:
        v->type = DBPOOL_NULL;
        v->u.i = 0;
        return true;
    }
}

static bool chunk_add_row(struct chunk *ch, sqlite3_stmt *stmt)
{
    dbpool_value *row;

    if (ch->nrows == ch->cap_rows) {
        size_t cap = ch->cap_rows ? ch->cap_rows * 2 : 16;
        dbpool_value *vals;
        if (cap > CHUNK_MAX_ROWS)
            cap = CHUNK_MAX_ROWS;
        vals = realloc(ch->vals, cap * ch->ncols * sizeof(*vals));
        if (!vals)
            return false;
        ch->vals = vals;
        ch->cap_rows = cap;
    }
    row = ch->vals + ch->nrows * ch->ncols;
    for (size_t i = 0; i < ch->ncols; i++)
        if (!copy_value(ch, stmt, (int)i, &row[i]))
            return false;
    ch->nrows++;
    ch->bytes += ch->ncols * sizeof(*row);
    return true;
}

static bool chunk_full(const struct chunk *ch)
{
    return ch->nrows >= CHUNK_MAX_ROWS || ch->bytes >= CHUNK_MAX_BYTES;
}

/* ------------------------------------------------------------ query copy */

/* NULL when out of memory or the sizes overflow. */
static struct qcopy *qcopy_new(const struct backend_query *q)
{
    size_t total = sizeof(struct qcopy), bytes = q->sql_len + 1;
    struct qcopy *qc;
    char *p;

    if (q->nparams > (SIZE_MAX / 2) / sizeof(dbpool_value) || q->sql_len > SIZE_MAX / 4)
        return NULL;
    total += q->nparams * sizeof(dbpool_value);
    for (size_t i = 0; i < q->nparams; i++) {
        const dbpool_value *v = &q->params[i];
        if (v->type == DBPOOL_TEXT || v->type == DBPOOL_BLOB) {
            if (v->u.s.len > SIZE_MAX / 4 - bytes)
                return NULL;
            bytes += v->u.s.len;
        }
    }
    if (bytes > SIZE_MAX - total)
        return NULL;
    qc = malloc(total + bytes);
    if (!qc)
        return NULL;
    qc->params = (dbpool_value *)(qc + 1);
    qc->nparams = q->nparams;
    qc->flags = q->flags;
    p = (char *)(qc->params + q->nparams);
    if (q->sql_len > 0)
        memcpy(p, q->sql, q->sql_len);
    p[q->sql_len] = '\0';
    qc->sql = p;
    qc->sql_len = q->sql_len;
    p += q->sql_len + 1;
    for (size_t i = 0; i < q->nparams; i++) {
        dbpool_value *v = &qc->params[i];
        *v = q->params[i];
        if (v->type == DBPOOL_TEXT || v->type == DBPOOL_BLOB) {
            if (v->u.s.len > 0)
                memcpy(p, q->params[i].u.s.ptr, v->u.s.len);
            v->u.s.ptr = p;   /* never NULL: an empty TEXT/BLOB must not bind as NULL */
            p += v->u.s.len;
        }
    }
    return qc;
}

/* -------------------------------------------------------- error mapping */

static const char *const primary_code_names[] = {
    "OK", "ERROR", "INTERNAL", "PERM", "ABORT", "BUSY", "LOCKED", "NOMEM",
    "READONLY", "INTERRUPT", "IOERR", "CORRUPT", "NOTFOUND", "FULL", "CANTOPEN",
    "PROTOCOL", "EMPTY", "SCHEMA", "TOOBIG", "CONSTRAINT", "MISMATCH", "MISUSE",
    "NOLFS", "AUTH", "FORMAT", "RANGE", "NOTADB", "NOTICE", "WARNING",
};

static const char *primary_name(int xrc)
{
    size_t prim = (size_t)(xrc & 0xff);

    if (prim < sizeof(primary_code_names) / sizeof(primary_code_names[0]))
        return primary_code_names[prim];
    return "UNKNOWN";
}

static void canceled_result(struct backend_result *r)
{
    backend_result_error(r, DBPOOL_E_CANCELED, "57014", 'I',
                         "canceling statement due to user request");
}

/*
 * SQLite result code -> dbpool code and SQLSTATE. SQLite has no SQLSTATEs;
 * we report one only where a standard equivalent is unambiguous:
 *
 *   SQLITE_CONSTRAINT_UNIQUE, _PRIMARYKEY    23505 unique_violation
 *   SQLITE_CONSTRAINT_NOTNULL                23502 not_null_violation
 *   SQLITE_CONSTRAINT_FOREIGNKEY             23503 foreign_key_violation
 *   SQLITE_CONSTRAINT_CHECK                  23514 check_violation
 *   other SQLITE_CONSTRAINT_*                23000 integrity_constraint_violation
 *   SQLITE_ERROR at prepare, "syntax error"  42601 syntax_error
 *     or "incomplete input"
 *   SQLITE_ERROR at prepare, "no such table" 42P01 undefined_table
 *   SQLITE_ERROR at prepare, "no such column" 42703 undefined_column
 *   SQLITE_READONLY_* (query_only readers)   25006 read_only_sql_transaction
 *   SQLITE_INTERRUPT                         57014 query_canceled (DBPOOL_E_CANCELED)
 *   SQLITE_BUSY_SNAPSHOT (a deferred WAL     40001 serialization_failure
 *     transaction that read, then tried to
 *     write after another connection wrote)
 *   other SQLITE_BUSY after the busy timeout ""    "database is locked (...)"
 *   anything else                            ""
 *
 * Driver-made errors: more than one statement 42601 (as PostgreSQL);
 * parameter count mismatch 07001 (dynamic SQL: wrong number of parameters).
 * Everything is DBPOOL_E_SQL except SQLITE_INTERRUPT. CANTOPEN, CORRUPT and
 * NOTADB also mark the connection broken; IOERR and NOMEM do not (they are
 * usually transient).
 */
static const char *constraint_sqlstate(int xrc)
{
    switch (xrc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        return "23505";
    case SQLITE_CONSTRAINT_NOTNULL:
        return "23502";
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return "23503";
    case SQLITE_CONSTRAINT_CHECK:
        return "23514";
    default:
        return "23000";
    }
}

static const char *prepare_error_sqlstate(const char *msg)
{
    if (strstr(msg, "syntax error") || strstr(msg, "incomplete input"))
        return "42601";
    if (strstr(msg, "no such table"))
        return "42P01";
    if (strstr(msg, "no such column"))
        return "42703";
    return "";
}

static void sql_error(struct backend_conn *c, struct backend_result *r, int xrc,
                      const char *msg, bool at_prepare)
{
    int prim = xrc & 0xff;
    const char *state = "";

    if (prim == SQLITE_INTERRUPT || (prim == SQLITE_BUSY && stop_requested(c))) {
        canceled_result(r);
        return;
    }
    if (xrc == SQLITE_BUSY_SNAPSHOT) {
        backend_result_error(r, DBPOOL_E_SQL, "40001", 'I',
                             "could not serialize access: another connection wrote since this "
                             "transaction read; roll back and retry (SQLITE_BUSY_SNAPSHOT)");
        return;
    }
    if (prim == SQLITE_BUSY) {
        backend_result_error(r, DBPOOL_E_SQL, "", 'I',
                             "database is locked (another process holds the write lock; "
                             "busy timeout %llu ms)",
                             (unsigned long long)c->cfg->timeout_ms);
        return;
    }
    if (prim == SQLITE_CONSTRAINT)
        state = constraint_sqlstate(xrc);
    else if (prim == SQLITE_READONLY)
        state = "25006";
    else if (prim == SQLITE_ERROR && at_prepare)
        state = prepare_error_sqlstate(msg);
    backend_result_error(r, DBPOOL_E_SQL, state, 'I', "%s (SQLITE_%s, extended code %d)",
                         msg, primary_name(xrc), xrc);
    r->broken = prim == SQLITE_CANTOPEN || prim == SQLITE_CORRUPT || prim == SQLITE_NOTADB;
}

static void oom_result(struct backend_result *r, const char *what)
{
    backend_result_error(r, DBPOOL_E_INTERNAL, "", 'I', "out of memory %s", what);
}

/* ------------------------------------------------------ worker: posting */

/* Queue a full (or final) chunk for the loop, waiting for room. Returns false
 * (and frees the chunk) when the connection was closed, or cancelled and
 * abort_on_cancel. */
static bool post_chunk(struct backend_conn *c, struct chunk *ch, bool abort_on_cancel)
{
    bool ok;

    lock(&c->mu);
    while (!c->closed && !(abort_on_cancel && atomic_load(&c->cancel_req)) &&
           c->nqueued >= CHUNKS_IN_FLIGHT)
        cwait(c);
    ok = !c->closed && !(abort_on_cancel && atomic_load(&c->cancel_req));
    if (ok) {
        if (c->q_tail)
            c->q_tail->next = ch;
        else
            c->q_head = ch;
        c->q_tail = ch;
        c->nqueued++;
        event_active(c->ev, 0, 0);
    }
    unlock(&c->mu);
    if (!ok)
        chunk_free(ch);
    return ok;
}

static void post_result(struct backend_conn *c, const struct backend_result *r, bool wrote)
{
    lock(&c->mu);
    c->running = false;
    if (!c->closed) {
        c->result = *r;
        c->result_wrote = wrote;
        c->result_ready = true;
        event_active(c->ev, 0, 0);
    }
    unlock(&c->mu);
}

/* ---------------------------------------------- worker: sqlite handlers */

/* Busy handler: waits like SQLite's default one up to cfg->timeout_ms in
 * total, but on c->cv, so cancel() and close() end the wait at once. */
static int busy_handler(void *arg, int count)
{
    static const unsigned delays_ms[] = { 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 };
    const size_t ndelays = sizeof(delays_ms) / sizeof(delays_ms[0]);
    struct backend_conn *c = arg;
    uint64_t now = monotonic_ms(), limit = c->cfg->timeout_ms, waited, delay, deadline;

    if (count == 0)
        c->busy_since_ms = now;
    waited = now - c->busy_since_ms;
    if (stop_requested(c) || waited >= limit)
        return 0;
    delay = delays_ms[(size_t)count < ndelays ? (size_t)count : ndelays - 1];
    if (delay > limit - waited)
        delay = limit - waited;
    deadline = now + delay;
    lock(&c->mu);
    while (!stop_requested(c) && monotonic_ms() < deadline)
        cwait_until(c, deadline);
    unlock(&c->mu);
    return stop_requested(c) ? 0 : 1;
}

/* Progress handler: a non-zero return interrupts the statement. Backs up
 * sqlite3_interrupt(), which is lost if it lands just before a statement
 * starts (SQLite clears the flag when no statement is active). */
static int progress_handler(void *arg)
{
    return stop_requested(arg) ? 1 : 0;
}

static char txstate_now(const struct backend_conn *c)
{
    if (!c->db)
        return 'I';
    return sqlite3_get_autocommit(c->db) ? 'I' : 'T';
}

/* ---------------------------------------------------- worker: connect */

static const char *cfg_word(const char *value, const char *dflt)
{
    return (value && *value) ? value : dflt;
}

static void connect_error(struct backend_conn *c, struct backend_result *r, const char *step,
                          const char *msg)
{
    if (stop_requested(c)) {
        canceled_result(r);
    } else {
        backend_result_error(r, DBPOOL_E_UNAVAILABLE, "", 'I',
                             "cannot open SQLite database \"%s\": %s: %s (check filePath and "
                             "that the directory exists and is writable by the daemon)",
                             c->cfg->file_path, step, msg);
    }
    r->broken = true;
}

/* Run a PRAGMA built from fmt; copy the first column of its first row (if
 * any) into out. */
static bool pragmaf(struct backend_conn *c, sqlite3 *db, struct backend_result *r, char *out,
                    size_t outlen, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static bool pragmaf(struct backend_conn *c, sqlite3 *db, struct backend_result *r, char *out,
                    size_t outlen, const char *fmt, ...)
{
    char sql[128];
    sqlite3_stmt *st = NULL;
    va_list ap;
    int n, rc;

    va_start(ap, fmt);
    n = vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(sql)) {
        connect_error(c, r, "settings", "setting value too long");
        return false;
    }
    rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const unsigned char *v = sqlite3_column_text(st, 0);
            if (out && v)
                snprintf(out, outlen, "%s", (const char *)v);
            out = NULL;   /* first row only */
        }
    }
    if (rc != SQLITE_DONE) {
        connect_error(c, r, sql, sqlite3_errmsg(db));
        (void)sqlite3_finalize(st);   /* repeats the error just reported */
        return false;
    }
    (void)sqlite3_finalize(st);       /* SQLITE_OK after SQLITE_DONE */
    return true;
}

static bool set_journal_mode(struct backend_conn *c, sqlite3 *db, struct backend_result *r)
{
    const char *want = cfg_word(c->cfg->journal_mode, "WAL");
    char got[32] = "";

    if (!pragmaf(c, db, r, got, sizeof(got), "PRAGMA journal_mode = %s", want))
        return false;
    if (strcasecmp(got, want) == 0)
        return true;
    /* An in-memory database supports only MEMORY and OFF; nothing to protect
     * there (and it is private to this connection anyway), so accept it. */
    if (strcmp(c->cfg->file_path, ":memory:") == 0)
        return true;
    backend_result_error(r, DBPOOL_E_UNAVAILABLE, "", 'I',
                         "SQLite database \"%s\": journalMode %s could not be enabled "
                         "(SQLite kept \"%s\")%s",
                         c->cfg->file_path, want, got,
                         strcasecmp(want, "WAL") == 0
                             ? "; WAL needs a local filesystem with shared-memory support"
                             : "");
    r->broken = true;
    return false;
}

/* Writer: auto_vacuum (must precede journal_mode), journal_mode,
 * synchronous, cache_size, foreign_keys. Readers: synchronous, cache_size,
 * foreign_keys and query_only = 1, so a write fails instead of taking the
 * write lock. The busy timeout is our busy handler. */
static bool apply_settings(struct backend_conn *c, sqlite3 *db, struct backend_result *r)
{
    const struct pool_config *cfg = c->cfg;

    if (c->role == ROLE_WRITER) {
        if (!pragmaf(c, db, r, NULL, 0, "PRAGMA auto_vacuum = %s",
                     cfg_word(cfg->auto_vacuum, "INCREMENTAL")) ||
            !set_journal_mode(c, db, r))
            return false;
    }
    if (!pragmaf(c, db, r, NULL, 0, "PRAGMA synchronous = %s", cfg_word(cfg->sync_mode, "NORMAL")) ||
        !pragmaf(c, db, r, NULL, 0, "PRAGMA cache_size = %d", cfg->cache_size) ||
        !pragmaf(c, db, r, NULL, 0, "PRAGMA foreign_keys = %s", cfg->foreign_keys ? "ON" : "OFF"))
        return false;
    if (c->role == ROLE_READER && !pragmaf(c, db, r, NULL, 0, "PRAGMA query_only = 1"))
        return false;
    return true;
}

static void close_db(sqlite3 *db)
{
    /* sqlite3_close_v2 defers the close while statements are unfinalized and
     * returns SQLITE_OK; we never leave any, and a NULL handle is a no-op. */
    if (sqlite3_close_v2(db) != SQLITE_OK)
        fprintf(stderr, "backend_sqlite: sqlite3_close_v2: %s\n", sqlite3_errmsg(db));
}

static void worker_connect(struct backend_conn *c, struct backend_result *r)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    sqlite3 *db = NULL;
    int rc;

    if (c->db) {
        backend_result_ok(r, txstate_now(c));   /* already connected */
        return;
    }
    if (c->role == ROLE_WRITER)
        flags |= SQLITE_OPEN_CREATE;   /* readers never create: the writer connects first */
    rc = sqlite3_open_v2(c->cfg->file_path, &db, flags, NULL);
    if (rc != SQLITE_OK) {
        connect_error(c, r, "open", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        close_db(db);
        return;
    }
    (void)sqlite3_extended_result_codes(db, 1);   /* always SQLITE_OK on an open handle */
    (void)sqlite3_busy_handler(db, busy_handler, c); /* likewise */
    sqlite3_progress_handler(db, PROGRESS_STEPS, progress_handler, c);
    if (!apply_settings(c, db, r)) {
        close_db(db);
        return;
    }
    lock(&c->mu);
    c->db = db;
    unlock(&c->mu);
    backend_result_ok(r, 'I');
}

/* ------------------------------------------------------- worker: exec */

/* Whitespace, comments and empty statements (';') only? */
static bool only_trivia(const char *p, const char *end)
{
    while (p < end) {
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v' ||
            *p == ';') {
            p++;
        } else if (*p == '-' && p + 1 < end && p[1] == '-') {
            while (p < end && *p != '\n')
                p++;
        } else if (*p == '/' && p + 1 < end && p[1] == '*') {
            p += 2;
            while (p + 1 < end && !(p[0] == '*' && p[1] == '/'))
                p++;
            p = (p + 1 < end) ? p + 2 : end;
        } else {
            return false;
        }
    }
    return true;
}

static void not_connected(struct backend_result *r)
{
    backend_result_error(r, DBPOOL_E_UNAVAILABLE, "", 'I',
                         "SQLite connection is not open (connect failed or was not called)");
    r->broken = true;
}

/* Prepare exactly one statement. *out stays NULL (with r filled) when there
 * is nothing to run or on error. */
static void prepare_one(struct backend_conn *c, const struct qcopy *q, sqlite3_stmt **out,
                        struct backend_result *r)
{
    const char *p = q->sql, *end = q->sql + q->sql_len, *tail = p;

    *out = NULL;
    if (q->sql_len > INT_MAX) {
        backend_result_error(r, DBPOOL_E_SQL, "54000", 'I', "statement too long (%zu bytes)",
                             q->sql_len);
        return;
    }
    while (!*out && !only_trivia(p, end)) {
        int rc = sqlite3_prepare_v3(c->db, p, (int)(end - p), 0, out, &tail);
        if (rc != SQLITE_OK) {
            sql_error(c, r, sqlite3_extended_errcode(c->db), sqlite3_errmsg(c->db), true);
            *out = NULL;
            return;
        }
        if (tail <= p)
            break;
        p = tail;   /* skipped an empty statement */
    }
    if (!*out) {
        backend_result_ok(r, 'I');   /* empty query: nothing to run */
        return;
    }
    if (!only_trivia(tail, end)) {
        (void)sqlite3_finalize(*out);   /* never stepped: SQLITE_OK */
        *out = NULL;
        backend_result_error(r, DBPOOL_E_SQL, "42601", 'I',
                             "query contains more than one statement; "
                             "send them as a batch or one at a time");
    }
}

/* 0 or an SQLite code; -1 for an unknown parameter type. */
static int bind_one(sqlite3_stmt *st, int i, const dbpool_value *v)
{
    switch (v->type) {
    case DBPOOL_NULL:
        return sqlite3_bind_null(st, i);
    case DBPOOL_INT64:
        return sqlite3_bind_int64(st, i, v->u.i);
    case DBPOOL_FLOAT64:
        return sqlite3_bind_double(st, i, v->u.f);
    case DBPOOL_TEXT:   /* our copy outlives the statement: SQLITE_STATIC */
        return sqlite3_bind_text64(st, i, v->u.s.ptr, v->u.s.len, SQLITE_STATIC, SQLITE_UTF8);
    case DBPOOL_BLOB:
        return sqlite3_bind_blob64(st, i, v->u.s.ptr, v->u.s.len, SQLITE_STATIC);
    case DBPOOL_BOOL:
        return sqlite3_bind_int(st, i, v->u.b ? 1 : 0);
    default:
        return -1;
    }
}

static bool bind_params(struct backend_conn *c, sqlite3_stmt *st, const struct qcopy *q,
                        struct backend_result *r)
{
    int expected = sqlite3_bind_parameter_count(st);

    if (expected < 0 || (size_t)expected != q->nparams) {
        backend_result_error(r, DBPOOL_E_SQL, "07001", 'I',
                             "statement expects %d parameters, got %zu", expected, q->nparams);
        return false;
    }
    for (size_t i = 0; i < q->nparams; i++) {
        int rc = bind_one(st, (int)i + 1, &q->params[i]);
        if (rc == -1) {
            backend_result_error(r, DBPOOL_E_INTERNAL, "", 'I',
                                 "parameter %zu has unknown type %d", i + 1,
                                 (int)q->params[i].type);
            return false;
        }
        if (rc != SQLITE_OK) {
            sql_error(c, r, rc, sqlite3_errmsg(c->db), false);
            return false;
        }
    }
    return true;
}

static int64_t total_changes(sqlite3 *db)
{
#if SQLITE_VERSION_NUMBER >= 3037000
    return sqlite3_total_changes64(db);
#else
    return sqlite3_total_changes(db);
#endif
}

static int64_t last_changes(sqlite3 *db)
{
#if SQLITE_VERSION_NUMBER >= 3037000
    return sqlite3_changes64(db);
#else
    return sqlite3_changes(db);
#endif
}

/* Step through the rows, posting full chunks. Returns SQLITE_DONE, an
 * SQLite error code, STEP_NOMEM or STEP_ABANDONED. *chp holds the chunk
 * being filled (NULL for statements without columns). */
static int step_rows(struct backend_conn *c, sqlite3_stmt *st, struct chunk **chp, int64_t *nrows)
{
    int rc;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct chunk *full;
        if (!*chp || !chunk_add_row(*chp, st))
            return STEP_NOMEM;
        (*nrows)++;
        if (!chunk_full(*chp))
            continue;
        full = *chp;
        *chp = chunk_new(full->ncols);
        if (!post_chunk(c, full, true))
            return STEP_ABANDONED;
    }
    return rc;
}

/* The counts reported for a statement that ran to completion. */
static void fill_counts(struct backend_conn *c, sqlite3_stmt *st, bool readonly, int ncols,
                        int64_t nrows, int64_t changes_before, sqlite3_int64 rowid_before,
                        struct backend_result *r)
{
    static const char *const insert_kw[] = { "INSERT", "REPLACE", NULL };
    int64_t changed = total_changes(c->db) - changes_before;
    sqlite3_int64 rowid = sqlite3_last_insert_rowid(c->db);
    const char *sql = sqlite3_sql(st);

    /* sqlite3_changes keeps the count of the last INSERT/UPDATE/DELETE, so
     * only trust it when this statement changed something. */
    if (!readonly && ncols == 0)
        r->rows_affected = changed > 0 ? last_changes(c->db) : 0;
    else
        r->rows_affected = nrows;
    if (!readonly && (rowid != rowid_before ||
                      (changed > 0 && sql && sql_starts_with_keyword(sql, strlen(sql), insert_kw))))
        r->last_insert_id = rowid;
}

static void run_stmt(struct backend_conn *c, sqlite3_stmt *st, struct backend_result *r,
                     bool *wrote)
{
    bool readonly = sqlite3_stmt_readonly(st) != 0;
    int ncols = sqlite3_column_count(st);
    int64_t changes_before = total_changes(c->db), nrows = 0;
    sqlite3_int64 rowid_before = sqlite3_last_insert_rowid(c->db);
    struct chunk *ch = NULL;
    int rc = SQLITE_DONE;

    if (ncols > 0) {
        ch = chunk_new((size_t)ncols);
        rc = (ch && chunk_set_columns(ch, st)) ? SQLITE_DONE : STEP_NOMEM;
    }
    if (rc == SQLITE_DONE)
        rc = step_rows(c, st, &ch, &nrows);
    if (rc == SQLITE_DONE) {
        backend_result_ok(r, 'I');
        fill_counts(c, st, readonly, ncols, nrows, changes_before, rowid_before, r);
        *wrote = !readonly;
    } else if (rc == STEP_ABANDONED) {
        canceled_result(r);
    } else if (rc == STEP_NOMEM) {
        oom_result(r, "copying a row");
    } else {
        sql_error(c, r, sqlite3_extended_errcode(c->db), sqlite3_errmsg(c->db), false);
    }
    (void)sqlite3_finalize(st);   /* repeats the step error, if any, already reported */
    if (rc == SQLITE_DONE && ch && (ch->nrows > 0 || ch->cols)) {
        /* The last rows (or the columns of an empty result). Not abandoned
         * on cancel: the statement is complete; the loop decides. */
        (void)post_chunk(c, ch, false);   /* false only when closed: nobody listens */
    } else {
        chunk_free(ch);   /* rows of a failed statement are not delivered */
    }
}

static void worker_exec(struct backend_conn *c, const struct qcopy *q, struct backend_result *r,
                        bool *wrote)
{
    sqlite3_stmt *st = NULL;

    if (!q) {
        oom_result(r, "copying the statement");
        return;
    }
    if (!c->db) {
        not_connected(r);
        return;
    }
    prepare_one(c, q, &st, r);
    if (st && (q->flags & BQ_REQUIRE_READONLY) && !sqlite3_stmt_readonly(st)) {
        (void)sqlite3_finalize(st);   /* never stepped: SQLITE_OK */
        memset(r, 0, sizeof(*r));
        r->reroute_to_writer = true;  /* nothing ran; ok = false, no error code */
        st = NULL;
    }
    if (st && !bind_params(c, st, q, r)) {
        (void)sqlite3_finalize(st);   /* never stepped */
        st = NULL;
    }
    if (st)
        run_stmt(c, st, r, wrote);
    r->txstate = txstate_now(c);
}

/* ------------------------------------------------------- worker: ping */

static void worker_ping(struct backend_conn *c, struct backend_result *r)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (!c->db) {
        not_connected(r);
        return;
    }
    rc = sqlite3_prepare_v2(c->db, "SELECT 1", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
        rc = SQLITE_OK;
    if (rc == SQLITE_OK) {
        backend_result_ok(r, 'I');
    } else if ((rc & 0xff) == SQLITE_INTERRUPT) {
        canceled_result(r);
    } else {
        backend_result_error(r, DBPOOL_E_CONN_LOST, "", 'I', "SQLite health check failed: %s",
                             sqlite3_errmsg(c->db));
        r->broken = true;
    }
    (void)sqlite3_finalize(st);   /* repeats rc */
    r->txstate = txstate_now(c);
}

/* ------------------------------------------------------- worker: main */

static void run_job(struct backend_conn *c, enum op_kind kind, const struct qcopy *q)
{
    struct backend_result r;
    bool wrote = false;

    if (atomic_load(&c->cancel_req)) {
        canceled_result(&r);   /* cancelled before it started: skip it */
        r.txstate = txstate_now(c);
    } else if (kind == OP_CONNECT) {
        worker_connect(c, &r);
    } else if (kind == OP_EXEC) {
        worker_exec(c, q, &r, &wrote);
    } else {
        worker_ping(c, &r);
    }
    post_result(c, &r, wrote);
}

static void conn_free(struct backend_conn *c)
{
    while (c->q_head) {
        struct chunk *ch = c->q_head;
        c->q_head = ch->next;
        chunk_free(ch);
    }
    free(c->job_q);
    must(pthread_cond_destroy(&c->cv), "pthread_cond_destroy");
    must(pthread_mutex_destroy(&c->mu), "pthread_mutex_destroy");
    free(c);
}

/* c->refs is guarded by the tracker's static mutex rather than c->mu: the
 * thread dropping the last reference destroys c->mu, and the other thread's
 * last unlock of c->mu must be ordered before that (it is: that thread took
 * workers.mu afterwards to drop its own reference). */
static void conn_unref(struct backend_conn *c)
{
    int left;

    lock(&workers.mu);
    left = --c->refs;
    unlock(&workers.mu);
    if (left == 0)
        conn_free(c);
}

static void *worker_main(void *arg)
{
    struct backend_conn *c = arg;
    struct worker_rec *rec = c->rec;
    sqlite3 *db;

    lock(&c->mu);
    for (;;) {
        enum op_kind kind;
        struct qcopy *q;

        while (!c->closed && c->job == OP_NONE)
            cwait(c);
        if (c->closed)
            break;
        kind = c->job;
        q = c->job_q;
        c->job = OP_NONE;
        c->job_q = NULL;
        c->running = true;
        unlock(&c->mu);
        run_job(c, kind, q);
        free(q);
        lock(&c->mu);
    }
    db = c->db;
    c->db = NULL;   /* unpublished: cancel/close no longer interrupt it */
    unlock(&c->mu);
    close_db(db);
    conn_unref(c);
    workers_finished(rec);
    return NULL;
}

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
    chunk_free(ch);
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
        canceled_result(&r);
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
        conn_unref(c);   /* close() was called from one of our callbacks */
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
    start_op(c, OP_EXEC, sink->done, arg, sink, qcopy_new(q));
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
    workers_closing_add();   /* before the worker can see closed and finish */
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
        conn_unref(c);   /* else on_worker_event drops the loop's reference */
    workers_reap();
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

static bool check_config(const struct pool_config *cfg, char *errbuf, size_t errlen)
{
    const char *bad = NULL, *key = NULL;

    if (!cfg->file_path || !*cfg->file_path) {
        snprintf(errbuf, errlen, "pool \"%s\": filePath is required for a sqlite pool",
                 cfg->name ? cfg->name : "");
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
                 cfg->name ? cfg->name : "", key, bad);
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
    rc = pthread_create(&c->rec->tid, NULL, worker_main, c);
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

    workers_reap();
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
    conn_free(c);
    return NULL;
}

/* ---------------------------------------------------- pool-level calls */

/* One writer; the other connections are readers. An in-memory database is
 * private to its connection, so it gets no readers. */
static void sq_pool_limits(const struct pool_config *cfg, int *max_writers, int *max_readers)
{
    *max_writers = 1;
    *max_readers = cfg->max_open_conns > 1 ? cfg->max_open_conns - 1 : 0;
    if (cfg->file_path && strcmp(cfg->file_path, ":memory:") == 0)
        *max_readers = 0;
}

/* Writers take the write lock up front (BEGIN IMMEDIATE) so a transaction
 * can never fail to upgrade from read to write with SQLITE_BUSY; readers and
 * read-only transactions use a deferred BEGIN. */
static const char *sq_begin_sql(bool read_only, enum backend_role role)
{
    return (read_only || role == ROLE_READER) ? "BEGIN" : "BEGIN IMMEDIATE";
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
    .route = sq_route,
    .server_info = sq_server_info,
    .quiesce = sq_quiesce,
};
