/*
 * client.c — one client session (see client.h).
 *
 * Frames are read from the session's sockbuf and handled one request at a time, in
 * order; further pipelined frames wait in the input buffer (bounded by the
 * read watermark) until the current request completes. A request becomes a
 * short list of steps (SQL statements: the user's, plus BEGIN / SAVEPOINT /
 * COMMIT / ROLLBACK ones the daemon adds), run one after another on the
 * server the session is bound to. The session binds to a server at its first
 * step and unbinds when the request ends with the backend reporting no open
 * transaction — transaction pooling decided by the backend's real state, so
 * raw BEGIN/COMMIT SQL works like the protocol's messages.
 *
 * Rows go straight from the driver into the output buffer; when it passes
 * outputHighWater the driver is paused until the socket drains.
 *
 * Memory (doc/operations.md has the formula): input is read ahead at most
 * INPUT_READ_AHEAD bytes, also while a request runs (the bound on pipelined
 * requests); a larger frame is read only once the daemon-wide budget
 * (clientBufferBudget) admits its whole length, in FIFO order. Two deadlines
 * keep anyone from holding budget or a server for ever: a frame that has
 * started must be complete within frameTimeout (the clock runs only while
 * the daemon is reading it), and output that stays above the back-pressure
 * mark for writeStallTimeout closes the session (its statement cancelled,
 * its transaction rolled back, the server returned to the pool).
 *
 * Ownership: the daemon's client list owns each struct client; the request's
 * frame copy and decoded statements belong to the client until the request
 * ends (the driver reads SQL and parameters from them while it runs).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "backend/backend.h"
#include "daemon/client.h"
#include "daemon/daemon.h"
#include "daemon/log.h"
#include "daemon/pool.h"
#include "common/proto.h"
#include "daemon/sockbuf.h"

#define HANDSHAKE_TIMEOUT_S 10
#define CLOSE_FLUSH_TIMEOUT_S 5
#define MAX_STEPS_EXTRA 3     /* begin + commit, or rollback-to + release */
#define STEP_BEGIN (-2)       /* step index marker: BEGIN, SQL chosen at exec time */
#define STEP_BEGUN (-3)       /* ... and after its SQL was chosen */
#define INPUT_READ_AHEAD 16384 /* unadmitted input read per session (pipelined frames included) */

struct step {
    struct backend_query q;
    bool user;                /* forward results; counts as a statement */
    bool commits;             /* the daemon's COMMIT of a whole transaction */
    int32_t index;            /* statement index in a batch, -1 otherwise */
};

struct request {
    uint8_t type;
    uint8_t *frame;           /* payload copy, right after this struct; statements point into it */
    struct proto_stmt *stmts; /* decoded statements (owned) */
    size_t nstmts;
    struct step *steps;       /* owned */
    size_t nsteps, cur;
    enum backend_role role;
    bool atomic;              /* batch: roll back on error */
    bool batch_savepoint;     /* the atomic batch runs inside a savepoint */
    bool rolling_back;        /* running the rollback steps of an atomic batch */
    bool commit_became_rollback;
    bool begin_read_only;
    int sp_delta;             /* savepoint depth change applied on success */
    struct backend_error *saved_err; /* an atomic batch's error, kept while it rolls back (owned) */
    size_t charged;           /* frame bytes charged to the daemon's io_budget */
    int32_t saved_index;
    char sql[2][64];          /* generated SQL (savepoint names) */
    struct proto_stmt one_stmt;             /* a QUERY's statement (no allocation) */
    struct step inline_steps[1 + MAX_STEPS_EXTRA];
    /* the frame payload follows the struct in the same allocation */
};

/* Which deadline c->io_timer runs. */
enum io_watch {
    IO_NONE,
    IO_FRAME,                 /* a started frame must arrive (frameTimeout) */
    IO_STALL,                 /* output must drain (writeStallTimeout) */
};

struct client {
    TAILQ_ENTRY(client) link;
    struct daemon *d;
    struct sockbuf io;
    uint64_t id;
    enum client_state state;
    struct pool *pool;
    char *name;
    struct server *sv;        /* bound server, or NULL */
    struct pool_waiter waiter;
    char txstate;             /* as last reported to the client */
    int sp_depth;             /* protocol-level nested transactions */
    bool busy;                /* a request is in progress */
    bool in_input;            /* guards process_input against re-entry */
    bool rows_paused;
    bool input_paused;        /* waiting for output to drain */
    bool stmt_timed_out;
    bool free_pending;        /* close finished while inside process_input */
    bool read_only_tx;        /* inside a protocol BEGIN READ ONLY transaction */
    bool pending_begin;       /* BEGIN answered here; the transaction opens with the first
                                 step (drivers with begin_with): no server is held until then */
    bool pending_read_only;
    bool output_lost;         /* a frame could not be queued: the session must end */
    uint64_t refused_len;     /* a result frame above maxFrameSize (its length): the
                                 statement is being cancelled */
    bool refused_columns;     /* ... and it was the COLUMNS frame, not a row */
#ifdef DBPOOLD_FAULT_INJECTION
    long fi_seen;             /* frames of the injected type so far */
#endif
    struct request *req;      /* the request in progress (owned), or NULL */
    struct event *stmt_timer; /* lazily created */
    struct event *timer;      /* on_timer; NULL while no deadline applies */
    struct event *io_timer;   /* on_io_timer (lazily created) */
    enum io_watch io_watch;   /* the deadline io_timer runs */
    struct budget_waiter bwait; /* queued for budget to read the frame at the head */
    size_t bwait_frame;       /* that frame's length with its header */
};

static void process_input(struct client *c);
static void watch_io(struct client *c);
static void arm_timer(struct client *c, uint64_t ms);
static void run_step(struct client *c);
static void finish_request(struct client *c, const struct backend_error *err, int32_t index);
static void close_after_flush(struct client *c);
static void request_end(struct client *c);

struct client *client_next(const struct client *c)
{
    return TAILQ_NEXT(c, link);
}

const char *client_state_name(enum client_state s)
{
    static const char *const names[] = { "handshake", "idle", "waiting", "active", "closing" };
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

/* ------------------------------------------------------------- output */

static struct pbuf *scratch(struct client *c)
{
    pbuf_reset(&c->d->scratch);
    return &c->d->scratch;
}

#ifdef DBPOOLD_FAULT_INJECTION
/* Test builds only (CPPFLAGS=-DDBPOOLD_FAULT_INJECTION): in sessions whose
 * HELLO names the client "fault-injection", DBPOOLD_FAIL_FRAME=T:N makes the
 * Nth frame of type T fail to queue as if memory ran out, so the tests can
 * prove that a lost frame ends the session instead of leaving a gap. */
static bool injected_failure(struct client *c, const struct pbuf *b)
{
    const char *e = getenv("DBPOOLD_FAIL_FRAME");

    if (!e || e[0] == 0 || e[1] != ':' || !c->name || strcmp(c->name, "fault-injection") != 0 ||
        b->len <= 4 || b->data[4] != (uint8_t)e[0])
        return false;
    return ++c->fi_seen == strtol(e + 2, NULL, 10);
}
#else
#define injected_failure(c, b) false
#endif

/* Queue the scratch buffer's frames; false when memory ran out. A frame
 * that cannot be queued is never skipped silently: output_lost is set, no
 * later frame is queued (the client would misread the stream), and the
 * session ends through lose_session() at the next safe point. */
static bool flush_scratch(struct client *c)
{
    struct pbuf *b = &c->d->scratch;

    if (c->output_lost)
        return false;
    if (b->oom || injected_failure(c, b) || !sockbuf_write(&c->io, b->data, b->len)) {
        log_error("client_oom", "client=%llu action=\"closing the session\"",
                  (unsigned long long)c->id);
        c->output_lost = true;
        return false;
    }
    return true;
}

/* Output was lost (out of memory): the session cannot go on. The client
 * gets ERROR INTERNAL if memory allows it (whole frames only were queued
 * before, so it can parse it), else just the close; close_after_flush hands
 * the server back and the pool rolls back an open transaction. Callers
 * return at once: c may be freed. */
static void lose_session(struct client *c)
{
    struct pbuf *b = scratch(c);

    if (c->state == CL_CLOSING)
        return;
    request_end(c);
    c->busy = false;
    c->txstate = 'I';
    proto_put_error(b, DBPOOL_E_INTERNAL, "", "dbpoold ran out of memory queuing a frame for "
                    "this session; the session was closed and any open transaction rolled back "
                    "(retry on a new session)", 'I', -1);
    if (!b->oom)
        (void)sockbuf_write(&c->io, b->data, b->len);   /* best effort */
    close_after_flush(c);
}

static size_t output_len(const struct client *c)
{
    return sockbuf_out_len(&c->io);
}

static void send_error(struct client *c, int code, const char *sqlstate, const char *msg,
                       int32_t index)
{
    struct pbuf *b = scratch(c);

    proto_put_error(b, (uint16_t)code, sqlstate, msg, c->txstate, index);
    flush_scratch(c);
}

static void send_ready(struct client *c)
{
    proto_put_ready(scratch(c), c->txstate);
    flush_scratch(c);
}

/* ------------------------------------------------------------- closing */

/* Send what is queued, then free. Any bound server is given back now. The
 * idle timer bounds the wait for a client that does not read. */
static void close_after_flush(struct client *c)
{
    if (c->state == CL_CLOSING)
        return;
    c->state = CL_CLOSING;
    io_budget_cancel(&c->d->budget, &c->bwait);
    watch_io(c);
    if (c->waiter.queued)
        pool_cancel_wait(c->pool, &c->waiter);
    if (c->sv) {
        pool_abandon(c->pool, c->sv);
        c->sv = NULL;
    }
    sockbuf_read_enable(&c->io, false);
    c->io.notify_empty = true;
    arm_timer(c, CLOSE_FLUSH_TIMEOUT_S * 1000u);
    if (output_len(c) == 0) {
        if (c->in_input)
            c->free_pending = true;   /* process_input frees it on the way out */
        else
            client_free(c);
    }
}

static void protocol_error(struct client *c, int code, const char *msg)
{
    char q[300];

    log_info("client_protocol_error", "client=%llu code=%s error=%s", (unsigned long long)c->id,
             dbpool_code_name(code), log_quote(q, sizeof(q), msg, strlen(msg)));
    send_error(c, code, "", msg, -1);
    close_after_flush(c);
}

/* The daemon is shutting down and the session holds no transaction: say
 * so, then close. The ERROR is the answer to the client's next request,
 * whether it is already in the input (pipelined, or sent after the
 * transaction ended) or still to come; nothing waits for it. */
static void shutdown_close(struct client *c)
{
    send_error(c, DBPOOL_E_SHUTDOWN, "57P01", "dbpoold is shutting down; the request was not "
               "run: reconnect and retry (to the restarted daemon or another instance)", -1);
    close_after_flush(c);
}

/* ------------------------------------------------------------- requests */

/* The request is over: free it and everything it owns. */
static void request_end(struct client *c)
{
    struct request *r = c->req;

    if (!r)
        return;
    if (r->stmts == &r->one_stmt)
        free(r->one_stmt.params);
    else if (r->stmts)
        proto_stmts_free(r->stmts, r->nstmts);
    if (r->steps != r->inline_steps)
        free(r->steps);
    io_budget_release(&c->d->budget, r->charged);
    free(r->saved_err);
    free(r);   /* and the frame with it */
    c->req = NULL;
}

static struct step *add_step(struct request *r, const char *sql, size_t len, bool user)
{
    struct step *s = &r->steps[r->nsteps++];

    memset(s, 0, sizeof(*s));
    s->q.sql = sql;
    s->q.sql_len = len;
    s->user = user;
    s->index = -1;
    return s;
}

static struct step *add_sql(struct request *r, const char *sql)
{
    struct step *s = add_step(r, sql, strlen(sql), false);

    s->q.flags |= BQ_INTERNAL;
    return s;
}

static void add_user_stmt(struct request *r, const struct proto_stmt *st, int32_t index)
{
    struct step *s = add_step(r, st->sql.p, st->sql.len, true);

    s->q.params = st->params;
    s->q.nparams = st->nparams;
    s->index = index;
}

static bool alloc_steps(struct request *r, size_t n)
{
    if (n + MAX_STEPS_EXTRA <= sizeof(r->inline_steps) / sizeof(r->inline_steps[0])) {
        r->steps = r->inline_steps;
        return true;
    }
    r->steps = calloc(n + MAX_STEPS_EXTRA, sizeof(*r->steps));
    return r->steps != NULL;
}

static const char *savepoint_sql(struct request *r, int slot, const char *verb, int depth)
{
    snprintf(r->sql[slot], sizeof(r->sql[slot]), "%s dbpool_sp_%d", verb, depth);
    return r->sql[slot];
}

/* Steps that open a transaction (or a savepoint inside one). */
static void add_begin(struct client *c, struct request *r, bool read_only)
{
    if (c->txstate != 'I') {
        add_sql(r, savepoint_sql(r, 0, "SAVEPOINT", c->sp_depth + 1));
        r->sp_delta = 1;
        return;
    }
    r->role = read_only ? ROLE_READER : ROLE_WRITER;
    r->begin_read_only = read_only;
    /* The SQL depends on the role of the server we get; fixed up in exec_step. */
    add_sql(r, "");
    r->steps[r->nsteps - 1].index = STEP_BEGIN;
}

static void add_commit(struct client *c, struct request *r, int depth)
{
    if (depth > 0)
        add_sql(r, savepoint_sql(r, 1, "RELEASE SAVEPOINT", depth));
    else
        add_sql(r, "COMMIT")->commits = true;
}

static void add_rollback(struct client *c, struct request *r, int depth)
{
    if (depth > 0) {
        add_sql(r, savepoint_sql(r, 0, "ROLLBACK TO SAVEPOINT", depth));
        add_sql(r, savepoint_sql(r, 1, "RELEASE SAVEPOINT", depth));
    } else {
        add_sql(r, "ROLLBACK");
    }
}

static bool build_query(struct client *c, struct request *r, size_t len)
{
    uint32_t maxp = c->d->cfg->daemon.max_params;

    r->stmts = &r->one_stmt;
    r->nstmts = 1;
    if (!proto_get_query(r->frame, len, maxp, &r->stmts[0]))
        return false;
    if (!alloc_steps(r, 1))
        return false;
    add_user_stmt(r, &r->stmts[0], -1);
    r->role = c->sv ? server_role(c->sv)
                    : pool_driver(c->pool)->route(r->stmts[0].sql.p, r->stmts[0].sql.len);
    if (r->role == ROLE_READER)
        r->steps[0].q.flags |= BQ_REQUIRE_READONLY;
    return true;
}

static bool build_batch(struct client *c, struct request *r, size_t len)
{
    uint8_t flags = 0;
    const struct daemon_config *dc = &c->d->cfg->daemon;

    if (!proto_get_batch(r->frame, len, dc->max_params, dc->max_batch_statements, &flags,
                         &r->stmts, &r->nstmts))
        return false;
    if (!alloc_steps(r, r->nstmts))
        return false;
    if (flags & ~PB_ATOMIC)
        return false;   /* reserved bits must be zero */
    r->atomic = (flags & PB_ATOMIC) != 0;
    r->role = ROLE_WRITER;
    if (r->atomic)
        add_begin(c, r, false);
    for (size_t i = 0; i < r->nstmts; i++)
        add_user_stmt(r, &r->stmts[i], (int32_t)i);
    r->batch_savepoint = r->sp_delta != 0;
    if (r->atomic)
        add_commit(c, r, r->batch_savepoint ? c->sp_depth + 1 : 0);
    r->sp_delta = 0;   /* the batch's savepoint is released within the batch */
    return true;
}

/* ------------------------------------------------------------- timers */

static void on_stmt_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;

    if (c->sv) {
        c->stmt_timed_out = true;
        server_cancel(c->sv);
    }
}

static void arm_stmt_timer(struct client *c)
{
    uint64_t ms = pool_config(c->pool)->statement_timeout_ms;
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };

    if (!ms)
        return;
    if (!c->stmt_timer && !(c->stmt_timer = evtimer_new(c->d->base, on_stmt_timeout, c)))
        return;
    evtimer_add(c->stmt_timer, &tv);
}

static void disarm_stmt_timer(struct client *c)
{
    if (c->stmt_timer)
        evtimer_del(c->stmt_timer);
}

static void idle_timeout(struct client *c)
{
    if (c->txstate != 'I') {
        log_warn("idle_transaction_timeout", "client=%llu pool=%s", (unsigned long long)c->id,
                 pool_config(c->pool)->name);
        send_error(c, DBPOOL_E_TX_TIMEOUT, "25P03",
                   "transaction was idle longer than idleTransactionTimeout; it was rolled back "
                   "and the session closed", -1);
    } else {
        log_info("client_idle_timeout", "client=%llu", (unsigned long long)c->id);
        send_error(c, DBPOOL_E_TX_TIMEOUT, "",
                   "session was idle longer than clientIdleTimeout and was closed", -1);
    }
    close_after_flush(c);
}

/* The one session timer: handshake deadline, idle / idle-in-transaction
 * timeouts, and the bound on flushing a final error to a client. */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;

    switch (c->state) {
    case CL_HANDSHAKE:
        log_info("client_timeout", "client=%llu state=handshake", (unsigned long long)c->id);
        client_free(c);
        break;
    case CL_CLOSING:
        client_free(c);   /* the client does not read its final error */
        break;
    case CL_IDLE:
        if (!c->busy)
            idle_timeout(c);
        break;
    default:
        break;
    }
}

static void arm_timer(struct client *c, uint64_t ms)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };

    if (!c->timer && !(c->timer = evtimer_new(c->d->base, on_timer, c)))
        return;
    evtimer_add(c->timer, &tv);
}

/* Arm the idle timer suited to the session's state; without one, free the
 * timer (an idle session should cost as little memory as possible). */
static void arm_idle_timer(struct client *c)
{
    const struct daemon_config *dc = &c->d->cfg->daemon;
    uint64_t ms = c->txstate != 'I' ? dc->idle_transaction_timeout_ms : dc->client_idle_timeout_ms;

    if (ms) {
        arm_timer(c, ms);
    } else if (c->timer) {
        event_free(c->timer);
        c->timer = NULL;
    }
}

/* The client does not take its output: it holds a server (or daemon
 * memory) for nothing. Closing cancels the statement and rolls back. */
static void write_stall(struct client *c)
{
    c->d->write_stalls++;
    log_warn("client_write_stall", "client=%llu pool=%s state=%s tx=%c queued_bytes=%zu "
             "timeout_ms=%llu action=\"session closed%s\" hint=\"the client stopped reading its "
             "results; fix the client or raise writeStallTimeout\"", (unsigned long long)c->id,
             c->pool ? pool_config(c->pool)->name : "-", client_state_name(c->state), c->txstate,
             output_len(c), (unsigned long long)c->d->cfg->daemon.write_stall_timeout_ms,
             c->sv ? "; its statement is cancelled, its transaction rolled back" : "");
    client_free(c);
}

/* A frame started but did not arrive although the daemon was reading it. */
static void frame_timeout(struct client *c)
{
    char msg[160];
    uint64_t ms = c->d->cfg->daemon.frame_timeout_ms;

    c->d->frame_timeouts++;
    log_warn("client_frame_timeout", "client=%llu state=%s received_bytes=%zu timeout_ms=%llu",
             (unsigned long long)c->id, client_state_name(c->state), sockbuf_in_len(&c->io),
             (unsigned long long)ms);
    snprintf(msg, sizeof(msg), "a frame did not arrive completely within frameTimeout (%llu ms); "
             "the session was closed (send each frame at once)", (unsigned long long)ms);
    send_error(c, DBPOOL_E_TX_TIMEOUT, "", msg, -1);
    close_after_flush(c);
}

static void on_io_timer(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    enum io_watch kind = c->io_watch;

    c->io_watch = IO_NONE;
    if (c->state == CL_CLOSING)
        return;
    if (kind == IO_STALL && (c->rows_paused || c->input_paused))
        write_stall(c);
    else if (kind == IO_FRAME && !c->busy && sockbuf_in_len(&c->io) > 0)
        frame_timeout(c);
    else
        watch_io(c);
}

static void io_deadline(struct client *c, enum io_watch kind, uint64_t ms)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };

    if (ms == 0)
        kind = IO_NONE;
    if (kind == c->io_watch)
        return;   /* already running: the deadline is not pushed back */
    c->io_watch = kind;
    if (kind == IO_NONE) {
        if (c->io_timer)
            evtimer_del(c->io_timer);
        return;
    }
    if (!c->io_timer && !(c->io_timer = evtimer_new(c->d->base, on_io_timer, c))) {
        c->io_watch = IO_NONE;
        return;
    }
    evtimer_add(c->io_timer, &tv);
}

/* Start or stop the I/O deadline that the session's state calls for:
 * output held back (rows or requests paused) must drain; a partial frame
 * that the daemon is reading must complete. */
static void watch_io(struct client *c)
{
    const struct daemon_config *dc = &c->d->cfg->daemon;

    if (c->state == CL_CLOSING)
        io_deadline(c, IO_NONE, 0);
    else if (c->rows_paused || c->input_paused)
        io_deadline(c, IO_STALL, dc->write_stall_timeout_ms);
    else if (!c->busy && !c->bwait.queued && sockbuf_in_len(&c->io) > 0)
        io_deadline(c, IO_FRAME, dc->frame_timeout_ms);
    else
        io_deadline(c, IO_NONE, 0);
}

/* ------------------------------------------------------------- results */

/* The running statement's result cannot be forwarded (a frame above
 * maxFrameSize, or output lost): stop it like statementTimeout does. Its
 * completion reports why (on_step_done). */
static void stop_statement(struct client *c)
{
    if (c->sv)
        server_cancel(c->sv);
}

static void on_columns(void *arg, size_t n, const dbpool_column *cols)
{
    struct client *c = arg;
    struct pbuf *b = scratch(c);

    if (c->refused_len || c->output_lost)
        return;
    proto_put_columns(b, n, cols);
    if (!b->oom && b->len - 4 > c->d->cfg->daemon.max_frame_size) {
        c->refused_len = b->len - 4;
        c->refused_columns = true;
        pbuf_reset(b);
        stop_statement(c);
        return;
    }
    if (!flush_scratch(c))
        stop_statement(c);
}

static bool on_row(void *arg, size_t n, const dbpool_value *vals)
{
    struct client *c = arg;
    uint64_t flen;

    if (c->refused_len || c->output_lost)
        return false;   /* stopping: deliver nothing more */
    flen = proto_row_frame_len(n, vals);
    if (flen > c->d->cfg->daemon.max_frame_size) {
        c->refused_len = flen;   /* refused before encoding: no copy of a huge value */
        stop_statement(c);
        return false;
    }
    proto_put_row(scratch(c), n, vals);
    if (!flush_scratch(c)) {
        stop_statement(c);
        return false;
    }
    if (output_len(c) >= c->d->cfg->daemon.output_high_water) {
        c->rows_paused = true;
        watch_io(c);   /* writeStallTimeout from here */
        return false;
    }
    return true;
}

static void unbind(struct client *c)
{
    struct server *sv = c->sv;

    c->sv = NULL;
    c->sp_depth = 0;
    pool_release(c->pool, sv);
}

/* Whether the step, had the server completed it, ended a transaction by
 * committing: the daemon's COMMIT, the user's COMMIT / END, or any user
 * statement outside a transaction (autocommit). */
static bool step_may_commit(const struct client *c, const struct step *s)
{
    static const char *const commit_words[] = { "COMMIT", "END", NULL };

    if (s->commits)
        return true;
    if (!s->user)
        return false;
    return sql_starts_with_keyword(s->q.sql, s->q.sql_len, commit_words) ||
           (c->txstate == 'I' && !s->q.begin_sql);
}

/* The server connection died during the request. Inside a transaction
 * the server aborted it; while a commit was in flight nobody can say
 * whether it happened (SQLSTATE 08007, transaction resolution unknown). */
static void lost_connection(struct client *c, const struct backend_result *res)
{
    struct backend_error err = res->err;
    const struct step *s = &c->req->steps[c->req->cur];

    err.code = DBPOOL_E_CONN_LOST;
    if (s->commits || (step_may_commit(c, s) && c->txstate != 'I')) {
        snprintf(err.sqlstate, sizeof(err.sqlstate), "08007");
        snprintf(err.message, sizeof(err.message),
                 "server connection lost during COMMIT: %.300s; the transaction may or may not "
                 "have been committed (outcome unknown): check before retrying it", res->err.message);
    } else if (step_may_commit(c, s)) {
        snprintf(err.sqlstate, sizeof(err.sqlstate), "08007");
        snprintf(err.message, sizeof(err.message),
                 "server connection lost while the statement ran: %.300s; it may or may not have "
                 "taken effect (outcome unknown): check before retrying it", res->err.message);
    } else {
        snprintf(err.message, sizeof(err.message),
                 "server connection lost, transaction aborted: %.400s; retry the transaction on "
                 "this session", res->err.message);
    }
    c->txstate = 'I';
    unbind(c);
    finish_request(c, &err, c->req->steps[c->req->cur].index);
}

/* A result frame above maxFrameSize was refused and the statement
 * cancelled: the statement fails with LIMIT (a request error). */
static void refused_result_error(struct client *c, const struct backend_result *res,
                                 struct backend_error *err)
{
    uint32_t max = c->d->cfg->daemon.max_frame_size;

    err->code = DBPOOL_E_LIMIT;
    memcpy(err->sqlstate, "54000", 6);
    snprintf(err->message, sizeof(err->message),
             "a result %s is %llu bytes, above maxFrameSize (%u bytes), so it was not sent; %s%.200s%s "
             "Select less per row (e.g. substr() of the large value, or fewer columns) or raise "
             "maxFrameSize",
             c->refused_columns ? "COLUMNS frame (column names and types)" : "row",
             (unsigned long long)c->refused_len, max,
             res->ok ? "the statement had already completed (any changes it made stand)."
                     : "the statement was stopped (", res->ok ? "" : res->err.message,
             res->ok ? "" : ").");
}

static void canceled_message(struct client *c, struct backend_error *err)
{
    if (err->code == DBPOOL_E_CANCELED && c->stmt_timed_out)
        snprintf(err->message, sizeof(err->message),
                 "canceling statement due to statement timeout (statementTimeout = %llu ms)",
                 (unsigned long long)pool_config(c->pool)->statement_timeout_ms);
}

static const struct backend_error *batch_error(const struct request *r)
{
    static const struct backend_error oom = {
        DBPOOL_E_INTERNAL, "", "a statement of the atomic batch failed and the batch was rolled "
        "back (its error was lost: out of memory)"
    };

    return r->saved_err ? r->saved_err : &oom;
}

/* An atomic batch failed: keep the error, roll back, report afterwards. */
static void start_batch_rollback(struct client *c, const struct backend_error *err, int32_t index)
{
    struct request *r = c->req;

    r->saved_err = malloc(sizeof(*r->saved_err));
    if (r->saved_err)
        *r->saved_err = *err;   /* else batch_error() reports running out of memory */
    r->saved_index = index;
    r->rolling_back = true;
    r->nsteps = 0;
    r->cur = 0;
    add_rollback(c, r, r->batch_savepoint ? c->sp_depth + 1 : 0);
}

static void on_step_done(void *arg, const struct backend_result *res)
{
    struct client *c = arg;
    struct request *r = c->req;
    struct step *s = &r->steps[r->cur];

    disarm_stmt_timer(c);
    c->rows_paused = false;
    if (c->output_lost) {
        lose_session(c);
        return;
    }
    if (res->reroute_to_writer && c->txstate != 'I') {
        static const struct backend_error ro = {
            DBPOOL_E_SQL, "25006", "cannot execute a writing statement in a read-only transaction"
        };
        finish_request(c, &ro, s->index);
        return;
    }
    if (res->reroute_to_writer) {
        s->q.flags &= ~(unsigned)BQ_REQUIRE_READONLY;
        r->role = ROLE_WRITER;
        unbind(c);
        run_step(c);
        return;
    }
    if (res->broken) {
        lost_connection(c, res);
        return;
    }
    c->txstate = res->txstate;
    if (s->q.begin_sql && c->txstate == 'I') {
        /* Refused before it reached the server: the client's transaction
         * is still to be opened, by its next statement. */
        s->q.begin_sql = NULL;
        c->pending_begin = true;
        c->txstate = 'T';
    }
    if (c->txstate == 'I') {
        c->sp_depth = 0;
        c->read_only_tx = false;
    } else if (res->ok && r->begin_read_only && s->index == STEP_BEGUN) {
        c->read_only_tx = true;
    }
    if (!res->ok || c->refused_len) {
        struct backend_error err = res->err;
        if (c->refused_len)
            refused_result_error(c, res, &err);
        else
            canceled_message(c, &err);
        if (r->atomic && !r->rolling_back && c->txstate != 'I') {
            start_batch_rollback(c, &err, s->index);
            run_step(c);
            return;
        }
        finish_request(c, &err, s->index < 0 ? -1 : s->index);
        return;
    }
    if (s->user) {
        proto_put_stmt_done(scratch(c), res->rows_affected, res->last_insert_id);
        if (!flush_scratch(c)) {
            lose_session(c);
            return;
        }
    }
    r->cur++;
    run_step(c);
}

static const struct backend_sink client_sink = { on_columns, on_row, on_step_done };

static void exec_step(struct client *c)
{
    struct request *r = c->req;
    struct step *s = &r->steps[r->cur];

    if (s->index == STEP_BEGIN) {   /* its SQL depends on the server's role */
        const char *sql = pool_driver(c->pool)->begin_sql(r->begin_read_only, server_role(c->sv));
        s->q.sql = sql;
        s->q.sql_len = strlen(sql);
        s->index = STEP_BEGUN;
    }
    if (s->user && c->read_only_tx)
        s->q.flags |= BQ_REQUIRE_READONLY;   /* enforced by drivers that route (SQLite) */
    if (c->pending_begin) {   /* the deferred BEGIN goes with this step */
        s->q.begin_sql = pool_driver(c->pool)->begin_sql(c->pending_read_only, server_role(c->sv));
        c->pending_begin = false;
    }
    c->state = CL_ACTIVE;
    c->stmt_timed_out = false;
    c->refused_len = 0;
    c->refused_columns = false;
    if (s->user)
        arm_stmt_timer(c);
    server_exec(c->sv, &s->q, &client_sink, c);
}

static void on_granted(void *arg, struct server *sv, const struct backend_error *err)
{
    struct client *c = arg;

    if (!sv) {
        finish_request(c, err, -1);
        return;
    }
    c->sv = sv;
    exec_step(c);
}

static void run_step(struct client *c)
{
    struct request *r = c->req;

    if (r->cur >= r->nsteps) {
        if (r->rolling_back)
            finish_request(c, batch_error(r), r->saved_index);
        else
            finish_request(c, NULL, -1);
        return;
    }
    if (c->sv) {
        exec_step(c);
        return;
    }
    c->state = CL_WAITING;
    struct server *sv = pool_acquire(c->pool, &c->waiter, r->role, on_granted, c);
    if (sv) {
        c->sv = sv;
        exec_step(c);
    }
}

/* The request is over: answer, unbind if the transaction ended, go on. */
static void finish_request(struct client *c, const struct backend_error *err, int32_t index)
{
    struct request *r = c->req;

    if (!err && r->commit_became_rollback) {
        static const struct backend_error aborted = {
            DBPOOL_E_TX_STATE, "25P02",
            "the transaction had failed, so COMMIT rolled it back instead; nothing was committed"
        };
        err = &aborted;
    }
    if (!err)
        c->sp_depth += r->sp_delta;
    if (c->sv && (c->txstate == 'I' || c->pending_begin))
        unbind(c);
    if (err)
        send_error(c, err->code, err->sqlstate, err->message, index);
    else
        send_ready(c);
    if (c->output_lost) {
        lose_session(c);   /* the answer could not be queued */
        return;
    }
    sockbuf_flush(&c->io);   /* the answer is complete: no wait for the loop pass */
    request_end(c);
    c->busy = false;
    c->state = CL_IDLE;
    sockbuf_trim(&c->io);
    if (c->d->shutting_down && !c->sv && !c->pending_begin) {
        shutdown_close(c);
        return;
    }
    arm_idle_timer(c);
    process_input(c);
}

/* ------------------------------------------------------------- dispatch */

static void handle_hello(struct client *c, const uint8_t *payload, size_t len)
{
    struct proto_hello h;
    char msg[512];
    const struct daemon_config *dc = &c->d->cfg->daemon;

    if (!proto_get_hello(payload, len, &h)) {
        protocol_error(c, DBPOOL_E_PROTOCOL, "malformed HELLO frame");
        return;
    }
    if (!proto_utf8_valid(h.pool.p, h.pool.len) ||
        !proto_utf8_valid(h.client_name.p, h.client_name.len)) {
        protocol_error(c, DBPOOL_E_PROTOCOL, "malformed HELLO frame: the pool and client names "
                       "must be UTF-8");
        return;
    }
    if (h.version != PROTO_VERSION) {
        snprintf(msg, sizeof(msg), "protocol version %u is not supported; this dbpoold speaks "
                 "version %d (upgrade the client library)", h.version, PROTO_VERSION);
        protocol_error(c, DBPOOL_E_VERSION, msg);
        return;
    }
    struct pool *p = daemon_find_pool(c->d, h.pool.p, h.pool.len);
    if (!p) {
        snprintf(msg, sizeof(msg), "no pool named \"%.*s\" is configured (check the pool name "
                 "or the daemon's config)", (int)(h.pool.len > 100 ? 100 : h.pool.len), h.pool.p);
        protocol_error(c, DBPOOL_E_UNKNOWN_POOL, msg);
        return;
    }
    c->name = strndup(h.client_name.p, h.client_name.len > 63 ? 63 : h.client_name.len);
    c->pool = p;
    pool_client_attach(p);
    c->state = CL_IDLE;
    proto_put_hello_ok(scratch(c), pool_driver(p)->name, "dbpoold " PACKAGE_VERSION_STR,
                       dc->max_frame_size, (uint16_t)(dc->max_params > 65535 ? 65535 : dc->max_params),
                       (uint16_t)dc->max_batch_statements);   /* config: at most 65535 */
    if (!flush_scratch(c)) {
        lose_session(c);
        return;
    }
    log_debug("client_hello", "client=%llu pool=%s", (unsigned long long)c->id, pool_config(p)->name);
    arm_idle_timer(c);
    sockbuf_trim(&c->io);
}

static bool build_tx_request(struct client *c, struct request *r, size_t len)
{
    uint8_t flags = 0;

    if (!alloc_steps(r, 0))
        return false;
    if (r->type == PT_BEGIN) {
        if (!proto_get_begin(r->frame, len, &flags) || (flags & ~PB_READ_ONLY))
            return false;
        add_begin(c, r, (flags & PB_READ_ONLY) != 0);
        return true;
    }
    if (len != 0)
        return false;
    if (r->type == PT_COMMIT && c->sp_depth == 0 && c->txstate == 'E') {
        r->commit_became_rollback = true;
        add_sql(r, "ROLLBACK");
    } else if (r->type == PT_COMMIT) {
        add_commit(c, r, c->sp_depth);
    } else {
        add_rollback(c, r, c->sp_depth);
    }
    r->sp_delta = c->sp_depth > 0 ? -1 : 0;
    return true;
}

/* A protocol BEGIN outside a transaction, on a driver that can open the
 * transaction together with its first statement: answer it now, hold no
 * server until that statement comes (and save the server a round trip). */
static void defer_begin(struct client *c, size_t len)
{
    uint8_t flags = 0;

    if (!proto_get_begin(c->req->frame, len, &flags) || (flags & ~PB_READ_ONLY)) {
        request_end(c);
        protocol_error(c, DBPOOL_E_PROTOCOL, "malformed BEGIN frame");
        return;
    }
    request_end(c);
    c->pending_begin = true;
    c->pending_read_only = c->read_only_tx = (flags & PB_READ_ONLY) != 0;
    c->txstate = 'T';
    send_ready(c);
    sockbuf_flush(&c->io);
    arm_idle_timer(c);   /* idleTransactionTimeout from here */
}

/* COMMIT or ROLLBACK of a deferred BEGIN before any statement. */
static void end_pending_begin(struct client *c)
{
    request_end(c);
    c->pending_begin = c->read_only_tx = false;
    c->txstate = 'I';
    send_ready(c);
    sockbuf_flush(&c->io);
    arm_idle_timer(c);
}

/* SQL and TEXT parameters must be UTF-8 (doc/protocol.md). A request that
 * breaks the rule is refused before any of its statements runs, like a
 * statement the database rejects (SQLSTATE 22021, the offending statement's
 * index); the session and its transaction state are unchanged. */
static bool refuse_invalid_utf8(struct client *c)
{
    struct request *r = c->req;
    struct proto_utf8_error where;
    char what[48], msg[256];

    for (size_t i = 0; i < r->nstmts; i++) {
        if (proto_stmt_utf8_valid(&r->stmts[i], &where))
            continue;
        if (where.param < 0)
            snprintf(what, sizeof(what), "the SQL text");
        else
            snprintf(what, sizeof(what), "TEXT parameter %d", where.param + 1);
        snprintf(msg, sizeof(msg), "invalid byte sequence for encoding \"UTF8\": 0x%02x at byte "
                 "%zu of %s; send SQL and TEXT values as UTF-8 (binary data as BLOB)",
                 where.byte, where.offset, what);
        int32_t index = r->type == PT_BATCH ? (int32_t)i : -1;
        request_end(c);
        send_error(c, DBPOOL_E_SQL, "22021", msg, index);
        return true;
    }
    return false;
}

/* Start the request in c->req (frame already copied). */
static void start_request(struct client *c, size_t len)
{
    struct request *r = c->req;
    bool ok;

    if ((r->type == PT_PING || r->type == PT_COMMIT || r->type == PT_ROLLBACK) && len != 0) {
        char msg[64];
        snprintf(msg, sizeof(msg), "malformed %s frame: it has no payload", proto_type_name(r->type));
        request_end(c);
        protocol_error(c, DBPOOL_E_PROTOCOL, msg);
        return;
    }
    if (r->type == PT_PING) {
        request_end(c);
        send_ready(c);
        return;
    }
    if ((r->type == PT_COMMIT || r->type == PT_ROLLBACK) && c->pending_begin && len == 0) {
        end_pending_begin(c);   /* nothing ran: nothing to commit or roll back */
        return;
    }
    if ((r->type == PT_COMMIT || r->type == PT_ROLLBACK) && c->txstate == 'I') {
        bool commit = r->type == PT_COMMIT;
        request_end(c);
        send_error(c, DBPOOL_E_TX_STATE, "25000",
                   commit ? "COMMIT without a transaction: there is no transaction in progress"
                          : "ROLLBACK without a transaction: there is no transaction in progress", -1);
        return;
    }
    if (c->d->shutting_down && !c->sv && !c->pending_begin) {
        request_end(c);
        shutdown_close(c);
        return;
    }
    if (r->type == PT_BEGIN && c->txstate == 'I' && pool_driver(c->pool)->begin_with) {
        defer_begin(c, len);
        return;
    }
    switch (r->type) {
    case PT_QUERY: ok = build_query(c, r, len); break;
    case PT_BATCH: ok = build_batch(c, r, len); break;
    default: ok = build_tx_request(c, r, len); break;
    }
    if (!ok) {
        char msg[128];
        snprintf(msg, sizeof(msg), "malformed %s frame (or a limit was exceeded: maxParams %u, "
                 "maxBatchStatements %u)", proto_type_name(r->type), c->d->cfg->daemon.max_params,
                 c->d->cfg->daemon.max_batch_statements);
        request_end(c);
        protocol_error(c, DBPOOL_E_PROTOCOL, msg);
        return;
    }
    if (refuse_invalid_utf8(c))
        return;
    if (c->pending_begin)   /* the deferred BEGIN decides the role */
        r->role = c->pending_read_only ? ROLE_READER : ROLE_WRITER;
    c->busy = true;
    if (c->timer)
        evtimer_del(c->timer);
    run_step(c);
}

static bool known_request(uint8_t type)
{
    return type == PT_QUERY || type == PT_BATCH || type == PT_BEGIN || type == PT_COMMIT ||
           type == PT_ROLLBACK || type == PT_PING || type == PT_TERMINATE || type == PT_HELLO ||
           type == PT_CANCEL;
}

/* CANCEL: stop the running request. It is not answered; the request it
 * cancels ends with ERROR CANCELED (or normally, if it finished first). */
static void handle_cancel(struct client *c)
{
    static const struct backend_error canceled = {
        DBPOOL_E_CANCELED, "57014", "canceled while waiting for a server connection"
    };

    if (!c->busy)
        return;   /* nothing runs: a late CANCEL is harmless */
    log_debug("client_cancel", "client=%llu state=%s", (unsigned long long)c->id,
              client_state_name(c->state));
    if (c->state == CL_WAITING && c->waiter.queued) {
        pool_cancel_wait(c->pool, &c->waiter);
        finish_request(c, &canceled, -1);
    } else if (c->sv) {
        server_cancel(c->sv);
    }
}

/* While a request runs, only a CANCEL at the head of the input is acted on;
 * other pipelined frames wait their turn. */
static void peek_cancel(struct client *c)
{
    uint8_t hdr[PROTO_HEADER_SIZE], type;
    uint32_t plen;

    if (!sockbuf_peek(&c->io, hdr, sizeof(hdr)))
        return;
    if (proto_peek_header(hdr, sizeof(hdr), c->d->cfg->daemon.max_frame_size, &type, &plen) == 1 &&
        type == PT_CANCEL && plen == 0) {
        sockbuf_take(&c->io, NULL, sizeof(hdr));
        handle_cancel(c);
    }
}

/* A request frame: its payload goes into the request's own allocation. */
static int start_frame_request(struct client *c, uint8_t type, uint32_t plen)
{
    c->req = calloc(1, sizeof(*c->req) + plen);
    if (!c->req) {
        sockbuf_take(&c->io, NULL, plen);
        protocol_error(c, DBPOOL_E_INTERNAL, "out of memory starting a request");
        return -1;
    }
    c->req->type = type;
    c->req->frame = (uint8_t *)(c->req + 1);
    c->req->charged = plen;
    io_budget_charge(&c->d->budget, plen);   /* before the input's charge goes */
    sockbuf_take(&c->io, c->req->frame, plen);
    start_request(c, plen);
    return c->state == CL_CLOSING ? -1 : 1;
}

static void on_budget_granted(void *arg)
{
    struct client *c = arg;

    if (!sockbuf_admit(&c->io, c->bwait_frame)) {   /* not expected: the budget checked */
        io_budget_wait(&c->d->budget, &c->bwait, sockbuf_admit_need(&c->io, c->bwait_frame),
                       on_budget_granted, c);
        return;
    }
    log_debug("client_budget_granted", "client=%llu frame_bytes=%zu", (unsigned long long)c->id,
              c->bwait_frame);
    watch_io(c);   /* frameTimeout runs from now */
}

/* The frame at the head is incomplete. One larger than the read-ahead is
 * read only when the budget admits all of it, first come first served;
 * until then the session does not read (and its frameTimeout waits). */
static void admit_frame(struct client *c, size_t total)
{
    struct io_budget *b = &c->d->budget;

    if (total <= INPUT_READ_AHEAD || c->bwait.queued || c->io.in_reserve >= total)
        return;   /* small, already queued, or already admitted */
    if (b->nwaiting == 0 && sockbuf_admit(&c->io, total))
        return;
    log_debug("client_budget_wait", "client=%llu frame_bytes=%zu budget_used=%zu budget=%zu",
              (unsigned long long)c->id, total, b->used, b->limit);
    c->bwait_frame = total;
    io_budget_wait(b, &c->bwait, sockbuf_admit_need(&c->io, total), on_budget_granted, c);
}

/* Take one complete frame off the input. 1: handled; 0: need more bytes;
 * -1: the session is closing. */
static int next_frame(struct client *c)
{
    uint8_t hdr[PROTO_HEADER_SIZE], type;
    uint32_t plen;
    char msg[160];
    size_t have = sockbuf_in_len(&c->io);

    have = have < sizeof(hdr) ? have : sizeof(hdr);   /* the length alone can be refused */
    if (have < 4 || !sockbuf_peek(&c->io, hdr, have))
        return 0;
    int h = proto_peek_header(hdr, have, c->d->cfg->daemon.max_frame_size, &type, &plen);
    if (h == 0)
        return 0;
    if (h < 0 && hdr[0] == 0 && hdr[1] == 0 && hdr[2] == 0 && hdr[3] == 0) {
        protocol_error(c, DBPOOL_E_PROTOCOL, "invalid frame length 0 (a frame has at least a type byte)");
        return -1;
    }
    if (h < 0) {
        snprintf(msg, sizeof(msg), "frame larger than maxFrameSize (%u bytes); send smaller "
                 "statements or raise maxFrameSize", c->d->cfg->daemon.max_frame_size);
        protocol_error(c, DBPOOL_E_LIMIT, msg);
        return -1;
    }
    if (!known_request(type)) {
        snprintf(msg, sizeof(msg), "unknown frame type 0x%02x", type);
        protocol_error(c, DBPOOL_E_PROTOCOL, msg);
        return -1;
    }
    if (sockbuf_in_len(&c->io) < sizeof(hdr) + plen) {
        admit_frame(c, sizeof(hdr) + plen);
        return 0;
    }
    if (c->io_watch == IO_FRAME)
        io_deadline(c, IO_NONE, 0);   /* the next frame gets its own frameTimeout */
    sockbuf_take(&c->io, NULL, sizeof(hdr));
    if (c->state != CL_HANDSHAKE && type != PT_HELLO && type != PT_TERMINATE && type != PT_CANCEL)
        return start_frame_request(c, type, plen);
    uint8_t *payload = malloc(plen ? plen : 1);
    if (!payload) {
        protocol_error(c, DBPOOL_E_INTERNAL, "out of memory reading a frame");
        return -1;
    }
    sockbuf_take(&c->io, payload, plen);
    if (c->state == CL_HANDSHAKE) {
        if (type != PT_HELLO)
            protocol_error(c, DBPOOL_E_PROTOCOL, "the first frame must be HELLO");
        else
            handle_hello(c, payload, plen);
        free(payload);
        return c->state == CL_CLOSING ? -1 : 1;   /* c stays allocated while in_input */
    }
    if (type == PT_CANCEL) {
        free(payload);
        if (plen != 0) {
            protocol_error(c, DBPOOL_E_PROTOCOL, "malformed CANCEL frame: it has no payload");
            return -1;
        }
        return 1;   /* nothing is running at this point: ignore */
    }
    if (type == PT_TERMINATE && plen != 0) {
        free(payload);
        protocol_error(c, DBPOOL_E_PROTOCOL, "malformed TERMINATE frame: it has no payload");
        return -1;
    }
    if (type == PT_HELLO || type == PT_TERMINATE) {
        free(payload);
        if (type == PT_HELLO)
            protocol_error(c, DBPOOL_E_PROTOCOL, "HELLO was already sent on this session");
        else
            close_after_flush(c);
        return -1;
    }
    free(payload);
    protocol_error(c, DBPOOL_E_PROTOCOL, "unexpected frame");   /* not reached */
    return -1;
}

static void process_input(struct client *c)
{
    if (c->in_input)
        return;
    c->in_input = true;
    while (!c->busy && c->state != CL_CLOSING) {
        if (output_len(c) >= c->d->cfg->daemon.output_high_water) {
            c->input_paused = true;
            break;
        }
        if (next_frame(c) <= 0)
            break;
        if (c->busy && c->state != CL_CLOSING)
            peek_cancel(c);   /* a CANCEL read together with the request it cancels */
        if (c->output_lost && !c->busy) {   /* an answer given at once was lost */
            lose_session(c);
            break;
        }
    }
    c->in_input = false;
    if (c->free_pending)
        client_free(c);
    else
        watch_io(c);
}

/* ------------------------------------------------------------- events */

static void on_readable(void *arg)
{
    struct client *c = arg;

    if (c->busy && c->state != CL_CLOSING)
        peek_cancel(c);
    else
        process_input(c);
}

/* Output fell below the low-water mark (or, when closing, is empty). */
static void on_drained(void *arg)
{
    struct client *c = arg;

    if (c->state == CL_CLOSING) {
        if (output_len(c) == 0)
            client_free(c);
        return;
    }
    if (c->rows_paused && c->sv) {
        c->rows_paused = false;
        server_resume(c->sv);
    }
    if (c->input_paused) {
        c->input_paused = false;
        process_input(c);
        return;   /* it watches the I/O deadlines (c may be gone) */
    }
    watch_io(c);
}

static void on_closed(void *arg)
{
    struct client *c = arg;

    if (c->sv)
        log_info("client_vanished", "client=%llu state=%s tx=%c", (unsigned long long)c->id,
                 client_state_name(c->state), c->txstate);
    client_free(c);
}

static const struct sockbuf_cbs client_io = { on_readable, on_drained, on_closed };

static void refuse(struct daemon *d, int fd, const char *msg)
{
    struct pbuf b;

    pbuf_init(&b);
    proto_put_error(&b, DBPOOL_E_LIMIT, "53300", msg, 'I', -1);
    if (!b.oom) {
        ssize_t w = write(fd, b.data, b.len);   /* best effort on a fresh socket */
        (void)w;
    }
    pbuf_free(&b);
    close(fd);
}

void client_accept(struct daemon *d, int fd)
{
    const struct daemon_config *dc = &d->cfg->daemon;

    if (d->shutting_down) {
        close(fd);
        return;
    }
    if (d->nclients >= dc->max_clients) {
        log_warn("client_refused", "reason=max_clients limit=%u", dc->max_clients);
        refuse(d, fd, "too many client sessions (maxClients reached); try again later");
        return;
    }
    struct client *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->d = d;
    if (sockbuf_init(&c->io, d->base, fd, &client_io, c, &d->budget, INPUT_READ_AHEAD,
                     dc->output_high_water / 2) != 0) {
        free(c);
        close(fd);
        return;
    }
    c->id = ++d->next_client_id;
    c->txstate = 'I';
    c->state = CL_HANDSHAKE;
    TAILQ_INSERT_TAIL(&d->clients, c, link);
    d->nclients++;
    d->total_clients++;
    arm_timer(c, HANDSHAKE_TIMEOUT_S * 1000u);
}

void client_shutdown_notice(struct client *c)
{
    if (c->state == CL_CLOSING || c->sv || c->pending_begin)
        return;   /* a transaction may finish (finish_request closes after it) */
    if (c->busy && !(c->state == CL_WAITING && c->waiter.queued))
        return;   /* a running request ends first */
    if (c->busy) {
        /* Waiting for a server outside a transaction: it will not run. */
        pool_cancel_wait(c->pool, &c->waiter);
        request_end(c);
        c->busy = false;
        c->state = CL_IDLE;
    }
    shutdown_close(c);
}

bool client_shutdown_cut(struct client *c)
{
    if (c->state == CL_CLOSING) {   /* already flushing a final frame: not for long */
        arm_timer(c, CLIENT_CUT_FLUSH_MS);
        return false;
    }
    c->txstate = 'I';
    send_error(c, DBPOOL_E_SHUTDOWN, "57P01", "dbpoold shut down: shutdownTimeout expired "
               "before this session's request or transaction ended; it was cancelled and "
               "rolled back", -1);
    if (output_len(c) == 0) {   /* nothing could be queued, or the peer is gone */
        client_free(c);
        return true;
    }
    /* The server is abandoned (statement cancelled, transaction rolled back)
     * and no more rows are queued; what is queued — whole frames, the ERROR
     * last — is flushed for a short while before the session is freed. */
    close_after_flush(c);
    arm_timer(c, CLIENT_CUT_FLUSH_MS);
    return true;
}

void client_free(struct client *c)
{
    struct daemon *d = c->d;

    if (c->waiter.queued)
        pool_cancel_wait(c->pool, &c->waiter);
    io_budget_cancel(&d->budget, &c->bwait);
    if (c->sv)
        pool_abandon(c->pool, c->sv);
    if (c->pool)
        pool_client_detach(c->pool);
    if (c->stmt_timer)
        event_free(c->stmt_timer);
    if (c->io_timer)
        event_free(c->io_timer);
    if (c->timer)
        event_free(c->timer);
    sockbuf_deinit(&c->io);
    request_end(c);
    TAILQ_REMOVE(&d->clients, c, link);
    d->nclients--;
    free(c->name);
    free(c);
    daemon_client_gone(d);
}
