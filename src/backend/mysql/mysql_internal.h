/*
 * mysql_internal.h — what the files of the MySQL/MariaDB driver ("mysql",
 * behind struct backend_driver, backend.h) share: the connection struct,
 * its states, the non-blocking wait machinery, and the functions one file
 * calls in another. Not for use outside src/backend/mysql/. The driver runs
 * on MariaDB Connector/C's NON-BLOCKING API only: the MYSQL handle is
 * created with MYSQL_OPT_NONBLOCK, every call that talks to the server is a
 * *_start() / *_cont() pair, and the loop waits on mysql_get_socket() for
 * what the library asks (MYSQL_WAIT_READ / _WRITE / _EXCEPT / _TIMEOUT).
 *
 * THE FILES
 *
 * From the bottom up; each file calls only the files above it in this list,
 * never one below (the exec side's release/free hooks reach conn.c as
 * function pointers set by driver.c):
 *
 *   mysql_internal.h  the connection struct, its states, the wait (this file)
 *   conn.c      the wait/continue machinery (my_wait), the life of one
 *               operation (start, complete, fail now or from the loop,
 *               held for a KILL), the idle watch, errors read from the
 *               MYSQL handle, creating and closing a connection object
 *   tls_connect.c  a connect with TLS, on a helper thread (the library's
 *               TLS handshake blocks)
 *   connect.c   connection set-up: name resolution off the loop,
 *               mysql_real_connect_start/cont, per-connection settings
 *   stmt.c      (myexec) the per-connection cache of prepared statements
 *   results.c   (myexec) typed values, columns, streaming, resume
 *   exec.c      (myexec) statements: text protocol and prepared statements
 *   cancel.c    KILL QUERY on a side connection (a second connection
 *               object of conn.c, set up by connect.c)
 *   driver.c    the struct backend_driver table: the pool's connections
 *               (their timer, close), ping, reset, the pool-level calls

 * THE WAIT
 *
 * A *_start() or *_cont() call returns 0 when the operation is finished, or
 * a set of MYSQL_WAIT_* bits when it needs the socket (or a timeout). The
 * caller then calls my_wait(c, status, cont): the socket event is armed for
 * the bits asked (one persistent event on the socket, re-armed only when
 * the interest or the descriptor changes, so a statement costs no
 * epoll_ctl), plus c->ev_wait (a timer) for mysql_get_timeout_value_ms()
 * when MYSQL_WAIT_TIMEOUT is asked. When either fires, cont(c, ready) is
 * called with the bits that are ready; cont calls the matching *_cont(...,
 * ready) and either finishes the operation (my_complete, last) or calls
 * my_wait again. Exactly one wait is pending at a time (c->wait_cont).
 *
 * CONNECTION STATES (c->phase)
 *
 *   MPH_IDLE        no operation; the socket event stays armed for EV_READ
 *                   on a healthy connection: input while idle means the
 *                   server closed the connection or sent an error (KILL,
 *                   shutdown, wait_timeout); see "IDLE WATCH" in conn.c
 *   MPH_RESOLVING   connect: a host name is resolved on a helper thread
 *   MPH_CONNECTING  mysql_real_connect_start/cont
 *   MPH_RUNNING     an operation's *_start/_cont chain runs (exec, ping,
 *                   reset, the session settings after connect)
 *   MPH_KILL_WAIT   the operation ended but a KILL QUERY for it is still on
 *                   its way: the result waits in c->res (cancel.c)
 *   MPH_DEFERRED    the result is known without I/O; it is reported from
 *                   c->ev_kick: callbacks never run inside a driver call
 *
 * SESSION STATE
 *
 * The pool hands a server connection to another client between
 * transactions, so what a client changes in the server's session must not
 * reach the next one: `SET autocommit = 0` would make the next client's
 * autocommit INSERT open a transaction that is rolled back when it leaves,
 * `USE otherdb` would run its statements in another database, a `LOCK
 * TABLES` would lock everybody out. The session setup turns the server's
 * session_track_state_change on, so the OK packet of any statement that
 * changes the session carries SERVER_SESSION_STATE_CHANGED; that, autocommit
 * found off, or a statement starting with LOCK or FLUSH (table locks are
 * not tracked) marks the connection dirty (c->dirty). The driver's
 * txstate() then answers 'T' although no transaction is open (results
 * still carry the real state, so the client is released as usual): the
 * pool resets the connection (COM_RESET_CONNECTION) before anybody else
 * gets it, and the reset's session setup makes it clean again.
 *
 * OWNERSHIP AND LIFETIME
 *
 * As in the PostgreSQL driver: the pool owns the connection from conn_new
 * until close(); every libevent callback brackets its work with
 * my_enter()/my_leave(); close() releases the server connection and the
 * events at once and frees the struct when no callback of ours is on the
 * stack. done() is always the last thing an operation does, and may start
 * the next operation or close the connection.
 *
 * The exec side (exec.c, results.c, stmt.c) keeps its per-connection state
 * behind c->ex (its own struct, created lazily); on close my_exec_release()
 * frees an open result before the handle is closed (after the socket was
 * shut down when an operation ran, so nothing can block) and my_exec_free()
 * the rest after it.
 */
#ifndef DBPOOLD_BACKEND_MYSQL_INTERNAL_H
#define DBPOOLD_BACKEND_MYSQL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>

#include <event2/event.h>
#include <mysql.h>

#include "backend/backend.h"
#include "backend/helper.h"
#include "backend/resolve.h"

enum {
    MY_KILL_WAIT_MS = 2000,     /* bound on holding a result for an unanswered KILL */
    MY_KILL_RESEND_MS = 1000,   /* first re-send of a KILL the statement outlived */
    MY_KILL_RESEND_MAX_MS = 30000,  /* the re-send delay doubles up to this */
    MY_QUIESCE_WAIT_MS = 1000,  /* bound on waiting for helper threads at exit */
    MY_ERRNO_INTERRUPTED = 1317,      /* ER_QUERY_INTERRUPTED (KILL QUERY) */
    MY_ERRNO_STATEMENT_TIMEOUT = 1969 /* ER_STATEMENT_TIMEOUT (max_statement_time) */
};

enum my_op { MOP_NONE = 0, MOP_CONNECT, MOP_EXEC, MOP_PING, MOP_RESET };

enum my_phase {
    MPH_IDLE = 0, MPH_RESOLVING, MPH_CONNECTING, MPH_RUNNING, MPH_KILL_WAIT, MPH_DEFERRED
};

/* The pool's settings the driver reads, from ONE place (my_settings in
 * connect.c), so that the config's layout can change under it. */
struct my_settings {
    const char *host;            /* "/path" = Unix socket; else a name or address */
    unsigned port;
    const char *dbname;
    const char *username;
    const char *password;        /* passwordFile was read at load */
    const char *charset;         /* "utf8mb4" by default */
    const char *loc;             /* session time_zone; NULL or "" or "Local": server's */
    const char *ssl_mode;        /* DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY */
    const char *ssl_ca, *ssl_cert, *ssl_key;
    uint64_t timeout_ms;         /* connect timeout; 0 = none */
    unsigned statement_cache_size;   /* prepared statements per connection; 0 = off */
};

struct mysql_conn;
struct my_exec;       /* exec side's per-connection state (exec.c, results.c, stmt.c) */

/* A KILL QUERY on its side connection (cancel.c). */
struct my_kill {
    struct mysql_conn *owner;   /* NULL once the owner let go (my_kill_forget) */
    struct mysql_conn *side;
    char sql[48];
};

/* Continue a *_start() call: called with the MYSQL_WAIT_* bits that are
 * ready (MYSQL_WAIT_TIMEOUT when the library's timeout expired). */
typedef void (*my_cont_fn)(struct mysql_conn *c, int ready_status);

struct mysql_conn {
    const struct pool_config *cfg;
    struct event_base *base;
    MYSQL *m;                    /* NULL before connect, after a failed connect, after close */
    enum backend_role role;
    bool connected;              /* the connect completed and nothing broke it since */
    bool closed;
    int depth;                   /* our libevent callbacks on the stack */
    char txstate;                /* as of the last completion: 'I' or 'T' */
    unsigned long thread_id;     /* the server's id of this connection (for KILL QUERY) */
    char server_info[64];        /* "MariaDB 10.11.6" */
    char addr[64];               /* the literal address connected to ("" for a socket) */

    /* The wait (see "THE WAIT"). */
    struct event *ev_io;         /* persistent, on mysql_get_socket(); NULL when none */
    int io_fd;
    short io_what;
    struct event *ev_wait;       /* the library's MYSQL_WAIT_TIMEOUT */
    my_cont_fn wait_cont;        /* the pending wait's continuation, or NULL */

    struct event *ev_timer;      /* connect timeout (cfg->timeout_ms); the KILL bound */
    struct event *ev_kick;       /* deferred work: results, resume, a dead watched conn */
    struct event *ev_resolved;   /* a resolver helper is done; created when first needed */
    struct resolve_job *resolve; /* MPH_RESOLVING, and until the connect completes */
    struct event *ev_tls;        /* a TLS connect's helper is done (tls_connect.c) */
    struct helper_wake *tls;     /* that helper's job while it runs (it owns the handle) */

    /* The operation in flight. */
    enum my_op op;
    enum my_phase phase;
    backend_done_fn done;
    void *arg;
    struct backend_sink sink;
    bool paused;                 /* sink->row returned false; waiting for resume() */
    bool canceled;               /* cancel() was called for this operation */
    struct my_kill *kill;        /* a KILL QUERY in flight for this operation, or NULL */
    unsigned kill_delay_ms;      /* the next re-send of the KILL waits this long */
    int step;                    /* connect.c / driver.c: which statement of a chain runs */
    int ret_int;                 /* the *_start()/_cont() out-values */
    my_bool ret_bool;
    MYSQL *ret_mysql;
    struct backend_result res;   /* the result while deferred or held for a KILL */

    /* Something the server said while no operation ran (idle input): the
     * next operation reports it (CONN_LOST), once. */
    bool lost_seen;
    int32_t lost_code;
    char lost_sqlstate[6];
    char lost_msg[256];

    /* Idle watch (only while op == MOP_NONE). */
    bool watching;
    bool watch_dead;             /* dead when the watch started: report from ev_kick */
    void (*lost)(void *arg);
    void *lost_arg;

    struct my_exec *ex;          /* exec side; NULL until it needs one */
    /* Set by driver.c for the pool's connections (NULL for a KILL's side
     * connection), so that conn.c, the bottom, calls nothing above it:
     * my_exec_release and my_exec_free (see there). */
    void (*exec_release)(struct mysql_conn *c);
    void (*exec_free)(struct mysql_conn *c);

    bool autocommit_off_default; /* the server's sessions start with autocommit off */
    bool dirty;                  /* a statement changed the session's state (SET,
                                    USE, user variables, temporary tables,
                                    autocommit off, LOCK TABLES): reset before
                                    the next client (see "SESSION STATE") */
    bool side;                   /* a KILL's side connection (cancel.c): connects to
                                    addr as given, no session settings */
};

/* The pool's handle is the driver's struct. */
static inline struct mysql_conn *my_conn(struct backend_conn *b)
{
    return (struct mysql_conn *)(void *)b;
}

static inline const struct mysql_conn *my_conn_const(const struct backend_conn *b)
{
    return (const struct mysql_conn *)(const void *)b;
}

static inline void my_timeval_ms(struct timeval *tv, uint64_t ms)
{
    tv->tv_sec = (time_t)(ms / 1000u);
    tv->tv_usec = (suseconds_t)(ms % 1000u) * 1000;
}

/* Transaction state from the server's status flags (after every completed
 * command): MySQL has no failed-transaction state. */
static inline char my_server_txstate(MYSQL *m)
{
    unsigned int st = 0;

    if (!m || mariadb_get_infov(m, MARIADB_CONNECTION_SERVER_STATUS, &st) != 0)
        return 'I';
    return (st & SERVER_STATUS_IN_TRANS) ? 'T' : 'I';
}

/* The operation or the connection ends: a helper still running (host
 * name, TLS connect) or a KILL in flight goes on without it. */
static inline void my_resolve_forget(struct mysql_conn *c)
{
    if (c->resolve) {
        resolve_abandon(c->resolve);
        c->resolve = NULL;
    }
}

static inline void my_tls_forget(struct mysql_conn *c)
{
    if (c->tls) {
        helper_wake_abandon(c->tls);   /* the helper closes the handle it holds */
        c->tls = NULL;
    }
}

static inline void my_kill_forget(struct mysql_conn *c)
{
    if (c->kill) {
        c->kill->owner = NULL;
        c->kill = NULL;
    }
}

#pragma GCC visibility push(hidden)

/* ---- conn.c: the wait, operations, errors, idle watch */

/* Wait for what `status` (a *_start/_cont return) asks, then cont(c, ready). */
void my_wait(struct mysql_conn *c, int status, my_cont_fn cont);
/* Forget the pending wait (the socket event stays as it is). */
void my_wait_cancel(struct mysql_conn *c);
/* Stop reading the socket while a stream is paused (back-pressure). */
void my_io_pause(struct mysql_conn *c);

void my_enter(struct mysql_conn *c);
void my_leave(struct mysql_conn *c);

/* Begin an operation: false (and the result deferred) when it cannot run
 * (not connected, or the server closed the connection while idle). */
void my_start_op(struct mysql_conn *c, enum my_op op, backend_done_fn done, void *arg,
                 const struct backend_sink *sink);
bool my_usable(struct mysql_conn *c);
/* Report the operation's result. Must be the last thing the caller does
 * with c: done() may close c or start the next operation. A KILL still in
 * flight holds the result until it is answered (cancel.c). */
void my_complete(struct mysql_conn *c, const struct backend_result *res);
/* The result after a successful command: ok, txstate from the server. */
void my_complete_ok(struct mysql_conn *c);
/* The result after a failed command: the handle's error (errno, SQLSTATE,
 * message); a lost connection (2006, 2013, ...) is CONN_LOST + broken;
 * 1317/1969 after cancel() is CANCELED. */
void my_complete_error(struct mysql_conn *c);
void my_error_from_handle(struct mysql_conn *c, struct backend_result *r);
/* Fail now (inside one of our callbacks) or later (inside a driver call). */
void my_fail_now(struct mysql_conn *c, int code, bool broken, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void my_fail_later(struct mysql_conn *c, int code, const char *sqlstate, bool broken,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void my_defer_result(struct mysql_conn *c);
/* mysql_errno values that mean the connection is gone. */
bool my_errno_is_lost(unsigned int err);

/* Create a connection object (no I/O); on_timer is c->ev_timer's callback
 * (the connect timeout and the caller's own uses). NULL + message. */
struct mysql_conn *my_conn_create(const struct pool_config *cfg, struct event_base *base,
                                  enum backend_role role, event_callback_fn on_timer,
                                  char *errbuf, size_t errlen);
/* Release everything without blocking; frees c when no callback of ours is
 * on the stack. (driver.c's close() KILLs a running statement first.) */
void my_conn_close(struct mysql_conn *c);
void my_watch_idle(struct mysql_conn *c, void (*lost)(void *arg), void *arg);
void my_unwatch_idle(struct mysql_conn *c);
void my_on_kick(evutil_socket_t fd, short what, void *arg);
void my_on_wait_timeout(evutil_socket_t fd, short what, void *arg);   /* c->ev_wait */
void my_drop_conn(struct mysql_conn *c);
void my_conn_free(struct mysql_conn *c);

/* ---- connect.c */
void my_settings(const struct pool_config *cfg, struct my_settings *s);
/* Apply the pool's session settings (time_zone from `loc`, autocommit on),
 * then complete the operation ok (failure: the handle's error, broken). */
void my_session_setup(struct mysql_conn *c);
void my_connect(struct mysql_conn *c, backend_done_fn done, void *arg);
void my_connect_timed_out(struct mysql_conn *c);

/* ---- tls_connect.c: a connection with TLS is set up on a helper thread */
/* Hand c->m to a helper that runs the blocking mysql_real_connect; c->ev_tls
 * (my_on_tls_connected) fires when it is done. 0, or an error number (c->m
 * is then still the connection's). */
int my_tls_connect_start(struct mysql_conn *c, event_callback_fn done, const char *host,
                         const char *user, const char *password, const char *db, unsigned port,
                         const char *socket_path);
bool my_tls_finished(struct mysql_conn *c);
/* 1: connected; 0: failed (the error is on c->m); -1: socket not non-blocking. */
int my_tls_connect_finish(struct mysql_conn *c);

/* ---- cancel.c */
void my_cancel(struct mysql_conn *c);
/* The KILL for this operation is answered or failed: release a held result. */
void my_kill_finished(struct mysql_conn *c);
void my_kill_timed_out(struct mysql_conn *c);
void my_kill_resend(struct mysql_conn *c);

/* ---- exec side (exec.c, results.c, stmt.c: helper "myexec") */
void my_exec(struct mysql_conn *c, const struct backend_query *q,
             const struct backend_sink *sink, void *arg);
/* Continue row delivery after sink->row returned false. cancel() calls it
 * too, for a paused stream, with c->canceled set: the exec side then reads
 * and drops the rest until the KILL ends the statement (never leaves a
 * half-read connection). */
void my_resume(struct mysql_conn *c);
/* DDL ran on the pool: forget cached prepared statements. */
void my_schema_changed(struct mysql_conn *c);
/* The server dropped this connection's prepared statements
 * (mysql_reset_connection, reconnect): forget them without closing. */
void my_stmt_dropped(struct mysql_conn *c);
/* close(), before the handle is closed: free an open result set. When an
 * operation was in flight the socket is shut down already, so the
 * library's draining reads fail at once. Send nothing to the server. */
void my_exec_release(struct mysql_conn *c);
/* close(), after mysql_close(): free c->ex and the statement handles
 * (mysql_close detached them: mysql_stmt_close only frees memory now). */
void my_exec_free(struct mysql_conn *c);

#pragma GCC visibility pop

#endif
