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
 * client's statement. A KILL that arrives before the statement (the server
 * drops it when the statement starts) is sent again while the statement
 * runs on, after MY_KILL_RESEND_MS, doubling up to MY_KILL_RESEND_MAX_MS.
 *
 * A KILL that cannot reach the server (the side connection fails or
 * times out after the pool's connect `timeout`, or the KILL is not
 * answered within that `timeout` either) while the statement still runs ends the
 * statement at once with CONN_LOST and the connection broken: a frozen or
 * unreachable server must not hold the client (statementTimeout, CANCEL)
 * for as long as it stays away.
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

/* How a KILL ended. */
enum kill_outcome {
    KILL_ANSWERED,     /* the server answered it (even with an error) */
    KILL_NOT_SENT,     /* the side connection could not be set up */
    KILL_UNANSWERED    /* sent, but no answer (timeout, connection lost) */
};

/* The KILL did not reach the server while the statement still runs (a
 * frozen or overloaded server): waiting on would hold the client for as
 * long as the server stays away. The statement ends now and the
 * connection goes; what the statement did is unknown. */
static void kill_gave_up(struct mysql_conn *c, const char *why)
{
    (void)event_del(c->ev_timer);   /* no re-send */
    my_enter(c);
    my_fail_now(c, DBPOOL_E_CONN_LOST, true,
                "cancelled, but KILL QUERY could not reach the MySQL server, so the connection "
                "was dropped (the statement may still run there): %s", why);
    my_leave(c);
}

/* Tell the owner how its KILL ended. */
static void kill_outcome(struct mysql_conn *c, enum kill_outcome how, const char *why)
{
    bool running = c->op == MOP_EXEC && c->canceled && c->phase == MPH_RUNNING;

    if (how != KILL_ANSWERED && running)
        kill_gave_up(c, why);
    else if (how == KILL_UNANSWERED && c->phase == MPH_KILL_WAIT)
        my_kill_timed_out(c);   /* it may still arrive: the connection goes */
    else
        my_kill_finished(c);
}

/* The KILL is over: close the side connection, tell the owner (if it
 * still cares), free. Called from the side's callbacks. */
static void kill_end(struct my_kill *k, enum kill_outcome how, const char *why)
{
    struct mysql_conn *owner = k->owner;
    char reason[200];

    snprintf(reason, sizeof(reason), "%s", why && *why ? why : "no answer");
    my_conn_close(k->side);   /* allowed inside its own done callback */
    if (owner) {
        owner->kill = NULL;
        kill_outcome(owner, how, reason);
    }
    free(k);
}

static void kill_start(struct mysql_conn *c);

/* How long the KILL's answer is waited for: the pool's connect timeout
 * (a loaded server may take seconds), MY_KILL_RESEND_MAX_MS without one. */
static uint64_t kill_answer_ms(const struct mysql_conn *s)
{
    struct my_settings st;

    my_settings(s->cfg, &st);
    return st.timeout_ms ? st.timeout_ms : MY_KILL_RESEND_MAX_MS;
}

/* The side connection's c->ev_timer: its connect timeout, then the bound
 * on the KILL's answer. */
static void side_timer(evutil_socket_t fd, short what, void *arg)
{
    struct mysql_conn *s = arg;

    (void)fd;
    (void)what;
    my_enter(s);
    if (s->op == MOP_CONNECT)
        my_connect_timed_out(s);
    else if (s->op == MOP_EXEC)
        my_fail_now(s, DBPOOL_E_CONN_LOST, true, "KILL QUERY was not answered within %llu ms",
                    (unsigned long long)kill_answer_ms(s));
    my_leave(s);
}

static void kill_query_done(void *arg, const struct backend_result *res)
{
    /* An error from the server (ER_NO_SUCH_THREAD etc.): answered, the
     * statement is over anyway. */
    kill_end(arg, res->ok || !res->broken ? KILL_ANSWERED : KILL_UNANSWERED, res->err.message);
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
    struct timeval tv;
    int status;

    if (!res->ok) {
        kill_end(k, KILL_NOT_SENT, res->err.message);
        return;
    }
    /* Sent even when the owner was closed meanwhile: its statement may
     * still run on the server. (A thread id is not reused soon.) The
     * answer is waited for kill_answer_ms at most (side_timer). */
    my_start_op(s, MOP_EXEC, kill_query_done, k, NULL);
    my_timeval_ms(&tv, kill_answer_ms(s));
    (void)event_add(s->ev_timer, &tv);
    status = mysql_real_query_start(&s->ret_int, s->m, k->sql, (unsigned long)strlen(k->sql));
    if (status)
        my_wait(s, status, kill_query_cont);
    else
        my_complete_ok(s);   /* inside s's callback: delivered inline */
}

void my_cancel(struct mysql_conn *c)
{
    if (!c || c->closed || c->op != MOP_EXEC || c->phase != MPH_RUNNING || !c->m ||
        !c->connected)
        return;   /* nothing runs on the server (or the result is known already) */
    c->canceled = true;
    if (!c->kill)
        kill_start(c);
    if (c->paused)
        my_resume(c);   /* with c->canceled: the exec side drops the rest */
}

/* c->ev_timer while the cancelled statement still runs: KILL it again. */
void my_kill_resend(struct mysql_conn *c)
{
    if (c->op == MOP_EXEC && c->canceled && c->phase == MPH_RUNNING && !c->kill)
        kill_start(c);
}

static void kill_start(struct mysql_conn *c)
{
    char err[256];
    struct my_kill *k;

    k = calloc(1, sizeof(*k));
    if (!k)
        return;   /* the statement runs to its end: cancel is a request */
    k->side = my_conn_create(c->cfg, c->base, c->role, side_timer, err, sizeof(err));
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
}

/* The KILL is answered: deliver a result held for it. If the statement
 * still runs, the KILL may have reached the server before the statement
 * did (it then finds the session idle and is dropped when the statement
 * starts): send it again after a delay that doubles, as a statement that
 * ignores KILL would otherwise cost a connection per loop turn. */
void my_kill_finished(struct mysql_conn *c)
{
    struct backend_result r;
    struct timeval tv;

    if (c->phase != MPH_KILL_WAIT) {
        if (c->op == MOP_EXEC && c->canceled && c->phase == MPH_RUNNING) {
            c->kill_delay_ms = c->kill_delay_ms ? c->kill_delay_ms * 2 : MY_KILL_RESEND_MS;
            if (c->kill_delay_ms > MY_KILL_RESEND_MAX_MS)
                c->kill_delay_ms = MY_KILL_RESEND_MAX_MS;
            my_timeval_ms(&tv, c->kill_delay_ms);
            (void)event_add(c->ev_timer, &tv);
        }
        return;
    }
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
