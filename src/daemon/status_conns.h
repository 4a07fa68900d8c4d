/*
 * status_conns.h — the status socket's view of every connection
 * (status_conns.c): GET /clients (client sessions) and GET /servers
 * (server connections of every pool). doc/status.md lists the fields.
 */
#ifndef DBPOOLD_STATUS_CONNS_H
#define DBPOOLD_STATUS_CONNS_H

struct evhttp_request;
struct evbuffer;
struct status_view;

void status_handle_clients(struct evhttp_request *req, const struct status_view *v,
                           struct evbuffer *b);
void status_handle_servers(struct evhttp_request *req, const struct status_view *v,
                           struct evbuffer *b);

#endif
