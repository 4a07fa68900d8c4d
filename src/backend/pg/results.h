/*
 * results.h — the PostgreSQL driver's socket callback and result reading
 * (results.c). Calls conn.h, cancel.h, connect.h and exec.h.
 */
#ifndef DBPOOLD_BACKEND_PG_RESULTS_H
#define DBPOOLD_BACKEND_PG_RESULTS_H

#include "backend/pg/pg_internal.h"

#pragma GCC visibility push(hidden)

/* c->ev_io's callback (c->io_cb): dispatches by phase. */
void pg_on_io(evutil_socket_t fd, short what, void *arg);
/* Process everything libpq holds, until it needs more input, the sink
 * pauses, or the statement is over. */
void pg_pump(struct backend_conn *c);

#pragma GCC visibility pop

#endif
