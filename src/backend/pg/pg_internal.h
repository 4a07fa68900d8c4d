/*
 * pg_internal.h — what the files of the PostgreSQL driver ("postgres",
 * behind struct backend_driver, backend.h) share: the connection struct,
 * its states, and the functions one file calls in another. Not for use
 * outside src/backend/pg/. The driver runs on libpq's NON-BLOCKING API only.
 *
 * THE FILES
 *
 * From the bottom up; each file calls only the files above it in this
 * list (its header: conn.h, cancel.h, ...), never one below:
 *
 *   pg_internal.h   the connection struct and its states (this file)
 *   pg_stmtcache.c  statement names and DEALLOCATE text for the generic
 *                   statement cache (backend/stmtcache.c)
 *   conn.c      the connection's events, the life of one operation (start,
 *               complete, fail now or from the loop), the idle watch
 *   cancel.c    cancel requests on helper threads, the wait for them
 *   connect.c   connection set-up: name resolution, libpq's connect steps
 *   exec.c      the operations: parameters, the stages a statement is sent
 *               in (pipelined with its BEGIN when it opens a transaction),
 *               sending
 *   results.c   the socket callback, reading results: rows and their
 *               values to the sink, what ends a stage or the statement
 *               (the next stage, re-prepare, session reset)
 *   driver.c    the struct backend_driver table: creating and closing a
 *               connection, its timer and kick callbacks, pool-level calls
 *
 * The per-row and per-statement paths keep their helpers static in one
 * file (results.c, exec.c) so the compiler inlines them as before; what
 * the headers share is hidden (not exported from the binary).
 *
 * Everything runs on the event-loop thread and nothing here blocks: the
 * connection is opened with PQconnectStartParams/PQconnectPoll, statements
 * are sent with PQsendQueryParams + PQflush, results are read with
 * PQconsumeInput/PQisBusy/PQgetResult in single-row mode, all driven by
 * libevent events on PQsocket(). The one blocking libpq call, PQcancel(),
 * runs on a short detached helper thread (see "CANCEL"), and so does the
 * one blocking libc call libpq would make, getaddrinfo() for a host NAME
 * (see "NAME RESOLUTION"); both come from the drivers' shared helpers
 * (src/backend/helper.h, resolve.h) and wake the loop when they finish.
 *
 * CONNECTION STATES (c->phase)
 *
 *   PH_IDLE         no operation. No socket event is armed, unless the
 *                   pool watches the idle connection (watch_idle, see "IDLE
 *                   WATCH"); otherwise whatever the server sends meanwhile
 *                   waits in the kernel and is read by the next operation
 *   PH_RESOLVING    connect, before libpq starts: host names are resolved
 *                   on a helper thread (see "NAME RESOLUTION"); its answer
 *                   comes back through c->ev_resolved. c->ev_timer runs
 *                   from here on: cfg->timeout_ms covers resolution and
 *                   connection together.
 *   PH_CONNECTING   PQconnectPoll runs on every socket event. libpq may
 *                   switch sockets while connecting (next host or address,
 *                   SSL or GSS fallback), and a new socket can even reuse
 *                   the old descriptor number, so the event is re-created
 *                   after every step. c->ev_timer enforces cfg->timeout_ms.
 *   PH_SENDING      the statement is queued in libpq; PQflush on EV_WRITE
 *                   (and PQconsumeInput on EV_READ, as libpq requires) until
 *                   the output buffer is empty
 *   PH_READING      PQconsumeInput on EV_READ, then PQgetResult while
 *                   !PQisBusy. Rows arrive one PGresult each. Back-pressure:
 *                   when sink->row returns false, c->paused is set and the
 *                   read event removed, so neither PQgetResult nor
 *                   PQconsumeInput runs; the socket buffers fill and the
 *                   server blocks in its send. resume() continues through
 *                   c->ev_kick, with the results libpq already holds first.
 *                   A huge result is never held whole in memory.
 *   PH_CANCEL_WAIT  the results are complete but our cancel request may
 *                   still be on its way to the server; completion waits
 *                   for the cancel helper's wake-up (c->ev_cancel), at
 *                   most CANCEL_WAIT_MS (c->ev_timer), so a late cancel
 *                   cannot hit the next statement on this connection
 *   PH_DEFERRED     the result is known without I/O (bad parameters, not
 *                   connected, connect failed at once); it is reported from
 *                   c->ev_kick: callbacks never run inside connect/exec/ping
 *
 * OWNERSHIP AND LIFETIME
 *
 * The pool owns a struct backend_conn from conn_new until close(). The
 * connection owns its PGconn, its events (four, and c->ev_resolved once a
 * host name had to be resolved), the PGresult being delivered (c->cur) and
 * reusable buffers for columns, values and decoded bytea.
 * Values handed to the sink point into c->cur or those buffers and are valid
 * only during the call. Parameters are converted into one temporary
 * allocation that is freed as soon as PQsendQueryParams has copied them into
 * libpq's output buffer, so exec() keeps no pointer into the caller's query.
 *
 * Callbacks may call close() (and done() may start the next operation).
 * Every libevent callback brackets its work with enter()/leave(); close()
 * releases the server connection and the events at once but frees the
 * struct only when no callback of ours is on the stack (c->depth == 0);
 * after every sink call the code checks c->closed before touching anything.
 * done() is always the last thing an operation does.
 *
 * close() with a statement running also sends a cancel: a server backend
 * does not notice a vanished client while it computes.
 *
 * IDLE WATCH
 *
 * watch_idle() arms EV_READ on the socket of a connection that sits idle in
 * the pool. When it becomes readable, PQconsumeInput takes what arrived:
 * NOTICEs (dropped by the notice processor), ParameterStatus (kept by
 * libpq), NOTIFYs (drained with PQnotifies) leave the connection OK and the
 * watch goes on. A closed socket (pg_terminate_backend, server shutdown or
 * crash; the server's FATAL message is read as a notice first) makes libpq
 * report CONNECTION_BAD: the watch ends and lost(arg) is called once, from
 * our own libevent callback, so lost() may close the connection. A
 * connection that is already dead when the watch starts is reported from
 * c->ev_kick, never from inside watch_idle(). Starting an operation,
 * unwatch_idle() and close() end the watch.
 *
 * NAME RESOLUTION
 *
 * libpq resolves a host NAME with a blocking getaddrinfo() inside
 * PQconnectPoll, so connect() looks at cfg->host first: a comma-separated
 * list, as libpq reads it, whose entries are empty (libpq's default), a
 * socket directory ("/..."), an abstract socket ("@..."), an IPv4 or IPv6
 * literal (inet_pton) or a name. When there is at least one name, a
 * detached helper thread (src/backend/helper.h) resolves each name
 * (getaddrinfo, AF_UNSPEC, SOCK_STREAM) and keeps its first address. libpq
 * then gets `host` (the entries as configured: SSL verification uses the
 * name) and `hostaddr` (per entry, that address, or "" for an entry that is
 * not a name, which libpq then uses as it is, without DNS). A name that does
 * not resolve is left out of both lists, as libpq would skip it; when
 * nothing is left the connect fails with "cannot resolve host NAME:
 * <reason>" (DBPOOL_E_UNAVAILABLE). When libpq fails, its message names the
 * server by address only, so "(NAME is ADDR, ...)" follows it, and the
 * first resolution error, if any, precedes it.
 *
 * The lookup runs in src/backend/resolve.c; its answer wakes the loop
 * through c->ev_resolved. The connection lets go of the job
 * (pg_resolve_forget) when the connect operation ends (any way: answer
 * used, timeout, failure) or the connection is closed: the loop never
 * waits for a helper, and a helper never touches a freed connection or
 * event (struct helper_wake, helper.h). quiesce() waits (bounded) for
 * helpers still running; one stuck in a slow lookup past that bound holds
 * nothing but its job and is abandoned safely.
 *
 * CANCEL
 *
 * cancel() during PH_READING (or flush_step, once the statement is sent)
 * starts a helper for PQcancel (cancel.c); one is in flight at a time. The
 * helper owns only its PGcancel and its share of the job, and wakes the
 * loop through c->ev_cancel when PQcancel returns: the request reached the
 * server (or could not). Nothing polls. If the statement still runs then
 * (PostgreSQL drops a cancel that arrives before the backend has read the
 * query), the request is sent again after CANCEL_RESEND_MS, the delay
 * doubling each time up to CANCEL_RESEND_MAX_MS: a statement that ignores
 * cancels costs a helper thread now and then, never a spinning loop.
 *
 * VALUES
 *
 * Results come in text format and are typed by column OID: int2/int4/int8/
 * oid -> INT64, float4/float8 -> FLOAT64, bool -> BOOL, bytea -> BLOB
 * (hex or escape output decoded), NULL -> NULL, anything else -> TEXT as
 * sent (client_encoding is UTF8). Declared types are pg_type names from a
 * built-in table of common OIDs; other types (enums, domains, extension
 * types) are reported as "oid:<n>". Parameters: NULL and TEXT are sent
 * untyped (OID 0, the server infers the type from context), INT64 as int8,
 * FLOAT64 as float8, BOOL as bool, BLOB as binary bytea.
 *
 * LIMITS
 *
 * Only the first address of each name is tried (libpq, resolving itself,
 * would try them all). COPY FROM STDIN / TO STDOUT is refused (0A000)
 * without breaking the session.
 *
 * The only mutable global is the helper-thread counter (helper.c).
 * Text conversions (strtod, "%.17g") assume the C numeric locale, which the
 * daemon never changes.
 */
#ifndef DBPOOLD_BACKEND_PG_INTERNAL_H
#define DBPOOLD_BACKEND_PG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "backend/backend.h"
#include "backend/pg/pg_stmtcache.h"

enum {
    PG_MAX_PARAMS = 65535,        /* the protocol's limit (16-bit count) */
    CANCEL_WAIT_MS = 1000,        /* PH_CANCEL_WAIT bound */
    CANCEL_RESEND_MS = 1000,      /* first re-send of a cancel the statement outlived */
    CANCEL_RESEND_MAX_MS = 30000, /* the re-send delay doubles up to this */
    QUIESCE_WAIT_MS = 1000,       /* bound on waiting for helper threads at exit: a cancel
                                     to a reachable server takes milliseconds; one to a hung
                                     server (PQcancel has no timeout) must not hold the exit */
    SSL_EXTRA_READS = 4,          /* see read_step() in results.c */
    DECL_LEN = 16,                /* "oid:4294967295" + NUL */
};

/* Built-in type OIDs (catalog/pg_type_d.h; not in libpq's headers). */
enum {
    OID_BOOL = 16, OID_BYTEA = 17, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23,
    OID_OID = 26, OID_FLOAT4 = 700, OID_FLOAT8 = 701,
};

enum op_kind { OP_NONE = 0, OP_CONNECT, OP_EXEC, OP_PING };

enum phase {
    PH_IDLE = 0, PH_RESOLVING, PH_CONNECTING, PH_SENDING, PH_READING, PH_CANCEL_WAIT, PH_DEFERRED
};

struct helper_wake;  /* backend/helper.h */

/* The arrays for PQsendQueryParams / PQsendQueryPrepared, in one allocation
 * with the parameter values (binary for int8, float8 and bool, text
 * otherwise) and a NUL-terminated copy of the statement. Kept until the
 * operation ends: a statement may be prepared first and executed after. */
struct pg_params {
    void *mem;
    const char *sql;
    size_t sql_len;
    size_t n;
    const char **values;
    int *lengths;
    int *formats;
    Oid *types;
};

/* What the operation sends, in this order, each stage only when needed. */
enum stage { ST_ROLLBACK = 0, ST_DEALLOC, ST_BEGIN, ST_PREPARE, ST_EXEC };

struct backend_conn {
    const struct pool_config *cfg;
    struct event_base *base;
    PGconn *pg;                  /* NULL before connect, after a failed connect, after close */
    bool connected;
    bool closed;
    int depth;                   /* our libevent callbacks on the stack */
    char txstate;                /* as of the last completion */
    char server_info[64];

    event_callback_fn io_cb;     /* ev_io's callback (results.c: pg_on_io) */
    struct event *ev_io;         /* on PQsocket(); stays armed for EV_READ while the
                                    connection is healthy, so an operation costs no
                                    epoll_ctl; NULL when nothing is awaited */
    short io_what;
    int io_fd;                   /* the descriptor ev_io was made for */
    char lost_sqlstate[6];       /* a FATAL error the server sent while no query ran */
    char lost_msg[256];          /* (reported by the next operation, once) */
    struct event *ev_timer;      /* connect timeout; PH_CANCEL_WAIT bound; cancel re-send */
    struct event *ev_kick;       /* deferred work: results, resume, cancel */
    struct event *ev_cancel;     /* the cancel helper is done (cancel.c) */
    struct event *ev_resolved;   /* a resolver helper is done; created when first needed */
    struct resolve_job *resolve; /* PH_RESOLVING, and until the connect completes */

    /* The operation in flight. */
    enum op_kind op;
    enum phase phase;
    backend_done_fn done;
    void *arg;
    struct backend_sink sink;
    backend_done_fn session_done;    /* pg_reset_session's caller, while its steps run */
    void *session_arg;
    bool session_rollback;           /* ... and its ROLLBACK step runs */
    bool paused;                 /* sink->row returned false; waiting for resume() */
    bool canceled;               /* cancel() called */
    bool discard;                /* drop further rows (out of memory converting one) */
    bool cols_sent;
    bool input_failed;           /* PQconsumeInput failed: the connection is gone */
    bool copy_out;               /* discarding COPY TO STDOUT data */
    bool copy_refused;           /* the statement was a COPY: report it unsupported */
    bool force_broken;           /* libpq is in a state we cannot continue from */
    PGresult *cur;               /* rows being delivered */
    int cur_row;                 /* next row of cur */
    int64_t rows_seen, dropped, affected;
    bool have_err;
    struct backend_result res;   /* first error; or the final result while deferred */
    struct helper_wake *cancel;  /* a cancel request in flight (its helper runs), or NULL */
    bool cancel_sent;            /* a cancel was started for this operation */
    unsigned cancel_delay_ms;    /* the next re-send waits this long */
    const char *simple_sql;      /* a BQ_INTERNAL statement sent with PQsendQuery, or NULL */
    const char *begin_sql;       /* the query's begin_sql until the BEGIN was sent */
    const char *opened_with;     /* the query's begin_sql: this operation opens the
                                    transaction (a replay sends it again) */
    bool ddl;                    /* the statement is CREATE / ALTER / DROP */
    bool ddl_pending;            /* DDL succeeded in the open transaction */
    bool pipeline;               /* BEGIN + statement + Sync sent in libpq's pipeline mode */
    bool pipe_begin;             /* ... and the BEGIN's results are still to come */
    bool pipe_null;              /* the last PQgetResult in the pipeline gave NULL */
    struct pg_params pp;         /* the statement and its parameters (pp.mem owned) */
    enum stage stage;
    enum stmt_verdict verdict;   /* SC_UNNAMED, or executed by the name in ref */
    struct pg_stmt_ref ref;
    bool retried;                /* re-prepared once after the server dropped the plan */
    bool stale_plan;             /* the server refused a cached plan (0A000, result type) */

    struct stmt_cache *sc;       /* prepared statements (owned); NULL when caching is off */
    char *dealloc;               /* the garbage list's DEALLOCATE text (owned), and */
    size_t dealloc_cap;          /* its buffer's size */

    /* Idle watch (only while op == OP_NONE; see "IDLE WATCH"). */
    bool watching;
    bool watch_dead;             /* dead when the watch started: report from ev_kick */
    void (*lost)(void *arg);
    void *lost_arg;

    /* Buffers reused across statements. */
    dbpool_column *cols;
    char (*decl)[DECL_LEN];
    size_t cols_cap;
    dbpool_value *vals;
    size_t vals_cap;
    unsigned char *scratch;      /* decoded bytea of the current row */
    size_t scratch_cap;
};

static inline char tx_char(PGTransactionStatusType ts, bool *unknown)
{
    *unknown = false;
    switch (ts) {
    case PQTRANS_IDLE: return 'I';
    case PQTRANS_INTRANS: return 'T';
    case PQTRANS_INERROR: return 'E';
    case PQTRANS_ACTIVE: return 'T';   /* not after a completed command */
    case PQTRANS_UNKNOWN: break;
    }
    *unknown = true;
    return 'I';
}

static inline void timeval_ms(struct timeval *tv, uint64_t ms)
{
    tv->tv_sec = (time_t)(ms / 1000u);
    tv->tv_usec = (suseconds_t)(ms % 1000u) * 1000;
}

#endif
