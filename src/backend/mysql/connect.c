/*
 * connect.c — the MySQL driver's connection set-up (mysql_internal.h): the
 * pool's settings (my_settings, the one place that reads the config), host
 * names resolved off the loop (src/backend/resolve.h), the handle's options
 * (non-blocking, charset, TLS, connect timeout), the
 * mysql_real_connect_start/cont steps and the session settings after it
 * (time_zone from `loc`, autocommit on).
 *
 * HOSTS
 *
 * host "/path" is a Unix socket file. Anything else is TCP: an IPv4 or IPv6
 * literal is used as it is; a name is resolved on a helper thread (the
 * library would call a blocking getaddrinfo() on the loop) and its first
 * address is connected to. Connector/C treats "localhost" as "the default
 * Unix socket"; here it is a name like any other and means TCP to its
 * address, so the configured port is what is used. cfg->timeout_ms covers
 * resolution and connection together (c->ev_timer); the library's own
 * MYSQL_OPT_CONNECT_TIMEOUT is set to the same, rounded up to seconds.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <mysql.h>

#include "backend/backend.h"
#include "backend/mysql/mysql_internal.h"
#include "backend/resolve.h"

/* ------------------------------------------------------------ settings */

void my_settings(const struct pool_config *cfg, struct my_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->host = cfg->host;
    s->port = cfg->port > 0 ? (unsigned)cfg->port : 3306u;
    s->dbname = cfg->dbname;
    s->username = cfg->username;
    s->password = cfg->password;
    s->charset = cfg->charset && *cfg->charset ? cfg->charset : "utf8mb4";
    s->loc = NULL;   /* the flat config has no `loc` yet */
    s->ssl_mode = cfg->ssl_mode;
    s->timeout_ms = cfg->timeout_ms;
    s->statement_cache_size = cfg->statement_cache_size > 0 ? (unsigned)cfg->statement_cache_size
                                                            : 0u;
}

void my_resolve_forget(struct mysql_conn *c)
{
    if (c->resolve) {
        resolve_abandon(c->resolve);
        c->resolve = NULL;
    }
}

/* ----------------------------------------------------------- failures */

/* Where we tried to connect, for messages: "host:port" or the socket path,
 * with the address a name resolved to. */
static void describe_server(const struct mysql_conn *c, const struct my_settings *s,
                            char *dst, size_t size)
{
    if (s->host && s->host[0] == '/')
        snprintf(dst, size, "socket %s", s->host);
    else if (c->addr[0] && strcmp(c->addr, s->host) != 0)
        snprintf(dst, size, "%s:%u (%s)", s->host, s->port, c->addr);
    else
        snprintf(dst, size, "%s:%u", s->host ? s->host : "", s->port);
}

static void connect_failed(struct mysql_conn *c)
{
    struct my_settings s;
    struct backend_result r;
    char where[160];
    int32_t vendor;
    char state[sizeof(r.err.sqlstate)];

    my_settings(c->cfg, &s);
    describe_server(c, &s, where, sizeof(where));
    my_error_from_handle(c, &r);
    vendor = r.err.vendor_code;
    memcpy(state, r.err.sqlstate, sizeof(state));
    backend_result_error(&r, DBPOOL_E_UNAVAILABLE, state, 'I',
                         "cannot connect to MySQL at %s: %s (check that the server runs and "
                         "the pool's host, port, username and password)", where,
                         c->m && *mysql_error(c->m) ? mysql_error(c->m) : "connection failed");
    r.err.vendor_code = vendor;
    r.broken = true;
    my_drop_conn(c);
    my_complete(c, &r);
}

void my_connect_timed_out(struct mysql_conn *c)
{
    struct my_settings s;
    char where[160];
    bool resolving = c->phase == MPH_RESOLVING;

    my_settings(c->cfg, &s);
    describe_server(c, &s, where, sizeof(where));
    my_drop_conn(c);
    my_fail_now(c, DBPOOL_E_UNAVAILABLE, true,
                "connection to MySQL at %s timed out after %llu ms%s (check that the server "
                "is reachable, or raise the pool's timeout)", where,
                (unsigned long long)c->cfg->timeout_ms,
                resolving ? " (resolving the host name)" : "");
}

/* ------------------------------------------ the session after connect */

static void session_step(struct mysql_conn *c);

static void session_cont(struct mysql_conn *c, int ready)
{
    int status = c->step == 1 ? mysql_real_query_cont(&c->ret_int, c->m, ready)
                              : mysql_autocommit_cont(&c->ret_bool, c->m, ready);

    if (status) {
        my_wait(c, status, session_cont);
        return;
    }
    if ((c->step == 1 && c->ret_int != 0) || (c->step == 2 && c->ret_bool != 0)) {
        connect_failed(c);
        return;
    }
    session_step(c);
}

/* Step 1: SET time_zone (when `loc` names one); step 2: autocommit on
 * (only when the server's default is off); then the connect is done. */
static void session_step(struct mysql_conn *c)
{
    struct my_settings s;
    char sql[160], esc[2 * 64 + 1];
    unsigned int st = 0;
    int status = 0;

    my_settings(c->cfg, &s);
    while (status == 0) {
        c->step++;
        if (c->step == 1) {
            if (!s.loc || !*s.loc || strcasecmp(s.loc, "Local") == 0 || strlen(s.loc) > 64)
                continue;
            mysql_real_escape_string(c->m, esc, s.loc, (unsigned long)strlen(s.loc));
            snprintf(sql, sizeof(sql), "SET time_zone = '%s'",
                     strcasecmp(s.loc, "UTC") == 0 ? "+00:00" : esc);
            status = mysql_real_query_start(&c->ret_int, c->m, sql, (unsigned long)strlen(sql));
            if (status == 0 && c->ret_int != 0) {
                connect_failed(c);
                return;
            }
        } else if (c->step == 2) {
            (void)mariadb_get_infov(c->m, MARIADB_CONNECTION_SERVER_STATUS, &st);
            if (st & SERVER_STATUS_AUTOCOMMIT)
                continue;
            status = mysql_autocommit_start(&c->ret_bool, c->m, 1);
            if (status == 0 && c->ret_bool != 0) {
                connect_failed(c);
                return;
            }
        } else {
            c->connected = true;
            c->txstate = 'I';
            my_stmt_dropped(c);   /* a new server session has no statements */
            my_complete_ok(c);
            return;
        }
    }
    my_wait(c, status, session_cont);
}

static void connected(struct mysql_conn *c)
{
    const char *v = mysql_get_server_info(c->m);
    const char *maria = v ? strstr(v, "-MariaDB") : NULL;

    c->thread_id = mysql_thread_id(c->m);
    if (maria)
        snprintf(c->server_info, sizeof(c->server_info), "MariaDB %.*s",
                 (int)(maria - v), v);
    else
        snprintf(c->server_info, sizeof(c->server_info), "MySQL %s", v ? v : "");
    c->connected = true;   /* for the session statements; reset on failure */
    c->step = c->side ? 2 : 0;   /* a KILL's side connection needs no settings */
    session_step(c);
}

/* ----------------------------------------------------------- connecting */

static void connect_cont(struct mysql_conn *c, int ready)
{
    int status = mysql_real_connect_cont(&c->ret_mysql, c->m, ready);

    if (status) {
        my_wait(c, status, connect_cont);
        return;
    }
    if (!c->ret_mysql)
        connect_failed(c);
    else
        connected(c);
}

/* The handle with its options. False on a bad option (the message in c->res). */
static bool set_options(struct mysql_conn *c, const struct my_settings *s)
{
    unsigned int secs = (unsigned int)((s->timeout_ms + 999) / 1000);
    my_bool on = 1;
    unsigned int off = 0;
    const char *mode = s->ssl_mode && *s->ssl_mode ? s->ssl_mode : "DISABLED";

    if (mysql_options(c->m, MYSQL_OPT_NONBLOCK, 0) != 0 ||
        mysql_options(c->m, MYSQL_SET_CHARSET_NAME, s->charset) != 0 ||
        mysql_options(c->m, MYSQL_OPT_LOCAL_INFILE, &off) != 0)
        return false;
    if (secs > 0 && mysql_options(c->m, MYSQL_OPT_CONNECT_TIMEOUT, &secs) != 0)
        return false;
    if (strcasecmp(mode, "DISABLED") == 0 || strcasecmp(mode, "disable") == 0)
        return true;
    if (s->ssl_ca || s->ssl_cert || s->ssl_key)
        (void)mysql_ssl_set(c->m, s->ssl_key, s->ssl_cert, s->ssl_ca, NULL, NULL);
    else
        (void)mysql_options(c->m, MYSQL_OPT_SSL_ENFORCE, &on);   /* TLS without files */
    if (strcasecmp(mode, "PREFERRED") == 0)
        return true;
    if (mysql_options(c->m, MYSQL_OPT_SSL_ENFORCE, &on) != 0)
        return false;
    if (strncasecmp(mode, "VERIFY", 6) == 0 &&
        mysql_options(c->m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &on) != 0)
        return false;
    return true;
}

/* Start the library on addr (a literal address, or NULL for the socket). */
static void begin_connection(struct mysql_conn *c, const char *addr)
{
    struct my_settings s;
    bool sock;
    int status;

    my_settings(c->cfg, &s);
    sock = s.host && s.host[0] == '/';
    if (addr != c->addr)
        snprintf(c->addr, sizeof(c->addr), "%s", addr ? addr : "");
    c->m = mysql_init(NULL);
    if (!c->m || !set_options(c, &s)) {
        my_drop_conn(c);
        my_fail_later(c, DBPOOL_E_INTERNAL, "", true,
                      "cannot set up a MySQL connection (out of memory or a bad charset/TLS "
                      "option: check the pool's charset and sslMode)");
        return;
    }
    c->phase = MPH_CONNECTING;
    status = mysql_real_connect_start(&c->ret_mysql, c->m, sock ? "localhost" : addr,
                                      s.username, s.password, s.dbname, sock ? 0 : s.port,
                                      sock ? s.host : NULL, 0);
    if (status) {
        my_wait(c, status, connect_cont);
        return;
    }
    /* Finished at once (a Unix socket, or refused): a completion inside
     * this call is deferred to the loop (my_complete). */
    if (!c->ret_mysql)
        connect_failed(c);
    else
        connected(c);
}

static void on_resolved(evutil_socket_t fd, short what, void *arg)
{
    struct mysql_conn *c = arg;
    const struct resolve_entry *e;
    char msg[sizeof(c->res.err.message)];

    (void)fd;
    (void)what;
    my_enter(c);
    if (c->phase == MPH_RESOLVING && c->resolve && resolve_finished(c->resolve)) {
        e = resolve_entry(c->resolve, 0);
        if (!e || e->gai != 0 || !e->addr[0]) {
            if (e)
                resolve_entry_error(e, msg, sizeof(msg));
            else
                snprintf(msg, sizeof(msg), "cannot resolve host %s", c->cfg->host);
            my_fail_now(c, DBPOOL_E_UNAVAILABLE, true, "%s", msg);
        } else {
            char addr[RESOLVE_ADDR_MAX];
            snprintf(addr, sizeof(addr), "%s", e->addr);
            my_resolve_forget(c);
            begin_connection(c, addr);
        }
    }
    my_leave(c);
}

void my_connect(struct mysql_conn *c, backend_done_fn done, void *arg)
{
    struct my_settings s;
    struct timeval tv;
    int rc;

    my_start_op(c, MOP_CONNECT, done, arg, NULL);
    my_settings(c->cfg, &s);
    if (c->m) {
        my_fail_later(c, DBPOOL_E_INTERNAL, "", false, "connect called on an open connection");
        return;
    }
    c->lost_seen = false;
    if (c->side && c->addr[0]) {   /* cancel.c: the address the main connection used */
        begin_connection(c, c->addr);
        return;
    }
    c->addr[0] = '\0';
    if (s.timeout_ms > 0) {   /* covers name resolution too */
        my_timeval_ms(&tv, s.timeout_ms);
        if (event_add(c->ev_timer, &tv) != 0) {
            my_fail_later(c, DBPOOL_E_INTERNAL, "", true, "cannot arm the connect timer");
            return;
        }
    }
    if (s.host[0] == '/' || !resolve_needed(s.host)) {
        begin_connection(c, s.host[0] == '/' ? NULL : s.host);
        return;
    }
    if (!c->ev_resolved && !(c->ev_resolved = event_new(c->base, -1, 0, on_resolved, c))) {
        my_fail_later(c, DBPOOL_E_INTERNAL, "", true, "cannot resolve host %s: out of memory",
                      s.host);
        return;
    }
    rc = resolve_start(s.host, c->ev_resolved, &c->resolve);
    if (rc != 0) {
        my_fail_later(c, DBPOOL_E_INTERNAL, "", true, "cannot resolve host %s: %s", s.host,
                      strerror(rc));
        return;
    }
    c->phase = MPH_RESOLVING;
}
