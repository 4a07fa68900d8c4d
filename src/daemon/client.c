/*
 * client.c — a client session's protocol side (see client.h): frames,
 * the handshake, dispatching requests and running their steps.
 *
 * Frames are read from the session's sockbuf and handled one request at a time, in
 * order; further pipelined frames wait in the input buffer (bounded by the
 * read watermark) until the current request completes. request.c turns a
 * request into a short list of steps (SQL statements: the user's, plus BEGIN /
 * SAVEPOINT / COMMIT / ROLLBACK ones the daemon adds) and says what follows
 * each step's result; this file runs them one after another on the server
 * the session is bound to. The session binds to a server at its first step
 * and unbinds when the request ends with the backend reporting no open
 * transaction — transaction pooling decided by the backend's real state, so
 * raw BEGIN/COMMIT SQL works like the protocol's messages.
 *
 * The session's core is session.c: its state (changed only through
 * client_set_state(), which moves the session to the list of its new
 * state), output, deadlines and closing.
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
 * Ownership: the sessions' lists own each struct client; the request's
 * frame copy and decoded statements belong to the client until the request
 * ends (the driver reads SQL and parameters from them while it runs).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "backend/backend.h"
#include "common/proto.h"
#include "daemon/client.h"
#include "daemon/log.h"
#include "daemon/pool.h"
#include "daemon/request.h"
#include "daemon/sockbuf.h"

#define INPUT_READ_AHEAD 16384 /* unadmitted input read per session (pipelined frames included) */

static void process_input(struct client *c);
static void run_step(struct client *c);
static void finish_request(struct client *c, const struct backend_error *err, int32_t index);

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
    struct pbuf *b = client_scratch(c);

    if (c->req->refused_len || c->fatal)
        return;
    proto_put_columns(b, n, cols);
    if (!b->oom && b->len - 4 > c->s->cfg->max_frame_size) {
        c->req->refused_len = b->len - 4;
        c->req->refused_columns = true;
        pbuf_reset(b);
        stop_statement(c);
        return;
    }
    if (!client_flush(c))
        stop_statement(c);
}

static bool on_row(void *arg, size_t n, const dbpool_value *vals)
{
    struct client *c = arg;
    uint64_t flen;

    if (c->req->refused_len || c->fatal)
        return false;   /* stopping: deliver nothing more */
    flen = proto_row_frame_len(n, vals);
    if (flen > c->s->cfg->max_frame_size) {
        c->req->refused_len = flen;   /* refused before encoding: no copy of a huge value */
        stop_statement(c);
        return false;
    }
    proto_put_row(client_scratch(c), n, vals);
    if (!client_flush(c)) {
        stop_statement(c);
        return false;
    }
    if (client_output_len(c) >= c->s->cfg->output_high_water) {
        c->rows_paused = true;
        if (!client_watch_io(c))   /* writeStallTimeout from here */
            stop_statement(c);
        return false;
    }
    return true;
}

/* The session keeps its server across transactions (PIN). */
static bool pinned(const struct client *c)
{
    return c->sv && server_pinned(c->sv);
}

static void unbind(struct client *c)
{
    struct server *sv = c->sv;

    c->sv = NULL;
    request_tx_unbound(&c->tx);
    pool_release(c->pool, sv);
}

/* What the transaction plan needs to know now. */
static void plan_env(const struct client *c, struct plan_env *env)
{
    const struct daemon_config *dc = c->s->cfg;

    env->pool = c->pool;
    env->bound = c->sv != NULL;
    env->bound_role = c->sv ? server_role(c->sv) : ROLE_WRITER;
    env->pinned = pinned(c);
    env->shutting_down = c->s->shutting_down;
    env->max_params = dc->max_params;
    env->max_batch_statements = dc->max_batch_statements;
    env->max_frame_size = dc->max_frame_size;
    env->statement_timeout_ms = pool_config(c->pool)->statement_timeout_ms;
}

static void finish_outcome(struct client *c, const struct plan_outcome *out)
{
    finish_request(c, out->failed ? &out->err : NULL, out->index);
}

/* A pinned session's server died: the pin ends with it, and the client
 * must know that what the pin kept is gone. */
static void note_pin_lost(struct backend_error *err)
{
    size_t n = strlen(err->message);

    snprintf(err->message + n, sizeof(err->message) - n, "; the session was pinned: its server "
             "session (locks, temporary tables, settings) is gone and the session is no longer "
             "pinned (PIN again)");
}

static void on_step_done(void *arg, const struct backend_result *res)
{
    struct client *c = arg;
    struct plan_outcome out;
    struct plan_env env;

    client_disarm_stmt_timer(c);
    c->rows_paused = false;
    if (c->fatal) {
        client_lose(c);
        return;
    }
    plan_env(c, &env);
    request_step_done(c->req, &c->tx, res, &env, &out);
    if (out.stmt_done) {
        proto_put_stmt_done(client_scratch(c), res->rows_affected, res->last_insert_id);
        if (!client_flush(c)) {
            client_lose(c);
            return;
        }
    }
    switch (out.action) {
    case PLAN_RUN:
        run_step(c);
        break;
    case PLAN_REROUTE:
        unbind(c);
        run_step(c);
        break;
    case PLAN_LOST:
        if (pinned(c))
            note_pin_lost(&out.err);
        unbind(c);
        finish_outcome(c, &out);
        break;
    case PLAN_FINISH:
        finish_outcome(c, &out);
        break;
    }
}

static const struct backend_sink client_sink = { on_columns, on_row, on_step_done };

static void exec_step(struct client *c)
{
    struct step *s = request_next_query(c->req, &c->tx, c->pool, server_role(c->sv));

    client_set_state(c, CL_ACTIVE);
    if (s->user && !client_arm_stmt_timer(c)) {
        client_lose(c);   /* it would run without statementTimeout */
        return;
    }
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

    if (r->cur >= r->nsteps) {   /* a request without steps */
        struct plan_outcome out;
        request_all_done(r, &out);
        finish_outcome(c, &out);
        return;
    }
    if (c->sv) {
        exec_step(c);
        return;
    }
    client_set_state(c, CL_WAITING);
    struct server *sv = pool_acquire(c->pool, &c->waiter, r->role, on_granted, c);
    if (sv) {
        c->sv = sv;
        exec_step(c);
    }
}

/* The request is over: answer, unbind if the transaction ended, go on. */
static void finish_request(struct client *c, const struct backend_error *err, int32_t index)
{
    request_finish(c->req, &c->tx, err == NULL);
    if (c->sv && !pinned(c) && request_tx_releases_server(&c->tx))
        unbind(c);
    if (err)
        client_send_request_error(c, err, index);
    else
        client_send_ready(c);
    if (c->fatal) {
        client_lose(c);   /* the answer could not be queued */
        return;
    }
    sockbuf_flush(&c->io);   /* the answer is complete: no wait for the loop pass */
    client_request_end(c);
    client_set_state(c, client_idle_state(c));
    sockbuf_trim(&c->io);
    if ((!c->sv || pinned(c)) && c->tx.txstate == 'I' &&
        (c->s->shutting_down || pool_removed(c->pool))) {
        if (c->s->shutting_down)
            client_shutdown_close(c);
        else
            client_pool_removed_close(c);
        return;
    }
    if (!client_arm_idle_timer(c)) {
        client_lose(c);
        return;
    }
    process_input(c);
}

/* ------------------------------------------------------------- dispatch */

/* A HELLO refused for who sends it: the error, one log line per burst of
 * this user's refusals on this pool (the key), and the session closes. */
static void refuse_hello(struct client *c, const char *pool, int code, const char *sqlstate,
                         const char *reason, const char *msg)
{
    char key[LOG_LIMIT_NAME];

    snprintf(key, sizeof(key), "%s u%u %s", reason, c->peer.uid, pool);
    if (peer_refusal_log_admit(&c->s->refusal_log, key))
        log_warn("client_refused", "client=%llu reason=%s uid=%u gid=%u pid=%d pool=%s",
                 (unsigned long long)c->id, reason, c->peer.uid, c->peer.gid, (int)c->peer.pid, pool);
    client_send_error(c, code, sqlstate, msg, -1);
    client_close(c);
}

/* allowUsers / allowGroups, then maxClientsPerPool (counted by the pool).
 * False: refused, the session is closing. */
static bool admit_to_pool(struct client *c, struct pool *p)
{
    const struct pool_config *pc = pool_config(p);
    char msg[400];

    if (!peer_may_use(c->io.fd, &c->peer, pc)) {
        snprintf(msg, sizeof(msg), "user %u (group %u) may not use pool \"%s\": add the user to "
                 "the pool's allowUsers, or one of its groups to allowGroups%s", c->peer.uid,
                 c->peer.gid, pc->name, c->peer.known ? "" : " (dbpoold could not read this "
                 "client's credentials: connect over the Unix socket)");
        refuse_hello(c, pc->name, DBPOOL_E_NOT_ALLOWED, "28000", "not_allowed", msg);
        return false;
    }
    if (!pool_client_attach(p)) {
        snprintf(msg, sizeof(msg), "pool \"%s\" already has %u client sessions, its "
                 "maxClientsPerPool; try again later, or raise maxClientsPerPool in the pool's "
                 "settings", pc->name, pc->max_clients_per_pool);
        refuse_hello(c, pc->name, DBPOOL_E_LIMIT, "53300", "max_clients_per_pool", msg);
        return false;
    }
    return true;
}

static void handle_hello(struct client *c, const uint8_t *payload, size_t len)
{
    struct proto_hello h;
    char msg[512];
    const struct daemon_config *dc = c->s->cfg;

    if (!proto_get_hello(payload, len, &h)) {
        client_protocol_error(c, DBPOOL_E_PROTOCOL, "malformed HELLO frame");
        return;
    }
    if (!proto_utf8_valid(h.pool.p, h.pool.len) ||
        !proto_utf8_valid(h.client_name.p, h.client_name.len)) {
        client_protocol_error(c, DBPOOL_E_PROTOCOL, "malformed HELLO frame: the pool and client names "
                       "must be UTF-8");
        return;
    }
    if (h.version != PROTO_VERSION) {
        snprintf(msg, sizeof(msg), "protocol version %u is not supported; this dbpoold speaks "
                 "version %d (upgrade the client library)", h.version, PROTO_VERSION);
        client_protocol_error(c, DBPOOL_E_VERSION, msg);
        return;
    }
    struct pool *p = c->s->hooks.find_pool(c->s->hooks.arg, h.pool.p, h.pool.len);
    if (!p) {
        snprintf(msg, sizeof(msg), "no pool named \"%.*s\" is configured (check the pool name "
                 "or the daemon's config)", (int)(h.pool.len > 100 ? 100 : h.pool.len), h.pool.p);
        client_protocol_error(c, DBPOOL_E_UNKNOWN_POOL, msg);
        return;
    }
    if (pool_removed(p)) {
        snprintf(msg, sizeof(msg), "pool \"%s\" was removed from the configuration (check the "
                 "pool name or the daemon's config)", pool_config(p)->name);
        client_protocol_error(c, DBPOOL_E_UNKNOWN_POOL, msg);
        return;
    }
    if (!admit_to_pool(c, p))
        return;
    c->name = strndup(h.client_name.p, h.client_name.len > 63 ? 63 : h.client_name.len);
    c->pool = p;
    client_set_state(c, CL_IDLE);
    proto_put_hello_ok(client_scratch(c), pool_backend_name(p), "dbpoold " PACKAGE_VERSION_STR,
                       dc->max_frame_size, (uint16_t)(dc->max_params > 65535 ? 65535 : dc->max_params),
                       (uint16_t)dc->max_batch_statements);   /* config: at most 65535 */
    if (!client_flush(c)) {
        client_lose(c);
        return;
    }
    log_debug("client_hello", "client=%llu pool=%s uid=%u pid=%d", (unsigned long long)c->id,
              pool_config(p)->name, c->peer.uid, (int)c->peer.pid);
    if (!client_arm_idle_timer(c)) {
        client_lose(c);
        return;
    }
    sockbuf_trim(&c->io);
}

/* The request was answered without a server (READY). A BEGIN, COMMIT or
 * ROLLBACK changed the transaction state: the idle timer follows it. */
static void answered_now(struct client *c, uint8_t type)
{
    client_send_ready(c);
    if (type == PT_PING)
        return;
    client_set_state(c, client_idle_state(c));
    sockbuf_flush(&c->io);
    (void)client_arm_idle_timer(c);   /* on failure the session is doomed: process_input ends it */
}

/* ------------------------------------------------------------- pinning */

/* ERROR LIMIT: the pool has maxPinned pinned sessions. */
static void pin_limit_error(const struct client *c, struct backend_error *err)
{
    const struct pool_config *pc = pool_config(c->pool);

    err->code = DBPOOL_E_LIMIT;
    err->vendor_code = 0;
    memcpy(err->sqlstate, "53400", 6);   /* configuration_limit_exceeded: the session goes on */
    if (pc->max_pinned == 0)
        snprintf(err->message, sizeof(err->message), "pool \"%s\" allows no pinned sessions "
                 "(maxPinned = 0%s); set maxPinned in the pool's settings", pc->name,
                 pc->max_open_conns < 2 ? ", as its maxOpenConns is 1: raise maxOpenConns" : "");
    else
        snprintf(err->message, sizeof(err->message), "pool \"%s\" already has %d pinned "
                 "sessions, its maxPinned; UNPIN or close one, try again later, or raise "
                 "maxPinned in the pool's settings", pc->name, pc->max_pinned);
}

/* PIN got its server (or not: err). Its wait held a place of maxPinned;
 * checked again all the same: a reload may have lowered maxPinned. */
static void on_pin_granted(void *arg, struct server *sv, const struct backend_error *err)
{
    struct client *c = arg;
    struct backend_error limit;

    if (!sv) {
        finish_request(c, err, -1);
        return;
    }
    c->sv = sv;
    if (!pool_pin(c->pool, sv)) {
        unbind(c);
        pin_limit_error(c, &limit);
        finish_request(c, &limit, -1);
        return;
    }
    log_debug("client_pinned", "client=%llu server=%llu", (unsigned long long)c->id,
              (unsigned long long)server_id(sv));
    finish_request(c, NULL, -1);
}

static void start_pin(struct client *c)
{
    struct backend_error limit;

    if (!pool_pin_allowed(c->pool)) {
        pin_limit_error(c, &limit);
        finish_request(c, &limit, -1);
        return;
    }
    client_set_state(c, CL_WAITING);
    struct server *sv = pool_acquire_pin(c->pool, &c->waiter, on_pin_granted, c);
    if (sv)
        on_pin_granted(c, sv, NULL);
}

/* UNPIN: the server goes back; the pool resets its session first. */
static void start_unpin(struct client *c)
{
    log_debug("client_unpinned", "client=%llu server=%llu", (unsigned long long)c->id,
              (unsigned long long)server_id(c->sv));
    unbind(c);
    finish_request(c, NULL, -1);
}

/* Start the request in c->req (frame already copied). */
static void start_request(struct client *c)
{
    struct request *r = c->req;
    uint8_t type = r->type;
    struct backend_error err;
    struct plan_env env;
    int32_t index;

    c->requests++;
    c->request_since_us = now_us();   /* vDSO clock read: no syscall */
    plan_env(c, &env);
    enum plan_start how = request_start(r, &c->tx, &env, &err, &index);
    if (how == START_RUN || how == START_PIN || how == START_UNPIN) {
        if (c->timer)
            evtimer_del(c->timer);
        if (how == START_RUN)
            run_step(c);
        else if (how == START_PIN)
            start_pin(c);
        else
            start_unpin(c);
        return;
    }
    client_request_end(c);
    if (how == START_READY)
        answered_now(c, type);
    else if (how == START_ERROR)
        client_send_request_error(c, &err, index);
    else if (how == START_SHUTDOWN)
        client_shutdown_close(c);
    else
        client_protocol_error(c, err.code, err.message);
}

static bool known_request(uint8_t type)
{
    return type == PT_QUERY || type == PT_BATCH || type == PT_BEGIN || type == PT_COMMIT ||
           type == PT_ROLLBACK || type == PT_PING || type == PT_TERMINATE || type == PT_HELLO ||
           type == PT_CANCEL || type == PT_PIN || type == PT_UNPIN;
}

/* CANCEL: stop the running request. It is not answered; the request it
 * cancels ends with ERROR CANCELED (or normally, if it finished first). */
static void handle_cancel(struct client *c)
{
    static const struct backend_error canceled = {
        DBPOOL_E_CANCELED, "57014", "canceled while waiting for a server connection", 0
    };

    if (!client_busy(c))
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
    if (proto_peek_header(hdr, sizeof(hdr), c->s->cfg->max_frame_size, &type, &plen) == 1 &&
        type == PT_CANCEL && plen == 0) {
        sockbuf_take(&c->io, NULL, sizeof(hdr));
        handle_cancel(c);
    }
}

/* A request frame: its payload goes into the request's own allocation. */
static int start_frame_request(struct client *c, uint8_t type, uint32_t plen)
{
    c->req = request_new(type, plen);
    if (!c->req) {
        sockbuf_take(&c->io, NULL, plen);
        client_protocol_error(c, DBPOOL_E_INTERNAL, "out of memory starting a request");
        return -1;
    }
    c->req->charged = plen;
    io_budget_charge(&c->s->budget, plen);   /* before the input's charge goes */
    sockbuf_take(&c->io, c->req->frame, plen);
    start_request(c);
    return c->state == CL_CLOSING ? -1 : 1;
}

static void on_budget_granted(void *arg)
{
    struct client *c = arg;

    if (!sockbuf_admit(&c->io, c->bwait_frame)) {   /* not expected: the budget checked */
        io_budget_wait(&c->s->budget, &c->bwait, sockbuf_admit_need(&c->io, c->bwait_frame),
                       on_budget_granted, c);
        return;
    }
    log_debug("client_budget_granted", "client=%llu frame_bytes=%zu", (unsigned long long)c->id,
              c->bwait_frame);
    if (!client_watch_io(c))   /* frameTimeout runs from now */
        client_lose(c);
}

/* The frame at the head is incomplete. One larger than the read-ahead is
 * read only when the budget admits all of it, first come first served;
 * until then the session does not read (and its frameTimeout waits). */
static void admit_frame(struct client *c, size_t total)
{
    struct io_budget *b = &c->s->budget;

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
    int h = proto_peek_header(hdr, have, c->s->cfg->max_frame_size, &type, &plen);
    if (h == 0)
        return 0;
    if (h < 0 && hdr[0] == 0 && hdr[1] == 0 && hdr[2] == 0 && hdr[3] == 0) {
        client_protocol_error(c, DBPOOL_E_PROTOCOL, "invalid frame length 0 (a frame has at least a type byte)");
        return -1;
    }
    if (h < 0) {
        snprintf(msg, sizeof(msg), "frame larger than maxFrameSize (%u bytes); send smaller "
                 "statements or raise maxFrameSize", c->s->cfg->max_frame_size);
        client_protocol_error(c, DBPOOL_E_LIMIT, msg);
        return -1;
    }
    if (!known_request(type)) {
        snprintf(msg, sizeof(msg), "unknown frame type 0x%02x", type);
        client_protocol_error(c, DBPOOL_E_PROTOCOL, msg);
        return -1;
    }
    if (sockbuf_in_len(&c->io) < sizeof(hdr) + plen) {
        admit_frame(c, sizeof(hdr) + plen);
        return 0;
    }
    client_frame_arrived(c);   /* the next frame gets its own frameTimeout */
    sockbuf_take(&c->io, NULL, sizeof(hdr));
    if (c->state != CL_HANDSHAKE && type != PT_HELLO && type != PT_TERMINATE && type != PT_CANCEL)
        return start_frame_request(c, type, plen);
    uint8_t *payload = malloc(plen ? plen : 1);
    if (!payload) {
        client_protocol_error(c, DBPOOL_E_INTERNAL, "out of memory reading a frame");
        return -1;
    }
    sockbuf_take(&c->io, payload, plen);
    if (c->state == CL_HANDSHAKE) {
        if (type != PT_HELLO)
            client_protocol_error(c, DBPOOL_E_PROTOCOL, "the first frame must be HELLO");
        else
            handle_hello(c, payload, plen);
        free(payload);
        return c->state == CL_CLOSING ? -1 : 1;   /* c stays allocated while in_input */
    }
    if (type == PT_CANCEL) {
        free(payload);
        if (plen != 0) {
            client_protocol_error(c, DBPOOL_E_PROTOCOL, "malformed CANCEL frame: it has no payload");
            return -1;
        }
        return 1;   /* nothing is running at this point: ignore */
    }
    if (type == PT_TERMINATE && plen != 0) {
        free(payload);
        client_protocol_error(c, DBPOOL_E_PROTOCOL, "malformed TERMINATE frame: it has no payload");
        return -1;
    }
    if (type == PT_HELLO || type == PT_TERMINATE) {
        free(payload);
        if (type == PT_HELLO)
            client_protocol_error(c, DBPOOL_E_PROTOCOL, "HELLO was already sent on this session");
        else
            client_close(c);
        return -1;
    }
    free(payload);
    client_protocol_error(c, DBPOOL_E_PROTOCOL, "unexpected frame");   /* not reached */
    return -1;
}

static void process_input(struct client *c)
{
    if (c->in_input)
        return;
    c->in_input = true;
    while (client_reading_frames(c)) {
        if (client_output_len(c) >= c->s->cfg->output_high_water) {
            c->input_paused = true;
            break;
        }
        if (next_frame(c) <= 0)
            break;
        if (client_busy(c))
            peek_cancel(c);   /* a CANCEL read together with the request it cancels */
        if (c->fatal && !client_busy(c)) {   /* an answer given at once was lost */
            client_lose(c);
            break;
        }
    }
    c->in_input = false;
    if (client_close_due(c))
        client_free(c);
    else if (!client_watch_io(c))
        client_lose(c);
}

/* ------------------------------------------------------------- events */

static void on_readable(void *arg)
{
    struct client *c = arg;

    if (client_busy(c))
        peek_cancel(c);
    else
        process_input(c);
}

/* Output fell below the low-water mark (or, when closing, is empty). */
static void on_drained(void *arg)
{
    struct client *c = arg;

    if (c->state == CL_CLOSING) {
        if (client_output_len(c) == 0)
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
    if (!client_watch_io(c))
        client_lose(c);
}

static void on_closed(void *arg)
{
    struct client *c = arg;

    if (c->sv && !(pinned(c) && c->state == CL_IDLE))
        log_info("client_vanished", "client=%llu state=%s tx=%c uid=%u pid=%d",
                 (unsigned long long)c->id, client_state_name(c->state), c->tx.txstate,
                 c->peer.uid, (int)c->peer.pid);
    client_free(c);
}

static const struct sockbuf_cbs client_io = { on_readable, on_drained, on_closed };

static void refuse(int fd, const char *msg)
{
    struct pbuf b;

    pbuf_init(&b);
    proto_put_error(&b, DBPOOL_E_LIMIT, "53300", msg, 'I', -1, 0);
    if (!b.oom) {
        ssize_t w = write(fd, b.data, b.len);   /* best effort on a fresh socket */
        (void)w;
    }
    pbuf_free(&b);
    close(fd);
}

/* daemon.maxClientsPerUser: one local user cannot take every session slot
 * (the sessions counted per uid in s->per_uid). True: refused, fd closed. */
static bool refuse_over_user_limit(struct sessions *s, int fd, const struct peer_cred *peer)
{
    uint32_t max = s->cfg->max_clients_per_user;
    char msg[300], key[LOG_LIMIT_NAME];

    if (!max || !peer->known || uid_counts_get(&s->per_uid, peer->uid) < max)
        return false;
    snprintf(key, sizeof(key), "max_clients_per_user u%u", peer->uid);
    if (peer_refusal_log_admit(&s->refusal_log, key))
        log_warn("client_refused", "reason=max_clients_per_user uid=%u pid=%d limit=%u",
                 peer->uid, (int)peer->pid, max);
    snprintf(msg, sizeof(msg), "user %u already has %u client sessions, the most "
             "maxClientsPerUser allows; close some, or raise maxClientsPerUser in the daemon "
             "settings", peer->uid, max);
    refuse(fd, msg);
    return true;
}

void client_accept(struct sessions *s, int fd)
{
    const struct daemon_config *dc = s->cfg;
    struct peer_cred peer;

    if (s->shutting_down) {
        close(fd);
        return;
    }
    if (sessions_count(s) >= dc->max_clients) {
        log_warn("client_refused", "reason=max_clients limit=%u", dc->max_clients);
        refuse(fd, "too many client sessions (maxClients reached); try again later");
        return;
    }
    peer_cred_read(fd, &peer);
    if (refuse_over_user_limit(s, fd, &peer))
        return;
    struct client *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->s = s;
    c->peer = peer;
    c->connected_us = now_us();
    if (sockbuf_init(&c->io, s->base, fd, &client_io, c, &s->budget, INPUT_READ_AHEAD,
                     dc->output_high_water / 2) != 0) {
        free(c);
        close(fd);
        return;
    }
    client_register(c);
}
