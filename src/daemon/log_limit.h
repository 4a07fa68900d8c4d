/*
 * log_limit.h — bounds the log volume per event name, so that no client
 * (a local user reconnecting in a loop with garbage, say) and no fault that
 * repeats (a dead server, an exhausted descriptor table) can fill the disk.
 *
 * Each event name may write LOG_LIMIT_PER_WINDOW lines per window of
 * LOG_LIMIT_WINDOW_MS; further lines of that event are counted, not
 * written, and once the window is over one summary line says how many were
 * suppressed (event=log_suppressed). log.c applies it to every line at info
 * level and above (debug is the operator's explicit choice).
 *
 * The limiter is a value: log.c keeps the daemon's one instance; the tests
 * drive their own with an explicit clock. An instance may set its own
 * window and lines per window (zero: the defaults above): the client
 * sessions keep one that logs access refusals once per burst (session.h).
 */
#ifndef DBPOOLD_LOG_LIMIT_H
#define DBPOOLD_LOG_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOG_LIMIT_WINDOW_MS 1000
#define LOG_LIMIT_PER_WINDOW 50
#define LOG_LIMIT_EVENTS 64        /* distinct event names tracked */
#define LOG_LIMIT_NAME 40

struct log_limit_slot {
    char name[LOG_LIMIT_NAME];     /* "" = free */
    uint64_t window_start_ms;
    unsigned written;              /* lines written in the window */
    uint64_t suppressed;           /* lines dropped in the window */
};

struct log_limit {
    struct log_limit_slot slot[LOG_LIMIT_EVENTS];
    uint64_t window_ms;            /* 0: LOG_LIMIT_WINDOW_MS */
    unsigned per_window;           /* 0: LOG_LIMIT_PER_WINDOW */
};

/* A summary owed for an event whose window ended with lines suppressed. */
struct log_limit_summary {
    char name[LOG_LIMIT_NAME];
    uint64_t suppressed;
};

/* Whether a line of `event` at now_ms may be written. Before answering,
 * windows that ended with suppressed lines are closed: up to max_out of
 * their summaries are copied to out (*nout of them) for the caller to
 * write first. An event name that does not fit the table shares the last
 * slot. */
bool log_limit_admit(struct log_limit *l, const char *event, uint64_t now_ms,
                     struct log_limit_summary *out, size_t max_out, size_t *nout);

#endif
