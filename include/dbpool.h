/*
 * dbpool.h — libdbpool, the C client library for dbpoold.
 *
 * A dbpool_conn is one session with the daemon over its Unix socket, speaking
 * protocol v1 (doc/protocol.md). Calls are blocking and answered in order;
 * "Non-blocking use" below is the API for programs with an event loop.
 * The library shares its wire-format code (src/common/proto.c) with the daemon.
 *
 * Ownership: objects returned by dbpool_connect / dbpool_query are owned by the
 * caller and freed with dbpool_close / dbpool_result_free. Pointers inside a
 * row returned by dbpool_next_row stay valid until the next call on the same
 * connection.
 *
 * Errors: functions returning int return 0 on success and -1 on failure; the
 * failure is described by dbpool_last_error(conn). A request error (SQL error,
 * pool timeout, ...) leaves the session usable; a protocol or I/O error
 * (code DBPOOL_E_PROTOCOL / DBPOOL_E_IO) closes it (dbpool_is_open() -> 0).
 * A DBPOOL_E_TIMEOUT may do either: check dbpool_is_open().
 *
 * Timeouts (doc/libdbpool.md): dbpool_connect gives up after the connect
 * timeout (default 10 s, $DBPOOL_CONNECT_TIMEOUT); a call waiting for the
 * daemon gives up after the request timeout (default none, $DBPOOL_TIMEOUT,
 * dbpool_set_timeout). Both fail with DBPOOL_E_TIMEOUT.
 */
#ifndef DBPOOL_H
#define DBPOOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DBPOOL_PROTOCOL_VERSION 1

/* Value types on the wire. */
typedef enum dbpool_type {
    DBPOOL_NULL = 0,
    DBPOOL_INT64 = 1,
    DBPOOL_FLOAT64 = 2,
    DBPOOL_TEXT = 3,
    DBPOOL_BLOB = 4,
    DBPOOL_BOOL = 5,
} dbpool_type;

/* A typed value. TEXT and BLOB point at bytes owned by someone else (the
 * caller for parameters, the connection for row values); TEXT is also
 * NUL-terminated when it comes from the library. */
typedef struct dbpool_value {
    dbpool_type type;
    union {
        int64_t i;     /* INT64 */
        double f;      /* FLOAT64 */
        int b;         /* BOOL: 0 or 1 */
        struct {
            const char *ptr;
            size_t len;
        } s;           /* TEXT, BLOB */
    } u;
} dbpool_value;

/* Convenience constructors for parameters. */
static inline dbpool_value dbpool_null(void) { dbpool_value v; v.type = DBPOOL_NULL; v.u.i = 0; return v; }
static inline dbpool_value dbpool_int(int64_t i) { dbpool_value v; v.type = DBPOOL_INT64; v.u.i = i; return v; }
static inline dbpool_value dbpool_float(double f) { dbpool_value v; v.type = DBPOOL_FLOAT64; v.u.f = f; return v; }
static inline dbpool_value dbpool_bool(int b) { dbpool_value v; v.type = DBPOOL_BOOL; v.u.b = b ? 1 : 0; return v; }
dbpool_value dbpool_text(const char *nul_terminated);
static inline dbpool_value dbpool_textn(const char *p, size_t n) { dbpool_value v; v.type = DBPOOL_TEXT; v.u.s.ptr = p; v.u.s.len = n; return v; }
static inline dbpool_value dbpool_blob(const void *p, size_t n) { dbpool_value v; v.type = DBPOOL_BLOB; v.u.s.ptr = (const char *)p; v.u.s.len = n; return v; }

/* Stable error codes (doc/protocol.md, "Error codes"). */
typedef enum dbpool_code {
    DBPOOL_OK = 0,
    DBPOOL_E_PROTOCOL = 1,        /* malformed frame / protocol violation; session closed */
    DBPOOL_E_VERSION = 2,         /* unsupported protocol version; session closed */
    DBPOOL_E_UNKNOWN_POOL = 3,    /* handshake named a pool that does not exist */
    DBPOOL_E_NOT_ALLOWED = 4,     /* peer not allowed on this pool */
    DBPOOL_E_SQL = 5,             /* the database rejected the statement (see sqlstate) */
    DBPOOL_E_POOL_TIMEOUT = 6,    /* no server connection became free within acquireTimeout */
    DBPOOL_E_UNAVAILABLE = 7,     /* the backend cannot be reached */
    DBPOOL_E_TX_TIMEOUT = 8,      /* idle (in transaction) too long; rolled back, session closed */
    DBPOOL_E_LIMIT = 9,           /* frame above maxFrameSize or maxClients reached; session closed
                                     (also returned locally for a request too big to send) */
    DBPOOL_E_CANCELED = 10,       /* statement cancelled (client request or statement timeout) */
    DBPOOL_E_CONN_LOST = 11,      /* backend connection lost; any transaction was aborted */
    DBPOOL_E_SHUTDOWN = 12,       /* daemon is shutting down */
    DBPOOL_E_TX_STATE = 13,       /* commit/rollback without a transaction, etc. */
    DBPOOL_E_INTERNAL = 14,       /* daemon-side failure (out of memory, ...) */
    DBPOOL_E_IO = 100,            /* library-side: socket error or daemon closed the session */
    DBPOOL_E_USAGE = 101,         /* library-side: bad argument / call out of order */
    DBPOOL_E_TIMEOUT = 102,       /* library-side: dbpoold did not answer within the connect or
                                     request timeout (the message says which, and whether the
                                     session was closed) */
} dbpool_code;

/* Session transaction state, reported with every completion. */
typedef enum dbpool_txstate {
    DBPOOL_TX_IDLE = 'I',    /* not in a transaction */
    DBPOOL_TX_ACTIVE = 'T',  /* inside a transaction */
    DBPOOL_TX_FAILED = 'E',  /* inside a failed transaction: only ROLLBACK works */
} dbpool_txstate;

typedef struct dbpool_error {
    int code;            /* dbpool_code */
    char sqlstate[6];    /* five characters + NUL, or "" when the backend has none */
    char message[512];
    int32_t vendor_code; /* the database's own error number, 0 when it has none
                            (doc/protocol.md, "Vendor codes") */
} dbpool_error;

typedef struct dbpool_column {
    const char *name;
    const char *decl_type;   /* declared database type ("integer", "text", "timestamptz", ...) or "" */
} dbpool_column;

typedef struct dbpool_conn dbpool_conn;
typedef struct dbpool_result dbpool_result;

/* Connect and handshake. socket_path NULL -> $DBPOOL_SOCKET, else the default
 * socket. client_name may be NULL. On failure returns NULL and fills *err
 * (if err is not NULL). Gives up with DBPOOL_E_TIMEOUT after the connect
 * timeout ($DBPOOL_CONNECT_TIMEOUT, else 10 s); calls on the connection have
 * the request timeout $DBPOOL_TIMEOUT (else none). */
dbpool_conn *dbpool_connect(const char *socket_path, const char *pool,
                            const char *client_name, dbpool_error *err);

/* ---- Connect options and timeouts (doc/libdbpool.md). ----
 * Times are milliseconds; 0 means "no limit". DBPOOL_TIMEOUT_FROM_ENV takes
 * the value from the environment variable named below (a duration written as
 * in the configuration: "250ms", "10s", "1m30s", or "0"), else the default.
 *
 * ABI: always fill the struct with dbpool_options_init first; it records the
 * struct's size so that fields added later keep their defaults for programs
 * built against this header. */
#define DBPOOL_TIMEOUT_FROM_ENV (-1)
#define DBPOOL_DEFAULT_CONNECT_TIMEOUT_MS 10000   /* socket connect + HELLO/HELLO_OK */
#define DBPOOL_DEFAULT_REQUEST_TIMEOUT_MS 0       /* none: a statement may run as long as it runs */

typedef struct dbpool_options {
    size_t size;                  /* sizeof(dbpool_options), set by dbpool_options_init */
    int64_t connect_timeout_ms;   /* connect(2) + handshake; $DBPOOL_CONNECT_TIMEOUT */
    int64_t request_timeout_ms;   /* each call waiting for the daemon; $DBPOOL_TIMEOUT */
} dbpool_options;

static inline void dbpool_options_init(dbpool_options *o)
{
    o->size = sizeof *o;
    o->connect_timeout_ms = DBPOOL_TIMEOUT_FROM_ENV;
    o->request_timeout_ms = DBPOOL_TIMEOUT_FROM_ENV;
}

/* dbpool_connect with options; opts NULL is the same as dbpool_connect
 * (every option from the environment, else its default). An environment
 * variable that is consulted and is not a valid duration fails the connect
 * with DBPOOL_E_USAGE. */
dbpool_conn *dbpool_connect_opts(const char *socket_path, const char *pool,
                                 const char *client_name, const dbpool_options *opts,
                                 dbpool_error *err);
/* The request timeout of c for the calls that follow: each call that waits
 * for the daemon (query, next row, batch, begin, commit, rollback, ping)
 * waits at most timeout_ms for it (0: no limit). When it expires the call
 * sends a CANCEL and waits a short grace (the timeout, at most 1 s) for the
 * request to end: if it does, the call fails with DBPOOL_E_TIMEOUT and the
 * session stays usable; if not, the session is closed (DBPOOL_E_TIMEOUT,
 * dbpool_is_open() -> 0). Returns 0, or -1 (DBPOOL_E_USAGE) when timeout_ms
 * is negative. */
int dbpool_set_timeout(dbpool_conn *c, int64_t timeout_ms);
/* The request timeout in force on c, in ms (0: none). */
int64_t dbpool_timeout(const dbpool_conn *c);

void dbpool_close(dbpool_conn *c);
int dbpool_is_open(const dbpool_conn *c);
const dbpool_error *dbpool_last_error(const dbpool_conn *c);
dbpool_txstate dbpool_txstate_of(const dbpool_conn *c);
/* Backend type of the pool ("sqlite", "postgres", "mysql"), from the handshake. */
const char *dbpool_backend(const dbpool_conn *c);
const char *dbpool_default_socket(void);

/* ---- Streaming interface: one statement, rows read one at a time. ----
 * dbpool_query_start sends the statement. Then call dbpool_next_row until it
 * returns 0 (end of statement; dbpool_rows_affected etc. are valid) or -1
 * (error). Rows are never buffered whole. */
int dbpool_query_start(dbpool_conn *c, const char *sql,
                       const dbpool_value *params, size_t nparams);
/* 1: *row points at ncols values (valid until the next call); 0: done; -1: error */
int dbpool_next_row(dbpool_conn *c, const dbpool_value **row);
size_t dbpool_ncolumns(const dbpool_conn *c);
const dbpool_column *dbpool_columns(const dbpool_conn *c);
int64_t dbpool_rows_affected(const dbpool_conn *c);
int64_t dbpool_last_insert_id(const dbpool_conn *c);

/* ---- Buffered interface: the whole result in memory. ---- */
int dbpool_query(dbpool_conn *c, const char *sql, const dbpool_value *params,
                 size_t nparams, dbpool_result **out /* may be NULL */);
/* Run sql with no parameters and discard rows. */
int dbpool_exec(dbpool_conn *c, const char *sql);
size_t dbpool_result_nrows(const dbpool_result *r);
size_t dbpool_result_ncols(const dbpool_result *r);
const dbpool_column *dbpool_result_columns(const dbpool_result *r);
const dbpool_value *dbpool_result_value(const dbpool_result *r, size_t row, size_t col);
int64_t dbpool_result_rows_affected(const dbpool_result *r);
int64_t dbpool_result_last_insert_id(const dbpool_result *r);
void dbpool_result_free(dbpool_result *r);

/* ---- Batch: several statements in one round trip. ----
 * With atomic != 0 they run as one transaction (a savepoint when already in
 * one): all or nothing. Execution stops at the first error; *failed_index (if
 * not NULL) receives its index. results (may be NULL) receives one result per
 * statement that ran (NULL for those that did not); free each with
 * dbpool_result_free. *failed_index is SIZE_MAX on success or when the error
 * is not tied to one statement. */
typedef struct dbpool_stmt {
    const char *sql;
    const dbpool_value *params;
    size_t nparams;
} dbpool_stmt;
int dbpool_batch(dbpool_conn *c, const dbpool_stmt *stmts, size_t n, int atomic,
                 dbpool_result **results, size_t *failed_index);

/* ---- Transactions. Nested begin uses a savepoint. ---- */
#define DBPOOL_READ_ONLY 1
int dbpool_begin(dbpool_conn *c, int flags);
int dbpool_commit(dbpool_conn *c);
int dbpool_rollback(dbpool_conn *c);
/* Begin, call fn; commit if fn returns 0, roll back otherwise. Returns fn's
 * non-zero value (or -1 if begin/commit failed). */
int dbpool_with_transaction(dbpool_conn *c, int flags,
                            int (*fn)(dbpool_conn *c, void *arg), void *arg);

int dbpool_ping(dbpool_conn *c);

/* ---- Session pinning (doc/protocol.md, "Pinned sessions") ----
 * dbpool_pin: keep one server connection for this session across
 * transactions (advisory locks, temporary tables, session SETs, LISTEN)
 * until dbpool_unpin or the session ends; then the daemon resets the
 * connection (rollback, unlock, drop temporary state) before anyone else
 * gets it. Call it outside a transaction. Fails with DBPOOL_E_LIMIT
 * (SQLSTATE 53400; the session goes on) when the pool has maxPinned pins already,
 * DBPOOL_E_POOL_TIMEOUT / DBPOOL_E_UNAVAILABLE like a statement waiting for
 * a server. Pinning a pinned session and unpinning an unpinned one do
 * nothing. dbpool_unpin inside a transaction fails (DBPOOL_E_TX_STATE).
 * A lost server connection ends the pin: that request fails with
 * DBPOOL_E_CONN_LOST and the session continues unpinned. */
int dbpool_pin(dbpool_conn *c);
int dbpool_unpin(dbpool_conn *c);
/* Whether the session is pinned, as the daemon last said (READY/ERROR). */
int dbpool_is_pinned(const dbpool_conn *c);

/* Ask the daemon to cancel the request running on c (a long query, or one
 * still waiting for a server connection). That request then fails with
 * DBPOOL_E_CANCELED (or succeeds, if it finished first). The one call that
 * may be made from another thread while a thread is blocked in a call on c;
 * it does not touch the connection's error state and never blocks. Returns
 * 0 when sent, -1 when it could not be (session closed, or the daemon is not
 * reading: its socket buffer is full). In non-blocking use it cancels the
 * last request sent (the daemon reaches the CANCEL when that one runs;
 * those before it run to their end) and returns -1 until dbpool_flush has
 * written every queued request. */
int dbpool_cancel(const dbpool_conn *c);

/* ---- Non-blocking use (doc/libdbpool.md, "Non-blocking use") ----
 * For programs with their own event loop (libevent, libuv, epoll, poll):
 * the libpq pattern. Nothing below ever blocks.
 *
 * Connecting: dbpool_connect_start returns a connection whose socket is
 * non-blocking (NULL only for a missing pool name, bad options or no
 * memory, with *err filled). Call dbpool_connect_poll(c) at once, then
 * whenever the socket is ready for what it last asked: READING / WRITING
 * (wait for readable / writable), OK (connected: send requests), FAILED
 * (dbpool_last_error says why — a missing socket, an unknown pool, the
 * connect timeout; close it). The connect timeout (options, else
 * $DBPOOL_CONNECT_TIMEOUT, else 10 s) holds: dbpool_poll_timeout(c) is the
 * time left, for the loop's own timer; connect_poll fails with
 * DBPOOL_E_TIMEOUT once it has passed. */
typedef enum dbpool_poll_status {
    DBPOOL_POLL_FAILED = 0,
    DBPOOL_POLL_READING = 1,   /* wait until dbpool_socket(c) is readable */
    DBPOOL_POLL_WRITING = 2,   /* wait until dbpool_socket(c) is writable */
    DBPOOL_POLL_OK = 3,        /* connected */
} dbpool_poll_status;

dbpool_conn *dbpool_connect_start(const char *socket_path, const char *pool,
                                  const char *client_name, dbpool_error *err);
dbpool_conn *dbpool_connect_start_opts(const char *socket_path, const char *pool,
                                       const char *client_name, const dbpool_options *opts,
                                       dbpool_error *err);
dbpool_poll_status dbpool_connect_poll(dbpool_conn *c);
/* The connection's socket for the event loop, or -1 when there is none
 * (connect failed, session closed). Do not read, write or close it. */
int dbpool_socket(const dbpool_conn *c);
/* While connecting: milliseconds until the connect timeout expires (0 when
 * it has: call dbpool_connect_poll), -1 when there is no limit or the
 * connection is no longer connecting. For poll(2) or an event timer. */
int dbpool_poll_timeout(const dbpool_conn *c);

/* Sending. Each dbpool_send_* queues one request and returns 0, or -1 with
 * nothing queued (dbpool_last_error: DBPOOL_E_USAGE for bad arguments or a
 * call out of order, the session goes on; DBPOOL_E_IO when it is closed).
 * Several requests may be queued before any result is read (pipelining):
 * the daemon answers them in order. Queuing writes nothing until 64 KiB are
 * waiting: call dbpool_flush after sending; it returns 0 when everything is
 * written, 1 when the socket is full (wait until writable, call it again),
 * -1 when the session failed (every outstanding request then gets an error
 * result). The arguments are copied: they may be freed after the call.
 * While dbpool_flush returns 1, keep consuming input when the socket is
 * readable: the daemon stops reading requests while its answers are not
 * read. The blocking calls (dbpool_query, dbpool_begin, ...) fail with
 * DBPOOL_E_USAGE while requests sent here are outstanding, and work again
 * once dbpool_pending(c) is 0. The request timeout (dbpool_set_timeout)
 * applies to blocking calls only: an event loop times its requests itself
 * and calls dbpool_cancel. */
int dbpool_send_query(dbpool_conn *c, const char *sql, const dbpool_value *params, size_t nparams);
int dbpool_send_batch(dbpool_conn *c, const dbpool_stmt *stmts, size_t n, int atomic);
int dbpool_send_begin(dbpool_conn *c, int flags);
int dbpool_send_commit(dbpool_conn *c);
int dbpool_send_rollback(dbpool_conn *c);
int dbpool_send_ping(dbpool_conn *c);
int dbpool_send_pin(dbpool_conn *c);
int dbpool_send_unpin(dbpool_conn *c);
int dbpool_flush(dbpool_conn *c);
/* Row-at-a-time results for the request just sent (a query or a batch:
 * call it right after its dbpool_send_*): each row then comes as its own
 * DBPOOL_RESULT_ROW result, so memory stays bounded whatever the result's
 * size. 0, or -1 (DBPOOL_E_USAGE) when the last request sent is not a
 * query or batch, or its answer has started to arrive. */
int dbpool_set_single_row_mode(dbpool_conn *c);

/* Receiving. dbpool_consume_input reads what the socket has and decodes it,
 * never blocking: call it when the socket is readable. Returns 0 when the
 * socket has nothing more for now (wait until readable again), 1 when it
 * stopped reading because 256 KiB of decoded results wait to be taken (take
 * them with dbpool_get_result, then call it again without waiting: needed
 * with edge-triggered events), -1 when the session failed (closed; every
 * outstanding request then gets an error result, see below).
 * dbpool_is_busy: 1 when a request is outstanding but its next result has
 * not arrived whole yet (dbpool_get_result would return NULL), else 0.
 *
 * dbpool_get_result returns the next result, in the order the requests
 * were sent, or NULL when there is none to return now: no request is
 * outstanding (dbpool_pending(c) == 0), or the next result has not arrived
 * whole (dbpool_is_busy(c) == 1: wait for readable, consume input, call
 * again). Every request sent gets exactly one *final* result: OK or ERROR.
 * Before it come, in single-row mode, one ROW result per row, and for a
 * batch one STATEMENT result per statement that completed. A result is
 * buffered whole (all of a query's rows) before it is returned: use
 * single-row mode for large results. When the session fails or the daemon
 * goes away, each outstanding request gets an ERROR result (DBPOOL_E_IO
 * and the like; whether an unanswered request ran is unknown).
 * Ownership: each result belongs to the caller (dbpool_result_free); its
 * data stays valid until then. */
int dbpool_consume_input(dbpool_conn *c);
int dbpool_is_busy(dbpool_conn *c);
dbpool_result *dbpool_get_result(dbpool_conn *c);
/* Requests sent whose final result dbpool_get_result has not returned yet. */
size_t dbpool_pending(const dbpool_conn *c);

typedef enum dbpool_result_status {
    DBPOOL_RESULT_OK = 0,          /* final: the request succeeded (a query's rows, counters) */
    DBPOOL_RESULT_ERROR = 1,       /* final: it failed (dbpool_result_error); rows that came
                                      before the error are kept */
    DBPOOL_RESULT_ROW = 2,         /* single-row mode: one row, with the columns */
    DBPOOL_RESULT_STATEMENT = 3,   /* one statement of a batch completed (rows, counters) */
} dbpool_result_status;

/* A buffered result (dbpool_query, dbpool_batch) is DBPOOL_RESULT_OK. */
dbpool_result_status dbpool_result_status_of(const dbpool_result *r);
/* The error of an ERROR result; for other results an error with code
 * DBPOOL_OK. Valid as long as r. */
const dbpool_error *dbpool_result_error(const dbpool_result *r);
/* The session's transaction state after the request (final results). */
dbpool_txstate dbpool_result_txstate(const dbpool_result *r);
/* Batches: the statement's index (STATEMENT and ROW results, and each of
 * dbpool_batch's results), or the failing statement's (ERROR result; -1
 * when not tied to one statement). -1 for other requests. */
int dbpool_result_stmt_index(const dbpool_result *r);

const char *dbpool_code_name(int code);
const char *dbpool_type_name(dbpool_type t);

#ifdef __cplusplus
}
#endif
#endif
