/*
 * listener.h — accepting client connections on the client socket, on the
 * daemon's event loop. What becomes of an accepted socket is the owner's
 * business (a callback), so the listener depends on no session code.
 */
#ifndef DBPOOLD_LISTENER_H
#define DBPOOLD_LISTENER_H

#include <stddef.h>

struct event_base;
struct listener;

/* What the listener needs from whoever owns it (daemon.c). */
struct listener_owner {
    void (*accept)(void *arg, int fd);   /* takes ownership of the accepted socket */
    size_t (*sessions)(void *arg);       /* sessions open now (for the log) */
    void *arg;
};

/* Bind path (unix_socket_listen: mode, backlog = daemon.listenBacklog) —
 * or, when passed_fd >= 0, serve that already-listening socket (socket
 * activation: path is its address, for the log; it is taken over and never
 * unlinked) — and hand every accepted socket to owner->accept. When
 * accept() fails for want of descriptors or memory, accepting pauses
 * (logged once per episode) and resumes on listener_fd_freed() or after a
 * second. owner is copied. */
struct listener *listener_start(struct event_base *base, const char *path, unsigned mode,
                                int backlog, int passed_fd, const struct listener_owner *owner,
                                char *errbuf, size_t errlen);
/* The socket's path (for the log). */
const char *listener_path(const struct listener *l);
/* A descriptor was freed (a client session ended): a paused listener
 * tries again now. NULL (no listener) is allowed. */
void listener_fd_freed(struct listener *l);
/* Stop, close, and unlink the socket file if the listener bound it. */
void listener_free(struct listener *l);

#endif
