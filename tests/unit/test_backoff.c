/*
 * test_backoff.c — unit tests for the connect-retry schedule
 * (src/daemon/backoff.c): doubling from retryDelay, the cap, jitter bounds, and
 * that jitter actually spreads the delays of pools that failed together.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>

#include "daemon/backoff.h"

TestSuite(backoff);

Test(backoff, doubles_from_the_first_delay_up_to_the_cap)
{
    static const uint64_t want[] = { 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000 };

    for (int n = 1; n <= 8; n++)
        cr_assert_eq(backoff_base_ms(1000, BACKOFF_CAP_MS, n), want[n - 1],
                     "failure %d: base %llu, expected %llu", n,
                     (unsigned long long)backoff_base_ms(1000, BACKOFF_CAP_MS, n),
                     (unsigned long long)want[n - 1]);
}

Test(backoff, stays_at_the_cap_for_as_long_as_failures_go_on)
{
    int runs[] = { 20, 63, 64, 65, 1000, 100000, INT32_MAX };

    for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
        cr_assert_eq(backoff_base_ms(100, BACKOFF_CAP_MS, runs[i]), BACKOFF_CAP_MS,
                     "after %d failures", runs[i]);
        cr_assert_leq(backoff_delay_ms(100, BACKOFF_CAP_MS, runs[i], UINT32_MAX), BACKOFF_CAP_MS);
    }
}

Test(backoff, a_first_delay_above_the_cap_is_kept)
{
    cr_assert_eq(backoff_base_ms(45000, BACKOFF_CAP_MS, 1), 45000);
    cr_assert_eq(backoff_base_ms(45000, BACKOFF_CAP_MS, 9), 45000);
}

Test(backoff, zero_and_odd_inputs_give_a_positive_delay)
{
    cr_assert_eq(backoff_base_ms(0, BACKOFF_CAP_MS, 1), 1);
    cr_assert_eq(backoff_base_ms(0, BACKOFF_CAP_MS, 3), 4);
    cr_assert_eq(backoff_base_ms(100, BACKOFF_CAP_MS, 0), 100, "0 failures: the first delay");
    cr_assert_eq(backoff_delay_ms(1, BACKOFF_CAP_MS, 1, UINT32_MAX), 1);
    cr_assert_eq(backoff_base_ms(UINT64_MAX / 3, UINT64_MAX, 5), UINT64_MAX, "no overflow");
}

Test(backoff, jitter_stays_within_a_quarter_below_the_base)
{
    uint32_t rnds[] = { 0, 1, 12345, 1u << 31, UINT32_MAX - 1, UINT32_MAX };

    for (int n = 1; n <= 12; n++) {
        uint64_t base = backoff_base_ms(1000, BACKOFF_CAP_MS, n);
        for (size_t i = 0; i < sizeof(rnds) / sizeof(rnds[0]); i++) {
            uint64_t d = backoff_delay_ms(1000, BACKOFF_CAP_MS, n, rnds[i]);
            cr_assert(d <= base && d >= base - base / 4,
                      "failure %d, rnd %u: delay %llu outside [%llu, %llu]", n, rnds[i],
                      (unsigned long long)d, (unsigned long long)(base - base / 4),
                      (unsigned long long)base);
        }
    }
    cr_assert_eq(backoff_delay_ms(1000, BACKOFF_CAP_MS, 6, 0), 30000, "rnd 0: the base");
    cr_assert_eq(backoff_delay_ms(1000, BACKOFF_CAP_MS, 6, 1u << 31), 30000 - 3750,
                 "rnd 2^31: an eighth below");
    cr_assert_geq(backoff_delay_ms(1000, BACKOFF_CAP_MS, 6, UINT32_MAX), 22500);
    cr_assert_lt(backoff_delay_ms(1000, BACKOFF_CAP_MS, 6, UINT32_MAX), 22502);
}

/* 1000 pools failing at the same instant: their capped retries spread
 * over the jitter window instead of arriving together. */
Test(backoff, jitter_spreads_simultaneous_retries)
{
    int buckets[8] = { 0 };
    unsigned seed = 42;

    for (int i = 0; i < 1000; i++) {
        uint32_t rnd = ((uint32_t)rand_r(&seed) << 16) ^ (uint32_t)rand_r(&seed);
        uint64_t d = backoff_delay_ms(1000, BACKOFF_CAP_MS, 10, rnd);
        int b = (int)((30000 - d) * 8 / 7501);
        cr_assert(b >= 0 && b < 8, "delay %llu", (unsigned long long)d);
        buckets[b]++;
    }
    for (int b = 0; b < 8; b++)
        cr_assert(buckets[b] >= 60 && buckets[b] <= 190,
                  "bucket %d of the jitter window holds %d of 1000 retries", b, buckets[b]);
}
