/*
 * status_latency.h — the pools' latency figures on the status socket
 * (status_latency.c): p50/p90/p99 of the last minute in /pools, and in
 * /metrics a Prometheus histogram since start plus the window's quantiles.
 */
#ifndef DBPOOLD_STATUS_LATENCY_H
#define DBPOOLD_STATUS_LATENCY_H

#include <stddef.h>

struct evbuffer;
struct pool_stats;

/* The "latency" object of one pool in /pools. */
void status_render_latency(struct evbuffer *b, const struct pool_stats *s);
/* The latency families for the n pools of st. */
void status_prom_latency(struct evbuffer *b, const struct pool_stats *st, size_t n);

#endif
