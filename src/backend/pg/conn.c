/*
 * conn.c — the PostgreSQL driver's connection (pg_internal.h): its socket
 * event, the life of one operation (start, complete, fail now or from the
 * loop), the idle watch, libpq's messages and notices. The bottom of the
 * driver's files: it calls none of the others (the socket event's callback
 * is c->io_cb, set by driver.c). Creating and closing a connection, and the
 * callbacks of its other events, are driver.c's.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "backend/backend.h"
#include "backend/pg/pg_internal.h"
#include "backend/pg/conn.h"
#include "backend/pg/pg_stmtcache.h"

/* ------------------------------------------------------------- helpers */

/* Copy src into dst with every run of white space (libpq's messages have
 * newlines and tabs) collapsed into one space, trimmed at both ends. */
void pg_tidy_message(char *dst, size_t size, const char *src)
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

void pg_conn_error_message(const struct backend_conn *c, char *dst, size_t size,
                           const char *fallback)
{
    pg_tidy_message(dst, size, c->pg ? PQerrorMessage(c->pg) : "");
    if (!dst[0])
        snprintf(dst, size, "%s", fallback);
}

/* Notices are dropped (a pooled session has no one to show them to), but
 * a FATAL error that arrives while no query runs (pg_terminate_backend,
 * server shutdown) is kept: the next operation reports it. */
void pg_on_notice(void *arg, const PGresult *res)
{
    struct backend_conn *c = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

    if (!sev || (strcmp(sev, "FATAL") != 0 && strcmp(sev, "PANIC") != 0))
        return;
    snprintf(c->lost_sqlstate, sizeof(c->lost_sqlstate), "%s", state ? state : "");
    pg_tidy_message(c->lost_msg, sizeof(c->lost_msg), msg ? msg : "");
}

/* --------------------------------------------------------------- events */

void pg_disarm_io(struct backend_conn *c)
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
bool pg_arm_io(struct backend_conn *c, short what, bool force)
{
    int fd = PQsocket(c->pg);

    if (fd < 0) {
        pg_disarm_io(c);
        return false;
    }
    if (!force && c->ev_io && c->io_fd == fd) {
        if (c->io_what == what)
            return true;
        if (event_del(c->ev_io) != 0 ||
            event_assign(c->ev_io, c->base, fd, (short)(what | EV_PERSIST), c->io_cb, c) != 0 ||
            event_add(c->ev_io, NULL) != 0) {
            pg_disarm_io(c);
            return false;
        }
        c->io_what = what;
        return true;
    }
    pg_disarm_io(c);
    c->ev_io = event_new(c->base, fd, (short)(what | EV_PERSIST), c->io_cb, c);
    if (!c->ev_io)
        return false;
    if (event_add(c->ev_io, NULL) != 0) {
        pg_disarm_io(c);
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
        (void)pg_arm_io(c, EV_READ, false);
    else
        pg_disarm_io(c);
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
void pg_watch_fire(struct backend_conn *c)
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
        /* OpenSSL may hold decrypted bytes (see read_step, results.c). */
        for (int i = 0; i < SSL_EXTRA_READS; i++)
            if (!PQconsumeInput(c->pg))
                return false;
    }
    while ((n = PQnotifies(c->pg)) != NULL)
        PQfreemem(n);   /* a pooled session has no listener for them */
    return PQstatus(c->pg) == CONNECTION_OK;
}

void pg_idle_step(struct backend_conn *c)
{
    if (!c->watching) {
        /* Bound to a client between statements: take what arrived; a dead
         * connection fails the next operation with CONN_LOST. */
        if (!idle_input_alive(c))
            pg_disarm_io(c);   /* libpq knows: the next send fails (exec.c) */
        return;
    }
    if (idle_input_alive(c))
        return;   /* a notice, parameter status or notification: keep watching */
    if (PQstatus(c->pg) == CONNECTION_OK)
        c->connected = false;   /* reading failed without libpq noticing: unusable */
    pg_watch_fire(c);
}

void pg_watch_idle(struct backend_conn *c, void (*lost)(void *arg), void *arg)
{
    if (!c || c->closed || c->op != OP_NONE || !lost)
        return;   /* contract: only idle connections are watched */
    watch_end(c);
    c->watching = true;
    c->lost = lost;
    c->lost_arg = arg;
    if (!c->pg || !c->connected || PQstatus(c->pg) != CONNECTION_OK ||
        !pg_arm_io(c, EV_READ, false)) {
        /* Dead already (or the socket cannot be watched): report it from the
         * loop, never from inside this call. */
        c->watch_dead = true;
        event_active(c->ev_kick, 0, 0);
    }
}

void pg_unwatch_idle(struct backend_conn *c)
{
    if (c && !c->closed)
        watch_end(c);
}

/* ----------------------------------------------------------- completion */

void pg_start_op(struct backend_conn *c, enum op_kind kind, backend_done_fn done, void *arg,
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
    pg_cancel_forget(c);
    c->cancel_sent = false;
    free(c->pp.mem);
    memset(&c->pp, 0, sizeof(c->pp));
    c->simple_sql = c->begin_sql = NULL;
    if (c->pipeline && c->pg)
        (void)PQexitPipelineMode(c->pg);   /* only after a failure: the connection is broken */
    c->pipeline = c->pipe_begin = c->pipe_null = false;
    pg_resolve_forget(c);
    idle_io(c);
    (void)event_del(c->ev_timer);   /* fails only for an uninitialised event */
}

void pg_complete(struct backend_conn *c, const struct backend_result *res)
{
    struct backend_result r = *res;
    backend_done_fn done = c->done;
    void *arg = c->arg;

    end_op(c, r.txstate);
    if (done)
        done(arg, &r);
}

void pg_fail_now(struct backend_conn *c, int code, bool broken, const char *fmt, ...)
{
    struct backend_result r;
    va_list ap;

    va_start(ap, fmt);
    backend_result_verror(&r, code, "", broken ? 'I' : c->txstate, broken, fmt, ap);
    va_end(ap);
    pg_complete(c, &r);
}

void pg_defer_result(struct backend_conn *c)
{
    c->phase = PH_DEFERRED;
    pg_disarm_io(c);
    event_active(c->ev_kick, 0, 0);
}

void pg_fail_later(struct backend_conn *c, int code, const char *sqlstate, bool broken,
                   const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    backend_result_verror(&c->res, code, sqlstate, broken ? 'I' : c->txstate, broken, fmt, ap);
    va_end(ap);
    pg_defer_result(c);
}
void pg_conn_free(struct backend_conn *c)
{
    if (c->cur)
        PQclear(c->cur);
    free(c->pp.mem);
    stmt_cache_free(c->sc);
    free(c->dealloc);
    free(c->cols);
    free(c->decl);
    free(c->vals);
    free(c->scratch);
    free(c);
}
