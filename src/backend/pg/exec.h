/*
 * exec.h — the PostgreSQL driver's operations and sending (exec.c). Calls
 * conn.h and cancel.h.
 */
#ifndef DBPOOLD_BACKEND_PG_EXEC_H
#define DBPOOLD_BACKEND_PG_EXEC_H

#include <stdbool.h>

#include "backend/pg/pg_internal.h"

#pragma GCC visibility push(hidden)

/* The driver's exec(), ping() and resume(). */
void pg_exec(struct backend_conn *c, const struct backend_query *q,
             const struct backend_sink *sink, void *arg);
void pg_ping(struct backend_conn *c, backend_done_fn done, void *arg);
void pg_resume(struct backend_conn *c);
/* Send the current stage (c->stage); in_callback: inside our libevent
 * callback, so errors are reported at once. */
void pg_send_stage(struct backend_conn *c, bool in_callback);
/* Push queued output; true when all is sent and the results are awaited. */
bool pg_flush_step(struct backend_conn *c, bool in_callback);
/* The first stage after `done` (-1: the first of all) that is needed. */
enum stage pg_stage_after(const struct backend_conn *c, int done);

#pragma GCC visibility pop

#endif
