/*
 * latency.h — latency distributions of a pool (transaction time, wait
 * time) with bounded memory and O(1) recording: no allocation, no clock
 * read of its own (the caller passes the time it already has).
 *
 * Two views of the same samples:
 *   - a sliding window (LAT_SLOTS slots of LAT_SLOT_US each, the last
 *     minute) of log-linear histograms, from which the status socket reads
 *     p50/p90/p99 (latency_window_quantile). A bucket spans 1/8 of its
 *     power of two, so a quantile is at most 12.5% above the true value
 *     (it reports the bucket's upper bound); below 16 us buckets are exact.
 *   - cumulative counts since start in fixed buckets (LAT_PROM_BOUNDS),
 *     for the Prometheus histogram in /metrics.
 * Implemented in latency.c; tests/unit/test_latency.c checks both.
 */
#ifndef DBPOOLD_LATENCY_H
#define DBPOOLD_LATENCY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LAT_SLOTS 6
#define LAT_SLOT_US 10000000u                /* 10 s: the window is 60 s */
#define LAT_EXACT 16                         /* values 0..15 us have a bucket each */
#define LAT_SUB 8                            /* buckets per power of two above that */
#define LAT_MAX_EXP 36                       /* 2^36 us (19 h): the last bucket holds more */
#define LAT_BUCKETS (LAT_EXACT + (LAT_MAX_EXP - 4) * LAT_SUB)
#define LAT_PROM_NBOUNDS 16

/* Upper bounds of the Prometheus buckets, in microseconds (+Inf follows). */
extern const uint64_t lat_prom_bounds_us[LAT_PROM_NBOUNDS];

struct lat_slot {
    uint64_t epoch;                          /* now / LAT_SLOT_US when it was filled */
    uint32_t count[LAT_BUCKETS];
};

struct latency {
    struct lat_slot slots[LAT_SLOTS];        /* slot epoch % LAT_SLOTS */
    uint64_t prom[LAT_PROM_NBOUNDS + 1];     /* since start; the last is +Inf */
    uint64_t sum_us, n;                      /* since start */
};

/* What the status socket shows: the window's quantiles and the
 * cumulative buckets. */
struct lat_summary {
    uint64_t p50_us, p90_us, p99_us;
    uint64_t window_n;                       /* samples in the window */
    uint64_t prom[LAT_PROM_NBOUNDS + 1];     /* per bucket (not cumulative); last: +Inf */
    uint64_t sum_us, n;
};

/* One sample of `us` microseconds, taken at now_us (the monotonic clock). */
void latency_record(struct latency *l, uint64_t now_us, uint64_t us);

/* The q-quantile (0 < q <= 1) of the samples of the last LAT_SLOTS slots
 * as of now_us, in microseconds (the bucket's upper bound); *n gets how
 * many samples the window holds (the quantile is 0 when none). */
uint64_t latency_window_quantile(const struct latency *l, uint64_t now_us, double q, uint64_t *n);

void latency_summarize(const struct latency *l, uint64_t now_us, struct lat_summary *out);

/* Bucket index of a value and the largest value of a bucket (for tests). */
size_t latency_bucket(uint64_t us);
uint64_t latency_bucket_upper(size_t i);

#endif
