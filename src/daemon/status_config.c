/*
 * status_config.c — GET /config (contract: status_config.h): the running
 * configuration, key by key as config_show() visits it, written as
 *   {"path": FILE, "daemon": {KEY: VALUE, ...},
 *    "pools": [{"name": N, "type": T, KEY: VALUE, ...}, ...]}
 * A secret that is set is "***"; ids (allowUsers, adminGroups, ...) are
 * the numeric ids resolved at load.
 */
#include <event2/buffer.h>
#include <event2/http.h>

#include "daemon/config_show.h"
#include "daemon/status.h"
#include "daemon/status_config.h"
#include "daemon/status_write.h"

struct config_render {
    struct evbuffer *b;
    size_t pools;
    bool first;                          /* no key written in this section yet */
};

static void on_section(void *ctx, const char *pool, const char *type)
{
    struct config_render *cr = ctx;
    struct evbuffer *b = cr->b;

    if (!pool) {
        evbuffer_add_printf(b, ", \"daemon\": {");
        cr->first = true;
        return;
    }
    evbuffer_add_printf(b, "%s{\"name\": ", cr->pools++ ? "},\n  " : "}, \"pools\": [\n  ");
    json_str(b, pool);
    evbuffer_add_printf(b, ", \"type\": ");
    json_str(b, type);
    cr->first = false;
}

static void write_ids(struct evbuffer *b, const struct id_set *ids)
{
    if (ids->n == 0) {
        evbuffer_add(b, "null", 4);
        return;
    }
    evbuffer_add(b, "[", 1);
    for (size_t i = 0; i < ids->n; i++)
        evbuffer_add_printf(b, "%s%u", i ? ", " : "", ids->ids[i]);
    evbuffer_add(b, "]", 1);
}

static void on_value(void *ctx, const struct config_value *v)
{
    struct config_render *cr = ctx;
    struct evbuffer *b = cr->b;

    if (!cr->first)
        evbuffer_add(b, ", ", 2);
    cr->first = false;
    json_str(b, v->key);
    evbuffer_add(b, ": ", 2);
    switch (v->kind) {
    case CV_INT: evbuffer_add_printf(b, "%lld", v->i); break;
    case CV_BOOL: evbuffer_add_printf(b, "%s", json_bool(v->b)); break;
    case CV_STRING: json_str(b, v->s ? v->s : ""); break;
    case CV_NULL: evbuffer_add(b, "null", 4); break;
    case CV_REDACTED: evbuffer_add(b, "\"***\"", 5); break;
    case CV_IDS: write_ids(b, v->ids); break;
    }
}

void status_handle_config(struct evhttp_request *req, const struct status_view *v,
                          struct evbuffer *b)
{
    const struct config *cfg = v->config(v->arg);
    struct config_render cr = { b, 0, true };
    static const struct config_visitor visitor = { on_section, on_value };

    evbuffer_add(b, "{\"path\": ", 9);
    json_str_or_null(b, cfg->path);
    config_show(cfg, &visitor, &cr);
    evbuffer_add_printf(b, "%s", cr.pools ? "}]}\n" : "}, \"pools\": []}\n");
    send_body(req, HTTP_OK, "OK", CT_JSON, b);
}
