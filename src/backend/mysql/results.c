/*
 * results.c — reading a MySQL statement's results (results.h): columns and
 * typed values (mysql_types.h) to the sink, one row per fetch, from the
 * text protocol (mysql_use_result + mysql_fetch_row_start/cont) or the
 * binary protocol (mysql_stmt_fetch_start/cont, unbuffered); further
 * result sets; the statement's completion or failure.
 *
 * BACK-PRESSURE
 *
 * Rows are fetched one at a time; nothing is buffered beyond what the
 * library holds of the socket. When sink->row returns false, c->paused is
 * set and the socket is no longer read (my_io_pause): the kernel buffers
 * fill and the server blocks in its send. resume() continues from
 * c->ex->ev_step. A burst of rows the socket already holds is cut every
 * MY_BURST rows (the loop goes round) so other connections are served.
 * cancel() of a paused stream resumes it (cancel.c) with c->canceled set,
 * and a cancel() from inside sink->row (a row above maxFrameSize) does not
 * pause at all: the rest is read and dropped until the server's KILL QUERY
 * ends it (1317, CANCELED) or it ends first (CANCELED as well when rows
 * were dropped: a KILL that came late must not pass a truncated stream as
 * complete); the connection stays usable.
 * String buffers that grew for a long value are given back when the
 * statement ends (stmt.c, my_ex_trim).
 *
 * RESULT SETS
 *
 * The protocol carries one result set per statement. A CALL returns its
 * procedure's result sets and then a status result: the first result set
 * is delivered, the status is read (and sets rows_affected when there was
 * no result set). A further result set is read and dropped, and the
 * statement then fails with 0A000 saying so (its side effects happened:
 * the message says to return one result set per procedure). Multi-
 * statement text is refused by the server itself (the connection does not
 * set CLIENT_MULTI_STATEMENTS): a syntax error at the second statement.
 *
 * TRANSACTION STATE
 *
 * From the server status flags of the statement's last OK/EOF packet
 * (SERVER_STATUS_IN_TRANS): DDL's implicit commit shows as 'I'. An error
 * packet carries no status, so after a deadlock (1213, the server rolled
 * the transaction back) 'I' is reported explicitly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <mysql.h>

#include "backend/backend.h"
#include "backend/mysql/mysql_internal.h"
#include "backend/mysql/mysql_types.h"
#include "backend/mysql/results.h"
#include "backend/mysql/stmt.h"

enum {
    MY_BURST = 256,           /* rows delivered before the loop gets a turn */
    MY_VAR_INITIAL = 256,     /* first size of a string column's buffer */
    ER_PARSE_ERROR = 1064,
    ER_LOCK_DEADLOCK = 1213,
    ER_UNKNOWN_STMT_HANDLER = 1243,
    ER_NEED_REPREPARE = 1615,
};

static void next_result(struct mysql_conn *c);
static void text_loop(struct mysql_conn *c);
static void bin_loop(struct mysql_conn *c);

/* -------------------------------------------------------------- columns */

static bool grow(void **p, size_t n, size_t size)
{
    void *q = realloc(*p, n * size);

    if (!q)
        return false;
    *p = q;
    return true;
}

static bool ensure_cols(struct my_exec *ex, size_t n)
{
    if (n <= ex->cap)
        return true;
    if (!grow((void **)&ex->cols, n, sizeof(*ex->cols)) ||
        !grow((void **)&ex->dcols, n, sizeof(*ex->dcols)) ||
        !grow((void **)&ex->vals, n, sizeof(*ex->vals)) ||
        !grow((void **)&ex->rbind, n, sizeof(*ex->rbind)) ||
        !grow((void **)&ex->cells, n, sizeof(*ex->cells)))
        return false;
    memset(ex->cells + ex->cap, 0, (n - ex->cap) * sizeof(*ex->cells));
    ex->cap = n;
    return true;
}

static void fail_internal(struct mysql_conn *c, const char *what)
{
    struct backend_result r;

    /* the result is half read: the connection cannot be reused */
    backend_result_error(&r, DBPOOL_E_INTERNAL, "", 'I',
                         "out of memory %s; the connection is closed and the pool opens a new one",
                         what);
    r.broken = true;
    my_rs_fail_with(c, &r);
}

/* A result set begins: its columns to the sink (the first one only). */
static bool set_columns(struct mysql_conn *c, const MYSQL_FIELD *f, unsigned n)
{
    struct my_exec *ex = c->ex;

    if (!ensure_cols(ex, n)) {
        fail_internal(c, "reading the result's columns");
        return false;
    }
    ex->ncols = n;
    for (unsigned i = 0; i < n; i++) {
        my_col_init(&ex->cols[i], &f[i]);
        ex->dcols[i].name = f[i].name;
        ex->dcols[i].decl_type = my_decl_type(&f[i]);
    }
    if (ex->cols_sent) {
        ex->extra_set = true;   /* a second result set: read and dropped */
        return true;
    }
    ex->cols_sent = true;
    if (c->sink.columns)
        c->sink.columns(c->arg, n, ex->dcols);
    return !c->closed;
}

/* One row converted into ex->vals to the sink; false when the sink paused
 * the stream or closed the connection. */
static bool deliver(struct mysql_conn *c)
{
    struct my_exec *ex = c->ex;
    bool more = c->sink.row ? c->sink.row(c->arg, ex->ncols, ex->vals) : true;

    if (c->closed)
        return false;
    if (!more && !c->canceled) {   /* (cancel() from inside row(): read on, dropping) */
        c->paused = true;
        my_io_pause(c);
        return false;
    }
    return true;
}

/* Rows are dropped (cancelled, or a result set after the first). */
static bool dropping(struct mysql_conn *c)
{
    if (c->canceled) {
        c->ex->dropped = true;
        return true;
    }
    return c->ex->extra_set;
}

/* After MY_BURST rows, let the loop serve others; true when it must. */
static bool yield(struct mysql_conn *c)
{
    struct my_exec *ex = c->ex;

    if (++ex->burst < MY_BURST)
        return false;
    ex->burst = 0;
    ex->step_begin = false;
    event_active(ex->ev_step, 0, 0);
    return true;
}

/* --------------------------------------------------- completion, errors */

static void complete(struct mysql_conn *c, const struct backend_result *r)
{
    my_stmt_end(c->ex);   /* a one-off handle is closed before the next statement */
    my_ex_trim(c->ex);
    my_complete(c, r);
}

static void finish(struct mysql_conn *c)
{
    struct my_exec *ex = c->ex;
    struct backend_result r;

    if (ex->extra_set) {
        backend_result_error(&r, DBPOOL_E_SQL, "0A000", my_server_txstate(c->m),
                             "the statement returned more than one result set; dbpoold passes "
                             "on the first one only (the others were dropped, and the "
                             "statement did run): return one result set per procedure");
        complete(c, &r);
        return;
    }
    if (ex->dropped) {
        /* The KILL came too late (e.g. the server had sent the last rows
         * into the socket of a paused stream and found the session idle):
         * the rows read since the cancel were dropped, so this is no
         * success for the client. */
        backend_result_error(&r, DBPOOL_E_CANCELED, "57014", my_server_txstate(c->m),
                             "canceled; the statement had already completed on the server (what "
                             "it changed stands), but its rows after the cancel were not sent");
        complete(c, &r);
        return;
    }
    backend_result_ok(&r, my_server_txstate(c->m));
    r.rows_affected = ex->cols_sent ? ex->rows : ex->affected;
    r.last_insert_id = ex->insert_id;
    r.stmt_cache = ex->stmt_flag;
    r.schema_changed = ex->ddl;
    complete(c, &r);
}

/* The error on the handle: the statement's own when it carries a
 * client-side one the connection does not. */
static void handle_error(struct mysql_conn *c, struct backend_result *r)
{
    struct my_exec *ex = c->ex;
    unsigned st_err = ex->st ? mysql_stmt_errno(ex->st) : 0;

    if (st_err && st_err != mysql_errno(c->m)) {
        backend_result_error(r, DBPOOL_E_SQL, mysql_stmt_sqlstate(ex->st), my_server_txstate(c->m),
                             "%s", mysql_stmt_error(ex->st));
        r->err.vendor_code = (int32_t)st_err;
    } else {
        my_error_from_handle(c, r);
    }
    if (r->err.vendor_code == ER_PARSE_ERROR && ex->multi) {
        size_t n = strlen(r->err.message);
        snprintf(r->err.message + n, sizeof(r->err.message) - n, "%s",
                 " (dbpoold runs one statement per request: send the statements one by one "
                 "or as a batch)");
    }
    if (r->err.vendor_code == ER_LOCK_DEADLOCK)
        r->txstate = 'I';   /* the server rolled the transaction back */
    if (ex->st &&
        (r->err.vendor_code == ER_UNKNOWN_STMT_HANDLER || r->err.vendor_code == ER_NEED_REPREPARE))
        my_stmt_forget(ex);   /* prepared afresh next time */
}

void my_rs_fail(struct mysql_conn *c)
{
    struct backend_result r;

    handle_error(c, &r);
    my_rs_fail_with(c, &r);
}

static void free_cont(struct mysql_conn *c, int ready);

/* An error packet carries no status flags: after a failed DDL (which may
 * have committed implicitly before it failed) or CALL inside a transaction,
 * "DO 0" asks the server whether the transaction is still open. */
static bool must_probe(const struct mysql_conn *c, const struct backend_result *r)
{
    return !r->broken && r->txstate == 'T' && (c->ex->ddl || c->ex->call);
}

static void probe_done(struct mysql_conn *c)
{
    struct my_exec *ex = c->ex;
    struct backend_result r = ex->err;

    if (c->ret_int == 0)
        r.txstate = my_server_txstate(c->m);
    else if (my_errno_is_lost(mysql_errno(c->m)))
        r.broken = true;
    complete(c, &r);
}

static void probe_cont(struct mysql_conn *c, int ready)
{
    int status = mysql_real_query_cont(&c->ret_int, c->m, ready);

    if (status)
        my_wait(c, status, probe_cont);
    else
        probe_done(c);
}

/* The failed statement's results are read: report ex->err. */
static void fail_finish(struct mysql_conn *c)
{
    struct my_exec *ex = c->ex;
    static const char probe[] = "DO 0";
    int status;

    if (!must_probe(c, &ex->err)) {
        complete(c, &ex->err);
        return;
    }
    status = mysql_real_query_start(&c->ret_int, c->m, probe, sizeof(probe) - 1);
    if (status)
        my_wait(c, status, probe_cont);
    else
        probe_done(c);
}

static void result_freed(struct mysql_conn *c)
{
    c->ex->res = NULL;
    if (c->ex->after == AFTER_FAIL)
        fail_finish(c);
    else
        next_result(c);
}

/* Free the text result set (the library reads what is left of it), then
 * go on as ex->after says. */
static void free_result(struct mysql_conn *c, enum my_after after)
{
    int status = mysql_free_result_start(c->ex->res);

    c->ex->after = after;
    if (status)
        my_wait(c, status, free_cont);
    else
        result_freed(c);
}

static void free_cont(struct mysql_conn *c, int ready)
{
    int status = mysql_free_result_cont(c->ex->res, ready);

    if (status)
        my_wait(c, status, free_cont);
    else
        result_freed(c);
}

void my_rs_fail_with(struct mysql_conn *c, const struct backend_result *r)
{
    struct my_exec *ex = c->ex;

    ex->err = *r;
    if (ex->res && !r->broken) {
        free_result(c, AFTER_FAIL);
        return;
    }
    /* broken: the result set is freed with the connection (my_exec_release) */
    fail_finish(c);
}

/* ------------------------------------------------------ further results */

static void next_done(struct mysql_conn *c)
{
    if (c->ret_int > 0)
        my_rs_fail(c);
    else if (c->ret_int < 0)
        finish(c);
    else
        my_rs_read(c);
}

static void next_cont(struct mysql_conn *c, int ready)
{
    struct my_exec *ex = c->ex;
    int status = ex->st ? mysql_stmt_next_result_cont(&c->ret_int, ex->st, ready)
                        : mysql_next_result_cont(&c->ret_int, c->m, ready);

    if (status)
        my_wait(c, status, next_cont);
    else
        next_done(c);
}

static void next_result(struct mysql_conn *c)
{
    struct my_exec *ex = c->ex;
    int status;

    if (ex->st ? !mysql_stmt_more_results(ex->st) : !mysql_more_results(c->m)) {
        finish(c);
        return;
    }
    status = ex->st ? mysql_stmt_next_result_start(&c->ret_int, ex->st)
                    : mysql_next_result_start(&c->ret_int, c->m);
    if (status)
        my_wait(c, status, next_cont);
    else
        next_done(c);
}

/* -------------------------------------------------------- text protocol */

/* The row in ex->row (NULL: the end, or an error); true to fetch on. */
static bool text_row(struct mysql_conn *c)
{
    struct my_exec *ex = c->ex;
    unsigned long *len;

    if (!ex->row) {
        if (mysql_errno(c->m))
            my_rs_fail(c);
        else
            free_result(c, AFTER_NEXT);
        return false;
    }
    if (!ex->extra_set)
        ex->rows++;
    if (dropping(c))
        return !yield(c);
    len = mysql_fetch_lengths(ex->res);
    for (size_t i = 0; i < ex->ncols; i++)
        my_text_value(&ex->cols[i], ex->row[i], len[i], &ex->vals[i]);
    return deliver(c) && !yield(c);
}

static void text_cont(struct mysql_conn *c, int ready)
{
    int status = mysql_fetch_row_cont(&c->ex->row, c->ex->res, ready);

    if (status)
        my_wait(c, status, text_cont);
    else if (text_row(c))
        text_loop(c);
}

static void text_loop(struct mysql_conn *c)
{
    struct my_exec *ex = c->ex;

    for (;;) {
        int status = mysql_fetch_row_start(&ex->row, ex->res);
        if (status) {
            my_wait(c, status, text_cont);
            return;
        }
        if (!text_row(c))
            return;
    }
}

static void text_read(struct mysql_conn *c)
{
    struct my_exec *ex = c->ex;
    unsigned n = mysql_field_count(c->m);

    if (n == 0) {
        ex->affected = (int64_t)mysql_affected_rows(c->m);
        ex->insert_id = (int64_t)mysql_insert_id(c->m);
        next_result(c);
        return;
    }
    ex->res = mysql_use_result(c->m);
    if (!ex->res) {
        my_rs_fail(c);
        return;
    }
    if (set_columns(c, mysql_fetch_fields(ex->res), n))
        text_loop(c);
}

/* ------------------------------------------------------ binary protocol */

static bool ensure_var(struct my_cell *cell, size_t n)
{
    size_t cap = cell->var_cap ? cell->var_cap : MY_VAR_INITIAL;
    char *p;

    if (cell->var && n <= cell->var_cap)
        return true;
    while (cap < n)
        cap *= 2;
    p = realloc(cell->var, cap);
    if (!p)
        return false;
    cell->var = p;
    cell->var_cap = cap;
    return true;
}

static bool bind_results(struct mysql_conn *c, const MYSQL_FIELD *f)
{
    struct my_exec *ex = c->ex;

    for (size_t i = 0; i < ex->ncols; i++) {
        if (my_kind_is_var(ex->cols[i].kind) && !ensure_var(&ex->cells[i], 1))
            return false;
        my_bind_result(&ex->cols[i], &f[i], &ex->rbind[i], &ex->cells[i]);
    }
    return true;
}

/* Strings longer than their buffers: grow them and take the whole value
 * from the row the library holds (no I/O). */
static bool fetch_truncated(struct mysql_conn *c)
{
    struct my_exec *ex = c->ex;

    for (size_t i = 0; i < ex->ncols; i++) {
        struct my_cell *cell = &ex->cells[i];
        MYSQL_BIND *b = &ex->rbind[i];
        if (!my_kind_is_var(ex->cols[i].kind) || cell->is_null || cell->length <= cell->var_cap)
            continue;
        if (!ensure_var(cell, cell->length))
            return false;
        if (cell->var_cap > MY_QBUF_KEEP)
            ex->big_cells = true;
        b->buffer = cell->var;
        b->buffer_length = cell->var_cap;
        if (mysql_stmt_fetch_column(ex->st, b, (unsigned)i, 0) != 0)
            return false;
        ex->rebind = true;
    }
    return true;
}

/* The outcome of a fetch in c->ret_int; true to fetch on. */
static bool bin_row(struct mysql_conn *c)
{
    struct my_exec *ex = c->ex;
    int rc = c->ret_int;

    if (rc == MYSQL_NO_DATA) {
        next_result(c);
        return false;
    }
    if (rc != 0 && rc != MYSQL_DATA_TRUNCATED) {
        my_rs_fail(c);
        return false;
    }
    if (!ex->extra_set)
        ex->rows++;
    if (dropping(c))
        return !yield(c);
    if (rc == MYSQL_DATA_TRUNCATED && !fetch_truncated(c)) {
        fail_internal(c, "reading a long value");
        return false;
    }
    if (ex->rebind) {
        ex->rebind = false;
        if (mysql_stmt_bind_result(ex->st, ex->rbind)) {
            my_rs_fail(c);
            return false;
        }
    }
    for (size_t i = 0; i < ex->ncols; i++)
        my_cell_value(&ex->cols[i], &ex->cells[i], &ex->vals[i]);
    return deliver(c) && !yield(c);
}

static void bin_cont(struct mysql_conn *c, int ready)
{
    int status = mysql_stmt_fetch_cont(&c->ret_int, c->ex->st, ready);

    if (status)
        my_wait(c, status, bin_cont);
    else if (bin_row(c))
        bin_loop(c);
}

static void bin_loop(struct mysql_conn *c)
{
    for (;;) {
        int status = mysql_stmt_fetch_start(&c->ret_int, c->ex->st);
        if (status) {
            my_wait(c, status, bin_cont);
            return;
        }
        if (!bin_row(c))
            return;
    }
}

static void bin_read(struct mysql_conn *c)
{
    struct my_exec *ex = c->ex;
    MYSQL_STMT *st = ex->st;
    unsigned n = mysql_stmt_field_count(st);

    if (n == 0) {
        ex->affected = (int64_t)mysql_stmt_affected_rows(st);
        ex->insert_id = (int64_t)mysql_stmt_insert_id(st);
        next_result(c);
        return;
    }
    if (!set_columns(c, st->fields, n))
        return;
    if (!bind_results(c, st->fields)) {
        fail_internal(c, "binding the result's columns");
        return;
    }
    if (mysql_stmt_bind_result(st, ex->rbind)) {
        my_rs_fail(c);
        return;
    }
    bin_loop(c);
}

/* ------------------------------------------------------------ entry points */

void my_rs_read(struct mysql_conn *c)
{
    if (c->ex->st)
        bin_read(c);
    else
        text_read(c);
}

void my_rs_resume(struct mysql_conn *c)
{
    struct my_exec *ex = c->ex;

    if (c->paused)
        return;
    if (ex->res)
        text_loop(c);
    else if (ex->st)
        bin_loop(c);
}
