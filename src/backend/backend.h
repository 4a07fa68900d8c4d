/*
 * backend.h — the asynchronous backend-driver interface.
 *
 * The factory (factory.c) picks a struct backend_driver by the pool's type.
 * A driver creates struct backend_conn objects (one per server connection;
 * the pool owns them) and runs operations on them WITHOUT blocking the event
 * loop: each operation starts work and later reports completion exactly once,
 * on the loop thread, through a callback. PostgreSQL uses libpq's
 * non-blocking API, MySQL Connector/C's non-blocking start/cont calls, SQLite a worker
 * thread per connection that posts completions back to the loop.
 *
 * At most one operation runs on a connection at a time. The caller keeps SQL
 * text and parameters valid until the operation completes or the connection
 * is closed, whichever comes first; the struct backend_query and the struct
 * backend_sink themselves need not outlive the exec() call (drivers copy
 * what they keep).
 * A completion callback is the driver's last action for that operation: the
 * callback may start the next operation on the same connection (the pool
 * hands a released connection straight to a waiting client) or close it.
 *
 * Rows stream: the driver calls sink->row once per row; when row() returns
 * false the driver stops producing rows until driver->resume() is called
 * (back-pressure from a slow client), then continues; done() is not delivered
 * while paused, except that cancel() ends a paused stream without resume().
 * Values passed to columns()/row() are valid only during the call.
 */
#ifndef DBPOOLD_BACKEND_H
#define DBPOOLD_BACKEND_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/configuration.h"
#include "dbpool.h"

struct event_base;
struct backend_conn;   /* driver-private */

/* A pool's connections have roles. Every driver has writers; SQLite also has
 * read-only reader connections (query_only) that take read-only work. */
enum backend_role { ROLE_WRITER = 0, ROLE_READER = 1 };

struct backend_error {
    int code;            /* dbpool_code: DBPOOL_E_SQL, _CONN_LOST, _UNAVAILABLE, _CANCELED, _INTERNAL, ... */
    char sqlstate[6];    /* "" when the backend has none */
    char message[512];
    int32_t vendor_code; /* the server's own error number (MySQL 1062, SQLite's extended
                            result code, ...), 0 when there is none */
};

/* What an operation reports when it completes. */
struct backend_result {
    bool ok;
    struct backend_error err;   /* valid when !ok */
    int64_t rows_affected;      /* exec: changed rows, or rows returned for a SELECT */
    int64_t last_insert_id;     /* exec: 0 when not applicable */
    char txstate;               /* connection's transaction state after the op: 'I', 'T', 'E' */
    bool reroute_to_writer;     /* exec on a reader: the statement is not read-only; nothing
                                   ran. ok is false with err.code 0: check this first. */
    bool broken;                /* the connection is unusable; the pool must close it */
    uint8_t stmt_cache;         /* exec: BR_CACHED ran a statement the server had prepared,
                                   BR_PREPARED prepared it for this execution, else 0 */
    bool schema_changed;        /* exec: DDL on this connection took effect (its transaction
                                   ended): the pool calls schema_changed() on every connection */
};

#define BR_CACHED 1
#define BR_PREPARED 2

typedef void (*backend_done_fn)(void *arg, const struct backend_result *res);

struct backend_sink {
    void (*columns)(void *arg, size_t ncols, const dbpool_column *cols);
    bool (*row)(void *arg, size_t ncols, const dbpool_value *vals);
    backend_done_fn done;
};

/* Flags for exec */
#define BQ_REQUIRE_READONLY 0x01   /* on a reader: report reroute_to_writer if the statement writes */
#define BQ_INTERNAL 0x02           /* the daemon's own single statement (BEGIN, COMMIT, SAVEPOINT,
                                      ...): no parameters, NUL-terminated; a driver may take a
                                      cheaper path (PostgreSQL's simple query protocol) */

struct backend_query {
    const char *sql;
    size_t sql_len;
    const dbpool_value *params;
    size_t nparams;
    unsigned flags;
    const char *begin_sql;   /* non-NULL (drivers with begin_with only): open a transaction
                                with this SQL first, in the same round trip when the driver
                                can; the result's txstate says whether it is open */
};

/* The daemon's own transaction statements, as the driver spells them.
 * Savepoint entries are prefixes the caller completes with a name. */
enum backend_tx_op {
    BTX_COMMIT, BTX_ROLLBACK, BTX_SAVEPOINT, BTX_RELEASE, BTX_ROLLBACK_TO
};

struct backend_driver {
    const char *name;              /* "sqlite", "postgres", "mysql" */

    /* How many connections of each role the pool may open for this config. */
    void (*pool_limits)(const struct pool_config *cfg, int *max_writers, int *max_readers);

    /* Create a connection object (no I/O yet). NULL + message on failure.
     * cfg must outlive the connection. */
    struct backend_conn *(*conn_new)(const struct pool_config *cfg, struct event_base *base,
                                     enum backend_role role, char *errbuf, size_t errlen);
    /* Establish the connection and apply per-connection settings. */
    void (*connect)(struct backend_conn *c, backend_done_fn done, void *arg);
    /* Run one statement with typed parameters; rows to sink; completion via sink->done. */
    void (*exec)(struct backend_conn *c, const struct backend_query *q,
                 const struct backend_sink *sink, void *arg);
    /* Cheap liveness check. */
    void (*ping)(struct backend_conn *c, backend_done_fn done, void *arg);
    /* Ask the running operation to stop early; it then completes with
     * DBPOOL_E_CANCELED (or normally, if it finished first). Never blocks;
     * harmless when nothing runs. */
    void (*cancel)(struct backend_conn *c);
    /* Continue row delivery after sink->row returned false. */
    void (*resume)(struct backend_conn *c);
    /* Transaction state as of the last completion: 'I', 'T' or 'E'. */
    char (*txstate)(const struct backend_conn *c);
    /* Release everything. Allowed at any time: a running operation is
     * abandoned and its callback is never called. Freeing may finish later
     * (e.g. after a worker thread exits) but the object must not be used
     * after this call. */
    void (*close)(struct backend_conn *c);

    /* exec() honours backend_query.begin_sql, so the daemon may answer a
     * protocol BEGIN itself and open the transaction with its first
     * statement. */
    bool begin_with;
    /* SQL to start a transaction ("BEGIN", "BEGIN READ ONLY", "START
     * TRANSACTION READ ONLY", ...). */
    const char *(*begin_sql)(bool read_only, enum backend_role role);
    /* SQL of the other transaction statements ("COMMIT", "SAVEPOINT", ...). */
    const char *(*tx_sql)(enum backend_tx_op op);
    /* Make an idle connection fit for the next client: end an open
     * transaction and drop what the session left behind, as far as the
     * driver can (PostgreSQL: ROLLBACK; MySQL: reset the connection).
     * Completes through done like any operation; !ok or broken, or a
     * txstate other than 'I', makes the pool close the connection. */
    void (*reset)(struct backend_conn *c, backend_done_fn done, void *arg);
    /* Make a connection one client held across transactions (a pinned
     * session, doc/protocol.md) fit for others: everything reset() does,
     * plus the session state that client may have left: advisory / user
     * locks, temporary tables, settings, LISTEN, prepared statements
     * (PostgreSQL: DISCARD ALL; MySQL: reset the connection). Completes
     * like reset(). NULL: the pool closes such a connection instead (SQLite:
     * a new connection is the cheapest clean session). */
    void (*reset_session)(struct backend_conn *c, backend_done_fn done, void *arg);
    /* Which role an autocommit statement should go to (a cheap, lexical
     * guess; readers verify with BQ_REQUIRE_READONLY). */
    enum backend_role (*route)(const char *sql, size_t len);
    /* Short description of the server (version) for HELLO_OK; may be "". */
    const char *(*server_info)(const struct backend_conn *c);
    /* Watch a connection while it sits idle in the pool (no operation
     * running): if the server closes it or it otherwise dies, call lost(arg)
     * once, on the loop thread, and stop watching. unwatch_idle() ends the
     * watch (harmless when none is active); starting any operation ends it
     * too. Both may be NULL (SQLite
     * connections cannot die while idle). */
    void (*watch_idle)(struct backend_conn *c, void (*lost)(void *arg), void *arg);
    void (*unwatch_idle)(struct backend_conn *c);
    /* DDL ran on some connection of the pool (a result had
     * schema_changed): forget what depends on the schema, e.g. cached
     * statement plans. May be NULL. */
    void (*schema_changed)(struct backend_conn *c);
    /* Block until every closed connection has released its resources (worker
     * threads joined, files closed). Called once, after the event loop has
     * stopped, before exit. May be NULL. */
    void (*quiesce)(void);
    /* Whether a closed connection is still being torn down off the loop
     * (it may read the pool_config it was made with until then). Never
     * blocks. May be NULL (close() is done when it returns). */
    bool (*teardown_pending)(void);
};

/* Helpers shared by drivers (backend.c). */
void backend_result_ok(struct backend_result *r, char txstate);
void backend_result_error(struct backend_result *r, int code, const char *sqlstate,
                          char txstate, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* For drivers whose server speaks the SQL standard's transaction
 * statements: tx_sql() answering "COMMIT", "ROLLBACK", "SAVEPOINT",
 * "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT"; and reset() as a ROLLBACK
 * run through the driver's own exec (the daemon's statement, BQ_INTERNAL). */
const char *backend_standard_tx_sql(enum backend_tx_op op);
void backend_reset_by_rollback(void (*exec)(struct backend_conn *c, const struct backend_query *q,
                                            const struct backend_sink *sink, void *arg),
                               struct backend_conn *c, backend_done_fn done, void *arg);
/* backend_result_error from a va_list, and r->broken = broken (the drivers'
 * fail-now / fail-later helpers). */
void backend_result_verror(struct backend_result *r, int code, const char *sqlstate,
                           char txstate, bool broken, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));
/* Index of the first byte at or after i that is not whitespace or inside a
 * -- line comment or a block comment (len when there is none). */
size_t sql_skip_space_and_comments(const char *s, size_t len, size_t i);
/* Lexical: does the statement start (after spaces/comments) with one of the
 * given upper-case keywords? Used by route(). */
bool sql_starts_with_keyword(const char *sql, size_t len, const char *const *keywords);
/* Highest $N placeholder in PostgreSQL-style SQL, ignoring quoted strings,
 * dollar-quoted bodies, quoted identifiers and comments (0 when none). */
unsigned sql_max_dollar_param(const char *sql, size_t len);

#endif
