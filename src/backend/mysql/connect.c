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
#include "backend/mysql/mysql_options.h"
#include "backend/resolve.h"

/* ------------------------------------------------------------ settings */

void my_settings(const struct pool_config *cfg, struct my_settings *s)
{
    const struct mysql_options *o = mysql_opts(cfg);

    memset(s, 0, sizeof(*s));
    s->host = cfg->host;
    s->port = cfg->port > 0 ? (unsigned)cfg->port : 3306u;
    s->dbname = cfg->dbname;
    s->username = cfg->username;
    s->password = cfg->password;
    s->charset = o->charset && *o->charset ? o->charset : "utf8mb4";
    s->loc = o->loc;
    s->ssl_mode = o->ssl_mode;
    s->ssl_ca = o->ssl_ca;
    s->ssl_cert = o->ssl_cert;
    s->ssl_key = o->ssl_key;
    s->timeout_ms = cfg->timeout_ms;
    s->statement_cache_size = o->statement_cache_size > 0 ? (unsigned)o->statement_cache_size : 0u;
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

/* What to check, for the errors that are the pool's settings' fault (the
 * pool adds "check that the server is running" to every connect failure). */
static const char *connect_hint(int32_t vendor)
{
    switch (vendor) {
    case 1045: return " (check the pool's username and password)";   /* access denied */
    case 1044: return " (grant the pool's user access to the database)";
    case 1049: return " (check the pool's database name)";           /* unknown database */
    case 1115: return " (check the pool's charset)";                 /* unknown charset */
    case 1040: case 1203: return " (the server's max_connections or max_user_connections "
                                 "is reached)";
    default: return "";
    }
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
    backend_result_error(&r, DBPOOL_E_UNAVAILABLE, state, 'I', "cannot connect to MySQL at %s: %s%s",
                         where, c->m && *mysql_error(c->m) ? mysql_error(c->m) : "connection failed",
                         connect_hint(vendor));
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

/* A session setting failed: a connect fails; after a reset the connection
 * is unusable for the pool (its settings are not what the pool promises). */
static void session_failed(struct mysql_conn *c)
{
    struct backend_result r;

    if (c->op == MOP_CONNECT) {
        connect_failed(c);
        return;
    }
    my_error_from_handle(c, &r);
    r.broken = true;
    my_complete(c, &r);
}

static void session_cont(struct mysql_conn *c, int ready)
{
    int status = c->step == 1   ? mysql_real_query_cont(&c->ret_int, c->m, ready)
                 : c->step == 2 ? mysql_autocommit_cont(&c->ret_bool, c->m, ready)
                                : mysql_select_db_cont(&c->ret_int, c->m, ready);

    if (status) {
        my_wait(c, status, session_cont);
        return;
    }
    if (c->step == 2 ? c->ret_bool != 0 : c->ret_int != 0) {
        session_failed(c);
        return;
    }
    session_step(c);
}

/* Step 1's statement: session state tracking (mysql_internal.h, "SESSION
 * STATE") when the server offers it, and time_zone when `loc` names one.
 * False: nothing to set. */
static bool session_sql(struct mysql_conn *c, const struct my_settings *s, char *sql,
                        size_t len)
{
    char esc[2 * 64 + 1];
    unsigned long caps = 0;
    bool track, tz;
    int n;

    (void)mariadb_get_infov(c->m, MARIADB_CONNECTION_SERVER_CAPABILITIES, &caps);
    track = (caps & CLIENT_SESSION_TRACKING) != 0;
    tz = s->loc && *s->loc && strcasecmp(s->loc, "Local") != 0 && strlen(s->loc) <= 64;
    if (!track && !tz)
        return false;
    n = snprintf(sql, len, "SET %s", track ? "session_track_state_change = ON" : "");
    if (tz) {
        mysql_real_escape_string(c->m, esc, s->loc, (unsigned long)strlen(s->loc));
        snprintf(sql + n, len - (size_t)n, "%stime_zone = '%s'", track ? ", " : "",
                 strcasecmp(s->loc, "UTC") == 0 ? "+00:00" : esc);
    }
    return true;
}

/* The session is as the pool wants it: nothing to reset. The library keeps
 * the status flags of the last OK packet (the setup's own SET changed the
 * session; a reset's packet is not read): they describe the clean session
 * now, autocommit on and no transaction. */
static void session_clean(struct mysql_conn *c)
{
    c->m->server_status |= (unsigned)SERVER_STATUS_AUTOCOMMIT;
    c->m->server_status &= ~(unsigned)(SERVER_SESSION_STATE_CHANGED | SERVER_STATUS_IN_TRANS);
    c->dirty = false;
}

/* Step 1: session tracking and time_zone (session_sql); step 2: autocommit on
 * (only when the server's default is off); step 3, after a reset: the
 * pool's database again; then the connect (or reset) is done. */
static void session_step(struct mysql_conn *c)
{
    struct my_settings s;
    char sql[200];
    unsigned int st = 0;
    int status = 0;

    my_settings(c->cfg, &s);
    while (status == 0) {
        c->step++;
        if (c->step == 1) {
            if (!session_sql(c, &s, sql, sizeof(sql)))
                continue;
            status = mysql_real_query_start(&c->ret_int, c->m, sql, (unsigned long)strlen(sql));
            if (status == 0 && c->ret_int != 0) {
                session_failed(c);
                return;
            }
        } else if (c->step == 2) {
            /* After a reset the library's status flags are stale (it does
             * not read them from the reset's OK packet): the server's
             * default, seen at connect, decides. */
            (void)mariadb_get_infov(c->m, MARIADB_CONNECTION_SERVER_STATUS, &st);
            if (c->op == MOP_CONNECT)
                c->autocommit_off_default = !(st & SERVER_STATUS_AUTOCOMMIT);
            if (!c->autocommit_off_default)
                continue;
            status = mysql_autocommit_start(&c->ret_bool, c->m, 1);
            if (status == 0 && c->ret_bool != 0) {
                session_failed(c);
                return;
            }
        } else if (c->step == 3) {
            /* COM_RESET_CONNECTION keeps the current database: a client's
             * USE must not reach the next one. */
            if (c->op != MOP_RESET || !s.dbname || !*s.dbname)
                continue;
            status = mysql_select_db_start(&c->ret_int, c->m, s.dbname);
            if (status == 0 && c->ret_int != 0) {
                session_failed(c);
                return;
            }
        } else {
            struct backend_result r;

            c->connected = true;
            session_clean(c);
            my_stmt_dropped(c);   /* a new (or reset) session has no statements */
            backend_result_ok(&r, 'I');   /* autocommit on, no transaction */
            my_complete(c, &r);
            return;
        }
    }
    my_wait(c, status, session_cont);
}

/* The session settings (after a connect, or a COM_RESET_CONNECTION that
 * dropped them), then the operation completes ok. */
void my_session_setup(struct mysql_conn *c)
{
    c->step = c->side ? 2 : 0;   /* a KILL's side connection needs no settings */
    session_step(c);
}

/* sslMode REQUIRED or VERIFY_*: TLS or nothing. Connector/C 3.3 lets a
 * Unix-socket connection to a server without TLS through even with
 * MYSQL_OPT_SSL_ENFORCE, so the driver checks the outcome itself. */
static bool tls_required(const struct my_settings *s)
{
    const char *mode = s->ssl_mode ? s->ssl_mode : "";

    return strcasecmp(mode, "REQUIRED") == 0 || strncasecmp(mode, "VERIFY", 6) == 0;
}

static void tls_missing(struct mysql_conn *c, const struct my_settings *s)
{
    char where[160];

    describe_server(c, s, where, sizeof(where));
    my_drop_conn(c);
    my_fail_now(c, DBPOOL_E_UNAVAILABLE, true,
                "cannot connect to MySQL at %s: the server does not offer TLS and the pool's "
                "sslMode is %s (enable TLS on the server, or lower sslMode)", where, s->ssl_mode);
}

static void handshake_done(struct mysql_conn *c)
{
    const char *v = mysql_get_server_info(c->m);
    const char *maria = v ? strstr(v, "-MariaDB") : NULL;
    struct my_settings s;

    my_settings(c->cfg, &s);
    if (tls_required(&s) && !mysql_get_ssl_cipher(c->m)) {
        tls_missing(c, &s);
        return;
    }

    c->thread_id = mysql_thread_id(c->m);
    if (maria)
        snprintf(c->server_info, sizeof(c->server_info), "MariaDB %.*s",
                 (int)(maria - v), v);
    else
        snprintf(c->server_info, sizeof(c->server_info), "MySQL %s", v ? v : "");
    c->connected = true;   /* for the session statements; reset on failure */
    my_session_setup(c);
}

/* ----------------------------------------------------------- connecting */

static void connect_cont(struct mysql_conn *c, int ready);

/* After mysql_real_connect_start/cont: wait, or go on. A completion inside
 * connect() itself (a Unix socket can finish at once) is deferred to the
 * loop by my_complete. */
static void connect_status(struct mysql_conn *c, int status)
{
    if (status)
        my_wait(c, status, connect_cont);
    else if (!c->ret_mysql)
        connect_failed(c);
    else
        handshake_done(c);
}

static void connect_cont(struct mysql_conn *c, int ready)
{
    connect_status(c, mysql_real_connect_cont(&c->ret_mysql, c->m, ready));
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

static bool tls_wanted(const struct my_settings *s)
{
    const char *mode = s->ssl_mode ? s->ssl_mode : "";

    return *mode && strcasecmp(mode, "DISABLED") != 0 && strcasecmp(mode, "disable") != 0;
}

/* c->ev_tls: the helper of a TLS connect is done (tls_connect.c). */
static void on_tls_connected(evutil_socket_t fd, short what, void *arg)
{
    struct mysql_conn *c = arg;

    (void)fd;
    (void)what;
    my_enter(c);
    if (c->phase == MPH_CONNECTING && my_tls_finished(c)) {
        switch (my_tls_connect_finish(c)) {
        case 1:
            handshake_done(c);
            break;
        case 0:
            connect_failed(c);
            break;
        default:
            my_drop_conn(c);
            my_fail_now(c, DBPOOL_E_UNAVAILABLE, true, "cannot make the MySQL connection's "
                        "socket non-blocking: %s", strerror(errno));
        }
    }
    my_leave(c);
}

/* Start the library on addr (a literal address, or NULL for the socket). */
static void begin_connection(struct mysql_conn *c, const char *addr)
{
    struct my_settings s;
    bool sock;

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
    if (tls_wanted(&s)) {   /* the handshake would block: on a helper (tls_connect.c) */
        int rc = my_tls_connect_start(c, on_tls_connected, sock ? "localhost" : addr,
                                      s.username, s.password,
                                      s.dbname, sock ? 0 : s.port, sock ? s.host : NULL);
        if (rc != 0) {
            my_drop_conn(c);
            my_fail_now(c, DBPOOL_E_INTERNAL, true, "cannot start the TLS connect: %s",
                        strerror(rc));
        }
        return;
    }
    connect_status(c, mysql_real_connect_start(&c->ret_mysql, c->m, sock ? "localhost" : addr,
                                               s.username, s.password, s.dbname,
                                               sock ? 0 : s.port, sock ? s.host : NULL, 0));
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
