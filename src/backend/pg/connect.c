/*
 * connect.c — the PostgreSQL driver's connection set-up (pg_internal.h):
 * libpq's keywords (the password from the config, read at load), host names resolved off the loop
 * (src/backend/resolve.h) and handed to libpq as hostaddr, the
 * PQconnectPoll steps and the connect timeout.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "backend/backend.h"
#include "backend/pg/pg_internal.h"
#include "backend/pg/connect.h"
#include "backend/pg/conn.h"
#include "backend/pg/pg_stmtcache.h"
#include "backend/resolve.h"

/* PQconnectStartParams with our keywords. libpq copies the values.
 * hostaddr: NULL, or one address (or "") per entry of hosts. */
static PGconn *start_connection(const struct pool_config *cfg, const char *hosts,
                                const char *hostaddr, const char *password)
{
    const char *kw[12], *val[12];
    char port[16] = "";
    int n = 0;

    if (cfg->port > 0)
        snprintf(port, sizeof(port), "%d", cfg->port);
#define KV(k, v) (kw[n] = (k), val[n] = (v), n++)
    KV("host", hosts);
    if (hostaddr)
        KV("hostaddr", hostaddr);
    KV("port", port);
    KV("dbname", cfg->dbname);
    KV("user", cfg->username);
    KV("password", password);
    KV("sslmode", cfg->ssl_mode && *cfg->ssl_mode ? cfg->ssl_mode : "disable");
    KV("application_name", "dbpoold");
    KV("client_encoding", "UTF8");     /* row text is always UTF-8 */
    KV("gssencmode", "disable");       /* no GSSAPI credential probing on the loop */
#undef KV
    kw[n] = val[n] = NULL;
    return PQconnectStartParams(kw, val, 0);
}

void pg_drop_conn(struct backend_conn *c)
{
    pg_disarm_io(c);
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    c->connected = false;
}

/* Append to the NUL-terminated string in dst (truncating). */
static void append(char *dst, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *dst, size_t size, const char *fmt, ...)
{
    size_t used = strlen(dst);
    va_list ap;

    if (used + 1 >= size)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(dst + used, size - used, fmt, ap);   /* truncation is fine */
    va_end(ap);
}

/* libpq's error message. With resolved names (see "NAME RESOLUTION"): the
 * first resolution error goes in front, and the addresses used go after it,
 * since libpq names a host given by hostaddr by its address only. */
static void connect_error_message(const struct backend_conn *c, char *dst, size_t size)
{
    const struct resolve_job *job = c->resolve;
    size_t n = job ? resolve_count(job) : 0;
    char libpq[sizeof(c->res.err.message)];
    bool failed = false;
    int shown = 0;

    dst[0] = '\0';
    for (size_t i = 0; i < n && !failed; i++) {
        const struct resolve_entry *e = resolve_entry(job, i);
        if (e->lookup && e->gai != 0) {
            resolve_entry_error(e, dst, size);
            append(dst, size, "; ");
            failed = true;
        }
    }
    pg_conn_error_message(c, libpq, sizeof(libpq), "connection failed");
    append(dst, size, "%s", libpq);
    for (size_t i = 0; i < n; i++) {
        const struct resolve_entry *e = resolve_entry(job, i);
        if (e->lookup && e->gai == 0)
            append(dst, size, "%s%s is %s", shown++ ? ", " : " (", e->name, e->addr);
    }
    if (shown)
        append(dst, size, ")");
}

static void connect_failed(struct backend_conn *c)
{
    char msg[sizeof(c->res.err.message)];

    connect_error_message(c, msg, sizeof(msg));
    pg_drop_conn(c);
    pg_fail_now(c, DBPOOL_E_UNAVAILABLE, true, "%s", msg);
}

static void connect_succeeded(struct backend_conn *c)
{
    const char *version = PQparameterStatus(c->pg, "server_version");
    struct backend_result r;

    pg_disarm_io(c);
    c->connected = true;
    if (!c->sc && c->cfg->statement_cache_size > 0)
        c->sc = stmt_cache_new((unsigned)c->cfg->statement_cache_size, NULL, NULL);   /* NULL: no caching */
    snprintf(c->server_info, sizeof(c->server_info), "PostgreSQL %s", version ? version : "");
    backend_result_ok(&r, 'I');
    pg_complete(c, &r);
}

void pg_connect_timed_out(struct backend_conn *c)
{
    bool resolving = c->phase == PH_RESOLVING;

    pg_drop_conn(c);
    pg_fail_now(c, DBPOOL_E_UNAVAILABLE, true, "connection to %s:%d timed out after %llu ms%s",
                c->cfg->host, c->cfg->port, (unsigned long long)c->cfg->timeout_ms,
                resolving ? " (resolving the host name)" : "");
}

/* One PQconnectPoll step, then wait for what libpq asks for. */
void pg_connect_step(struct backend_conn *c)
{
    short what;

    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_OK:
        connect_succeeded(c);
        return;
    case PGRES_POLLING_FAILED:
        connect_failed(c);
        return;
    case PGRES_POLLING_READING:
        what = EV_READ;
        break;
    default:   /* PGRES_POLLING_WRITING (ACTIVE is unused) */
        what = EV_WRITE;
        break;
    }
    if (!pg_arm_io(c, what, true)) {
        pg_drop_conn(c);
        pg_fail_now(c, DBPOOL_E_UNAVAILABLE, true, "connection to %s:%d failed: cannot watch its socket",
                    c->cfg->host, c->cfg->port);
    }
}

/* Start libpq on hosts (and hostaddr, see start_connection). No DNS
 * happens here: every name in hosts has its address in hostaddr. */
static void begin_connection(struct backend_conn *c, const char *hosts, const char *hostaddr)
{
    char err[sizeof(c->res.err.message)];

    /* The password is in the config: passwordFile was read at load, so no
     * file is read here, on the event loop. */
    c->pg = start_connection(c->cfg, hosts, hostaddr, c->cfg->password);
    if (!c->pg) {
        pg_fail_later(c, DBPOOL_E_INTERNAL, "", true, "cannot connect to PostgreSQL: out of memory");
        return;
    }
    (void)PQsetNoticeReceiver(c->pg, pg_on_notice, c);   /* returns the previous one */
    if (PQstatus(c->pg) == CONNECTION_BAD || PQsetnonblocking(c->pg, 1) != 0 ||
        !pg_arm_io(c, EV_WRITE, true)) {
        connect_error_message(c, err, sizeof(err));
        pg_drop_conn(c);
        pg_fail_later(c, DBPOOL_E_UNAVAILABLE, "", true, "%s", err);
        return;
    }
    c->phase = PH_CONNECTING;   /* libpq: act as if PGRES_POLLING_WRITING */
}

/* The helper has resolved the names: connect to the hosts that resolved. */
static void resolved(struct backend_conn *c)
{
    const struct resolve_job *job = c->resolve;
    size_t n = resolve_count(job);
    const struct resolve_entry *failed = NULL;
    size_t hosts_size = strlen(c->cfg->host) + 1;
    char *hosts = malloc(hosts_size + n * RESOLVE_ADDR_MAX);
    char *addrs = hosts + hosts_size;
    char msg[sizeof(c->res.err.message)];
    size_t nh = 0, na = 0, kept = 0;

    if (!hosts) {
        pg_fail_now(c, DBPOOL_E_INTERNAL, true, "cannot connect to PostgreSQL: out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct resolve_entry *e = resolve_entry(job, i);
        size_t len = strlen(e->name), alen = strlen(e->addr);

        if (e->lookup && e->gai != 0) {
            if (!failed)
                failed = e;
            continue;
        }
        if (kept++ > 0) {
            hosts[nh++] = ',';
            addrs[na++] = ',';
        }
        memcpy(hosts + nh, e->name, len);
        nh += len;
        memcpy(addrs + na, e->addr, alen);   /* "" for an entry that is not a name */
        na += alen;
    }
    hosts[nh] = addrs[na] = '\0';
    if (kept == 0 && failed) {
        resolve_entry_error(failed, msg, sizeof(msg));
        free(hosts);
        pg_fail_now(c, DBPOOL_E_UNAVAILABLE, true, "%s", msg);
        return;
    }
    begin_connection(c, hosts, addrs);
    free(hosts);
}

static void on_resolved(evutil_socket_t fd, short what, void *arg)
{
    struct backend_conn *c = arg;

    (void)fd;
    (void)what;
    enter(c);
    if (c->phase == PH_RESOLVING && c->resolve && resolve_finished(c->resolve))
        resolved(c);
    leave(c);
}

/* Resolve the names in cfg->host on a helper thread; on_resolved goes on.
 * 0, or an error number. */
static int start_resolution(struct backend_conn *c)
{
    int rc;

    if (!c->ev_resolved && !(c->ev_resolved = event_new(c->base, -1, 0, on_resolved, c)))
        return ENOMEM;
    rc = resolve_start(c->cfg->host, c->ev_resolved, &c->resolve);
    if (rc == 0)
        c->phase = PH_RESOLVING;
    return rc;
}

void pg_connect(struct backend_conn *c, backend_done_fn done, void *arg)
{
    struct timeval tv;
    int rc;

    pg_start_op(c, OP_CONNECT, done, arg, NULL);
    if (c->pg) {
        pg_fail_later(c, DBPOOL_E_INTERNAL, "", false, "connect called on an open connection");
        return;
    }
    if (c->cfg->timeout_ms > 0) {   /* covers name resolution too */
        timeval_ms(&tv, c->cfg->timeout_ms);
        if (event_add(c->ev_timer, &tv) != 0) {
            pg_fail_later(c, DBPOOL_E_INTERNAL, "", true, "cannot arm the connect timer");
            return;
        }
    }
    if (!resolve_needed(c->cfg->host)) {
        begin_connection(c, c->cfg->host, NULL);
        return;
    }
    rc = start_resolution(c);
    if (rc != 0)
        pg_fail_later(c, DBPOOL_E_INTERNAL, "", true, "cannot resolve host %s: %s", c->cfg->host,
                      strerror(rc));
}
