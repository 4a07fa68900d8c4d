/*
 * status_reload.h — the status socket's side of live reload
 * (status_reload.c): POST /reload, and the last reload's outcome as shown
 * in /health, /stats and /metrics (doc/status.md).
 */
#ifndef DBPOOLD_STATUS_RELOAD_H
#define DBPOOLD_STATUS_RELOAD_H

#include <stdbool.h>

struct evbuffer;
struct evhttp_request;
struct reload_state;
struct status_view;

/* The "last_reload" value: an object, or null before the first reload. */
void status_render_last_reload(struct evbuffer *b, const struct reload_state *r);
/* The reload counters and the last success's time, Prometheus text. */
void status_prom_reload(struct evbuffer *b, const struct reload_state *r);
/* POST /reload: reload now and answer with the outcome (200 when applied,
 * 422 when the configuration is invalid, 503 while shutting down). */
void status_handle_reload(struct evhttp_request *req, const struct status_view *v,
                          bool shutting_down);

#endif
