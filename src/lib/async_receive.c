/*
 * async_receive.c — libdbpool's non-blocking results (include/dbpool.h,
 * "Non-blocking use"): dbpool_consume_input reads what the socket has and
 * decodes whole frames into results for the requests in the ring
 * (async_send.c), oldest first; dbpool_get_result hands them out in order.
 *
 * Frames are checked against each request's answer exactly as the blocking
 * calls check them (lib_frame_event in wire.c, lib_completion): a QUERY
 * gives [COLUMNS ROW*] STMT_DONE READY | ERROR, a BATCH one STATEMENT
 * result per STMT_DONE, the others READY | ERROR. Rows are copied out of
 * the receive buffer as they are decoded, so the buffer holds at most one
 * read chunk and one partial frame; the decoded results wait in the ready
 * queue. Decoding pauses while ASYNC_QUEUE_HIGH bytes of results wait to
 * be taken (consume_input then returns 1), which bounds memory in
 * single-row mode; a buffered result is held whole, as documented.
 *
 * Every request gets exactly one final result. When the session ends
 * (EOF, a socket error, a protocol violation, an ERROR after which the
 * daemon closes), lib_async_fail_outstanding gives each request still
 * waiting an ERROR result saying so.
 * The overview of the library is at the top of src/lib/connect.c.
 */
#include "lib/internal.h"

/* ------------------------------------------------------------ the queue */

static struct async_req *head(dbpool_conn *c)
{
    return &c->reqs[c->reqs_head];
}

/* Appends r to the ready queue, charging its frames and its own size (so
 * that many small results count too). */
static void enqueue(dbpool_conn *c, dbpool_result *r)
{
    r->bytes += sizeof *r;
    r->next = NULL;
    if (c->ready_tail != NULL)
        c->ready_tail->next = r;
    else
        c->ready_head = r;
    c->ready_tail = r;
    c->ready_bytes += r->bytes;
}

/* The head request is answered (r NULL: it could not be, no memory). */
static void finish_head(dbpool_conn *c, dbpool_result *r)
{
    if (r != NULL) {
        r->tx = c->tx;
        enqueue(c, r);
    } else {
        c->pending--;
    }
    c->reqs_head = (c->reqs_head + 1) % c->reqs_cap;
    c->reqs_n--;
    c->head_started = false;
}

static void start_head(dbpool_conn *c, const struct async_req *h)
{
    lib_stmt_reset(c);
    c->mode = h->type == PT_BATCH ? MODE_BATCH : MODE_QUERY;
    c->affected = c->last_id = 0;
    c->batch_index = 0;
    c->req_type = h->type;
    c->head_started = true;
}

/* An error result carrying e (NULL without memory: the caller counts the
 * request as answered). */
static dbpool_result *error_result(dbpool_result *r, const dbpool_error *e, int32_t stmt_index)
{
    if (r == NULL)
        r = lib_result_new(DBPOOL_RESULT_ERROR);
    if (r == NULL || (r->err = malloc(sizeof *r->err)) == NULL) {
        dbpool_result_free(r);
        return NULL;
    }
    r->status = DBPOOL_RESULT_ERROR;
    *r->err = *e;
    r->stmt_index = stmt_index;
    return r;
}

/* Frees what the non-blocking interface holds (dbpool_close). */
void lib_async_free(dbpool_conn *c)
{
    while (c->ready_head != NULL) {
        dbpool_result *next = c->ready_head->next;
        dbpool_result_free(c->ready_head);
        c->ready_head = next;
    }
    c->ready_tail = NULL;
    dbpool_result_free(c->building);
    c->building = NULL;
    free(c->reqs);
    c->reqs = NULL;
    c->reqs_cap = c->reqs_n = c->reqs_head = 0;
}

/* ------------------------------------------------------------ the session ends */

/* The message of a request the daemon did not answer before the session
 * ended (why: the session's error). */
static void unanswered(dbpool_error *e, uint8_t type, const dbpool_error *why)
{
    if (why->code == DBPOOL_E_SHUTDOWN)
        lib_set_error(e, why->code, "the %s did not run: %.400s", proto_type_name(type),
                      why->message);
    else
        lib_set_error(e, why->code, "the %s was not answered before the session ended, so "
                      "whether it ran is unknown: %.350s", proto_type_name(type), why->message);
    memcpy(e->sqlstate, why->sqlstate, sizeof e->sqlstate);
}

void lib_async_fail_outstanding(dbpool_conn *c)
{
    while (c->reqs_n > 0) {
        dbpool_error e = c->err;
        dbpool_result *r = c->building;

        c->building = NULL;
        if (!c->head_started)
            unanswered(&e, head(c)->type, &c->err);
        finish_head(c, error_result(r, &e, -1));
    }
    lib_stmt_reset(c);
}

/* ------------------------------------------------------------ decoding */

/* The head request failed (c->err): its final result, rows so far kept. */
static int request_failed(dbpool_conn *c)
{
    dbpool_result *r = c->building;

    c->building = NULL;
    if (r != NULL && c->have_columns && r->cols == NULL)
        (void)lib_result_finish(r, c);
    finish_head(c, error_result(r, &c->err, c->err_index));
    lib_stmt_reset(c);
    if (c->fd >= 0)
        return 0;
    lib_async_fail_outstanding(c);
    return -1;
}

static int out_of_memory(dbpool_conn *c)
{
    lib_fail_oom(c);
    return request_failed(c);
}

static int take_row(dbpool_conn *c, const struct async_req *h, size_t bytes)
{
    dbpool_result *r;

    if (h->single_row) {
        r = lib_result_new(DBPOOL_RESULT_ROW);
        if (r == NULL || lib_result_add_row(r, c->row, c->ncols) < 0 || lib_result_finish(r, c) < 0) {
            dbpool_result_free(r);
            return out_of_memory(c);
        }
        r->affected = r->last_id = 0;
        r->stmt_index = h->type == PT_BATCH ? c->batch_index : -1;
        r->bytes = bytes;
        enqueue(c, r);
        return 0;
    }
    if (c->building == NULL && (c->building = lib_result_new(DBPOOL_RESULT_OK)) == NULL)
        return out_of_memory(c);
    c->building->bytes += bytes;
    return lib_result_add_row(c->building, c->row, c->ncols) < 0 ? out_of_memory(c) : 0;
}

/* Completes r with the statement's columns and counters. The statement is
 * over, so its columns move to r instead of being copied. */
static int finish_statement(dbpool_result *r, dbpool_conn *c)
{
    if (c->cols == NULL || r->cols != NULL)
        return lib_result_finish(r, c);
    r->cols = c->cols;
    r->ncols = c->ncols;
    c->cols = NULL;
    c->ncols = 0;
    r->affected = c->affected;
    r->last_id = c->last_id;
    r->tx = c->tx;
    return 0;
}

/* STMT_DONE of a batch's statement: its STATEMENT result. */
static int statement_done(dbpool_conn *c)
{
    dbpool_result *r = c->building != NULL ? c->building : lib_result_new(DBPOOL_RESULT_STATEMENT);

    c->building = NULL;
    if (r == NULL || finish_statement(r, c) < 0) {
        dbpool_result_free(r);
        return out_of_memory(c);
    }
    r->status = DBPOOL_RESULT_STATEMENT;
    r->stmt_index = c->batch_index++;
    enqueue(c, r);
    lib_stmt_reset(c);
    return 0;
}

/* READY ending a query or batch. */
static int request_done(dbpool_conn *c, const struct async_req *h)
{
    dbpool_result *r = c->building != NULL ? c->building : lib_result_new(DBPOOL_RESULT_OK);

    c->building = NULL;
    if (r == NULL || finish_statement(r, c) < 0) {
        dbpool_result_free(r);
        return out_of_memory(c);
    }
    if (h->type == PT_BATCH)
        r->affected = r->last_id = 0;
    finish_head(c, r);
    lib_stmt_reset(c);
    return 0;
}

/* The answer to BEGIN, COMMIT, ROLLBACK, PING, PIN, UNPIN. */
static int simple_answer(dbpool_conn *c, const struct async_req *h, uint8_t type,
                         const uint8_t *p, size_t n)
{
    dbpool_result *r;

    if (lib_completion(c, type, p, n) < 0)
        return request_failed(c);
    if (h->type == PT_PIN || h->type == PT_UNPIN)
        c->pinned = h->type == PT_PIN;
    r = lib_result_new(DBPOOL_RESULT_OK);
    if (r == NULL)
        return out_of_memory(c);
    finish_head(c, r);
    return 0;
}

/* One frame of the head request's answer. 0, or -1 when the session ended. */
static int head_frame(dbpool_conn *c, uint8_t type, const uint8_t *p, size_t n)
{
    const struct async_req *h = head(c);

    if (!c->head_started)
        start_head(c, h);
    if (h->type != PT_QUERY && h->type != PT_BATCH)
        return simple_answer(c, h, type, p, n);
    switch (lib_frame_event(c, type, p, n)) {
    case EV_COLUMNS:
        return 0;
    case EV_ROW:
        return take_row(c, h, PROTO_HEADER_SIZE + n);
    case EV_STMT:
        return h->type == PT_BATCH ? statement_done(c) : 0;
    case EV_DONE:
        return request_done(c, h);
    default:
        return request_failed(c);
    }
}

/* Decodes the whole frames in the receive buffer, without I/O, while a
 * request waits for them and the ready queue has room. *need: the bytes
 * the next frame needs in the buffer. 0, or -1 when the session ended. */
static int decode_buffered(dbpool_conn *c, size_t *need)
{
    *need = PROTO_HEADER_SIZE;
    while (c->reqs_n > 0 && c->ready_bytes < ASYNC_QUEUE_HIGH) {
        uint8_t type;
        const uint8_t *p;
        size_t n;
        int t = lib_take_frame(c, &type, &p, &n);

        if (t < 0) {
            lib_async_fail_outstanding(c);
            return -1;
        }
        if (t == 0) {
            *need = PROTO_HEADER_SIZE + n;
            return 0;
        }
        if (head_frame(c, type, p, n) < 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ reading */

/* EOF: an ERROR sent while no request was outstanding (a shutdown) says
 * why; else the usual message. The session is closed. */
static int peer_closed(dbpool_conn *c)
{
    uint8_t type;
    const uint8_t *p;
    size_t n;

    if (c->reqs_n == 0 && lib_take_frame(c, &type, &p, &n) == 1 && type == PT_ERROR &&
        lib_store_error(c, p, n))
        lib_drop_connection(c);
    else
        lib_eof_error(c);
    lib_async_fail_outstanding(c);
    return -1;
}

/* After the read that drained the socket: decode it; 0, 1 or -1 as below. */
static int finish_read(dbpool_conn *c)
{
    size_t need;

    if (decode_buffered(c, &need) < 0)
        return -1;
    return c->ready_bytes >= ASYNC_QUEUE_HIGH && c->reqs_n > 0 ? 1 : 0;
}

/* Reads and decodes until the socket has nothing more: 0; 1 when decoded
 * results fill the ready queue; -1 when the session ended. */
int lib_async_read(dbpool_conn *c)
{
    for (;;) {
        size_t need, room;
        ssize_t r;

        if (decode_buffered(c, &need) < 0)
            return -1;
        if (c->ready_bytes >= ASYNC_QUEUE_HIGH && c->reqs_n > 0)
            return 1;
        if (lib_make_room(c, need) < 0) {
            lib_async_fail_outstanding(c);
            return -1;
        }
        room = c->rcap - c->rend;
        r = recv(c->fd, c->rbuf + c->rend, room, MSG_DONTWAIT);
        if (r > 0) {
            c->rend += (size_t)r;
            if ((size_t)r < room)       /* the socket is drained: decode, done */
                return finish_read(c);
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (r == 0)
            return peer_closed(c);
        lib_fail_closed(c, DBPOOL_E_IO, "cannot read from dbpoold: %s; session closed",
                        strerror(errno));
        lib_async_fail_outstanding(c);
        return -1;
    }
}

int dbpool_consume_input(dbpool_conn *c)
{
    if (c == NULL)
        return -1;
    if (c->phase != PHASE_READY)
        return c->phase == PHASE_FAILED ? -1 : lib_async_in_use(c);
    if (c->fd < 0)
        return lib_fail(c, DBPOOL_E_IO, "the session with dbpoold is closed; reconnect");
    return lib_async_read(c);
}

/* Decodes what is buffered when nothing is ready yet (no I/O). */
static void decode_if_needed(dbpool_conn *c)
{
    size_t need;

    if (c->ready_head == NULL && c->reqs_n > 0 && c->fd >= 0)
        (void)decode_buffered(c, &need);
}

int dbpool_is_busy(dbpool_conn *c)
{
    if (c == NULL)
        return 0;
    decode_if_needed(c);
    return c->ready_head == NULL && c->reqs_n > 0;
}

/* Ownership: the result belongs to the caller (dbpool_result_free). */
dbpool_result *dbpool_get_result(dbpool_conn *c)
{
    dbpool_result *r;

    if (c == NULL)
        return NULL;
    decode_if_needed(c);
    r = c->ready_head;
    if (r == NULL)
        return NULL;
    c->ready_head = r->next;
    if (c->ready_head == NULL)
        c->ready_tail = NULL;
    c->ready_bytes -= r->bytes;
    r->next = NULL;
    if (r->status == DBPOOL_RESULT_OK || r->status == DBPOOL_RESULT_ERROR)
        c->pending--;
    return r;
}
