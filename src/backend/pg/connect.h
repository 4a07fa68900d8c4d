/*
 * connect.h — the PostgreSQL driver's connection set-up (connect.c). Calls
 * conn.h only.
 */
#ifndef DBPOOLD_BACKEND_PG_CONNECT_H
#define DBPOOLD_BACKEND_PG_CONNECT_H

#include "backend/pg/pg_internal.h"

#pragma GCC visibility push(hidden)

/* The driver's connect(). */
void pg_connect(struct backend_conn *c, backend_done_fn done, void *arg);
/* PH_CONNECTING: the socket is ready for what libpq asked. */
void pg_connect_step(struct backend_conn *c);
/* c->ev_timer fired while resolving or connecting. */
void pg_connect_timed_out(struct backend_conn *c);
/* Close the server connection (PQfinish) and its socket event. */
void pg_drop_conn(struct backend_conn *c);

#pragma GCC visibility pop

#endif
