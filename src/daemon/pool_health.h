/*
 * pool_health.h — whether a pool's database answers: the run of failed
 * connection attempts, the retry timer that alone dials while they fail
 * (on backoff.c's schedule), the unhealthy and down flags, and the words
 * a request gets while the pool is unavailable.
 *
 * pool.c owns one struct pool_health per pool and reports every attempt's
 * outcome to it; the retry timer calls back into the pool through `dial`,
 * so this file depends on nothing of the pool's. health_arm_timer() arms
 * any of the pool's timers and logs (once per run) when libevent cannot.
 */
#ifndef DBPOOLD_POOL_HEALTH_H
#define DBPOOLD_POOL_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "daemon/configuration.h"

struct event;
struct event_base;

/* The retry timer's attempt: open one connection of `role` (arg: the pool). */
typedef void (*health_dial_fn)(void *arg, enum backend_role role);

struct pool_health {
    const struct pool_config *cfg;
    struct event *retry_timer;       /* owned */
    health_dial_fn dial;
    void *arg;
    int failures;                    /* consecutive failed attempts */
    bool retry_pending;              /* the retry timer will dial */
    enum backend_role retry_role;    /* what it dials */
    uint64_t next_attempt_us;        /* when (valid while retry_pending) */
    bool unhealthy;                  /* the last attempt or health check failed */
    bool down;                       /* more than maxRetries failures in a row */
    uint64_t unhealthy_since_us;
    bool timer_failing;              /* the last health_arm_timer failed */
    char last_error[256];            /* "" while healthy */
};

/* 0, or -1 when the retry timer cannot be created. */
int health_init(struct pool_health *h, const struct pool_config *cfg, struct event_base *base,
                health_dial_fn dial, void *arg);
void health_deinit(struct pool_health *h);

/* An attempt failed: count it, log it (the first of a run at warn), arm the
 * retry for `role`. True when the pool went down just now. */
bool health_connect_failed(struct pool_health *h, enum backend_role role, const char *msg);
/* An attempt succeeded: the run of failures ends (logged if there was one). */
void health_recovered(struct pool_health *h);
/* A health check failed: unhealthy, with msg as the last error. */
void health_mark_unhealthy(struct pool_health *h, const char *msg);
/* Arm the retry timer for `role` after the backoff delay of the run. */
void health_retry_later(struct pool_health *h, enum backend_role role);
/* While attempts fail only the retry timer dials. */
static inline bool health_dialling_paused(const struct pool_health *h)
{
    return h->retry_pending || h->failures > 0;
}
/* Maintenance tick: make a due retry whose timer could not be armed. */
void health_backstop(struct pool_health *h, uint64_t now);

/* Milliseconds until the retry timer's attempt; -1 when none is due. */
int64_t health_next_attempt_ms(const struct pool_health *h);
/* The UNAVAILABLE message: the cause, and when the pool tries again. */
void health_unavailable_message(const struct pool_health *h, char *buf, size_t len);

/* event_add(ev) after delay_us; on failure log once per run of failures
 * (the pool's maintenance tick does the timer's work then). */
void health_arm_timer(struct pool_health *h, struct event *ev, uint64_t delay_us,
                      const char *which);

#endif
