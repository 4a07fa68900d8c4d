/*
 * driver.c — the MySQL/MariaDB driver ("mysql") as a struct backend_driver
 * (backend.h): creating and closing a connection, ping and reset, the
 * transaction SQL, and the pool-level calls. The top of the driver's files:
 * mysql_internal.h's top comment describes the whole.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <mysql.h>

#include "backend/backend.h"
#include "backend/helper.h"
#include "backend/mysql/backend_mysql.h"
#include "backend/mysql/mysql_internal.h"

/* ------------------------------------------------------- ping and reset */

static void simple_cont(struct mysql_conn *c, int ready);

/* Finish an int-returning command (ping, reset) or wait for it. */
static void simple_status(struct mysql_conn *c, int status)
{
    if (status) {
        my_wait(c, status, simple_cont);
        return;
    }
    if (c->ret_int != 0) {
        my_complete_error(c);
        return;
    }
    if (c->op == MOP_RESET) {
        /* COM_RESET_CONNECTION closed the prepared statements and reset the
         * session variables (the charset of the handshake stays): apply
         * the pool's session settings again. */
        c->m->server_status &= ~(unsigned)SERVER_STATUS_IN_TRANS;   /* the library keeps
                                              the old flags: my_server_txstate must not */
        my_stmt_dropped(c);
        my_session_setup(c);
        return;
    }
    my_complete_ok(c);
}

static void simple_cont(struct mysql_conn *c, int ready)
{
    int status = c->op == MOP_PING ? mysql_ping_cont(&c->ret_int, c->m, ready)
                                   : mysql_reset_connection_cont(&c->ret_int, c->m, ready);
    simple_status(c, status);
}

static void my_ping(struct backend_conn *b, backend_done_fn done, void *arg)
{
    struct mysql_conn *c = my_conn(b);

    my_start_op(c, MOP_PING, done, arg, NULL);
    if (my_usable(c))
        simple_status(c, mysql_ping_start(&c->ret_int, c->m));
}

/* COM_RESET_CONNECTION: ends an open transaction, drops temporary tables,
 * user variables, GET_LOCK locks, prepared statements and session
 * variables: a client leaves nothing behind for the next one. Measured on
 * MariaDB 10.11 over the Unix socket after BEGIN + UPDATE: the same cost as
 * ROLLBACK (median 30 us each, p90 61-70 us, 4000 rounds), so the thorough
 * one is used; the session settings (time_zone) are re-applied after it. */
static void my_reset(struct backend_conn *b, backend_done_fn done, void *arg)
{
    struct mysql_conn *c = my_conn(b);

    my_start_op(c, MOP_RESET, done, arg, NULL);
    if (my_usable(c))
        simple_status(c, mysql_reset_connection_start(&c->ret_int, c->m));
}

/* ---------------------------------------------- the table's thin calls */

static void drv_connect(struct backend_conn *b, backend_done_fn done, void *arg)
{
    my_connect(my_conn(b), done, arg);
}

static void drv_exec(struct backend_conn *b, const struct backend_query *q,
                     const struct backend_sink *sink, void *arg)
{
    my_exec(my_conn(b), q, sink, arg);
}

static void drv_cancel(struct backend_conn *b)
{
    my_cancel(my_conn(b));
}

static void drv_resume(struct backend_conn *b)
{
    my_resume(my_conn(b));
}

/* 'T' also for a connection whose session a client changed (dirty, see
 * mysql_internal.h "SESSION STATE"): the pool then resets it before the
 * next client. The results carry the real state. */
static char drv_txstate(const struct backend_conn *b)
{
    const struct mysql_conn *c = my_conn_const(b);

    return c->dirty && c->txstate == 'I' ? 'T' : c->txstate;
}

static void drv_watch_idle(struct backend_conn *b, void (*lost)(void *arg), void *arg)
{
    my_watch_idle(my_conn(b), lost, arg);
}

static void drv_unwatch_idle(struct backend_conn *b)
{
    my_unwatch_idle(my_conn(b));
}

static void drv_schema_changed(struct backend_conn *b)
{
    my_schema_changed(my_conn(b));
}

static void drv_quiesce(void)
{
    helper_quiesce(MY_QUIESCE_WAIT_MS);
}

/* -------------------------------------------------- creation and close */

/* c->ev_timer: the connect timeout; the bound on waiting for a KILL; the
 * re-send of a KILL the statement outlived. */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct mysql_conn *c = arg;

    (void)fd;
    (void)what;
    my_enter(c);
    if (c->op == MOP_CONNECT)
        my_connect_timed_out(c);
    else if (c->phase == MPH_KILL_WAIT)
        my_kill_timed_out(c);
    else if (c->op == MOP_EXEC && c->canceled)
        my_kill_resend(c);
    my_leave(c);
}

/* Nothing here blocks (conn.c: my_drop_conn); a KILL or a helper still
 * running goes on without the connection. */
static void drv_close(struct backend_conn *b)
{
    struct mysql_conn *c = my_conn(b);

    if (!c || c->closed)
        return;
    if (c->m && c->connected && c->op == MOP_EXEC && !c->kill && c->phase == MPH_RUNNING)
        my_cancel(c);   /* the server would run the statement on: KILL it */
    my_conn_close(c);
}

static struct backend_conn *drv_conn_new(const struct pool_config *cfg, struct event_base *base,
                                         enum backend_role role, char *errbuf, size_t errlen)
{
    struct my_settings s;
    struct mysql_conn *c;
    const char *missing;

    my_settings(cfg, &s);
    missing = !s.host || !*s.host ? "host" : !s.username || !*s.username ? "username" : NULL;
    if (missing) {
        snprintf(errbuf, errlen, "pool \"%s\": %s is required for a mysql pool",
                 cfg->name ? cfg->name : "", missing);
        return NULL;
    }
    if (strchr(s.host, ',')) {
        snprintf(errbuf, errlen, "pool \"%s\": host \"%s\" lists several hosts; a mysql pool "
                 "connects to one host (a name, an address or a /socket path)",
                 cfg->name ? cfg->name : "", s.host);
        return NULL;
    }
    c = my_conn_create(cfg, base, role, on_timer, errbuf, errlen);
    if (!c)
        return NULL;
    c->exec_release = my_exec_release;
    c->exec_free = my_exec_free;
    return (struct backend_conn *)(void *)c;
}

/* ---------------------------------------------------- pool-level calls */

static void drv_pool_limits(const struct pool_config *cfg, int *max_writers, int *max_readers)
{
    *max_writers = cfg->max_open_conns;
    *max_readers = 0;
}

static const char *drv_begin_sql(bool read_only, enum backend_role role)
{
    (void)role;
    return read_only ? "START TRANSACTION READ ONLY" : "BEGIN";
}

static const char *drv_tx_sql(enum backend_tx_op op)
{
    switch (op) {
    case BTX_COMMIT: return "COMMIT";
    case BTX_ROLLBACK: return "ROLLBACK";
    case BTX_SAVEPOINT: return "SAVEPOINT";
    case BTX_RELEASE: return "RELEASE SAVEPOINT";
    case BTX_ROLLBACK_TO: return "ROLLBACK TO SAVEPOINT";
    }
    return "";
}

static enum backend_role drv_route(const char *sql, size_t len)
{
    (void)sql;
    (void)len;
    return ROLE_WRITER;
}

static const char *drv_server_info(const struct backend_conn *b)
{
    return my_conn_const(b)->server_info;
}

const struct backend_driver backend_mysql_driver = {
    .name = "mysql",
    .pool_limits = drv_pool_limits,
    .conn_new = drv_conn_new,
    .connect = drv_connect,
    .exec = drv_exec,
    .ping = my_ping,
    .cancel = drv_cancel,
    .resume = drv_resume,
    .txstate = drv_txstate,
    .close = drv_close,
    .begin_with = false,
    .begin_sql = drv_begin_sql,
    .tx_sql = drv_tx_sql,
    .reset = my_reset,
    .reset_session = my_reset,   /* already the whole session (see my_reset) */
    .route = drv_route,
    .server_info = drv_server_info,
    .watch_idle = drv_watch_idle,
    .unwatch_idle = drv_unwatch_idle,
    .schema_changed = drv_schema_changed,
    .quiesce = drv_quiesce,
};
