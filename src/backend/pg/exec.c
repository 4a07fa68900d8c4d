/*
 * exec.c — the PostgreSQL driver's operations (pg_internal.h): exec and
 * ping, the statement's parameters in libpq's arrays, the stages a
 * statement is sent in (DEALLOCATE garbage, BEGIN, PREPARE, the execution;
 * a BEGIN that opens the transaction goes in the same round trip, in
 * libpq's pipeline mode), and sending them. Reading the results (and the
 * socket callback) is results.c's, which calls back into this file for the
 * next stage.
 *
 * This is the per-statement path: its helpers stay static here so the
 * compiler keeps inlining them.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "backend/backend.h"
#include "backend/pg/pg_internal.h"
#include "backend/pg/exec.h"
#include "backend/pg/cancel.h"
#include "backend/pg/conn.h"
#include "backend/pg/pg_stmtcache.h"

/* ----------------------------------------------------------- parameters */

/* Network byte order, as PostgreSQL's binary int8 and float8 want it. */
static void put_be64(char *dst, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        dst[i] = (char)(v & 0xff);
        v >>= 8;
    }
}

/* Bytes of text one parameter needs; false (with *r filled) when it cannot
 * be sent. */
static bool param_size(const dbpool_value *v, size_t i, size_t *size, struct backend_result *r,
                       char txstate)
{
    switch (v->type) {
    case DBPOOL_NULL:
    case DBPOOL_BLOB:
        if (v->type == DBPOOL_BLOB && v->u.s.len > INT_MAX) {
            backend_result_error(r, DBPOOL_E_SQL, "54000", txstate,
                                 "parameter $%zu: BLOB is larger than 2 GiB", i + 1);
            return false;
        }
        *size = 0;
        return true;
    case DBPOOL_INT64: *size = 8; return true;
    case DBPOOL_FLOAT64: *size = 8; return true;
    case DBPOOL_BOOL: *size = 1; return true;
    case DBPOOL_TEXT:
        if (v->u.s.len > (size_t)INT_MAX - 1) {
            backend_result_error(r, DBPOOL_E_SQL, "54000", txstate,
                                 "parameter $%zu: TEXT is larger than 2 GiB", i + 1);
            return false;
        }
        if (v->u.s.len > 0 && memchr(v->u.s.ptr, '\0', v->u.s.len)) {
            backend_result_error(r, DBPOOL_E_SQL, "22021", txstate,
                                 "parameter $%zu: PostgreSQL text cannot contain NUL bytes; "
                                 "send binary data as a BLOB", i + 1);
            return false;
        }
        *size = v->u.s.len + 1;
        return true;
    }
    backend_result_error(r, DBPOOL_E_INTERNAL, "", txstate,
                         "parameter $%zu has unknown type %d", i + 1, (int)v->type);
    return false;
}

/* Fill slot i; text goes to *p, which advances. */
static void param_fill(struct pg_params *pp, size_t i, const dbpool_value *v, char **p)
{
    size_t used = 0;

    pp->values[i] = NULL;
    pp->lengths[i] = 0;
    pp->formats[i] = 0;
    pp->types[i] = 0;   /* unknown: the server infers the type from context */
    switch (v->type) {
    case DBPOOL_NULL:
        return;
    case DBPOOL_INT64:
        pp->types[i] = OID_INT8;
        put_be64(*p, (uint64_t)v->u.i);
        used = 8;
        break;
    case DBPOOL_FLOAT64: {
        uint64_t bits;
        pp->types[i] = OID_FLOAT8;
        memcpy(&bits, &v->u.f, sizeof(bits));
        put_be64(*p, bits);
        used = 8;
        break;
    }
    case DBPOOL_BOOL:
        pp->types[i] = OID_BOOL;
        **p = v->u.b ? 1 : 0;
        used = 1;
        break;
    case DBPOOL_TEXT:
        if (v->u.s.len > 0)
            memcpy(*p, v->u.s.ptr, v->u.s.len);
        (*p)[v->u.s.len] = '\0';
        used = v->u.s.len + 1;
        break;
    case DBPOOL_BLOB:
        pp->types[i] = OID_BYTEA;
        pp->values[i] = v->u.s.len > 0 ? v->u.s.ptr : "";   /* NULL would mean SQL NULL */
        pp->lengths[i] = (int)v->u.s.len;
        pp->formats[i] = 1;   /* binary: the bytes as they are */
        return;
    }
    pp->values[i] = *p;
    if (v->type != DBPOOL_TEXT) {
        pp->lengths[i] = (int)used;
        pp->formats[i] = 1;   /* binary: no formatting here, no parsing there */
    }
    *p += used;
}

static bool params_build(struct pg_params *pp, const char *sql, size_t sql_len,
                         const dbpool_value *params, size_t n, struct backend_result *r,
                         char txstate)
{
    size_t text = 0, size;
    char *p;

    memset(pp, 0, sizeof(*pp));
    if (n > PG_MAX_PARAMS) {
        backend_result_error(r, DBPOOL_E_SQL, "54000", txstate,
                             "too many parameters: %zu (PostgreSQL accepts at most %d)", n,
                             PG_MAX_PARAMS);
        return false;
    }
    if (sql_len > 0 && memchr(sql, '\0', sql_len)) {
        backend_result_error(r, DBPOOL_E_SQL, "42601", txstate,
                             "statement text contains a NUL byte");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        size_t s;
        if (!param_size(&params[i], i, &s, r, txstate))
            return false;
        text += s;
    }
    size = n * (sizeof(char *) + 2 * sizeof(int) + sizeof(Oid)) + text + sql_len + 1;
    pp->mem = malloc(size);
    if (!pp->mem) {
        backend_result_error(r, DBPOOL_E_INTERNAL, "", txstate,
                             "out of memory preparing the statement");
        return false;
    }
    pp->values = pp->mem;
    pp->lengths = (int *)(pp->values + n);
    pp->formats = pp->lengths + n;
    pp->types = (Oid *)(pp->formats + n);
    p = (char *)(pp->types + n);
    if (sql_len > 0)
        memcpy(p, sql, sql_len);
    p[sql_len] = '\0';
    pp->sql = p;
    pp->sql_len = sql_len;
    pp->n = n;
    p += sql_len + 1;
    for (size_t i = 0; i < n; i++)
        param_fill(pp, i, &params[i], &p);
    return true;
}

/* ---------------------------------------------------------- sending, I/O */

/* End the operation as broken: now inside our callbacks, else from the loop. */
static void fail_send(struct backend_conn *c, bool in_callback, int code, const char *msg)
{
    if (in_callback)
        pg_fail_now(c, code, true, "%s", msg);
    else
        pg_fail_later(c, code, "", true, "%s", msg);
}

/* Push the queued statement out; true when it is all sent and the results
 * are awaited (EV_READ). From exec() (in_callback false) errors are reported
 * from the loop. */
bool pg_flush_step(struct backend_conn *c, bool in_callback)
{
    char msg[sizeof(c->res.err.message)];
    int rc = PQflush(c->pg);

    if (rc < 0) {
        pg_conn_error_message(c, msg, sizeof(msg), "could not send data to server");
        fail_send(c, in_callback, DBPOOL_E_CONN_LOST, msg);
        return false;
    }
    if (rc == 0) {
        c->phase = PH_READING;
        if (c->canceled && !c->cancel_sent && !pg_cancel_send(c)) {
            /* cancel() came while sending, and cannot be sent */
            fail_send(c, in_callback, DBPOOL_E_INTERNAL, "cannot cancel the statement (out of "
                      "memory); the server connection was closed");
            return false;
        }
    }
    if (!pg_arm_io(c, rc == 0 ? EV_READ : EV_READ | EV_WRITE, false)) {
        fail_send(c, in_callback, DBPOOL_E_INTERNAL, "cannot watch the PostgreSQL socket");
        return false;
    }
    return rc == 0;
}

/* -------------------------------------------------------- the operations */

/* The daemon's own statement, after the BEGIN that opens the transaction
 * when there is one: "BEGIN; SAVEPOINT dbpool_sp_1" is one Query message. */
static int send_simple(struct backend_conn *c)
{
    char buf[256];

    if (!c->begin_sql)
        return PQsendQuery(c->pg, c->simple_sql);
    if ((size_t)snprintf(buf, sizeof(buf), "%s; %s", c->begin_sql, c->simple_sql) >= sizeof(buf))
        return 0;   /* the daemon's statements are short */
    c->begin_sql = NULL;
    return PQsendQuery(c->pg, buf);
}

/* The statement itself; a pending BEGIN goes first in the same write, in
 * libpq's pipeline mode (BEGIN, statement, Sync: one round trip). */
static int send_exec(struct backend_conn *c)
{
    const struct pg_params *pp = &c->pp;
    int n = (int)pp->n, rc;

    if (c->simple_sql)
        return send_simple(c);
    if (c->begin_sql) {
        if (!PQenterPipelineMode(c->pg))
            return 0;
        c->pipeline = c->pipe_begin = true;
        if (!PQsendQueryParams(c->pg, c->begin_sql, 0, NULL, NULL, NULL, NULL, 0))
            return 0;
        c->begin_sql = NULL;
    }
    if (c->verdict != SC_UNNAMED)
        rc = PQsendQueryPrepared(c->pg, c->ref.name, n, n ? pp->values : NULL,
                                 n ? pp->lengths : NULL, n ? pp->formats : NULL, 0);
    else
        rc = PQsendQueryParams(c->pg, pp->sql, n, n ? pp->types : NULL, n ? pp->values : NULL,
                               n ? pp->lengths : NULL, n ? pp->formats : NULL, 0);
    if (rc && c->pipeline)
        rc = PQpipelineSync(c->pg);
    return rc;
}

/* Queue the current stage's message on libpq; its return value. The
 * daemon's own statements (BQ_INTERNAL) go over the simple query protocol:
 * one Query message instead of Parse/Bind/Describe/Execute/Sync. */
static int queue_stage(struct backend_conn *c)
{
    const struct pg_params *pp = &c->pp;
    const char *sql;

    switch (c->stage) {
    case ST_ROLLBACK:
        return PQsendQuery(c->pg, "ROLLBACK");
    case ST_DEALLOC:
        sql = pg_stmt_dealloc_sql(c->sc, &c->dealloc, &c->dealloc_cap);
        return sql ? PQsendQuery(c->pg, sql) : 0;
    case ST_BEGIN:
        return PQsendQuery(c->pg, c->begin_sql);
    case ST_PREPARE:
        return PQsendPrepare(c->pg, c->ref.name, pp->sql, (int)pp->n, pp->n ? pp->types : NULL);
    case ST_EXEC:
        break;
    }
    return send_exec(c);
}

/* Send the current stage; from exec() (errors are reported from the loop)
 * or from our callback when the previous stage completed. */
void pg_send_stage(struct backend_conn *c, bool in_callback)
{
    char msg[sizeof(c->res.err.message)];

    if (!queue_stage(c)) {
        int code = PQstatus(c->pg) == CONNECTION_BAD ? DBPOOL_E_CONN_LOST : DBPOOL_E_INTERNAL;
        if (c->lost_msg[0]) {
            /* The server said why it closed the connection while it was idle. */
            snprintf(msg, sizeof(msg), "%s", c->lost_msg);
            c->lost_msg[0] = '\0';
        } else {
            pg_conn_error_message(c, msg, sizeof(msg), "cannot send the statement");
        }
        if (in_callback)
            pg_fail_now(c, code, true, "%s", msg);
        else
            pg_fail_later(c, code, code == DBPOOL_E_CONN_LOST ? c->lost_sqlstate : "", true, "%s", msg);
        return;
    }
    if (c->stage == ST_EXEC && !c->pipeline && !PQsetSingleRowMode(c->pg)) {
        /* Fails only when not called right after a successful send, which
         * this is. Rows would then arrive in one PGresult; deliver_rows()
         * handles that too (without the memory bound). In pipeline mode it
         * is called when the statement's turn comes (pipeline_next). */
    }
    c->phase = PH_SENDING;
    (void)pg_flush_step(c, in_callback);   /* on EV_READ, results.c reads on */
}

static bool stage_needed(const struct backend_conn *c, enum stage st)
{
    bool prepare = c->verdict == SC_PREPARE;
    size_t ngarbage;

    switch (st) {
    case ST_ROLLBACK:
        return false;   /* only for a replay (stale_statement) */
    case ST_DEALLOC:
        /* Only outside a transaction: in a failed one DEALLOCATE would fail,
         * and it need not run inside the client's. */
        return prepare && stmt_cache_garbage(c->sc, &ngarbage) && c->txstate == 'I';
    case ST_BEGIN:
        return prepare && c->begin_sql;   /* else it is pipelined with the statement */
    case ST_PREPARE:
        return prepare;
    case ST_EXEC:
        return true;
    }
    return false;
}

/* The first stage after `done` (-1: the first of all) that is needed. */
enum stage pg_stage_after(const struct backend_conn *c, int done)
{
    for (int st = done + 1; st < ST_EXEC; st++)
        if (stage_needed(c, (enum stage)st))
            return (enum stage)st;
    return ST_EXEC;
}

/* Whether a statement changes the schema, so that cached plans of other
 * statements may have gone stale. */
static bool is_ddl(const char *sql, size_t len)
{
    static const char *const words[] = { "CREATE", "ALTER", "DROP", NULL };

    return sql_starts_with_keyword(sql, len, words);
}

/* The statement's placeholders ($1..$used) and the parameters given (n)
 * disagree: refused before sending, the transaction stays as it is. */
static void refuse_param_count(struct backend_conn *c, unsigned used, size_t n)
{
    const char *s = n == 1 ? " was" : "s were";

    if (used == 0)
        backend_result_error(&c->res, DBPOOL_E_SQL, "07001", c->txstate,
                             "statement has no $N placeholder but %zu parameter%s given; "
                             "pass no parameters", n, s);
    else
        backend_result_error(&c->res, DBPOOL_E_SQL, "07001", c->txstate,
                             "statement uses $1..$%u but %zu parameter%s given; "
                             "pass exactly one value per $N placeholder", used, n, s);
    pg_defer_result(c);
}

static void start_send(struct backend_conn *c, const struct backend_query *q)
{
    size_t n = q->nparams;

    c->verdict = SC_UNNAMED;
    c->retried = c->stale_plan = false;
    c->simple_sql = NULL;
    c->begin_sql = c->opened_with = q->begin_sql;
    c->ddl = false;
    if ((q->flags & BQ_INTERNAL) && n == 0) {
        c->simple_sql = q->sql;   /* NUL-terminated: the daemon's own text */
        c->stage = ST_EXEC;
        pg_send_stage(c, false);
        return;
    }
    if (!params_build(&c->pp, q->sql, q->sql_len, q->params, n, &c->res, c->txstate)) {
        pg_defer_result(c);   /* a parameter was refused; c->res says why */
        return;
    }
    c->ddl = !(q->flags & BQ_INTERNAL) && is_ddl(q->sql, q->sql_len);
    if (c->sc && c->txstate != 'E' && !(q->flags & BQ_INTERNAL) && pg_stmt_cacheable(q->sql, q->sql_len))
        c->verdict = pg_stmt_lookup(c->sc, c->pp.sql, q->sql_len, c->pp.types, n, &c->ref);
    /* A count mismatch is refused here, before anything is sent: the
     * server would abort the transaction over it (too few), or, with the
     * parameter types declared, accept and ignore the surplus (too many).
     * (A statement in the cache passed this check when it was prepared.) */
    unsigned used = c->verdict != SC_PREPARED ? sql_max_dollar_param(q->sql, q->sql_len)
                                              : (unsigned)n;
    if (n != used) {
        refuse_param_count(c, used, n);
        return;
    }
    c->stage = pg_stage_after(c, -1);
    pg_send_stage(c, false);
}

/* Results of a stage before the execution are in: go on with the next
 * stage. False when the operation ends here (an error to report). */
static bool usable(struct backend_conn *c)
{
    if (c->pg && c->connected)
        return true;
    pg_fail_later(c, DBPOOL_E_CONN_LOST, "", true, "not connected to PostgreSQL");
    return false;
}

void pg_exec(struct backend_conn *c, const struct backend_query *q,
             const struct backend_sink *sink, void *arg)
{
    pg_start_op(c, OP_EXEC, sink->done, arg, sink);
    if (usable(c))
        start_send(c, q);
}

/* An empty query over the simple protocol (PQsendQuery): one round trip
 * that works in any transaction state; the extended protocol's Bind would
 * fail inside an aborted transaction. */
void pg_ping(struct backend_conn *c, backend_done_fn done, void *arg)
{
    char msg[sizeof(c->res.err.message)];

    pg_start_op(c, OP_PING, done, arg, NULL);
    if (!usable(c))
        return;
    if (!PQsendQuery(c->pg, "")) {
        pg_conn_error_message(c, msg, sizeof(msg), "cannot send the health check");
        pg_fail_later(c, DBPOOL_E_CONN_LOST, "", true, "%s", msg);
        return;
    }
    c->phase = PH_SENDING;
    (void)pg_flush_step(c, false);
}
void pg_resume(struct backend_conn *c)
{
    if (c->closed || !c->paused)
        return;
    c->paused = false;
    event_active(c->ev_kick, 0, 0);   /* via the loop: no recursion into the sink */
}

