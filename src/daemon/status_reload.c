/*
 * status_reload.c — live reload on the status socket (contract:
 * status_reload.h): POST /reload runs the daemon's reload through the
 * status view and answers with its outcome; the outcome of the last reload
 * (time, ok, errors with file:line, pools added/removed/changed) and the
 * reload counters are rendered for /health, /stats and /metrics.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "daemon/reload.h"
#include "daemon/status.h"
#include "daemon/status_reload.h"
#include "daemon/status_write.h"

/* ISO 8601 UTC with milliseconds. */
static void json_time(struct evbuffer *b, uint64_t unix_ms)
{
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    char buf[40];

    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    evbuffer_add_printf(b, "\"%s.%03uZ\"", buf, (unsigned)(unix_ms % 1000));
}

/* "socket, statusSocket" as a JSON array of names. */
static void json_key_list(struct evbuffer *b, const char *joined)
{
    const char *p = joined;

    evbuffer_add(b, "[", 1);
    while (*p) {
        size_t n = strcspn(p, ","), len = n < 63 ? n : 63;
        char name[64];
        memcpy(name, p, len);
        name[len] = '\0';
        if (p != joined)
            evbuffer_add(b, ", ", 2);
        json_str(b, name);
        p += n;
        p += strspn(p, ", ");
    }
    evbuffer_add(b, "]", 1);
}

static void render_outcome(struct evbuffer *b, const struct reload_outcome *o)
{
    evbuffer_add(b, "{\"time\": ", 9);
    json_time(b, o->time_unix_ms);
    evbuffer_add_printf(b, ", \"time_unix\": %" PRIu64 ".%03u, \"ok\": %s, \"errors\": [",
                        o->time_unix_ms / 1000, (unsigned)(o->time_unix_ms % 1000),
                        json_bool(o->ok));
    for (size_t i = 0; i < o->nerrors; i++) {
        if (i)
            evbuffer_add(b, ", ", 2);
        json_str(b, o->errors[i]);
    }
    evbuffer_add_printf(b, "], \"pools_added\": %d, \"pools_removed\": %d, \"pools_changed\": %d, "
                        "\"pools_recycled\": %d, \"restart_needed\": ", o->added, o->removed,
                        o->changed, o->recycled);
    json_key_list(b, o->restart_keys);
    evbuffer_add(b, "}", 1);
}

void status_render_last_reload(struct evbuffer *b, const struct reload_state *r)
{
    if (!r || r->last.time_unix_ms == 0)
        evbuffer_add(b, "null", 4);
    else
        render_outcome(b, &r->last);
}

void status_prom_reload(struct evbuffer *b, const struct reload_state *r)
{
    evbuffer_add_printf(b, "# HELP dbpoold_reload_total Configuration reloads (SIGHUP, POST "
                        "/reload) by result.\n# TYPE dbpoold_reload_total counter\n"
                        "dbpoold_reload_total{result=\"ok\"} %" PRIu64 "\n"
                        "dbpoold_reload_total{result=\"failed\"} %" PRIu64 "\n",
                        r->total_ok, r->total_failed);
    evbuffer_add_printf(b, "# HELP dbpoold_last_reload_success_timestamp_seconds Unix time of "
                        "the last reload that applied a configuration (0: none yet).\n"
                        "# TYPE dbpoold_last_reload_success_timestamp_seconds gauge\n"
                        "dbpoold_last_reload_success_timestamp_seconds %" PRIu64 ".%03u\n",
                        r->last_success_unix_ms / 1000, (unsigned)(r->last_success_unix_ms % 1000));
}

void status_handle_reload(struct evhttp_request *req, const struct status_view *v,
                          bool shutting_down)
{
    struct evbuffer *b = evbuffer_new();
    const struct reload_outcome *o;

    if (!b) {
        send_json_error(req, HTTP_INTERNAL, "Internal Server Error", "out of memory");
        return;
    }
    o = v->reload(v->admin);
    render_outcome(b, o);
    evbuffer_add(b, "\n", 1);
    if (o->ok)
        send_body(req, HTTP_OK, "OK", CT_JSON, b);
    else if (shutting_down)
        send_body(req, 503, "Service Unavailable", CT_JSON, b);
    else
        send_body(req, 422, "Unprocessable Entity", CT_JSON, b);
    evbuffer_free(b);
}
