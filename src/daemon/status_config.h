/*
 * status_config.h — GET /config (status_config.c): the effective
 * configuration as JSON, defaults included, secrets redacted.
 */
#ifndef DBPOOLD_STATUS_CONFIG_H
#define DBPOOLD_STATUS_CONFIG_H

struct evhttp_request;
struct evbuffer;
struct status_view;

void status_handle_config(struct evhttp_request *req, const struct status_view *v,
                          struct evbuffer *b);

#endif
