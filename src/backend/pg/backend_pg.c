/*
 * backend_pg.c — the PostgreSQL driver ("postgres") behind struct
 * backend_driver (backend.h), on libpq's NON-BLOCKING API only.
 *
 * Everything runs on the event-loop thread and nothing here blocks: the
 * connection is opened with PQconnectStartParams/PQconnectPoll, statements
 * are sent with PQsendQueryParams + PQflush, results are read with
 * PQconsumeInput/PQisBusy/PQgetResult in single-row mode, all driven by
 * libevent events on PQsocket(). The one blocking libpq call, PQcancel(),
 * runs on a short detached helper thread (see "Cancel threads"), and so
 * does the one blocking libc call libpq would make, getaddrinfo() for a
 * host NAME (see "NAME RESOLUTION").
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
 *                   (at most CANCEL_WAIT_MS) so a late cancel cannot hit
 *                   the next statement on this connection
 *   PH_DEFERRED     the result is known without I/O (bad parameters, not
 *                   connected, connect failed at once); it is reported from
 *                   c->ev_kick: callbacks never run inside connect/exec/ping
 *
 * OWNERSHIP AND LIFETIME
 *
 * The pool owns a struct backend_conn from conn_new until close(). The
 * connection owns its PGconn, its events (three, and c->ev_resolved once a
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
 * detached helper thread (see "Helper threads") resolves each name
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
 * The helper and the connection share a struct resolve_job (refs, under
 * job->mu). The helper works on its own copy of the names and reaches the
 * connection only through job->ev (c->ev_resolved), which it activates under
 * job->mu and only while it is set. resolve_abandon() clears job->ev under
 * that mutex when the connect operation ends (any way: answer used, timeout,
 * failure) or the connection is closed, and then deletes any activation
 * already posted: the loop never waits for a helper, and a helper never
 * touches a freed connection or event. (event_active from another thread
 * needs libevent's pthread locking, which the daemon enables before it
 * creates the base, as the SQLite driver requires too.) quiesce() waits
 * (bounded) for helpers still running; one stuck in a slow lookup past that
 * bound holds nothing but its job and is abandoned safely.
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
 * The only mutable global is the helper-thread counter used by quiesce().
 * Text conversions (strtod, "%.17g") assume the C numeric locale, which the
 * daemon never changes.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE   /* explicit_bzero */
#endif
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "backend/backend.h"
#include "backend/pg/backend_pg.h"
#include "backend/pg/pg_stmtcache.h"

enum {
    PG_MAX_PARAMS = 65535,        /* the protocol's limit (16-bit count) */
    CANCEL_WAIT_MS = 1000,        /* PH_CANCEL_WAIT bound */
    CANCEL_POLL_MS = 2,
    QUIESCE_WAIT_MS = 1000,       /* bound on waiting for helper threads at exit: a cancel
                                     to a reachable server takes milliseconds; one to a hung
                                     server (PQcancel has no timeout) must not hold the exit */
    ADDR_MAX = 64,                /* numeric address + "%" + interface name + NUL */
    SSL_EXTRA_READS = 4,          /* see read_step() */
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

/* A cancel request in flight. The helper thread owns cc and frees it; the
 * ticket itself is shared (refs) so the connection can see `delivered`
 * without the thread ever touching the connection. */
struct cancel_ticket {
    PGcancel *cc;
    atomic_bool delivered;   /* PQcancel returned: the server has the request */
    atomic_int refs;
};

/* One entry of the host list (see "NAME RESOLUTION"). */
struct resolve_entry {
    const char *name;        /* the entry as configured; points into job->names */
    bool lookup;             /* a name: the helper resolves it */
    int gai;                 /* getaddrinfo's (or getnameinfo's) result, 0: ok */
    int sys_errno;           /* errno when gai is EAI_SYSTEM */
    char addr[ADDR_MAX];     /* the first address, numeric */
};

/* A resolution in flight, shared by the connection and its helper thread.
 * mu guards ev, finished and refs; the helper writes the entries before it
 * sets finished, the loop reads them only after seeing finished. */
struct resolve_job {
    pthread_mutex_t mu;
    struct event *ev;        /* the connection's ev_resolved; NULL once abandoned */
    bool finished;
    int refs;
    char *names;             /* copy of the host list, commas replaced by NULs */
    size_t n;
    struct resolve_entry e[];
};

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

/* What the operation sends, in this order, each stage only when needed
 * (see "STAGES"). */
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

    struct event *ev_io;         /* on PQsocket(); stays armed for EV_READ while the
                                    connection is healthy, so an operation costs no
                                    epoll_ctl; NULL when nothing is awaited */
    short io_what;
    int io_fd;                   /* the descriptor ev_io was made for */
    char lost_sqlstate[6];       /* a FATAL error the server sent while no query ran */
    char lost_msg[256];          /* (reported by the next operation, once) */
    struct event *ev_timer;      /* connect timeout; PH_CANCEL_WAIT polling */
    struct event *ev_kick;       /* deferred work: results, resume, cancel */
    struct event *ev_resolved;   /* a resolver helper is done; created when first needed */
    struct resolve_job *resolve; /* PH_RESOLVING, and until the connect completes */

    /* The operation in flight. */
    enum op_kind op;
    enum phase phase;
    backend_done_fn done;
    void *arg;
    struct backend_sink sink;
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
    struct cancel_ticket *ticket;
    int cancel_polls;            /* PH_CANCEL_WAIT: polls left */
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
    struct stmt_ref ref;
    bool retried;                /* re-prepared once after the server dropped the plan */
    bool stale_plan;             /* the server refused a cached plan (0A000, result type) */

    struct stmt_cache *sc;       /* prepared statements (owned); NULL when caching is off */

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

/* ------------------------------------------------------------- helpers */

/* Copy src into dst with every run of white space (libpq's messages have
 * newlines and tabs) collapsed into one space, trimmed at both ends. */
static void tidy_message(char *dst, size_t size, const char *src)
{
    size_t n = 0;
    bool space = false;

    if (size == 0)
        return;
    for (; src && *src && n + 1 < size; src++) {
        if (*src == ' ' || *src == '\n' || *src == '\r' || *src == '\t') {
            space = n > 0;
            continue;
        }
        if (space && n + 2 < size)
            dst[n++] = ' ';
        space = false;
        dst[n++] = *src;
    }
    dst[n] = '\0';
}

static void conn_error_message(const struct backend_conn *c, char *dst, size_t size,
                               const char *fallback)
{
    tidy_message(dst, size, c->pg ? PQerrorMessage(c->pg) : "");
    if (!dst[0])
        snprintf(dst, size, "%s", fallback);
}

/* Notices are dropped (a pooled session has no one to show them to), but
 * a FATAL error that arrives while no query runs (pg_terminate_backend,
 * server shutdown) is kept: the next operation reports it. */
static void on_notice(void *arg, const PGresult *res)
{
    struct backend_conn *c = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

    if (!sev || (strcmp(sev, "FATAL") != 0 && strcmp(sev, "PANIC") != 0))
        return;
    snprintf(c->lost_sqlstate, sizeof(c->lost_sqlstate), "%s", state ? state : "");
    tidy_message(c->lost_msg, sizeof(c->lost_msg), msg ? msg : "");
}

static char tx_char(PGTransactionStatusType ts, bool *unknown)
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

static void timeval_ms(struct timeval *tv, uint64_t ms)
{
    tv->tv_sec = (time_t)(ms / 1000u);
    tv->tv_usec = (suseconds_t)(ms % 1000u) * 1000;
}

/* ------------------------------------------------------- helper threads */

/*
 * Helper threads — the blocking calls this driver needs (PQcancel, which
 * opens a new connection to the server; getaddrinfo) run on short detached
 * threads that own only what they were given. `running` counts helpers that
 * have not finished; quiesce() waits for it to reach zero. This is the
 * file's only mutable global state.
 */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int running;
} helpers = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };

/* Mutex/condvar calls fail only on programming errors: abort loudly. */
static void must(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "backend_pg: %s failed: %s\n", what, strerror(rc));
        abort();
    }
}

static void helpers_add(int delta)
{
    must(pthread_mutex_lock(&helpers.mu), "pthread_mutex_lock");
    helpers.running += delta;
    if (helpers.running == 0)
        must(pthread_cond_broadcast(&helpers.cv), "pthread_cond_broadcast");
    must(pthread_mutex_unlock(&helpers.mu), "pthread_mutex_unlock");
}

/* Start a detached helper running fn(arg); its last action must be
 * helpers_add(-1). The helper blocks all signals: they belong to the loop
 * thread. 0, or an error number (then fn never runs). */
static int helper_start(void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    pthread_t tid;
    sigset_t all, old;
    int rc;

    if (pthread_attr_init(&attr) != 0)
        return ENOMEM;
    helpers_add(1);
    rc = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (rc == 0 && sigfillset(&all) == 0) {
        must(pthread_sigmask(SIG_SETMASK, &all, &old), "pthread_sigmask");
        rc = pthread_create(&tid, &attr, fn, arg);
        must(pthread_sigmask(SIG_SETMASK, &old, NULL), "pthread_sigmask");
    } else if (rc == 0) {
        rc = EINVAL;
    }
    must(pthread_attr_destroy(&attr), "pthread_attr_destroy");
    if (rc != 0)
        helpers_add(-1);
    return rc;
}

/* ------------------------------------------------------- cancel threads */

/*
 * Cancel threads — a helper runs PQcancel() and owns only its PGcancel
 * (and a reference to the ticket).
 */
static void ticket_unref(struct cancel_ticket *t)
{
    if (t && atomic_fetch_sub(&t->refs, 1) == 1)
        free(t);
}

static void *cancel_main(void *arg)
{
    struct cancel_ticket *t = arg;
    char err[256];

    /* On failure (server unreachable) there is nobody to tell: the
     * statement runs on and the daemon's own timeouts apply. */
    (void)PQcancel(t->cc, err, sizeof(err));
    PQfreeCancel(t->cc);
    t->cc = NULL;
    atomic_store(&t->delivered, true);
    ticket_unref(t);
    helpers_add(-1);
    return NULL;
}

/* Start a helper for PQcancel. On any failure the cancel is simply not
 * sent. */
static struct cancel_ticket *cancel_start(PGconn *pg)
{
    struct cancel_ticket *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    t->cc = PQgetCancel(pg);
    if (!t->cc) {
        free(t);
        return NULL;
    }
    atomic_init(&t->delivered, false);
    atomic_init(&t->refs, 2);   /* the connection's and the helper's */
    if (helper_start(cancel_main, t) != 0) {
        PQfreeCancel(t->cc);
        free(t);
        return NULL;
    }
    return t;
}

/* ----------------------------------------------------- resolver threads */

/* Whether a host-list entry is a name to resolve: not empty (libpq's
 * default), not a socket directory or abstract socket, not an IP literal. */
static bool entry_needs_lookup(const char *p, size_t len)
{
    char lit[ADDR_MAX];
    unsigned char bin[sizeof(struct in6_addr)];

    if (len == 0 || p[0] == '/' || p[0] == '@')
        return false;
    if (len >= sizeof(lit))
        return true;   /* longer than any literal */
    memcpy(lit, p, len);
    lit[len] = '\0';
    return inet_pton(AF_INET, lit, bin) != 1 && inet_pton(AF_INET6, lit, bin) != 1;
}

static bool hosts_need_lookup(const char *hosts)
{
    for (const char *p = hosts;; ) {
        size_t len = strcspn(p, ",");
        if (entry_needs_lookup(p, len))
            return true;
        if (!p[len])
            return false;
        p += len + 1;
    }
}

static void job_unref(struct resolve_job *job)
{
    bool last;

    must(pthread_mutex_lock(&job->mu), "pthread_mutex_lock");
    last = --job->refs == 0;
    must(pthread_mutex_unlock(&job->mu), "pthread_mutex_unlock");
    if (last) {
        must(pthread_mutex_destroy(&job->mu), "pthread_mutex_destroy");
        free(job->names);
        free(job);
    }
}

/* The helper: resolve every name, then tell the loop unless abandoned. */
static void *resolve_main(void *arg)
{
    struct resolve_job *job = arg;
    struct addrinfo hints, *ai;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    for (size_t i = 0; i < job->n; i++) {
        struct resolve_entry *e = &job->e[i];

        if (!e->lookup)
            continue;
        ai = NULL;
        errno = 0;
        e->gai = getaddrinfo(e->name, NULL, &hints, &ai);
        if (e->gai == 0 && !ai)
            e->gai = EAI_NONAME;
        if (e->gai == 0)
            e->gai = getnameinfo(ai->ai_addr, ai->ai_addrlen, e->addr, sizeof(e->addr), NULL, 0,
                                 NI_NUMERICHOST);
        if (e->gai == EAI_SYSTEM)
            e->sys_errno = errno ? errno : EIO;
        if (e->gai != 0)
            e->addr[0] = '\0';
        if (ai)
            freeaddrinfo(ai);
    }
    must(pthread_mutex_lock(&job->mu), "pthread_mutex_lock");
    job->finished = true;
    if (job->ev)
        event_active(job->ev, 0, 0);
    must(pthread_mutex_unlock(&job->mu), "pthread_mutex_unlock");
    job_unref(job);
    helpers_add(-1);
    return NULL;
}

/* A job for the host list, with its own copy of the names; NULL when out
 * of memory. */
static struct resolve_job *job_new(const char *hosts)
{
    struct resolve_job *job;
    size_t n = 1;
    char *p;

    for (const char *q = hosts; *q; q++)
        n += *q == ',';
    job = calloc(1, sizeof(*job) + n * sizeof(job->e[0]));
    if (!job)
        return NULL;
    job->names = strdup(hosts);
    if (!job->names || pthread_mutex_init(&job->mu, NULL) != 0) {
        free(job->names);
        free(job);
        return NULL;
    }
    job->n = n;
    p = job->names;
    for (size_t i = 0; i < n; i++) {
        size_t len = strcspn(p, ",");
        bool last = !p[len];

        job->e[i].name = p;
        job->e[i].lookup = entry_needs_lookup(p, len);
        p[len] = '\0';
        if (!last)
            p += len + 1;
    }
    return job;
}

/* Why entry e did not resolve. */
static void entry_error(const struct resolve_entry *e, char *dst, size_t size)
{
    snprintf(dst, size, "cannot resolve host %s: %s", e->name,
             e->gai == EAI_SYSTEM ? strerror(e->sys_errno) : gai_strerror(e->gai));
}

/* Drop the connection's part in its resolution, if any: from here on the
 * helper cannot reach c, and an answer it already posted is withdrawn. */
static void resolve_abandon(struct backend_conn *c)
{
    struct resolve_job *job = c->resolve;

    if (!job)
        return;
    c->resolve = NULL;
    must(pthread_mutex_lock(&job->mu), "pthread_mutex_lock");
    job->ev = NULL;
    must(pthread_mutex_unlock(&job->mu), "pthread_mutex_unlock");
    (void)event_del(c->ev_resolved);   /* removes a posted activation, too */
    job_unref(job);
}

/* Wait (bounded) for every helper: one stuck connecting to an unreachable
 * server, or in a slow DNS lookup, must not hold up shutdown forever. */
static void pg_quiesce(void)
{
    struct timespec deadline;
    int rc = 0;

    if (clock_gettime(CLOCK_REALTIME, &deadline) != 0)
        abort();   /* cannot fail for CLOCK_REALTIME */
    deadline.tv_sec += QUIESCE_WAIT_MS / 1000;
    must(pthread_mutex_lock(&helpers.mu), "pthread_mutex_lock");
    while (helpers.running > 0 && rc != ETIMEDOUT) {
        rc = pthread_cond_timedwait(&helpers.cv, &helpers.mu, &deadline);
        if (rc != ETIMEDOUT)
            must(rc, "pthread_cond_timedwait");
    }
    must(pthread_mutex_unlock(&helpers.mu), "pthread_mutex_unlock");
}

/* --------------------------------------------------------------- events */

static void on_io(evutil_socket_t fd, short what, void *arg);

static void disarm_io(struct backend_conn *c)
{
    if (c->ev_io) {
        event_free(c->ev_io);
        c->ev_io = NULL;
    }
    c->io_what = 0;
    c->io_fd = -1;
}

/* Watch PQsocket() for `what`. The event is reused when only the interest
 * changes; force re-creates it (while connecting the socket may have been
 * replaced by one with the same number). */
static bool arm_io(struct backend_conn *c, short what, bool force)
{
    int fd = PQsocket(c->pg);

    if (fd < 0) {
        disarm_io(c);
        return false;
    }
    if (!force && c->ev_io && c->io_fd == fd) {
        if (c->io_what == what)
            return true;
        if (event_del(c->ev_io) != 0 ||
            event_assign(c->ev_io, c->base, fd, (short)(what | EV_PERSIST), on_io, c) != 0 ||
            event_add(c->ev_io, NULL) != 0) {
            disarm_io(c);
            return false;
        }
        c->io_what = what;
        return true;
    }
    disarm_io(c);
    c->ev_io = event_new(c->base, fd, (short)(what | EV_PERSIST), on_io, c);
    if (!c->ev_io)
        return false;
    if (event_add(c->ev_io, NULL) != 0) {
        disarm_io(c);
        return false;
    }
    c->io_what = what;
    c->io_fd = fd;
    return true;
}

/* Between operations: keep reading (cheap: nothing to do until the server
 * speaks) on a healthy connection; drop the event otherwise, before libpq's
 * closed descriptor number can be reused by another socket. */
static void idle_io(struct backend_conn *c)
{
    if (c->pg && c->connected && c->ev_io && PQstatus(c->pg) == CONNECTION_OK &&
        PQsocket(c->pg) == c->io_fd)
        (void)arm_io(c, EV_READ, false);
    else
        disarm_io(c);
}

static void enter(struct backend_conn *c)
{
    c->depth++;
}

static void conn_free(struct backend_conn *c);

static void leave(struct backend_conn *c)
{
    if (--c->depth == 0 && c->closed)
        conn_free(c);
}

/* ----------------------------------------------------------- idle watch */

/* Stop watching (harmless when not watching). The socket event is ours
 * alone while idle, so it goes too. */
static void watch_end(struct backend_conn *c)
{
    if (!c->watching)
        return;
    c->watching = false;
    c->watch_dead = false;
    c->lost = NULL;
    c->lost_arg = NULL;
}

/* The watched connection is dead: end the watch, then tell the pool (last:
 * lost() usually closes c; the caller's enter()/leave() keeps it allocated). */
static void watch_fire(struct backend_conn *c)
{
    void (*lost)(void *) = c->lost;
    void *arg = c->lost_arg;

    watch_end(c);
    if (lost)
        lost(arg);
}

/* Take what the server sent to the idle connection. False when it is gone. */
static bool idle_input_alive(struct backend_conn *c)
{
    PGnotify *n;

    if (!PQconsumeInput(c->pg))
        return false;
    if (PQsslInUse(c->pg)) {
        /* OpenSSL may hold decrypted bytes (see read_step). */
        for (int i = 0; i < SSL_EXTRA_READS; i++)
            if (!PQconsumeInput(c->pg))
                return false;
    }
    while ((n = PQnotifies(c->pg)) != NULL)
        PQfreemem(n);   /* a pooled session has no listener for them */
    return PQstatus(c->pg) == CONNECTION_OK;
}

static void idle_step(struct backend_conn *c)
{
    if (!c->watching) {
        /* Bound to a client between statements: take what arrived; a dead
         * connection fails the next operation with CONN_LOST. */
        if (!idle_input_alive(c))
            disarm_io(c);   /* libpq knows: the next send fails (see start_send) */
        return;
    }
    if (idle_input_alive(c))
        return;   /* a notice, parameter status or notification: keep watching */
    if (PQstatus(c->pg) == CONNECTION_OK)
        c->connected = false;   /* reading failed without libpq noticing: unusable */
    watch_fire(c);
}

static void pg_watch_idle(struct backend_conn *c, void (*lost)(void *arg), void *arg)
{
    if (!c || c->closed || c->op != OP_NONE || !lost)
        return;   /* contract: only idle connections are watched */
    watch_end(c);
    c->watching = true;
    c->lost = lost;
    c->lost_arg = arg;
    if (!c->pg || !c->connected || PQstatus(c->pg) != CONNECTION_OK ||
        !arm_io(c, EV_READ, false)) {
        /* Dead already (or the socket cannot be watched): report it from the
         * loop, never from inside this call. */
        c->watch_dead = true;
        event_active(c->ev_kick, 0, 0);
    }
}

static void pg_unwatch_idle(struct backend_conn *c)
{
    if (c && !c->closed)
        watch_end(c);
}

/* ----------------------------------------------------------- completion */

static void start_op(struct backend_conn *c, enum op_kind kind, backend_done_fn done, void *arg,
                     const struct backend_sink *sink)
{
    if (c->op != OP_NONE || c->closed) {
        fprintf(stderr, "backend_pg: operation started while another is in flight\n");
        abort();   /* contract violation (backend.h: one operation at a time) */
    }
    watch_end(c);   /* any operation ends the idle watch */
    c->op = kind;
    c->done = done;
    c->arg = arg;
    if (sink)
        c->sink = *sink;
    else
        memset(&c->sink, 0, sizeof(c->sink));
    c->paused = c->canceled = c->discard = c->cols_sent = false;
    c->input_failed = c->copy_out = c->copy_refused = c->force_broken = false;
    c->cur = NULL;
    c->cur_row = 0;
    c->rows_seen = c->dropped = c->affected = 0;
    c->have_err = false;
    memset(&c->res, 0, sizeof(c->res));
}

static void end_op(struct backend_conn *c, char txstate)
{
    c->txstate = txstate;
    c->op = OP_NONE;
    c->phase = PH_IDLE;
    c->done = NULL;
    c->arg = NULL;
    memset(&c->sink, 0, sizeof(c->sink));
    c->paused = c->canceled = false;
    if (c->cur) {
        PQclear(c->cur);
        c->cur = NULL;
    }
    ticket_unref(c->ticket);
    c->ticket = NULL;
    free(c->pp.mem);
    memset(&c->pp, 0, sizeof(c->pp));
    c->simple_sql = c->begin_sql = NULL;
    if (c->pipeline && c->pg)
        (void)PQexitPipelineMode(c->pg);   /* only after a failure: the connection is broken */
    c->pipeline = c->pipe_begin = c->pipe_null = false;
    resolve_abandon(c);
    idle_io(c);
    (void)event_del(c->ev_timer);   /* fails only for an uninitialised event */
}

/* Report the operation's result. Must be the last thing the caller does
 * with c: done() may close c or start the next operation. */
static void complete(struct backend_conn *c, const struct backend_result *res)
{
    struct backend_result r = *res;
    backend_done_fn done = c->done;
    void *arg = c->arg;

    end_op(c, r.txstate);
    if (done)
        done(arg, &r);
}

static void verror(struct backend_result *r, int code, const char *sqlstate, char txstate,
                   bool broken, const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));
static void verror(struct backend_result *r, int code, const char *sqlstate, char txstate,
                   bool broken, const char *fmt, va_list ap)
{
    char msg[sizeof(r->err.message)];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    backend_result_error(r, code, sqlstate, txstate, "%s", msg);
    r->broken = broken;
}

/* Fail the operation now (inside one of our libevent callbacks). */
static void fail_now(struct backend_conn *c, int code, bool broken, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail_now(struct backend_conn *c, int code, bool broken, const char *fmt, ...)
{
    struct backend_result r;
    va_list ap;

    va_start(ap, fmt);
    verror(&r, code, "", broken ? 'I' : c->txstate, broken, fmt, ap);
    va_end(ap);
    complete(c, &r);
}

/* Report c->res from c->ev_kick (inside connect/exec/ping). */
static void defer_result(struct backend_conn *c)
{
    c->phase = PH_DEFERRED;
    disarm_io(c);
    event_active(c->ev_kick, 0, 0);
}

static void fail_later(struct backend_conn *c, int code, const char *sqlstate, bool broken,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void fail_later(struct backend_conn *c, int code, const char *sqlstate, bool broken,
                       const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    verror(&c->res, code, sqlstate, broken ? 'I' : c->txstate, broken, fmt, ap);
    va_end(ap);
    defer_result(c);
}

/* ------------------------------------------------------------- connect */

/* PQconnectStartParams with our keywords. libpq copies the values.
 * hostaddr: NULL, or one address (or "") per entry of hosts. */
static PGconn *start_connection(const struct pool_config *cfg, const char *hosts,
                                const char *hostaddr, const char *password)
{
    const char *kw[12], *val[12];
    char port[16] = "";
    int n = 0;

    if (cfg->port > 0)
        snprintf(port, sizeof(port), "%d", cfg->port);
#define KV(k, v) (kw[n] = (k), val[n] = (v), n++)
    KV("host", hosts);
    if (hostaddr)
        KV("hostaddr", hostaddr);
    KV("port", port);
    KV("dbname", cfg->dbname);
    KV("user", cfg->username);
    KV("password", password);
    KV("sslmode", cfg->ssl_mode && *cfg->ssl_mode ? cfg->ssl_mode : "disable");
    KV("application_name", "dbpoold");
    KV("client_encoding", "UTF8");     /* row text is always UTF-8 */
    KV("gssencmode", "disable");       /* no GSSAPI credential probing on the loop */
#undef KV
    kw[n] = val[n] = NULL;
    return PQconnectStartParams(kw, val, 0);
}

static void drop_pg(struct backend_conn *c)
{
    disarm_io(c);
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    c->connected = false;
}

/* Append to the NUL-terminated string in dst (truncating). */
static void append(char *dst, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *dst, size_t size, const char *fmt, ...)
{
    size_t used = strlen(dst);
    va_list ap;

    if (used + 1 >= size)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(dst + used, size - used, fmt, ap);   /* truncation is fine */
    va_end(ap);
}

/* libpq's error message. With resolved names (see "NAME RESOLUTION"): the
 * first resolution error goes in front, and the addresses used go after it,
 * since libpq names a host given by hostaddr by its address only. */
static void connect_error_message(const struct backend_conn *c, char *dst, size_t size)
{
    const struct resolve_job *job = c->resolve;
    char libpq[sizeof(c->res.err.message)];
    bool failed = false;
    int shown = 0;

    dst[0] = '\0';
    for (size_t i = 0; job && i < job->n && !failed; i++) {
        if (job->e[i].lookup && job->e[i].gai != 0) {
            entry_error(&job->e[i], dst, size);
            append(dst, size, "; ");
            failed = true;
        }
    }
    conn_error_message(c, libpq, sizeof(libpq), "connection failed");
    append(dst, size, "%s", libpq);
    for (size_t i = 0; job && i < job->n; i++)
        if (job->e[i].lookup && job->e[i].gai == 0)
            append(dst, size, "%s%s is %s", shown++ ? ", " : " (", job->e[i].name,
                   job->e[i].addr);
    if (shown)
        append(dst, size, ")");
}

static void connect_failed(struct backend_conn *c)
{
    char msg[sizeof(c->res.err.message)];

    connect_error_message(c, msg, sizeof(msg));
    drop_pg(c);
    fail_now(c, DBPOOL_E_UNAVAILABLE, true, "%s", msg);
}

static void connect_succeeded(struct backend_conn *c)
{
    const char *version = PQparameterStatus(c->pg, "server_version");
    struct backend_result r;

    disarm_io(c);
    c->connected = true;
    if (!c->sc && c->cfg->statement_cache_size > 0)
        c->sc = stmt_cache_new((unsigned)c->cfg->statement_cache_size);   /* NULL: no caching */
    snprintf(c->server_info, sizeof(c->server_info), "PostgreSQL %s", version ? version : "");
    backend_result_ok(&r, 'I');
    complete(c, &r);
}

static void connect_timed_out(struct backend_conn *c)
{
    bool resolving = c->phase == PH_RESOLVING;

    drop_pg(c);
    fail_now(c, DBPOOL_E_UNAVAILABLE, true, "connection to %s:%d timed out after %llu ms%s",
             c->cfg->host, c->cfg->port, (unsigned long long)c->cfg->timeout_ms,
             resolving ? " (resolving the host name)" : "");
}

/* One PQconnectPoll step, then wait for what libpq asks for. */
static void connect_step(struct backend_conn *c)
{
    short what;

    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_OK:
        connect_succeeded(c);
        return;
    case PGRES_POLLING_FAILED:
        connect_failed(c);
        return;
    case PGRES_POLLING_READING:
        what = EV_READ;
        break;
    default:   /* PGRES_POLLING_WRITING (ACTIVE is unused) */
        what = EV_WRITE;
        break;
    }
    if (!arm_io(c, what, true)) {
        drop_pg(c);
        fail_now(c, DBPOOL_E_UNAVAILABLE, true, "connection to %s:%d failed: cannot watch its socket",
                 c->cfg->host, c->cfg->port);
    }
}

/* Start libpq on hosts (and hostaddr, see start_connection). No DNS
 * happens here: every name in hosts has its address in hostaddr. */
static void begin_connection(struct backend_conn *c, const char *hosts, const char *hostaddr)
{
    char err[sizeof(c->res.err.message)];
    /* passwordFile was read at config load into password: no file I/O here */
    const char *password = c->cfg->password && *c->cfg->password ? c->cfg->password : NULL;

    c->pg = start_connection(c->cfg, hosts, hostaddr, password);
    if (!c->pg) {
        fail_later(c, DBPOOL_E_INTERNAL, "", true, "cannot connect to PostgreSQL: out of memory");
        return;
    }
    (void)PQsetNoticeReceiver(c->pg, on_notice, c);   /* returns the previous one */
    if (PQstatus(c->pg) == CONNECTION_BAD || PQsetnonblocking(c->pg, 1) != 0 ||
        !arm_io(c, EV_WRITE, true)) {
        connect_error_message(c, err, sizeof(err));
        drop_pg(c);
        fail_later(c, DBPOOL_E_UNAVAILABLE, "", true, "%s", err);
        return;
    }
    c->phase = PH_CONNECTING;   /* libpq: act as if PGRES_POLLING_WRITING */
}

/* The helper has resolved the names: connect to the hosts that resolved. */
static void resolved(struct backend_conn *c)
{
    const struct resolve_job *job = c->resolve;
    const struct resolve_entry *failed = NULL;
    size_t hosts_size = strlen(c->cfg->host) + 1;
    char *hosts = malloc(hosts_size + job->n * ADDR_MAX);
    char *addrs = hosts + hosts_size;
    char msg[sizeof(c->res.err.message)];
    size_t nh = 0, na = 0, kept = 0;

    if (!hosts) {
        fail_now(c, DBPOOL_E_INTERNAL, true, "cannot connect to PostgreSQL: out of memory");
        return;
    }
    for (size_t i = 0; i < job->n; i++) {
        const struct resolve_entry *e = &job->e[i];
        size_t len = strlen(e->name), alen = strlen(e->addr);

        if (e->lookup && e->gai != 0) {
            if (!failed)
                failed = e;
            continue;
        }
        if (kept++ > 0) {
            hosts[nh++] = ',';
            addrs[na++] = ',';
        }
        memcpy(hosts + nh, e->name, len);
        nh += len;
        memcpy(addrs + na, e->addr, alen);   /* "" for an entry that is not a name */
        na += alen;
    }
    hosts[nh] = addrs[na] = '\0';
    if (kept == 0 && failed) {
        entry_error(failed, msg, sizeof(msg));
        free(hosts);
        fail_now(c, DBPOOL_E_UNAVAILABLE, true, "%s", msg);
        return;
    }
    begin_connection(c, hosts, addrs);
    free(hosts);
}

static void on_resolved(evutil_socket_t fd, short what, void *arg)
{
    struct backend_conn *c = arg;
    bool finished = false;

    (void)fd;
    (void)what;
    enter(c);
    if (c->phase == PH_RESOLVING && c->resolve) {
        must(pthread_mutex_lock(&c->resolve->mu), "pthread_mutex_lock");
        finished = c->resolve->finished;
        must(pthread_mutex_unlock(&c->resolve->mu), "pthread_mutex_unlock");
    }
    if (finished)
        resolved(c);
    leave(c);
}

/* Resolve the names in cfg->host on a helper thread; on_resolved goes on.
 * 0, or an error number. */
static int resolve_start(struct backend_conn *c)
{
    struct resolve_job *job;
    int rc;

    if (!c->ev_resolved && !(c->ev_resolved = event_new(c->base, -1, 0, on_resolved, c)))
        return ENOMEM;
    if (!(job = job_new(c->cfg->host)))
        return ENOMEM;
    job->ev = c->ev_resolved;
    job->refs = 2;   /* the connection's and the helper's */
    rc = helper_start(resolve_main, job);
    if (rc != 0) {
        job->refs = 1;
        job_unref(job);
        return rc;
    }
    c->resolve = job;
    c->phase = PH_RESOLVING;
    return 0;
}

static void pg_connect(struct backend_conn *c, backend_done_fn done, void *arg)
{
    struct timeval tv;
    int rc;

    start_op(c, OP_CONNECT, done, arg, NULL);
    if (c->pg) {
        fail_later(c, DBPOOL_E_INTERNAL, "", false, "connect called on an open connection");
        return;
    }
    if (c->cfg->timeout_ms > 0) {   /* covers name resolution too */
        timeval_ms(&tv, c->cfg->timeout_ms);
        if (event_add(c->ev_timer, &tv) != 0) {
            fail_later(c, DBPOOL_E_INTERNAL, "", true, "cannot arm the connect timer");
            return;
        }
    }
    if (!hosts_need_lookup(c->cfg->host)) {
        begin_connection(c, c->cfg->host, NULL);
        return;
    }
    rc = resolve_start(c);
    if (rc != 0)
        fail_later(c, DBPOOL_E_INTERNAL, "", true, "cannot resolve host %s: %s", c->cfg->host,
                   strerror(rc));
}

/* ----------------------------------------------------------- parameters */


/* Network byte order, as PostgreSQL's binary int8 and float8 want it. */
static void put_be64(char *dst, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        dst[i] = (char)(v & 0xff);
        v >>= 8;
    }
}

/* Bytes of text one parameter needs; false (with *r filled) when it cannot
 * be sent. */
static bool param_size(const dbpool_value *v, size_t i, size_t *size, struct backend_result *r,
                       char txstate)
{
    switch (v->type) {
    case DBPOOL_NULL:
    case DBPOOL_BLOB:
        if (v->type == DBPOOL_BLOB && v->u.s.len > INT_MAX) {
            backend_result_error(r, DBPOOL_E_SQL, "54000", txstate,
                                 "parameter $%zu: BLOB is larger than 2 GiB", i + 1);
            return false;
        }
        *size = 0;
        return true;
    case DBPOOL_INT64: *size = 8; return true;
    case DBPOOL_FLOAT64: *size = 8; return true;
    case DBPOOL_BOOL: *size = 1; return true;
    case DBPOOL_TEXT:
        if (v->u.s.len > (size_t)INT_MAX - 1) {
            backend_result_error(r, DBPOOL_E_SQL, "54000", txstate,
                                 "parameter $%zu: TEXT is larger than 2 GiB", i + 1);
            return false;
        }
        if (v->u.s.len > 0 && memchr(v->u.s.ptr, '\0', v->u.s.len)) {
            backend_result_error(r, DBPOOL_E_SQL, "22021", txstate,
                                 "parameter $%zu: PostgreSQL text cannot contain NUL bytes; "
                                 "send binary data as a BLOB", i + 1);
            return false;
        }
        *size = v->u.s.len + 1;
        return true;
    }
    backend_result_error(r, DBPOOL_E_INTERNAL, "", txstate,
                         "parameter $%zu has unknown type %d", i + 1, (int)v->type);
    return false;
}

/* Fill slot i; text goes to *p, which advances. */
static void param_fill(struct pg_params *pp, size_t i, const dbpool_value *v, char **p)
{
    size_t used = 0;

    pp->values[i] = NULL;
    pp->lengths[i] = 0;
    pp->formats[i] = 0;
    pp->types[i] = 0;   /* unknown: the server infers the type from context */
    switch (v->type) {
    case DBPOOL_NULL:
        return;
    case DBPOOL_INT64:
        pp->types[i] = OID_INT8;
        put_be64(*p, (uint64_t)v->u.i);
        used = 8;
        break;
    case DBPOOL_FLOAT64: {
        uint64_t bits;
        pp->types[i] = OID_FLOAT8;
        memcpy(&bits, &v->u.f, sizeof(bits));
        put_be64(*p, bits);
        used = 8;
        break;
    }
    case DBPOOL_BOOL:
        pp->types[i] = OID_BOOL;
        **p = v->u.b ? 1 : 0;
        used = 1;
        break;
    case DBPOOL_TEXT:
        if (v->u.s.len > 0)
            memcpy(*p, v->u.s.ptr, v->u.s.len);
        (*p)[v->u.s.len] = '\0';
        used = v->u.s.len + 1;
        break;
    case DBPOOL_BLOB:
        pp->types[i] = OID_BYTEA;
        pp->values[i] = v->u.s.len > 0 ? v->u.s.ptr : "";   /* NULL would mean SQL NULL */
        pp->lengths[i] = (int)v->u.s.len;
        pp->formats[i] = 1;   /* binary: the bytes as they are */
        return;
    }
    pp->values[i] = *p;
    if (v->type != DBPOOL_TEXT) {
        pp->lengths[i] = (int)used;
        pp->formats[i] = 1;   /* binary: no formatting here, no parsing there */
    }
    *p += used;
}

static bool params_build(struct pg_params *pp, const char *sql, size_t sql_len,
                         const dbpool_value *params, size_t n, struct backend_result *r,
                         char txstate)
{
    size_t text = 0, size;
    char *p;

    memset(pp, 0, sizeof(*pp));
    if (n > PG_MAX_PARAMS) {
        backend_result_error(r, DBPOOL_E_SQL, "54000", txstate,
                             "too many parameters: %zu (PostgreSQL accepts at most %d)", n,
                             PG_MAX_PARAMS);
        return false;
    }
    if (sql_len > 0 && memchr(sql, '\0', sql_len)) {
        backend_result_error(r, DBPOOL_E_SQL, "42601", txstate,
                             "statement text contains a NUL byte");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        size_t s;
        if (!param_size(&params[i], i, &s, r, txstate))
            return false;
        text += s;
    }
    size = n * (sizeof(char *) + 2 * sizeof(int) + sizeof(Oid)) + text + sql_len + 1;
    pp->mem = malloc(size);
    if (!pp->mem) {
        backend_result_error(r, DBPOOL_E_INTERNAL, "", txstate,
                             "out of memory preparing the statement");
        return false;
    }
    pp->values = pp->mem;
    pp->lengths = (int *)(pp->values + n);
    pp->formats = pp->lengths + n;
    pp->types = (Oid *)(pp->formats + n);
    p = (char *)(pp->types + n);
    if (sql_len > 0)
        memcpy(p, sql, sql_len);
    p[sql_len] = '\0';
    pp->sql = p;
    pp->sql_len = sql_len;
    pp->n = n;
    p += sql_len + 1;
    for (size_t i = 0; i < n; i++)
        param_fill(pp, i, &params[i], &p);
    return true;
}

/* -------------------------------------------------------- result values */

static const struct type_name {
    Oid oid;
    const char *name;
} type_names[] = {   /* sorted by oid (checked by the tests against pg_type) */
    { 16, "bool" }, { 17, "bytea" }, { 18, "char" }, { 19, "name" }, { 20, "int8" },
    { 21, "int2" }, { 23, "int4" }, { 24, "regproc" }, { 25, "text" }, { 26, "oid" },
    { 27, "tid" }, { 28, "xid" }, { 114, "json" }, { 142, "xml" }, { 143, "_xml" },
    { 199, "_json" }, { 600, "point" }, { 650, "cidr" }, { 651, "_cidr" }, { 700, "float4" },
    { 701, "float8" }, { 705, "unknown" }, { 774, "macaddr8" }, { 790, "money" },
    { 791, "_money" }, { 829, "macaddr" }, { 869, "inet" }, { 1000, "_bool" },
    { 1001, "_bytea" }, { 1002, "_char" }, { 1003, "_name" }, { 1005, "_int2" },
    { 1007, "_int4" }, { 1009, "_text" }, { 1014, "_bpchar" }, { 1015, "_varchar" },
    { 1016, "_int8" }, { 1021, "_float4" }, { 1022, "_float8" }, { 1028, "_oid" },
    { 1040, "_macaddr" }, { 1041, "_inet" }, { 1042, "bpchar" }, { 1043, "varchar" },
    { 1082, "date" }, { 1083, "time" }, { 1114, "timestamp" }, { 1115, "_timestamp" },
    { 1182, "_date" }, { 1183, "_time" }, { 1184, "timestamptz" }, { 1185, "_timestamptz" },
    { 1186, "interval" }, { 1187, "_interval" }, { 1231, "_numeric" }, { 1266, "timetz" },
    { 1270, "_timetz" }, { 1560, "bit" }, { 1561, "_bit" }, { 1562, "varbit" },
    { 1563, "_varbit" }, { 1700, "numeric" }, { 2205, "regclass" }, { 2206, "regtype" },
    { 2249, "record" }, { 2278, "void" }, { 2950, "uuid" }, { 2951, "_uuid" },
    { 3220, "pg_lsn" }, { 3614, "tsvector" }, { 3615, "tsquery" }, { 3802, "jsonb" },
    { 3807, "_jsonb" }, { 3904, "int4range" }, { 3906, "numrange" }, { 3908, "tsrange" },
    { 3910, "tstzrange" }, { 3912, "daterange" }, { 3926, "int8range" }, { 4072, "jsonpath" },
    { 5069, "xid8" },
};

static int type_name_cmp(const void *key, const void *elem)
{
    Oid oid = *(const Oid *)key;
    Oid other = ((const struct type_name *)elem)->oid;

    return oid < other ? -1 : oid > other;
}

/* Declared type name; user types (enums, domains, extensions) have no
 * built-in name and are reported as "oid:<n>" (written into buf). */
static const char *type_name(Oid oid, char *buf, size_t size)
{
    const struct type_name *t = bsearch(&oid, type_names, sizeof(type_names) / sizeof(type_names[0]),
                                        sizeof(type_names[0]), type_name_cmp);

    if (t)
        return t->name;
    snprintf(buf, size, "oid:%u", (unsigned)oid);
    return buf;
}

static bool ensure_cols(struct backend_conn *c, size_t n)
{
    dbpool_column *cols;
    char (*decl)[DECL_LEN];
    dbpool_value *vals;

    if (n <= c->cols_cap)
        return true;
    cols = realloc(c->cols, n * sizeof(*cols));
    if (cols)
        c->cols = cols;
    decl = realloc(c->decl, n * sizeof(*decl));
    if (decl)
        c->decl = decl;
    vals = realloc(c->vals, n * sizeof(*vals));
    if (vals)
        c->vals = vals;
    if (!cols || !decl || !vals)
        return false;
    c->cols_cap = c->vals_cap = n;
    return true;
}

static bool ensure_scratch(struct backend_conn *c, size_t n)
{
    unsigned char *p;

    if (n <= c->scratch_cap)
        return true;
    p = realloc(c->scratch, n);
    if (!p)
        return false;
    c->scratch = p;
    c->scratch_cap = n;
    return true;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* bytea text output, hex ("\x0a0b") or escape ("a\\\012") format, into out
 * (room for len bytes). Returns the decoded length, or -1 if malformed. */
static long decode_bytea(const char *s, size_t len, unsigned char *out)
{
    size_t n = 0, i;

    if (len >= 2 && s[0] == '\\' && s[1] == 'x') {
        if (len % 2 != 0)
            return -1;
        for (i = 2; i < len; i += 2) {
            int hi = hexval(s[i]), lo = hexval(s[i + 1]);
            if (hi < 0 || lo < 0)
                return -1;
            out[n++] = (unsigned char)(hi << 4 | lo);
        }
        return (long)n;
    }
    for (i = 0; i < len;) {
        if (s[i] != '\\') {
            out[n++] = (unsigned char)s[i++];
        } else if (i + 1 < len && s[i + 1] == '\\') {
            out[n++] = '\\';
            i += 2;
        } else if (i + 3 < len && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
                   s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
            out[n++] = (unsigned char)((s[i + 1] - '0') << 6 | (s[i + 2] - '0') << 3 | (s[i + 3] - '0'));
            i += 4;
        } else {
            return -1;
        }
    }
    return (long)n;
}

/* One value in text format, typed by its column's OID. */
static void convert_value(const char *s, size_t len, Oid type, unsigned char **scratch,
                          dbpool_value *v)
{
    long n;

    switch (type) {
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
    case OID_OID:
        v->type = DBPOOL_INT64;
        v->u.i = strtoll(s, NULL, 10);
        return;
    case OID_FLOAT4:
    case OID_FLOAT8:
        v->type = DBPOOL_FLOAT64;
        v->u.f = strtod(s, NULL);   /* also "NaN", "Infinity", "-Infinity" */
        return;
    case OID_BOOL:
        v->type = DBPOOL_BOOL;
        v->u.b = s[0] == 't';
        return;
    case OID_BYTEA:
        n = decode_bytea(s, len, *scratch);
        if (n >= 0) {
            v->type = DBPOOL_BLOB;
            v->u.s.ptr = (const char *)*scratch;
            v->u.s.len = (size_t)n;
            *scratch += n;
            return;
        }
        break;   /* not bytea text after all: pass it on as text */
    default:
        break;
    }
    v->type = DBPOOL_TEXT;
    v->u.s.ptr = s;
    v->u.s.len = len;
}

/* c->vals for row `row` of r. False when out of memory. */
static bool build_row(struct backend_conn *c, const PGresult *r, int row)
{
    int ncols = PQnfields(r);
    size_t need = 0;
    unsigned char *scratch;

    if (!ensure_cols(c, (size_t)ncols))
        return false;
    for (int i = 0; i < ncols; i++)
        if (PQftype(r, i) == OID_BYTEA && !PQgetisnull(r, row, i))
            need += (size_t)PQgetlength(r, row, i);
    if (!ensure_scratch(c, need))
        return false;
    scratch = c->scratch;
    for (int i = 0; i < ncols; i++) {
        dbpool_value *v = &c->vals[i];
        if (PQgetisnull(r, row, i)) {
            v->type = DBPOOL_NULL;
            v->u.i = 0;
            continue;
        }
        convert_value(PQgetvalue(r, row, i), (size_t)PQgetlength(r, row, i), PQftype(r, i),
                      &scratch, v);
    }
    return true;
}

/* ---------------------------------------------------------------- results */

static void note_error(struct backend_conn *c, int code, const char *sqlstate, const char *msg)
{
    if (c->have_err)
        return;   /* the first error is the one that matters */
    backend_result_error(&c->res, code, sqlstate, 'I', "%s", msg);
    c->have_err = true;
}

static void note_result_error(struct backend_conn *c, const PGresult *r)
{
    const char *sqlstate = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    char msg[sizeof(c->res.err.message)];

    tidy_message(msg, sizeof(msg), primary ? primary : PQresultErrorMessage(r));
    if (!msg[0])
        conn_error_message(c, msg, sizeof(msg), "unknown error");
    /* libpq builds well-formed messages, so the server's protocol-violation
     * error on our Bind means "bind message supplies N parameters, but
     * prepared statement requires M": the protocol's 07001. */
    if (sqlstate && strcmp(sqlstate, "08P01") == 0 && c->op == OP_EXEC &&
        PQstatus(c->pg) == CONNECTION_OK)
        sqlstate = "07001";
    note_error(c, sqlstate && strcmp(sqlstate, "57014") == 0 ? DBPOOL_E_CANCELED : DBPOOL_E_SQL,
               sqlstate, msg);
    /* "cached plan must not change result type": told apart by where the
     * server raised it, which (unlike the message) is not translated. */
    const char *fn = PQresultErrorField(r, PG_DIAG_SOURCE_FUNCTION);
    if (sqlstate && strcmp(sqlstate, "0A000") == 0 && fn && strcmp(fn, "RevalidateCachedQuery") == 0)
        c->stale_plan = true;
}

static int64_t cmd_tuples(PGresult *r, int64_t fallback)
{
    const char *s = PQcmdTuples(r);

    return *s ? strtoll(s, NULL, 10) : fallback;
}

static void mark_lost(struct backend_conn *c, struct backend_result *r)
{
    char msg[sizeof(r->err.message)];

    if (r->ok || !r->err.message[0]) {
        conn_error_message(c, msg, sizeof(msg), "server closed the connection unexpectedly");
        backend_result_error(r, DBPOOL_E_CONN_LOST, "", 'I', "%s", msg);
    }
    r->ok = false;
    r->err.code = DBPOOL_E_CONN_LOST;
    r->broken = true;
    r->txstate = 'I';   /* the server aborted any transaction */
}

static bool next_stage(struct backend_conn *c);
static bool stale_statement(struct backend_conn *c, char tx);
static bool pipeline_next(struct backend_conn *c);
static void pipeline_end(struct backend_conn *c);
static void note_session_reset(struct backend_conn *c);

/* DDL took effect once its transaction is over (committed or not: a
 * rolled-back one just costs a re-prepare): tell the pool, which clears
 * the statement cache of every connection (see pg_schema_changed). */
static void note_schema_change(struct backend_conn *c, struct backend_result *r)
{
    if (r->ok && c->ddl)
        c->ddl_pending = true;
    if (c->ddl_pending && (r->txstate == 'I' || r->broken)) {
        c->ddl_pending = false;
        r->schema_changed = true;
    }
}

/* PQgetResult returned NULL: the statement (or a stage before it) is over. */
static void finish_results(struct backend_conn *c)
{
    struct backend_result r;
    struct timeval tv;
    bool unknown;
    char tx = tx_char(PQtransactionStatus(c->pg), &unknown);

    if (c->op == OP_EXEC && !unknown) {
        if (c->stage != ST_EXEC && next_stage(c))
            return;
        if (stale_statement(c, tx))
            return;
    }
    if (c->have_err) {
        r = c->res;
    } else {
        backend_result_ok(&r, tx);
        r.rows_affected = c->affected;
    }
    if (c->copy_refused)
        backend_result_error(&r, DBPOOL_E_SQL, "0A000", tx,
                             "COPY FROM STDIN / TO STDOUT is not supported through dbpoold");
    r.txstate = tx;
    if (PQstatus(c->pg) == CONNECTION_BAD || unknown || c->force_broken || c->input_failed) {
        mark_lost(c, &r);
    } else if (r.ok && c->canceled && c->dropped > 0) {
        backend_result_error(&r, DBPOOL_E_CANCELED, "57014", tx,
                             "canceling statement due to user request (the statement had already "
                             "completed; %lld rows were not delivered)", (long long)c->dropped);
    }
    if (c->op == OP_EXEC && r.ok)
        note_session_reset(c);
    if (c->op == OP_EXEC)
        note_schema_change(c, &r);
    if (c->op == OP_EXEC && c->verdict != SC_UNNAMED && c->stage == ST_EXEC)
        r.stmt_cache = c->verdict == SC_PREPARED ? BR_CACHED : BR_PREPARED;
    if (c->op == OP_PING && !r.ok) {
        r.err.code = DBPOOL_E_CONN_LOST;
        r.broken = true;
    }
    if (c->ticket && !atomic_load(&c->ticket->delivered)) {
        c->res = r;
        c->phase = PH_CANCEL_WAIT;
        c->cancel_polls = CANCEL_WAIT_MS / CANCEL_POLL_MS;
        disarm_io(c);
        timeval_ms(&tv, CANCEL_POLL_MS);
        if (event_add(c->ev_timer, &tv) == 0)
            return;
    }
    complete(c, &r);
}

static void cancel_wait_step(struct backend_conn *c)
{
    struct timeval tv;
    struct backend_result r;

    if (!atomic_load(&c->ticket->delivered) && --c->cancel_polls > 0) {
        timeval_ms(&tv, CANCEL_POLL_MS);
        if (event_add(c->ev_timer, &tv) == 0)
            return;
    }
    r = c->res;
    complete(c, &r);
}

static bool send_columns(struct backend_conn *c, const PGresult *r)
{
    int n = PQnfields(r);

    if (!ensure_cols(c, (size_t)n)) {
        note_error(c, DBPOOL_E_INTERNAL, "", "out of memory reading a result");
        c->discard = true;
        return true;
    }
    for (int i = 0; i < n; i++) {
        c->cols[i].name = PQfname(r, i);
        c->cols[i].decl_type = type_name(PQftype(r, i), c->decl[i], DECL_LEN);
    }
    if (c->sink.columns)
        c->sink.columns(c->arg, (size_t)n, c->cols);
    return !c->closed;
}

/* Hand the rows of c->cur to the sink. False when delivery stops here
 * (paused or closed); true when c->cur is consumed (and cleared). */
static bool deliver_rows(struct backend_conn *c)
{
    PGresult *r = c->cur;
    int n = PQntuples(r);

    while (c->cur_row < n) {
        bool more;
        if (c->canceled || c->discard) {
            c->dropped += n - c->cur_row;
            c->cur_row = n;
            break;
        }
        if (!build_row(c, r, c->cur_row)) {
            note_error(c, DBPOOL_E_INTERNAL, "", "out of memory reading a row");
            c->discard = true;
            continue;
        }
        c->cur_row++;
        more = c->sink.row ? c->sink.row(c->arg, (size_t)PQnfields(r), c->vals) : true;
        if (c->closed)
            return false;
        if (!more && !c->canceled) {
            c->paused = true;
            disarm_io(c);   /* stop reading: the server blocks once the buffers are full */
            return false;
        }
    }
    PQclear(r);
    c->cur = NULL;
    return true;
}

static void flush_step(struct backend_conn *c, bool in_callback);
static void arm_cancel_resend(struct backend_conn *c);
static void cancel_resend(struct backend_conn *c);

/* COPY FROM STDIN: end it at once with an error so the server aborts it. */
static bool refuse_copy_in(struct backend_conn *c)
{
    char msg[256];

    c->copy_refused = true;
    if (PQputCopyEnd(c->pg, "COPY FROM STDIN is not supported through dbpoold") != 1) {
        conn_error_message(c, msg, sizeof(msg), "cannot end COPY");
        fail_now(c, DBPOOL_E_CONN_LOST, true, "%s", msg);
        return false;
    }
    c->phase = PH_SENDING;
    flush_step(c, true);
    return false;   /* flush_step carries on */
}

/* COPY TO STDOUT: read and drop the data. False when waiting for input. */
static bool drain_copy_out(struct backend_conn *c)
{
    for (;;) {
        char *buf = NULL;
        int n = PQgetCopyData(c->pg, &buf, 1);
        if (n > 0) {
            PQfreemem(buf);
            continue;
        }
        if (n == 0 && !c->input_failed) {
            if (!arm_io(c, EV_READ, false)) {
                fail_now(c, DBPOOL_E_INTERNAL, true, "cannot watch the PostgreSQL socket");
                return false;
            }
            return false;
        }
        c->copy_out = false;   /* -1: done, -2: error; PQgetResult tells */
        return true;
    }
}

/* Take one PGresult. False when processing must stop here (closed, or
 * someone else carries on). */
static bool take_result(struct backend_conn *c, PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);

    switch (st) {
    case PGRES_SINGLE_TUPLE:
    case PGRES_TUPLES_OK:
        c->cur = r;   /* owned by c from here (conn_free clears it) */
        c->cur_row = 0;
        c->rows_seen += PQntuples(r);
        if (st == PGRES_TUPLES_OK)
            c->affected = cmd_tuples(r, c->rows_seen);
        if (!c->cols_sent && !c->canceled) {
            c->cols_sent = true;
            return send_columns(c, r);
        }
        return true;
    case PGRES_COMMAND_OK:
        c->affected = cmd_tuples(r, 0);
        break;
    case PGRES_EMPTY_QUERY:
    case PGRES_PIPELINE_ABORTED:   /* skipped after a failed BEGIN: its error is noted */
        break;
    case PGRES_COPY_IN:
        PQclear(r);
        return refuse_copy_in(c);
    case PGRES_COPY_OUT:
        c->copy_out = c->copy_refused = true;
        break;
    case PGRES_FATAL_ERROR:
    case PGRES_NONFATAL_ERROR:
    case PGRES_BAD_RESPONSE:
        note_result_error(c, r);
        break;
    default:   /* COPY BOTH (replication), pipeline states: not ours */
        note_error(c, DBPOOL_E_INTERNAL, "", "unexpected PostgreSQL result status");
        c->force_broken = true;
        break;
    }
    PQclear(r);
    return true;
}

/* Process everything libpq holds, until it needs more input, the sink
 * pauses, or the statement is over. */
static void pump(struct backend_conn *c)
{
    for (;;) {
        PGresult *r;

        if (c->cur && !deliver_rows(c))
            return;
        if (c->copy_out && !drain_copy_out(c))
            return;
        if (PQisBusy(c->pg)) {
            if (c->input_failed) {
                char msg[sizeof(c->res.err.message)];
                conn_error_message(c, msg, sizeof(msg), "server closed the connection unexpectedly");
                fail_now(c, DBPOOL_E_CONN_LOST, true, "%s", msg);
                return;
            }
            if (!arm_io(c, EV_READ, false))
                fail_now(c, DBPOOL_E_INTERNAL, true, "cannot watch the PostgreSQL socket");
            return;
        }
        r = PQgetResult(c->pg);
        if (!r && c->pipeline) {
            if (pipeline_next(c))
                continue;
            finish_results(c);   /* the pipeline cannot go on: reported as lost */
            return;
        }
        c->pipe_null = false;
        if (r && c->pipeline && PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            pipeline_end(c);
            r = NULL;
        }
        if (!r) {
            finish_results(c);
            return;
        }
        if (!take_result(c, r))
            return;
    }
}

/* ---------------------------------------------------------- sending, I/O */

/* Push the queued statement out. In a callback, a finished send goes on to
 * read what libpq may already hold; from exec() it waits for EV_READ. */
static void flush_step(struct backend_conn *c, bool in_callback)
{
    char msg[sizeof(c->res.err.message)];
    int rc = PQflush(c->pg);

    if (rc < 0) {
        conn_error_message(c, msg, sizeof(msg), "could not send data to server");
        if (in_callback)
            fail_now(c, DBPOOL_E_CONN_LOST, true, "%s", msg);
        else
            fail_later(c, DBPOOL_E_CONN_LOST, "", true, "%s", msg);
        return;
    }
    if (rc == 0) {
        c->phase = PH_READING;
        if (c->canceled && !c->ticket) {
            c->ticket = cancel_start(c->pg);
            arm_cancel_resend(c);
        }
    }
    if (!arm_io(c, rc == 0 ? EV_READ : EV_READ | EV_WRITE, false)) {
        if (in_callback)
            fail_now(c, DBPOOL_E_INTERNAL, true, "cannot watch the PostgreSQL socket");
        else
            fail_later(c, DBPOOL_E_INTERNAL, "", true, "cannot watch the PostgreSQL socket");
        return;
    }
    if (rc == 0 && in_callback)
        pump(c);
}

static void send_step(struct backend_conn *c, short what)
{
    if ((what & EV_READ) && !PQconsumeInput(c->pg))
        c->input_failed = true;
    flush_step(c, true);
}

/* With SSL, OpenSSL may hold decrypted bytes that libpq has not taken yet
 * (its buffer had no room), and the socket then never becomes readable
 * for them; a few more PQconsumeInput calls while a message is incomplete
 * pick them up (each costs one recv when nothing is there). */
static void read_step(struct backend_conn *c)
{
    if (!PQconsumeInput(c->pg)) {
        c->input_failed = true;
    } else if (PQsslInUse(c->pg)) {
        for (int i = 0; i < SSL_EXTRA_READS && PQisBusy(c->pg); i++) {
            if (!PQconsumeInput(c->pg)) {
                c->input_failed = true;
                break;
            }
        }
    }
    pump(c);
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    struct backend_conn *c = arg;

    (void)fd;
    enter(c);
    switch (c->phase) {
    case PH_CONNECTING: connect_step(c); break;
    case PH_SENDING: send_step(c, what); break;
    case PH_READING: read_step(c); break;
    case PH_IDLE: idle_step(c); break;
    default: disarm_io(c); break;   /* nothing awaited */
    }
    leave(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct backend_conn *c = arg;

    (void)fd;
    (void)what;
    enter(c);
    if (c->phase == PH_CONNECTING || c->phase == PH_RESOLVING)
        connect_timed_out(c);
    else if (c->phase == PH_CANCEL_WAIT)
        cancel_wait_step(c);
    else if (c->phase == PH_READING && c->canceled)
        cancel_resend(c);
    leave(c);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct backend_conn *c = arg;
    struct backend_result r;

    (void)fd;
    (void)what;
    enter(c);
    if (c->phase == PH_DEFERRED) {
        r = c->res;
        complete(c, &r);
    } else if (c->phase == PH_READING && !c->paused) {
        pump(c);   /* resume() or cancel() of a paused stream */
    } else if (c->phase == PH_IDLE && c->watching && c->watch_dead) {
        watch_fire(c);   /* watch_idle() found the connection dead */
    }
    leave(c);
}

/* -------------------------------------------------------- the operations */

/* The daemon's own statement, after the BEGIN that opens the transaction
 * when there is one: "BEGIN; SAVEPOINT dbpool_sp_1" is one Query message. */
static int send_simple(struct backend_conn *c)
{
    char buf[256];

    if (!c->begin_sql)
        return PQsendQuery(c->pg, c->simple_sql);
    if ((size_t)snprintf(buf, sizeof(buf), "%s; %s", c->begin_sql, c->simple_sql) >= sizeof(buf))
        return 0;   /* the daemon's statements are short */
    c->begin_sql = NULL;
    return PQsendQuery(c->pg, buf);
}

/* The statement itself; a pending BEGIN goes first in the same write, in
 * libpq's pipeline mode (BEGIN, statement, Sync: one round trip). */
static int send_exec(struct backend_conn *c)
{
    const struct pg_params *pp = &c->pp;
    int n = (int)pp->n, rc;

    if (c->simple_sql)
        return send_simple(c);
    if (c->begin_sql) {
        if (!PQenterPipelineMode(c->pg))
            return 0;
        c->pipeline = c->pipe_begin = true;
        if (!PQsendQueryParams(c->pg, c->begin_sql, 0, NULL, NULL, NULL, NULL, 0))
            return 0;
        c->begin_sql = NULL;
    }
    if (c->verdict != SC_UNNAMED)
        rc = PQsendQueryPrepared(c->pg, c->ref.name, n, n ? pp->values : NULL,
                                 n ? pp->lengths : NULL, n ? pp->formats : NULL, 0);
    else
        rc = PQsendQueryParams(c->pg, pp->sql, n, n ? pp->types : NULL, n ? pp->values : NULL,
                               n ? pp->lengths : NULL, n ? pp->formats : NULL, 0);
    if (rc && c->pipeline)
        rc = PQpipelineSync(c->pg);
    return rc;
}

/* Queue the current stage's message on libpq; its return value. The
 * daemon's own statements (BQ_INTERNAL) go over the simple query protocol:
 * one Query message instead of Parse/Bind/Describe/Execute/Sync. */
static int queue_stage(struct backend_conn *c)
{
    const struct pg_params *pp = &c->pp;

    switch (c->stage) {
    case ST_ROLLBACK:
        return PQsendQuery(c->pg, "ROLLBACK");
    case ST_DEALLOC:
        return PQsendQuery(c->pg, stmt_cache_garbage(c->sc));
    case ST_BEGIN:
        return PQsendQuery(c->pg, c->begin_sql);
    case ST_PREPARE:
        return PQsendPrepare(c->pg, c->ref.name, pp->sql, (int)pp->n, pp->n ? pp->types : NULL);
    case ST_EXEC:
        break;
    }
    return send_exec(c);
}

/* Send the current stage; from exec() (errors are reported from the loop)
 * or from our callback when the previous stage completed. */
static void send_stage(struct backend_conn *c, bool in_callback)
{
    char msg[sizeof(c->res.err.message)];

    if (!queue_stage(c)) {
        int code = PQstatus(c->pg) == CONNECTION_BAD ? DBPOOL_E_CONN_LOST : DBPOOL_E_INTERNAL;
        if (c->lost_msg[0]) {
            /* The server said why it closed the connection while it was idle. */
            snprintf(msg, sizeof(msg), "%s", c->lost_msg);
            c->lost_msg[0] = '\0';
        } else {
            conn_error_message(c, msg, sizeof(msg), "cannot send the statement");
        }
        if (in_callback)
            fail_now(c, code, true, "%s", msg);
        else
            fail_later(c, code, code == DBPOOL_E_CONN_LOST ? c->lost_sqlstate : "", true, "%s", msg);
        return;
    }
    if (c->stage == ST_EXEC && !c->pipeline && !PQsetSingleRowMode(c->pg)) {
        /* Fails only when not called right after a successful send, which
         * this is. Rows would then arrive in one PGresult; deliver_rows()
         * handles that too (without the memory bound). In pipeline mode it
         * is called when the statement's turn comes (pipeline_next). */
    }
    c->phase = PH_SENDING;
    flush_step(c, in_callback);
}

static bool stage_needed(const struct backend_conn *c, enum stage st)
{
    bool prepare = c->verdict == SC_PREPARE;

    switch (st) {
    case ST_ROLLBACK:
        return false;   /* only for a replay (stale_statement) */
    case ST_DEALLOC:
        /* Only outside a transaction: in a failed one DEALLOCATE would fail,
         * and it need not run inside the client's. */
        return prepare && stmt_cache_garbage(c->sc) && c->txstate == 'I';
    case ST_BEGIN:
        return prepare && c->begin_sql;   /* else it is pipelined with the statement */
    case ST_PREPARE:
        return prepare;
    case ST_EXEC:
        return true;
    }
    return false;
}

/* The first stage after `done` (-1: the first of all) that is needed. */
static enum stage stage_after(const struct backend_conn *c, int done)
{
    for (int st = done + 1; st < ST_EXEC; st++)
        if (stage_needed(c, (enum stage)st))
            return (enum stage)st;
    return ST_EXEC;
}

/* Whether a statement changes the schema, so that cached plans of other
 * statements may have gone stale. */
static bool is_ddl(const char *sql, size_t len)
{
    static const char *const words[] = { "CREATE", "ALTER", "DROP", NULL };

    return sql_starts_with_keyword(sql, len, words);
}

/* The statement's placeholders ($1..$used) and the parameters given (n)
 * disagree: refused before sending, the transaction stays as it is. */
static void refuse_param_count(struct backend_conn *c, unsigned used, size_t n)
{
    const char *s = n == 1 ? " was" : "s were";

    if (used == 0)
        backend_result_error(&c->res, DBPOOL_E_SQL, "07001", c->txstate,
                             "statement has no $N placeholder but %zu parameter%s given; "
                             "pass no parameters", n, s);
    else
        backend_result_error(&c->res, DBPOOL_E_SQL, "07001", c->txstate,
                             "statement uses $1..$%u but %zu parameter%s given; "
                             "pass exactly one value per $N placeholder", used, n, s);
    defer_result(c);
}

static void start_send(struct backend_conn *c, const struct backend_query *q)
{
    size_t n = q->nparams;

    c->verdict = SC_UNNAMED;
    c->retried = c->stale_plan = false;
    c->simple_sql = NULL;
    c->begin_sql = c->opened_with = q->begin_sql;
    c->ddl = false;
    if ((q->flags & BQ_INTERNAL) && n == 0) {
        c->simple_sql = q->sql;   /* NUL-terminated: the daemon's own text */
        c->stage = ST_EXEC;
        send_stage(c, false);
        return;
    }
    if (!params_build(&c->pp, q->sql, q->sql_len, q->params, n, &c->res, c->txstate)) {
        defer_result(c);   /* a parameter was refused; c->res says why */
        return;
    }
    c->ddl = !(q->flags & BQ_INTERNAL) && is_ddl(q->sql, q->sql_len);
    if (c->sc && c->txstate != 'E' && !(q->flags & BQ_INTERNAL) && stmt_cacheable(q->sql, q->sql_len))
        c->verdict = stmt_cache_lookup(c->sc, c->pp.sql, q->sql_len, c->pp.types, n, &c->ref);
    /* A count mismatch is refused here, before anything is sent: the
     * server would abort the transaction over it (too few), or, with the
     * parameter types declared, accept and ignore the surplus (too many).
     * (A statement in the cache passed this check when it was prepared.) */
    unsigned used = c->verdict != SC_PREPARED ? sql_max_dollar_param(q->sql, q->sql_len)
                                              : (unsigned)n;
    if (n != used) {
        refuse_param_count(c, used, n);
        return;
    }
    c->stage = stage_after(c, -1);
    send_stage(c, false);
}

/* Results of a stage before the execution are in: go on with the next
 * stage. False when the operation ends here (an error to report). */
static bool next_stage(struct backend_conn *c)
{
    if (PQstatus(c->pg) == CONNECTION_BAD || c->input_failed || c->force_broken)
        return false;
    switch (c->stage) {
    case ST_ROLLBACK:
        if (c->have_err)
            return false;
        c->begin_sql = c->opened_with;   /* the replay opens the transaction afresh */
        break;
    case ST_DEALLOC:
        stmt_cache_garbage_done(c->sc);
        c->have_err = false;   /* statements already gone (DISCARD ALL) are fine */
        break;
    case ST_BEGIN:
        if (c->have_err)
            return false;
        c->begin_sql = NULL;
        break;
    case ST_PREPARE:
        if (c->have_err)
            return false;      /* the statement does not parse: the client hears why */
        (void)stmt_cache_add(c->sc, &c->ref, c->pp.sql, c->pp.sql_len, c->pp.types, c->pp.n);
        break;
    case ST_EXEC:
        return false;
    }
    if (c->canceled) {
        note_error(c, DBPOOL_E_CANCELED, "57014", "canceling statement due to user request");
        return false;
    }
    c->stage = stage_after(c, (int)c->stage);
    c->affected = c->rows_seen = 0;
    send_stage(c, true);
    return true;
}

/* Pipeline mode: a NULL from PQgetResult ends the BEGIN's results (the
 * statement's turn comes: single-row mode is set for it now) or the
 * statement's (the Sync's result follows). A NULL right after a NULL, or
 * on a broken connection, means libpq has nothing more to give: it returns
 * NULL for ever once the connection died mid-pipeline (calling it again in
 * a loop froze the daemon). False then: the operation ends as lost. */
static bool pipeline_next(struct backend_conn *c)
{
    if (PQstatus(c->pg) == CONNECTION_BAD || c->input_failed || c->pipe_null) {
        if (PQstatus(c->pg) != CONNECTION_BAD && !c->input_failed)
            note_error(c, DBPOOL_E_CONN_LOST, "", "libpq ended the pipeline without its Sync");
        c->force_broken = true;
        c->pipeline = c->pipe_begin = false;
        return false;
    }
    c->pipe_null = true;
    if (!c->pipe_begin)
        return true;
    c->pipe_begin = false;
    c->affected = 0;
    if (!c->have_err && !PQsetSingleRowMode(c->pg)) {
        /* as in send_stage: rows then arrive in one PGresult */
    }
    return true;
}

/* The pipeline's Sync arrived: the operation's results are complete. */
static void pipeline_end(struct backend_conn *c)
{
    c->pipeline = false;
    if (!PQexitPipelineMode(c->pg)) {
        note_error(c, DBPOOL_E_INTERNAL, "", "libpq did not leave pipeline mode");
        c->force_broken = true;
    }
}

/* The server no longer has the prepared statement the execution named
 * (26000: DEALLOCATE or DISCARD ALL ran inside a function), or its cached
 * plan cannot serve the statement any more (0A000: a table it reads changed
 * its columns). Forget it; before any row was delivered, prepare it afresh
 * and run it again (once): outside a transaction, or as the first
 * statement of the transaction this operation opened (deferred BEGIN),
 * which is rolled back and opened again. A later statement of a client's
 * transaction cannot be replayed (the transaction is aborted, and the
 * client saw its earlier work): the client gets the error. True when
 * retried. */
static bool stale_statement(struct backend_conn *c, char tx)
{
    const char *st = c->res.err.sqlstate;
    bool gone = strcmp(st, "26000") == 0;
    bool changed = c->stale_plan;

    if (c->verdict == SC_UNNAMED || c->stage != ST_EXEC || !c->have_err || !(gone || changed))
        return false;
    if (gone)
        stmt_cache_clear(c->sc);
    else
        stmt_cache_forget(c->sc, &c->ref);
    if (c->retried || c->cols_sent || c->canceled ||
        PQstatus(c->pg) == CONNECTION_BAD || c->input_failed || c->force_broken)
        return false;
    if (tx != 'I' && !c->opened_with)
        return false;   /* a later statement of the client's transaction: see below */
    c->retried = true;
    c->have_err = c->stale_plan = false;
    c->affected = c->rows_seen = 0;
    c->verdict = stmt_cache_lookup(c->sc, c->pp.sql, c->pp.sql_len, c->pp.types, c->pp.n, &c->ref);
    if (tx != 'I') {
        /* The transaction this operation opened failed at its first
         * statement, before the client saw anything of it: roll it back,
         * then BEGIN and the statement again (next_stage). */
        c->stage = ST_ROLLBACK;
        send_stage(c, true);
        return true;
    }
    c->txstate = tx;
    c->stage = stage_after(c, -1);   /* unnamed if the seen table lost it */
    send_stage(c, true);
    return true;
}

/* The words of s from i on, the way PostgreSQL reads names: unquoted ones
 * upper-cased, single-spaced, comments and ';' dropped. A quoted name keeps
 * its case, so its lower-case letters are upper-cased and its upper-case
 * ones become '?' ("dbpool_s1" reads as DBPOOL_S1, "DBPOOL_S1" matches
 * nothing). Truncated to fit out. */
static void reset_words(const char *s, size_t len, size_t i, char *out, size_t outlen)
{
    char *p = out, *end = out + outlen - 1;
    bool quoted = false;

    while (i < len && p < end) {
        unsigned char ch = (unsigned char)s[i];
        if (quoted) {
            quoted = ch != '"';
            if (quoted)
                *p++ = isupper(ch) ? '?' : (char)toupper(ch);
            i++;
        } else if (isspace(ch) || ((ch == '-' || ch == '/') && i + 1 < len &&
                                   s[i + 1] == (ch == '-' ? '-' : '*'))) {
            i = sql_skip_space_and_comments(s, len, i);
            if (p > out && p[-1] != ' ')
                *p++ = ' ';
        } else {
            quoted = ch == '"';
            if (!quoted && ch != ';')
                *p++ = (char)toupper(ch);
            i++;
        }
    }
    while (p > out && p[-1] == ' ')
        p--;
    *p = '\0';
}

/* A user statement that drops prepared statements: DISCARD ALL and
 * DEALLOCATE [PREPARE] ALL drop the cache's, DEALLOCATE [PREPARE] dbpool_sN
 * one of them. Comments may stand before and between the words, and the
 * name may be quoted. (Other ways, e.g. inside functions, end in 26000 and
 * a retry outside a transaction: see stale_statement.) */
static void note_session_reset(struct backend_conn *c)
{
    char words[64];
    const char *s = c->pp.sql;
    size_t len = c->pp.sql_len, i;

    if (!c->sc || !s)
        return;
    i = sql_skip_space_and_comments(s, len, 0);
    if (i >= len || (s[i] != 'D' && s[i] != 'd'))
        return;   /* the common case, cheaply */
    reset_words(s, len, i, words, sizeof(words));
    const char *name = strncmp(words, "DEALLOCATE PREPARE ", 19) == 0 ? words + 19
                       : strncmp(words, "DEALLOCATE ", 11) == 0 ? words + 11 : NULL;
    if (strcmp(words, "DISCARD ALL") == 0 || (name && strcmp(name, "ALL") == 0))
        stmt_cache_clear(c->sc);
    else if (name && strncmp(name, "DBPOOL_S", 8) == 0 && name[8] >= '0' && name[8] <= '9')
        stmt_cache_gone(c->sc, (unsigned)strtoul(name + 8, NULL, 10));
}

static bool usable(struct backend_conn *c)
{
    if (c->pg && c->connected)
        return true;
    fail_later(c, DBPOOL_E_CONN_LOST, "", true, "not connected to PostgreSQL");
    return false;
}

static void pg_exec(struct backend_conn *c, const struct backend_query *q,
                    const struct backend_sink *sink, void *arg)
{
    start_op(c, OP_EXEC, sink->done, arg, sink);
    if (usable(c))
        start_send(c, q);
}

/* An empty query over the simple protocol (PQsendQuery): one round trip
 * that works in any transaction state; the extended protocol's Bind would
 * fail inside an aborted transaction. */
static void pg_ping(struct backend_conn *c, backend_done_fn done, void *arg)
{
    char msg[sizeof(c->res.err.message)];

    start_op(c, OP_PING, done, arg, NULL);
    if (!usable(c))
        return;
    if (!PQsendQuery(c->pg, "")) {
        conn_error_message(c, msg, sizeof(msg), "cannot send the health check");
        fail_later(c, DBPOOL_E_CONN_LOST, "", true, "%s", msg);
        return;
    }
    c->phase = PH_SENDING;
    flush_step(c, false);
}

/* PostgreSQL drops a cancel request that arrives before the backend has
 * read the query (it is then idle): while the statement still runs, send
 * the request again every CANCEL_RESEND_MS (one in flight at a time). */
#define CANCEL_RESEND_MS 1000

static void arm_cancel_resend(struct backend_conn *c)
{
    struct timeval tv;

    timeval_ms(&tv, CANCEL_RESEND_MS);
    (void)event_add(c->ev_timer, &tv);
}

static void cancel_resend(struct backend_conn *c)
{
    if (!c->ticket || atomic_load(&c->ticket->delivered)) {
        ticket_unref(c->ticket);
        c->ticket = cancel_start(c->pg);
    }
    arm_cancel_resend(c);
}

static void pg_cancel(struct backend_conn *c)
{
    if (c->closed || (c->op != OP_EXEC && c->op != OP_PING) || c->canceled)
        return;
    c->canceled = true;
    if (c->phase != PH_READING)
        return;   /* still sending: flush_step sends it; otherwise the result is known */
    if (!c->ticket)
        c->ticket = cancel_start(c->pg);
    arm_cancel_resend(c);
    if (c->paused) {
        c->paused = false;   /* buffered rows are discarded, not waited on */
        event_active(c->ev_kick, 0, 0);
    }
}

static void pg_resume(struct backend_conn *c)
{
    if (c->closed || !c->paused)
        return;
    c->paused = false;
    event_active(c->ev_kick, 0, 0);   /* via the loop: no recursion into the sink */
}

/* DDL ran on the pool (see note_schema_change): every cached plan may be
 * stale. The statements are deallocated before the next PREPARE. */
static void pg_schema_changed(struct backend_conn *c)
{
    if (c->sc)
        stmt_cache_forget_all(c->sc);
}

static char pg_txstate(const struct backend_conn *c)
{
    return c->txstate;
}

static void conn_free(struct backend_conn *c)
{
    if (c->cur)
        PQclear(c->cur);
    free(c->pp.mem);
    stmt_cache_free(c->sc);
    free(c->cols);
    free(c->decl);
    free(c->vals);
    free(c->scratch);
    free(c);
}

/* PQfinish sends Terminate without waiting (the socket is non-blocking) and
 * closes the socket. A cancel helper still running owns only its PGcancel
 * and its reference to the ticket; a resolver helper only its job, which no
 * longer points at ev_resolved. */
static void pg_close(struct backend_conn *c)
{
    if (!c || c->closed)
        return;
    watch_end(c);
    c->closed = true;
    if (c->pg && c->connected && (c->phase == PH_SENDING || c->phase == PH_READING) &&
        !c->ticket) {
        /* A server backend does not notice a closed client while it
         * computes: cancel the statement so it does not run on. */
        c->ticket = cancel_start(c->pg);
    }
    resolve_abandon(c);   /* before ev_resolved goes */
    drop_pg(c);
    if (c->ev_timer)
        event_free(c->ev_timer);
    if (c->ev_kick)
        event_free(c->ev_kick);
    if (c->ev_resolved)
        event_free(c->ev_resolved);
    c->ev_timer = c->ev_kick = c->ev_resolved = NULL;
    ticket_unref(c->ticket);
    c->ticket = NULL;
    c->op = OP_NONE;
    if (c->depth == 0)
        conn_free(c);
}

/* Ownership: the returned connection belongs to the caller until close(). */
static struct backend_conn *pg_conn_new(const struct pool_config *cfg, struct event_base *base,
                                        enum backend_role role, char *errbuf, size_t errlen)
{
    struct backend_conn *c;
    const char *missing = !cfg->host || !*cfg->host ? "host"
                        : !cfg->dbname || !*cfg->dbname ? "name"
                        : !cfg->username || !*cfg->username ? "username" : NULL;

    (void)role;   /* every PostgreSQL connection is a writer */
    if (missing) {
        snprintf(errbuf, errlen, "pool \"%s\": %s is required for a postgres pool",
                 cfg->name ? cfg->name : "", missing);
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(errbuf, errlen, "cannot create PostgreSQL connection: out of memory");
        return NULL;
    }
    c->cfg = cfg;
    c->io_fd = -1;
    c->base = base;
    c->txstate = 'I';
    c->ev_timer = evtimer_new(base, on_timer, c);
    c->ev_kick = event_new(base, -1, 0, on_kick, c);
    if (!c->ev_timer || !c->ev_kick) {
        snprintf(errbuf, errlen, "cannot create PostgreSQL connection: out of memory");
        if (c->ev_timer)
            event_free(c->ev_timer);
        if (c->ev_kick)
            event_free(c->ev_kick);
        conn_free(c);
        return NULL;
    }
    return c;
}

/* ---------------------------------------------------- pool-level calls */

static void pg_pool_limits(const struct pool_config *cfg, int *max_writers, int *max_readers)
{
    *max_writers = cfg->max_open_conns;
    *max_readers = 0;
}

static const char *pg_begin_sql(bool read_only, enum backend_role role)
{
    (void)role;
    return read_only ? "BEGIN READ ONLY" : "BEGIN";
}

static enum backend_role pg_route(const char *sql, size_t len)
{
    (void)sql;
    (void)len;
    return ROLE_WRITER;
}

static const char *pg_server_info(const struct backend_conn *c)
{
    return c->server_info;
}

const struct backend_driver backend_pg_driver = {
    .name = "postgres",
    .pool_limits = pg_pool_limits,
    .conn_new = pg_conn_new,
    .connect = pg_connect,
    .exec = pg_exec,
    .ping = pg_ping,
    .cancel = pg_cancel,
    .resume = pg_resume,
    .txstate = pg_txstate,
    .close = pg_close,
    .begin_with = true,
    .begin_sql = pg_begin_sql,
    .route = pg_route,
    .server_info = pg_server_info,
    .watch_idle = pg_watch_idle,
    .unwatch_idle = pg_unwatch_idle,
    .schema_changed = pg_schema_changed,
    .quiesce = pg_quiesce,
};
