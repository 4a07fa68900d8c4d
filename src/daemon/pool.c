/*
 * pool.c — server connections of one pool, the FIFO wait queue, recycling,
 * health checks, connect retry with exponential backoff, and counters.
 *
 * The state of a server connection is the list it is on:
 *   connecting  being established by the driver
 *   idle        ready, not bound to any client (LIFO: hot ones reused first)
 *   active      bound to a client (or abandoned by one, finishing an op)
 *   checking    running a health-check ping
 *   resetting   rolling back a transaction a client left behind
 * Every operation's completion passes through server_on_done() first, so the
 * pool counts statements and errors and sees broken connections before the
 * client does.
 *
 * Connect failures, the retry timer and the up/down state are kept by
 * pool_health.c (p->health), told of every attempt's outcome here. While
 * the pool is down, requests that have no open connection of their role to
 * wait for fail with UNAVAILABLE on the next loop pass, without dialling.
 *
 * Timers: when libevent cannot arm one (event_add fails: out of memory),
 * nothing is left without a deadline: the maintenance tick (on_maint, at
 * least every second) also ends waiters past acquireTimeout and makes a
 * retry that is due, so both happen at most one tick late. The fail-fast
 * pass is event_active(), which cannot fail. A pool whose maintenance tick
 * cannot be armed does not start (pool_start).
 *
 * Generations: a server remembers the pool's generation it was opened in;
 * when a reload changes the connection settings (or pool_reconnect asks)
 * the generation moves on and older servers are closed as they come back
 * (server_retire_reason: also lifetime, broken, above a lowered size). The
 * changes themselves, and pause/resume, are in pool_admin.c.
 *
 * Ownership: the pool owns every struct server and its backend connection;
 * waiters belong to their clients.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/util.h>

#include "daemon/log.h"
#include "daemon/pool.h"
#include "daemon/pool_internal.h"

static const struct backend_sink server_sink;
static void server_on_done(void *arg, const struct backend_result *res);
static void schedule_fail_fast(struct pool *p);

static void on_idle_lost(void *arg);

static void set_state(struct server *sv, enum server_state st)
{
    struct pool *p = sv->pool;

    if (sv->state == SV_IDLE && st != SV_IDLE && p->drv->unwatch_idle)
        p->drv->unwatch_idle(sv->conn);
    if (st == SV_IDLE && sv->state != SV_IDLE && p->drv->watch_idle)
        p->drv->watch_idle(sv->conn, on_idle_lost, sv);
    if (st == SV_ACTIVE && sv->state != SV_ACTIVE)
        sv->busy_since_us = now_us();
    TAILQ_REMOVE(&p->lists[sv->state], sv, link);
    p->counts[sv->state]--;
    sv->state = st;
    if (st == SV_IDLE)
        TAILQ_INSERT_HEAD(&p->lists[st], sv, link);
    else
        TAILQ_INSERT_TAIL(&p->lists[st], sv, link);
    p->counts[st]++;
}

static void timeval_from_us(struct timeval *tv, uint64_t us)
{
    tv->tv_sec = (time_t)(us / 1000000u);
    tv->tv_usec = (suseconds_t)(us % 1000000u);
}

/* ---------------------------------------------------------------- servers */

void server_close(struct server *sv, const char *reason)
{
    struct pool *p = sv->pool;

    if (sv->state == SV_IDLE && p->drv->unwatch_idle)
        p->drv->unwatch_idle(sv->conn);
    log_debug("server_close", "pool=%s server=%llu reason=%s", p->cfg->name,
              (unsigned long long)sv->id, reason);
    TAILQ_REMOVE(&p->lists[sv->state], sv, link);
    p->counts[sv->state]--;
    p->nrole[sv->role]--;
    p->totals.total_server_closes++;
    p->drv->close(sv->conn);
    free(sv);
    schedule_fail_fast(p);   /* waiters for it may have nothing left to wait for */
}

/* Copy with truncation (messages are informative; cutting them is fine). */
static void copy_text(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);

    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* ------------------------------------------------- opening, up and down */

/* While the pool is down, a request for `role` fails at once when no open
 * connection of that role could come back to serve it (connections that
 * work, e.g. when only growing the pool fails, are still waited for). */
static bool nothing_to_wait_for(const struct pool *p, enum backend_role role)
{
    const struct server *sv;
    int open = p->nrole[role];

    if (!p->health.down)
        return false;
    TAILQ_FOREACH(sv, &p->lists[SV_CONNECTING], link)
        if (sv->role == role)
            open--;
    return open <= 0;
}

/* Fail the waiters that have nothing to wait for on the next loop pass
 * (never from inside the caller's stack). */
static void schedule_fail_fast(struct pool *p)
{
    if (p->health.down && p->nwaiting)
        event_active(p->fail_timer, EV_TIMEOUT, 1);
}

/* An attempt to open a connection failed (conn_new or connect). */
static void connect_failed(struct pool *p, enum backend_role role, const char *msg)
{
    p->totals.total_connect_errors++;
    if (health_connect_failed(&p->health, role, msg))
        schedule_fail_fast(p);
}

static void on_connected(void *arg, const struct backend_result *res)
{
    struct server *sv = arg;
    struct pool *p = sv->pool;

    if (!res->ok) {
        char msg[sizeof(res->err.message)];
        copy_text(msg, sizeof(msg), res->err.message);
        enum backend_role role = sv->role;
        server_close(sv, "connect_failed");
        connect_failed(p, role, msg);
        return;
    }
    p->totals.total_connects++;
    health_recovered(&p->health);
    log_debug("server_open", "pool=%s server=%llu role=%s", p->cfg->name,
              (unsigned long long)sv->id, sv->role == ROLE_READER ? "reader" : "writer");
    sv->idle_since_us = now_us();
    pool_dispatch(p, sv);
    /* Waiters that queued while attempts failed get their connections now. */
    pool_maybe_connect(p, ROLE_WRITER);
    pool_maybe_connect(p, ROLE_READER);
}

static void server_open(struct pool *p, enum backend_role role)
{
    char err[256];
    struct server *sv = calloc(1, sizeof(*sv));

    p->totals.total_connect_attempts++;
    if (!sv) {
        connect_failed(p, role, "out of memory opening a server connection");
        return;
    }
    sv->conn = p->drv->conn_new(p->cfg, p->base, role, err, sizeof(err));
    if (!sv->conn) {
        free(sv);
        connect_failed(p, role, err);
        return;
    }
    sv->pool = p;
    sv->cfg = p->cfg;
    sv->gen = p->gen;
    sv->role = role;
    sv->id = ++p->next_server_id;
    sv->created_us = now_us();
    sv->state = SV_CONNECTING;
    TAILQ_INSERT_TAIL(&p->lists[SV_CONNECTING], sv, link);
    p->counts[SV_CONNECTING]++;
    p->nrole[role]++;
    p->drv->connect(sv->conn, on_connected, sv);
}

/* Open connections of role that count against its size (maxOpenConns).
 * Pins above maxPinned (a reload lowered it, with maxOpenConns, below the
 * pins there were) do not: pinned sessions never leave the others without
 * a connection. Those connections are closed as their sessions unpin. A
 * role that cannot grow (SQLite's one writer) counts every connection. */
static int role_counted(const struct pool *p, enum backend_role role)
{
    int excess = p->pinned - p->cfg->max_pinned;

    if (role != ROLE_WRITER || excess <= 0 || !p->role_grows[ROLE_WRITER])
        return p->nrole[role];
    return p->nrole[role] - excess;
}

/* server_retire_reason without the clock (pool_dispatch: no clock read
 * added to a release; the lifetime is checked there and by maintenance). */
static const char *server_stale(const struct pool *p, const struct server *sv)
{
    if (sv->broken)
        return "broken";
    if (sv->gen != p->gen)
        return "reconfigured";   /* connection settings changed, or pool_reconnect */
    if (role_counted(p, sv->role) > p->max_role[sv->role])
        return "resized";        /* maxOpenConns was lowered */
    return NULL;
}

const char *server_retire_reason(const struct pool *p, const struct server *sv, uint64_t now)
{
    uint64_t life = p->cfg->conn_max_lifetime_ms * 1000u;

    if (life && now - sv->created_us >= life && !sv->broken)
        return "lifetime";
    return server_stale(p, sv);
}

/* ------------------------------------------------------------ wait queue */

void arm_wait_timer(struct pool *p)
{
    struct pool_waiter *w = TAILQ_FIRST(&p->waiters);

    if (!w) {
        event_del(p->wait_timer);
        return;
    }
    uint64_t deadline = w->enqueued_us + p->cfg->acquire_timeout_ms * 1000u;
    uint64_t now = now_us();
    health_arm_timer(&p->health, p->wait_timer, deadline > now ? deadline - now : 0,
                     "acquire_timeout");
}

static void waiter_remove(struct pool *p, struct pool_waiter *w)
{
    TAILQ_REMOVE(&p->waiters, w, link);
    w->queued = false;
    if (w->pin) {
        w->pin = false;
        p->pin_waiting--;   /* granted, failed or cancelled: its place is free again */
    }
    p->nwaiting--;
    p->nwait_role[w->want]--;
    uint64_t now = now_us(), waited = now - w->enqueued_us;
    p->totals.total_wait_us += waited;
    latency_record(&p->lat_wait, now, waited);
}

static void waiter_fail(struct pool *p, struct pool_waiter *w, int code, const char *msg)
{
    struct backend_error err;

    memset(&err, 0, sizeof(err));
    err.code = code;
    copy_text(err.message, sizeof(err.message), msg);
    waiter_remove(p, w);
    w->fn(w->arg, NULL, &err);
}

/* fail_timer: the pool is down; queued requests with nothing to wait for
 * fail now. Only those queued before this pass (what their callbacks queue
 * goes to the next one). */
static void on_fail_fast(evutil_socket_t fd, short what, void *arg)
{
    struct pool *p = arg;
    struct pool_waiter *w, *next;
    int n = p->nwaiting;
    char msg[512];

    (void)fd;
    (void)what;
    health_unavailable_message(&p->health, msg, sizeof(msg));
    for (w = TAILQ_FIRST(&p->waiters); w && n-- > 0; w = next) {
        next = TAILQ_NEXT(w, link);
        if (nothing_to_wait_for(p, w->want)) {
            p->totals.total_unavailable++;
            waiter_fail(p, w, DBPOOL_E_UNAVAILABLE, msg);
        }
    }
    arm_wait_timer(p);
}

/* The server of `role` held longest by a client, or NULL. */
static const struct server *longest_held(const struct pool *p, enum backend_role role)
{
    const struct server *sv, *best = NULL;

    TAILQ_FOREACH(sv, &p->lists[SV_ACTIVE], link)
        if (sv->role == role && (!best || sv->busy_since_us < best->busy_since_us))
            best = sv;
    return best;
}

/* POOL_TIMEOUT text. When more connections of the role would help, say so;
 * when the role has a fixed size (SQLite's one writer), name the holder. */
static void pool_timeout_message(const struct pool *p, enum backend_role role, char *msg,
                                 size_t len)
{
    const char *rname = role == ROLE_READER ? "reader" : "writer";
    const struct server *h = longest_held(p, role);
    uint64_t held_ms = h ? (now_us() - h->busy_since_us) / 1000u : 0;

    if (p->role_grows[role]) {
        snprintf(msg, len,
                 "no server connection in pool \"%s\" became free within %llu ms "
                 "(all %d %s%sbusy; raise maxOpenConns or acquireTimeout, or shorten "
                 "transactions)",
                 p->cfg->name, (unsigned long long)p->cfg->acquire_timeout_ms,
                 p->max_role[role], p->max_role[ROLE_READER] ? rname : "",
                 p->max_role[ROLE_READER] ? " connections " : "");
        return;
    }
    snprintf(msg, len,
             "the %s connection of pool \"%s\" did not become free within %llu ms: it is "
             "held by another session's transaction or statement (for %llu.%llu s). The pool "
             "has %d %s connection%s and raising maxOpenConns does not add any: shorten write "
             "transactions, or raise acquireTimeout",
             rname, p->cfg->name, (unsigned long long)p->cfg->acquire_timeout_ms,
             (unsigned long long)(held_ms / 1000u), (unsigned long long)(held_ms % 1000u / 100u),
             p->max_role[role], rname, p->max_role[role] == 1 ? "" : "s");
}

/* Fail the waiters past acquireTimeout (the queue is in arrival order). */
static void expire_waiters(struct pool *p, uint64_t now)
{
    uint64_t limit = p->cfg->acquire_timeout_ms * 1000u;
    struct pool_waiter *w;
    char msg[512];

    while ((w = TAILQ_FIRST(&p->waiters)) && now - w->enqueued_us >= limit) {
        p->totals.total_acquire_timeouts++;
        if (p->paused) {
            snprintf(msg, sizeof(msg), "pool \"%s\" is paused by an administrator and no "
                     "server connection was handed out within %llu ms; retry after it is "
                     "resumed", p->cfg->name, (unsigned long long)p->cfg->acquire_timeout_ms);
            waiter_fail(p, w, DBPOOL_E_POOL_TIMEOUT, msg);
        } else if (p->health.unhealthy) {
            p->totals.total_unavailable++;
            health_unavailable_message(&p->health, msg, sizeof(msg));
            waiter_fail(p, w, DBPOOL_E_UNAVAILABLE, msg);
        } else {
            pool_timeout_message(p, w->want, msg, sizeof(msg));
            waiter_fail(p, w, DBPOOL_E_POOL_TIMEOUT, msg);
        }
    }
    arm_wait_timer(p);
}

static void on_wait_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    expire_waiters(arg, now_us());
}

static struct pool_waiter *first_waiter_for(struct pool *p, enum backend_role role)
{
    struct pool_waiter *w;

    TAILQ_FOREACH(w, &p->waiters, link)
        if (w->want == role)
            return w;
    return NULL;
}

/* A server is free (fresh, released or checked): give it to the first
 * waiter that wants its role, else park it on the idle list. */
void pool_dispatch(struct pool *p, struct server *sv)
{
    const char *why = server_stale(p, sv);
    struct pool_waiter *w;

    if (why) {
        server_close(sv, why);
        pool_maybe_connect(p, ROLE_WRITER);
        pool_maybe_connect(p, ROLE_READER);
        return;
    }
    w = p->paused ? NULL : first_waiter_for(p, sv->role);
    if (!w) {
        sv->idle_since_us = now_us();
        set_state(sv, SV_IDLE);
        return;
    }
    waiter_remove(p, w);
    p->totals.total_waits++;
    arm_wait_timer(p);
    set_state(sv, SV_ACTIVE);
    w->fn(w->arg, sv, NULL);
}

static enum backend_role normalize_role(const struct pool *p, enum backend_role want)
{
    return (want == ROLE_READER && p->max_role[ROLE_READER] > 0) ? ROLE_READER : ROLE_WRITER;
}

/* Open a connection for waiters of `role` that no connect in flight will
 * serve. Never while attempts fail: then the retry timer alone dials. */
void pool_maybe_connect(struct pool *p, enum backend_role role)
{
    if (p->paused || health_dialling_paused(&p->health) ||
        role_counted(p, role) >= p->max_role[role])
        return;
    /* Don't open more than there are waiters for (connects in flight count). */
    int pending = 0;
    struct server *sv;
    TAILQ_FOREACH(sv, &p->lists[SV_CONNECTING], link)
        if (sv->role == role)
            pending++;
    if (pending < p->nwait_role[role])
        server_open(p, role);
}

/* pool_acquire; pin: a PIN's wait, which holds a place of maxPinned from
 * before anything it starts can call back (waiter_remove gives it back). */
static struct server *acquire(struct pool *p, struct pool_waiter *w, enum backend_role want,
                              bool pin, pool_grant_fn fn, void *arg)
{
    struct server *sv;

    want = normalize_role(p, want);
    TAILQ_FOREACH(sv, &p->lists[SV_IDLE], link) {
        if (sv->role == want && !p->paused) {
            set_state(sv, SV_ACTIVE);
            latency_record(&p->lat_wait, sv->busy_since_us, 0);   /* set_state read the clock */
            return sv;
        }
    }
    w->want = want;
    w->pin = pin;
    if (pin)
        p->pin_waiting++;
    w->fn = fn;
    w->arg = arg;
    w->enqueued_us = now_us();
    w->queued = true;
    TAILQ_INSERT_TAIL(&p->waiters, w, link);
    p->nwaiting++;
    p->nwait_role[want]++;
    if (p->nwaiting == 1)
        arm_wait_timer(p);
    if (nothing_to_wait_for(p, want)) {
        schedule_fail_fast(p);   /* fail fast, without dialling */
        return NULL;
    }
    pool_maybe_connect(p, want);
    return NULL;
}

struct server *pool_acquire(struct pool *p, struct pool_waiter *w, enum backend_role want,
                            pool_grant_fn fn, void *arg)
{
    return acquire(p, w, want, false, fn, arg);
}

struct server *pool_acquire_pin(struct pool *p, struct pool_waiter *w, pool_grant_fn fn,
                                void *arg)
{
    return acquire(p, w, ROLE_WRITER, true, fn, arg);
}

void pool_cancel_wait(struct pool *p, struct pool_waiter *w)
{
    if (!w->queued)
        return;
    waiter_remove(p, w);
    arm_wait_timer(p);
}

/* ----------------------------------------------------- release and reset */

static void server_on_done(void *arg, const struct backend_result *res);

static void reset_done(void *arg, const struct backend_result *res)
{
    struct server *sv = arg;

    if (!res->ok || res->txstate != 'I')
        sv->broken = true;
    pool_release(sv->pool, sv);
}

static const struct backend_sink reset_sink = { NULL, NULL, reset_done };

/* The driver makes the connection fit for the next client (PostgreSQL and
 * SQLite: ROLLBACK; a pinned session's: reset_session). Its completion
 * passes server_on_done like a statement's: it is counted, and a broken
 * connection is noted. */
static void server_reset(struct pool *p, struct server *sv, bool session)
{
    if (session)
        log_info("server_reset", "pool=%s server=%llu reason=\"a pinned session ended: its "
                 "locks, temporary tables and settings are dropped\"", p->cfg->name,
                 (unsigned long long)sv->id);
    else
        log_info("server_reset", "pool=%s server=%llu reason=\"the last client left a "
                 "transaction open, or (mysql) changed its session: SET, USE, temporary tables, "
                 "locks\"", p->cfg->name, (unsigned long long)sv->id);
    set_state(sv, SV_RESETTING);
    sv->abandoned = false;
    sv->csink = &reset_sink;
    sv->carg = sv;
    sv->op_running = true;
    sv->op_started_us = now_us();
    (session ? p->drv->reset_session : p->drv->reset)(sv->conn, server_on_done, sv);
}

/* A pinned server comes back (pool_pin.c): the pin ends, and the driver
 * resets the whole session before anyone else gets it; a driver without
 * such a reset has the connection replaced. True when that took sv over;
 * false for a broken one (pool_release closes it). */
static bool unpin_server(struct pool *p, struct server *sv)
{
    enum backend_role role = sv->role;

    sv->pinned = false;
    p->pinned--;
    if (sv->broken)
        return false;
    if (p->drv->reset_session) {
        server_reset(p, sv, true);
        return true;
    }
    server_close(sv, "pinned session ended (the driver has no session reset: a new connection "
                     "replaces it)");
    pool_maybe_connect(p, role);
    return true;
}

void pool_release(struct pool *p, struct server *sv)
{
    const char *why;
    uint64_t now = now_us();

    if (sv->state == SV_ACTIVE) {
        p->totals.total_transactions++;
        latency_record(&p->lat_tx, now, now - sv->busy_since_us);
    }
    if (sv->pinned && unpin_server(p, sv))
        return;
    if ((why = server_retire_reason(p, sv, now))) {
        server_close(sv, why);
        pool_maybe_connect(p, ROLE_WRITER);
        pool_maybe_connect(p, ROLE_READER);
        return;
    }
    if (p->drv->txstate(sv->conn) != 'I') {
        server_reset(p, sv, false);
        return;
    }
    if (!first_waiter_for(p, sv->role) && p->counts[SV_IDLE] >= p->cfg->max_idle_conns) {
        server_close(sv, "max_idle");
        return;
    }
    pool_dispatch(p, sv);
}

void pool_abandon(struct pool *p, struct server *sv)
{
    sv->csink = NULL;
    sv->carg = NULL;
    if (!sv->op_running) {
        pool_release(p, sv);
        return;
    }
    sv->abandoned = true;
    p->drv->cancel(sv->conn);
}

/* ------------------------------------------------- operations on servers */

static void server_on_columns(void *arg, size_t n, const dbpool_column *cols)
{
    struct server *sv = arg;

    if (sv->csink && sv->csink->columns)
        sv->csink->columns(sv->carg, n, cols);
}

static bool server_on_row(void *arg, size_t n, const dbpool_value *vals)
{
    struct server *sv = arg;

    if (sv->csink && sv->csink->row)
        return sv->csink->row(sv->carg, n, vals);
    return true;   /* nobody listens: discard */
}

/* DDL took effect on one connection: tell every connection of the pool. */
static void pool_schema_changed(struct pool *p)
{
    struct server *sv;

    if (!p->drv->schema_changed)
        return;
    for (size_t i = 0; i < sizeof(p->lists) / sizeof(p->lists[0]); i++)
        TAILQ_FOREACH(sv, &p->lists[i], link)
            p->drv->schema_changed(sv->conn);
}

static void server_on_done(void *arg, const struct backend_result *res)
{
    struct server *sv = arg;
    struct pool *p = sv->pool;
    const struct backend_sink *sink = sv->csink;
    void *carg = sv->carg;

    sv->op_running = false;
    sv->csink = NULL;
    sv->carg = NULL;
    if (res->broken && !sv->broken) {
        sv->broken = true;   /* last_error stays for connect/health failures */
        log_warn("server_broken", "pool=%s server=%llu error=\"%s\"", p->cfg->name,
                 (unsigned long long)sv->id, res->err.message);
    }
    if (res->schema_changed)
        pool_schema_changed(p);
    if (!res->reroute_to_writer) {
        if (res->ok)
            p->totals.total_statements++;
        else
            p->totals.total_errors++;
        if (res->stmt_cache == BR_CACHED)
            p->totals.total_cached_execs++;
        else if (res->stmt_cache == BR_PREPARED)
            p->totals.total_prepares++;
    }
    if (sv->abandoned) {
        sv->abandoned = false;
        pool_release(p, sv);
        return;
    }
    if (sink && sink->done)
        sink->done(carg, res);
}

static const struct backend_sink server_sink = { server_on_columns, server_on_row, server_on_done };

void server_exec(struct server *sv, const struct backend_query *q,
                 const struct backend_sink *sink, void *arg)
{
    sv->csink = sink;
    sv->carg = arg;
    sv->op_running = true;
    sv->requests++;
    sv->op_started_us = now_us();
    sv->pool->drv->exec(sv->conn, q, &server_sink, sv);
}

void server_cancel(struct server *sv)
{
    if (sv->op_running)
        sv->pool->drv->cancel(sv->conn);
}

void server_resume(struct server *sv)
{
    if (sv->op_running)
        sv->pool->drv->resume(sv->conn);
}

char server_txstate(const struct server *sv)
{
    return sv->pool->drv->txstate(sv->conn);
}

enum backend_role server_role(const struct server *sv)
{
    return sv->role;
}

const char *server_info(const struct server *sv)
{
    return sv->pool->drv->server_info ? sv->pool->drv->server_info(sv->conn) : "";
}

uint64_t server_id(const struct server *sv)
{
    return sv->id;
}

/* ------------------------------------------------------------ maintenance */

/* Open one writer to find out whether the database answers (unless one is
 * being opened already or the retry timer will); its outcome sets the
 * pool's health. With every writer open (busy), an unhealthy pool asks the
 * retry timer to try later. */
static void pool_probe(struct pool *p)
{
    if (p->health.retry_pending || p->counts[SV_CONNECTING] > 0)
        return;
    if (role_counted(p, ROLE_WRITER) >= p->max_role[ROLE_WRITER]) {
        if (p->health.unhealthy)
            health_retry_later(&p->health, ROLE_WRITER);
        return;
    }
    server_open(p, ROLE_WRITER);
}

/* An idle connection died (server restarted, backend terminated): drop it
 * and probe at once, so a dead server shows as unhealthy right away and a
 * live one has a fresh connection ready. */
static void on_idle_lost(void *arg)
{
    struct server *sv = arg;
    struct pool *p = sv->pool;

    log_warn("server_lost", "pool=%s server=%llu state=idle", p->cfg->name,
             (unsigned long long)sv->id);
    server_close(sv, "lost_while_idle");
    pool_probe(p);
}

static void health_done(void *arg, const struct backend_result *res)
{
    struct server *sv = arg;
    struct pool *p = sv->pool;

    sv->op_running = false;
    if (!res->ok) {
        health_mark_unhealthy(&p->health, res->err.message);
        log_warn("health_check_failed", "pool=%s server=%llu error=\"%s\"", p->cfg->name,
                 (unsigned long long)sv->id, res->err.message);
        server_close(sv, "health_check_failed");
        pool_probe(p);
        return;
    }
    pool_dispatch(p, sv);
}

static void health_check_idle(struct pool *p)
{
    struct server *sv, *next;

    for (sv = TAILQ_FIRST(&p->lists[SV_IDLE]); sv; sv = next) {
        next = TAILQ_NEXT(sv, link);
        set_state(sv, SV_CHECKING);
        sv->op_running = true;
        sv->op_started_us = now_us();
        p->drv->ping(sv->conn, health_done, sv);
    }
}

/* Close idle servers past connMaxIdleTime or connMaxLifetime (oldest idle
 * are at the tail). The last writer of a healthy pool is kept only by
 * maxIdleConns, like database/sql. */
static void recycle_idle(struct pool *p, uint64_t now)
{
    uint64_t idle_limit = p->cfg->conn_max_idle_time_ms * 1000u;
    struct server *sv, *prev;

    const char *why;

    for (sv = TAILQ_LAST(&p->lists[SV_IDLE], server_list); sv; sv = prev) {
        prev = TAILQ_PREV(sv, server_list, link);
        if ((why = server_retire_reason(p, sv, now)))
            server_close(sv, why);
        else if (idle_limit && now - sv->idle_since_us >= idle_limit)
            server_close(sv, "idle_time");
    }
}

/* A reset between clients or a health check still running after the
 * pool's connect `timeout`: the database does not answer (frozen, cut
 * off). The connection is closed (backend.h: that abandons the operation)
 * instead of staying out of service, a place of maxOpenConns, for ever. */
static void close_unanswered(struct pool *p, enum server_state st, uint64_t now)
{
    struct server *sv, *next;

    for (sv = TAILQ_FIRST(&p->lists[st]); sv; sv = next) {
        next = TAILQ_NEXT(sv, link);
        enum backend_role sv_role = sv->role;
        if (!sv->op_running || now - sv->op_started_us < p->cfg->timeout_ms * 1000u)
            continue;
        log_warn("server_op_timeout", "pool=%s server=%llu op=%s timeout_ms=%llu action=\"closed\" "
                 "hint=\"the database did not answer; check the server and the network\"",
                 p->cfg->name, (unsigned long long)sv->id, st == SV_CHECKING ? "health_check"
                 : "reset", (unsigned long long)p->cfg->timeout_ms);
        if (st == SV_CHECKING) {   /* as a failed check (health_done) */
            health_mark_unhealthy(&p->health, "a health check was not answered within the "
                                  "pool's timeout");
            server_close(sv, "health_check_timeout");
            pool_probe(p);
            continue;
        }
        server_close(sv, "reset_timeout");
        pool_maybe_connect(p, sv_role);
    }
}

/* The work of timers libevent could not arm (health_arm_timer): waiters
 * past their deadline, a connect retry that is due. Cheap when there is
 * none. */
static void maint_backstop(struct pool *p, uint64_t now)
{
    struct pool_waiter *w = TAILQ_FIRST(&p->waiters);

    if (w && now - w->enqueued_us >= p->cfg->acquire_timeout_ms * 1000u)
        expire_waiters(p, now);
    health_backstop(&p->health, now);
}

static void on_maint(evutil_socket_t fd, short what, void *arg)
{
    struct pool *p = arg;
    uint64_t now = now_us();
    uint64_t interval = p->cfg->health_check_interval_ms * 1000u;

    (void)fd;
    (void)what;
    maint_backstop(p, now);
    recycle_idle(p, now);
    close_unanswered(p, SV_RESETTING, now);
    close_unanswered(p, SV_CHECKING, now);
    if (interval && now - p->last_health_us >= interval) {
        p->last_health_us = now;
        if (p->counts[SV_IDLE] > 0)
            health_check_idle(p);
        else
            pool_probe(p);   /* nothing to ping: does the database accept connections?
                                (a no-op at maxOpenConns or while a connect is pending) */
    }
}

/* The retry timer's backoff delay is over: one attempt (a probe, also
 * without waiters, so health returns without traffic). With every
 * connection of the role open there is nothing to dial: look again after
 * another delay. */
static void pool_dial(void *arg, enum backend_role role)
{
    struct pool *p = arg;

    if (role_counted(p, role) >= p->max_role[role]) {
        health_retry_later(&p->health, role);
        return;
    }
    server_open(p, role);
}

static uint64_t maint_period_ms(const struct pool_config *cfg)
{
    uint64_t m = 1000;
    uint64_t cands[3] = { cfg->conn_max_idle_time_ms, cfg->conn_max_lifetime_ms,
                          cfg->health_check_interval_ms };

    for (int i = 0; i < 3; i++)
        if (cands[i] && cands[i] / 4 < m)
            m = cands[i] / 4;
    return m < 20 ? 20 : m;
}

/* Whether a larger maxOpenConns would give the pool more connections of
 * this role (asked of the driver: SQLite keeps one writer whatever it is). */
static bool role_grows(const struct pool *p, enum backend_role role)
{
    struct pool_config more = *p->cfg;
    int lim[2];

    if (more.max_open_conns == INT_MAX)
        return false;
    more.max_open_conns++;
    p->drv->pool_limits(&more, &lim[ROLE_WRITER], &lim[ROLE_READER]);
    return lim[role] > p->max_role[role];
}

/* ---------------------------------------------------------------- public */

struct pool *pool_new(const struct pool_config *cfg, const struct backend_driver *drv,
                      struct event_base *base)
{
    struct pool *p = calloc(1, sizeof(*p));

    if (!p)
        return NULL;
    p->cfg = cfg;
    p->drv = drv;
    p->base = base;
    for (int i = 0; i < 5; i++)
        TAILQ_INIT(&p->lists[i]);
    TAILQ_INIT(&p->waiters);
    pool_set_limits(p);
    p->wait_timer = evtimer_new(base, on_wait_timeout, p);
    p->maint_timer = event_new(base, -1, EV_PERSIST, on_maint, p);
    p->fail_timer = evtimer_new(base, on_fail_fast, p);
    if (health_init(&p->health, cfg, base, pool_dial, p) != 0 || !p->wait_timer ||
        !p->maint_timer || !p->fail_timer) {
        pool_free(p);
        return NULL;
    }
    return p;
}

void pool_set_limits(struct pool *p)
{
    p->drv->pool_limits(p->cfg, &p->max_role[ROLE_WRITER], &p->max_role[ROLE_READER]);
    p->role_grows[ROLE_WRITER] = role_grows(p, ROLE_WRITER);
    p->role_grows[ROLE_READER] = role_grows(p, ROLE_READER);
}

int pool_arm_maint(struct pool *p)
{
    struct timeval tv;

    timeval_from_us(&tv, maint_period_ms(p->cfg) * 1000u);
    return event_add(p->maint_timer, &tv);
}

int pool_start(struct pool *p, char *errbuf, size_t errlen)
{
    if (pool_arm_maint(p) != 0) {
        snprintf(errbuf, errlen, "pool \"%s\": cannot arm its maintenance timer (out of "
                 "memory?); check the daemon's memory and start it again", p->cfg->name);
        return -1;
    }
    p->last_health_us = now_us();
    server_open(p, ROLE_WRITER);
    return 0;
}

void pool_free(struct pool *p)
{
    struct pool_waiter *w;
    struct server *sv;

    if (!p)
        return;
    while ((w = TAILQ_FIRST(&p->waiters)))
        waiter_fail(p, w, DBPOOL_E_SHUTDOWN, "dbpoold is shutting down");
    for (int i = 0; i < 5; i++)
        while ((sv = TAILQ_FIRST(&p->lists[i])))
            server_close(sv, "shutdown");
    if (p->wait_timer)
        event_free(p->wait_timer);
    if (p->maint_timer)
        event_free(p->maint_timer);
    health_deinit(&p->health);
    if (p->fail_timer)
        event_free(p->fail_timer);
    free(p);
}

const struct pool_config *pool_config(const struct pool *p)
{
    return p->cfg;
}

const char *pool_backend_name(const struct pool *p)
{
    return p->drv->name;
}

/* ---- the backend's SQL, for the session's transaction plan ---- */

enum backend_role pool_route(const struct pool *p, const char *sql, size_t len)
{
    return p->drv->route(sql, len);
}

bool pool_begin_with(const struct pool *p)
{
    return p->drv->begin_with;
}

const char *pool_begin_sql(const struct pool *p, bool read_only, enum backend_role role)
{
    return p->drv->begin_sql(read_only, role);
}

const char *pool_tx_sql(const struct pool *p, enum backend_tx_op op)
{
    return p->drv->tx_sql(op);
}

bool pool_healthy(const struct pool *p)
{
    return !p->health.unhealthy;
}

bool pool_client_attach(struct pool *p)
{
    uint32_t max = p->cfg->max_clients_per_pool;

    if (max && (uint32_t)p->clients_connected >= max)
        return false;
    p->clients_connected++;
    return true;
}

void pool_client_detach(struct pool *p)
{
    p->clients_connected--;
}

void pool_get_stats(const struct pool *p, struct pool_stats *out)
{
    struct pool_waiter *head = TAILQ_FIRST(&p->waiters);

    *out = p->totals;
    out->name = p->cfg->name;
    out->type = p->drv->name;
    out->healthy = !p->health.unhealthy;
    out->paused = p->paused;
    out->down = p->health.down;
    out->connect_failures = p->health.failures;
    out->next_connect_in_ms = health_next_attempt_ms(&p->health);
    copy_text(out->last_error, sizeof(out->last_error), p->health.last_error);
    out->max_open = p->cfg->max_open_conns;
    out->servers_idle = p->counts[SV_IDLE];
    out->servers_connecting = p->counts[SV_CONNECTING];
    out->servers_busy = p->counts[SV_ACTIVE] + p->counts[SV_CHECKING] + p->counts[SV_RESETTING];
    out->servers_open = out->servers_idle + out->servers_busy + out->servers_connecting;
    out->clients_connected = p->clients_connected;
    out->clients_active = p->counts[SV_ACTIVE];
    out->clients_waiting = p->nwaiting;
    out->clients_pinned = p->pinned;
    out->max_pinned = p->cfg->max_pinned;
    uint64_t now = now_us();
    out->longest_wait_us = head ? now - head->enqueued_us : 0;
    latency_summarize(&p->lat_tx, now, &out->tx_latency);
    latency_summarize(&p->lat_wait, now, &out->wait_latency);
}
