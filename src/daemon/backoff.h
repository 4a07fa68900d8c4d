/*
 * backoff.h — the connect-retry schedule of a pool, as a pure function.
 *
 * pool.c asks for the delay before its next connection attempt after a run
 * of consecutive failures; the randomness comes from the caller, so the
 * schedule can be unit-tested (tests/unit/test_backoff.c).
 */
#ifndef DBPOOLD_BACKOFF_H
#define DBPOOLD_BACKOFF_H

#include <stdint.h>

/* The delays never grow beyond this (unless the first one is larger). */
#define BACKOFF_CAP_MS 30000u

/* Upper bound of the delay after `failures` (>= 1) consecutive failed
 * attempts: first_ms, doubled for every failure after the first, capped at
 * cap_ms (or first_ms when that is larger). At least 1 ms. */
uint64_t backoff_base_ms(uint64_t first_ms, uint64_t cap_ms, int failures);

/* The delay itself: the base minus a random part of up to a quarter of it,
 * so pools and daemons that failed together do not retry in step. rnd is
 * uniform over all 32-bit values; the result lies in
 * [base - base / 4, base] and is at least 1 ms. */
uint64_t backoff_delay_ms(uint64_t first_ms, uint64_t cap_ms, int failures, uint32_t rnd);

#endif
