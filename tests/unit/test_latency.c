/*
 * test_latency.c — the pools' latency windows (src/daemon/latency.c):
 * bucket bounds, quantiles of known samples within the documented 12.5%,
 * the sliding window forgetting samples older than a minute, and the
 * cumulative Prometheus buckets.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "daemon/latency.h"

#define SEC 1000000ull

Test(latency, every_value_falls_in_a_bucket_whose_upper_bound_is_at_most_an_eighth_above)
{
    for (uint64_t v = 0; v < 5000000; v = v < 100 ? v + 1 : v + v / 7 + 1) {
        size_t i = latency_bucket(v);
        uint64_t up = latency_bucket_upper(i);
        cr_assert_lt(i, LAT_BUCKETS);
        cr_assert_geq(up, v, "value %llu above its bucket's bound %llu", (unsigned long long)v,
                      (unsigned long long)up);
        cr_assert_leq((double)up, v * 1.125 + 1, "value %llu, bound %llu",
                      (unsigned long long)v, (unsigned long long)up);
        if (i > 0)
            cr_assert_lt(latency_bucket_upper(i - 1), v, "value %llu fits the bucket below",
                         (unsigned long long)v);
    }
}

Test(latency, quantiles_of_a_known_distribution)
{
    struct latency *l = calloc(1, sizeof(*l));
    uint64_t n, now = 1000 * SEC;

    for (uint64_t i = 1; i <= 1000; i++)     /* 1 ms .. 1000 ms, evenly */
        latency_record(l, now, i * 1000);
    uint64_t p50 = latency_window_quantile(l, now, 0.5, &n);
    uint64_t p99 = latency_window_quantile(l, now, 0.99, &n);
    cr_assert_eq(n, 1000);
    cr_assert(p50 >= 500000 && p50 <= 562500, "p50 %llu", (unsigned long long)p50);
    cr_assert(p99 >= 990000 && p99 <= 1113750, "p99 %llu", (unsigned long long)p99);
    cr_assert_eq(latency_window_quantile(l, now, 0.001, &n), latency_bucket_upper(latency_bucket(1000)));
    free(l);
}

Test(latency, the_window_forgets_samples_older_than_a_minute)
{
    struct latency *l = calloc(1, sizeof(*l));
    uint64_t n, t0 = 5000 * SEC;

    latency_record(l, t0, 900000);           /* one slow sample */
    for (int i = 0; i < 10; i++)
        latency_record(l, t0 + 30 * SEC, 100);
    cr_assert_geq(latency_window_quantile(l, t0 + 30 * SEC, 1.0, &n), 900000);
    cr_assert_eq(n, 11);
    /* 61 s after the slow one its slot has left the window; the fast ones remain. */
    cr_assert_lt(latency_window_quantile(l, t0 + 61 * SEC, 1.0, &n), 1000);
    cr_assert_eq(n, 10);
    /* A new sample in the slow one's old slot (60 s later) clears it. */
    latency_record(l, t0 + 60 * SEC + 1, 50);
    latency_window_quantile(l, t0 + 60 * SEC + 1, 1.0, &n);
    cr_assert_eq(n, 11, "10 fast + the new one, the old slot's sample gone");
    cr_assert_eq(latency_window_quantile(l, t0 + 200 * SEC, 0.5, &n), 0);
    cr_assert_eq(n, 0);
    free(l);
}

Test(latency, prometheus_buckets_count_every_sample_since_start)
{
    struct latency *l = calloc(1, sizeof(*l));
    struct lat_summary s;

    latency_record(l, 1 * SEC, 50);          /* <= 100us */
    latency_record(l, 2 * SEC, 100);         /* <= 100us: the bound is inclusive */
    latency_record(l, 3 * SEC, 300000);      /* <= 0.5 s */
    latency_record(l, 500 * SEC, 60 * SEC);  /* +Inf, and long after the window */
    latency_summarize(l, 500 * SEC, &s);
    cr_assert_eq(s.prom[0], 2);
    cr_assert_eq(s.prom[11], 1, "0.5 s bucket");
    cr_assert_eq(s.prom[LAT_PROM_NBOUNDS], 1);
    cr_assert_eq(s.n, 4);
    cr_assert_eq(s.sum_us, 50 + 100 + 300000 + 60 * SEC);
    cr_assert_eq(s.window_n, 1, "only the last sample is in the window");
    free(l);
}
