/*
 * status_conns.c — GET /clients and GET /servers (contract:
 * status_conns.h): one JSON entry per client session (through the view's
 * each_client) and per server connection (pool_each_server of every
 * running pool). Ages are computed against one clock reading per response.
 */
#include <inttypes.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "daemon/pool.h"
#include "daemon/status.h"
#include "daemon/status_conns.h"
#include "daemon/status_write.h"

struct conns_render {
    struct evbuffer *b;
    size_t n;
    uint64_t now_us;
    const char *pool;                    /* /servers: the pool being listed */
};

/* now - since as milliseconds, or null when since is 0. */
static void age_ms_or_null(struct evbuffer *b, uint64_t now, uint64_t since)
{
    if (since)
        json_us_as_ms(b, now > since ? now - since : 0);
    else
        evbuffer_add(b, "null", 4);
}

static void render_peer(struct evbuffer *b, const struct peer_cred *peer)
{
    if (peer->known)
        evbuffer_add_printf(b, ", \"uid\": %u, \"pid\": %d", peer->uid, (int)peer->pid);
    else
        evbuffer_add(b, ", \"uid\": null, \"pid\": null", 26);
}

static void render_client(void *ctx, const struct session_info *c)
{
    struct conns_render *cr = ctx;
    struct evbuffer *b = cr->b;

    evbuffer_add_printf(b, "%s{\"id\": %" PRIu64 ", \"state\": \"%s\", \"pool\": ",
                        cr->n++ ? ",\n  " : "", c->id, client_state_name(c->state));
    json_str_or_null(b, c->pool);
    evbuffer_add(b, ", \"name\": ", 10);
    json_str_or_null(b, c->name);
    render_peer(b, c->peer);
    evbuffer_add_printf(b, ", \"tx\": \"%c\", \"server\": ", c->txstate);
    if (c->server)
        evbuffer_add_printf(b, "%" PRIu64, c->server);
    else
        evbuffer_add(b, "null", 4);
    evbuffer_add_printf(b, ", \"pinned\": %s", json_bool(c->pinned));
    evbuffer_add(b, ", \"waiting_ms\": ", 16);
    age_ms_or_null(b, cr->now_us, c->waiting_since_us);
    evbuffer_add(b, ", \"connected_ms\": ", 18);
    age_ms_or_null(b, cr->now_us, c->connected_us);
    evbuffer_add(b, ", \"request_ms\": ", 16);
    age_ms_or_null(b, cr->now_us, c->request_since_us);
    evbuffer_add_printf(b, ", \"requests\": %" PRIu64 ", \"bytes_in\": %" PRIu64
                        ", \"bytes_out\": %" PRIu64 "}", c->requests, c->bytes_in, c->bytes_out);
}

void status_handle_clients(struct evhttp_request *req, const struct status_view *v,
                           struct evbuffer *b)
{
    struct conns_render cr = { b, 0, now_us(), NULL };
    struct status_daemon_info info;

    v->daemon_info(v->arg, &info);
    evbuffer_add_printf(b, "{\"states\": {");
    for (size_t i = 0; i < CL_NSTATES; i++)
        evbuffer_add_printf(b, "%s\"%s\": %zu", i ? ", " : "", client_state_name(i),
                            info.clients_in[i]);
    evbuffer_add_printf(b, "},\n \"clients\": [");
    v->each_client(v->arg, render_client, &cr);
    evbuffer_add(b, "]}\n", 3);
    send_body(req, HTTP_OK, "OK", CT_JSON, b);
}

static void render_server(void *ctx, const struct server_view *sv)
{
    struct conns_render *cr = ctx;
    struct evbuffer *b = cr->b;

    evbuffer_add_printf(b, "%s{\"id\": %" PRIu64 ", \"pool\": ", cr->n++ ? ",\n  " : "", sv->id);
    json_str(b, cr->pool);
    evbuffer_add_printf(b, ", \"state\": \"%s\", \"role\": \"%s\", \"open_ms\": ", sv->state,
                        sv->role);
    age_ms_or_null(b, cr->now_us, sv->opened_us);
    evbuffer_add(b, ", \"state_ms\": ", 14);
    age_ms_or_null(b, cr->now_us, sv->state_since_us);
    evbuffer_add_printf(b, ", \"requests\": %" PRIu64 ", \"statement_ms\": ", sv->requests);
    age_ms_or_null(b, cr->now_us, sv->op_started_us);
    evbuffer_add_printf(b, ", \"stale\": %s, \"pinned\": %s, \"server\": ", json_bool(sv->stale),
                        json_bool(sv->pinned));
    json_str_or_null(b, sv->info);
    evbuffer_add(b, "}", 1);
}

void status_handle_servers(struct evhttp_request *req, const struct status_view *v,
                           struct evbuffer *b)
{
    struct conns_render cr = { b, 0, now_us(), NULL };
    size_t n = v->npools(v->arg);

    evbuffer_add(b, "{\"servers\": [", 13);
    for (size_t i = 0; i < n; i++) {
        const struct pool *p = v->pool(v->arg, i);
        cr.pool = pool_config(p)->name;
        pool_each_server(p, render_server, &cr);
    }
    evbuffer_add(b, "]}\n", 3);
    send_body(req, HTTP_OK, "OK", CT_JSON, b);
}
