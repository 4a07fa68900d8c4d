/*
 * status_admin.c — admin actions on the status socket (contract:
 * status_admin.h). Each action is logged (event=admin_action) with the
 * peer's uid and pid. Answers are JSON: the action's result, or
 * {"error": "..."} saying what to do.
 *
 * POST /shutdown answers 202 first and begins the drain once the answer
 * has been written (the request's completion callback), so the caller
 * hears back even when no client is connected and the loop ends at once.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "daemon/configuration.h"
#include "daemon/log.h"
#include "daemon/peer_access.h"
#include "daemon/pool.h"
#include "daemon/status.h"
#include "daemon/status_admin.h"
#include "daemon/status_reload.h"
#include "daemon/status_write.h"

#define POOL_PREFIX "/pools/"
#define CLIENT_PREFIX "/clients/"
#define SHUTDOWN_FALLBACK_S 1            /* drain even if the reply was never written */

/* What an admin path asks for. */
struct action {
    const char *verb;                   /* "pause", "kill", "reload", ... */
    const char *target;                 /* the pool name or client id as written (undecoded) */
    size_t target_len;
};

static const char *const pool_verbs[] = { "pause", "resume", "reconnect", NULL };

/* PREFIX TARGET "/" VERB with VERB one of verbs; false otherwise. */
static bool match_target(const char *path, const char *prefix, const char *const *verbs,
                         struct action *a)
{
    size_t plen = strlen(prefix);
    const char *slash;

    if (strncmp(path, prefix, plen) != 0 || !(slash = strchr(path + plen, '/')) ||
        slash == path + plen)
        return false;
    for (size_t i = 0; verbs[i]; i++) {
        if (strcmp(slash + 1, verbs[i]) == 0) {
            a->verb = verbs[i];
            a->target = path + plen;
            a->target_len = (size_t)(slash - a->target);
            return true;
        }
    }
    return false;
}

static bool parse_action(const char *path, struct action *a)
{
    static const char *const client_verbs[] = { "kill", NULL };

    memset(a, 0, sizeof(*a));
    if (strcmp(path, "/reload") == 0 || strcmp(path, "/shutdown") == 0) {
        a->verb = path + 1;
        return true;
    }
    return match_target(path, POOL_PREFIX, pool_verbs, a) ||
           match_target(path, CLIENT_PREFIX, client_verbs, a);
}

bool status_admin_path(const char *path)
{
    struct action a;

    return parse_action(path, &a);
}

/* ---------------------------------------------------------------- who */

/* The HTTP connection's socket, or -1. */
static int request_fd(struct evhttp_request *req)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;

    return bev ? (int)bufferevent_getfd(bev) : -1;
}

static bool peer_is_admin(int fd, const struct daemon_config *dc, const struct peer_cred *cr)
{
    if (!cr->known)
        return false;
    if (cr->uid == 0 || cr->uid == (uint32_t)geteuid())
        return true;
    return peer_listed(fd, cr, &dc->admin_users, &dc->admin_groups);
}

static void send_forbidden(struct evhttp_request *req, const struct peer_cred *cr)
{
    char msg[400];

    if (cr->known)
        snprintf(msg, sizeof(msg), "uid %u may not use admin actions: only root, dbpoold's own "
                 "user (uid %u) and the users of daemon.adminUsers / adminGroups may; reading "
                 "(GET) is open to everyone who can connect", cr->uid, (unsigned)geteuid());
    else
        snprintf(msg, sizeof(msg), "admin actions need the caller's credentials (SO_PEERCRED), "
                 "which the kernel did not give");
    send_json_error(req, 403, "Forbidden", msg);
}

/* ---------------------------------------------------------------- answers */

static void send_json(struct evhttp_request *req, int code, const char *reason,
                      struct evbuffer *b)
{
    send_body(req, code, reason, CT_JSON, b);
}

static void send_conflict(struct evhttp_request *req, const char *msg)
{
    send_json_error(req, 409, "Conflict", msg);
}

/* ---------------------------------------------------------------- pools */

static void pool_answer(struct evhttp_request *req, struct pool *p, const char *verb)
{
    struct evbuffer *b = evbuffer_new();
    struct pool_stats st;

    if (!b) {
        send_json_error(req, HTTP_INTERNAL, "Internal Server Error", "out of memory");
        return;
    }
    pool_get_stats(p, &st);
    evbuffer_add(b, "{\"pool\": ", 9);
    json_str(b, st.name);
    evbuffer_add_printf(b, ", \"action\": \"%s\", \"paused\": %s, \"servers_busy\": %d, "
                        "\"clients_waiting\": %d}\n", verb, json_bool(pool_paused(p)),
                        st.servers_busy, st.clients_waiting);
    send_json(req, HTTP_OK, "OK", b);
    evbuffer_free(b);
}

/* The action on pool p; false (an answer sent) when it does not fit. */
static bool pool_act(struct evhttp_request *req, struct pool *p, const char *verb)
{
    const char *name = pool_config(p)->name;
    char msg[300];

    if (strcmp(verb, "pause") == 0 && pool_paused(p)) {
        snprintf(msg, sizeof(msg), "pool \"%s\" is already paused (resume it with "
                 "dbpoolctl resume %s, or POST /pools/%s/resume)", name, name, name);
    } else if (strcmp(verb, "resume") == 0 && !pool_paused(p)) {
        snprintf(msg, sizeof(msg), "pool \"%s\" is not paused: nothing to resume", name);
    } else {
        if (strcmp(verb, "pause") == 0)
            pool_pause(p);
        else if (strcmp(verb, "resume") == 0)
            pool_resume(p);
        else
            pool_reconnect(p);
        return true;
    }
    send_conflict(req, msg);
    return false;
}

static void handle_pool(struct evhttp_request *req, const struct status_view *v,
                        const struct action *a, const struct peer_cred *cr)
{
    char *raw = strndup(a->target, a->target_len);
    size_t len = 0;
    char *name = raw ? evhttp_uridecode(raw, 0, &len) : NULL;
    struct pool *p = name ? v->find_pool(v->admin, name, len) : NULL;
    char msg[400];

    if (!name) {
        send_json_error(req, HTTP_INTERNAL, "Internal Server Error", "out of memory");
    } else if (!p) {
        snprintf(msg, sizeof(msg), "no such pool: \"%.100s\" (GET /pools or dbpoolctl pools "
                 "lists them)", name);
        send_json_error(req, HTTP_NOTFOUND, "Not Found", msg);
    } else if (pool_act(req, p, a->verb)) {
        log_info("admin_action", "action=%s pool=%s uid=%u pid=%d", a->verb,
                 pool_config(p)->name, cr->uid, (int)cr->pid);
        pool_answer(req, p, a->verb);
    }
    free(name);
    free(raw);
}

/* ---------------------------------------------------------------- clients */

/* The decimal id in s[0..len), or 0 when it is not one. */
static uint64_t parse_id(const char *s, size_t len)
{
    uint64_t id = 0;

    if (len == 0 || len > 19)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        id = id * 10 + (uint64_t)(s[i] - '0');
    }
    return id;
}

static void handle_kill(struct evhttp_request *req, const struct status_view *v,
                        const struct action *a, const struct peer_cred *cr)
{
    uint64_t id = parse_id(a->target, a->target_len);
    int rc = id ? v->kill_client(v->admin, id) : -1;
    struct evbuffer *b;
    char msg[300];

    if (rc < 0) {
        snprintf(msg, sizeof(msg), "no such client: %.*s (GET /clients or dbpoolctl clients "
                 "lists the sessions and their ids)", (int)(a->target_len > 40 ? 40 : a->target_len),
                 a->target);
        send_json_error(req, HTTP_NOTFOUND, "Not Found", msg);
        return;
    }
    if (rc > 0) {
        snprintf(msg, sizeof(msg), "client %" PRIu64 " is closing already", id);
        send_conflict(req, msg);
        return;
    }
    log_info("admin_action", "action=kill client=%" PRIu64 " uid=%u pid=%d", id, cr->uid,
             (int)cr->pid);
    if (!(b = evbuffer_new())) {
        send_json_error(req, HTTP_INTERNAL, "Internal Server Error", "out of memory");
        return;
    }
    evbuffer_add_printf(b, "{\"client\": %" PRIu64 ", \"action\": \"kill\"}\n", id);
    send_json(req, HTTP_OK, "OK", b);
    evbuffer_free(b);
}

/* ---------------------------------------------------------------- daemon */

/* Begin the drain unless it has begun. */
static void shutdown_now(const struct status_view *v)
{
    struct status_daemon_info info;

    v->daemon_info(v->arg, &info);
    if (!info.shutting_down)
        v->shutdown(v->admin, "admin");
}

static void shutdown_after_reply(struct evhttp_request *req, void *arg)
{
    (void)req;
    shutdown_now(arg);
}

/* The reply could not be written (the caller left): drain anyway. */
static void shutdown_fallback(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    shutdown_now(arg);
}

static void handle_shutdown(struct evhttp_request *req, const struct status_view *v,
                            const struct peer_cred *cr, bool shutting_down)
{
    struct evbuffer *b;

    if (shutting_down) {
        send_conflict(req, "dbpoold is shutting down already (a second SIGTERM cuts the "
                      "remaining sessions at once)");
        return;
    }
    if (!(b = evbuffer_new())) {
        send_json_error(req, HTTP_INTERNAL, "Internal Server Error", "out of memory");
        return;
    }
    log_info("admin_action", "action=shutdown uid=%u pid=%d", cr->uid, (int)cr->pid);
    evbuffer_add(b, "{\"action\": \"shutdown\", \"shutting_down\": true}\n", 47);
    evhttp_request_set_on_complete_cb(req, shutdown_after_reply, (void *)v);
    send_json(req, 202, "Accepted", b);
    evbuffer_free(b);
    if (event_base_once(v->base, -1, EV_TIMEOUT, shutdown_fallback, (void *)v,
                        &(struct timeval){ SHUTDOWN_FALLBACK_S, 0 }) != 0)
        shutdown_now(v);
}

void status_admin_handle(struct evhttp_request *req, const struct status_view *v,
                         const char *path, bool shutting_down)
{
    struct action a;
    struct peer_cred cr;
    char msg[160];
    int fd;

    (void)parse_action(path, &a);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
        snprintf(msg, sizeof(msg), "method not allowed: %.100s takes POST", path);
        send_json_error(req, HTTP_BADMETHOD, "Method Not Allowed", msg);
        return;
    }
    fd = request_fd(req);
    memset(&cr, 0, sizeof(cr));
    if (fd >= 0)
        peer_cred_read(fd, &cr);
    if (!peer_is_admin(fd, &v->config(v->arg)->daemon, &cr)) {
        log_info("admin_refused", "action=%s uid=%u pid=%d", a.verb, cr.uid, (int)cr.pid);
        send_forbidden(req, &cr);
    } else if (a.target && strcmp(a.verb, "kill") == 0) {
        handle_kill(req, v, &a, &cr);
    } else if (a.target) {
        handle_pool(req, v, &a, &cr);
    } else if (strcmp(a.verb, "shutdown") == 0) {
        handle_shutdown(req, v, &cr, shutting_down);
    } else {
        log_info("admin_action", "action=reload uid=%u pid=%d", cr.uid, (int)cr.pid);
        status_handle_reload(req, v, shutting_down);
    }
}
