/*
 * conn.c — the MySQL driver's connection (mysql_internal.h): the non-blocking
 * wait (my_wait: one persistent socket event plus the library's timeout
 * timer), the life of one operation (start, complete, fail now or from the
 * loop), errors read from the MYSQL handle, and the idle watch. The bottom of
 * the driver's files: it calls only the exec side's and cancel.c's hooks
 * named in mysql_internal.h.
 *
 * IDLE INPUT
 *
 * The server speaks to an idle connection only to end it: KILL CONNECTION,
 * shutdown and wait_timeout close the socket, some versions send an error
 * packet first (e.g. 1927 "Connection was killed", 4031 on wait_timeout).
 * While no operation runs the socket event stays armed for EV_READ; when it
 * fires, the packet (if any) is peeked without consuming (MSG_PEEK: the
 * library never sees a half-read stream) and kept as the reason; the
 * connection is marked dead, the event dropped, and the pool's idle watch,
 * if any, told. The next operation on it fails at once with CONN_LOST and
 * that reason. TLS connections cannot be peeked: they report "closed by
 * the server" without the server's words, and TLS records that arrive
 * without the server closing (a TLS 1.3 session ticket) leave the
 * connection alone: only its close is watched (EV_CLOSED) until the next
 * operation reads them.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>

#include <errmsg.h>
#include <event2/event.h>
#include <mysql.h>

#include "backend/backend.h"
#include "backend/mysql/mysql_internal.h"

/* --------------------------------------------------------------- events */

void my_enter(struct mysql_conn *c)
{
    c->depth++;
}

void my_leave(struct mysql_conn *c)
{
    if (--c->depth == 0 && c->closed)
        my_conn_free(c);
}

static void disarm_io(struct mysql_conn *c)
{
    if (c->ev_io) {
        event_free(c->ev_io);
        c->ev_io = NULL;
    }
    c->io_what = 0;
    c->io_fd = -1;
}

static void on_io(evutil_socket_t fd, short what, void *arg);

/* Watch the handle's socket for `what` (persistent). The event is reused when
 * only the interest changes and re-created when the descriptor did. */
static bool arm_io(struct mysql_conn *c, short what)
{
    int fd = c->m ? (int)mysql_get_socket(c->m) : -1;

    if (fd < 0) {
        disarm_io(c);
        return false;
    }
    if (c->ev_io && c->io_fd == fd) {
        if (c->io_what == what && event_pending(c->ev_io, EV_READ | EV_WRITE | EV_CLOSED, NULL))
            return true;
        if (event_del(c->ev_io) != 0 ||
            event_assign(c->ev_io, c->base, fd, (short)(what | EV_PERSIST), on_io, c) != 0 ||
            event_add(c->ev_io, NULL) != 0) {
            disarm_io(c);
            return false;
        }
        c->io_what = what;
        return true;
    }
    disarm_io(c);
    c->ev_io = event_new(c->base, fd, (short)(what | EV_PERSIST), on_io, c);
    if (!c->ev_io || event_add(c->ev_io, NULL) != 0) {
        disarm_io(c);
        return false;
    }
    c->io_what = what;
    c->io_fd = fd;
    return true;
}

void my_io_pause(struct mysql_conn *c)
{
    if (c->ev_io && c->io_what) {
        (void)event_del(c->ev_io);
        c->io_what = 0;
    }
}

/* The library asked for the socket and/or a timeout. */
void my_wait(struct mysql_conn *c, int status, my_cont_fn cont)
{
    short what = 0;
    struct timeval tv;

    if (status & MYSQL_WAIT_READ)
        what |= EV_READ;
    if (status & MYSQL_WAIT_WRITE)
        what |= EV_WRITE;
    if (status & MYSQL_WAIT_EXCEPT)
        what |= EV_READ;   /* libevent has no "exceptional": EOF/errors show as readable */
    c->wait_cont = cont;
    if (what && !arm_io(c, what)) {
        c->wait_cont = NULL;
        my_fail_now(c, DBPOOL_E_CONN_LOST, true,
                    "cannot watch the MySQL server connection's socket; the connection is "
                    "dropped and the pool opens a new one");
        return;
    }
    if (!what)
        my_io_pause(c);
    if (status & MYSQL_WAIT_TIMEOUT) {
        my_timeval_ms(&tv, mysql_get_timeout_value_ms(c->m));
        (void)event_add(c->ev_wait, &tv);
    } else {
        (void)event_del(c->ev_wait);
    }
}

void my_wait_cancel(struct mysql_conn *c)
{
    c->wait_cont = NULL;
    (void)event_del(c->ev_wait);
}

static void fire(struct mysql_conn *c, int ready)
{
    my_cont_fn cont = c->wait_cont;

    c->wait_cont = NULL;
    (void)event_del(c->ev_wait);
    cont(c, ready);
}

static void idle_input(struct mysql_conn *c);

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    struct mysql_conn *c = arg;
    int ready = 0;

    (void)fd;
    my_enter(c);
    if (what & EV_READ)
        ready |= MYSQL_WAIT_READ;
    if (what & EV_WRITE)
        ready |= MYSQL_WAIT_WRITE;
    if (what & EV_CLOSED)
        ready |= MYSQL_WAIT_READ;   /* the read finds the end */
    if (c->wait_cont)
        fire(c, ready);
    else if (c->op == MOP_NONE)
        idle_input(c);
    else
        my_io_pause(c);   /* nothing waits (a paused stream): stop reading */
    my_leave(c);
}

/* c->ev_wait: the library's own timeout (connect, read, write timeouts). */
void my_on_wait_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct mysql_conn *c = arg;

    (void)fd;
    (void)what;
    my_enter(c);
    if (c->wait_cont)
        fire(c, MYSQL_WAIT_TIMEOUT);
    my_leave(c);
}

/* Between operations: keep reading (nothing to do until the server speaks)
 * on a healthy connection; drop the event otherwise. */
static void idle_io(struct mysql_conn *c)
{
    if (c->m && c->connected && !c->lost_seen)
        (void)arm_io(c, EV_READ);
    else
        disarm_io(c);
}

/* --------------------------------------------------------------- errors */

bool my_errno_is_lost(unsigned int err)
{
    switch (err) {
    case CR_SERVER_GONE_ERROR:      /* 2006 */
    case CR_SERVER_LOST:            /* 2013 */
    case CR_CONNECTION_ERROR:       /* 2002 */
    case CR_CONN_HOST_ERROR:        /* 2003 */
    case CR_SERVER_LOST_EXTENDED:   /* 2055 */
    case CR_COMMANDS_OUT_OF_SYNC:   /* 2014: the library's state is unknown */
    case 1927:                      /* ER_CONNECTION_KILLED */
    case 1053:                      /* ER_SERVER_SHUTDOWN */
    case 4031:                      /* ER_CLIENT_INTERACTION_TIMEOUT */
        return true;
    default:
        return false;
    }
}

/* The handle's error as a result. */
void my_error_from_handle(struct mysql_conn *c, struct backend_result *r)
{
    unsigned int err = c->m ? mysql_errno(c->m) : CR_SERVER_LOST;
    const char *state = c->m ? mysql_sqlstate(c->m) : "HY000";
    const char *msg = c->m ? mysql_error(c->m) : "";
    int code = DBPOOL_E_SQL;
    bool lost = my_errno_is_lost(err);

    if (lost)
        code = DBPOOL_E_CONN_LOST;
    else if (c->canceled && (err == MY_ERRNO_INTERRUPTED || err == MY_ERRNO_STATEMENT_TIMEOUT)) {
        code = DBPOOL_E_CANCELED;
        state = "57014";   /* the protocol's SQLSTATE for a cancel on every backend;
                              MySQL's own 70100 / 1317 stays in the vendor code */
    }
    if (!msg || !*msg)
        msg = "the MySQL server connection failed without a message";
    if (lost)
        backend_result_error(r, code, state, 'I',
                             "%s; the connection is dropped and the pool opens a new one", msg);
    else
        backend_result_error(r, code, state, my_server_txstate(c->m), "%s", msg);
    r->err.vendor_code = (int32_t)err;
    r->broken = lost;
    if (lost)
        c->connected = false;
}

/* ----------------------------------------------------------- completion */

void my_start_op(struct mysql_conn *c, enum my_op op, backend_done_fn done, void *arg,
                 const struct backend_sink *sink)
{
    if (c->op != MOP_NONE || c->closed) {
        fprintf(stderr, "backend_mysql: operation started while another is in flight\n");
        abort();   /* contract violation (backend.h: one operation at a time) */
    }
    my_unwatch_idle(c);   /* any operation ends the idle watch */
    c->op = op;
    c->phase = MPH_RUNNING;
    c->done = done;
    c->arg = arg;
    if (sink)
        c->sink = *sink;
    else
        memset(&c->sink, 0, sizeof(c->sink));
    c->paused = c->canceled = false;
    c->kill_delay_ms = 0;
    c->step = 0;
    memset(&c->res, 0, sizeof(c->res));
}

/* The operation cannot run: report why from the loop. False when it can. */
bool my_usable(struct mysql_conn *c)
{
    if (c->m && c->connected && !c->lost_seen)
        return true;
    if (c->lost_seen) {
        backend_result_error(&c->res, DBPOOL_E_CONN_LOST, c->lost_sqlstate, 'I',
                             "%s; the connection is dropped and the pool opens a new one",
                             c->lost_msg);
        c->res.err.vendor_code = c->lost_code;
    } else {
        backend_result_error(&c->res, DBPOOL_E_CONN_LOST, "08003", 'I',
                             "the MySQL server connection is not open; the pool opens a "
                             "new one");
    }
    c->res.broken = true;
    c->connected = false;
    my_defer_result(c);
    return false;
}

static void end_op(struct mysql_conn *c, char txstate)
{
    c->txstate = txstate;
    c->op = MOP_NONE;
    c->phase = MPH_IDLE;
    c->done = NULL;
    c->arg = NULL;
    memset(&c->sink, 0, sizeof(c->sink));
    c->paused = c->canceled = false;
    my_wait_cancel(c);
    my_kill_forget(c);
    my_resolve_forget(c);
    my_tls_forget(c);
    (void)event_del(c->ev_timer);
    idle_io(c);
}

/* A KILL for this operation may still reach the server: keep the result
 * until it is answered (cancel.c), at most MY_KILL_WAIT_MS (c->ev_timer). */
static void hold_for_kill(struct mysql_conn *c, const struct backend_result *res)
{
    struct timeval tv;

    c->res = *res;
    c->phase = MPH_KILL_WAIT;
    my_wait_cancel(c);
    my_io_pause(c);
    my_timeval_ms(&tv, MY_KILL_WAIT_MS);
    (void)event_add(c->ev_timer, &tv);
}

/* After a statement: did it change the session ("SESSION STATE")? The
 * flags are those of the last OK packet (an error packet carries none,
 * which at worst repeats an earlier verdict). */
static void note_session_state(struct mysql_conn *c)
{
    unsigned int st = 0;

    if (!c->m || mariadb_get_infov(c->m, MARIADB_CONNECTION_SERVER_STATUS, &st) != 0)
        return;
    if ((st & SERVER_SESSION_STATE_CHANGED) || !(st & SERVER_STATUS_AUTOCOMMIT))
        c->dirty = true;
}

void my_complete(struct mysql_conn *c, const struct backend_result *res)
{
    struct backend_result r = *res;
    backend_done_fn done = c->done;
    void *arg = c->arg;

    if (c->depth == 0) {
        /* Inside a driver call (connect, exec, ...), not one of our
         * callbacks: report from the loop, never from inside the call. */
        c->res = r;
        my_defer_result(c);
        return;
    }
    if (c->kill) {
        hold_for_kill(c, &r);
        return;
    }
    if (r.broken)
        c->connected = false;
    else if (c->op == MOP_EXEC)
        note_session_state(c);
    end_op(c, r.broken ? 'I' : r.txstate);
    if (done)
        done(arg, &r);
}

void my_complete_ok(struct mysql_conn *c)
{
    struct backend_result r;

    backend_result_ok(&r, my_server_txstate(c->m));
    my_complete(c, &r);
}

void my_complete_error(struct mysql_conn *c)
{
    struct backend_result r;

    my_error_from_handle(c, &r);
    my_complete(c, &r);
}

void my_fail_now(struct mysql_conn *c, int code, bool broken, const char *fmt, ...)
{
    struct backend_result r;
    va_list ap;

    va_start(ap, fmt);
    backend_result_verror(&r, code, "", broken ? 'I' : c->txstate, broken, fmt, ap);
    va_end(ap);
    my_complete(c, &r);
}

void my_defer_result(struct mysql_conn *c)
{
    c->phase = MPH_DEFERRED;
    my_wait_cancel(c);
    event_active(c->ev_kick, 0, 0);
}

void my_fail_later(struct mysql_conn *c, int code, const char *sqlstate, bool broken,
                   const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    backend_result_verror(&c->res, code, sqlstate, broken ? 'I' : c->txstate, broken, fmt, ap);
    va_end(ap);
    my_defer_result(c);
}

/* ----------------------------------------------------------- idle watch */

static void watch_end(struct mysql_conn *c)
{
    c->watching = false;
    c->watch_dead = false;
    c->lost = NULL;
    c->lost_arg = NULL;
}

static void watch_fire(struct mysql_conn *c)
{
    void (*lost)(void *) = c->lost;
    void *arg = c->lost_arg;

    watch_end(c);
    if (lost)
        lost(arg);
}

/* Read the error packet the server sent (if any) without consuming it:
 * 3-byte length, sequence, 0xFF, errno (2 bytes LE), '#', SQLSTATE, text. */
static void peek_reason(struct mysql_conn *c, int fd)
{
    unsigned char buf[4 + 3 + 6 + 200];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
    size_t len, off = 7;

    snprintf(c->lost_sqlstate, sizeof(c->lost_sqlstate), "08S01");
    c->lost_code = CR_SERVER_LOST;
    snprintf(c->lost_msg, sizeof(c->lost_msg), "the MySQL server closed the connection");
    if (n < 8 || buf[4] != 0xFF || mysql_get_ssl_cipher(c->m))
        return;
    len = (size_t)buf[0] | (size_t)buf[1] << 8 | (size_t)buf[2] << 16;
    if (len + 4 < (size_t)n)
        n = (ssize_t)(len + 4);
    c->lost_code = (int32_t)(buf[5] | buf[6] << 8);
    if (n >= 13 && buf[7] == '#') {
        memcpy(c->lost_sqlstate, buf + 8, 5);
        c->lost_sqlstate[5] = '\0';
        off = 13;
    }
    snprintf(c->lost_msg, sizeof(c->lost_msg), "the MySQL server closed the connection: %.*s",
             (int)((size_t)n - off), (const char *)buf + off);
}

/* Whether the server has closed its side (data may still be unread). */
static bool peer_closed(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLRDHUP };

    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* The socket became readable (or closed) while no operation ran. */
static void idle_input(struct mysql_conn *c)
{
    char b;
    ssize_t n = recv(c->io_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;   /* spurious */
    if (n > 0 && mysql_get_ssl_cipher(c->m) && !peer_closed(c->io_fd)) {
        /* TLS records that are not an end (a TLS 1.3 session ticket): the
         * library reads them with the next operation. Until then only the
         * server's close is watched (EV_CLOSED), or nothing where the loop's
         * backend cannot tell a close apart (the next operation finds out). */
        if (event_base_get_features(c->base) & EV_FEATURE_EARLY_CLOSE)
            (void)arm_io(c, EV_CLOSED);
        else
            my_io_pause(c);
        return;
    }
    c->lost_seen = true;
    peek_reason(c, c->io_fd);
    disarm_io(c);
    c->connected = false;
    if (c->watching)
        watch_fire(c);
}

void my_watch_idle(struct mysql_conn *c, void (*lost)(void *arg), void *arg)
{
    if (!c || c->closed || c->op != MOP_NONE || !lost)
        return;   /* contract: only idle connections are watched */
    watch_end(c);
    c->watching = true;
    c->lost = lost;
    c->lost_arg = arg;
    if (!c->m || !c->connected || c->lost_seen || !arm_io(c, EV_READ)) {
        c->watch_dead = true;   /* report it from the loop, never from inside this call */
        event_active(c->ev_kick, 0, 0);
    }
}

void my_unwatch_idle(struct mysql_conn *c)
{
    if (c && !c->closed)
        watch_end(c);
}

/* c->ev_kick: a deferred result, resume() of a paused stream, a watched
 * connection found dead when the watch started. */
void my_on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct mysql_conn *c = arg;
    struct backend_result r;

    (void)fd;
    (void)what;
    my_enter(c);
    if (c->phase == MPH_DEFERRED) {
        r = c->res;
        my_complete(c, &r);
    } else if (c->phase == MPH_IDLE && c->watching && c->watch_dead) {
        watch_fire(c);
    }
    my_leave(c);
}

/* ------------------------------------------------------------ teardown */

/* Release the server connection without blocking: when nothing runs and
 * the connection is healthy, COM_QUIT goes out through mysql_close_start
 * (a 5-byte write to an empty socket buffer); otherwise, or if that would
 * wait, the socket is shut down first so that every further read or write
 * of the library fails at once. */
void my_drop_conn(struct mysql_conn *c)
{
    int fd;
    bool polite;

    disarm_io(c);
    my_wait_cancel(c);
    if (c->m) {
        fd = (int)mysql_get_socket(c->m);
        polite = c->connected && c->op == MOP_NONE && !c->lost_seen;
        if (!polite && fd >= 0)
            (void)shutdown(fd, SHUT_RDWR);
        if (c->exec_release)
            c->exec_release(c);
        if (!polite || mysql_close_start(c->m) != 0) {
            if (polite && fd >= 0)
                (void)shutdown(fd, SHUT_RDWR);
            if (polite) {
                while (mysql_close_cont(c->m, MYSQL_WAIT_READ | MYSQL_WAIT_WRITE) != 0)
                    ;   /* every I/O fails at once now */
            } else {
                mysql_close(c->m);
            }
        }
        c->m = NULL;
    }
    c->connected = false;
    if (c->exec_free)
        c->exec_free(c);
}

/* ------------------------------------------------- creation and close */

static void free_events(struct mysql_conn *c)
{
    struct event **evs[] = { &c->ev_wait, &c->ev_timer, &c->ev_kick, &c->ev_resolved,
                             &c->ev_tls };

    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        if (*evs[i])
            event_free(*evs[i]);
        *evs[i] = NULL;
    }
}

void my_conn_close(struct mysql_conn *c)
{
    if (!c || c->closed)
        return;
    my_unwatch_idle(c);
    c->closed = true;
    my_kill_forget(c);
    my_resolve_forget(c);   /* before ev_resolved goes */
    my_tls_forget(c);       /* before ev_tls goes; the helper closes its handle */
    my_drop_conn(c);
    free_events(c);
    c->op = MOP_NONE;
    if (c->depth == 0)
        my_conn_free(c);
}

struct mysql_conn *my_conn_create(const struct pool_config *cfg, struct event_base *base,
                                  enum backend_role role, event_callback_fn on_timer,
                                  char *errbuf, size_t errlen)
{
    struct mysql_conn *c = calloc(1, sizeof(*c));

    if (!c) {
        snprintf(errbuf, errlen, "cannot create MySQL connection: out of memory");
        return NULL;
    }
    c->cfg = cfg;
    c->base = base;
    c->role = role;
    c->io_fd = -1;
    c->txstate = 'I';
    c->ev_wait = evtimer_new(base, my_on_wait_timeout, c);
    c->ev_timer = evtimer_new(base, on_timer, c);
    c->ev_kick = event_new(base, -1, 0, my_on_kick, c);
    if (!c->ev_wait || !c->ev_timer || !c->ev_kick) {
        snprintf(errbuf, errlen, "cannot create MySQL connection: out of memory");
        free_events(c);
        my_conn_free(c);
        return NULL;
    }
    return c;
}

void my_conn_free(struct mysql_conn *c)
{
    free(c);
}
