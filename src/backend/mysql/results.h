/*
 * results.h — reading the results of a MySQL statement (results.c): the
 * text protocol (mysql_use_result, one row per mysql_fetch_row_start/cont)
 * and the binary protocol of prepared statements (unbuffered
 * mysql_stmt_fetch_start/cont), columns and typed values to the sink with
 * back-pressure, further result sets (CALL), and the statement's
 * completion. Calls stmt.h; exec.c calls it.
 */
#ifndef DBPOOLD_BACKEND_MYSQL_RESULTS_H
#define DBPOOLD_BACKEND_MYSQL_RESULTS_H

#include "backend/mysql/mysql_internal.h"

#pragma GCC visibility push(hidden)

/* The statement was sent and its first result is ready to read: from
 * c->m (text protocol) or c->ex->st (binary protocol). */
void my_rs_read(struct mysql_conn *c);
/* Continue a stream resumed by resume() (or ended by cancel()). */
void my_rs_resume(struct mysql_conn *c);
/* End the operation with the error on the handle (c->ex->st's when it
 * ran): freeing what is open first. */
void my_rs_fail(struct mysql_conn *c);
/* End the operation with r. */
void my_rs_fail_with(struct mysql_conn *c, const struct backend_result *r);

#pragma GCC visibility pop

#endif
