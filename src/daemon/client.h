/*
 * client.h — a client session's protocol side: reads frames from its
 * socket, answers the handshake, dispatches requests, runs each request's
 * steps (planned by request.c) on a server of the pool and streams results
 * back with back-pressure. The session's core (state and lists, output,
 * deadlines, closing) is session.h.
 */
#ifndef DBPOOLD_CLIENT_H
#define DBPOOLD_CLIENT_H

#include "daemon/session.h"

/* Take ownership of an accepted socket and start a session. */
void client_accept(struct sessions *s, int fd);

#endif
