/*
 * conn.h — the PostgreSQL driver's connection (conn.c): its events, the life
 * of one operation, the idle watch. The bottom of the driver's files (see
 * pg_internal.h, "THE FILES"): it calls none of the others.
 */
#ifndef DBPOOLD_BACKEND_PG_CONN_H
#define DBPOOLD_BACKEND_PG_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include "backend/helper.h"
#include "backend/pg/pg_internal.h"
#include "backend/resolve.h"

#pragma GCC visibility push(hidden)

void pg_conn_free(struct backend_conn *c);
void pg_tidy_message(char *dst, size_t size, const char *src);
void pg_conn_error_message(const struct backend_conn *c, char *dst, size_t size,
                           const char *fallback);
/* libpq's notice receiver: keeps a FATAL error that arrives while no
 * query runs, for the next operation to report. */
void pg_on_notice(void *arg, const PGresult *res);

/* Watch PQsocket() for `what` (c->io_cb); false when it cannot be watched. */
bool pg_arm_io(struct backend_conn *c, short what, bool force);
void pg_disarm_io(struct backend_conn *c);

/* The idle watch (pg_internal.h, "IDLE WATCH"). */
void pg_watch_idle(struct backend_conn *c, void (*lost)(void *arg), void *arg);
void pg_unwatch_idle(struct backend_conn *c);
void pg_watch_fire(struct backend_conn *c);
void pg_idle_step(struct backend_conn *c);

void pg_start_op(struct backend_conn *c, enum op_kind kind, backend_done_fn done, void *arg,
                 const struct backend_sink *sink);
/* Report the operation's result. Must be the last thing the caller does
 * with c: done() may close c or start the next operation. */
void pg_complete(struct backend_conn *c, const struct backend_result *res);
/* Fail the operation now (inside one of our libevent callbacks). */
void pg_fail_now(struct backend_conn *c, int code, bool broken, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Report c->res from c->ev_kick (inside connect/exec/ping): callbacks never
 * run inside a driver call. */
void pg_defer_result(struct backend_conn *c);
void pg_fail_later(struct backend_conn *c, int code, const char *sqlstate, bool broken,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#pragma GCC visibility pop

/* Every libevent callback brackets its work with enter()/leave(): close()
 * frees the struct only when no callback of ours is on the stack. */
static inline void enter(struct backend_conn *c)
{
    c->depth++;
}

static inline void leave(struct backend_conn *c)
{
    if (--c->depth == 0 && c->closed)
        pg_conn_free(c);
}

/* The operation or the connection ends: a cancel helper still running goes
 * on without us (helper.h: it can no longer wake c). */
static inline void pg_cancel_forget(struct backend_conn *c)
{
    if (c->cancel) {
        helper_wake_abandon(c->cancel);
        c->cancel = NULL;
    }
}

/* Likewise for the host-name resolution of a connect. */
static inline void pg_resolve_forget(struct backend_conn *c)
{
    if (c->resolve) {
        resolve_abandon(c->resolve);
        c->resolve = NULL;
    }
}

#endif
