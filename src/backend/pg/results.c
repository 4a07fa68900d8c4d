/*
 * results.c — reading the results of the PostgreSQL driver's operations
 * (pg_internal.h): the socket callback (connecting, sending, reading or
 * idle, by phase), PGresults taken while libpq is not busy, rows and their
 * values (typed by column OID, see "VALUES") handed to the sink with
 * back-pressure, COPY refused, pipeline results, and what ends a stage or
 * the statement: the next stage, a re-prepare after the server dropped a
 * cached plan, a session reset that dropped prepared statements, DDL that
 * invalidates the pool's plans.
 *
 * This is the per-row path: its helpers stay static here so the compiler
 * keeps inlining them.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "backend/backend.h"
#include "backend/pg/pg_internal.h"
#include "backend/pg/results.h"
#include "backend/pg/cancel.h"
#include "backend/pg/conn.h"
#include "backend/pg/connect.h"
#include "backend/pg/exec.h"
#include "backend/pg/pg_stmtcache.h"

/* -------------------------------------------------------- result values */

static const struct type_name {
    Oid oid;
    const char *name;
} type_names[] = {   /* sorted by oid (checked by the tests against pg_type) */
    { 16, "bool" }, { 17, "bytea" }, { 18, "char" }, { 19, "name" }, { 20, "int8" },
    { 21, "int2" }, { 23, "int4" }, { 24, "regproc" }, { 25, "text" }, { 26, "oid" },
    { 27, "tid" }, { 28, "xid" }, { 114, "json" }, { 142, "xml" }, { 143, "_xml" },
    { 199, "_json" }, { 600, "point" }, { 650, "cidr" }, { 651, "_cidr" }, { 700, "float4" },
    { 701, "float8" }, { 705, "unknown" }, { 774, "macaddr8" }, { 790, "money" },
    { 791, "_money" }, { 829, "macaddr" }, { 869, "inet" }, { 1000, "_bool" },
    { 1001, "_bytea" }, { 1002, "_char" }, { 1003, "_name" }, { 1005, "_int2" },
    { 1007, "_int4" }, { 1009, "_text" }, { 1014, "_bpchar" }, { 1015, "_varchar" },
    { 1016, "_int8" }, { 1021, "_float4" }, { 1022, "_float8" }, { 1028, "_oid" },
    { 1040, "_macaddr" }, { 1041, "_inet" }, { 1042, "bpchar" }, { 1043, "varchar" },
    { 1082, "date" }, { 1083, "time" }, { 1114, "timestamp" }, { 1115, "_timestamp" },
    { 1182, "_date" }, { 1183, "_time" }, { 1184, "timestamptz" }, { 1185, "_timestamptz" },
    { 1186, "interval" }, { 1187, "_interval" }, { 1231, "_numeric" }, { 1266, "timetz" },
    { 1270, "_timetz" }, { 1560, "bit" }, { 1561, "_bit" }, { 1562, "varbit" },
    { 1563, "_varbit" }, { 1700, "numeric" }, { 2205, "regclass" }, { 2206, "regtype" },
    { 2249, "record" }, { 2278, "void" }, { 2950, "uuid" }, { 2951, "_uuid" },
    { 3220, "pg_lsn" }, { 3614, "tsvector" }, { 3615, "tsquery" }, { 3802, "jsonb" },
    { 3807, "_jsonb" }, { 3904, "int4range" }, { 3906, "numrange" }, { 3908, "tsrange" },
    { 3910, "tstzrange" }, { 3912, "daterange" }, { 3926, "int8range" }, { 4072, "jsonpath" },
    { 5069, "xid8" },
};

static int type_name_cmp(const void *key, const void *elem)
{
    Oid oid = *(const Oid *)key;
    Oid other = ((const struct type_name *)elem)->oid;

    return oid < other ? -1 : oid > other;
}

/* Declared type name; user types (enums, domains, extensions) have no
 * built-in name and are reported as "oid:<n>" (written into buf). */
static const char *type_name(Oid oid, char *buf, size_t size)
{
    const struct type_name *t = bsearch(&oid, type_names, sizeof(type_names) / sizeof(type_names[0]),
                                        sizeof(type_names[0]), type_name_cmp);

    if (t)
        return t->name;
    snprintf(buf, size, "oid:%u", (unsigned)oid);
    return buf;
}

static bool ensure_cols(struct backend_conn *c, size_t n)
{
    dbpool_column *cols;
    char (*decl)[DECL_LEN];
    dbpool_value *vals;

    if (n <= c->cols_cap)
        return true;
    cols = realloc(c->cols, n * sizeof(*cols));
    if (cols)
        c->cols = cols;
    decl = realloc(c->decl, n * sizeof(*decl));
    if (decl)
        c->decl = decl;
    vals = realloc(c->vals, n * sizeof(*vals));
    if (vals)
        c->vals = vals;
    if (!cols || !decl || !vals)
        return false;
    c->cols_cap = c->vals_cap = n;
    return true;
}

static bool ensure_scratch(struct backend_conn *c, size_t n)
{
    unsigned char *p;

    if (n <= c->scratch_cap)
        return true;
    p = realloc(c->scratch, n);
    if (!p)
        return false;
    c->scratch = p;
    c->scratch_cap = n;
    return true;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* bytea text output, hex ("\x0a0b") or escape ("a\\\012") format, into out
 * (room for len bytes). Returns the decoded length, or -1 if malformed. */
static long decode_bytea(const char *s, size_t len, unsigned char *out)
{
    size_t n = 0, i;

    if (len >= 2 && s[0] == '\\' && s[1] == 'x') {
        if (len % 2 != 0)
            return -1;
        for (i = 2; i < len; i += 2) {
            int hi = hexval(s[i]), lo = hexval(s[i + 1]);
            if (hi < 0 || lo < 0)
                return -1;
            out[n++] = (unsigned char)(hi << 4 | lo);
        }
        return (long)n;
    }
    for (i = 0; i < len;) {
        if (s[i] != '\\') {
            out[n++] = (unsigned char)s[i++];
        } else if (i + 1 < len && s[i + 1] == '\\') {
            out[n++] = '\\';
            i += 2;
        } else if (i + 3 < len && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
                   s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
            out[n++] = (unsigned char)((s[i + 1] - '0') << 6 | (s[i + 2] - '0') << 3 | (s[i + 3] - '0'));
            i += 4;
        } else {
            return -1;
        }
    }
    return (long)n;
}

/* One value in text format, typed by its column's OID. */
static void convert_value(const char *s, size_t len, Oid type, unsigned char **scratch,
                          dbpool_value *v)
{
    long n;

    switch (type) {
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
    case OID_OID:
        v->type = DBPOOL_INT64;
        v->u.i = strtoll(s, NULL, 10);
        return;
    case OID_FLOAT4:
    case OID_FLOAT8:
        v->type = DBPOOL_FLOAT64;
        v->u.f = strtod(s, NULL);   /* also "NaN", "Infinity", "-Infinity" */
        return;
    case OID_BOOL:
        v->type = DBPOOL_BOOL;
        v->u.b = s[0] == 't';
        return;
    case OID_BYTEA:
        n = decode_bytea(s, len, *scratch);
        if (n >= 0) {
            v->type = DBPOOL_BLOB;
            v->u.s.ptr = (const char *)*scratch;
            v->u.s.len = (size_t)n;
            *scratch += n;
            return;
        }
        break;   /* not bytea text after all: pass it on as text */
    default:
        break;
    }
    v->type = DBPOOL_TEXT;
    v->u.s.ptr = s;
    v->u.s.len = len;
}

/* c->vals for row `row` of r. False when out of memory. */
static bool build_row(struct backend_conn *c, const PGresult *r, int row)
{
    int ncols = PQnfields(r);
    size_t need = 0;
    unsigned char *scratch;

    if (!ensure_cols(c, (size_t)ncols))
        return false;
    for (int i = 0; i < ncols; i++)
        if (PQftype(r, i) == OID_BYTEA && !PQgetisnull(r, row, i))
            need += (size_t)PQgetlength(r, row, i);
    if (!ensure_scratch(c, need))
        return false;
    scratch = c->scratch;
    for (int i = 0; i < ncols; i++) {
        dbpool_value *v = &c->vals[i];
        if (PQgetisnull(r, row, i)) {
            v->type = DBPOOL_NULL;
            v->u.i = 0;
            continue;
        }
        convert_value(PQgetvalue(r, row, i), (size_t)PQgetlength(r, row, i), PQftype(r, i),
                      &scratch, v);
    }
    return true;
}

/* ---------------------------------------------------------------- results */

static void note_error(struct backend_conn *c, int code, const char *sqlstate, const char *msg)
{
    if (c->have_err)
        return;   /* the first error is the one that matters */
    backend_result_error(&c->res, code, sqlstate, 'I', "%s", msg);
    c->have_err = true;
}

static void note_result_error(struct backend_conn *c, const PGresult *r)
{
    const char *sqlstate = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    char msg[sizeof(c->res.err.message)];

    pg_tidy_message(msg, sizeof(msg), primary ? primary : PQresultErrorMessage(r));
    if (!msg[0])
        pg_conn_error_message(c, msg, sizeof(msg), "unknown error");
    /* libpq builds well-formed messages, so the server's protocol-violation
     * error on our Bind means "bind message supplies N parameters, but
     * prepared statement requires M": the protocol's 07001. */
    if (sqlstate && strcmp(sqlstate, "08P01") == 0 && c->op == OP_EXEC &&
        PQstatus(c->pg) == CONNECTION_OK)
        sqlstate = "07001";
    note_error(c, sqlstate && strcmp(sqlstate, "57014") == 0 ? DBPOOL_E_CANCELED : DBPOOL_E_SQL,
               sqlstate, msg);
    /* "cached plan must not change result type": told apart by where the
     * server raised it, which (unlike the message) is not translated. */
    const char *fn = PQresultErrorField(r, PG_DIAG_SOURCE_FUNCTION);
    if (sqlstate && strcmp(sqlstate, "0A000") == 0 && fn && strcmp(fn, "RevalidateCachedQuery") == 0)
        c->stale_plan = true;
}

static int64_t cmd_tuples(PGresult *r, int64_t fallback)
{
    const char *s = PQcmdTuples(r);

    return *s ? strtoll(s, NULL, 10) : fallback;
}

static void mark_lost(struct backend_conn *c, struct backend_result *r)
{
    char msg[sizeof(r->err.message)];

    if (r->ok || !r->err.message[0]) {
        pg_conn_error_message(c, msg, sizeof(msg), "server closed the connection unexpectedly");
        backend_result_error(r, DBPOOL_E_CONN_LOST, "", 'I', "%s", msg);
    }
    r->ok = false;
    r->err.code = DBPOOL_E_CONN_LOST;
    r->broken = true;
    r->txstate = 'I';   /* the server aborted any transaction */
}

static bool next_stage(struct backend_conn *c);
static bool stale_statement(struct backend_conn *c, char tx);
static bool pipeline_next(struct backend_conn *c);
static void pipeline_end(struct backend_conn *c);
static void note_session_reset(struct backend_conn *c);

/* DDL took effect once its transaction is over (committed or not: a
 * rolled-back one just costs a re-prepare): tell the pool, which clears
 * the statement cache of every connection (see pg_schema_changed). */
static void note_schema_change(struct backend_conn *c, struct backend_result *r)
{
    if (r->ok && c->ddl)
        c->ddl_pending = true;
    if (c->ddl_pending && (r->txstate == 'I' || r->broken)) {
        c->ddl_pending = false;
        r->schema_changed = true;
    }
}

/* PQgetResult returned NULL: the statement (or a stage before it) is over. */
static void finish_results(struct backend_conn *c)
{
    struct backend_result r;
    bool unknown;
    char tx = tx_char(PQtransactionStatus(c->pg), &unknown);

    if (c->op == OP_EXEC && !unknown) {
        if (c->stage != ST_EXEC && next_stage(c))
            return;
        if (stale_statement(c, tx))
            return;
    }
    if (c->have_err) {
        r = c->res;
    } else {
        backend_result_ok(&r, tx);
        r.rows_affected = c->affected;
    }
    if (c->copy_refused)
        backend_result_error(&r, DBPOOL_E_SQL, "0A000", tx,
                             "COPY FROM STDIN / TO STDOUT is not supported through dbpoold");
    r.txstate = tx;
    if (PQstatus(c->pg) == CONNECTION_BAD || unknown || c->force_broken || c->input_failed) {
        mark_lost(c, &r);
    } else if (r.ok && c->canceled && c->dropped > 0) {
        backend_result_error(&r, DBPOOL_E_CANCELED, "57014", tx,
                             "canceling statement due to user request (the statement had already "
                             "completed; %lld rows were not delivered)", (long long)c->dropped);
    }
    if (c->op == OP_EXEC && r.ok)
        note_session_reset(c);
    if (c->op == OP_EXEC)
        note_schema_change(c, &r);
    if (c->op == OP_EXEC && c->verdict != SC_UNNAMED && c->stage == ST_EXEC)
        r.stmt_cache = c->verdict == SC_PREPARED ? BR_CACHED : BR_PREPARED;
    if (c->op == OP_PING && !r.ok) {
        r.err.code = DBPOOL_E_CONN_LOST;
        r.broken = true;
    }
    if (c->cancel && pg_cancel_wait(c, &r))
        return;   /* completed when the cancel has reached the server */
    pg_complete(c, &r);
}

static bool send_columns(struct backend_conn *c, const PGresult *r)
{
    int n = PQnfields(r);

    if (!ensure_cols(c, (size_t)n)) {
        note_error(c, DBPOOL_E_INTERNAL, "", "out of memory reading a result");
        c->discard = true;
        return true;
    }
    for (int i = 0; i < n; i++) {
        c->cols[i].name = PQfname(r, i);
        c->cols[i].decl_type = type_name(PQftype(r, i), c->decl[i], DECL_LEN);
    }
    if (c->sink.columns)
        c->sink.columns(c->arg, (size_t)n, c->cols);
    return !c->closed;
}

/* Hand the rows of c->cur to the sink. False when delivery stops here
 * (paused or closed); true when c->cur is consumed (and cleared). */
static bool deliver_rows(struct backend_conn *c)
{
    PGresult *r = c->cur;
    int n = PQntuples(r);

    while (c->cur_row < n) {
        bool more;
        if (c->canceled || c->discard) {
            c->dropped += n - c->cur_row;
            c->cur_row = n;
            break;
        }
        if (!build_row(c, r, c->cur_row)) {
            note_error(c, DBPOOL_E_INTERNAL, "", "out of memory reading a row");
            c->discard = true;
            continue;
        }
        c->cur_row++;
        more = c->sink.row ? c->sink.row(c->arg, (size_t)PQnfields(r), c->vals) : true;
        if (c->closed)
            return false;
        if (!more && !c->canceled) {
            c->paused = true;
            pg_disarm_io(c);   /* stop reading: the server blocks once the buffers are full */
            return false;
        }
    }
    PQclear(r);
    c->cur = NULL;
    return true;
}


/* COPY FROM STDIN: end it at once with an error so the server aborts it. */
static bool refuse_copy_in(struct backend_conn *c)
{
    char msg[256];

    c->copy_refused = true;
    if (PQputCopyEnd(c->pg, "COPY FROM STDIN is not supported through dbpoold") != 1) {
        pg_conn_error_message(c, msg, sizeof(msg), "cannot end COPY");
        pg_fail_now(c, DBPOOL_E_CONN_LOST, true, "%s", msg);
        return false;
    }
    c->phase = PH_SENDING;
    (void)pg_flush_step(c, true);   /* the server's answer comes on EV_READ */
    return false;
}

/* COPY TO STDOUT: read and drop the data. False when waiting for input. */
static bool drain_copy_out(struct backend_conn *c)
{
    for (;;) {
        char *buf = NULL;
        int n = PQgetCopyData(c->pg, &buf, 1);
        if (n > 0) {
            PQfreemem(buf);
            continue;
        }
        if (n == 0 && !c->input_failed) {
            if (!pg_arm_io(c, EV_READ, false)) {
                pg_fail_now(c, DBPOOL_E_INTERNAL, true, "cannot watch the PostgreSQL socket");
                return false;
            }
            return false;
        }
        c->copy_out = false;   /* -1: done, -2: error; PQgetResult tells */
        return true;
    }
}

/* Take one PGresult. False when processing must stop here (closed, or
 * someone else carries on). */
static bool take_result(struct backend_conn *c, PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);

    switch (st) {
    case PGRES_SINGLE_TUPLE:
    case PGRES_TUPLES_OK:
        c->cur = r;   /* owned by c from here (conn_free clears it) */
        c->cur_row = 0;
        c->rows_seen += PQntuples(r);
        if (st == PGRES_TUPLES_OK)
            c->affected = cmd_tuples(r, c->rows_seen);
        if (!c->cols_sent && !c->canceled) {
            c->cols_sent = true;
            return send_columns(c, r);
        }
        return true;
    case PGRES_COMMAND_OK:
        c->affected = cmd_tuples(r, 0);
        break;
    case PGRES_EMPTY_QUERY:
    case PGRES_PIPELINE_ABORTED:   /* skipped after a failed BEGIN: its error is noted */
        break;
    case PGRES_COPY_IN:
        PQclear(r);
        return refuse_copy_in(c);
    case PGRES_COPY_OUT:
        c->copy_out = c->copy_refused = true;
        break;
    case PGRES_FATAL_ERROR:
    case PGRES_NONFATAL_ERROR:
    case PGRES_BAD_RESPONSE:
        note_result_error(c, r);
        break;
    default:   /* COPY BOTH (replication), pipeline states: not ours */
        note_error(c, DBPOOL_E_INTERNAL, "", "unexpected PostgreSQL result status");
        c->force_broken = true;
        break;
    }
    PQclear(r);
    return true;
}

/* Process everything libpq holds, until it needs more input, the sink
 * pauses, or the statement is over. */
void pg_pump(struct backend_conn *c)
{
    for (;;) {
        PGresult *r;

        if (c->cur && !deliver_rows(c))
            return;
        if (c->copy_out && !drain_copy_out(c))
            return;
        if (PQisBusy(c->pg)) {
            if (c->input_failed) {
                char msg[sizeof(c->res.err.message)];
                pg_conn_error_message(c, msg, sizeof(msg), "server closed the connection unexpectedly");
                pg_fail_now(c, DBPOOL_E_CONN_LOST, true, "%s", msg);
                return;
            }
            if (!pg_arm_io(c, EV_READ, false))
                pg_fail_now(c, DBPOOL_E_INTERNAL, true, "cannot watch the PostgreSQL socket");
            return;
        }
        r = PQgetResult(c->pg);
        if (!r && c->pipeline) {
            if (pipeline_next(c))
                continue;
            finish_results(c);   /* the pipeline cannot go on: reported as lost */
            return;
        }
        c->pipe_null = false;
        if (r && c->pipeline && PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            pipeline_end(c);
            r = NULL;
        }
        if (!r) {
            finish_results(c);
            return;
        }
        if (!take_result(c, r))
            return;
    }
}

/* ------------------------------------------------------ the socket */

/* A finished send goes on to read what libpq may already hold (it read
 * while sending: the socket will not signal that again). */
static void send_step(struct backend_conn *c, short what)
{
    if ((what & EV_READ) && !PQconsumeInput(c->pg))
        c->input_failed = true;
    if (pg_flush_step(c, true))
        pg_pump(c);
}

/* With SSL, OpenSSL may hold decrypted bytes that libpq has not taken yet
 * (its buffer had no room), and the socket then never becomes readable
 * for them; a few more PQconsumeInput calls while a message is incomplete
 * pick them up (each costs one recv when nothing is there). */
static void read_step(struct backend_conn *c)
{
    if (!PQconsumeInput(c->pg)) {
        c->input_failed = true;
    } else if (PQsslInUse(c->pg)) {
        for (int i = 0; i < SSL_EXTRA_READS && PQisBusy(c->pg); i++) {
            if (!PQconsumeInput(c->pg)) {
                c->input_failed = true;
                break;
            }
        }
    }
    pg_pump(c);
}

void pg_on_io(evutil_socket_t fd, short what, void *arg)
{
    struct backend_conn *c = arg;

    (void)fd;
    enter(c);
    switch (c->phase) {
    case PH_CONNECTING: pg_connect_step(c); break;
    case PH_SENDING: send_step(c, what); break;
    case PH_READING: read_step(c); break;
    case PH_IDLE: pg_idle_step(c); break;
    default: pg_disarm_io(c); break;   /* nothing awaited */
    }
    leave(c);
}

/* ------------------------------------ stages, re-prepare, session reset */

/* Results of a stage before the execution are in: go on with the next
 * stage. False when the operation ends here (an error to report). */
static bool next_stage(struct backend_conn *c)
{
    if (PQstatus(c->pg) == CONNECTION_BAD || c->input_failed || c->force_broken)
        return false;
    switch (c->stage) {
    case ST_ROLLBACK:
        if (c->have_err)
            return false;
        c->begin_sql = c->opened_with;   /* the replay opens the transaction afresh */
        break;
    case ST_DEALLOC:
        stmt_cache_garbage_done(c->sc);
        c->have_err = false;   /* statements already gone (DISCARD ALL) are fine */
        break;
    case ST_BEGIN:
        if (c->have_err)
            return false;
        c->begin_sql = NULL;
        break;
    case ST_PREPARE:
        if (c->have_err)
            return false;      /* the statement does not parse: the client hears why */
        (void)pg_stmt_add(c->sc, &c->ref, c->pp.sql, c->pp.sql_len, c->pp.types, c->pp.n);
        break;
    case ST_EXEC:
        return false;
    }
    if (c->canceled) {
        note_error(c, DBPOOL_E_CANCELED, "57014", "canceling statement due to user request");
        return false;
    }
    c->stage = pg_stage_after(c, (int)c->stage);
    c->affected = c->rows_seen = 0;
    pg_send_stage(c, true);
    return true;
}

/* Pipeline mode: a NULL from PQgetResult ends the BEGIN's results (the
 * statement's turn comes: single-row mode is set for it now) or the
 * statement's (the Sync's result follows). A NULL right after a NULL, or
 * on a broken connection, means libpq has nothing more to give: it returns
 * NULL for ever once the connection died mid-pipeline (calling it again in
 * a loop froze the daemon). False then: the operation ends as lost. */
static bool pipeline_next(struct backend_conn *c)
{
    if (PQstatus(c->pg) == CONNECTION_BAD || c->input_failed || c->pipe_null) {
        if (PQstatus(c->pg) != CONNECTION_BAD && !c->input_failed)
            note_error(c, DBPOOL_E_CONN_LOST, "", "libpq ended the pipeline without its Sync");
        c->force_broken = true;
        c->pipeline = c->pipe_begin = false;
        return false;
    }
    c->pipe_null = true;
    if (!c->pipe_begin)
        return true;
    c->pipe_begin = false;
    c->affected = 0;
    if (!c->have_err && !PQsetSingleRowMode(c->pg)) {
        /* as in send_stage: rows then arrive in one PGresult */
    }
    return true;
}

/* The pipeline's Sync arrived: the operation's results are complete. */
static void pipeline_end(struct backend_conn *c)
{
    c->pipeline = false;
    if (!PQexitPipelineMode(c->pg)) {
        note_error(c, DBPOOL_E_INTERNAL, "", "libpq did not leave pipeline mode");
        c->force_broken = true;
    }
}

/* The server no longer has the prepared statement the execution named
 * (26000: DEALLOCATE or DISCARD ALL ran inside a function), or its cached
 * plan cannot serve the statement any more (0A000: a table it reads changed
 * its columns). Forget it; before any row was delivered, prepare it afresh
 * and run it again (once): outside a transaction, or as the first
 * statement of the transaction this operation opened (deferred BEGIN),
 * which is rolled back and opened again. A later statement of a client's
 * transaction cannot be replayed (the transaction is aborted, and the
 * client saw its earlier work): the client gets the error. True when
 * retried. */
static bool stale_statement(struct backend_conn *c, char tx)
{
    const char *st = c->res.err.sqlstate;
    bool gone = strcmp(st, "26000") == 0;
    bool changed = c->stale_plan;

    if (c->verdict == SC_UNNAMED || c->stage != ST_EXEC || !c->have_err || !(gone || changed))
        return false;
    if (gone)
        stmt_cache_clear(c->sc);
    else
        stmt_cache_forget(c->sc, &c->ref.r);
    if (c->retried || c->cols_sent || c->canceled ||
        PQstatus(c->pg) == CONNECTION_BAD || c->input_failed || c->force_broken)
        return false;
    if (tx != 'I' && !c->opened_with)
        return false;   /* a later statement of the client's transaction: see below */
    c->retried = true;
    c->have_err = c->stale_plan = false;
    c->affected = c->rows_seen = 0;
    c->verdict = pg_stmt_lookup(c->sc, c->pp.sql, c->pp.sql_len, c->pp.types, c->pp.n, &c->ref);
    if (tx != 'I') {
        /* The transaction this operation opened failed at its first
         * statement, before the client saw anything of it: roll it back,
         * then BEGIN and the statement again (next_stage). */
        c->stage = ST_ROLLBACK;
        pg_send_stage(c, true);
        return true;
    }
    c->txstate = tx;
    c->stage = pg_stage_after(c, -1);   /* unnamed if the seen table lost it */
    pg_send_stage(c, true);
    return true;
}

/* The words of s from i on, the way PostgreSQL reads names: unquoted ones
 * upper-cased, single-spaced, comments and ';' dropped. A quoted name keeps
 * its case, so its lower-case letters are upper-cased and its upper-case
 * ones become '?' ("dbpool_s1" reads as DBPOOL_S1, "DBPOOL_S1" matches
 * nothing). Truncated to fit out. */
static void reset_words(const char *s, size_t len, size_t i, char *out, size_t outlen)
{
    char *p = out, *end = out + outlen - 1;
    bool quoted = false;

    while (i < len && p < end) {
        unsigned char ch = (unsigned char)s[i];
        if (quoted) {
            quoted = ch != '"';
            if (quoted)
                *p++ = isupper(ch) ? '?' : (char)toupper(ch);
            i++;
        } else if (isspace(ch) || ((ch == '-' || ch == '/') && i + 1 < len &&
                                   s[i + 1] == (ch == '-' ? '-' : '*'))) {
            i = sql_skip_space_and_comments(s, len, i);
            if (p > out && p[-1] != ' ')
                *p++ = ' ';
        } else {
            quoted = ch == '"';
            if (!quoted && ch != ';')
                *p++ = (char)toupper(ch);
            i++;
        }
    }
    while (p > out && p[-1] == ' ')
        p--;
    *p = '\0';
}

/* A user statement that drops prepared statements: DISCARD ALL and
 * DEALLOCATE [PREPARE] ALL drop the cache's, DEALLOCATE [PREPARE] dbpool_sN
 * one of them. Comments may stand before and between the words, and the
 * name may be quoted. (Other ways, e.g. inside functions, end in 26000 and
 * a retry outside a transaction: see stale_statement.) */
static void note_session_reset(struct backend_conn *c)
{
    char words[64];
    const char *s = c->pp.sql;
    size_t len = c->pp.sql_len, i;

    if (!c->sc || !s)
        return;
    i = sql_skip_space_and_comments(s, len, 0);
    if (i >= len || (s[i] != 'D' && s[i] != 'd'))
        return;   /* the common case, cheaply */
    reset_words(s, len, i, words, sizeof(words));
    const char *name = strncmp(words, "DEALLOCATE PREPARE ", 19) == 0 ? words + 19
                       : strncmp(words, "DEALLOCATE ", 11) == 0 ? words + 11 : NULL;
    if (strcmp(words, "DISCARD ALL") == 0 || (name && strcmp(name, "ALL") == 0))
        stmt_cache_clear(c->sc);
    else if (name && strncmp(name, "DBPOOL_S", 8) == 0 && name[8] >= '0' && name[8] <= '9')
        stmt_cache_gone(c->sc, (unsigned)strtoul(name + 8, NULL, 10));
}
