/*
 * listener.h — Unix-socket listening: binding a socket file safely and
 * accepting client sessions on the daemon's event loop.
 */
#ifndef DBPOOLD_LISTENER_H
#define DBPOOLD_LISTENER_H

#include <stddef.h>

struct daemon;
struct listener;

/* Create, bind and listen (with backlog; the kernel caps it at
 * net.core.somaxconn) on a Unix stream socket at path with permission
 * bits mode. A stale socket file (nobody listening) is replaced; a live one
 * or a non-socket file at path is an error. Returns the fd (non-blocking,
 * close-on-exec) or -1 with a message telling the user what to do. */
int unix_socket_listen(const char *path, unsigned mode, int backlog, char *errbuf, size_t errlen);

/* Accept client sessions on path (backlog: daemon.listenBacklog); each
 * accepted socket becomes a client. When accept() fails for want of
 * descriptors or memory, accepting pauses (logged once per episode) and
 * resumes on listener_fd_freed() or after a second. */
struct listener *listener_start(struct daemon *d, const char *path, unsigned mode,
                                char *errbuf, size_t errlen);
/* A descriptor was freed (a client session ended): a paused listener
 * tries again now. NULL (no listener) is allowed. */
void listener_fd_freed(struct listener *l);
/* Stop, close and unlink the socket file. */
void listener_free(struct listener *l);

#endif
