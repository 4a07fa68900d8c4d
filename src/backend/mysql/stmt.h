/*
 * stmt.h — the MySQL driver's exec-side state (struct my_exec, one per
 * connection, behind c->ex) and its cache of server-side prepared
 * statements (stmt.c). The bottom of the exec side: results.c and exec.c
 * call it; it calls neither.
 *
 * THE STATEMENT CACHE
 *
 * A statement with parameters runs as a server-side prepared statement
 * (binary protocol). MySQL has no unnamed statement to run once, so a
 * statement is prepared the first time its connection sees it and kept,
 * keyed by its SQL text (the server does not type the placeholders: one
 * handle serves any parameter types), up to statementCacheSize statements
 * per connection; the least recently used one is evicted when full. With
 * statementCacheSize 0 every statement is prepared, executed and closed.
 *
 * Evicted, forgotten and one-off handles go on a garbage list; exec.c
 * closes them (COM_STMT_CLOSE, which the server does not answer) with
 * mysql_stmt_close_start/cont before the next statement, so that nothing
 * is ever sent outside an operation. The rules follow the PostgreSQL
 * driver's: DDL through the pool (schema_changed) forgets every statement;
 * a reset of the server session (mysql_reset_connection) has dropped them
 * on the server already: the handles are still closed, which costs a
 * write the server ignores. The server itself re-prepares a statement
 * whose tables changed; a statement it refuses to re-prepare (1615) or no
 * longer knows (1243) is forgotten.
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

struct my_stmt_entry {
    uint64_t hash;
    char *sql;                 /* owned copy of the key */
    size_t len;
    MYSQL_STMT *st;
    uint64_t used;             /* LRU clock */
};

struct my_stmt_cache {
    unsigned cap, n;
    uint64_t clock;
    struct my_stmt_entry *e;   /* cap entries */
    MYSQL_STMT **garbage;      /* handles to close before the next statement */
    size_t ngarbage, garbage_cap;
};

/* What the continuation after a result set's cleanup does. */
enum my_after { AFTER_NEXT = 0, AFTER_FAIL };

/* The exec side's per-connection state. Buffers grow and are reused. */
struct my_exec {
    struct event *ev_step;     /* runs the first step of a statement, and resume() */
    bool step_begin;           /* ev_step starts the statement (else: resume the stream) */

    /* The statement of the running operation (the caller's memory). */
    const char *sql;
    size_t sql_len;
    const dbpool_value *params;
    size_t nparams;
    bool ddl;                  /* CREATE, ALTER, DROP, RENAME, TRUNCATE */

    /* Its results. */
    MYSQL_RES *res;            /* a text-protocol result set being read */
    MYSQL_STMT *st;            /* the prepared statement running, or NULL */
    bool st_cached;            /* st belongs to the cache (else: garbage at the end) */
    MYSQL_ROW row;             /* mysql_fetch_row_start/cont's out-value */
    MYSQL_STMT *closing;       /* a garbage handle being closed */
    bool binary;               /* the result set being read comes from st */
    bool cols_sent;
    bool extra_set;            /* a second result set (CALL): its rows are dropped */
    bool rebind;               /* a string buffer grew: bind the results again */
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

    struct my_stmt_cache sc;
};

#pragma GCC visibility push(hidden)

/* c->ex, created on first use (NULL when out of memory). */
struct my_exec *my_ex_get(struct mysql_conn *c, event_callback_fn on_step);

/* The cached handle for this SQL, or NULL. */
MYSQL_STMT *my_stmt_get(struct my_stmt_cache *sc, const char *sql, size_t len);
/* Keep st for this SQL (evicting the least recently used); false when the
 * cache is off or out of memory: the caller then treats st as one-off. */
bool my_stmt_put(struct my_stmt_cache *sc, const char *sql, size_t len, MYSQL_STMT *st);
/* Forget st (it stays open until the garbage is closed). */
void my_stmt_forget(struct my_stmt_cache *sc, MYSQL_STMT *st);
/* Put a handle on the garbage list; false when out of memory (the caller
 * then frees it with the connection: it is never lost). */
bool my_stmt_discard(struct my_stmt_cache *sc, MYSQL_STMT *st);
/* The next handle to close, or NULL. */
MYSQL_STMT *my_stmt_garbage_pop(struct my_stmt_cache *sc);
/* Statements cached (the tests). */
unsigned my_stmt_count(const struct my_stmt_cache *sc);

#pragma GCC visibility pop

#endif
