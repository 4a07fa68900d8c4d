/*
 * sqlite_worker.c — the worker thread side of the SQLite driver: the
 * process-wide tracking of worker threads (for quiesce), posting results
 * and chunks to the loop, the busy and progress handlers, opening and
 * configuring the database (connect), ping, and the worker's job loop.
 * Statement execution is in sqlite_exec.c.
 */
#include "backend/sqlite/sqlite_internal.h"

#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <strings.h>

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

void sqd_workers_closing_add(void)
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

void sqd_workers_reap(void)
{
    struct worker_rec *list;

    lock(&workers.mu);
    list = workers.finished;
    workers.finished = NULL;
    unlock(&workers.mu);
    workers_join(list);
}

void sqd_quiesce(void)
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

bool sqd_teardown_pending(void)
{
    bool pending;

    lock(&workers.mu);
    pending = workers.closing > 0;
    unlock(&workers.mu);
    return pending;
}

/* ------------------------------------------------------ worker: posting */

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

/* ---------------------------------------------------- worker: connect */

static const char *cfg_word(const char *value, const char *dflt)
{
    return (value && *value) ? value : dflt;
}

static void connect_error(struct backend_conn *c, struct backend_result *r, const char *step,
                          const char *msg)
{
    if (stop_requested(c)) {
        sqd_canceled_result(r);
    } else {
        backend_result_error(r, DBPOOL_E_UNAVAILABLE, "", 'I',
                             "cannot open SQLite database \"%s\": %s: %s (check filePath and "
                             "that the directory exists and is writable by the daemon)",
                             sqlite_opts(c->cfg)->file_path, step, msg);
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
    const char *want = cfg_word(sqlite_opts(c->cfg)->journal_mode, "WAL");
    char got[32] = "";

    if (!pragmaf(c, db, r, got, sizeof(got), "PRAGMA journal_mode = %s", want))
        return false;
    if (strcasecmp(got, want) == 0)
        return true;
    /* An in-memory database supports only MEMORY and OFF; nothing to protect
     * there (and it is private to this connection anyway), so accept it. */
    if (strcmp(sqlite_opts(c->cfg)->file_path, ":memory:") == 0)
        return true;
    backend_result_error(r, DBPOOL_E_UNAVAILABLE, "", 'I',
                         "SQLite database \"%s\": journalMode %s could not be enabled "
                         "(SQLite kept \"%s\")%s",
                         sqlite_opts(c->cfg)->file_path, want, got,
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
    const struct sqlite_options *cfg = sqlite_opts(c->cfg);

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
        backend_result_ok(r, sqd_txstate_now(c));   /* already connected */
        return;
    }
    if (c->role == ROLE_WRITER)
        flags |= SQLITE_OPEN_CREATE;   /* readers never create: the writer connects first */
    rc = sqlite3_open_v2(sqlite_opts(c->cfg)->file_path, &db, flags, NULL);
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

/* ------------------------------------------------------- worker: ping */

static void worker_ping(struct backend_conn *c, struct backend_result *r)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (!c->db) {
        sqd_not_connected(r);
        return;
    }
    rc = sqlite3_prepare_v2(c->db, "SELECT 1", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
        rc = SQLITE_OK;
    if (rc == SQLITE_OK) {
        backend_result_ok(r, 'I');
    } else if ((rc & 0xff) == SQLITE_INTERRUPT) {
        sqd_canceled_result(r);
    } else {
        backend_result_error(r, DBPOOL_E_CONN_LOST, "", 'I', "SQLite health check failed: %s",
                             sqlite3_errmsg(c->db));
        r->broken = true;
    }
    (void)sqlite3_finalize(st);   /* repeats rc */
    r->txstate = sqd_txstate_now(c);
}

/* ------------------------------------------------------- worker: main */

static void run_job(struct backend_conn *c, enum op_kind kind, const struct qcopy *q)
{
    struct backend_result r;
    bool wrote = false;

    if (atomic_load(&c->cancel_req)) {
        sqd_canceled_result(&r);   /* cancelled before it started: skip it */
        r.txstate = sqd_txstate_now(c);
    } else if (kind == OP_CONNECT) {
        worker_connect(c, &r);
    } else if (kind == OP_EXEC) {
        sqd_worker_exec(c, q, &r, &wrote);
    } else {
        worker_ping(c, &r);
    }
    post_result(c, &r, wrote);
}

void sqd_conn_free(struct backend_conn *c)
{
    while (c->q_head) {
        struct chunk *ch = c->q_head;
        c->q_head = ch->next;
        sqd_chunk_free(ch);
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
void sqd_conn_unref(struct backend_conn *c)
{
    int left;

    lock(&workers.mu);
    left = --c->refs;
    unlock(&workers.mu);
    if (left == 0)
        sqd_conn_free(c);
}

void *sqd_worker_main(void *arg)
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
    sqd_conn_unref(c);
    workers_finished(rec);
    return NULL;
}
