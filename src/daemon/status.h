/*
 * status.h — the status socket: HTTP/1.1 over a Unix socket (libevent evhttp)
 * serving JSON pool statistics and health. doc/status.md lists the fields.
 */
#ifndef DBPOOLD_STATUS_H
#define DBPOOLD_STATUS_H

#include <stddef.h>

struct daemon;
struct status_server;

/* Bind path (replacing a stale socket file) and serve on d->base.
 * NULL + message on error. */
struct status_server *status_start(struct daemon *d, const char *path, char *errbuf, size_t errlen);
/* A descriptor was freed: if accepting paused on an error, resume now.
 * NULL (status socket disabled) is allowed. */
void status_fd_freed(struct status_server *s);
/* Stop serving, close and unlink the socket. */
void status_stop(struct status_server *s);

#endif
