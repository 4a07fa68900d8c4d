/*
 * dbpool.c — libdbpool: the blocking C client for dbpoold (include/dbpool.h).
 *
 * A dbpool_conn owns one AF_UNIX stream socket to the daemon and speaks
 * protocol v1. All framing goes through src/common/proto.c (the one wire-format
 * implementation shared with the daemon); this file only sequences frames:
 *
 *   connect:    HELLO            -> HELLO_OK | ERROR (the daemon then closes)
 *   query:      QUERY            -> [COLUMNS ROW*] STMT_DONE READY | ERROR
 *   batch:      BATCH            -> ([COLUMNS ROW*] STMT_DONE)* READY | ERROR
 *   begin etc.: BEGIN/COMMIT/ROLLBACK/PING -> READY | ERROR
 *   close:      TERMINATE (best effort), then close(2)
 *
 * An ERROR may arrive at any point of a response and ends the request.
 * READY and ERROR both carry the session's transaction state.
 *
 * Receiving: one buffer per connection, read in 64 KiB chunks and grown up
 * to the daemon's max frame size (from HELLO_OK), so many small ROW frames
 * are parsed per read(2). A decoded frame points into that buffer and stays
 * valid until the next frame is read — which is what makes row values valid
 * "until the next call on the connection". TEXT values are copied into a
 * per-connection scratch area so they can be NUL-terminated.
 *
 * Streaming: dbpool_query_start sends QUERY and waits for the statement's
 * first answer (COLUMNS, completion or ERROR), so SQL errors are reported by
 * dbpool_query_start itself and dbpool_columns() is valid as soon as it
 * returns 0. A statement still streaming when another request is made is
 * drained first (its remaining rows are discarded).
 *
 * Failures: request errors (an ERROR frame) leave the session usable, except
 * PROTOCOL / VERSION / UNKNOWN_POOL / NOT_ALLOWED after which the daemon
 * closes the session (and so do we); after any other ERROR we peek for EOF
 * without blocking, and EOF on the next request closes the session with
 * DBPOOL_E_IO. Malformed or unexpected frames
 * (DBPOOL_E_PROTOCOL), socket errors, EOF and local out-of-memory while
 * receiving (DBPOOL_E_IO) close the connection locally.
 *
 * Timeouts: every wait for the daemon is a poll(2) bounded by the deadline
 * of the call in progress (arm_deadline): the connect timeout for
 * dbpool_connect (connect(2) through SO_SNDTIMEO, then HELLO/HELLO_OK), the
 * request timeout for each later call. Sends are non-blocking too, so a
 * daemon that stops reading cannot block a call either. When a request's
 * deadline passes the call sends CANCEL and keeps reading the response for a
 * grace (the timeout, at most GRACE_MAX_MS): the response then ends as usual
 * and an ERROR CANCELED is reported as DBPOOL_E_TIMEOUT, session usable. If
 * the grace passes too, the stream is out of sync for good: the session is
 * closed with DBPOOL_E_TIMEOUT. Connect timeouts always close.
 *
 * No global mutable state: everything lives in struct dbpool_conn, so
 * different connections may be used from different threads.
 */
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

/* Events produced by next_event() while reading a QUERY/BATCH response. */
enum event {
    EV_FAIL = -1,       /* ERROR frame or local failure; c->err is set */
    EV_DONE = 0,        /* READY */
    EV_ROW = 1,         /* a ROW, decoded into c->row (zero copy) */
    EV_COLUMNS = 2,     /* COLUMNS, decoded into c->cols */
    EV_STMT = 3,        /* STMT_DONE; c->affected / c->last_id set */
};

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
};

/* A chunk of result memory; blocks never move once allocated. */
struct arena_block {
    struct arena_block *next;
    size_t used;
    size_t cap;
    char data[];
};

struct dbpool_result {
    dbpool_column *cols;        /* one malloc block (columns_clone); owned */
    size_t ncols;
    size_t nrows;
    dbpool_value *vals;         /* nrows * ncols, row-major; owned */
    size_t valcap;
    struct arena_block *arena;  /* TEXT/BLOB bytes the values point at; owned */
    int64_t affected;
    int64_t last_id;
};

static const dbpool_error no_conn_error = { DBPOOL_E_USAGE, "", "no connection (NULL dbpool_conn)" };

/* ------------------------------------------------------------ errors */

static void verror(dbpool_error *e, int code, const char *fmt, va_list ap) PRINTF_LIKE(3, 0);
static void verror(dbpool_error *e, int code, const char *fmt, va_list ap)
{
    e->code = code;
    e->sqlstate[0] = '\0';
    vsnprintf(e->message, sizeof e->message, fmt, ap);
}

static void set_error(dbpool_error *e, int code, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void set_error(dbpool_error *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(e, code, fmt, ap);
    va_end(ap);
}

/* Records a failure that leaves the session usable. Returns -1. */
static int fail(dbpool_conn *c, int code, const char *fmt, ...) PRINTF_LIKE(3, 4);
static int fail(dbpool_conn *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(&c->err, code, fmt, ap);
    va_end(ap);
    c->err_index = -1;
    return -1;
}

static void drop_connection(dbpool_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (c->stream == STREAM_ACTIVE)
        c->stream = STREAM_FAILED;
}

/* Records a failure that ends the session and closes the socket. Returns -1. */
static int fail_closed(dbpool_conn *c, int code, const char *fmt, ...) PRINTF_LIKE(3, 4);
static int fail_closed(dbpool_conn *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(&c->err, code, fmt, ap);
    va_end(ap);
    c->err_index = -1;
    drop_connection(c);
    return -1;
}

static int fail_oom(dbpool_conn *c)
{
    return fail_closed(c, DBPOOL_E_IO, "out of memory in libdbpool; the session was closed");
}

static int unexpected_frame(dbpool_conn *c, uint8_t type)
{
    return fail_closed(c, DBPOOL_E_PROTOCOL,
                       "protocol error: unexpected %s frame (0x%02x) from dbpoold; session closed",
                       proto_type_name(type), type);
}

static int malformed_frame(dbpool_conn *c, uint8_t type)
{
    return fail_closed(c, DBPOOL_E_PROTOCOL,
                       "protocol error: malformed %s frame from dbpoold; session closed",
                       proto_type_name(type));
}

static int eof_error(dbpool_conn *c)
{
    if (c->shutdown_seen)
        return fail_closed(c, DBPOOL_E_IO, "dbpoold closed the session: it is shutting down");
    return fail_closed(c, DBPOOL_E_IO,
                       "dbpoold closed the session (was it stopped or restarted? reconnect)");
}

/* ------------------------------------------------------------ timeouts */

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A duration for messages: "250ms", "10s", "1.500s". */
static const char *fmt_ms(uint64_t ms, char *buf, size_t cap)
{
    if (ms < 1000)
        snprintf(buf, cap, "%llums", (unsigned long long)ms);
    else if (ms % 1000 == 0)
        snprintf(buf, cap, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(buf, cap, "%llu.%03llus", (unsigned long long)(ms / 1000),
                 (unsigned long long)(ms % 1000));
    return buf;
}

/* Starts the clock of a call: the daemon has limit ms (0: no limit, and
 * no clock read). */
static void arm_deadline(dbpool_conn *c, uint64_t limit)
{
    uint64_t now;

    c->limit = limit;
    c->deadline = 0;
    if (limit == 0)
        return;
    now = now_ms();
    c->deadline = limit > UINT64_MAX - now ? UINT64_MAX : now + limit;
}

/* Milliseconds to the deadline for poll(2): -1 without one, 0 once passed. */
static int poll_ms(uint64_t deadline)
{
    uint64_t now;

    if (deadline == 0)
        return -1;
    now = now_ms();
    if (now >= deadline)
        return 0;
    return deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);
}

/* Waits until fd is ready for events (or has an error or hang-up, which the
 * following recv/send reports) before the deadline. poll(2) rather than a
 * blocking recv(2) also because a thread blocked in recv on a Unix socket is
 * woken, for nothing, each time the daemon reads what this side sent (the
 * kernel's write-space wakeup does not say which event it is for), while
 * poll only wakes for the events asked. Returns 1 ready, 0 the deadline
 * passed, -1 an error (errno set). */
static int await_fd(int fd, short events, uint64_t deadline)
{
    struct pollfd pfd = { .fd = fd, .events = events };

    for (;;) {
        int ms = poll_ms(deadline), r = poll(&pfd, 1, ms);
        if (r > 0)
            return 1;
        if (r == 0 && ms == 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

/* Wait after a timeout's CANCEL for the request to end: the timeout itself,
 * at most GRACE_MAX_MS (a hung daemon costs at most twice the timeout). */
static uint64_t grace_ms(uint64_t limit)
{
    return limit < GRACE_MAX_MS ? limit : GRACE_MAX_MS;
}

/* What a closed session means for the request that timed out. */
static const char *lost_work_hint(const dbpool_conn *c)
{
    if (c->req_type == PT_COMMIT)
        return "; whether the transaction committed is unknown: check before retrying it";
    if (c->tx != DBPOOL_TX_IDLE)
        return "; the open transaction is lost (dbpoold rolls it back)";
    return "";
}

static int connect_timed_out(dbpool_conn *c, bool handshake)
{
    char lim[32];
    const char *path = c->connect_path != NULL ? c->connect_path : "its socket";

    fmt_ms(c->limit, lim, sizeof lim);
    if (!handshake)
        return fail_closed(c, DBPOOL_E_TIMEOUT,
                           "cannot connect to %s within %s (connect timeout): dbpoold is not "
                           "accepting connections (hung or overloaded?); check it, or raise the "
                           "limit with $" ENV_CONNECT_TIMEOUT " / dbpool --connect-timeout",
                           path, lim);
    return fail_closed(c, DBPOOL_E_TIMEOUT,
                       "dbpoold at %s accepted the connection but did not answer the handshake "
                       "within %s (connect timeout); is it hung or overloaded? Check it, or raise "
                       "the limit with $" ENV_CONNECT_TIMEOUT " / dbpool --connect-timeout",
                       path, lim);
}

/* The request's deadline passed and its grace too (or no CANCEL could be
 * sent): the response stream is out of sync for good. */
static int request_timed_out(dbpool_conn *c)
{
    char lim[32];

    fmt_ms(c->limit, lim, sizeof lim);
    return fail_closed(c, DBPOOL_E_TIMEOUT,
                       "dbpoold did not answer the %s within %s (request timeout) nor end it "
                       "after a cancel; the session was closed%s. Is dbpoold hung or overloaded? "
                       "Reconnect; if the statement needs longer, raise the timeout "
                       "(dbpool_set_timeout, $" ENV_REQUEST_TIMEOUT ", dbpool --timeout)",
                       proto_type_name(c->req_type), lim, lost_work_hint(c));
}

/* An ERROR CANCELED ended a request this call cancelled for its timeout:
 * report the timeout (keeping SQLSTATE 57014); the session is in sync. */
static void report_cancelled_timeout(dbpool_conn *c)
{
    char lim[32];
    const char *tx = c->tx == DBPOOL_TX_FAILED ? "; the transaction failed: roll it back"
                     : c->tx == DBPOOL_TX_ACTIVE ? "; still inside the transaction" : "";

    c->err.code = DBPOOL_E_TIMEOUT;
    snprintf(c->err.message, sizeof c->err.message,
             "the %s did not complete within %s (request timeout) and was cancelled; the "
             "session is still usable%s. If it needs longer, raise the timeout "
             "(dbpool_set_timeout, $" ENV_REQUEST_TIMEOUT ", dbpool --timeout)",
             proto_type_name(c->req_type), fmt_ms(c->limit, lim, sizeof lim), tx);
}

/* The call's deadline passed while waiting for the daemon. While
 * connecting, or when this request was already cancelled: fail and close.
 * Else send CANCEL and give the response a grace to end. Returns 0 to go on
 * reading, -1 when the session was closed. */
static int on_deadline(dbpool_conn *c)
{
    if (c->connect_path != NULL)
        return connect_timed_out(c, true);
    if (c->timeout_cancel || dbpool_cancel(c) < 0)
        return request_timed_out(c);
    c->timeout_cancel = true;
    c->deadline = now_ms() + grace_ms(c->limit);
    return 0;
}

/* The deadline passed while sending: unsendable is the daemon not reading.
 * Nothing of the request sent: the session stays in sync and usable. */
static int send_timed_out(dbpool_conn *c, bool partly_sent)
{
    char lim[32];

    if (c->connect_path != NULL)
        return connect_timed_out(c, true);
    fmt_ms(c->limit, lim, sizeof lim);
    if (!partly_sent)
        return fail(c, DBPOOL_E_TIMEOUT,
                    "cannot send the %s: dbpoold has not read from this session for %s (request "
                    "timeout); is it hung or overloaded? Nothing was sent; the session is "
                    "still usable", proto_type_name(c->req_type), lim);
    return fail_closed(c, DBPOOL_E_TIMEOUT,
                       "dbpoold stopped reading the %s for %s (request timeout), so only part of "
                       "it was sent; the session was closed%s. Is dbpoold hung or overloaded? "
                       "Reconnect", proto_type_name(c->req_type), lim, lost_work_hint(c));
}

/* ------------------------------------------------------------ daemon errors */

/* Codes after which the daemon always closes the session. After other
 * errors it may close too (SHUTDOWN, TX_TIMEOUT, LIMIT, INTERNAL in
 * doc/protocol.md); check_peer_closed notices that when it already has. */
static bool code_closes_session(int code)
{
    /* doc/protocol.md, "Error codes": these are always followed by close. */
    return code == DBPOOL_E_PROTOCOL || code == DBPOOL_E_VERSION ||
           code == DBPOOL_E_UNKNOWN_POOL || code == DBPOOL_E_NOT_ALLOWED ||
           code == DBPOOL_E_LIMIT || code == DBPOOL_E_INTERNAL ||
           code == DBPOOL_E_TX_TIMEOUT || code == DBPOOL_E_SHUTDOWN;
}

static void copy_str(char *dst, size_t cap, const struct proto_str *s)
{
    size_t n = s->len < cap - 1 ? s->len : cap - 1;
    if (n > 0)
        memcpy(dst, s->p, n);
    dst[n] = '\0';
}

/* If the daemon already closed its end, close ours too (used after an
 * ERROR that may be followed by the daemon closing). */
static void check_peer_closed(dbpool_conn *c)
{
    char b;
    ssize_t r;

    if (c->rend > c->rstart)
        return;                         /* more frames pending: still talking */
    do
        r = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        drop_connection(c);
}

/* Decodes an ERROR frame into c->err (no other effect). */
static bool store_error(dbpool_conn *c, const uint8_t *p, size_t n)
{
    struct proto_error e;

    if (!proto_get_error(p, n, &e))
        return false;
    c->err.code = e.code;
    copy_str(c->err.sqlstate, sizeof c->err.sqlstate, &e.sqlstate);
    copy_str(c->err.message, sizeof c->err.message, &e.message);
    c->err_index = e.stmt_index;
    c->tx = (dbpool_txstate)e.txstate;
    if (e.code == DBPOOL_E_SHUTDOWN)
        c->shutdown_seen = true;
    return true;
}

/* Handles an ERROR frame ending a request. Returns -1 (it is a failure). */
static int take_error(dbpool_conn *c, const uint8_t *p, size_t n)
{
    if (!store_error(c, p, n))
        return malformed_frame(c, PT_ERROR);
    if (c->timeout_cancel && c->err.code == DBPOOL_E_CANCELED)
        report_cancelled_timeout(c);
    if (code_closes_session(c->err.code))
        drop_connection(c);
    else
        check_peer_closed(c);           /* e.g. SHUTDOWN, TX_TIMEOUT may close */
    return -1;
}

/* ------------------------------------------------------------ socket I/O */

/* Tries to pick up an ERROR frame the daemon sent before closing (after a
 * failed send). Returns true when c->err now holds it. */
static bool salvage_error(dbpool_conn *c)
{
    for (;;) {
        uint8_t type;
        uint32_t plen;
        size_t avail = c->rend - c->rstart;
        int h = proto_peek_header(c->rbuf + c->rstart, avail, c->max_frame, &type, &plen);

        if (h < 0)
            return false;
        if (h > 0 && avail >= PROTO_HEADER_SIZE + (size_t)plen) {
            const uint8_t *p = c->rbuf + c->rstart + PROTO_HEADER_SIZE;
            c->rstart += PROTO_HEADER_SIZE + (size_t)plen;
            if (type == PT_ERROR)
                return store_error(c, p, plen);
            continue;
        }
        if (c->rcap - c->rend == 0)
            return false;
        ssize_t r = recv(c->fd, c->rbuf + c->rend, c->rcap - c->rend, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        c->rend += (size_t)r;
    }
}

static int send_failed(dbpool_conn *c, int errnum)
{
    if (errnum == EPIPE || errnum == ECONNRESET) {
        if (salvage_error(c)) {
            drop_connection(c);
            return -1;
        }
        return eof_error(c);
    }
    return fail_closed(c, DBPOOL_E_IO, "cannot send to dbpoold: %s; session closed",
                       strerror(errnum));
}

/* Writes all of p before the call's deadline, retrying on EINTR and
 * partial writes; waits with poll when the socket buffer is full. */
static int send_all(dbpool_conn *c, const uint8_t *p, size_t n)
{
    size_t total = n;

    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int r = await_fd(c->fd, POLLOUT, c->deadline);
            if (r == 0)
                return send_timed_out(c, n < total);
            if (r < 0)
                return send_failed(c, errno);
            continue;
        }
        if (w < 0)
            return send_failed(c, errno);
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Compacts the receive buffer and makes room for at least need bytes of
 * frame data plus a read chunk. */
static int make_room(dbpool_conn *c, size_t need)
{
    size_t pending = c->rend - c->rstart, want;

    if (c->rstart > 0) {
        memmove(c->rbuf, c->rbuf + c->rstart, pending);
        c->rstart = 0;
        c->rend = pending;
    }
    want = c->rend + READ_CHUNK;
    if (want < need)
        want = need;
    if (c->rcap < want) {
        uint8_t *nb = realloc(c->rbuf, want);
        if (nb == NULL)
            return fail_oom(c);
        c->rbuf = nb;
        c->rcap = want;
    }
    return 0;
}

/* Reads the next complete frame. *payload points into the receive buffer
 * and stays valid until the next read_frame on c. */
static int read_frame(dbpool_conn *c, uint8_t *type, const uint8_t **payload, size_t *len)
{
    if (c->fd < 0)
        return fail(c, DBPOOL_E_IO, "the session with dbpoold is closed; reconnect");
    for (;;) {
        uint32_t plen = 0;
        size_t avail = c->rend - c->rstart;
        int h = proto_peek_header(c->rbuf + c->rstart, avail, c->max_frame, type, &plen);

        if (h < 0)
            return fail_closed(c, DBPOOL_E_PROTOCOL,
                               "protocol error: dbpoold sent a frame with an invalid length; session closed");
        if (h > 0 && avail >= PROTO_HEADER_SIZE + (size_t)plen) {
            *payload = c->rbuf + c->rstart + PROTO_HEADER_SIZE;
            *len = plen;
            c->rstart += PROTO_HEADER_SIZE + (size_t)plen;
            return 0;
        }
        if (make_room(c, h > 0 ? PROTO_HEADER_SIZE + (size_t)plen : PROTO_HEADER_SIZE) < 0)
            return -1;
        ssize_t r = await_fd(c->fd, POLLIN, c->deadline);
        if (r == 0) {
            if (on_deadline(c) < 0)
                return -1;
            continue;
        }
        if (r > 0)
            r = recv(c->fd, c->rbuf + c->rend, c->rcap - c->rend, MSG_DONTWAIT);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r == 0)
            return eof_error(c);
        if (r < 0)
            return fail_closed(c, DBPOOL_E_IO, "cannot read from dbpoold: %s; session closed",
                               strerror(errno));
        c->rend += (size_t)r;
    }
}

/* Sends the request encoded in c->out after checking it against the
 * daemon's frame limit. */
static int send_request(dbpool_conn *c)
{
    int rc;

    if (c->out.oom)
        return fail(c, DBPOOL_E_USAGE,
                    "cannot encode the request: out of memory or a value too large for the protocol");
    if (c->out.len - 4 > c->max_frame)
        return fail(c, DBPOOL_E_LIMIT,
                    "request of %zu bytes exceeds dbpoold's frame size limit of %u bytes; "
                    "send smaller statements or values", c->out.len, (unsigned)c->max_frame);
    rc = send_all(c, c->out.data, c->out.len);
    if (c->out.cap > BUF_KEEP) {        /* don't keep a huge request around */
        pbuf_free(&c->out);
        pbuf_init(&c->out);
    }
    return rc;
}

/* ------------------------------------------------------------ decoding */

/* Decodes COLUMNS (proto_get_columns) into one malloc'ed block: the
 * array, then NUL-terminated strings. NULL with *malformed set / unset
 * (= out of memory). */
static dbpool_column *columns_decode(const uint8_t *p, size_t n, size_t *ncols, bool *malformed)
{
    struct proto_column *pc;
    size_t count, strbytes = 0;
    dbpool_column *cols;
    char *s;

    *malformed = !proto_get_columns(p, n, &pc, &count);
    if (*malformed)
        return NULL;
    for (size_t i = 0; i < count; i++)
        strbytes += pc[i].name.len + pc[i].decl_type.len + 2;
    cols = malloc(count * sizeof *cols + strbytes + 1);
    if (cols == NULL) {
        free(pc);
        return NULL;
    }
    s = (char *)(cols + count);
    for (size_t i = 0; i < count; i++) {
        memcpy(s, pc[i].name.p, pc[i].name.len);
        s[pc[i].name.len] = '\0';
        cols[i].name = s;
        s += pc[i].name.len + 1;
        memcpy(s, pc[i].decl_type.p, pc[i].decl_type.len);
        s[pc[i].decl_type.len] = '\0';
        cols[i].decl_type = s;
        s += pc[i].decl_type.len + 1;
    }
    free(pc);
    *ncols = count;
    return cols;
}

/* Copies a column array (with its strings) into one malloc'ed block. */
static dbpool_column *columns_clone(const dbpool_column *src, size_t n)
{
    size_t strbytes = 0;
    dbpool_column *cols;
    char *s;

    for (size_t i = 0; i < n; i++)
        strbytes += strlen(src[i].name) + strlen(src[i].decl_type) + 2;
    cols = malloc(n * sizeof *cols + strbytes + 1);
    if (cols == NULL)
        return NULL;
    s = (char *)(cols + n);
    for (size_t i = 0; i < n; i++) {
        size_t a = strlen(src[i].name) + 1, b = strlen(src[i].decl_type) + 1;
        cols[i].name = memcpy(s, src[i].name, a);
        cols[i].decl_type = memcpy(s + a, src[i].decl_type, b);
        s += a + b;
    }
    return cols;
}

static int decode_columns(dbpool_conn *c, const uint8_t *p, size_t n)
{
    bool malformed;
    size_t ncols = 0;
    dbpool_column *cols = columns_decode(p, n, &ncols, &malformed);

    if (cols == NULL)
        return malformed ? malformed_frame(c, PT_COLUMNS) : fail_oom(c);
    free(c->cols);
    c->cols = cols;
    c->ncols = ncols;
    c->have_columns = true;
    return 0;
}

/* Decodes a ROW (proto_get_row) into c->row; TEXT/BLOB values point into
 * the frame. */
static int decode_row(dbpool_conn *c, const uint8_t *p, size_t n)
{
    if (c->ncols > c->rowcap) {
        dbpool_value *nv = realloc(c->row, c->ncols * sizeof *nv);
        if (nv == NULL)
            return fail_oom(c);
        c->row = nv;
        c->rowcap = c->ncols;
    }
    if (!proto_get_row(p, n, c->ncols, c->row))
        return fail_closed(c, DBPOOL_E_PROTOCOL,
                           "protocol error: malformed ROW (or not the %zu values COLUMNS announced); "
                           "session closed", c->ncols);
    for (size_t i = 0; i < c->ncols; i++)
        if ((c->row[i].type == DBPOOL_TEXT || c->row[i].type == DBPOOL_BLOB) && c->row[i].u.s.ptr == NULL)
            c->row[i].u.s.ptr = "";
    return 0;
}

/* Copies the current row's TEXT values into the scratch area, NUL-terminated. */
static int terminate_texts(dbpool_conn *c)
{
    size_t need = 0, off = 0;

    for (size_t i = 0; i < c->ncols; i++)
        if (c->row[i].type == DBPOOL_TEXT)
            need += c->row[i].u.s.len + 1;
    if (need > c->scratchcap) {
        char *ns = realloc(c->scratch, need);
        if (ns == NULL)
            return fail_oom(c);
        c->scratch = ns;
        c->scratchcap = need;
    }
    for (size_t i = 0; i < c->ncols; i++) {
        dbpool_value *v = &c->row[i];
        if (v->type != DBPOOL_TEXT)
            continue;
        memcpy(c->scratch + off, v->u.s.ptr, v->u.s.len);
        c->scratch[off + v->u.s.len] = '\0';
        v->u.s.ptr = c->scratch + off;
        off += v->u.s.len + 1;
    }
    return 0;
}

static int decode_stmt_done(dbpool_conn *c, const uint8_t *p, size_t n)
{
    if (!proto_get_stmt_done(p, n, &c->affected, &c->last_id))
        return malformed_frame(c, PT_STMT_DONE);
    c->stmt_done = true;
    return 0;
}

static int decode_ready(dbpool_conn *c, const uint8_t *p, size_t n)
{
    char tx;

    if (!proto_get_ready(p, n, &tx))
        return malformed_frame(c, PT_READY);
    c->tx = (dbpool_txstate)tx;
    return 0;
}

/* Handles the frame ending a simple request: READY -> 0, else -1. */
static int completion(dbpool_conn *c, uint8_t type, const uint8_t *p, size_t n)
{
    if (type == PT_READY)
        return decode_ready(c, p, n);
    if (type == PT_ERROR)
        return take_error(c, p, n);
    return unexpected_frame(c, type);
}

/* ------------------------------------------------------------ responses */

/* Forgets the current statement's columns (a new statement begins). */
static void stmt_reset(dbpool_conn *c)
{
    free(c->cols);
    c->cols = NULL;
    c->ncols = 0;
    c->have_columns = false;
    c->stmt_done = false;
}

/* Is a READY acceptable now? QUERY: after STMT_DONE; BATCH: between statements. */
static bool ready_allowed(const dbpool_conn *c)
{
    if (c->mode == MODE_QUERY)
        return c->stmt_done;
    return !c->stmt_done && !c->have_columns;
}

/* Reads one frame of a QUERY/BATCH response and checks it against the
 * sequence [COLUMNS ROW*] STMT_DONE ... READY | ERROR. */
static enum event next_event(dbpool_conn *c)
{
    uint8_t type;
    const uint8_t *p;
    size_t n;

    if (read_frame(c, &type, &p, &n) < 0)
        return EV_FAIL;
    switch (type) {
    case PT_COLUMNS:
        if (c->have_columns || c->stmt_done)
            break;
        return decode_columns(c, p, n) < 0 ? EV_FAIL : EV_COLUMNS;
    case PT_ROW:
        if (!c->have_columns || c->stmt_done)
            break;
        return decode_row(c, p, n) < 0 ? EV_FAIL : EV_ROW;
    case PT_STMT_DONE:
        if (c->stmt_done)
            break;
        return decode_stmt_done(c, p, n) < 0 ? EV_FAIL : EV_STMT;
    case PT_READY:
        if (!ready_allowed(c))
            break;
        return decode_ready(c, p, n) < 0 ? EV_FAIL : EV_DONE;
    case PT_ERROR:
        take_error(c, p, n);
        return EV_FAIL;
    default:
        break;
    }
    unexpected_frame(c, type);
    return EV_FAIL;
}

/* Next row of the streaming statement: EV_ROW, EV_DONE or EV_FAIL. */
static enum event query_event(dbpool_conn *c)
{
    if (c->stream != STREAM_ACTIVE)     /* already completed (or failed) */
        return c->stream == STREAM_DONE ? EV_DONE : EV_FAIL;
    for (;;) {
        enum event ev = next_event(c);
        if (ev == EV_COLUMNS || ev == EV_STMT)
            continue;
        if (ev == EV_DONE)
            c->stream = STREAM_DONE;
        else if (ev == EV_FAIL)
            c->stream = STREAM_FAILED;
        return ev;
    }
}

/* Discards the rest of a streaming statement. Returns 0 if it succeeded. */
static int drain(dbpool_conn *c)
{
    enum event ev;
    while ((ev = query_event(c)) == EV_ROW)
        ;
    return ev == EV_DONE ? 0 : -1;
}

/* Common prologue of every request (type: its frame type): start the
 * call's clock, drain a streaming statement, check the session is open,
 * clear the last error. A drain that used up the call's time fails it. */
static int begin_request(dbpool_conn *c, uint8_t type)
{
    bool was_open = c->fd >= 0;

    arm_deadline(c, c->request_timeout);
    if (c->stream == STREAM_ACTIVE && drain(c) < 0 && c->err.code == DBPOOL_E_TIMEOUT)
        return -1;
    if (c->fd < 0) {
        if (was_open)
            return -1;                  /* drain's error says why */
        return fail(c, DBPOOL_E_IO, "the session with dbpoold is closed; reconnect");
    }
    c->err.code = DBPOOL_OK;
    c->err.sqlstate[0] = '\0';
    c->err.message[0] = '\0';
    c->err_index = -1;
    c->stream = STREAM_NONE;
    c->req_type = type;
    c->timeout_cancel = false;
    if (c->rstart == c->rend && c->rcap > BUF_KEEP) {
        uint8_t *nb = realloc(c->rbuf, READ_CHUNK);
        if (nb != NULL) {
            c->rbuf = nb;
            c->rcap = READ_CHUNK;
        }
        c->rstart = c->rend = 0;
    }
    pbuf_reset(&c->out);
    return 0;
}

/* Checks parameters before they are encoded. */
static int check_params(dbpool_conn *c, const dbpool_value *params, size_t nparams)
{
    if (nparams > 0 && params == NULL)
        return fail(c, DBPOOL_E_USAGE, "nparams is %zu but params is NULL", nparams);
    if (nparams > c->max_params)
        return fail(c, DBPOOL_E_USAGE,
                    "too many parameters: %zu (dbpoold allows at most %u per statement)",
                    nparams, (unsigned)c->max_params);
    for (size_t i = 0; i < nparams; i++) {
        const dbpool_value *v = &params[i];
        if ((unsigned)v->type > DBPOOL_BOOL)
            return fail(c, DBPOOL_E_USAGE, "parameter %zu has an invalid type (%d)",
                        i + 1, (int)v->type);
        if ((v->type == DBPOOL_TEXT || v->type == DBPOOL_BLOB) && v->u.s.ptr == NULL &&
            v->u.s.len > 0)
            return fail(c, DBPOOL_E_USAGE, "parameter %zu is a %s with a NULL pointer",
                        i + 1, dbpool_type_name(v->type));
    }
    return 0;
}

/* ------------------------------------------------------------ results */

static void *arena_alloc(dbpool_result *r, size_t n)
{
    struct arena_block *b = r->arena;

    if (b == NULL || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        b = malloc(sizeof *b + cap);
        if (b == NULL)
            return NULL;
        b->next = r->arena;
        b->used = 0;
        b->cap = cap;
        r->arena = b;
    }
    b->used += n;
    return b->data + b->used - n;
}

/* Appends a row, copying TEXT/BLOB bytes (NUL-terminated) into the arena. */
static int result_add_row(dbpool_result *r, const dbpool_value *row, size_t ncols)
{
    if (ncols > 0 && (r->nrows + 1) * ncols > r->valcap) {
        size_t cap = r->valcap ? r->valcap * 2 : 64 * ncols;
        dbpool_value *nv;
        if (cap < (r->nrows + 1) * ncols || cap > SIZE_MAX / sizeof *nv)
            return -1;
        nv = realloc(r->vals, cap * sizeof *nv);
        if (nv == NULL)
            return -1;
        r->vals = nv;
        r->valcap = cap;
    }
    for (size_t i = 0; i < ncols; i++) {
        dbpool_value v = row[i];
        if (v.type == DBPOOL_TEXT || v.type == DBPOOL_BLOB) {
            char *s = arena_alloc(r, v.u.s.len + 1);
            if (s == NULL)
                return -1;
            memcpy(s, v.u.s.ptr, v.u.s.len);
            s[v.u.s.len] = '\0';
            v.u.s.ptr = s;
        }
        r->vals[r->nrows * ncols + i] = v;
    }
    r->nrows++;
    return 0;
}

/* Completes r with the statement's columns and counters from c. */
static int result_finish(dbpool_result *r, const dbpool_conn *c)
{
    r->ncols = c->ncols;
    r->cols = columns_clone(c->cols, c->ncols);
    r->affected = c->affected;
    r->last_id = c->last_id;
    return r->cols != NULL ? 0 : -1;
}

void dbpool_result_free(dbpool_result *r)
{
    if (r == NULL)
        return;
    while (r->arena != NULL) {
        struct arena_block *next = r->arena->next;
        free(r->arena);
        r->arena = next;
    }
    free(r->vals);
    free(r->cols);
    free(r);
}

size_t dbpool_result_nrows(const dbpool_result *r) { return r ? r->nrows : 0; }
size_t dbpool_result_ncols(const dbpool_result *r) { return r ? r->ncols : 0; }
const dbpool_column *dbpool_result_columns(const dbpool_result *r) { return r ? r->cols : NULL; }
int64_t dbpool_result_rows_affected(const dbpool_result *r) { return r ? r->affected : 0; }
int64_t dbpool_result_last_insert_id(const dbpool_result *r) { return r ? r->last_id : 0; }

const dbpool_value *dbpool_result_value(const dbpool_result *r, size_t row, size_t col)
{
    if (r == NULL || row >= r->nrows || col >= r->ncols)
        return NULL;
    return &r->vals[row * r->ncols + col];
}

/* ------------------------------------------------------------ connecting */

const char *dbpool_default_socket(void)
{
#ifdef RUNSTATEDIR
    return RUNSTATEDIR "/dbpoold/dbpoold.sock";
#else
    return "/run/dbpoold/dbpoold.sock";
#endif
}

static const char *connect_hint(int errnum)
{
    switch (errnum) {
    case ENOENT:
    case ECONNREFUSED:
    case ENOTDIR:
        return " (is dbpoold running? set DBPOOL_SOCKET or pass -S)";
    case EACCES:
    case EPERM:
        return " (check the permissions of the socket and its directory)";
    case EAGAIN:
        return " (dbpoold's accept queue is full; retry later)";
    default:
        return "";
    }
}

/* connect(2) interrupted by a signal goes on asynchronously: wait for it
 * until the deadline (ETIMEDOUT after it). */
static int finish_interrupted_connect(int fd, uint64_t deadline)
{
    int soerr = 0, r = await_fd(fd, POLLOUT, deadline);
    socklen_t len = sizeof soerr;

    if (r <= 0)
        return r == 0 ? ETIMEDOUT : errno;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        return errno;
    return soerr;
}

/* A blocking connect(2) on a Unix socket waits while the daemon's accept
 * queue is full; SO_SNDTIMEO bounds that wait (it then fails with EAGAIN).
 * Every later send is non-blocking, so the option has no other effect. */
static void bound_connect_wait(int fd, uint64_t limit)
{
    struct timeval tv = { .tv_sec = (time_t)(limit / 1000), .tv_usec = (suseconds_t)(limit % 1000) * 1000 };

    if (limit > 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int open_socket(dbpool_conn *c, const char *path)
{
    struct sockaddr_un sa;
    int fd, e = 0;

    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path)
        return fail(c, DBPOOL_E_USAGE, "socket path too long (%zu bytes, at most %zu): %s",
                    strlen(path), sizeof sa.sun_path - 1, path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail(c, DBPOOL_E_IO, "cannot create a socket: %s", strerror(errno));
    bound_connect_wait(fd, c->limit);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        e = errno == EINTR ? finish_interrupted_connect(fd, c->deadline) : errno;
    if (e != 0) {
        close(fd);
        if ((e == EAGAIN || e == ETIMEDOUT) && c->deadline != 0 && poll_ms(c->deadline) == 0)
            return connect_timed_out(c, false);
        return fail(c, DBPOOL_E_IO, "cannot connect to %s: %s%s", path, strerror(e),
                    connect_hint(e));
    }
    c->fd = fd;
    return 0;
}

static int decode_hello_ok(dbpool_conn *c, const uint8_t *p, size_t n)
{
    struct proto_hello_ok h;

    if (!proto_get_hello_ok(p, n, &h))
        return malformed_frame(c, PT_HELLO_OK);
    if (h.version != PROTO_VERSION)
        return fail_closed(c, DBPOOL_E_VERSION,
                           "dbpoold speaks protocol version %u but this libdbpool speaks %u; "
                           "use matching versions", (unsigned)h.version, (unsigned)PROTO_VERSION);
    c->backend = malloc(h.backend.len + 1);
    if (c->backend == NULL)
        return fail_oom(c);
    if (h.backend.len)
        memcpy(c->backend, h.backend.p, h.backend.len);
    c->backend[h.backend.len] = '\0';
    if (h.max_frame >= PROTO_HEADER_SIZE)
        c->max_frame = h.max_frame;
    c->max_params = h.max_params;
    c->max_batch = h.max_batch_statements;
    return 0;
}

static int handshake(dbpool_conn *c, const char *pool, const char *client_name)
{
    uint8_t type;
    const uint8_t *p;
    size_t n;

    proto_put_hello(&c->out, PROTO_VERSION, pool, client_name != NULL ? client_name : "");
    if (send_request(c) < 0 || read_frame(c, &type, &p, &n) < 0)
        return -1;
    if (type == PT_HELLO_OK)
        return decode_hello_ok(c, p, n);
    if (type == PT_ERROR) {
        take_error(c, p, n);
        drop_connection(c);             /* the daemon closes after a handshake error */
        return -1;
    }
    return unexpected_frame(c, type);
}

static dbpool_conn *conn_new(void)
{
    dbpool_conn *c = calloc(1, sizeof *c);

    if (c == NULL)
        return NULL;
    c->rbuf = malloc(READ_CHUNK);
    if (c->rbuf == NULL) {
        free(c);
        return NULL;
    }
    c->rcap = READ_CHUNK;
    c->fd = -1;
    c->err_index = -1;
    c->tx = DBPOOL_TX_IDLE;
    c->max_frame = PROTO_DEFAULT_MAX_FRAME;
    c->max_params = PROTO_DEFAULT_MAX_PARAMS;
    c->stream = STREAM_NONE;
    pbuf_init(&c->out);
    return c;
}

static void conn_free(dbpool_conn *c)
{
    drop_connection(c);
    pbuf_free(&c->out);
    free(c->rbuf);
    free(c->backend);
    free(c->cols);
    free(c->row);
    free(c->scratch);
    free(c);
}

/* One timeout: the value given, else the environment variable, else dflt. */
static int resolve_timeout(int64_t given, const char *field, const char *var, uint64_t dflt,
                           uint64_t *out, dbpool_error *err)
{
    const char *v;

    if (given >= 0) {
        *out = (uint64_t)given;
        return 0;
    }
    if (given != DBPOOL_TIMEOUT_FROM_ENV) {
        set_error(err, DBPOOL_E_USAGE, "dbpool_options.%s is %lld: give milliseconds "
                  "(0: no limit) or DBPOOL_TIMEOUT_FROM_ENV", field, (long long)given);
        return -1;
    }
    v = getenv(var);
    if (v == NULL || v[0] == '\0') {
        *out = dflt;
        return 0;
    }
    if (!parse_duration_ms(v, out)) {
        set_error(err, DBPOOL_E_USAGE, "%s=\"%.100s\" is not a duration: write it like "
                  "\"10s\", \"250ms\" or \"1m30s\" (\"0\": no limit), or unset it", var, v);
        return -1;
    }
    return 0;
}

/* Does the caller's options struct (of o->size bytes) have field? */
#define OPTS_HAVE(o, field) \
    ((o)->size >= offsetof(dbpool_options, field) + sizeof((o)->field))

/* Fills the connection's timeouts from opts (may be NULL), the environment
 * and the defaults. */
static int resolve_options(dbpool_conn *c, const dbpool_options *opts, dbpool_error *err)
{
    int64_t ct = DBPOOL_TIMEOUT_FROM_ENV, rt = DBPOOL_TIMEOUT_FROM_ENV;

    if (opts != NULL && opts->size == 0) {
        set_error(err, DBPOOL_E_USAGE,
                  "dbpool_options.size is 0: initialise the options with dbpool_options_init()");
        return -1;
    }
    if (opts != NULL && OPTS_HAVE(opts, connect_timeout_ms))
        ct = opts->connect_timeout_ms;
    if (opts != NULL && OPTS_HAVE(opts, request_timeout_ms))
        rt = opts->request_timeout_ms;
    if (resolve_timeout(ct, "connect_timeout_ms", ENV_CONNECT_TIMEOUT,
                        DBPOOL_DEFAULT_CONNECT_TIMEOUT_MS, &c->connect_timeout, err) < 0)
        return -1;
    return resolve_timeout(rt, "request_timeout_ms", ENV_REQUEST_TIMEOUT,
                           DBPOOL_DEFAULT_REQUEST_TIMEOUT_MS, &c->request_timeout, err);
}

/* Socket connect and handshake, all within the connect timeout. */
static int establish(dbpool_conn *c, const char *path, const char *pool, const char *client_name)
{
    int rc;

    c->connect_path = path;
    c->req_type = PT_HELLO;
    arm_deadline(c, c->connect_timeout);
    rc = open_socket(c, path) < 0 || handshake(c, pool, client_name) < 0 ? -1 : 0;
    c->connect_path = NULL;
    c->deadline = 0;
    return rc;
}

/* Ownership: the returned connection belongs to the caller (dbpool_close). */
dbpool_conn *dbpool_connect_opts(const char *socket_path, const char *pool,
                                 const char *client_name, const dbpool_options *opts,
                                 dbpool_error *err)
{
    dbpool_error local;
    dbpool_conn *c;
    const char *env = getenv("DBPOOL_SOCKET");

    if (err == NULL)
        err = &local;
    memset(err, 0, sizeof *err);
    if (socket_path == NULL)
        socket_path = env != NULL && env[0] != '\0' ? env : dbpool_default_socket();
    if (pool == NULL || pool[0] == '\0') {
        set_error(err, DBPOOL_E_USAGE, "no pool name given");
        return NULL;
    }
    c = conn_new();
    if (c == NULL) {
        set_error(err, DBPOOL_E_IO, "out of memory in libdbpool");
        return NULL;
    }
    if (resolve_options(c, opts, err) < 0) {
        conn_free(c);
        return NULL;
    }
    if (establish(c, socket_path, pool, client_name) < 0) {
        *err = c->err;
        conn_free(c);
        return NULL;
    }
    pbuf_reset(&c->out);
    return c;
}

dbpool_conn *dbpool_connect(const char *socket_path, const char *pool,
                            const char *client_name, dbpool_error *err)
{
    return dbpool_connect_opts(socket_path, pool, client_name, NULL, err);
}

int dbpool_set_timeout(dbpool_conn *c, int64_t timeout_ms)
{
    if (c == NULL)
        return -1;
    if (timeout_ms < 0)
        return fail(c, DBPOOL_E_USAGE, "dbpool_set_timeout: %lld ms is negative; give "
                    "milliseconds, 0 for no limit", (long long)timeout_ms);
    c->request_timeout = (uint64_t)timeout_ms;
    return 0;
}

int64_t dbpool_timeout(const dbpool_conn *c)
{
    if (c == NULL)
        return 0;
    return c->request_timeout > INT64_MAX ? INT64_MAX : (int64_t)c->request_timeout;
}

void dbpool_close(dbpool_conn *c)
{
    if (c == NULL)
        return;
    if (c->fd >= 0) {                   /* polite goodbye; never blocks */
        pbuf_reset(&c->out);
        proto_put_empty(&c->out, PT_TERMINATE);
        if (!c->out.oom)
            (void)send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    conn_free(c);
}

int dbpool_is_open(const dbpool_conn *c)
{
    return c != NULL && c->fd >= 0;
}

const dbpool_error *dbpool_last_error(const dbpool_conn *c)
{
    return c != NULL ? &c->err : &no_conn_error;
}

dbpool_txstate dbpool_txstate_of(const dbpool_conn *c)
{
    return c != NULL ? c->tx : DBPOOL_TX_IDLE;
}

const char *dbpool_backend(const dbpool_conn *c)
{
    return c != NULL && c->backend != NULL ? c->backend : "";
}

/* ------------------------------------------------------------ statements */

int dbpool_query_start(dbpool_conn *c, const char *sql,
                       const dbpool_value *params, size_t nparams)
{
    if (c == NULL || begin_request(c, PT_QUERY) < 0)
        return -1;
    if (sql == NULL)
        return fail(c, DBPOOL_E_USAGE, "sql is NULL");
    if (check_params(c, params, nparams) < 0)
        return -1;
    proto_put_query(&c->out, sql, strlen(sql), params, nparams);
    if (send_request(c) < 0)
        return -1;
    stmt_reset(c);
    c->affected = c->last_id = 0;
    c->mode = MODE_QUERY;
    c->stream = STREAM_ACTIVE;
    for (;;) {                          /* wait for the first answer */
        enum event ev = next_event(c);
        if (ev == EV_COLUMNS)
            return 0;
        if (ev == EV_DONE) {
            c->stream = STREAM_DONE;
            return 0;
        }
        if (ev == EV_FAIL) {
            c->stream = STREAM_FAILED;
            return -1;
        }
        /* EV_STMT: READY follows; EV_ROW cannot come before COLUMNS */
    }
}

int dbpool_next_row(dbpool_conn *c, const dbpool_value **row)
{
    if (c == NULL)
        return -1;
    if (row == NULL)
        return fail(c, DBPOOL_E_USAGE, "row is NULL");
    *row = NULL;
    switch (c->stream) {
    case STREAM_DONE:
        return 0;
    case STREAM_FAILED:
        return -1;
    case STREAM_NONE:
        return fail(c, DBPOOL_E_USAGE, "no statement is running; call dbpool_query_start first");
    case STREAM_ACTIVE:
        break;
    }
    arm_deadline(c, c->request_timeout);
    switch (query_event(c)) {
    case EV_ROW:
        if (terminate_texts(c) < 0)
            return -1;
        *row = c->row;
        return 1;
    case EV_DONE:
        return 0;
    default:
        return -1;
    }
}

size_t dbpool_ncolumns(const dbpool_conn *c) { return c ? c->ncols : 0; }
const dbpool_column *dbpool_columns(const dbpool_conn *c) { return c ? c->cols : NULL; }
int64_t dbpool_rows_affected(const dbpool_conn *c) { return c ? c->affected : 0; }
int64_t dbpool_last_insert_id(const dbpool_conn *c) { return c ? c->last_id : 0; }

/* Ownership: *out (when not NULL) belongs to the caller (dbpool_result_free). */
int dbpool_query(dbpool_conn *c, const char *sql, const dbpool_value *params,
                 size_t nparams, dbpool_result **out)
{
    dbpool_result *r;
    enum event ev;

    if (out != NULL)
        *out = NULL;
    if (dbpool_query_start(c, sql, params, nparams) < 0)
        return -1;
    if (out == NULL)
        return drain(c);
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return fail_oom(c);
    while ((ev = query_event(c)) == EV_ROW) {
        if (result_add_row(r, c->row, c->ncols) < 0) {
            dbpool_result_free(r);
            return fail_oom(c);
        }
    }
    if (ev != EV_DONE || result_finish(r, c) < 0) {
        dbpool_result_free(r);
        return ev != EV_DONE ? -1 : fail_oom(c);
    }
    *out = r;
    return 0;
}

int dbpool_exec(dbpool_conn *c, const char *sql)
{
    return dbpool_query(c, sql, NULL, 0, NULL);
}

/* ------------------------------------------------------------ batches */

static int check_batch(dbpool_conn *c, const dbpool_stmt *stmts, size_t n)
{
    if (n > 0 && stmts == NULL)
        return fail(c, DBPOOL_E_USAGE, "n is %zu but stmts is NULL", n);
    if (n > UINT16_MAX)
        return fail(c, DBPOOL_E_USAGE, "too many statements in one batch: %zu (at most %u)",
                    n, (unsigned)UINT16_MAX);
    /* The daemon would close the session over it: refuse here, keep the session. */
    if (c->max_batch != 0 && n > c->max_batch)
        return fail(c, DBPOOL_E_USAGE,
                    "too many statements in one batch: %zu (dbpoold allows at most %u); "
                    "split the batch, or raise daemon.maxBatchStatements in dbpoold.conf",
                    n, (unsigned)c->max_batch);
    for (size_t i = 0; i < n; i++) {
        if (stmts[i].sql == NULL)
            return fail(c, DBPOOL_E_USAGE, "statement %zu: sql is NULL", i);
        if (check_params(c, stmts[i].params, stmts[i].nparams) < 0) {
            char msg[sizeof c->err.message];
            memcpy(msg, c->err.message, sizeof msg);
            return fail(c, DBPOOL_E_USAGE, "statement %zu: %.480s", i, msg);
        }
    }
    return 0;
}

/* Reads a batch response, building results[i] (when results != NULL) for
 * each statement that completes. */
static int read_batch(dbpool_conn *c, size_t n, dbpool_result **results)
{
    dbpool_result *cur = NULL;
    size_t idx = 0;

    for (;;) {
        enum event ev = next_event(c);
        if (ev == EV_ROW && results != NULL) {
            if (cur == NULL && (cur = calloc(1, sizeof *cur)) == NULL)
                return fail_oom(c);
            if (result_add_row(cur, c->row, c->ncols) < 0)
                break;
        } else if (ev == EV_STMT) {
            if (idx >= n) {
                dbpool_result_free(cur);
                return fail_closed(c, DBPOOL_E_PROTOCOL,
                                   "protocol error: more STMT_DONE frames than statements in the batch; session closed");
            }
            if (results != NULL) {
                if (cur == NULL && (cur = calloc(1, sizeof *cur)) == NULL)
                    return fail_oom(c);
                if (result_finish(cur, c) < 0)
                    break;
                results[idx] = cur;
                cur = NULL;
            }
            idx++;
            stmt_reset(c);
        } else if (ev == EV_DONE || ev == EV_FAIL) {
            dbpool_result_free(cur);
            return ev == EV_DONE ? 0 : -1;
        }
    }
    dbpool_result_free(cur);
    return fail_oom(c);
}

/* Ownership: each results[i] belongs to the caller (dbpool_result_free). */
int dbpool_batch(dbpool_conn *c, const dbpool_stmt *stmts, size_t n, int atomic,
                 dbpool_result **results, size_t *failed_index)
{
    int rc;

    if (failed_index != NULL)
        *failed_index = NO_INDEX;
    if (results != NULL)
        for (size_t i = 0; i < n; i++)
            results[i] = NULL;
    if (c == NULL || begin_request(c, PT_BATCH) < 0 || check_batch(c, stmts, n) < 0)
        return -1;
    if (n == 0)
        return 0;                       /* nothing to run; the protocol rejects empty batches */
    proto_put_batch(&c->out, atomic ? PB_ATOMIC : 0, stmts, n);
    if (send_request(c) < 0)
        return -1;
    stmt_reset(c);
    c->mode = MODE_BATCH;
    rc = read_batch(c, n, results);
    stmt_reset(c);
    if (rc < 0 && failed_index != NULL && c->err_index >= 0)
        *failed_index = (size_t)c->err_index;
    return rc;
}

/* ------------------------------------------------------------ transactions */

/* Sends a request whose whole answer is READY or ERROR. */
static int simple_request(dbpool_conn *c, uint8_t type, int with_flags, uint8_t flags)
{
    uint8_t rtype;
    const uint8_t *p;
    size_t n;

    if (c == NULL || begin_request(c, type) < 0)
        return -1;
    if (with_flags)
        proto_put_begin(&c->out, flags);
    else
        proto_put_empty(&c->out, type);
    if (send_request(c) < 0 || read_frame(c, &rtype, &p, &n) < 0)
        return -1;
    return completion(c, rtype, p, n);
}

int dbpool_begin(dbpool_conn *c, int flags)
{
    return simple_request(c, PT_BEGIN, 1, (flags & DBPOOL_READ_ONLY) ? PB_READ_ONLY : 0);
}

int dbpool_commit(dbpool_conn *c)
{
    return simple_request(c, PT_COMMIT, 0, 0);
}

int dbpool_rollback(dbpool_conn *c)
{
    return simple_request(c, PT_ROLLBACK, 0, 0);
}

int dbpool_ping(dbpool_conn *c)
{
    return simple_request(c, PT_PING, 0, 0);
}

int dbpool_cancel(const dbpool_conn *c)
{
    /* Built on the stack and sent with one send(): safe while another thread
     * is blocked reading this connection (a 5-byte write is never split).
     * Non-blocking: when the daemon is not reading there is no one to
     * cancel anything, and the caller must not hang on it. */
    uint8_t frame[PROTO_HEADER_SIZE];
    struct pbuf b = { frame, 0, sizeof(frame), false };

    if (c == NULL || c->fd < 0)
        return -1;
    proto_put_empty(&b, PT_CANCEL);
    if (b.oom || b.data != frame)
        return -1;
    return send(c->fd, frame, b.len, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)b.len ? 0 : -1;
}

int dbpool_with_transaction(dbpool_conn *c, int flags,
                            int (*fn)(dbpool_conn *c, void *arg), void *arg)
{
    int rc;

    if (c == NULL)
        return -1;
    if (fn == NULL)
        return fail(c, DBPOOL_E_USAGE, "fn is NULL");
    if (dbpool_begin(c, flags) < 0)
        return -1;
    rc = fn(c, arg);
    if (rc == 0)
        return dbpool_commit(c) < 0 ? -1 : 0;
    if (dbpool_is_open(c) && c->tx != DBPOOL_TX_IDLE) {
        dbpool_error saved = c->err;    /* report fn's failure, not the rollback */
        if (dbpool_rollback(c) == 0)
            c->err = saved;
    }
    return rc;
}

/* ------------------------------------------------------------ names */

dbpool_value dbpool_text(const char *s)
{
    return s != NULL ? dbpool_textn(s, strlen(s)) : dbpool_null();
}

const char *dbpool_code_name(int code)
{
    switch (code) {
    case DBPOOL_OK: return "OK";
    case DBPOOL_E_PROTOCOL: return "PROTOCOL";
    case DBPOOL_E_VERSION: return "VERSION";
    case DBPOOL_E_UNKNOWN_POOL: return "UNKNOWN_POOL";
    case DBPOOL_E_NOT_ALLOWED: return "NOT_ALLOWED";
    case DBPOOL_E_SQL: return "SQL";
    case DBPOOL_E_POOL_TIMEOUT: return "POOL_TIMEOUT";
    case DBPOOL_E_UNAVAILABLE: return "UNAVAILABLE";
    case DBPOOL_E_TX_TIMEOUT: return "TX_TIMEOUT";
    case DBPOOL_E_LIMIT: return "LIMIT";
    case DBPOOL_E_CANCELED: return "CANCELED";
    case DBPOOL_E_CONN_LOST: return "CONN_LOST";
    case DBPOOL_E_SHUTDOWN: return "SHUTDOWN";
    case DBPOOL_E_TX_STATE: return "TX_STATE";
    case DBPOOL_E_INTERNAL: return "INTERNAL";
    case DBPOOL_E_IO: return "IO";
    case DBPOOL_E_USAGE: return "USAGE";
    case DBPOOL_E_TIMEOUT: return "TIMEOUT";
    default: return "UNKNOWN";
    }
}

const char *dbpool_type_name(dbpool_type t)
{
    switch (t) {
    case DBPOOL_NULL: return "null";
    case DBPOOL_INT64: return "int64";
    case DBPOOL_FLOAT64: return "float64";
    case DBPOOL_TEXT: return "text";
    case DBPOOL_BLOB: return "blob";
    case DBPOOL_BOOL: return "bool";
    }
    return "unknown";
}
