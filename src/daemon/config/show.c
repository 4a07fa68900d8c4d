/*
 * show.c — the effective configuration, key by key (contract: daemon/
 * config_show.h), read back from the structs through the same key tables
 * the loader fills them with (keys.c, the drivers' specs).
 */
#include "daemon/config/config_internal.h"
#include "daemon/config_show.h"

#include <inttypes.h>
#include <stdio.h>

/* Milliseconds the way a config file writes them: "1h", "5m", "30s", "250ms". */
static void format_duration(uint64_t ms, char *buf, size_t len)
{
    if (ms && ms % 3600000 == 0)
        snprintf(buf, len, "%" PRIu64 "h", ms / 3600000);
    else if (ms && ms % 60000 == 0)
        snprintf(buf, len, "%" PRIu64 "m", ms / 60000);
    else if (ms && ms % 1000 == 0)
        snprintf(buf, len, "%" PRIu64 "s", ms / 1000);
    else
        snprintf(buf, len, "%" PRIu64 "ms", ms);
}

/* The value of key k in the struct at base (buf holds formatted ones). */
static struct config_value value_of(const struct key_spec *k, const char *base, char *buf,
                                    size_t len)
{
    const void *f = base + k->offset;
    struct config_value v = { .key = k->name, .kind = CV_STRING, .s = buf };

    switch (k->kind) {
    case K_INT: v.kind = CV_INT; v.i = *(const int *)f; break;
    case K_U32: v.kind = CV_INT; v.i = *(const uint32_t *)f; break;
    case K_SIZE: v.kind = CV_INT; v.i = (long long)*(const size_t *)f; break;
    case K_BOOL: v.kind = CV_BOOL; v.b = *(const bool *)f; break;
    case K_DURATION: format_duration(*(const uint64_t *)f, buf, len); break;
    case K_MODE: snprintf(buf, len, "0%03o", *(const unsigned *)f); break;
    case K_LOG_LEVEL: v.s = log_level_name(*(const enum log_level *)f); break;
    case K_USERS:
    case K_GROUPS: v.kind = CV_IDS; v.ids = f; break;
    case K_STRING:
    case K_CHOICE:
        v.s = *(char *const *)f;
        if (!v.s)
            v.kind = CV_NULL;
        else if (k->flags & F_SECRET)
            v.kind = CV_REDACTED, v.s = NULL;
        break;
    }
    return v;
}

static void show_table(const struct key_spec *keys, size_t n, const void *base,
                       const struct config_visitor *vis, void *ctx)
{
    char buf[48];

    for (size_t i = 0; i < n; i++) {
        struct config_value v = value_of(&keys[i], base, buf, sizeof(buf));
        vis->value(ctx, &v);
    }
}

static void show_pool(const struct pool_config *p, const struct config_visitor *vis, void *ctx)
{
    const struct driver_config_spec *spec = cf_spec_of(p->type);

    vis->section(ctx, p->name, backend_type_name(p->type));
    show_table(cf_common_pool_keys, cf_ncommon_pool_keys, p, vis, ctx);
    if (spec && spec->server)
        show_table(cf_server_pool_keys, cf_nserver_pool_keys, p, vis, ctx);
    if (spec && spec->nkeys)
        show_table(spec->keys, spec->nkeys, p->driver_opts ? p->driver_opts : spec->defaults,
                   vis, ctx);
}

void config_show(const struct config *cfg, const struct config_visitor *vis, void *ctx)
{
    vis->section(ctx, NULL, NULL);
    show_table(cf_daemon_keys, cf_ndaemon_keys, &cfg->daemon, vis, ctx);
    for (size_t i = 0; i < cfg->npools; i++)
        show_pool(&cfg->pools[i], vis, ctx);
}
