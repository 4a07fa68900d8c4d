/*
 * cancel.h — cancel requests of the PostgreSQL driver (cancel.c; see
 * pg_internal.h, "CANCEL"). Calls conn.h only.
 */
#ifndef DBPOOLD_BACKEND_PG_CANCEL_H
#define DBPOOLD_BACKEND_PG_CANCEL_H

#include <stdbool.h>

#include "backend/pg/pg_internal.h"

#pragma GCC visibility push(hidden)

/* The driver's cancel(). */
void pg_cancel(struct backend_conn *c);
/* Start a cancel request unless one is in flight; when no helper can start
 * now, try again later (c->ev_timer). False when not even that is possible:
 * the caller fails the operation as broken. */
bool pg_cancel_send(struct backend_conn *c);
/* The results are complete (*r) while a cancel is in flight: true when
 * completion waits for it (r saved in c->res); false to complete now, with
 * r marked broken because the wait could not be bounded. */
bool pg_cancel_wait(struct backend_conn *c, struct backend_result *r);
/* c->ev_timer fired in PH_CANCEL_WAIT or (re-send) PH_READING. */
void pg_cancel_timer(struct backend_conn *c);
/* c->ev_cancel's callback: the cancel helper is done. */
void pg_on_cancel_done(evutil_socket_t fd, short what, void *arg);

#pragma GCC visibility pop

#endif
