/*
 * driver.c — the PostgreSQL driver ("postgres") as a struct backend_driver
 * (backend.h): creating and closing a connection, the timer and kick
 * callbacks that dispatch by phase, and the pool-level calls. The top of
 * the driver's files: the operations are in conn.c, cancel.c, connect.c,
 * exec.c and results.c; pg_internal.h's top comment describes the whole.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "backend/backend.h"
#include "backend/helper.h"
#include "backend/pg/backend_pg.h"
#include "backend/pg/pg_internal.h"
#include "backend/pg/cancel.h"
#include "backend/pg/conn.h"
#include "backend/pg/connect.h"
#include "backend/pg/exec.h"
#include "backend/pg/results.h"
#include "backend/pg/pg_stmtcache.h"

/* Wait (bounded) for every helper: one stuck connecting to an unreachable
 * server, or in a slow DNS lookup, must not hold up shutdown forever. */
static void pg_quiesce(void)
{
    helper_quiesce(QUIESCE_WAIT_MS);
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

/* ------------------------------------------- the connection's callbacks */

/* c->ev_timer: the connect timeout, the bound on PH_CANCEL_WAIT, a cancel
 * re-send. */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct backend_conn *c = arg;

    (void)fd;
    (void)what;
    enter(c);
    if (c->phase == PH_CONNECTING || c->phase == PH_RESOLVING)
        pg_connect_timed_out(c);
    else if (c->phase == PH_CANCEL_WAIT || (c->phase == PH_READING && c->canceled))
        pg_cancel_timer(c);
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
        pg_complete(c, &r);
    } else if (c->phase == PH_READING && !c->paused) {
        pg_pump(c);   /* resume() or cancel() of a paused stream */
    } else if (c->phase == PH_IDLE && c->watching && c->watch_dead) {
        pg_watch_fire(c);   /* watch_idle() found the connection dead */
    }
    leave(c);
}

/* -------------------------------------------------- creation and close */

/* The connection's events, all of them (harmless on NULL members). */
static void free_events(struct backend_conn *c)
{
    struct event **evs[] = { &c->ev_timer, &c->ev_kick, &c->ev_cancel, &c->ev_resolved };

    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        if (*evs[i])
            event_free(*evs[i]);
        *evs[i] = NULL;
    }
}

/* PQfinish sends Terminate without waiting (the socket is non-blocking) and
 * closes the socket. A cancel helper still running owns only its PGcancel
 * and its share of the job; a resolver helper only its job; neither can
 * reach the connection's events any more (pg_cancel_forget,
 * pg_resolve_forget). */
static void pg_close(struct backend_conn *c)
{
    if (!c || c->closed)
        return;
    pg_unwatch_idle(c);
    c->closed = true;
    if (c->pg && c->connected && (c->phase == PH_SENDING || c->phase == PH_READING)) {
        /* A server backend does not notice a closed client while it
         * computes: cancel the statement so it does not run on. */
        pg_cancel_send(c);
    }
    pg_cancel_forget(c);   /* before ev_cancel goes */
    pg_resolve_forget(c);  /* before ev_resolved goes */
    pg_drop_conn(c);
    free_events(c);
    c->op = OP_NONE;
    if (c->depth == 0)
        pg_conn_free(c);
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
    c->ev_cancel = event_new(base, -1, 0, pg_on_cancel_done, c);
    c->io_cb = pg_on_io;
    if (!c->ev_timer || !c->ev_kick || !c->ev_cancel) {
        snprintf(errbuf, errlen, "cannot create PostgreSQL connection: out of memory");
        free_events(c);
        pg_conn_free(c);
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

/* A connection a client left inside a transaction (or a failed one):
 * ROLLBACK, over the simple query protocol (BQ_INTERNAL), which works in
 * any transaction state. */
static void pg_reset(struct backend_conn *c, backend_done_fn done, void *arg)
{
    backend_reset_by_rollback(pg_exec, c, done, arg);
}

/* A pinned session's connection (backend.h reset_session): ROLLBACK if a
 * transaction is open, then DISCARD ALL, which cannot run inside one: it
 * drops locks, temporary tables, settings, LISTEN and every prepared
 * statement, so the statement cache forgets its statements too. */
static void session_step_done(void *arg, const struct backend_result *res);

static void discard_all(struct backend_conn *c)
{
    static const char sql[] = "DISCARD ALL";
    const struct backend_query q = { sql, sizeof(sql) - 1, NULL, 0, BQ_INTERNAL, NULL };
    const struct backend_sink sink = { NULL, NULL, session_step_done };

    pg_exec(c, &q, &sink, c);
}

static void session_step_done(void *arg, const struct backend_result *res)
{
    struct backend_conn *c = arg;
    backend_done_fn done = c->session_done;

    if (c->session_rollback) {
        c->session_rollback = false;
        if (res->ok && !res->broken && res->txstate == 'I') {
            discard_all(c);   /* the transaction is gone: now the session */
            return;
        }
    } else if (res->ok && c->sc) {
        stmt_cache_clear(c->sc);   /* DISCARD ALL deallocated them */
    }
    c->session_done = NULL;
    done(c->session_arg, res);
}

static void pg_reset_session(struct backend_conn *c, backend_done_fn done, void *arg)
{
    c->session_done = done;
    c->session_arg = arg;
    c->session_rollback = pg_txstate(c) != 'I';
    if (!c->session_rollback) {
        discard_all(c);
        return;
    }
    backend_reset_by_rollback(pg_exec, c, session_step_done, c);
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
    .tx_sql = backend_standard_tx_sql,
    .reset = pg_reset,
    .reset_session = pg_reset_session,
    .route = pg_route,
    .server_info = pg_server_info,
    .watch_idle = pg_watch_idle,
    .unwatch_idle = pg_unwatch_idle,
    .schema_changed = pg_schema_changed,
    .quiesce = pg_quiesce,
};
