/*
 * client.h — one client session: reads frames from its socket, runs the
 * session state machine (handshake -> idle -> waiting for a server ->
 * active -> closing), binds to a pool's server for the duration of a
 * transaction (or a single autocommit statement / batch) and streams
 * results back with back-pressure.
 */
#ifndef DBPOOLD_CLIENT_H
#define DBPOOLD_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

struct daemon;
struct client;

enum client_state {
    CL_HANDSHAKE,    /* connected, waiting for HELLO */
    CL_IDLE,         /* ready for the next request */
    CL_WAITING,      /* a request waits for a server connection */
    CL_ACTIVE,       /* a request runs on a server */
    CL_CLOSING,      /* flushing a final error, then freed */
};

/* Take ownership of an accepted socket and start a session. */
void client_accept(struct daemon *d, int fd);
/* Daemon shutdown: close now when idle outside a transaction, else after the
 * transaction ends. */
void client_shutdown_notice(struct client *c);
/* shutdownTimeout expired: cancel and roll back what the session runs, queue
 * ERROR SHUTDOWN after its output and free it once that is flushed (within
 * CLIENT_CUT_FLUSH_MS; at once when nothing can be sent). False when the
 * session was already closing (its flush deadline is only shortened). */
#define CLIENT_CUT_FLUSH_MS 2000u
bool client_shutdown_cut(struct client *c);
/* Close immediately (rolls back through the pool). */
void client_free(struct client *c);

const char *client_state_name(enum client_state s);
/* Next session on the daemon's list (for walking it while closing some). */
struct client *client_next(const struct client *c);

#endif
