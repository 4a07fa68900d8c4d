/*
 * status_latency.c — latency on the status socket (contract:
 * status_latency.h), from the snapshot's struct lat_summary of each pool
 * (daemon/latency.h): transaction time (a server bound to a client) and
 * wait time (acquiring one; 0 when one was idle).
 */
#include <inttypes.h>
#include <stddef.h>

#include <event2/buffer.h>

#include "daemon/latency.h"
#include "daemon/pool.h"
#include "daemon/status_latency.h"
#include "daemon/status_write.h"

static void render_one(struct evbuffer *b, const char *name, const struct lat_summary *l)
{
    evbuffer_add_printf(b, "\"%s\": {\"p50_ms\": ", name);
    json_us_as_ms(b, l->p50_us);
    evbuffer_add(b, ", \"p90_ms\": ", 12);
    json_us_as_ms(b, l->p90_us);
    evbuffer_add(b, ", \"p99_ms\": ", 12);
    json_us_as_ms(b, l->p99_us);
    evbuffer_add_printf(b, ", \"samples\": %" PRIu64 "}", l->window_n);
}

void status_render_latency(struct evbuffer *b, const struct pool_stats *s)
{
    evbuffer_add_printf(b, "{\"window_s\": %u, ", (unsigned)(LAT_SLOTS * (LAT_SLOT_US / 1000000)));
    render_one(b, "transaction", &s->tx_latency);
    evbuffer_add(b, ", ", 2);
    render_one(b, "wait", &s->wait_latency);
    evbuffer_add(b, "}", 1);
}

static void prom_seconds(struct evbuffer *b, uint64_t us)
{
    evbuffer_add_printf(b, "%" PRIu64 ".%06" PRIu64, us / 1000000, us % 1000000);
}

static void prom_pool_label(struct evbuffer *b, const char *family, const char *suffix,
                            const char *pool)
{
    evbuffer_add_printf(b, "%s%s{pool=", family, suffix);
    prom_label_value(b, pool);
}

/* One pool's histogram: cumulative buckets, +Inf, _sum, _count. */
static void prom_histogram(struct evbuffer *b, const char *family, const char *pool,
                           const struct lat_summary *l)
{
    uint64_t cum = 0;

    for (size_t i = 0; i <= LAT_PROM_NBOUNDS; i++) {
        cum += l->prom[i];
        prom_pool_label(b, family, "_bucket", pool);
        if (i < LAT_PROM_NBOUNDS) {
            evbuffer_add(b, ",le=\"", 5);
            prom_seconds(b, lat_prom_bounds_us[i]);
            evbuffer_add_printf(b, "\"} %" PRIu64 "\n", cum);
        } else {
            evbuffer_add_printf(b, ",le=\"+Inf\"} %" PRIu64 "\n", cum);
        }
    }
    prom_pool_label(b, family, "_sum", pool);
    evbuffer_add(b, "} ", 2);
    prom_seconds(b, l->sum_us);
    evbuffer_add(b, "\n", 1);
    prom_pool_label(b, family, "_count", pool);
    evbuffer_add_printf(b, "} %" PRIu64 "\n", l->n);
}

static void prom_quantiles(struct evbuffer *b, const char *family, const char *pool,
                           const struct lat_summary *l)
{
    const struct { const char *q; uint64_t us; } qs[] = {
        { "0.5", l->p50_us }, { "0.9", l->p90_us }, { "0.99", l->p99_us },
    };

    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        prom_pool_label(b, family, "_window", pool);
        evbuffer_add_printf(b, ",quantile=\"%s\"} ", qs[i].q);
        prom_seconds(b, qs[i].us);
        evbuffer_add(b, "\n", 1);
    }
}

/* Which summary of a pool_stats a family shows. */
struct lat_family {
    const char *name, *what;
    size_t off;
};

static const struct lat_family families[] = {
    { "dbpoold_pool_transaction_duration_seconds",
      "Time a server connection was bound to a client (acquire to release)",
      offsetof(struct pool_stats, tx_latency) },
    { "dbpoold_pool_wait_duration_seconds",
      "Time an acquisition waited for a server connection (0 when one was idle)",
      offsetof(struct pool_stats, wait_latency) },
};

static const struct lat_summary *summary_of(const struct pool_stats *s, const struct lat_family *f)
{
    return (const struct lat_summary *)((const char *)s + f->off);
}

void status_prom_latency(struct evbuffer *b, const struct pool_stats *st, size_t n)
{
    for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
        const struct lat_family *fam = &families[f];
        evbuffer_add_printf(b, "# HELP %s %s, since start.\n# TYPE %s histogram\n", fam->name,
                            fam->what, fam->name);
        for (size_t i = 0; i < n; i++)
            prom_histogram(b, fam->name, st[i].name, summary_of(&st[i], fam));
        evbuffer_add_printf(b, "# HELP %s_window %s: quantiles of the last 60 s (upper bounds, "
                            "at most 12.5%% high).\n# TYPE %s_window gauge\n", fam->name,
                            fam->what, fam->name);
        for (size_t i = 0; i < n; i++)
            prom_quantiles(b, fam->name, st[i].name, summary_of(&st[i], fam));
    }
}
