/*
 * sqlite_internal.h — what the files of the SQLite driver share
 * (src/backend/sqlite/; the driver's overview — threads, ownership,
 * lifetime — is at the top of backend_sqlite.c). Not for use outside this
 * folder.
 *
 *   backend_sqlite.c   loop side: delivery of rows and results, the
 *                      driver's operations, creating connections, pool-level
 *                      calls, the driver table
 *   sqlite_worker.c    worker side: the thread's life (tracking, job loop),
 *                      posting to the loop, busy/progress handlers, connect
 *                      and ping
 *   sqlite_exec.c      worker side: running a statement, copying its rows
 *                      into chunks (the per-row hot path stays in this file)
 *   sqlite_chunks.c    chunks' allocation and release, exec's query copy
 *   sqlite_errors.c    SQLite result codes -> dbpool codes and SQLSTATEs
 *
 * Names shared between these files start with sqd_.
 */
#ifndef DBPOOLD_SQLITE_INTERNAL_H
#define DBPOOLD_SQLITE_INTERNAL_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <sqlite3.h>

#include "backend/backend.h"
#include "backend/sqlite/sqlite_options.h"

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
static inline void must(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "backend_sqlite: %s failed: %s\n", what, strerror(rc));
        abort();
    }
}

static inline void lock(pthread_mutex_t *m) { must(pthread_mutex_lock(m), "pthread_mutex_lock"); }
static inline void unlock(pthread_mutex_t *m) { must(pthread_mutex_unlock(m), "pthread_mutex_unlock"); }

static inline void cwait(struct backend_conn *c) { must(pthread_cond_wait(&c->cv, &c->mu), "pthread_cond_wait"); }
static inline void wake(struct backend_conn *c) { must(pthread_cond_broadcast(&c->cv), "pthread_cond_broadcast"); }

static inline uint64_t monotonic_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        abort();   /* cannot fail for CLOCK_MONOTONIC */
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Wait on c->cv (mu held) until deadline_ms on the monotonic clock. */
static inline void cwait_until(struct backend_conn *c, uint64_t deadline_ms)
{
    struct timespec ts;
    int rc;

    ts.tv_sec = (time_t)(deadline_ms / 1000u);
    ts.tv_nsec = (long)(deadline_ms % 1000u) * 1000000L;
    rc = pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    if (rc != ETIMEDOUT)
        must(rc, "pthread_cond_timedwait");
}

static inline bool stop_requested(struct backend_conn *c)
{
    return atomic_load(&c->cancel_req) || atomic_load(&c->close_req);
}

/* ---------------------------------------------------- shared functions */

/* sqlite_chunks.c */
struct chunk *sqd_chunk_new(size_t ncols);
void sqd_chunk_free(struct chunk *ch);
struct qcopy *sqd_qcopy_new(const struct backend_query *q);
bool sqd_post_chunk(struct backend_conn *c, struct chunk *ch, bool abort_on_cancel);

/* sqlite_errors.c */
void sqd_canceled_result(struct backend_result *r);
void sqd_sql_error(struct backend_conn *c, struct backend_result *r, int xrc,
                   const char *msg, bool at_prepare);
void sqd_oom_result(struct backend_result *r, const char *what);

/* sqlite_worker.c */
void *sqd_worker_main(void *arg);
void sqd_conn_unref(struct backend_conn *c);
void sqd_conn_free(struct backend_conn *c);     /* only before the worker started */
void sqd_workers_closing_add(void);
void sqd_workers_reap(void);
void sqd_quiesce(void);
bool sqd_teardown_pending(void);   /* a closed connection's worker still runs */

/* sqlite_exec.c */
void sqd_worker_exec(struct backend_conn *c, const struct qcopy *q, struct backend_result *r,
                     bool *wrote);
void sqd_not_connected(struct backend_result *r);
char sqd_txstate_now(const struct backend_conn *c);

#endif
