/*
 * exec.c — the MySQL driver's exec() (mysql_internal.h): the steps that
 * send a statement, each a *_start() call continued by my_wait until it is
 * done, after which results.c reads what came back.
 *
 *   0. exec() checks what needs no server (a ? without parameters: 07001;
 *      the parameter limit), copies the statement and its parameters (the
 *      caller may free them while the operation runs) and notes what the
 *      results will need (DDL, CALL, more than one statement)
 *   1. close the handles the statement cache let go (stmt.h), one
 *      mysql_stmt_close_start/cont each (COM_STMT_CLOSE: no answer)
 *   2a. no parameters (and the daemon's own BEGIN/COMMIT/SAVEPOINT,
 *      BQ_INTERNAL): mysql_real_query_start/cont, the text protocol
 *   2b. parameters: the cached prepared statement for this SQL, or
 *      mysql_stmt_init + mysql_stmt_prepare_start/cont (kept by the cache
 *      when it sees the SQL the second time); the placeholder count the
 *      server found checked against the parameters given (07001);
 *      mysql_stmt_bind_param; mysql_stmt_execute_start/cont, the binary
 *      protocol
 *
 * A cancel() that comes before step 2 sent anything ends the statement
 * unrun (CANCELED). The first step runs from c->ex->ev_step, never inside
 * exec(): callbacks never run inside a driver call, and a *_start() that
 * finishes at once needs no special case. The same event continues a
 * resumed stream.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <errmsg.h>
#include <mysql.h>

#include "backend/backend.h"
#include "backend/mysql/mysql_internal.h"
#include "backend/mysql/results.h"
#include "backend/mysql/stmt.h"

enum { MY_MAX_PARAMS = 65535 };   /* the protocol's limit (16-bit count) */

static void begin(struct mysql_conn *c);

/* cancel() came before the statement was sent: nothing runs (a KILL
 * QUERY that reaches an idle server connection kills nothing). True when
 * the operation ended so. */
static bool canceled_before_sending(struct mysql_conn *c)
{
    struct backend_result r;

    if (!c->canceled)
        return false;
    backend_result_error(&r, DBPOOL_E_CANCELED, "57014", c->txstate,
                         "the statement was cancelled before it ran");
    my_rs_fail_with(c, &r);
    return true;
}

/* ---------------------------------------------------------- the garbage */

static void close_cont(struct mysql_conn *c, int ready)
{
    struct my_exec *ex = c->ex;
    int status = mysql_stmt_close_cont(&c->ret_bool, ex->closing, ready);

    if (status) {
        my_wait(c, status, close_cont);
        return;
    }
    ex->closing = NULL;   /* closed and freed, whatever the outcome: the statement
                             that follows finds out if the connection is gone */
    begin(c);
}

/* Close garbage handles until one has to wait; false when it waits. */
static bool close_garbage(struct mysql_conn *c)
{
    struct my_exec *ex = c->ex;
    MYSQL_STMT *st;

    while ((st = my_stmt_next_close(ex))) {
        int status = mysql_stmt_close_start(&c->ret_bool, st);
        if (status) {
            ex->closing = st;
            my_wait(c, status, close_cont);
            return false;
        }
    }
    return true;
}

/* -------------------------------------------------------- text protocol */

static void query_done(struct mysql_conn *c)
{
    if (c->ret_int)
        my_rs_fail(c);
    else
        my_rs_read(c);
}

static void query_cont(struct mysql_conn *c, int ready)
{
    int status = mysql_real_query_cont(&c->ret_int, c->m, ready);

    if (status)
        my_wait(c, status, query_cont);
    else
        query_done(c);
}

static void text_query(struct mysql_conn *c)
{
    struct my_exec *ex = c->ex;
    int status = mysql_real_query_start(&c->ret_int, c->m, ex->sql, (unsigned long)ex->sql_len);

    if (status)
        my_wait(c, status, query_cont);
    else
        query_done(c);
}

/* --------------------------------------------------- prepared statements */

static void prepared(struct mysql_conn *c);
static void stale_drained(struct mysql_conn *c);

static void stale_cont(struct mysql_conn *c, int ready)
{
    int status = mysql_stmt_free_result_cont(&c->ret_bool, c->ex->st, ready);

    if (status)
        my_wait(c, status, stale_cont);
    else
        stale_drained(c);
}

/* Statements that only read: running one again costs nothing but time. */
static bool only_reads(const char *sql, size_t len)
{
    static const char *const words[] = { "SELECT", "WITH", "SHOW", "DESC", "DESCRIBE",
                                         "EXPLAIN", "VALUES", "TABLE", NULL };

    return sql_starts_with_keyword(sql, len, words);
}

/* The rows of the refused execution are read and dropped. */
static void stale_drained(struct mysql_conn *c)
{
    struct my_exec *ex = c->ex;
    struct backend_result r;

    if (!ex->retried && only_reads(ex->sql, ex->sql_len)) {
        ex->retried = true;
        my_stmt_end(ex);   /* closed before the next statement (the cache's garbage,
                              or a one-off handle) */
        ex->st_cached = false;
        ex->stmt_flag = 0;
        prepared(c);
        return;
    }
    backend_result_error(&r, DBPOOL_E_SQL, "HY000", my_server_txstate(c->m),
                         "the columns of a table this prepared statement reads changed since it "
                         "was prepared (DDL on another connection); it ran, but its result was "
                         "dropped, and it is prepared afresh next time: check whether it must "
                         "run again");
    r.err.vendor_code = CR_NEW_STMT_METADATA;
    my_rs_fail_with(c, &r);
}

/* A table behind a cached prepared statement changed its columns through
 * a connection the pool does not see: the server prepared the statement
 * again and sent rows of the new shape, which Connector/C refuses
 * (CR_NEW_STMT_METADATA), leaving them unread on the connection. Read and
 * drop them, forget the handle, and run a statement that only reads once
 * more, prepared afresh (anything else might change data twice: its
 * client gets the error). */
static void stale_metadata(struct mysql_conn *c)
{
    int status;

    my_stmt_forget(c->ex);
    status = mysql_stmt_free_result_start(&c->ret_bool, c->ex->st);
    if (status)
        my_wait(c, status, stale_cont);
    else
        stale_drained(c);
}

static void execute_done(struct mysql_conn *c)
{
    if (c->ret_int && mysql_stmt_errno(c->ex->st) == CR_NEW_STMT_METADATA)
        stale_metadata(c);
    else if (c->ret_int)
        my_rs_fail(c);
    else
        my_rs_read(c);
}

static void execute_cont(struct mysql_conn *c, int ready)
{
    int status = mysql_stmt_execute_cont(&c->ret_int, c->ex->st, ready);

    if (status)
        my_wait(c, status, execute_cont);
    else
        execute_done(c);
}

static bool bind_params(struct mysql_conn *c)
{
    struct my_exec *ex = c->ex;
    unsigned long want = mysql_stmt_param_count(ex->st);
    struct backend_result r;

    if (want != ex->nparams) {
        backend_result_error(&r, DBPOOL_E_SQL, "07001", c->txstate,
                             "the statement has %lu ? placeholder%s but %zu parameter%s given: "
                             "pass one value per ?", want, want == 1 ? "" : "s", ex->nparams,
                             ex->nparams == 1 ? " was" : "s were");
        my_rs_fail_with(c, &r);
        return false;
    }
    if (ex->nparams > ex->pcap) {
        MYSQL_BIND *b = realloc(ex->pbind, ex->nparams * sizeof(*b));
        if (!b) {
            backend_result_error(&r, DBPOOL_E_INTERNAL, "", c->txstate,
                                 "out of memory binding %zu parameters", ex->nparams);
            my_rs_fail_with(c, &r);
            return false;
        }
        ex->pbind = b;
        ex->pcap = ex->nparams;
    }
    for (size_t i = 0; i < ex->nparams; i++)
        (void)my_bind_param(&ex->pbind[i], &ex->params[i]);
    if (mysql_stmt_bind_param(ex->st, ex->pbind)) {
        my_rs_fail(c);
        return false;
    }
    return true;
}

static void execute(struct mysql_conn *c)
{
    int status;

    if (canceled_before_sending(c) || !bind_params(c))
        return;
    status = mysql_stmt_execute_start(&c->ret_int, c->ex->st);
    if (status)
        my_wait(c, status, execute_cont);
    else
        execute_done(c);
}

static void prepare_done(struct mysql_conn *c)
{
    struct my_exec *ex = c->ex;

    if (c->ret_int) {
        my_rs_fail(c);   /* the handle is closed before the next statement */
        return;
    }
    my_stmt_prepared(ex);
    execute(c);
}

static void prepare_cont(struct mysql_conn *c, int ready)
{
    int status = mysql_stmt_prepare_cont(&c->ret_int, c->ex->st, ready);

    if (status)
        my_wait(c, status, prepare_cont);
    else
        prepare_done(c);
}

/* A prepared statement names its tables as resolved in the database it
 * was prepared in: after a client's USE (which makes the connection dirty,
 * mysql_internal.h "SESSION STATE"; the library follows the current
 * database through the server's session tracking), the same SQL text means
 * other tables, so the cached statements are forgotten. */
static void follow_database(struct mysql_conn *c)
{
    struct my_exec *ex = c->ex;
    const char *db = c->m->db ? c->m->db : "";

    if (strcmp(db, ex->db) == 0)
        return;
    my_schema_changed(c);
    snprintf(ex->db, sizeof(ex->db), "%s", db);
}

static void prepared(struct mysql_conn *c)
{
    struct my_exec *ex = c->ex;
    int status;

    if (c->dirty)
        follow_database(c);
    ex->st = my_stmt_lookup(ex);
    if (ex->st) {
        ex->st_cached = true;
        ex->stmt_flag = BR_CACHED;
        execute(c);
        return;
    }
    ex->st = mysql_stmt_init(c->m);
    if (!ex->st) {
        struct backend_result r;
        backend_result_error(&r, DBPOOL_E_INTERNAL, "", c->txstate,
                             "out of memory preparing the statement");
        my_rs_fail_with(c, &r);
        return;
    }
    status = mysql_stmt_prepare_start(&c->ret_int, ex->st, ex->sql, (unsigned long)ex->sql_len);
    if (status)
        my_wait(c, status, prepare_cont);
    else
        prepare_done(c);
}

/* ----------------------------------------------------------- operation */

static void begin(struct mysql_conn *c)
{
    if (!close_garbage(c) || canceled_before_sending(c))
        return;
    if (c->ex->nparams == 0)
        text_query(c);
    else
        prepared(c);
}

/* c->ex->ev_step: the statement's first step, or a resumed stream. */
static void on_step(evutil_socket_t fd, short what, void *arg)
{
    struct mysql_conn *c = arg;

    (void)fd;
    (void)what;
    my_enter(c);
    if (!c->closed && c->op == MOP_EXEC && c->ex) {
        if (c->ex->step_begin)
            begin(c);
        else
            my_rs_resume(c);
    }
    my_leave(c);
}

static bool is_ddl(const char *sql, size_t len)
{
    static const char *const words[] = { "CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE", NULL };

    return sql_starts_with_keyword(sql, len, words);
}

/* Table locks and the global read lock outlive the statement and are not
 * reported by the session tracker: the connection is reset after them. */
static bool takes_locks(const char *sql, size_t len)
{
    static const char *const words[] = { "LOCK", "FLUSH", NULL };

    return sql_starts_with_keyword(sql, len, words);
}

static bool is_call(const char *sql, size_t len)
{
    static const char *const words[] = { "CALL", NULL };

    return sql_starts_with_keyword(sql, len, words);
}

/* Index after the quoted run starting at s[i] == q: '...' and "..." with
 * backslash escapes, `...` without; a doubled quote stands for itself. */
static size_t skip_quoted(const char *s, size_t len, size_t i, char q)
{
    for (i++; i < len; i++) {
        if (s[i] == '\\' && q != '`')
            i++;
        else if (s[i] == q && !(i + 1 < len && s[i + 1] == q))
            return i + 1;
        else if (s[i] == q)
            i++;
    }
    return len;
}

/* Index after a comment starting at s[i], or i when none starts there:
 * "-- " and "#" to the end of the line, block comments (MySQL's executable
 * comments, slash-star-bang, are code: only their opening is skipped). */
static size_t skip_comment(const char *s, size_t len, size_t i)
{
    const char *end;

    if (s[i] == '#' || (s[i] == '-' && i + 2 < len && s[i + 1] == '-' &&
                        (unsigned char)s[i + 2] <= ' ')) {
        end = memchr(s + i, '\n', len - i);
        return end ? (size_t)(end - s) + 1 : len;
    }
    if (s[i] != '/' || i + 1 >= len || s[i + 1] != '*')
        return i;
    if (i + 2 < len && (s[i + 2] == '!' || s[i + 2] == 'M'))
        return i + 3;
    for (i += 2; i + 1 < len; i++)
        if (s[i] == '*' && s[i + 1] == '/')
            return i + 2;
    return len;
}

/* The occurrences of ch in MySQL-style SQL outside strings, quoted names
 * and comments; with after_semicolon, only those that follow a ';' (so
 * ch == 0 asks: does anything but space and comments follow a ';'?). */
static size_t count_code(const char *s, size_t len, char ch, bool after_semicolon)
{
    size_t n = 0;
    bool seen_semicolon = false;

    for (size_t i = 0; i < len;) {
        size_t next = skip_comment(s, len, i);
        if (next != i) {
            i = next;
            continue;
        }
        if (seen_semicolon && ch == 0 && !isspace((unsigned char)s[i]) && s[i] != ';')
            return 1;
        if (s[i] == '\'' || s[i] == '"' || s[i] == '`') {
            i = skip_quoted(s, len, i, s[i]);
            continue;
        }
        if (s[i] == ';')
            seen_semicolon = true;
        else if (s[i] == ch && ch != 0 && (!after_semicolon || seen_semicolon))
            n++;
        i++;
    }
    return n;
}

static size_t count_placeholders(const char *s, size_t len)
{
    return memchr(s, '?', len) ? count_code(s, len, '?', false) : 0;
}

/* More than one statement in the text (the server refuses it with a
 * syntax error; the driver then says why). */
static bool is_multi(const char *s, size_t len)
{
    return memchr(s, ';', len) && count_code(s, len, 0, true) > 0;
}

static unsigned cache_size(const struct mysql_conn *c)
{
    struct my_settings s;

    my_settings(c->cfg, &s);
    return s.statement_cache_size;
}

static bool check_query(struct mysql_conn *c, const struct backend_query *q)
{
    size_t want;

    if (q->nparams > MY_MAX_PARAMS) {
        my_fail_later(c, DBPOOL_E_SQL, "54000", false,
                      "too many parameters: %zu (MySQL accepts at most %d)", q->nparams,
                      MY_MAX_PARAMS);
        return false;
    }
    if (q->nparams == 0 && (want = count_placeholders(q->sql, q->sql_len)) > 0) {
        /* (with parameters, the server counts them when it prepares) */
        my_fail_later(c, DBPOOL_E_SQL, "07001", false,
                      "the statement has %zu ? placeholder%s but no parameters were given: "
                      "pass one value per ?", want, want == 1 ? "" : "s");
        return false;
    }
    if (q->begin_sql) {   /* begin_with is false: the daemon never asks */
        my_fail_later(c, DBPOOL_E_INTERNAL, "", false,
                      "the MySQL driver cannot open a transaction with a statement");
        return false;
    }
    return true;
}

void my_exec(struct mysql_conn *c, const struct backend_query *q,
             const struct backend_sink *sink, void *arg)
{
    struct my_exec *ex;

    my_start_op(c, MOP_EXEC, sink ? sink->done : NULL, arg, sink);
    if (!my_usable(c) || !check_query(c, q))
        return;
    ex = c->ex;
    if (!ex && (ex = my_ex_get(c, on_step, cache_size(c))))
        snprintf(ex->db, sizeof(ex->db), "%s", c->m->db ? c->m->db : "");
    if (!ex) {
        my_fail_later(c, DBPOOL_E_INTERNAL, "", false, "out of memory starting the statement");
        return;
    }
    if (!my_ex_copy_query(ex, q)) {
        my_fail_later(c, DBPOOL_E_INTERNAL, "", false,
                      "out of memory copying the statement and its parameters");
        return;
    }
    ex->ddl = is_ddl(ex->sql, ex->sql_len);
    ex->call = !ex->ddl && is_call(ex->sql, ex->sql_len);
    if (!ex->ddl && !ex->call && takes_locks(ex->sql, ex->sql_len))
        c->dirty = true;
    ex->multi = ex->nparams == 0 && is_multi(ex->sql, ex->sql_len);
    ex->res = NULL;
    ex->st = NULL;
    ex->st_cached = ex->cols_sent = ex->extra_set = ex->rebind = ex->retried = false;
    ex->dropped = false;
    ex->stmt_flag = 0;
    ex->burst = 0;
    ex->ncols = 0;
    ex->rows = ex->affected = ex->insert_id = 0;
    ex->step_begin = true;
    event_active(ex->ev_step, 0, 0);
}
