/*
 * requests.c — libdbpool requests: statements (streamed and buffered), batches,
 * transactions and PING.
 * The overview (frames, buffers, failures, timeouts) is at the top of
 * src/lib/connect.c; the shared structs are in internal.h.
 */
#include "lib/internal.h"

/* ------------------------------------------------------------ statements */

int dbpool_query_start(dbpool_conn *c, const char *sql,
                       const dbpool_value *params, size_t nparams)
{
    if (c == NULL || lib_begin_request(c, PT_QUERY) < 0 || lib_put_query(c, sql, params, nparams) < 0)
        return -1;
    if (lib_send_request(c) < 0)
        return -1;
    lib_stmt_reset(c);
    c->affected = c->last_id = 0;
    c->mode = MODE_QUERY;
    c->stream = STREAM_ACTIVE;
    for (;;) {                          /* wait for the first answer */
        enum event ev = lib_next_event(c);
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
        return lib_fail(c, DBPOOL_E_USAGE, "row is NULL");
    *row = NULL;
    switch (c->stream) {
    case STREAM_DONE:
        return 0;
    case STREAM_FAILED:
        return -1;
    case STREAM_NONE:
        return lib_fail(c, DBPOOL_E_USAGE, "no statement is running; call dbpool_query_start first");
    case STREAM_ACTIVE:
        break;
    }
    lib_arm_deadline(c, c->request_timeout);
    switch (lib_query_event(c)) {
    case EV_ROW:
        if (lib_terminate_texts(c) < 0)
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
        return lib_drain(c);
    r = lib_result_new(DBPOOL_RESULT_OK);
    if (r == NULL)
        return lib_fail_oom(c);
    while ((ev = lib_query_event(c)) == EV_ROW) {
        if (lib_result_add_row(r, c->row, c->ncols) < 0) {
            dbpool_result_free(r);
            return lib_fail_oom(c);
        }
    }
    if (ev != EV_DONE || lib_result_finish(r, c) < 0) {
        dbpool_result_free(r);
        return ev != EV_DONE ? -1 : lib_fail_oom(c);
    }
    *out = r;
    return 0;
}

int dbpool_exec(dbpool_conn *c, const char *sql)
{
    return dbpool_query(c, sql, NULL, 0, NULL);
}

/* ------------------------------------------------------------ batches */

/* Reads a batch response, building results[i] (when results != NULL) for
 * each statement that completes. */
static int read_batch(dbpool_conn *c, size_t n, dbpool_result **results)
{
    dbpool_result *cur = NULL;
    size_t idx = 0;

    for (;;) {
        enum event ev = lib_next_event(c);
        if (ev == EV_ROW && results != NULL) {
            if (cur == NULL && (cur = lib_result_new(DBPOOL_RESULT_OK)) == NULL)
                return lib_fail_oom(c);
            if (lib_result_add_row(cur, c->row, c->ncols) < 0)
                break;
        } else if (ev == EV_STMT) {
            if (idx >= n) {
                dbpool_result_free(cur);
                return lib_fail_closed(c, DBPOOL_E_PROTOCOL,
                                   "protocol error: more STMT_DONE frames than statements in the batch; session closed");
            }
            if (results != NULL) {
                if (cur == NULL && (cur = lib_result_new(DBPOOL_RESULT_OK)) == NULL)
                    return lib_fail_oom(c);
                if (lib_result_finish(cur, c) < 0)
                    break;
                cur->stmt_index = (int32_t)idx;
                results[idx] = cur;
                cur = NULL;
            }
            idx++;
            lib_stmt_reset(c);
        } else if (ev == EV_DONE || ev == EV_FAIL) {
            dbpool_result_free(cur);
            return ev == EV_DONE ? 0 : -1;
        }
    }
    dbpool_result_free(cur);
    return lib_fail_oom(c);
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
    if (c == NULL || lib_begin_request(c, PT_BATCH) < 0 || lib_check_batch(c, stmts, n) < 0)
        return -1;
    if (n == 0)
        return 0;                       /* nothing to run; the protocol rejects empty batches */
    proto_put_batch(&c->out, atomic ? PB_ATOMIC : 0, stmts, n);
    if (lib_send_request(c) < 0)
        return -1;
    lib_stmt_reset(c);
    c->mode = MODE_BATCH;
    rc = read_batch(c, n, results);
    lib_stmt_reset(c);
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

    if (c == NULL || lib_begin_request(c, type) < 0)
        return -1;
    if (with_flags)
        proto_put_begin(&c->out, flags);
    else
        proto_put_empty(&c->out, type);
    if (lib_send_request(c) < 0 || lib_read_frame(c, &rtype, &p, &n) < 0)
        return -1;
    return lib_completion(c, rtype, p, n);
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

int dbpool_pin(dbpool_conn *c)
{
    int rc = simple_request(c, PT_PIN, 0, 0);

    if (rc == 0)
        c->pinned = true;
    return rc;
}

int dbpool_unpin(dbpool_conn *c)
{
    int rc = simple_request(c, PT_UNPIN, 0, 0);

    if (rc == 0)
        c->pinned = false;
    return rc;
}

int dbpool_is_pinned(const dbpool_conn *c)
{
    return c != NULL && c->fd >= 0 && c->pinned;
}

int dbpool_with_transaction(dbpool_conn *c, int flags,
                            int (*fn)(dbpool_conn *c, void *arg), void *arg)
{
    int rc;

    if (c == NULL)
        return -1;
    if (fn == NULL)
        return lib_fail(c, DBPOOL_E_USAGE, "fn is NULL");
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
