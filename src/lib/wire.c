/*
 * wire.c — libdbpool the socket and the response: sending requests, reading and
 * decoding frames into the connection, taking the daemon's ERROR frames,
 * and sequencing a response's frames.
 * The overview (frames, buffers, failures, timeouts) is at the top of
 * src/lib/connect.c; the shared structs are in internal.h.
 */
#include "lib/internal.h"

/* ------------------------------------------------------------ daemon errors */

/* Codes after which the daemon always closes the session. After other
 * errors it may close too (SHUTDOWN, TX_TIMEOUT, LIMIT, INTERNAL in
 * doc/protocol.md); check_peer_closed notices that when it already has. */
static bool code_closes_session(int code, const char *sqlstate)
{
    /* doc/protocol.md, "Error codes": these are always followed by close;
     * LIMIT too, but for a result row above maxFrameSize (54000) and a PIN
     * above maxPinned (53400), which fail the request only. */
    if (code == DBPOOL_E_LIMIT)
        return strcmp(sqlstate, "54000") != 0 && strcmp(sqlstate, "53400") != 0;
    return code == DBPOOL_E_PROTOCOL || code == DBPOOL_E_VERSION ||
           code == DBPOOL_E_UNKNOWN_POOL || code == DBPOOL_E_NOT_ALLOWED ||
           code == DBPOOL_E_INTERNAL || code == DBPOOL_E_TX_TIMEOUT ||
           code == DBPOOL_E_SHUTDOWN;
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
        lib_drop_connection(c);
}

/* Decodes an ERROR frame into c->err (no other effect). */
bool lib_store_error(dbpool_conn *c, const uint8_t *p, size_t n)
{
    struct proto_error e;

    if (!proto_get_error(p, n, &e))
        return false;
    c->err.code = e.code;
    copy_str(c->err.sqlstate, sizeof c->err.sqlstate, &e.sqlstate);
    copy_str(c->err.message, sizeof c->err.message, &e.message);
    c->err.vendor_code = e.vendor_code;
    c->err_index = e.stmt_index;
    c->tx = (dbpool_txstate)e.txstate;
    if (e.code == DBPOOL_E_SHUTDOWN)
        c->shutdown_seen = true;
    return true;
}

/* Handles an ERROR frame ending a request. Returns -1 (it is a failure). */
int lib_take_error(dbpool_conn *c, const uint8_t *p, size_t n)
{
    if (!lib_store_error(c, p, n))
        return lib_malformed_frame(c, PT_ERROR);
    if (c->timeout_cancel && c->err.code == DBPOOL_E_CANCELED)
        lib_report_cancelled_timeout(c);
    if (c->err.code == DBPOOL_E_CONN_LOST)
        c->pinned = false;              /* the daemon ended the pin with the server */
    if (code_closes_session(c->err.code, c->err.sqlstate))
        lib_drop_connection(c);
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
                return lib_store_error(c, p, plen);
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
            lib_drop_connection(c);
            return -1;
        }
        return lib_eof_error(c);
    }
    return lib_fail_closed(c, DBPOOL_E_IO, "cannot send to dbpoold: %s; session closed",
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
            int r = lib_await_fd(c->fd, POLLOUT, c->deadline);
            if (r == 0)
                return lib_send_timed_out(c, n < total);
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
int lib_make_room(dbpool_conn *c, size_t need)
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
            return lib_fail_oom(c);
        c->rbuf = nb;
        c->rcap = want;
    }
    return 0;
}

/* Takes the next complete frame out of the receive buffer, without I/O:
 * 1 (*payload points into the buffer, valid until more is read), 0 when it
 * has not arrived whole (*len is then the payload length when the header
 * is there, else 0), -1 for an invalid length (the session is closed). */
int lib_take_frame(dbpool_conn *c, uint8_t *type, const uint8_t **payload, size_t *len)
{
    uint32_t plen = 0;
    size_t avail = c->rend - c->rstart;
    int h = proto_peek_header(c->rbuf + c->rstart, avail, c->max_frame, type, &plen);

    *len = plen;
    if (h < 0)
        return lib_fail_closed(c, DBPOOL_E_PROTOCOL,
                           "protocol error: dbpoold sent a frame with an invalid length; session closed");
    if (h == 0 || avail < PROTO_HEADER_SIZE + (size_t)plen)
        return 0;
    *payload = c->rbuf + c->rstart + PROTO_HEADER_SIZE;
    c->rstart += PROTO_HEADER_SIZE + (size_t)plen;
    return 1;
}

/* Reads the next complete frame. *payload points into the receive buffer
 * and stays valid until the next read_frame on c. */
int lib_read_frame(dbpool_conn *c, uint8_t *type, const uint8_t **payload, size_t *len)
{
    if (c->fd < 0)
        return lib_fail(c, DBPOOL_E_IO, "the session with dbpoold is closed; reconnect");
    for (;;) {
        int t = lib_take_frame(c, type, payload, len);

        if (t != 0)
            return t > 0 ? 0 : -1;
        if (lib_make_room(c, PROTO_HEADER_SIZE + *len) < 0)
            return -1;
        ssize_t r = lib_await_fd(c->fd, POLLIN, c->deadline);
        if (r == 0) {
            if (lib_on_deadline(c) < 0)
                return -1;
            continue;
        }
        if (r > 0)
            r = recv(c->fd, c->rbuf + c->rend, c->rcap - c->rend, MSG_DONTWAIT);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r == 0)
            return lib_eof_error(c);
        if (r < 0)
            return lib_fail_closed(c, DBPOOL_E_IO, "cannot read from dbpoold: %s; session closed",
                               strerror(errno));
        c->rend += (size_t)r;
    }
}

/* Sends the request encoded in c->out after checking it against the
 * daemon's frame limit. */
int lib_send_request(dbpool_conn *c)
{
    int rc;

    if (c->out.oom)
        return lib_fail(c, DBPOOL_E_USAGE,
                    "cannot encode the request: out of memory or a value too large for the protocol");
    if (c->out.len - 4 > c->max_frame)
        return lib_fail(c, DBPOOL_E_LIMIT,
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
dbpool_column *lib_columns_clone(const dbpool_column *src, size_t n)
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
        return malformed ? lib_malformed_frame(c, PT_COLUMNS) : lib_fail_oom(c);
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
            return lib_fail_oom(c);
        c->row = nv;
        c->rowcap = c->ncols;
    }
    if (!proto_get_row(p, n, c->ncols, c->row))
        return lib_fail_closed(c, DBPOOL_E_PROTOCOL,
                           "protocol error: malformed ROW (or not the %zu values COLUMNS announced); "
                           "session closed", c->ncols);
    for (size_t i = 0; i < c->ncols; i++)
        if ((c->row[i].type == DBPOOL_TEXT || c->row[i].type == DBPOOL_BLOB) && c->row[i].u.s.ptr == NULL)
            c->row[i].u.s.ptr = "";
    return 0;
}

/* Copies the current row's TEXT values into the scratch area, NUL-terminated. */
int lib_terminate_texts(dbpool_conn *c)
{
    size_t need = 0, off = 0;

    for (size_t i = 0; i < c->ncols; i++)
        if (c->row[i].type == DBPOOL_TEXT)
            need += c->row[i].u.s.len + 1;
    if (need > c->scratchcap) {
        char *ns = realloc(c->scratch, need);
        if (ns == NULL)
            return lib_fail_oom(c);
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
        return lib_malformed_frame(c, PT_STMT_DONE);
    c->stmt_done = true;
    return 0;
}

static int decode_ready(dbpool_conn *c, const uint8_t *p, size_t n)
{
    char tx;

    if (!proto_get_ready(p, n, &tx))
        return lib_malformed_frame(c, PT_READY);
    c->tx = (dbpool_txstate)tx;
    return 0;
}

/* Handles the frame ending a simple request: READY -> 0, else -1. */
int lib_completion(dbpool_conn *c, uint8_t type, const uint8_t *p, size_t n)
{
    if (type == PT_READY)
        return decode_ready(c, p, n);
    if (type == PT_ERROR)
        return lib_take_error(c, p, n);
    return lib_unexpected_frame(c, type);
}

/* ------------------------------------------------------------ responses */

/* Forgets the current statement's columns (a new statement begins). */
void lib_stmt_reset(dbpool_conn *c)
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

/* Decodes one frame of a QUERY/BATCH response, checking it against the
 * sequence [COLUMNS ROW*] STMT_DONE ... READY | ERROR: an enum event. */
int lib_frame_event(dbpool_conn *c, uint8_t type, const uint8_t *p, size_t n)
{
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
        lib_take_error(c, p, n);
        return EV_FAIL;
    default:
        break;
    }
    lib_unexpected_frame(c, type);
    return EV_FAIL;
}

/* Reads one frame of a QUERY/BATCH response (lib_frame_event). */
enum event lib_next_event(dbpool_conn *c)
{
    uint8_t type;
    const uint8_t *p;
    size_t n;

    if (lib_read_frame(c, &type, &p, &n) < 0)
        return EV_FAIL;
    return (enum event)lib_frame_event(c, type, p, n);
}

/* Next row of the streaming statement: EV_ROW, EV_DONE or EV_FAIL. */
enum event lib_query_event(dbpool_conn *c)
{
    if (c->stream != STREAM_ACTIVE)     /* already completed (or failed) */
        return c->stream == STREAM_DONE ? EV_DONE : EV_FAIL;
    for (;;) {
        enum event ev = lib_next_event(c);
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
int lib_drain(dbpool_conn *c)
{
    enum event ev;
    while ((ev = lib_query_event(c)) == EV_ROW)
        ;
    return ev == EV_DONE ? 0 : -1;
}

/* A blocking call is possible: the connection is established and no
 * request sent with dbpool_send_* awaits its result (async_send.c). */
int lib_async_in_use(dbpool_conn *c)
{
    if (c->phase == PHASE_CONNECTING || c->phase == PHASE_HELLO)
        return lib_fail(c, DBPOOL_E_USAGE, "the connection is still being established: call "
                        "dbpool_connect_poll until it returns DBPOOL_POLL_OK");
    if (c->phase == PHASE_FAILED)
        return -1;                      /* c->err says why the connect failed */
    if (c->pending > 0)
        return lib_fail(c, DBPOOL_E_USAGE, "%zu request%s sent with dbpool_send_* %s not answered "
                        "yet: take the results with dbpool_get_result until dbpool_pending() is 0 "
                        "before making a blocking call", c->pending, c->pending == 1 ? "" : "s",
                        c->pending == 1 ? "is" : "are");
    c->out_sent = 0;
    return 0;
}

/* Common prologue of every request (type: its frame type): start the
 * call's clock, drain a streaming statement, check the session is open,
 * clear the last error. A drain that used up the call's time fails it. */
int lib_begin_request(dbpool_conn *c, uint8_t type)
{
    bool was_open = c->fd >= 0;

    if (lib_async_in_use(c) < 0)
        return -1;
    lib_arm_deadline(c, c->request_timeout);
    if (c->stream == STREAM_ACTIVE && lib_drain(c) < 0 && c->err.code == DBPOOL_E_TIMEOUT)
        return -1;
    if (c->fd < 0) {
        if (was_open)
            return -1;                  /* drain's error says why */
        return lib_fail(c, DBPOOL_E_IO, "the session with dbpoold is closed; reconnect");
    }
    c->err.code = DBPOOL_OK;
    c->err.sqlstate[0] = '\0';
    c->err.message[0] = '\0';
    c->err.vendor_code = 0;
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
int lib_check_params(dbpool_conn *c, const dbpool_value *params, size_t nparams)
{
    if (nparams > 0 && params == NULL)
        return lib_fail(c, DBPOOL_E_USAGE, "nparams is %zu but params is NULL", nparams);
    if (nparams > c->max_params)
        return lib_fail(c, DBPOOL_E_USAGE,
                    "too many parameters: %zu (dbpoold allows at most %u per statement)",
                    nparams, (unsigned)c->max_params);
    for (size_t i = 0; i < nparams; i++) {
        const dbpool_value *v = &params[i];
        if ((unsigned)v->type > DBPOOL_BOOL)
            return lib_fail(c, DBPOOL_E_USAGE, "parameter %zu has an invalid type (%d)",
                        i + 1, (int)v->type);
        if ((v->type == DBPOOL_TEXT || v->type == DBPOOL_BLOB) && v->u.s.ptr == NULL &&
            v->u.s.len > 0)
            return lib_fail(c, DBPOOL_E_USAGE, "parameter %zu is a %s with a NULL pointer",
                        i + 1, dbpool_type_name(v->type));
    }
    return 0;
}

/* Checks a statement and appends its QUERY frame to c->out. */
int lib_put_query(dbpool_conn *c, const char *sql, const dbpool_value *params, size_t nparams)
{
    if (sql == NULL)
        return lib_fail(c, DBPOOL_E_USAGE, "sql is NULL");
    if (lib_check_params(c, params, nparams) < 0)
        return -1;
    proto_put_query(&c->out, sql, strlen(sql), params, nparams);
    return 0;
}

/* Checks a batch before it is encoded. */
int lib_check_batch(dbpool_conn *c, const dbpool_stmt *stmts, size_t n)
{
    if (n > 0 && stmts == NULL)
        return lib_fail(c, DBPOOL_E_USAGE, "n is %zu but stmts is NULL", n);
    if (n > UINT16_MAX)
        return lib_fail(c, DBPOOL_E_USAGE, "too many statements in one batch: %zu (at most %u)",
                    n, (unsigned)UINT16_MAX);
    /* The daemon would close the session over it: refuse here, keep the session. */
    if (c->max_batch != 0 && n > c->max_batch)
        return lib_fail(c, DBPOOL_E_USAGE,
                        "too many statements in one batch: %zu (dbpoold allows at most %u); "
                        "split the batch, or raise daemon.maxBatchStatements in dbpoold.conf",
                        n, (unsigned)c->max_batch);
    for (size_t i = 0; i < n; i++) {
        if (stmts[i].sql == NULL)
            return lib_fail(c, DBPOOL_E_USAGE, "statement %zu: sql is NULL", i);
        if (lib_check_params(c, stmts[i].params, stmts[i].nparams) < 0) {
            char msg[sizeof c->err.message];
            memcpy(msg, c->err.message, sizeof msg);
            return lib_fail(c, DBPOOL_E_USAGE, "statement %zu: %.480s", i, msg);
        }
    }
    return 0;
}
