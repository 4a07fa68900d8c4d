/*
 * async_send.c — libdbpool's non-blocking requests (include/dbpool.h,
 * "Non-blocking use"): dbpool_send_* encode a request into the
 * connection's output buffer with src/common/proto.c (the frames the
 * blocking calls send) and note it in the ring of outstanding requests,
 * which async_receive.c answers in order; dbpool_flush writes the buffer
 * without blocking.
 *
 * Queuing writes only once ASYNC_SEND_AT bytes are waiting, so a pipeline
 * of small requests leaves in one write at dbpool_flush. A request that
 * cannot be encoded (bad arguments, above the daemon's frame limit, no
 * memory) is taken back out of the buffer: nothing of it is sent and the
 * session goes on. Blocking calls are refused while requests sent here
 * are outstanding (lib_async_in_use, wire.c): their answers would mix.
 * The overview of the library is at the top of src/lib/connect.c.
 */
#include "lib/internal.h"

/* ------------------------------------------------------------ the ring */

static int ring_reserve(dbpool_conn *c)
{
    struct async_req *n;
    size_t cap;

    if (c->reqs_n < c->reqs_cap)
        return 0;
    cap = c->reqs_cap ? c->reqs_cap * 2 : 16;
    n = malloc(cap * sizeof *n);
    if (n == NULL)
        return lib_fail(c, DBPOOL_E_USAGE, "out of memory queuing a request; nothing was sent");
    for (size_t i = 0; i < c->reqs_n; i++)
        n[i] = c->reqs[(c->reqs_head + i) % c->reqs_cap];
    free(c->reqs);
    c->reqs = n;
    c->reqs_cap = cap;
    c->reqs_head = 0;
    return 0;
}

static struct async_req *last_request(dbpool_conn *c)
{
    if (c->reqs_n == 0)
        return NULL;
    return &c->reqs[(c->reqs_head + c->reqs_n - 1) % c->reqs_cap];
}

size_t dbpool_pending(const dbpool_conn *c)
{
    return c != NULL ? c->pending : 0;
}

/* ------------------------------------------------------------ writing */

/* Writes queued bytes: 0 all written, 1 the socket is full, -1 failed
 * (errno set; nothing else changed). */
int lib_async_write(dbpool_conn *c)
{
    while (c->out_sent < c->out.len) {
        ssize_t w = send(c->fd, c->out.data + c->out_sent, c->out.len - c->out_sent,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            c->out_sent += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 1;
        if (w == 0)
            errno = EIO;
        return -1;
    }
    c->out_sent = 0;
    if (c->out.cap > BUF_KEEP) {        /* don't keep a huge request around */
        pbuf_free(&c->out);
        pbuf_init(&c->out);
    }
    pbuf_reset(&c->out);
    return 0;
}

/* A write failed: the session is over. What the daemon sent before it
 * closed (an ERROR, say) is decoded first. */
static int write_failed(dbpool_conn *c, int errnum)
{
    if (errnum == EPIPE || errnum == ECONNRESET) {
        if (lib_async_read(c) < 0)
            return -1;                  /* EOF: outstanding requests got their errors */
        lib_eof_error(c);
    } else {
        lib_fail_closed(c, DBPOOL_E_IO, "cannot send to dbpoold: %s; session closed",
                        strerror(errnum));
    }
    lib_async_fail_outstanding(c);
    return -1;
}

static int usable(dbpool_conn *c)
{
    if (c == NULL)
        return -1;
    if (c->phase != PHASE_READY)
        return c->phase == PHASE_FAILED ? -1 : lib_async_in_use(c);
    if (c->fd < 0)
        return lib_fail(c, DBPOOL_E_IO, "the session with dbpoold is closed; reconnect");
    return 0;
}

int dbpool_flush(dbpool_conn *c)
{
    int w;

    if (usable(c) < 0)
        return -1;
    w = lib_async_write(c);
    return w >= 0 ? w : write_failed(c, errno);
}

/* ------------------------------------------------------------ queuing */

/* Before encoding a request: the session can take one. Returns the
 * buffer offset where the request starts, or -1. */
static ssize_t queue_begin(dbpool_conn *c)
{
    if (usable(c) < 0)
        return -1;
    if (c->stream == STREAM_ACTIVE)
        return lib_fail(c, DBPOOL_E_USAGE, "a statement started with dbpool_query_start is still "
                        "streaming: read it to the end with dbpool_next_row first");
    if (ring_reserve(c) < 0)
        return -1;
    if (c->pending == 0 && c->out_sent == 0)
        pbuf_reset(&c->out);            /* left over from a blocking call */
    return (ssize_t)c->out.len;
}

/* After encoding: checks the frame, notes the request, writes when much is
 * waiting. A failed write shows in the request's result. */
static int queue_end(dbpool_conn *c, uint8_t type, size_t start)
{
    size_t len = c->out.len - start;

    if (c->out.oom) {
        c->out.len = start;
        c->out.oom = false;
        return lib_fail(c, DBPOOL_E_USAGE, "cannot encode the %s: out of memory or a value too "
                        "large for the protocol; nothing was sent", proto_type_name(type));
    }
    if (len - 4 > c->max_frame) {
        c->out.len = start;
        return lib_fail(c, DBPOOL_E_LIMIT, "request of %zu bytes exceeds dbpoold's frame size limit "
                        "of %u bytes; send smaller statements or values (nothing was sent)", len,
                        (unsigned)c->max_frame);
    }
    c->reqs[(c->reqs_head + c->reqs_n) % c->reqs_cap] = (struct async_req){ type, false };
    c->reqs_n++;
    c->pending++;
    if (c->out.len - c->out_sent >= ASYNC_SEND_AT)
        (void)dbpool_flush(c);
    return 0;
}

int dbpool_send_query(dbpool_conn *c, const char *sql, const dbpool_value *params, size_t nparams)
{
    ssize_t start = queue_begin(c);

    if (start < 0 || lib_put_query(c, sql, params, nparams) < 0)
        return -1;
    return queue_end(c, PT_QUERY, (size_t)start);
}

int dbpool_send_batch(dbpool_conn *c, const dbpool_stmt *stmts, size_t n, int atomic)
{
    ssize_t start = queue_begin(c);

    if (start < 0 || lib_check_batch(c, stmts, n) < 0)
        return -1;
    if (n == 0)
        return lib_fail(c, DBPOOL_E_USAGE, "a batch needs at least one statement");
    proto_put_batch(&c->out, atomic ? PB_ATOMIC : 0, stmts, n);
    return queue_end(c, PT_BATCH, (size_t)start);
}

static int send_simple(dbpool_conn *c, uint8_t type)
{
    ssize_t start = queue_begin(c);

    if (start < 0)
        return -1;
    proto_put_empty(&c->out, type);
    return queue_end(c, type, (size_t)start);
}

int dbpool_send_begin(dbpool_conn *c, int flags)
{
    ssize_t start = queue_begin(c);

    if (start < 0)
        return -1;
    proto_put_begin(&c->out, (flags & DBPOOL_READ_ONLY) ? PB_READ_ONLY : 0);
    return queue_end(c, PT_BEGIN, (size_t)start);
}

int dbpool_send_commit(dbpool_conn *c) { return send_simple(c, PT_COMMIT); }
int dbpool_send_rollback(dbpool_conn *c) { return send_simple(c, PT_ROLLBACK); }
int dbpool_send_ping(dbpool_conn *c) { return send_simple(c, PT_PING); }
int dbpool_send_pin(dbpool_conn *c) { return send_simple(c, PT_PIN); }
int dbpool_send_unpin(dbpool_conn *c) { return send_simple(c, PT_UNPIN); }

int dbpool_set_single_row_mode(dbpool_conn *c)
{
    struct async_req *last;

    if (c == NULL)
        return -1;
    last = last_request(c);
    if (last == NULL || (last->type != PT_QUERY && last->type != PT_BATCH))
        return lib_fail(c, DBPOOL_E_USAGE, "dbpool_set_single_row_mode: the last request sent is "
                        "not a query or batch; call it right after dbpool_send_query or "
                        "dbpool_send_batch");
    if (c->reqs_n == 1 && c->head_started)
        return lib_fail(c, DBPOOL_E_USAGE, "dbpool_set_single_row_mode: the answer to the query "
                        "has started to arrive; call it right after dbpool_send_query");
    last->single_row = true;
    return 0;
}
