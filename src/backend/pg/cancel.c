/*
 * cancel.c — cancel requests of the PostgreSQL driver (pg_internal.h,
 * "CANCEL"). PQcancel() blocks (it opens a new connection to the server),
 * so it runs on a helper thread (src/backend/helper.h) that owns only its
 * PGcancel and its share of the job, and wakes the loop through
 * c->ev_cancel when PQcancel returns. Nothing here polls: the loop hears
 * from the helper once, and the only timer is c->ev_timer, for the bound
 * on PH_CANCEL_WAIT and for re-sending a cancel the statement outlived.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdlib.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "backend/backend.h"
#include "backend/helper.h"
#include "backend/pg/pg_internal.h"
#include "backend/pg/cancel.h"
#include "backend/pg/conn.h"

#define CANNOT_RESEND "cannot arm the timer to cancel the statement again (out of memory); " \
                      "the server connection was closed"

struct cancel_job {
    struct helper_wake wake;   /* first: job_release casts back */
    PGcancel *cc;              /* the helper's */
};

static void job_release(struct helper_wake *w)
{
    free(w);   /* the struct cancel_job it starts */
}

static void *cancel_main(void *arg)
{
    struct cancel_job *j = arg;
    char err[256];

    /* On failure (server unreachable) there is nobody to tell: the
     * statement runs on and the daemon's own timeouts apply. */
    (void)PQcancel(j->cc, err, sizeof(err));
    PQfreeCancel(j->cc);
    j->cc = NULL;
    helper_wake_done(&j->wake);
    helper_exit();
    return NULL;
}

/* A helper for PQcancel: its wake-up, or NULL (then the cancel is simply
 * not sent). */
static struct helper_wake *job_start(struct backend_conn *c)
{
    struct cancel_job *j = calloc(1, sizeof(*j));

    if (!j)
        return NULL;
    if (!(j->cc = PQgetCancel(c->pg)) ||
        helper_wake_init(&j->wake, c->ev_cancel, job_release) != 0) {
        if (j->cc)
            PQfreeCancel(j->cc);
        free(j);
        return NULL;
    }
    if (helper_start(cancel_main, j) != 0) {
        PQfreeCancel(j->cc);
        helper_wake_unref(&j->wake);      /* the helper's, which never ran */
        helper_wake_abandon(&j->wake);    /* ours: frees j */
        return NULL;
    }
    return &j->wake;
}

/* Wait c->cancel_delay_ms before the next request, doubling the delay for
 * the one after. False when the timer cannot be armed. */
static bool arm_resend(struct backend_conn *c)
{
    struct timeval tv;

    timeval_ms(&tv, c->cancel_delay_ms);
    c->cancel_delay_ms = c->cancel_delay_ms >= CANCEL_RESEND_MAX_MS / 2 ? CANCEL_RESEND_MAX_MS
                                                                        : 2 * c->cancel_delay_ms;
    return event_add(c->ev_timer, &tv) == 0;
}

bool pg_cancel_send(struct backend_conn *c)
{
    if (c->cancel || !c->pg)
        return true;   /* one request in flight at a time */
    if (!c->cancel_sent)
        c->cancel_delay_ms = CANCEL_RESEND_MS;
    c->cancel_sent = true;
    c->cancel = job_start(c);
    return c->cancel || arm_resend(c);   /* no helper now: try again later */
}

/* A cancel reached the server (or could not) and the statement still runs:
 * PostgreSQL drops a request that arrives before the backend has read the
 * query, so send it again, later. Without the timer the statement could
 * run on unchecked: one more request goes now, and the connection goes
 * (the operation fails as broken; the request's helper runs on alone). */
static void statement_outlived_cancel(struct backend_conn *c)
{
    if (arm_resend(c))
        return;
    (void)pg_cancel_send(c);
    pg_fail_now(c, DBPOOL_E_INTERNAL, true, "%s", CANNOT_RESEND);
}

void pg_on_cancel_done(evutil_socket_t fd, short what, void *arg)
{
    struct backend_conn *c = arg;
    struct backend_result r;

    (void)fd;
    (void)what;
    enter(c);
    if (c->cancel && helper_wake_finished(c->cancel)) {
        pg_cancel_forget(c);
        if (c->phase == PH_CANCEL_WAIT) {
            r = c->res;
            pg_complete(c, &r);
        } else if (c->phase == PH_READING && c->canceled) {
            statement_outlived_cancel(c);
        }
    }
    leave(c);
}

bool pg_cancel_wait(struct backend_conn *c, struct backend_result *r)
{
    struct timeval tv;

    if (helper_wake_finished(c->cancel)) {
        pg_cancel_forget(c);   /* its wake-up is on its way: no need to wait for it */
        return false;
    }
    timeval_ms(&tv, CANCEL_WAIT_MS);
    pg_disarm_io(c);
    if (event_add(c->ev_timer, &tv) != 0) {
        /* Unbounded, a hung cancel would hold the operation for ever;
         * not waiting, a late cancel could hit the next statement: the
         * connection goes. */
        if (r->ok)
            backend_result_error(r, DBPOOL_E_INTERNAL, "", 'I',
                                 "cannot arm the timer to wait for the cancel request (out of "
                                 "memory); the server connection was closed");
        r->broken = true;
        r->txstate = 'I';
        return false;
    }
    c->res = *r;
    c->phase = PH_CANCEL_WAIT;
    return true;
}

void pg_cancel_timer(struct backend_conn *c)
{
    struct backend_result r;

    if (c->phase == PH_CANCEL_WAIT) {
        r = c->res;   /* the cancel is late: complete anyway (its helper runs on) */
        pg_complete(c, &r);
        return;
    }
    if (!c->cancel && !pg_cancel_send(c))   /* in flight: its wake-up decides */
        pg_fail_now(c, DBPOOL_E_INTERNAL, true, "%s", CANNOT_RESEND);
}

void pg_cancel(struct backend_conn *c)
{
    if (c->closed || (c->op != OP_EXEC && c->op != OP_PING) || c->canceled)
        return;
    c->canceled = true;
    if (c->phase != PH_READING)
        return;   /* still sending: flush_step sends it; otherwise the result is known */
    if (!pg_cancel_send(c)) {
        pg_fail_later(c, DBPOOL_E_INTERNAL, "", true, "%s", CANNOT_RESEND);
        return;
    }
    if (c->paused) {
        c->paused = false;   /* buffered rows are discarded, not waited on */
        event_active(c->ev_kick, 0, 0);
    }
}
