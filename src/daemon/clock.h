/*
 * clock.h — the daemon's one clock: monotonic microseconds, for deadlines,
 * ages and durations (never wall time). Inline: it is read on every request.
 */
#ifndef DBPOOLD_CLOCK_H
#define DBPOOLD_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

#endif
