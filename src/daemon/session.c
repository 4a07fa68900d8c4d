/*
 * session.c — the client sessions' core (see session.h): each session's
 * state, changed only by client_set_state() which moves it to the list of
 * its new state; queueing output frames; the session's deadlines (handshake,
 * idle and idle-in-transaction, statementTimeout, frameTimeout,
 * writeStallTimeout, the flush of a final error); closing and freeing; and
 * the set of sessions with the shutdown walk.
 *
 * A frame that cannot be queued, or a deadline that cannot be armed (out of
 * memory), dooms the session (c->fatal): nothing more is queued and it ends
 * with ERROR INTERNAL at the next safe point, its transaction rolled back —
 * never a gap in the stream, never a session without its deadline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "daemon/log.h"
#include "daemon/pool.h"
#include "daemon/session.h"

#define HANDSHAKE_TIMEOUT_S 10
#define CLOSE_FLUSH_TIMEOUT_S 5

static bool arm_timer(struct client *c, uint64_t ms, const char *which);
static bool io_deadline(struct client *c, enum io_watch kind, uint64_t ms);

const char *client_state_name(enum client_state s)
{
    static const char *const names[] = {
        "handshake", "idle", "idle_in_transaction", "waiting", "active", "closing"
    };
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

/* ------------------------------------------------------------- state */

/* The one place a session's state changes: it moves to its state's list. */
void client_set_state(struct client *c, enum client_state st)
{
    struct sessions *s = c->s;

    if (c->state == st)
        return;
    TAILQ_REMOVE(&s->lists[c->state], c, link);
    s->counts[c->state]--;
    c->state = st;
    TAILQ_INSERT_TAIL(&s->lists[st], c, link);
    s->counts[st]++;
}

/* Between requests: in a transaction or not. */
enum client_state client_idle_state(const struct client *c)
{
    return c->tx.txstate != 'I' ? CL_IDLE_TX : CL_IDLE;
}

/* A request is in progress (waiting for a server or running on one). */
bool client_busy(const struct client *c)
{
    return c->state == CL_WAITING || c->state == CL_ACTIVE;
}

/* Frames are taken off the input (no request runs, not closing). */
bool client_reading_frames(const struct client *c)
{
    return c->state == CL_HANDSHAKE || c->state == CL_IDLE || c->state == CL_IDLE_TX;
}

/* ------------------------------------------------------------- output */

struct pbuf *client_scratch(struct client *c)
{
    pbuf_reset(&c->s->scratch);
    return &c->s->scratch;
}

#ifdef DBPOOLD_FAULT_INJECTION
/* Test builds only (CPPFLAGS=-DDBPOOLD_FAULT_INJECTION): in sessions whose
 * HELLO names the client "fault-injection", DBPOOLD_FAIL_FRAME=T:N makes the
 * Nth frame of type T fail to queue as if memory ran out, so the tests can
 * prove that a lost frame ends the session instead of leaving a gap; and
 * DBPOOLD_FAIL_TIMER=NAME:N makes the Nth arming of the timer NAME
 * (handshake, idle, statement, frame, stall, close) fail, so they can prove
 * that a session never runs without its deadline. */
static bool fault_session(const struct client *c)
{
    return c->name && strcmp(c->name, "fault-injection") == 0;
}

static bool injected_failure(struct client *c, const struct pbuf *b)
{
    const char *e = getenv("DBPOOLD_FAIL_FRAME");

    if (!e || e[0] == 0 || e[1] != ':' || !fault_session(c) || b->len <= 4 ||
        b->data[4] != (uint8_t)e[0])
        return false;
    return ++c->fi_seen == strtol(e + 2, NULL, 10);
}

static bool injected_timer_failure(struct client *c, const char *which)
{
    const char *e = getenv("DBPOOLD_FAIL_TIMER");
    size_t n = strlen(which);

    if (!e || strncmp(e, which, n) != 0 || e[n] != ':' || !fault_session(c))
        return false;
    return ++c->fi_timers == strtol(e + n + 1, NULL, 10);
}
#else
#define injected_failure(c, b) false
#define injected_timer_failure(c, which) false
#endif

/* The session cannot go on (the caller logged why): client_lose() ends it
 * at the next safe point. */
static void doom(struct client *c, const char *why)
{
    if (!c->fatal)
        c->fatal = why;
}

/* Queue the scratch buffer's frames; false when memory ran out. A frame
 * that cannot be queued is never skipped silently: the session is doomed,
 * no later frame is queued (the client would misread the stream), and the
 * session ends through client_lose() at the next safe point. */
bool client_flush(struct client *c)
{
    struct pbuf *b = &c->s->scratch;

    if (c->fatal)
        return false;
    if (b->oom || injected_failure(c, b) || !sockbuf_write(&c->io, b->data, b->len)) {
        log_error("client_oom", "client=%llu action=\"closing the session\"",
                  (unsigned long long)c->id);
        doom(c, "dbpoold ran out of memory queuing a frame for this session");
        return false;
    }
    return true;
}

/* The session is doomed (c->fatal): it cannot go on. The client gets
 * ERROR INTERNAL if memory allows it (whole frames only were queued before,
 * so it can parse it), else just the close; close_after_flush hands the
 * server back and the pool rolls back an open transaction. Callers return
 * at once: c may be freed. */
void client_lose(struct client *c)
{
    struct pbuf *b = client_scratch(c);
    char msg[300];

    if (c->state == CL_CLOSING)
        return;
    client_request_end(c);
    request_tx_reset(&c->tx);
    snprintf(msg, sizeof(msg), "%s; the session was closed and any open transaction rolled back "
             "(retry on a new session)", c->fatal ? c->fatal : "dbpoold failed");
    proto_put_error(b, DBPOOL_E_INTERNAL, "", msg, 'I', -1, 0);
    if (!b->oom)
        (void)sockbuf_write(&c->io, b->data, b->len);   /* best effort */
    client_close(c);
}

size_t client_output_len(const struct client *c)
{
    return sockbuf_out_len(&c->io);
}

void client_send_error(struct client *c, int code, const char *sqlstate, const char *msg,
                       int32_t index)
{
    struct pbuf *b = client_scratch(c);

    proto_put_error(b, (uint16_t)code, sqlstate, msg, c->tx.txstate, index, 0);
    client_flush(c);
}

void client_send_request_error(struct client *c, const struct backend_error *err, int32_t index)
{
    struct pbuf *b = client_scratch(c);

    proto_put_error(b, (uint16_t)err->code, err->sqlstate, err->message, c->tx.txstate, index,
                    err->vendor_code);
    client_flush(c);
}

void client_send_ready(struct client *c)
{
    proto_put_ready(client_scratch(c), c->tx.txstate);
    client_flush(c);
}

/* ------------------------------------------------------------- closing */

/* Free now, or — while process_input runs — on its way out. */
static void free_when_safe(struct client *c)
{
    if (!c->in_input)
        client_free(c);
}

/* Send what is queued, then free, within ms. Any bound server is given back
 * now. Callers return at once: c may be freed. */
static void close_within(struct client *c, uint64_t ms)
{
    if (c->state == CL_CLOSING)
        return;
    client_set_state(c, CL_CLOSING);
    io_budget_cancel(&c->s->budget, &c->bwait);
    client_watch_io(c);
    if (c->waiter.queued)
        pool_cancel_wait(c->pool, &c->waiter);
    if (c->sv) {
        pool_abandon(c->pool, c->sv);
        c->sv = NULL;
    }
    sockbuf_read_enable(&c->io, false);
    c->io.notify_empty = true;
    if (client_output_len(c) == 0 || !arm_timer(c, ms, "close"))
        free_when_safe(c);   /* nothing to flush, or nothing would bound the flush */
}

/* Send what is queued, then free (a client that does not read gets
 * CLOSE_FLUSH_TIMEOUT_S). Callers return at once: c may be freed. */
void client_close(struct client *c)
{
    close_within(c, CLOSE_FLUSH_TIMEOUT_S * 1000u);
}

void client_protocol_error(struct client *c, int code, const char *msg)
{
    char q[300];

    log_info("client_protocol_error", "client=%llu code=%s error=%s", (unsigned long long)c->id,
             dbpool_code_name(code), log_quote(q, sizeof(q), msg, strlen(msg)));
    client_send_error(c, code, "", msg, -1);
    client_close(c);
}

/* The daemon is shutting down and the session holds no transaction: say
 * so, then close. The ERROR is the answer to the client's next request,
 * whether it is already in the input (pipelined, or sent after the
 * transaction ended) or still to come; nothing waits for it. */
void client_shutdown_close(struct client *c)
{
    client_send_error(c, DBPOOL_E_SHUTDOWN, "57P01", "dbpoold is shutting down; the request was not "
               "run: reconnect and retry (to the restarted daemon or another instance)", -1);
    client_close(c);
}

/* The session's pool was removed by a reload and the session holds no
 * transaction: like client_shutdown_close, the ERROR answers its next
 * request. */
void client_pool_removed_close(struct client *c)
{
    char msg[200];

    snprintf(msg, sizeof(msg), "pool \"%s\" was removed from the configuration; the request "
             "was not run: connect to a pool the configuration has", pool_config(c->pool)->name);
    client_send_error(c, DBPOOL_E_UNKNOWN_POOL, "", msg, -1);
    client_close(c);
}

/* ------------------------------------------------------------- timers */

static struct timeval ms_tv(uint64_t ms)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };

    return tv;
}

/* Create *ev if needed and arm it; false (the session doomed) when that
 * fails: the session would run without its deadline. */
static bool timer_add(struct client *c, struct event **ev, event_callback_fn fn, uint64_t ms,
                      const char *which)
{
    struct timeval tv = ms_tv(ms);

    if (!injected_timer_failure(c, which) && (*ev || (*ev = evtimer_new(c->s->base, fn, c))) &&
        evtimer_add(*ev, &tv) == 0)
        return true;
    log_error("client_timer_failed", "client=%llu timer=%s state=%s action=\"closing the "
              "session\" hint=\"dbpoold is out of memory; check its memory limits\"",
              (unsigned long long)c->id, which, client_state_name(c->state));
    doom(c, "dbpoold could not arm a deadline of this session (out of memory)");
    return false;
}

static void on_stmt_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;

    if (c->sv) {
        c->req->stmt_timed_out = true;
        server_cancel(c->sv);
    }
}

bool client_arm_stmt_timer(struct client *c)
{
    uint64_t ms = pool_config(c->pool)->statement_timeout_ms;

    return !ms || timer_add(c, &c->stmt_timer, on_stmt_timeout, ms, "statement");
}

void client_disarm_stmt_timer(struct client *c)
{
    if (c->stmt_timer)
        evtimer_del(c->stmt_timer);
}

static void idle_timeout(struct client *c)
{
    if (c->state == CL_IDLE_TX) {
        log_warn("idle_transaction_timeout", "client=%llu pool=%s", (unsigned long long)c->id,
                 pool_config(c->pool)->name);
        client_send_error(c, DBPOOL_E_TX_TIMEOUT, "25P03",
                   "transaction was idle longer than idleTransactionTimeout; it was rolled back "
                   "and the session closed", -1);
    } else {
        log_info("client_idle_timeout", "client=%llu", (unsigned long long)c->id);
        client_send_error(c, DBPOOL_E_TX_TIMEOUT, "",
                   "session was idle longer than clientIdleTimeout and was closed", -1);
    }
    client_close(c);
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
    case CL_IDLE_TX:
        idle_timeout(c);
        break;
    default:
        break;
    }
}

static bool arm_timer(struct client *c, uint64_t ms, const char *which)
{
    return timer_add(c, &c->timer, on_timer, ms, which);
}

/* Arm the idle timer suited to the session's state; without one, free the
 * timer (an idle session should cost as little memory as possible). False
 * (the session doomed) when it cannot be armed. */
bool client_arm_idle_timer(struct client *c)
{
    const struct daemon_config *dc = c->s->cfg;
    uint64_t ms = c->state == CL_IDLE_TX ? dc->idle_transaction_timeout_ms
                                         : dc->client_idle_timeout_ms;

    if (ms)
        return arm_timer(c, ms, "idle");
    if (c->timer) {
        event_free(c->timer);
        c->timer = NULL;
    }
    return true;
}

/* The client does not take its output: it holds a server (or daemon
 * memory) for nothing. Closing cancels the statement and rolls back. */
static void write_stall(struct client *c)
{
    c->s->write_stalls++;
    log_warn("client_write_stall", "client=%llu pool=%s state=%s tx=%c queued_bytes=%zu "
             "timeout_ms=%llu action=\"session closed%s\" hint=\"the client stopped reading its "
             "results; fix the client or raise writeStallTimeout\"", (unsigned long long)c->id,
             c->pool ? pool_config(c->pool)->name : "-", client_state_name(c->state),
             c->tx.txstate, client_output_len(c), (unsigned long long)c->s->cfg->write_stall_timeout_ms,
             c->sv ? "; its statement is cancelled, its transaction rolled back" : "");
    client_free(c);
}

/* A frame started but did not arrive although the daemon was reading it. */
static void frame_timeout(struct client *c)
{
    char msg[160];
    uint64_t ms = c->s->cfg->frame_timeout_ms;

    c->s->frame_timeouts++;
    log_warn("client_frame_timeout", "client=%llu state=%s received_bytes=%zu timeout_ms=%llu",
             (unsigned long long)c->id, client_state_name(c->state), sockbuf_in_len(&c->io),
             (unsigned long long)ms);
    snprintf(msg, sizeof(msg), "a frame did not arrive completely within frameTimeout (%llu ms); "
             "the session was closed (send each frame at once)", (unsigned long long)ms);
    client_send_error(c, DBPOOL_E_TX_TIMEOUT, "", msg, -1);
    client_close(c);
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
    else if (kind == IO_FRAME && !client_busy(c) && sockbuf_in_len(&c->io) > 0)
        frame_timeout(c);
    else if (!client_watch_io(c))
        client_lose(c);
}

/* Run the deadline `kind` (ms; 0: none) on io_timer. False (the session
 * doomed) when it cannot be armed. */
static bool io_deadline(struct client *c, enum io_watch kind, uint64_t ms)
{
    if (ms == 0)
        kind = IO_NONE;
    if (kind == c->io_watch)
        return true;   /* already running: the deadline is not pushed back */
    c->io_watch = kind;
    if (kind == IO_NONE) {
        if (c->io_timer)
            evtimer_del(c->io_timer);
        return true;
    }
    if (timer_add(c, &c->io_timer, on_io_timer, ms, kind == IO_FRAME ? "frame" : "stall"))
        return true;
    c->io_watch = IO_NONE;
    return false;
}

/* Start or stop the I/O deadline that the session's state calls for:
 * output held back (rows or requests paused) must drain; a partial frame
 * that the daemon is reading must complete. False (the session doomed)
 * when the deadline cannot be armed. */
bool client_watch_io(struct client *c)
{
    const struct daemon_config *dc = c->s->cfg;

    if (c->state == CL_CLOSING)
        return io_deadline(c, IO_NONE, 0);
    if (c->rows_paused || c->input_paused)
        return io_deadline(c, IO_STALL, dc->write_stall_timeout_ms);
    if (!client_busy(c) && !c->bwait.queued && sockbuf_in_len(&c->io) > 0)
        return io_deadline(c, IO_FRAME, dc->frame_timeout_ms);
    return io_deadline(c, IO_NONE, 0);
}

/* ------------------------------------------------------------- life */

/* The request is over: free it and everything it owns. */
void client_request_end(struct client *c)
{
    if (!c->req)
        return;
    io_budget_release(&c->s->budget, c->req->charged);
    request_free(c->req);
    c->req = NULL;
}

/* The frame being read arrived whole: its frameTimeout stops. */
void client_frame_arrived(struct client *c)
{
    if (c->io_watch == IO_FRAME)
        io_deadline(c, IO_NONE, 0);
}

/* Closing, and nothing is left to flush (or nothing bounds the flush). */
bool client_close_due(const struct client *c)
{
    return c->state == CL_CLOSING &&
           (client_output_len(c) == 0 || !c->timer || !evtimer_pending(c->timer, NULL));
}

void client_register(struct client *c)
{
    struct sessions *s = c->s;

    c->id = ++s->next_id;
    c->tx.txstate = 'I';
    c->state = CL_HANDSHAKE;
    TAILQ_INSERT_TAIL(&s->lists[CL_HANDSHAKE], c, link);
    s->counts[CL_HANDSHAKE]++;
    s->total_accepted++;
    c->uid_counted = c->peer.known && uid_counts_add(&s->per_uid, c->peer.uid);
    if (c->peer.known && !c->uid_counted) {
        log_error("client_oom", "client=%llu uid=%u action=\"closing the session\"",
                  (unsigned long long)c->id, c->peer.uid);
        client_free(c);   /* maxClientsPerUser could not be kept */
        return;
    }
    if (!arm_timer(c, HANDSHAKE_TIMEOUT_S * 1000u, "handshake"))
        client_free(c);   /* nothing would bound the handshake */
}

void client_free(struct client *c)
{
    struct sessions *s = c->s;

    if (c->waiter.queued)
        pool_cancel_wait(c->pool, &c->waiter);
    io_budget_cancel(&s->budget, &c->bwait);
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
    client_request_end(c);
    TAILQ_REMOVE(&s->lists[c->state], c, link);
    s->counts[c->state]--;
    if (c->uid_counted)
        uid_counts_remove(&s->per_uid, c->peer.uid);
    free(c->name);
    free(c);
    s->hooks.gone(s->hooks.arg);
}

/* ------------------------------------------------------------- the set */

int sessions_init(struct sessions *s, struct event_base *base, const struct daemon_config *cfg,
                  const struct session_hooks *hooks)
{
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < CL_NSTATES; i++)
        TAILQ_INIT(&s->lists[i]);
    s->base = base;
    s->cfg = cfg;
    s->hooks = *hooks;
    peer_refusal_log_init(&s->refusal_log);
    pbuf_init(&s->scratch);
    return io_budget_init(&s->budget, base, cfg->client_buffer_budget);
}

void sessions_deinit(struct sessions *s)
{
    struct client *c;

    for (size_t i = 0; i < CL_NSTATES; i++)
        while ((c = TAILQ_FIRST(&s->lists[i])))
            client_free(c);
    io_budget_deinit(&s->budget);
    uid_counts_free(&s->per_uid);
    pbuf_free(&s->scratch);
}

size_t sessions_count(const struct sessions *s)
{
    size_t n = 0;

    for (size_t i = 0; i < CL_NSTATES; i++)
        n += s->counts[i];
    return n;
}

void sessions_each(const struct sessions *s, session_info_fn fn, void *ctx)
{
    const struct client *c;

    for (size_t i = 0; i < CL_NSTATES; i++) {
        TAILQ_FOREACH(c, &s->lists[i], link) {
            struct session_info info = {
                .id = c->id, .state = c->state, .name = c->name, .txstate = c->tx.txstate,
                .pool = c->pool ? pool_config(c->pool)->name : NULL,
                .server = c->sv ? server_id(c->sv) : 0,
                .pinned = c->sv && server_pinned(c->sv),
                .waiting_since_us = c->waiter.queued ? c->waiter.enqueued_us : 0,
                .peer = &c->peer,
                .connected_us = c->connected_us,
                .request_since_us = c->req ? c->request_since_us : 0,
                .requests = c->requests,
                .bytes_in = c->io.bytes_in,
                .bytes_out = c->io.bytes_out,
            };
            fn(ctx, &info);
        }
    }
}

/* Shutdown or its pool's removal, for a session outside a transaction
 * (handshake, idle, or waiting for a server for its first statement): it
 * is told (tell: an ERROR, then close). */
static void notice_outside_tx(struct client *c, void (*tell)(struct client *c))
{
    if (c->state == CL_WAITING) {
        if (c->tx.pending_begin || !c->waiter.queued)
            return;   /* its transaction ends first (finish_request closes after it) */
        pool_cancel_wait(c->pool, &c->waiter);
        client_request_end(c);
        client_set_state(c, CL_IDLE);
    }
    tell(c);
}

static void shutdown_notice(struct client *c)
{
    notice_outside_tx(c, client_shutdown_close);
}

void sessions_pool_removed(struct sessions *s, struct pool *p)
{
    static const enum client_state outside_tx[] = { CL_IDLE, CL_WAITING };
    struct client *c, *next;

    for (size_t i = 0; i < sizeof(outside_tx) / sizeof(outside_tx[0]); i++) {
        for (c = TAILQ_FIRST(&s->lists[outside_tx[i]]); c; c = next) {
            next = TAILQ_NEXT(c, link);
            if (c->pool == p)
                notice_outside_tx(c, client_pool_removed_close);
        }
    }
}

void sessions_shutdown(struct sessions *s)
{
    static const enum client_state outside_tx[] = { CL_HANDSHAKE, CL_IDLE, CL_WAITING };
    struct client *c, *next;

    s->shutting_down = true;
    /* A notice moves its session to CLOSING (or frees it) and no other. */
    for (size_t i = 0; i < sizeof(outside_tx) / sizeof(outside_tx[0]); i++) {
        for (c = TAILQ_FIRST(&s->lists[outside_tx[i]]); c; c = next) {
            next = TAILQ_NEXT(c, link);
            shutdown_notice(c);
        }
    }
}

/* Cut c (not closing): cancel and roll back what it runs, queue ERROR
 * SHUTDOWN (msg) after its output, free it once that is flushed. */
static void cut(struct client *c, const char *msg)
{
    c->tx.txstate = 'I';
    client_send_error(c, DBPOOL_E_SHUTDOWN, "57P01", msg, -1);
    if (client_output_len(c) == 0) {   /* nothing could be queued, or the peer is gone */
        client_free(c);
        return;
    }
    /* The server is abandoned (statement cancelled, transaction rolled back)
     * and no more rows are queued; what is queued — whole frames, the ERROR
     * last — is flushed for a short while before the session is freed. */
    close_within(c, CLIENT_CUT_FLUSH_MS);
}

/* shutdownTimeout expired for c (not closing). */
static void shutdown_cut(struct client *c)
{
    cut(c, "dbpoold shut down: shutdownTimeout expired before this session's request or "
        "transaction ended; it was cancelled and rolled back");
}

int sessions_kill(struct sessions *s, uint64_t id)
{
    struct client *c;

    for (size_t i = 0; i < CL_NSTATES; i++) {
        TAILQ_FOREACH(c, &s->lists[i], link) {
            if (c->id != id)
                continue;
            if (c->state == CL_CLOSING)
                return 1;
            log_info("client_killed", "client=%llu state=%s tx=%c reason=admin",
                     (unsigned long long)id, client_state_name(c->state), c->tx.txstate);
            cut(c, "an administrator closed this session (dbpoolctl kill, POST /clients/ID/kill); "
                "what it ran was cancelled and its transaction rolled back: reconnect to go on");
            return 0;
        }
    }
    return -1;
}

void sessions_cut(struct sessions *s)
{
    struct client *c;
    bool again = true;

    TAILQ_FOREACH(c, &s->lists[CL_CLOSING], link)   /* already flushing: not for long */
        (void)arm_timer(c, CLIENT_CUT_FLUSH_MS, "close");   /* else its own bound stays */
    /* Cutting one session can move others (its server is handed on): the
     * lists are walked until none but CLOSING holds a session. */
    while (again) {
        again = false;
        for (size_t i = 0; i < CL_NSTATES; i++) {
            while (i != CL_CLOSING && (c = TAILQ_FIRST(&s->lists[i]))) {
                shutdown_cut(c);
                again = true;
            }
        }
    }
}
