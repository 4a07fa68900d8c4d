/*
 * internal.h — libdbpool's private header: the connection and result
 * structs and the functions the library's files share. Not installed.
 *
 * The library is split by concern: connect.c (socket, handshake, options),
 * requests.c (statements, batches, transactions, cancel), wire.c (sending
 * requests, reading and sequencing response frames), result.c (buffered
 * results, names), errors.c (the connection's last error, the daemon's
 * ERROR frames), deadline.c (timeouts); the non-blocking API is
 * async_connect.c (connect_start/poll), async_send.c (queuing requests,
 * flushing) and async_receive.c (reading and decoding into results,
 * get_result). Framing itself is
 * src/common/proto.c, shared with the daemon.
 */
#ifndef DBPOOL_LIB_INTERNAL_H
#define DBPOOL_LIB_INTERNAL_H

#include "dbpool.h"
#include "common/duration.h"
#include "common/proto.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK (64u * 1024)         /* bytes asked of each read */
#define BUF_KEEP (1024u * 1024)         /* idle buffers above this are shrunk */
#define ARENA_BLOCK (64u * 1024)        /* result arena block size */
#define NO_INDEX SIZE_MAX               /* *failed_index when not statement-specific */
#define GRACE_MAX_MS 1000u              /* longest wait for a response after a timeout's CANCEL */
#define ENV_CONNECT_TIMEOUT "DBPOOL_CONNECT_TIMEOUT"
#define ENV_REQUEST_TIMEOUT "DBPOOL_TIMEOUT"

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

/* Where the user-visible streaming statement stands. */
enum stream_state {
    STREAM_NONE,        /* no statement started since the last request */
    STREAM_ACTIVE,      /* QUERY sent; rows may still arrive */
    STREAM_DONE,        /* completed (READY received) */
    STREAM_FAILED,      /* ended with an error */
};

/* What the response being read belongs to. */
enum resp_mode { MODE_QUERY, MODE_BATCH };

/* Events produced by lib_next_event() while reading a QUERY/BATCH response. */
enum event {
    EV_FAIL = -1,       /* ERROR frame or local failure; c->err is set */
    EV_DONE = 0,        /* READY */
    EV_ROW = 1,         /* a ROW, decoded into c->row (zero copy) */
    EV_COLUMNS = 2,     /* COLUMNS, decoded into c->cols */
    EV_STMT = 3,        /* STMT_DONE; c->affected / c->last_id set */
};

/* Where a connection started with dbpool_connect_start stands. */
enum conn_phase {
    PHASE_READY = 0,    /* connected (always, for dbpool_connect) */
    PHASE_CONNECTING,   /* connect_start: connect(2) to do or to report */
    PHASE_HELLO,        /* HELLO queued or sent, HELLO_OK awaited */
    PHASE_FAILED,       /* connect failed: c->err says why */
};

/* A request sent with dbpool_send_*, awaiting its final result. */
struct async_req {
    uint8_t type;       /* its frame type */
    bool single_row;    /* dbpool_set_single_row_mode */
};

#define ASYNC_QUEUE_HIGH (256u * 1024)  /* decoded results waiting: consume_input stops reading */
#define ASYNC_SEND_AT (64u * 1024)      /* queued request bytes that are written at once */

struct dbpool_conn {
    int fd;                     /* -1 once closed */
    dbpool_error err;           /* last failure */
    int32_t err_index;          /* stmt_index of the last ERROR frame, or -1 */
    dbpool_txstate tx;
    char *backend;              /* owned; from HELLO_OK */
    uint32_t max_frame;         /* the daemon's limits, from HELLO_OK */
    uint16_t max_params;
    uint16_t max_batch;         /* statements per BATCH; 0: not announced (older daemon) */
    bool shutdown_seen;         /* an E_SHUTDOWN error was received */
    bool pinned;                /* PIN answered READY, and no UNPIN or lost server since */

    /* timeouts, in ms (0: none), and the deadline of the call in progress */
    uint64_t connect_timeout;
    uint64_t request_timeout;
    uint64_t limit;             /* the timeout the current deadline came from */
    uint64_t deadline;          /* CLOCK_MONOTONIC ms; 0: none */
    const char *connect_path;   /* the socket, while connecting; NULL after */
    uint8_t req_type;           /* frame type of the request in progress (messages) */
    bool timeout_cancel;        /* this request timed out and a CANCEL was sent */

    struct pbuf out;            /* request being sent; owned */

    uint8_t *rbuf;              /* receive buffer; owned */
    size_t rcap;
    size_t rstart;              /* first unconsumed byte */
    size_t rend;                /* end of received bytes */

    /* the response being read */
    enum stream_state stream;
    enum resp_mode mode;
    bool have_columns;          /* COLUMNS seen for the current statement */
    bool stmt_done;             /* STMT_DONE seen for the current statement */
    dbpool_column *cols;        /* one malloc block: array + strings; owned */
    size_t ncols;
    dbpool_value *row;          /* current row's values; owned array */
    size_t rowcap;
    char *scratch;              /* NUL-terminated TEXT copies of the row; owned */
    size_t scratchcap;
    int64_t affected;
    int64_t last_id;

    /* non-blocking use (async_*.c) */
    enum conn_phase phase;
    size_t out_sent;            /* bytes of out already written */
    struct async_req *reqs;     /* ring of requests awaiting their final result; owned */
    size_t reqs_cap, reqs_head, reqs_n;
    bool head_started;          /* a frame of the head request was decoded */
    int32_t batch_index;        /* statements of the head batch completed */
    dbpool_result *building;    /* the head request's result in the making; owned */
    dbpool_result *ready_head;  /* decoded results not yet taken, in order; owned */
    dbpool_result *ready_tail;
    size_t ready_bytes;         /* frame bytes behind them (ASYNC_QUEUE_HIGH) */
    size_t pending;             /* requests sent whose final result was not taken */
};

/* A chunk of result memory; blocks never move once allocated. */
struct arena_block {
    struct arena_block *next;
    size_t used;
    size_t cap;
    char data[];
};

struct dbpool_result {
    dbpool_result_status status;
    dbpool_error *err;          /* ERROR results; owned (NULL otherwise) */
    int32_t stmt_index;         /* dbpool_result_stmt_index */
    dbpool_txstate tx;          /* after the request (final results) */
    size_t bytes;               /* frame bytes decoded into it (async queue bound) */
    dbpool_result *next;        /* the connection's ready queue */
    dbpool_column *cols;        /* one malloc block (columns_clone); owned */
    size_t ncols;
    size_t nrows;
    dbpool_value *vals;         /* nrows * ncols, row-major; owned */
    size_t valcap;
    struct arena_block *arena;  /* TEXT/BLOB bytes the values point at; owned */
    int64_t affected;
    int64_t last_id;
};

extern const dbpool_error lib_no_conn_error;

/* errors.c */
void lib_drop_connection(dbpool_conn *c);
int lib_eof_error(dbpool_conn *c);
int lib_fail(dbpool_conn *c, int code, const char *fmt, ...) PRINTF_LIKE(3, 4);
int lib_fail_closed(dbpool_conn *c, int code, const char *fmt, ...) PRINTF_LIKE(3, 4);
int lib_fail_oom(dbpool_conn *c);
int lib_malformed_frame(dbpool_conn *c, uint8_t type);
void lib_set_error(dbpool_error *e, int code, const char *fmt, ...) PRINTF_LIKE(3, 4);
int lib_unexpected_frame(dbpool_conn *c, uint8_t type);

/* deadline.c */
void lib_arm_deadline(dbpool_conn *c, uint64_t limit);
int lib_await_fd(int fd, short events, uint64_t deadline);
int lib_connect_timed_out(dbpool_conn *c, bool handshake);
int lib_on_deadline(dbpool_conn *c);
int lib_poll_ms(uint64_t deadline);
void lib_report_cancelled_timeout(dbpool_conn *c);
int lib_send_timed_out(dbpool_conn *c, bool partly_sent);

/* wire.c */
int lib_take_error(dbpool_conn *c, const uint8_t *p, size_t n);
bool lib_store_error(dbpool_conn *c, const uint8_t *p, size_t n);
int lib_begin_request(dbpool_conn *c, uint8_t type);
int lib_check_params(dbpool_conn *c, const dbpool_value *params, size_t nparams);
int lib_put_query(dbpool_conn *c, const char *sql, const dbpool_value *params, size_t nparams);
int lib_check_batch(dbpool_conn *c, const dbpool_stmt *stmts, size_t n);
int lib_async_in_use(dbpool_conn *c);
dbpool_column *lib_columns_clone(const dbpool_column *src, size_t n);
int lib_completion(dbpool_conn *c, uint8_t type, const uint8_t *p, size_t n);
int lib_drain(dbpool_conn *c);
enum event lib_next_event(dbpool_conn *c);
enum event lib_query_event(dbpool_conn *c);
int lib_read_frame(dbpool_conn *c, uint8_t *type, const uint8_t **payload, size_t *len);
int lib_send_request(dbpool_conn *c);
void lib_stmt_reset(dbpool_conn *c);
int lib_terminate_texts(dbpool_conn *c);

int lib_frame_event(dbpool_conn *c, uint8_t type, const uint8_t *p, size_t n);
int lib_take_frame(dbpool_conn *c, uint8_t *type, const uint8_t **payload, size_t *len);
int lib_make_room(dbpool_conn *c, size_t need);

/* result.c */
dbpool_result *lib_result_new(dbpool_result_status status);
int lib_result_add_row(dbpool_result *r, const dbpool_value *row, size_t ncols);
int lib_result_finish(dbpool_result *r, const dbpool_conn *c);

/* connect.c */
int lib_handshake(dbpool_conn *c, const char *pool, const char *client_name);
int lib_decode_hello_ok(dbpool_conn *c, const uint8_t *p, size_t n);
dbpool_conn *lib_conn_prepare(const char **path, const char *pool, const dbpool_options *opts,
                              dbpool_error *err);
void lib_conn_free(dbpool_conn *c);
int lib_unix_address(dbpool_conn *c, const char *path, struct sockaddr_un *sa);
const char *lib_connect_hint(int errnum);

/* async_send.c, async_receive.c */
void lib_async_free(dbpool_conn *c);
void lib_async_fail_outstanding(dbpool_conn *c);
int lib_async_read(dbpool_conn *c);
int lib_async_write(dbpool_conn *c);

#endif
