/*
 * backoff.c — the connect-retry schedule (see backoff.h): exponential from
 * retryDelay, capped, with jitter downwards so the cap is a true bound.
 */
#include "daemon/backoff.h"

uint64_t backoff_base_ms(uint64_t first_ms, uint64_t cap_ms, int failures)
{
    uint64_t d = first_ms ? first_ms : 1;

    if (cap_ms < d)
        cap_ms = d;
    for (int i = 1; i < failures && d < cap_ms; i++)
        d = d > cap_ms / 2 ? cap_ms : d * 2;
    return d;
}

/* spread * rnd / 2^32 without overflow (spread * rnd fits in 64 bits
 * while spread < 2^32; beyond that the low bits do not matter). */
static uint64_t scale(uint64_t spread, uint32_t rnd)
{
    if (spread <= UINT32_MAX)
        return (spread * rnd) >> 32;
    return (spread >> 32) * rnd;
}

uint64_t backoff_delay_ms(uint64_t first_ms, uint64_t cap_ms, int failures, uint32_t rnd)
{
    uint64_t base = backoff_base_ms(first_ms, cap_ms, failures);
    uint64_t d = base - scale(base / 4, rnd);

    return d ? d : 1;
}
