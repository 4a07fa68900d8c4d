/*
 * stmt.h — the MySQL driver's exec-side state (struct my_exec, one per
 * connection, behind c->ex) and its cache of server-side prepared
 * statements (stmt.c). The bottom of the exec side: results.c and exec.c
 * call it, and so do the connection side's files through the hooks of
 * mysql_internal.h; it calls none of them.
 *
 * THE STATEMENT CACHE
 *
 * A statement with parameters runs as a server-side prepared statement
 * (binary protocol), through the generic cache (backend/stmtcache.h) with
 * the PostgreSQL driver's rules: a statement is kept the second time its
 * connection sees it (statementCacheSize per connection, least recently
 * used evicted; 0 = off). MySQL has no unnamed statement, so a statement
 * seen for the first time is prepared, executed and closed. The key is the
 * SQL text alone: the server does not type the placeholders, one handle
 * serves any parameter types.
 *
 * Handles to close (evicted, forgotten, one-off) are taken into the
 * connection's close queue; exec.c closes them (COM_STMT_CLOSE, which the
 * server does not answer) with mysql_stmt_close_start/cont before the next
 * statement, so nothing is ever sent outside an operation. DDL through the
 * pool (schema_changed) forgets every statement. A reset of the server
 * session (mysql_reset_connection) dropped them on the server and detached
 * the handles in the library: they are freed without a word to the server,
 * as after mysql_close. The server re-prepares a statement whose tables
 * changed on its own; one it refuses to re-prepare (1615) or no longer
 * knows (1243) is forgotten.
 */
#ifndef DBPOOLD_BACKEND_MYSQL_STMT_H
#define DBPOOLD_BACKEND_MYSQL_STMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <mysql.h>

#include "backend/mysql/mysql_internal.h"
#include "backend/mysql/mysql_types.h"
#include "backend/stmtcache.h"

/* What the continuation after a result set's cleanup does. */
enum my_after { AFTER_NEXT = 0, AFTER_FAIL };

/* The exec side's per-connection state. Buffers grow and are reused. */
struct my_exec {
    struct event *ev_step;     /* runs the first step of a statement, and resume() */
    bool step_begin;           /* ev_step starts the statement (else: resume the stream) */

    /* The statement of the running operation: a copy in qbuf (the caller
     * may free its request while the operation runs, e.g. when its client
     * vanishes). */
    char *qbuf;
    size_t qcap;
    const char *sql;
    size_t sql_len;
    const dbpool_value *params;
    size_t nparams;
    bool ddl;                  /* CREATE, ALTER, DROP, RENAME, TRUNCATE */
    bool call;                 /* CALL */
    bool multi;                /* text with more than one statement */

    /* Its results. */
    MYSQL_RES *res;            /* a text-protocol result set being read */
    MYSQL_STMT *st;            /* the prepared statement running, or NULL */
    bool st_cached;            /* st belongs to the cache (else: garbage at the end) */
    MYSQL_ROW row;             /* mysql_fetch_row_start/cont's out-value */
    MYSQL_STMT *closing;       /* a garbage handle being closed */
    bool binary;               /* the result set being read comes from st */
    bool cols_sent;
    bool extra_set;            /* a second result set (CALL): its rows are dropped */
    bool dropped;              /* rows were dropped after cancel(): no success (results.c) */
    bool rebind;               /* a string buffer grew: bind the results again */
    bool retried;              /* run again after CR_NEW_STMT_METADATA (exec.c) */
    bool big_cells;            /* a string buffer grew past MY_QBUF_KEEP */
    uint8_t stmt_flag;         /* BR_CACHED / BR_PREPARED for the result */
    unsigned burst;            /* rows since the loop last had a turn */
    enum my_after after;       /* what follows mysql_free_result */
    int64_t rows, affected, insert_id;
    struct backend_result err; /* the error being reported (AFTER_FAIL) */

    /* Buffers for the columns of the current result set. */
    size_t ncols;
    size_t cap;
    struct my_col *cols;
    dbpool_column *dcols;
    dbpool_value *vals;
    struct my_cell *cells;
    MYSQL_BIND *rbind;
    size_t pcap;
    MYSQL_BIND *pbind;         /* parameters */

    struct stmt_cache *sc;     /* NULL when statementCacheSize is 0 */
    char db[257];              /* the database the cached statements were prepared in */
    enum stmt_verdict verdict; /* of the running statement */
    struct stmt_ref ref;
    MYSQL_STMT **closeq;       /* handles to close before the next statement */
    size_t nclose, closeq_cap;
};

#pragma GCC visibility push(hidden)

/* c->ex, created on first use with a statement cache of cache_size
 * (statementCacheSize; 0: none); NULL when out of memory. */
struct my_exec *my_ex_get(struct mysql_conn *c, event_callback_fn on_step, unsigned cache_size);

/* Copy the statement and its parameters into ex->qbuf (ex->sql, ->params);
 * false when out of memory. */
bool my_ex_copy_query(struct my_exec *ex, const struct backend_query *q);
enum { MY_QBUF_KEEP = 64 * 1024 };   /* a buffer up to this size is kept between statements */

/* The statement is over: large buffers (its copy, long values) are given
 * back, so an idle connection holds little. */
void my_ex_trim(struct my_exec *ex);

/* Look the running statement (ex->sql) up: its cached handle, or NULL
 * (prepare it, then call my_stmt_prepared). */
MYSQL_STMT *my_stmt_lookup(struct my_exec *ex);
/* ex->st was prepared: kept by the cache (ex->st_cached) or one-off. */
void my_stmt_prepared(struct my_exec *ex);
/* The server refused ex->st for good: forget it (closed before the next
 * statement). */
void my_stmt_forget(struct my_exec *ex);
/* The running statement is over: a one-off handle joins the close queue. */
void my_stmt_end(struct my_exec *ex);
/* The next handle to close before the statement (taken off the queue), or
 * NULL when there is none. */
MYSQL_STMT *my_stmt_next_close(struct my_exec *ex);

#pragma GCC visibility pop

#endif
