/*
 * cancel.c — cancelling a running statement of the MySQL driver
 * (mysql_internal.h): `KILL QUERY <thread id>` sent on a side connection,
 * and the guard that keeps a KILL from ever hitting a later statement.
 *
 * THE SIDE CONNECTION
 *
 * MySQL has no out-of-band cancel: another connection must ask the server.
 * cancel() creates a second struct mysql_conn (c->kill->side, marked
 * `side`) for the same pool settings, connecting to the address the main
 * connection used (no new name lookup; the Unix socket as configured), with
 * no session settings, then sends KILL QUERY with the main connection's
 * thread id, then closes it. All of it runs on the loop through the same
 * non-blocking machinery (my_wait); nothing blocks. One KILL is in flight
 * per operation; cancel() again while one is in flight does nothing.
 *
 * THE GUARD
 *
 * While a KILL is in flight the operation does not complete to the pool:
 * my_complete() keeps the result in c->res (phase MPH_KILL_WAIT) until the
 * side connection reports that the server answered the KILL (or that it
 * could not connect or send it); only then is the result delivered. So the
 * server has processed the KILL before the next statement can be sent on
 * this connection. MariaDB clears a KILL QUERY that finds the connection
 * idle when the next command starts (measured on 10.11: the next statement
 * and ping succeed), so no further check is needed. If the KILL is not
 * answered within MY_KILL_WAIT_MS the held result is delivered with the
 * connection marked broken: a late KILL could otherwise hit another
 * client's statement.
 *
 * A paused stream that is cancelled (backend.h: cancel() ends it without
 * resume()) is resumed with c->canceled set: the exec side then reads and
 * drops the rest until the interrupted statement ends: a connection is
 * never handed on half-read.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <mysql.h>

#include "backend/mysql/mysql_internal.h"

struct my_kill {
    struct mysql_conn *owner;   /* NULL once the owner let go (my_kill_forget) */
    struct mysql_conn *side;
    char sql[48];
};

/* The KILL is over (answered, or failed): close the side connection, tell
 * the owner (if it still cares), free. Called from the side's callbacks. */
static void kill_end(struct my_kill *k)
{
    struct mysql_conn *owner = k->owner;

    my_close(k->side);   /* allowed inside its own done callback */
    if (owner) {
        owner->kill = NULL;
        my_kill_finished(owner);
    }
    free(k);
}

static void kill_query_done(void *arg, const struct backend_result *res)
{
    (void)res;   /* ER_NO_SUCH_THREAD etc.: the statement is over anyway */
    kill_end(arg);
}

static void kill_query_cont(struct mysql_conn *s, int ready)
{
    int status = mysql_real_query_cont(&s->ret_int, s->m, ready);

    if (status) {
        my_wait(s, status, kill_query_cont);
        return;
    }
    my_complete_ok(s);
}

static void side_connected(void *arg, const struct backend_result *res)
{
    struct my_kill *k = arg;
    struct mysql_conn *s = k->side;
    int status;

    if (!res->ok) {
        kill_end(k);
        return;
    }
    /* Sent even when the owner was closed meanwhile: its statement may
     * still run on the server. (A thread id is not reused soon.) */
    my_start_op(s, MOP_EXEC, kill_query_done, k, NULL);
    status = mysql_real_query_start(&s->ret_int, s->m, k->sql, (unsigned long)strlen(k->sql));
    if (status)
        my_wait(s, status, kill_query_cont);
    else
        my_complete_ok(s);   /* inside s's callback: delivered inline */
}

void my_cancel(struct mysql_conn *c)
{
    char err[256];
    struct my_kill *k;

    if (!c || c->closed || c->op != MOP_EXEC || c->phase != MPH_RUNNING || !c->m ||
        !c->connected)
        return;   /* nothing runs on the server (or the result is known already) */
    c->canceled = true;
    if (c->kill)
        return;
    k = calloc(1, sizeof(*k));
    if (!k)
        return;   /* the statement runs to its end: cancel is a request */
    k->side = my_conn_create(c->cfg, c->base, c->role, err, sizeof(err));
    if (!k->side) {
        free(k);
        return;
    }
    k->side->side = true;
    snprintf(k->side->addr, sizeof(k->side->addr), "%s", c->addr);
    snprintf(k->sql, sizeof(k->sql), "KILL QUERY %lu", c->thread_id);
    k->owner = c;
    c->kill = k;
    my_connect(k->side, side_connected, k);
    if (c->paused)
        my_resume(c);   /* with c->canceled: the exec side drops the rest */
}

/* The KILL is answered: deliver a result held for it. */
void my_kill_finished(struct mysql_conn *c)
{
    struct backend_result r;

    if (c->phase != MPH_KILL_WAIT)
        return;   /* the statement still runs: it ends (interrupted) by itself */
    (void)event_del(c->ev_timer);
    r = c->res;
    my_enter(c);
    my_complete(c, &r);
    my_leave(c);
}

/* MY_KILL_WAIT_MS passed with the result held: deliver it, but the
 * connection goes (the KILL may still arrive). */
void my_kill_timed_out(struct mysql_conn *c)
{
    struct backend_result r;

    if (c->phase != MPH_KILL_WAIT)
        return;
    my_kill_forget(c);
    r = c->res;
    r.broken = true;
    r.txstate = 'I';
    my_complete(c, &r);
}

/* Hold the result: called by my_complete when c->kill is set. */
void my_kill_hold(struct mysql_conn *c, const struct backend_result *res)
{
    struct timeval tv;

    c->res = *res;
    c->phase = MPH_KILL_WAIT;
    my_wait_cancel(c);
    my_io_pause(c);
    my_timeval_ms(&tv, MY_KILL_WAIT_MS);
    (void)event_add(c->ev_timer, &tv);
}

void my_kill_forget(struct mysql_conn *c)
{
    if (c->kill) {
        c->kill->owner = NULL;
        c->kill = NULL;
    }
}
