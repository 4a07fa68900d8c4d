/*
 * status.c — the status socket: HTTP/1.1 over a Unix socket, served by
 * libevent's evhttp on the daemon's event loop.
 *
 *   GET /health   200 when every pool is healthy, 503 otherwise (JSON)
 *   GET /pools    one JSON object per pool: sizing, clients, counters
 *   GET /stats    daemon-wide JSON: version, uptime, clients, summed counters
 *   GET /metrics  the same numbers in Prometheus text exposition format
 *   GET /clients  every client session (status_conns.c)
 *   GET /servers  every server connection (status_conns.c)
 *   GET /config   the effective configuration, secrets redacted (status_config.c)
 *   POST /reload, /shutdown, /pools/NAME/{pause,resume,reconnect},
 *        /clients/ID/kill   admin actions (status_admin.c)
 *
 * doc/status.md documents every field. HEAD is answered like GET without a
 * body; any other method gets 405 with an Allow header (admin actions:
 * POST only), an unknown path 404. Who may do what: status_admin.h.
 * The query string never affects routing.
 *
 * Every request takes one snapshot of all pools (pool_get_stats) and renders
 * it, so a response is internally consistent. What it shows comes through
 * the read-only struct status_view the daemon gives at status_start; the
 * session counts are the lengths of the sessions' state lists. Nothing here
 * blocks. Passwords never leave the daemon (GET /config shows "***").
 *
 * Ownership: status_start() returns a struct status_server that owns the
 * evhttp (which owns the listener and so the listening socket);
 * status_stop() frees it, which closes the socket, and unlinks the socket
 * file. status_stop() runs only when the loop no longer dispatches (see
 * on_accept_error).
 *
 * Out of descriptors, accept() fails and the socket stays readable; evhttp
 * alone would retry at once, for ever, at 100% CPU. The listener is ours
 * (evhttp_bind_listener) so that an accept error pauses it: it resumes
 * after a second, or sooner when a client session ends (status_fd_freed).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "daemon/log.h"
#include "daemon/pool.h"
#include "daemon/reload.h"
#include "daemon/status.h"
#include "daemon/status_admin.h"
#include "daemon/status_config.h"
#include "daemon/status_conns.h"
#include "daemon/status_latency.h"
#include "daemon/status_reload.h"
#include "daemon/status_write.h"
#include "daemon/unix_socket.h"

#ifdef PACKAGE_VERSION_STR
#define STATUS_VERSION PACKAGE_VERSION_STR
#else
#define STATUS_VERSION "dev"
#endif

#define STATUS_TIMEOUT_S 10              /* idle/slow HTTP connections */
#define STATUS_MAX_HEADERS 8192          /* bytes of request headers */
#define STATUS_MAX_BODY 4096             /* GET needs none; keep it small */
#define STATUS_ACCEPT_RETRY_S 1          /* after a failed accept() */
#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define ALLOWED_METHODS "GET, HEAD"

struct status_server {
    const struct status_view *view;  /* the daemon's (not owned) */
    struct evhttp *http;
    struct evconnlistener *evl;      /* owned by http once bound */
    char *path;
    bool bound;                      /* bound here (not passed): unlink on stop */
};

/* All pools and the daemon's figures at one instant. */
struct snapshot {
    struct pool_stats *st;
    size_t n;
    struct status_daemon_info info;
    const struct reload_state *reload;   /* NULL when the view has none */
};

/* ------------------------------------------------------------------------
 * Snapshots
 * ---------------------------------------------------------------------- */

/* Fill snap from every pool. healthy comes from pool_healthy() so that all
 * endpoints agree with /health. Returns false when out of memory. */
static bool snapshot_take(const struct status_view *v, struct snapshot *snap)
{
    snap->n = v->npools(v->arg);
    snap->st = calloc(snap->n ? snap->n : 1, sizeof(*snap->st));
    if (!snap->st)
        return false;
    for (size_t i = 0; i < snap->n; i++) {
        const struct pool *p = v->pool(v->arg, i);
        pool_get_stats(p, &snap->st[i]);
        snap->st[i].healthy = pool_healthy(p);
        snap->st[i].last_error[sizeof(snap->st[i].last_error) - 1] = '\0';
    }
    v->daemon_info(v->arg, &snap->info);
    snap->reload = v->reload_state ? v->reload_state(v->arg) : NULL;
    return true;
}

static void snapshot_free(struct snapshot *snap)
{
    free(snap->st);
    snap->st = NULL;
}

/* Sum the counters of every pool into one pool_stats (totals only). */
static void snapshot_sum(const struct snapshot *snap, struct pool_stats *sum)
{
    memset(sum, 0, sizeof(*sum));
    for (size_t i = 0; i < snap->n; i++) {
        const struct pool_stats *s = &snap->st[i];
        sum->total_transactions += s->total_transactions;
        sum->total_statements += s->total_statements;
        sum->total_errors += s->total_errors;
        sum->total_cached_execs += s->total_cached_execs;
        sum->total_prepares += s->total_prepares;
        sum->total_wait_us += s->total_wait_us;
        sum->total_waits += s->total_waits;
        sum->total_acquire_timeouts += s->total_acquire_timeouts;
        sum->total_connect_attempts += s->total_connect_attempts;
        sum->total_connects += s->total_connects;
        sum->total_connect_errors += s->total_connect_errors;
        sum->total_unavailable += s->total_unavailable;
        sum->total_server_closes += s->total_server_closes;
    }
}

static bool all_healthy(const struct snapshot *snap)
{
    for (size_t i = 0; i < snap->n; i++)
        if (!snap->st[i].healthy)
            return false;
    return true;
}

static double uptime_seconds(const struct status_daemon_info *info)
{
    uint64_t now = now_us();

    return now > info->start_us ? (double)(now - info->start_us) / 1e6 : 0.0;
}

/* ------------------------------------------------------------------------
 * GET /health
 * ---------------------------------------------------------------------- */

static void render_health(const struct snapshot *snap, struct evbuffer *b)
{
    const char *status = snap->info.shutting_down ? "shutting_down"
                         : all_healthy(snap) ? "ok" : "degraded";

    evbuffer_add_printf(b, "{\"status\": \"%s\", \"pools\": [", status);
    for (size_t i = 0; i < snap->n; i++) {
        const struct pool_stats *s = &snap->st[i];
        evbuffer_add_printf(b, "%s{\"name\": ", i ? ", " : "");
        json_str(b, s->name ? s->name : "");
        evbuffer_add_printf(b, ", \"healthy\": %s, \"error\": ", json_bool(s->healthy));
        json_str_or_null(b, s->last_error);
        evbuffer_add(b, "}", 1);
    }
    evbuffer_add(b, "], \"last_reload\": ", 18);
    status_render_last_reload(b, snap->reload);
    evbuffer_add(b, "}\n", 2);
}

static void handle_health(struct status_server *s, struct evhttp_request *req,
                          const struct snapshot *snap, struct evbuffer *b)
{
    bool ok = !snap->info.shutting_down && all_healthy(snap);

    (void)s;
    render_health(snap, b);
    send_body(req, ok ? HTTP_OK : 503, ok ? "OK" : "Service Unavailable", CT_JSON, b);
}

/* ------------------------------------------------------------------------
 * GET /pools
 * ---------------------------------------------------------------------- */

static void render_totals(struct evbuffer *b, const struct pool_stats *s)
{
    evbuffer_add_printf(b,
        "{\"transactions\": %" PRIu64 ", \"statements\": %" PRIu64
        ", \"errors\": %" PRIu64 ", \"cached_executions\": %" PRIu64
        ", \"prepares\": %" PRIu64 ", \"wait_ms\": ",
        s->total_transactions, s->total_statements, s->total_errors, s->total_cached_execs,
        s->total_prepares);
    json_us_as_ms(b, s->total_wait_us);
    evbuffer_add_printf(b,
        ", \"waits\": %" PRIu64 ", \"acquire_timeouts\": %" PRIu64
        ", \"connect_attempts\": %" PRIu64 ", \"connects\": %" PRIu64
        ", \"connect_errors\": %" PRIu64 ", \"unavailable\": %" PRIu64
        ", \"server_closes\": %" PRIu64 "}",
        s->total_waits, s->total_acquire_timeouts, s->total_connect_attempts,
        s->total_connects, s->total_connect_errors, s->total_unavailable,
        s->total_server_closes);
}

static void render_pool(struct evbuffer *b, const struct pool_stats *s)
{
    evbuffer_add(b, "{\"name\": ", 9);
    json_str(b, s->name ? s->name : "");
    evbuffer_add(b, ", \"type\": ", 10);
    json_str(b, s->type ? s->type : "");
    evbuffer_add_printf(b, ", \"healthy\": %s, \"paused\": %s, \"down\": %s, "
                        "\"connect_failures\": %d, \"next_connect_in_ms\": ", json_bool(s->healthy),
                        json_bool(s->paused), json_bool(s->down), s->connect_failures);
    if (s->next_connect_in_ms >= 0)
        evbuffer_add_printf(b, "%" PRId64, s->next_connect_in_ms);
    else
        evbuffer_add(b, "null", 4);
    evbuffer_add(b, ", \"last_error\": ", 16);
    json_str_or_null(b, s->last_error);
    evbuffer_add_printf(b,
        ", \"servers\": {\"max\": %d, \"open\": %d, \"idle\": %d, \"busy\": %d, "
        "\"connecting\": %d}, \"clients\": {\"connected\": %d, \"active\": %d, "
        "\"waiting\": %d, \"pinned\": %d, \"max_pinned\": %d}, \"longest_wait_ms\": ",
        s->max_open, s->servers_open, s->servers_idle, s->servers_busy,
        s->servers_connecting, s->clients_connected, s->clients_active,
        s->clients_waiting, s->clients_pinned, s->max_pinned);
    json_us_as_ms(b, s->longest_wait_us);
    evbuffer_add(b, ", \"latency\": ", 13);
    status_render_latency(b, s);
    evbuffer_add(b, ", \"totals\": ", 12);
    render_totals(b, s);
    evbuffer_add(b, "}", 1);
}

static void handle_pools(struct status_server *s, struct evhttp_request *req,
                         const struct snapshot *snap, struct evbuffer *b)
{
    (void)s;
    evbuffer_add(b, "[", 1);
    for (size_t i = 0; i < snap->n; i++) {
        if (i)
            evbuffer_add(b, ",\n ", 3);
        render_pool(b, &snap->st[i]);
    }
    evbuffer_add(b, "]\n", 2);
    send_body(req, HTTP_OK, "OK", CT_JSON, b);
}

/* ------------------------------------------------------------------------
 * GET /stats
 * ---------------------------------------------------------------------- */

static void handle_stats(struct status_server *s, struct evhttp_request *req,
                         const struct snapshot *snap, struct evbuffer *b)
{
    const struct status_daemon_info *d = &snap->info;
    struct pool_stats sum;
    size_t healthy = 0;

    for (size_t i = 0; i < snap->n; i++)
        healthy += snap->st[i].healthy;
    (void)s;
    snapshot_sum(snap, &sum);
    evbuffer_add(b, "{\"version\": ", 12);
    json_str(b, STATUS_VERSION);
    evbuffer_add_printf(b,
        ", \"uptime_s\": %.3f, \"clients\": {\"connected\": %zu, \"total_accepted\": %" PRIu64
        "}, \"client_buffers\": {\"budget\": %zu, \"used\": %zu, \"peak\": %zu, \"waiting\": %zu, "
        "\"frame_timeouts\": %" PRIu64 ", \"write_stalls\": %" PRIu64 "}"
        ", \"shutting_down\": %s, \"pools\": %zu, \"pools_healthy\": %zu, \"totals\": ",
        uptime_seconds(d), d->clients_connected, d->clients_accepted, d->buffer_budget,
        d->buffer_used, d->buffer_peak, d->buffer_waiting, d->frame_timeouts, d->write_stalls,
        json_bool(d->shutting_down), snap->n, healthy);
    render_totals(b, &sum);
    evbuffer_add_printf(b, ", \"pools_draining\": %zu, \"last_reload\": ",
                        snap->reload ? snap->reload->ndraining : 0);
    status_render_last_reload(b, snap->reload);
    evbuffer_add(b, "}\n", 2);
    send_body(req, HTTP_OK, "OK", CT_JSON, b);
}

/* ------------------------------------------------------------------------
 * GET /clients, /servers, /config (their own files)
 * ---------------------------------------------------------------------- */

static void handle_clients(struct status_server *s, struct evhttp_request *req,
                           const struct snapshot *snap, struct evbuffer *b)
{
    (void)snap;
    status_handle_clients(req, s->view, b);
}

static void handle_servers(struct status_server *s, struct evhttp_request *req,
                           const struct snapshot *snap, struct evbuffer *b)
{
    (void)snap;
    status_handle_servers(req, s->view, b);
}

static void handle_config(struct status_server *s, struct evhttp_request *req,
                          const struct snapshot *snap, struct evbuffer *b)
{
    (void)snap;
    status_handle_config(req, s->view, b);
}

/* ------------------------------------------------------------------------
 * GET /metrics (Prometheus text exposition format 0.0.4)
 * ---------------------------------------------------------------------- */

enum metric_kind { MK_BOOL, MK_INT, MK_U64, MK_US_AS_SECONDS };

/* One per-pool sample series; consecutive rows with the same name form one
 * metric family (HELP/TYPE written once). */
struct pool_metric {
    const char *name;
    const char *type;
    const char *help;
    const char *state;                   /* state="..." label, or NULL */
    enum metric_kind kind;
    size_t off;                          /* field in struct pool_stats */
};

#define PM(n, t, h, st, k, f) { "dbpoold_pool_" n, t, h, st, k, offsetof(struct pool_stats, f) }

static const struct pool_metric pool_metrics[] = {
    PM("healthy", "gauge", "1 when the pool is healthy, 0 otherwise.", NULL, MK_BOOL, healthy),
    PM("down", "gauge",
       "1 while the pool is down (more than maxRetries connect failures in a row): requests "
       "fail at once with UNAVAILABLE.", NULL, MK_BOOL, down),
    PM("connect_failures", "gauge",
       "Connection attempts that failed in a row (0 once one succeeds).", NULL, MK_INT,
       connect_failures),
    PM("servers_max", "gauge", "Configured maximum of open server connections (maxOpenConns).",
       NULL, MK_INT, max_open),
    PM("servers", "gauge", "Server connections by state.", "idle", MK_INT, servers_idle),
    PM("servers", "gauge", "Server connections by state.", "busy", MK_INT, servers_busy),
    PM("servers", "gauge", "Server connections by state.", "connecting", MK_INT,
       servers_connecting),
    PM("clients_connected", "gauge", "Client sessions attached to the pool.", NULL, MK_INT,
       clients_connected),
    PM("clients", "gauge", "Client sessions holding a server (active) or queued for one (waiting).",
       "active", MK_INT, clients_active),
    PM("clients", "gauge", "Client sessions holding a server (active) or queued for one (waiting).",
       "waiting", MK_INT, clients_waiting),
    PM("clients_pinned", "gauge", "Client sessions pinned to a server connection (PIN).", NULL,
       MK_INT, clients_pinned),
    PM("clients_pinned_max", "gauge", "Configured maximum of pinned sessions (maxPinned).", NULL,
       MK_INT, max_pinned),
    PM("longest_wait_seconds", "gauge", "Longest current wait of a queued client, in seconds.",
       NULL, MK_US_AS_SECONDS, longest_wait_us),
    PM("transactions_total", "counter", "Server bindings released (transactions served).", NULL,
       MK_U64, total_transactions),
    PM("statements_total", "counter", "Statements executed.", NULL, MK_U64, total_statements),
    PM("errors_total", "counter", "Statements that failed.", NULL, MK_U64, total_errors),
    PM("cached_executions_total", "counter",
       "Statements executed as server-side prepared statements (statement cache hits).", NULL,
       MK_U64, total_cached_execs),
    PM("prepares_total", "counter", "Statements the statement cache prepared on a server.", NULL,
       MK_U64, total_prepares),
    PM("wait_seconds_total", "counter", "Time clients spent waiting for a server, in seconds.",
       NULL, MK_US_AS_SECONDS, total_wait_us),
    PM("waits_total", "counter", "Server acquisitions that had to wait.", NULL, MK_U64,
       total_waits),
    PM("acquire_timeouts_total", "counter", "Waits that ended in an acquire timeout.", NULL,
       MK_U64, total_acquire_timeouts),
    PM("connect_attempts_total", "counter", "Server connections the pool tried to open.", NULL,
       MK_U64, total_connect_attempts),
    PM("connects_total", "counter", "Server connections opened successfully.", NULL, MK_U64,
       total_connects),
    PM("connect_errors_total", "counter", "Server connection attempts that failed.", NULL,
       MK_U64, total_connect_errors),
    PM("unavailable_total", "counter",
       "Requests that failed with UNAVAILABLE (the database could not be reached).", NULL, MK_U64,
       total_unavailable),
    PM("server_closes_total", "counter", "Server connections closed.", NULL, MK_U64,
       total_server_closes),
};

static void prom_header(struct evbuffer *b, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_value(struct evbuffer *b, const struct pool_stats *s, const struct pool_metric *m)
{
    const char *field = (const char *)s + m->off;
    uint64_t u;

    switch (m->kind) {
    case MK_BOOL:
        evbuffer_add_printf(b, "%d\n", *(const bool *)field ? 1 : 0);
        break;
    case MK_INT:
        evbuffer_add_printf(b, "%d\n", *(const int *)field);
        break;
    case MK_U64:
        evbuffer_add_printf(b, "%" PRIu64 "\n", *(const uint64_t *)field);
        break;
    case MK_US_AS_SECONDS:
        u = *(const uint64_t *)field;
        evbuffer_add_printf(b, "%" PRIu64 ".%06" PRIu64 "\n", u / 1000000, u % 1000000);
        break;
    }
}

static void prom_pool_samples(struct evbuffer *b, const struct snapshot *snap,
                              const struct pool_metric *m)
{
    for (size_t i = 0; i < snap->n; i++) {
        evbuffer_add_printf(b, "%s{pool=", m->name);
        prom_label_value(b, snap->st[i].name);
        if (m->state)
            evbuffer_add_printf(b, ",state=\"%s\"", m->state);
        evbuffer_add(b, "} ", 2);
        prom_value(b, &snap->st[i], m);
    }
}

static void prom_client_buffers(struct evbuffer *b, const struct status_daemon_info *d)
{
    prom_header(b, "dbpoold_client_buffer_bytes", "gauge",
                "Bytes buffered for client sessions now (input, output, request frames).");
    evbuffer_add_printf(b, "dbpoold_client_buffer_bytes %zu\n", d->buffer_used);
    prom_header(b, "dbpoold_client_buffer_budget_bytes", "gauge", "clientBufferBudget.");
    evbuffer_add_printf(b, "dbpoold_client_buffer_budget_bytes %zu\n", d->buffer_budget);
    prom_header(b, "dbpoold_client_buffer_waiting", "gauge",
                "Sessions waiting for budget before their frame is read.");
    evbuffer_add_printf(b, "dbpoold_client_buffer_waiting %zu\n", d->buffer_waiting);
    prom_header(b, "dbpoold_client_frame_timeouts_total", "counter",
                "Sessions closed because a frame did not arrive within frameTimeout.");
    evbuffer_add_printf(b, "dbpoold_client_frame_timeouts_total %" PRIu64 "\n", d->frame_timeouts);
    prom_header(b, "dbpoold_client_write_stalls_total", "counter",
                "Sessions closed because their output did not drain within writeStallTimeout.");
    evbuffer_add_printf(b, "dbpoold_client_write_stalls_total %" PRIu64 "\n", d->write_stalls);
}

static void prom_daemon(struct evbuffer *b, const struct status_daemon_info *d)
{
    prom_header(b, "dbpoold_clients_connected", "gauge", "Client sessions connected now.");
    evbuffer_add_printf(b, "dbpoold_clients_connected %zu\n", d->clients_connected);
    prom_header(b, "dbpoold_clients", "gauge", "Client sessions connected now, by session state.");
    for (size_t i = 0; i < CL_NSTATES; i++)
        evbuffer_add_printf(b, "dbpoold_clients{state=\"%s\"} %zu\n", client_state_name(i),
                            d->clients_in[i]);
    prom_header(b, "dbpoold_clients_accepted_total", "counter",
                "Client sessions accepted since start.");
    evbuffer_add_printf(b, "dbpoold_clients_accepted_total %" PRIu64 "\n", d->clients_accepted);
    prom_client_buffers(b, d);
    prom_header(b, "dbpoold_uptime_seconds", "gauge", "Seconds since the daemon started.");
    evbuffer_add_printf(b, "dbpoold_uptime_seconds %.3f\n", uptime_seconds(d));
    prom_header(b, "dbpoold_shutting_down", "gauge", "1 while a graceful shutdown is draining.");
    evbuffer_add_printf(b, "dbpoold_shutting_down %d\n", d->shutting_down ? 1 : 0);
    prom_header(b, "dbpoold_build_info", "gauge", "Always 1; the version is a label.");
    evbuffer_add(b, "dbpoold_build_info{version=", 27);
    prom_label_value(b, STATUS_VERSION);
    evbuffer_add(b, "} 1\n", 4);
}

static void handle_metrics(struct status_server *s, struct evhttp_request *req,
                           const struct snapshot *snap, struct evbuffer *b)
{
    const size_t n = sizeof(pool_metrics) / sizeof(pool_metrics[0]);

    (void)s;
    prom_daemon(b, &snap->info);
    if (snap->reload)
        status_prom_reload(b, snap->reload);
    for (size_t i = 0; i < n; i++) {
        const struct pool_metric *m = &pool_metrics[i];
        if (i == 0 || strcmp(m->name, pool_metrics[i - 1].name) != 0)
            prom_header(b, m->name, m->type, m->help);
        prom_pool_samples(b, snap, m);
    }
    status_prom_latency(b, snap->st, snap->n);
    send_body(req, HTTP_OK, "OK", CT_METRICS, b);
}

/* ------------------------------------------------------------------------
 * Routing
 * ---------------------------------------------------------------------- */

typedef void (*endpoint_fn)(struct status_server *s, struct evhttp_request *req,
                            const struct snapshot *snap, struct evbuffer *b);

static const struct route {
    const char *path;
    endpoint_fn fn;
} routes[] = {
    { "/health", handle_health },
    { "/pools", handle_pools },
    { "/stats", handle_stats },
    { "/metrics", handle_metrics },
    { "/clients", handle_clients },
    { "/servers", handle_servers },
    { "/config", handle_config },
};

static endpoint_fn route_find(const char *path)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (strcmp(path, routes[i].path) == 0)
            return routes[i].fn;
    return NULL;
}

/* The request path without query string or fragment ("" if unparsable). */
static const char *request_path(struct evhttp_request *req)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;

    return path ? path : "";
}

static void send_not_found(struct evhttp_request *req, const char *path)
{
    char msg[512];

    snprintf(msg, sizeof(msg), "no such endpoint: %.200s (try /health, /pools, /stats, /metrics, "
             "/clients, /servers, /config, or POST /reload, /shutdown, /pools/NAME/pause, "
             "/resume, /reconnect, /clients/ID/kill)", path);
    send_json_error(req, HTTP_NOTFOUND, "Not Found", msg);
}

static void send_not_allowed(struct evhttp_request *req, const char *allow, const char *msg)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
    send_json_error(req, HTTP_BADMETHOD, "Method Not Allowed", msg);
}

/* Snapshot the pools, run the endpoint, release everything. */
static void run_endpoint(struct status_server *s, struct evhttp_request *req, endpoint_fn fn)
{
    struct snapshot snap;
    struct evbuffer *b = evbuffer_new();

    if (!b || !snapshot_take(s->view, &snap)) {
        if (b)
            evbuffer_free(b);
        send_json_error(req, HTTP_INTERNAL, "Internal Server Error", "out of memory");
        return;
    }
    fn(s, req, &snap, b);
    snapshot_free(&snap);
    evbuffer_free(b);
}

/* An admin action (status_admin.c). */
static void on_admin(struct status_server *s, struct evhttp_request *req, const char *path)
{
    struct status_daemon_info info;

    s->view->daemon_info(s->view->arg, &info);
    status_admin_handle(req, s->view, path, info.shutting_down);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct status_server *s = arg;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const char *path = request_path(req);
    endpoint_fn fn = route_find(path);

    if (status_admin_path(path))
        on_admin(s, req, path);
    else if (!fn)
        send_not_found(req, path);
    else if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD)
        send_not_allowed(req, ALLOWED_METHODS, "method not allowed: this endpoint is read-only "
                         "(use GET)");
    else
        run_endpoint(s, req, fn);
}

/* ------------------------------------------------------------------------
 * Start / stop
 * ---------------------------------------------------------------------- */

/* Configure limits and let every method through to on_request (so that we,
 * not evhttp, answer 405 — with an Allow header). */
static void http_configure(struct status_server *s)
{
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                               EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                               EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_timeout(s->http, STATUS_TIMEOUT_S);
    evhttp_set_max_headers_size(s->http, STATUS_MAX_HEADERS);
    evhttp_set_max_body_size(s->http, STATUS_MAX_BODY);
    evhttp_set_default_content_type(s->http, CT_JSON);
    evhttp_set_gencb(s->http, on_request, s);
}

static void resume_listener(evutil_socket_t fd, short what, void *evl)
{
    evconnlistener_enable(evl);
}

/* accept() failed with something other than EAGAIN/EINTR (EMFILE, ENFILE,
 * ENOBUFS, ...): stop watching the socket and retry in a second. The
 * callback's argument is evhttp's (evhttp_bind_listener sets it), so no
 * state of ours is reachable here: the retry is a one-shot event on the
 * base, which is safe because the listener outlives every dispatch (it is
 * freed by status_stop after the loop has ended; event_base_free drops a
 * pending one-shot). The client socket's accept_paused/accept_resumed
 * events report the episode; each status pause is logged at debug level. */
static void on_accept_error(struct evconnlistener *evl, void *http)
{
    int err = EVUTIL_SOCKET_ERROR();
    struct timeval tv = { STATUS_ACCEPT_RETRY_S, 0 };

    evconnlistener_disable(evl);
    log_debug("status_accept_paused", "error=\"%s\" retry_ms=%d", strerror(err),
              STATUS_ACCEPT_RETRY_S * 1000);
    if (event_base_once(evconnlistener_get_base(evl), -1, EV_TIMEOUT, resume_listener, evl, &tv) != 0)
        log_error("status_accept_timer_failed", "hint=\"the status socket resumes accepting "
                  "when a client session ends\"");
}

/* Watch fd (listening) with a listener of ours and hand it to evhttp. */
static bool bind_listener(struct status_server *s, int fd)
{
    s->evl = evconnlistener_new(s->view->base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                0, fd);
    if (!s->evl)
        return false;
    if (!evhttp_bind_listener(s->http, s->evl)) {
        evconnlistener_free(s->evl);     /* closes fd */
        s->evl = NULL;
        return false;
    }
    evconnlistener_set_error_cb(s->evl, on_accept_error);
    return true;
}

struct status_server *status_start(const struct status_view *view, const char *path,
                                   unsigned mode, int passed_fd, char *errbuf, size_t errlen)
{
    struct status_server *s = calloc(1, sizeof(*s));
    int fd = passed_fd;

    if (!s || !(s->path = strdup(path)) || !(s->http = evhttp_new(view->base))) {
        snprintf(errbuf, errlen, "status socket %s: out of memory", path);
        status_stop(s);                  /* path not bound yet: nothing to unlink */
        if (passed_fd >= 0)
            close(passed_fd);
        return NULL;
    }
    s->view = view;
    http_configure(s);
    s->bound = passed_fd < 0;
    if (s->bound)
        fd = unix_socket_listen(path, mode, view->listen_backlog, errbuf, errlen);
    if (fd < 0) {
        evhttp_free(s->http);
        free(s->path);
        free(s);
        return NULL;
    }
    if (!bind_listener(s, fd)) {
        snprintf(errbuf, errlen, "status socket %s: cannot watch it for connections", path);
        if (!s->evl)
            close(fd);
        status_stop(s);
        return NULL;
    }
    char q[300];
    log_info("status_listening", "path=%s", log_quote(q, sizeof(q), path, strlen(path)));
    return s;
}

void status_fd_freed(struct status_server *s)
{
    if (s && s->evl)
        evconnlistener_enable(s->evl);
}

const char *status_path(const struct status_server *s)
{
    return s->path;
}

void status_stop(struct status_server *s)
{
    if (!s)
        return;
    if (s->http) {
        evhttp_free(s->http);            /* frees the listener: closes the listening socket */
        if (s->path && s->bound)
            unlink(s->path);
    }
    free(s->path);
    free(s);
}
