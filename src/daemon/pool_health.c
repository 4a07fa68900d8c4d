/*
 * pool_health.c — a pool's connect-failure run, retry timer and up/down
 * state; see pool_health.h.
 *
 * After a failed attempt the pool is unhealthy and only the retry timer
 * dials, on the schedule of backoff.c (exponential from retryDelay, capped,
 * jittered), for as long as attempts fail — that is also the probe that
 * turns /health green again without client traffic. After maxRetries
 * retries the pool is down: until an attempt succeeds, requests that have
 * nothing to wait for fail at once with UNAVAILABLE (pool.c). Logged are
 * the changes (first failure, pool_down, pool_recovered), the other
 * failures at debug.
 */
#include <stdio.h>
#include <string.h>

#include <event2/event.h>
#include <event2/util.h>

#include "daemon/backoff.h"
#include "daemon/clock.h"
#include "daemon/log.h"
#include "daemon/pool_health.h"

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct pool_health *h = arg;

    (void)fd;
    (void)what;
    h->retry_pending = false;
    h->dial(h->arg, h->retry_role);
}

int health_init(struct pool_health *h, const struct pool_config *cfg, struct event_base *base,
                health_dial_fn dial, void *arg)
{
    memset(h, 0, sizeof(*h));
    h->cfg = cfg;
    h->dial = dial;
    h->arg = arg;
    h->retry_timer = evtimer_new(base, on_retry, h);
    return h->retry_timer ? 0 : -1;
}

void health_deinit(struct pool_health *h)
{
    if (h->retry_timer)
        event_free(h->retry_timer);
    h->retry_timer = NULL;
}

void health_arm_timer(struct pool_health *h, struct event *ev, uint64_t delay_us,
                      const char *which)
{
    struct timeval tv = { (time_t)(delay_us / 1000000u), (suseconds_t)(delay_us % 1000000u) };

    if (event_add(ev, &tv) == 0) {
        h->timer_failing = false;
        return;
    }
    if (!h->timer_failing)
        log_error("pool_timer_failed", "pool=%s timer=%s hint=\"cannot arm a timer (out of "
                  "memory?); the pool's maintenance tick does its work, up to a tick late: "
                  "check the daemon's memory\"", h->cfg->name, which);
    h->timer_failing = true;
}

static uint32_t jitter_bits(void)
{
    uint32_t r;

    evutil_secure_rng_get_bytes(&r, sizeof(r));
    return r;
}

void health_retry_later(struct pool_health *h, enum backend_role role)
{
    uint64_t first = h->cfg->retry_delay_ms ? h->cfg->retry_delay_ms : 1000;
    int n = h->failures > 0 ? h->failures : 1;
    uint64_t delay_us = backoff_delay_ms(first, h->cfg->retry_max_delay_ms, n, jitter_bits()) * 1000u;

    h->retry_role = role;
    h->retry_pending = true;
    h->next_attempt_us = now_us() + delay_us;
    health_arm_timer(h, h->retry_timer, delay_us, "retry");
}

void health_backstop(struct pool_health *h, uint64_t now)
{
    if (h->retry_pending && now >= h->next_attempt_us && !evtimer_pending(h->retry_timer, NULL))
        on_retry(-1, 0, h);
}

int64_t health_next_attempt_ms(const struct pool_health *h)
{
    uint64_t now = now_us();

    if (!h->retry_pending)
        return -1;
    return h->next_attempt_us > now ? (int64_t)((h->next_attempt_us - now) / 1000u) : 0;
}

/* For log lines: 0 when no attempt is due. */
static unsigned long long next_ms(const struct pool_health *h)
{
    int64_t ms = health_next_attempt_ms(h);

    return ms > 0 ? (unsigned long long)ms : 0;
}

void health_mark_unhealthy(struct pool_health *h, const char *msg)
{
    size_t n = strlen(msg);

    if (!h->unhealthy)
        h->unhealthy_since_us = now_us();
    h->unhealthy = true;
    if (n >= sizeof(h->last_error))
        n = sizeof(h->last_error) - 1;   /* informative: cutting is fine */
    memcpy(h->last_error, msg, n);
    h->last_error[n] = '\0';
}

void health_unavailable_message(const struct pool_health *h, char *buf, size_t len)
{
    char when[40];

    if (h->retry_pending)
        snprintf(when, sizeof(when), "next in %llu ms", next_ms(h));
    else
        snprintf(when, sizeof(when), "one is under way");
    snprintf(buf, len,
             "pool \"%.64s\" is unavailable: %d connection attempt%s in a row failed, last: "
             "%.190s; requests fail at once until an attempt succeeds (%s): check that the "
             "database server is running, reachable and accepting connections",
             h->cfg->name, h->failures, h->failures == 1 ? "" : "s", h->last_error, when);
}

bool health_connect_failed(struct pool_health *h, enum backend_role role, const char *msg)
{
    char q[300];

    h->failures++;
    health_mark_unhealthy(h, msg);
    health_retry_later(h, role);
    log_quote(q, sizeof(q), msg, strlen(msg));
    if (h->failures == 1)
        log_warn("connect_failed", "pool=%s attempt=1 next_attempt_ms=%llu error=%s",
                 h->cfg->name, next_ms(h), q);
    else
        log_debug("connect_failed", "pool=%s attempt=%d next_attempt_ms=%llu error=%s",
                  h->cfg->name, h->failures, next_ms(h), q);
    if (h->down || h->failures <= h->cfg->max_retries)
        return false;
    /* From now on until an attempt succeeds, requests with nothing to
     * wait for fail at once. */
    h->down = true;
    log_error("pool_down", "pool=%s failures=%d next_attempt_ms=%llu error=%s", h->cfg->name,
              h->failures, next_ms(h),
              log_quote(q, sizeof(q), h->last_error, strlen(h->last_error)));
    return true;
}

void health_recovered(struct pool_health *h)
{
    if (h->unhealthy || h->down)
        log_info("pool_recovered", "pool=%s failures=%d unhealthy_ms=%llu", h->cfg->name,
                 h->failures, (unsigned long long)((now_us() - h->unhealthy_since_us) / 1000u));
    h->failures = 0;
    h->unhealthy = false;
    h->down = false;
    h->last_error[0] = '\0';
    if (h->retry_pending) {
        event_del(h->retry_timer);
        h->retry_pending = false;
    }
}
