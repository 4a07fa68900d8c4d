/*
 * latency.c — windowed log-linear histograms and cumulative Prometheus
 * buckets (contract: latency.h). Recording is a few integer operations;
 * a slot whose epoch is over is cleared when the first sample of its new
 * epoch arrives (once per LAT_SLOT_US at most).
 */
#include <string.h>

#include "daemon/latency.h"

const uint64_t lat_prom_bounds_us[LAT_PROM_NBOUNDS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000,
};

size_t latency_bucket(uint64_t us)
{
    if (us < LAT_EXACT)
        return (size_t)us;
    unsigned e = 63u - (unsigned)__builtin_clzll(us);   /* 2^e <= us, e >= 4 */
    if (e >= LAT_MAX_EXP)
        return LAT_BUCKETS - 1;
    return LAT_EXACT + (e - 4) * LAT_SUB + (size_t)((us >> (e - 3)) & (LAT_SUB - 1));
}

uint64_t latency_bucket_upper(size_t i)
{
    if (i < LAT_EXACT)
        return i;
    unsigned e = 4 + (unsigned)((i - LAT_EXACT) / LAT_SUB);
    uint64_t sub = (i - LAT_EXACT) % LAT_SUB, width = 1ull << (e - 3);

    return ((LAT_SUB + sub) << (e - 3)) + width - 1;
}

static size_t prom_bucket(uint64_t us)
{
    size_t i = 0;

    while (i < LAT_PROM_NBOUNDS && us > lat_prom_bounds_us[i])
        i++;
    return i;
}

void latency_record(struct latency *l, uint64_t now_us, uint64_t us)
{
    uint64_t epoch = now_us / LAT_SLOT_US;
    struct lat_slot *s = &l->slots[epoch % LAT_SLOTS];

    if (s->epoch != epoch) {
        memset(s->count, 0, sizeof(s->count));
        s->epoch = epoch;
    }
    s->count[latency_bucket(us)]++;
    l->prom[prom_bucket(us)]++;
    l->sum_us += us;
    l->n++;
}

/* Whether slot s holds samples of the window ending at epoch. */
static bool slot_live(const struct lat_slot *s, uint64_t epoch)
{
    return s->epoch <= epoch && epoch - s->epoch < LAT_SLOTS;
}

uint64_t latency_window_quantile(const struct latency *l, uint64_t now_us, double q, uint64_t *n)
{
    uint64_t epoch = now_us / LAT_SLOT_US, total = 0, seen = 0, rank;

    for (size_t s = 0; s < LAT_SLOTS; s++)
        if (slot_live(&l->slots[s], epoch))
            for (size_t i = 0; i < LAT_BUCKETS; i++)
                total += l->slots[s].count[i];
    *n = total;
    if (total == 0)
        return 0;
    rank = (uint64_t)(q * (double)total + 0.999999);   /* the ceil(q * n)-th sample */
    if (rank < 1)
        rank = 1;
    for (size_t i = 0; i < LAT_BUCKETS; i++) {
        for (size_t s = 0; s < LAT_SLOTS; s++)
            if (slot_live(&l->slots[s], epoch))
                seen += l->slots[s].count[i];
        if (seen >= rank)
            return latency_bucket_upper(i);
    }
    return latency_bucket_upper(LAT_BUCKETS - 1);
}

void latency_summarize(const struct latency *l, uint64_t now_us, struct lat_summary *out)
{
    out->p50_us = latency_window_quantile(l, now_us, 0.50, &out->window_n);
    out->p90_us = latency_window_quantile(l, now_us, 0.90, &out->window_n);
    out->p99_us = latency_window_quantile(l, now_us, 0.99, &out->window_n);
    memcpy(out->prom, l->prom, sizeof(out->prom));
    out->sum_us = l->sum_us;
    out->n = l->n;
}
