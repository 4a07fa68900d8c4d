/*
 * test_daemon.c — integration tests: the real dbpoold binary driven through
 * libdbpool and raw sockets (see harness.h). One criterion suite per area:
 *
 *   handshake    HELLO, backend name, unknown pools
 *   values       every value type through parameters and back, metadata
 *   params       parameter count errors, injection attempts
 *   errors       SQLSTATE mapping, vendor codes
 *   streaming    large results, bounded daemon memory with a slow reader
 *   tx           protocol and SQL transactions, savepoints, read-only
 *   disconnect   clients vanishing inside transactions
 *   batch        non-atomic / atomic batches, savepoints inside transactions
 *   concurrency  many writers and readers on a small pool
 *   routing      readers see committed data, never uncommitted
 *   protocol     pipelining
 *   badinput     garbage, truncated, oversized and malformed frames
 *   status       the HTTP status socket
 *   shutdown     SIGTERM drain
 *   limits       maxParams, maxFrameSize, maxBatchStatements, maxClients
 *   pool         acquire timeout, the wait queue
 *   timeouts     statement, idle-transaction and client-idle timeouts
 *   cancel       CANCEL of running and waiting requests
 *   fdlimits     descriptor exhaustion, RLIMIT_NOFILE, the listen backlog
 *   budget       clientBufferBudget, per-session read-ahead, frameTimeout
 *   writestall   writeStallTimeout: a client that stops reading
 *   utf8         SQL / TEXT / names must be UTF-8; TEXT results passed through
 *   outputfault  a frame that cannot be queued ends the session (test builds
 *                with the fault-injection hook only)
 *
 * Tests await conditions (a query, the status socket) with deadlines; they
 * never sleep to synchronise.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "common/proto.h"

#define P (h_profile())
#define MIB (1024L * 1024L)

/* A single server connection: one writer and nothing else, so a test can
 * prove that a transaction was rolled back (otherwise it would block). */
static const struct h_opts single_conn = { .max_open_conns = 1 };

/* ================================================================ helpers */

static void must_ok(dbpool_conn *c, int rc, const char *what)
{
    const dbpool_error *e = dbpool_last_error(c);
    cr_assert_eq(rc, 0, "%s failed: %s [%s]: %s", what, dbpool_code_name(e->code), e->sqlstate,
                 e->message);
}

static void assert_txstate(dbpool_conn *c, char want, const char *when)
{
    char got = (char)dbpool_txstate_of(c);
    cr_assert_eq(got, want, "txstate %s: '%c', expected '%c'", when, got, want);
}

static void insert_int(dbpool_conn *c, const char *table, int64_t v)
{
    char sql[128];
    dbpool_value p = dbpool_int(v);
    snprintf(sql, sizeof(sql), "INSERT INTO %s VALUES (?)", table);
    h_execp(c, sql, &p, 1);
}

static int64_t count_rows(dbpool_conn *c, const char *table)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
    return h_scalar(c, sql);
}

/* Sorted single-int-column contents of table as "1,3,4". */
static char *table_ints(dbpool_conn *c, const char *table)
{
    char sql[128];
    static char out[1024];
    size_t pos = 0;

    snprintf(sql, sizeof(sql), "SELECT a FROM %s ORDER BY a", table);
    dbpool_result *r = h_query(c, sql, NULL, 0);
    out[0] = '\0';
    for (size_t i = 0; i < dbpool_result_nrows(r) && pos < sizeof(out) - 32; i++) {
        const dbpool_value *v = dbpool_result_value(r, i, 0);
        pos += (size_t)snprintf(out + pos, sizeof(out) - pos, "%s%lld", i ? "," : "",
                                (long long)v->u.i);
    }
    dbpool_result_free(r);
    return out;
}

/* A fresh session can read and write: the daemon is healthy. */
static void assert_daemon_serves(void)
{
    dbpool_conn *c = h_connect();
    cr_assert_eq(h_scalar(c, "SELECT 40 + 2"), 42);
    must_ok(c, dbpool_ping(c), "ping");
    dbpool_close(c);
}

static double stats_clients(void)
{
    return H_STATUS_NUM("/stats", "clients", "connected");
}

static double pool_num(const char *section, const char *field)
{
    return H_STATUS_NUM("/pools", section, field);
}

/* Await every session gone (sessions are freed asynchronously). */
static void await_no_sessions(void)
{
    bool ok = H_AWAIT(stats_clients() == 0 && pool_num("clients", "connected") == 0, 5000);
    cr_assert(ok, "sessions did not go back to 0: /stats clients.connected = %g, /pools "
              "clients.connected = %g", stats_clients(), pool_num("clients", "connected"));
}

/* ---- values ---- */

static const char *value_str(const dbpool_value *v, char *buf, size_t len)
{
    switch (v->type) {
    case DBPOOL_NULL: snprintf(buf, len, "NULL"); break;
    case DBPOOL_INT64: snprintf(buf, len, "INT64 %lld", (long long)v->u.i); break;
    case DBPOOL_FLOAT64: snprintf(buf, len, "FLOAT64 %.17g", v->u.f); break;
    case DBPOOL_BOOL: snprintf(buf, len, "BOOL %d", v->u.b); break;
    case DBPOOL_TEXT:
        snprintf(buf, len, "TEXT(%zu) \"%.40s\"", v->u.s.len, v->u.s.ptr ? v->u.s.ptr : "");
        break;
    case DBPOOL_BLOB: snprintf(buf, len, "BLOB(%zu)", v->u.s.len); break;
    default: snprintf(buf, len, "type %d", (int)v->type); break;
    }
    return buf;
}

/* Equal type and content; floats bit for bit unless loose_zero (then -0.0 == 0.0). */
static bool value_eq(const dbpool_value *a, const dbpool_value *b, bool loose_zero)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case DBPOOL_NULL: return true;
    case DBPOOL_INT64: return a->u.i == b->u.i;
    case DBPOOL_BOOL: return a->u.b == b->u.b;
    case DBPOOL_FLOAT64:
        return loose_zero ? a->u.f == b->u.f : memcmp(&a->u.f, &b->u.f, sizeof(double)) == 0;
    case DBPOOL_TEXT:
    case DBPOOL_BLOB:
        return a->u.s.len == b->u.s.len &&
               (a->u.s.len == 0 || memcmp(a->u.s.ptr, b->u.s.ptr, a->u.s.len) == 0);
    }
    return false;
}

static void assert_value(const dbpool_value *got, const dbpool_value *want, bool loose_zero,
                         const char *what)
{
    char g[128], w[128];
    cr_assert(value_eq(got, want, loose_zero), "%s: got %s, expected %s", what,
              value_str(got, g, sizeof(g)), value_str(want, w, sizeof(w)));
}

struct sample {
    const char *name;
    dbpool_value v;
    const char *column;       /* table column that stores it */
};

static uint8_t blob_bytes[256];
static char *big_text;

#define NSAMPLES 14

static void make_samples(struct sample *s)
{
    for (int i = 0; i < 256; i++)
        blob_bytes[i] = (uint8_t)i;
    big_text = malloc((size_t)MIB + 1);
    cr_assert_not_null(big_text);
    for (long i = 0; i < MIB; i++)
        big_text[i] = (char)('a' + i % 26);
    big_text[MIB] = '\0';
    struct sample all[NSAMPLES] = {
        { "NULL", dbpool_null(), "i" },
        { "INT64 0", dbpool_int(0), "i" },
        { "INT64 -1", dbpool_int(-1), "i" },
        { "INT64_MIN", dbpool_int(INT64_MIN), "i" },
        { "INT64_MAX", dbpool_int(INT64_MAX), "i" },
        { "FLOAT64 1.5", dbpool_float(1.5), "f" },
        { "FLOAT64 -0.0", dbpool_float(-0.0), "f" },
        { "FLOAT64 1e308", dbpool_float(1e308), "f" },
        { "empty TEXT", dbpool_textn("", 0), "t" },
        { "UTF-8 TEXT", dbpool_text("h\xc3\xa9llo \xe2\x9c\x93"), "t" },
        { "1 MiB TEXT", dbpool_textn(big_text, (size_t)MIB), "t" },
        { "BLOB 0..255", dbpool_blob(blob_bytes, sizeof(blob_bytes)), "b" },
        { "BOOL true", dbpool_bool(1), "bo" },
        { "BOOL false", dbpool_bool(0), "bo" },
    };
    memcpy(s, all, sizeof(all));
}

/* What a parameter value reads back as on this backend. */
static dbpool_value expected_back(const dbpool_value *v)
{
    if (v->type == DBPOOL_BOOL && P->bool_result == DBPOOL_INT64)
        return dbpool_int(v->u.b);
    return *v;
}

static void create_values_table(dbpool_conn *c)
{
    char cols[512];
    snprintf(cols, sizeof(cols), "id %s PRIMARY KEY, i %s, f %s, t %s, b %s, bo %s", P->t_int,
             P->t_int, P->t_float, P->t_text, P->t_blob, P->t_bool);
    h_create_table(c, "vals", cols);
}

/* ================================================================ handshake */

TestSuite(handshake, .fini = h_fini, .timeout = 60);

Test(handshake, reports_backend_and_idle_state)
{
    h_start(NULL);
    dbpool_conn *c = h_connect();
    cr_assert_str_eq(dbpool_backend(c), P->name);
    assert_txstate(c, 'I', "after the handshake");
    must_ok(c, dbpool_ping(c), "ping");
    dbpool_close(c);
    h_stop_ok();
}

Test(handshake, unknown_pool_refused_others_unaffected)
{
    h_start(NULL);
    dbpool_conn *before = h_connect();
    dbpool_error err;
    memset(&err, 0, sizeof(err));

    dbpool_conn *bad = h_try_connect("no_such_pool", &err);
    cr_assert_null(bad, "a session on an unknown pool was accepted");
    cr_assert_eq(err.code, DBPOOL_E_UNKNOWN_POOL, "got %s: %s", dbpool_code_name(err.code),
                 err.message);

    cr_assert_eq(h_scalar(before, "SELECT 7"), 7, "an existing session broke");
    assert_daemon_serves();
    dbpool_close(before);
    h_stop_ok();
}

Test(handshake, unknown_pool_raw_error_then_close)
{
    h_start(NULL);
    int fd = h_raw_connect();
    h_raw_send_hello(fd, PROTO_VERSION, "no_such_pool");
    h_raw_expect_error_then_eof(fd, DBPOOL_E_UNKNOWN_POOL, "HELLO for an unknown pool");
    assert_daemon_serves();
    h_stop_ok();
}

/* ================================================================ values */

TestSuite(values, .fini = h_fini, .timeout = 60);

Test(values, roundtrip_through_select_param)
{
    struct sample s[NSAMPLES];
    make_samples(s);
    h_start(NULL);
    dbpool_conn *c = h_connect();

    for (int k = 0; k < NSAMPLES; k++) {
        dbpool_result *r = h_query(c, "SELECT ? AS v", &s[k].v, 1);
        cr_assert_eq(dbpool_result_nrows(r), 1, "%s: rows", s[k].name);
        cr_assert_eq(dbpool_result_ncols(r), 1, "%s: columns", s[k].name);
        cr_assert_str_eq(dbpool_result_columns(r)[0].name, "v", "%s: column name", s[k].name);
        if (P->d_expr)
            cr_assert_str_eq(dbpool_result_columns(r)[0].decl_type, P->d_expr,
                             "%s: declared type of an expression column", s[k].name);
        dbpool_value want = expected_back(&s[k].v);
        assert_value(dbpool_result_value(r, 0, 0), &want, !P->float_keeps_neg_zero, s[k].name);
        dbpool_result_free(r);
    }
    dbpool_close(c);
    free(big_text);
    h_stop_ok();
}

Test(values, roundtrip_through_table)
{
    struct sample s[NSAMPLES];
    char sql[256];
    make_samples(s);
    h_start(NULL);
    dbpool_conn *c = h_connect();
    create_values_table(c);

    for (int k = 0; k < NSAMPLES; k++) {
        dbpool_value p[2] = { dbpool_int(k + 1), s[k].v };
        snprintf(sql, sizeof(sql), "INSERT INTO vals (id, %s) VALUES (?, ?)", s[k].column);
        dbpool_result *ins = h_query(c, sql, p, 2);
        cr_assert_eq(dbpool_result_rows_affected(ins), 1, "%s: rows_affected", s[k].name);
        dbpool_result_free(ins);
    }
    for (int k = 0; k < NSAMPLES; k++) {
        dbpool_value id = dbpool_int(k + 1);
        snprintf(sql, sizeof(sql), "SELECT %s FROM vals WHERE id = ?", s[k].column);
        dbpool_result *r = h_query(c, sql, &id, 1);
        cr_assert_eq(dbpool_result_nrows(r), 1, "%s: rows", s[k].name);
        dbpool_value want = expected_back(&s[k].v);
        assert_value(dbpool_result_value(r, 0, 0), &want, !P->float_keeps_neg_zero_in_table,
                     s[k].name);
        dbpool_result_free(r);
    }
    dbpool_close(c);
    free(big_text);
    h_stop_ok();
}

Test(values, column_names_and_declared_types)
{
    static const char *const names[] = { "id", "i", "f", "t", "b" };
    h_start(NULL);
    const char *const decl[] = { P->d_int, P->d_int, P->d_float, P->d_text, P->d_blob };
    dbpool_conn *c = h_connect();
    create_values_table(c);

    dbpool_result *r = h_query(c, "SELECT id, i, f, t, b, bo FROM vals", NULL, 0);
    cr_assert_eq(dbpool_result_nrows(r), 0);
    cr_assert_eq(dbpool_result_ncols(r), 6, "an empty result still reports its columns");
    const dbpool_column *cols = dbpool_result_columns(r);
    for (int i = 0; i < 5; i++) {
        cr_assert_str_eq(cols[i].name, names[i]);
        cr_assert_str_eq(cols[i].decl_type, decl[i], "declared type of column %s", names[i]);
    }
    dbpool_result_free(r);

    r = h_query(c, "SELECT 1 AS one, 'x' AS two", NULL, 0);
    cr_assert_str_eq(dbpool_result_columns(r)[0].name, "one");
    cr_assert_str_eq(dbpool_result_columns(r)[1].name, "two");
    cr_assert_eq(dbpool_result_value(r, 0, 0)->type, DBPOOL_INT64);
    cr_assert_eq(dbpool_result_value(r, 0, 1)->type, DBPOOL_TEXT);
    cr_assert_str_eq(dbpool_result_value(r, 0, 1)->u.s.ptr, "x", "TEXT is NUL-terminated");
    dbpool_result_free(r);
    dbpool_close(c);
    h_stop_ok();
}

Test(values, literal_result_types)
{
    char sql[256], blob[64];
    static const uint8_t want_blob[] = { 0x00, 0xff, 0x10 };
    h_start(NULL);
    dbpool_conn *c = h_connect();
    h_blob_literal(blob, sizeof(blob), "00ff10");
    snprintf(sql, sizeof(sql), "SELECT 7 AS i, CAST(2.5 AS %s) AS f, 'x' AS t, NULL AS n, "
             "%s AS b", P->t_float, blob);

    dbpool_result *r = h_query(c, sql, NULL, 0);
    const dbpool_value want[5] = { dbpool_int(7), dbpool_float(2.5), dbpool_text("x"),
                                   dbpool_null(), dbpool_blob(want_blob, sizeof(want_blob)) };
    static const char *const names[5] = { "i", "f", "t", "n", "b" };
    cr_assert_eq(dbpool_result_ncols(r), 5);
    for (int i = 0; i < 5; i++) {
        cr_assert_str_eq(dbpool_result_columns(r)[i].name, names[i]);
        assert_value(dbpool_result_value(r, 0, (size_t)i), &want[i], false, names[i]);
    }
    dbpool_result_free(r);
    dbpool_close(c);
    h_stop_ok();
}

Test(values, stmt_done_counts_and_insert_ids)
{
    char cols[128];
    h_start(NULL);
    dbpool_conn *c = h_connect();
    snprintf(cols, sizeof(cols), "id %s, a %s", P->t_autoinc_pk, P->t_int);
    h_create_table(c, "t", cols);

    for (int64_t i = 1; i <= 3; i++) {
        dbpool_value v = dbpool_int(i * 10);
        dbpool_result *r = h_query(c, "INSERT INTO t (a) VALUES (?)", &v, 1);
        cr_assert_eq(dbpool_result_rows_affected(r), 1);
        if (P->has_last_insert_id)
            cr_assert_eq(dbpool_result_last_insert_id(r), i, "last_insert_id %lld, expected %lld",
                         (long long)dbpool_result_last_insert_id(r), (long long)i);
        dbpool_result_free(r);
    }
    dbpool_result *r = h_query(c, "UPDATE t SET a = a + 1", NULL, 0);
    cr_assert_eq(dbpool_result_rows_affected(r), 3, "UPDATE rows_affected");
    dbpool_result_free(r);
    r = h_query(c, "SELECT a FROM t", NULL, 0);
    cr_assert_eq(dbpool_result_rows_affected(r), 3, "SELECT rows_affected = rows returned");
    dbpool_result_free(r);
    r = h_query(c, "DELETE FROM t WHERE a > 15", NULL, 0);
    cr_assert_eq(dbpool_result_rows_affected(r), 2, "DELETE rows_affected");
    dbpool_result_free(r);
    dbpool_close(c);
    h_stop_ok();
}

/* ================================================================ params */

TestSuite(params, .fini = h_fini, .timeout = 60);

Test(params, count_mismatch_is_sql_error_session_continues)
{
    h_start(NULL);
    dbpool_conn *c = h_connect();
    dbpool_value one = dbpool_int(1), two[2] = { dbpool_int(1), dbpool_int(2) };

    h_expect_error(c, dbpool_query(c, h_sql("SELECT ? + ?"), &one, 1, NULL), DBPOOL_E_SQL,
                   "too few parameters");
    cr_assert_str_eq(dbpool_last_error(c)->sqlstate, "07001", "too few parameters: SQLSTATE");
    assert_txstate(c, 'I', "after the error");
    h_expect_error(c, dbpool_query(c, h_sql("SELECT ?"), two, 2, NULL), DBPOOL_E_SQL,
                   "too many parameters");
    cr_assert_str_eq(dbpool_last_error(c)->sqlstate, "07001", "too many parameters: SQLSTATE");
    cr_assert(dbpool_is_open(c), "a request error closed the session");

    dbpool_result *r = h_query(c, "SELECT ? + 1", &one, 1);
    cr_assert_eq(dbpool_result_value(r, 0, 0)->u.i, 2);
    dbpool_result_free(r);
    dbpool_close(c);
    h_stop_ok();
}

Test(params, injection_attempt_stored_literally)
{
    static const char *const evil = "x'); DROP TABLE t; --";
    static const char *const tautology = "' OR '1'='1";
    h_start(NULL);
    dbpool_conn *c = h_connect();
    char cols[64];
    snprintf(cols, sizeof(cols), "s %s", P->t_text);
    h_create_table(c, "t", cols);

    dbpool_value v = dbpool_text(evil);
    h_execp(c, "INSERT INTO t (s) VALUES (?)", &v, 1);
    dbpool_result *r = h_query(c, "SELECT s FROM t", NULL, 0);
    cr_assert_eq(dbpool_result_nrows(r), 1, "the table lost or gained rows");
    cr_assert_str_eq(dbpool_result_value(r, 0, 0)->u.s.ptr, evil);
    dbpool_result_free(r);

    v = dbpool_text(tautology);
    r = h_query(c, "SELECT count(*) FROM t WHERE s = ?", &v, 1);
    cr_assert_eq(dbpool_result_value(r, 0, 0)->u.i, 0, "the parameter was interpolated");
    dbpool_result_free(r);
    dbpool_close(c);
    h_stop_ok();
}

/* ================================================================ errors */

TestSuite(errors, .fini = h_fini, .timeout = 60);

static void expect_sqlstate(dbpool_conn *c, const char *sql, const char *state)
{
    int rc = dbpool_exec(c, h_sql(sql));
    h_expect_error(c, rc, DBPOOL_E_SQL, sql);
    cr_assert_str_eq(dbpool_last_error(c)->sqlstate, state, "%s: SQLSTATE (message: %s)", sql,
                     dbpool_last_error(c)->message);
    cr_assert_neq(dbpool_last_error(c)->message[0], '\0', "%s: empty error message", sql);
}

Test(errors, sqlstates_of_common_failures)
{
    if (!P->standard_sqlstates)
        cr_skip_test("backend %s uses its own SQLSTATEs", P->name);
    h_start(NULL);
    dbpool_conn *c = h_connect();
    h_exec(c, "DROP TABLE IF EXISTS t");              /* it references parent */
    h_create_table(c, "parent", "id INTEGER PRIMARY KEY");
    h_create_table(c, "t", "id INTEGER PRIMARY KEY, n INTEGER NOT NULL CHECK (n > 0), "
                           "p INTEGER REFERENCES parent(id)");
    h_exec(c, "INSERT INTO parent VALUES (1)");
    h_exec(c, "INSERT INTO t VALUES (1, 1, 1)");

    expect_sqlstate(c, "INSERT INTO t VALUES (1, 1, 1)", "23505");
    expect_sqlstate(c, "INSERT INTO t VALUES (2, NULL, 1)", "23502");
    expect_sqlstate(c, "INSERT INTO t VALUES (3, 1, 99)", "23503");
    expect_sqlstate(c, "INSERT INTO t VALUES (4, -5, 1)", "23514");
    expect_sqlstate(c, "SELEKT 1", "42601");
    expect_sqlstate(c, "SELECT * FROM no_such_table", "42P01");
    expect_sqlstate(c, "SELECT no_such_column FROM t", "42703");
    cr_assert_eq(count_rows(c, "t"), 1);
    dbpool_close(c);
    h_stop_ok();
}

/* The database's own error number next to the SQLSTATE: what each backend
 * says for a duplicate key and a syntax error (PostgreSQL has no numbers of
 * its own: 0). */
struct vendor_codes {
    const char *backend, *dup_state, *syntax_state;
    int32_t dup, syntax;
};

static const struct vendor_codes *vendor_codes_of(const char *backend)
{
    static const struct vendor_codes known[] = {
        { "sqlite", "23505", "42601", 2067 /* SQLITE_CONSTRAINT_UNIQUE */, 1 /* SQLITE_ERROR */ },
        { "postgres", "23505", "42601", 0, 0 },
        { "mysql", "23000", "42000", 1062 /* ER_DUP_ENTRY */, 1064 /* ER_PARSE_ERROR */ },
    };

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(known[i].backend, backend) == 0)
            return &known[i];
    cr_assert_fail("no vendor codes known for backend %s", backend);
    return NULL;
}

static void expect_vendor(dbpool_conn *c, int rc, const char *what, const char *state,
                          int32_t vendor)
{
    const dbpool_error *e = dbpool_last_error(c);

    h_expect_error(c, rc, DBPOOL_E_SQL, what);
    cr_assert_str_eq(e->sqlstate, state, "%s: SQLSTATE (message: %s)", what, e->message);
    cr_assert_eq(e->vendor_code, vendor, "%s: vendor code %d, expected %d (message: %s)", what,
                 e->vendor_code, vendor, e->message);
}

Test(errors, vendor_code_next_to_sqlstate)
{
    const struct vendor_codes *v = vendor_codes_of(P->name);
    h_start(NULL);
    dbpool_conn *c = h_connect();
    h_create_table(c, "t", "id INTEGER UNIQUE");
    h_exec(c, "INSERT INTO t VALUES (1)");

    int rc = dbpool_exec(c, h_sql("INSERT INTO t VALUES (1)"));
    expect_vendor(c, rc, "duplicate key", v->dup_state, v->dup);
    h_exec(c, "INSERT INTO t VALUES (2)");
    cr_assert_eq(dbpool_last_error(c)->vendor_code, 0, "a request that succeeded left the "
                 "vendor code %d of the one before", dbpool_last_error(c)->vendor_code);
    rc = dbpool_exec(c, h_sql("SELEKT 1"));
    expect_vendor(c, rc, "syntax error", v->syntax_state, v->syntax);
    /* the daemon's own errors have none, and it does not linger */
    rc = dbpool_commit(c);
    h_expect_error(c, rc, DBPOOL_E_TX_STATE, "COMMIT without a transaction");
    cr_assert_eq(dbpool_last_error(c)->vendor_code, 0, "COMMIT without a transaction: %d",
                 dbpool_last_error(c)->vendor_code);
    dbpool_close(c);
    h_stop_ok();
}

Test(errors, query_holds_exactly_one_statement)
{
    if (!P->standard_sqlstates)
        cr_skip_test("backend %s uses its own SQLSTATEs", P->name);
    h_start(NULL);
    dbpool_conn *c = h_connect();
    h_create_table(c, "t", "a INTEGER");
    expect_sqlstate(c, "INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)", "42601");
    cr_assert_eq(count_rows(c, "t"), 0, "part of a multi-statement QUERY ran");
    h_exec(c, "INSERT INTO t VALUES (3);");           /* a trailing ';' is fine */
    cr_assert_eq(count_rows(c, "t"), 1);
    dbpool_close(c);
    h_stop_ok();
}

/* ================================================================ streaming */

TestSuite(streaming, .fini = h_fini, .timeout = 180);

static char *make_pad(size_t n)
{
    char *p = malloc(n + 1);
    cr_assert_not_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('A' + i % 26);
    p[n] = '\0';
    return p;
}

static void start_series(dbpool_conn *c, int64_t rows, const char *pad)
{
    dbpool_value p[2] = { dbpool_int(rows), dbpool_text(pad) };
    must_ok(c, dbpool_query_start(c, h_sql(P->series_sql), p, 2), "query_start");
}

/* Read up to `max` rows, checking the sequence continues at *next. */
static int64_t read_series(dbpool_conn *c, int64_t max, int64_t *next, const char *pad, int *rc)
{
    const dbpool_value *row;
    int64_t got = 0;
    size_t padlen = strlen(pad);

    while (got < max && (*rc = dbpool_next_row(c, &row)) == 1) {
        cr_assert_eq(row[0].type, DBPOOL_INT64, "row %lld: n has type %s", (long long)*next,
                     dbpool_type_name(row[0].type));
        cr_assert_eq(row[0].u.i, *next, "row out of sequence: %lld, expected %lld",
                     (long long)row[0].u.i, (long long)*next);
        cr_assert(row[1].type == DBPOOL_TEXT && row[1].u.s.len == padlen &&
                  memcmp(row[1].u.s.ptr, pad, padlen) == 0, "row %lld: pad corrupted",
                  (long long)*next);
        (*next)++;
        got++;
    }
    return got;
}

static void read_series_to_end(dbpool_conn *c, int64_t rows, int64_t *next, const char *pad)
{
    int rc = 1;
    read_series(c, INT64_MAX, next, pad, &rc);
    must_ok(c, rc, "reading the stream");
    cr_assert_eq(*next - 1, rows, "got %lld rows, expected %lld", (long long)(*next - 1),
                 (long long)rows);
    cr_assert_eq(dbpool_rows_affected(c), rows, "rows_affected of a SELECT = rows returned");
}

Test(streaming, large_result_arrives_complete_and_in_order)
{
    const int64_t rows = 100000;
    char *pad = make_pad(100);
    h_start(NULL);
    dbpool_conn *c = h_connect();

    start_series(c, rows, pad);
    cr_assert_eq(dbpool_ncolumns(c), 2);
    cr_assert_str_eq(dbpool_columns(c)[0].name, "n");
    cr_assert_str_eq(dbpool_columns(c)[1].name, "pad");
    int64_t next = 1;
    read_series_to_end(c, rows, &next, pad);
    assert_txstate(c, 'I', "after the stream");
    cr_assert_eq(h_scalar(c, "SELECT 5"), 5, "the session is usable after a long stream");
    dbpool_close(c);
    free(pad);
    h_stop_ok();
}

Test(streaming, daemon_memory_bounded_while_client_pauses)
{
    const int64_t rows = 200000;          /* x ~220 bytes per ROW frame = ~44 MB */
    const long bound_kib = 20 * 1024;
    char *pad = make_pad(200);
    struct h_opts o = { .max_open_conns = 2 };   /* one writer, one reader */
    h_start(&o);
    dbpool_conn *c = h_connect();

    int64_t next = 1;                     /* warm up the reader connection */
    start_series(c, 2000, pad);
    read_series_to_end(c, 2000, &next, pad);
    long base = h_await_stable_rss(8000);

    start_series(c, rows, pad);
    next = 1;
    int rc = 1;
    cr_assert_eq(read_series(c, 1000, &next, pad, &rc), 1000);
    long paused = h_await_stable_rss(8000);
    cr_assert_lt(paused - base, bound_kib, "daemon RSS grew by %ld KiB while the client paused "
                 "(bound %ld KiB): rows are buffered instead of back-pressured",
                 paused - base, bound_kib);

    read_series_to_end(c, rows, &next, pad);
    long end = h_rss_kib();
    cr_assert_lt(end - base, bound_kib, "daemon RSS grew by %ld KiB over the stream",
                 end - base);
    dbpool_close(c);
    free(pad);
    h_stop_ok();
}

/* ================================================================ tx */

TestSuite(tx, .fini = h_fini, .timeout = 60);

static dbpool_conn *start_with_table(const struct h_opts *o)
{
    char cols[64];
    h_start(o);
    dbpool_conn *c = h_connect();
    snprintf(cols, sizeof(cols), "a %s", P->t_int);
    h_create_table(c, "t", cols);
    return c;
}

Test(tx, begin_commit_persists)
{
    dbpool_conn *a = start_with_table(NULL);
    must_ok(a, dbpool_begin(a, 0), "begin");
    assert_txstate(a, 'T', "after BEGIN");
    insert_int(a, "t", 1);
    assert_txstate(a, 'T', "after an insert in the transaction");
    must_ok(a, dbpool_commit(a), "commit");
    assert_txstate(a, 'I', "after COMMIT");

    dbpool_conn *b = h_connect();
    cr_assert_eq(count_rows(b, "t"), 1, "the committed row is not visible to another session");
    dbpool_close(b);
    dbpool_close(a);
    h_stop_ok();
}

Test(tx, begin_rollback_discards)
{
    dbpool_conn *a = start_with_table(NULL);
    must_ok(a, dbpool_begin(a, 0), "begin");
    insert_int(a, "t", 1);
    cr_assert_eq(count_rows(a, "t"), 1, "the transaction does not see its own row");
    must_ok(a, dbpool_rollback(a), "rollback");
    assert_txstate(a, 'I', "after ROLLBACK");
    cr_assert_eq(count_rows(a, "t"), 0, "the rolled back row is still there");
    dbpool_close(a);
    h_stop_ok();
}

Test(tx, nested_begin_is_a_savepoint)
{
    dbpool_conn *a = start_with_table(NULL);
    must_ok(a, dbpool_begin(a, 0), "outer begin");
    insert_int(a, "t", 1);
    must_ok(a, dbpool_begin(a, 0), "inner begin");
    assert_txstate(a, 'T', "inside the savepoint");
    insert_int(a, "t", 2);
    must_ok(a, dbpool_rollback(a), "inner rollback");
    assert_txstate(a, 'T', "after rolling back the savepoint");
    insert_int(a, "t", 3);
    must_ok(a, dbpool_begin(a, 0), "second inner begin");
    must_ok(a, dbpool_begin(a, 0), "third level begin");
    insert_int(a, "t", 4);
    must_ok(a, dbpool_commit(a), "third level commit");
    must_ok(a, dbpool_commit(a), "second level commit");
    assert_txstate(a, 'T', "after releasing the savepoints");
    must_ok(a, dbpool_commit(a), "outer commit");
    assert_txstate(a, 'I', "after the outer commit");

    dbpool_conn *b = h_connect();
    cr_assert_str_eq(table_ints(b, "t"), "1,3,4");
    dbpool_close(b);
    dbpool_close(a);
    h_stop_ok();
}

static int tx_body(dbpool_conn *c, void *arg)
{
    int64_t v = *(int64_t *)arg;
    dbpool_value p = dbpool_int(v);
    if (dbpool_txstate_of(c) != DBPOOL_TX_ACTIVE)
        return 99;
    if (dbpool_query(c, h_sql("INSERT INTO t VALUES (?)"), &p, 1, NULL) != 0)
        return 98;
    return v < 0 ? 7 : 0;
}

Test(tx, with_transaction_commits_on_zero_rolls_back_otherwise)
{
    dbpool_conn *a = start_with_table(NULL);
    int64_t good = 1, bad = -1;

    cr_assert_eq(dbpool_with_transaction(a, 0, tx_body, &good), 0);
    assert_txstate(a, 'I', "after a committed with_transaction");
    cr_assert_eq(dbpool_with_transaction(a, 0, tx_body, &bad), 7, "fn's return value is "
                 "passed through");
    assert_txstate(a, 'I', "after a rolled back with_transaction");
    cr_assert_str_eq(table_ints(a, "t"), "1");
    dbpool_close(a);
    h_stop_ok();
}

Test(tx, sql_begin_commit_tracked)
{
    dbpool_conn *a = start_with_table(NULL);
    dbpool_conn *b = h_connect();

    h_exec(a, "BEGIN");
    assert_txstate(a, 'T', "after SQL BEGIN");
    insert_int(a, "t", 1);
    assert_txstate(a, 'T', "after an insert in an SQL transaction");
    cr_assert_eq(count_rows(b, "t"), 0, "another session sees an uncommitted row");
    h_exec(a, "COMMIT");
    assert_txstate(a, 'I', "after SQL COMMIT");
    cr_assert_eq(count_rows(b, "t"), 1, "the committed row is not visible");

    h_exec(a, "BEGIN");
    insert_int(a, "t", 2);
    h_exec(a, "ROLLBACK");
    assert_txstate(a, 'I', "after SQL ROLLBACK");
    cr_assert_str_eq(table_ints(b, "t"), "1");
    dbpool_close(b);
    dbpool_close(a);
    h_stop_ok();
}

Test(tx, commit_or_rollback_without_transaction)
{
    dbpool_conn *a = start_with_table(NULL);
    h_expect_error(a, dbpool_commit(a), DBPOOL_E_TX_STATE, "COMMIT outside a transaction");
    cr_assert_str_eq(dbpool_last_error(a)->sqlstate, "25000");
    cr_assert(strstr(dbpool_last_error(a)->message, "COMMIT"), "the message names the wrong "
              "request: %s", dbpool_last_error(a)->message);
    assert_txstate(a, 'I', "after the failed COMMIT");
    h_expect_error(a, dbpool_rollback(a), DBPOOL_E_TX_STATE, "ROLLBACK outside a transaction");
    cr_assert(strstr(dbpool_last_error(a)->message, "ROLLBACK"), "%s",
              dbpool_last_error(a)->message);
    cr_assert(dbpool_is_open(a), "a request error closed the session");
    insert_int(a, "t", 1);
    cr_assert_eq(count_rows(a, "t"), 1);
    dbpool_close(a);
    h_stop_ok();
}

Test(tx, read_only_transaction_refuses_writes)
{
    dbpool_conn *a = start_with_table(NULL);
    insert_int(a, "t", 1);

    must_ok(a, dbpool_begin(a, DBPOOL_READ_ONLY), "begin read-only");
    assert_txstate(a, 'T', "in a read-only transaction");
    cr_assert_eq(count_rows(a, "t"), 1, "reads work in a read-only transaction");
    dbpool_value v = dbpool_int(2);
    int rc = dbpool_query(a, h_sql("INSERT INTO t VALUES (?)"), &v, 1, NULL);
    h_expect_error(a, rc, DBPOOL_E_SQL, "INSERT in a read-only transaction");
    cr_assert_str_eq(dbpool_last_error(a)->sqlstate, P->sqlstate_read_only);
    if (!P->error_fails_transaction)
        cr_assert_eq(count_rows(a, "t"), 1, "reads still work after the refused write");
    must_ok(a, dbpool_rollback(a), "rollback");
    assert_txstate(a, 'I', "after the read-only transaction");

    insert_int(a, "t", 3);
    cr_assert_str_eq(table_ints(a, "t"), "1,3");
    dbpool_close(a);
    h_stop_ok();
}

Test(tx, commit_of_failed_transaction_rolls_back)
{
    if (!P->error_fails_transaction)
        cr_skip_test("on %s a statement error does not fail the transaction", P->name);
    dbpool_conn *a = start_with_table(NULL);
    must_ok(a, dbpool_begin(a, 0), "begin");
    insert_int(a, "t", 1);
    cr_assert_eq(dbpool_exec(a, "SELECT * FROM no_such_table"), -1);
    assert_txstate(a, 'E', "after an error inside the transaction");
    h_expect_error(a, dbpool_exec(a, "SELECT 1"), DBPOOL_E_SQL, "a statement in a failed tx");
    h_expect_error(a, dbpool_commit(a), DBPOOL_E_TX_STATE, "COMMIT of a failed transaction");
    cr_assert_str_eq(dbpool_last_error(a)->sqlstate, "25P02");
    assert_txstate(a, 'I', "after COMMIT of a failed transaction");
    cr_assert_eq(count_rows(a, "t"), 0, "COMMIT of a failed transaction committed");
    dbpool_close(a);
    h_stop_ok();
}

/* ================================================================ disconnect */

TestSuite(disconnect, .fini = h_fini, .timeout = 60);

/* With a single server connection, B can only read if the writer was rolled
 * back and released; it then must also be able to write. */
static void assert_rolled_back_and_writable(void)
{
    dbpool_conn *b = h_connect();
    cr_assert_eq(count_rows(b, "t"), 0, "the vanished client's uncommitted row is visible");
    insert_int(b, "t", 2);
    cr_assert_str_eq(table_ints(b, "t"), "2");
    assert_txstate(b, 'I', "B after its insert");
    dbpool_close(b);
}

static void send_frame(int fd, uint8_t type, const void *payload, uint32_t len)
{
    uint8_t hdr[5] = { (uint8_t)((len + 1) >> 24), (uint8_t)((len + 1) >> 16),
                       (uint8_t)((len + 1) >> 8), (uint8_t)(len + 1), type };
    cr_assert(h_raw_send(fd, hdr, sizeof(hdr)) && (len == 0 || h_raw_send(fd, payload, len)),
              "send: %s", strerror(errno));
}

static void send_query(int fd, const char *sql, const dbpool_value *params, size_t n)
{
    struct pbuf b;
    pbuf_init(&b);
    const char *s = h_sql(sql);
    proto_put_query(&b, s, strlen(s), params, n);
    cr_assert(!b.oom && h_raw_send(fd, b.data, b.len), "send QUERY");
    pbuf_free(&b);
}

static void expect_ready(int fd, char txstate, const char *what)
{
    struct h_frame f;
    uint8_t t = h_raw_read_until_terminal(fd, 10000, &f);
    if (t == PT_ERROR) {
        struct proto_error e;
        cr_assert(proto_get_error(f.payload, f.len, &e));
        cr_assert_fail("%s: ERROR %s: %.*s", what, dbpool_code_name(e.code), (int)e.message.len,
                       e.message.p);
    }
    char got = 0;
    cr_assert(proto_get_ready(f.payload, f.len, &got), "%s: malformed READY", what);
    cr_assert_eq(got, txstate, "%s: txstate '%c', expected '%c'", what, got, txstate);
    h_frame_free(&f);
}

Test(disconnect, close_inside_transaction_rolls_back)
{
    dbpool_conn *a = start_with_table(&single_conn);
    must_ok(a, dbpool_begin(a, 0), "begin");
    insert_int(a, "t", 1);
    dbpool_close(a);
    assert_rolled_back_and_writable();
    h_stop_ok();
}

Test(disconnect, dropped_socket_inside_transaction_rolls_back)
{
    dbpool_conn *setup = start_with_table(&single_conn);
    dbpool_close(setup);
    int fd = h_raw_connect();
    h_raw_handshake(fd);
    uint8_t flags = 0;
    send_frame(fd, PT_BEGIN, &flags, 1);
    expect_ready(fd, 'T', "BEGIN");
    dbpool_value v = dbpool_int(1);
    send_query(fd, "INSERT INTO t VALUES (?)", &v, 1);
    expect_ready(fd, 'T', "INSERT");
    close(fd);                            /* no TERMINATE, no COMMIT */
    assert_rolled_back_and_writable();
    h_stop_ok();
}

Test(disconnect, killed_client_process_rolls_back)
{
    dbpool_conn *setup = start_with_table(&single_conn);
    dbpool_close(setup);
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);

    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        dbpool_conn *c = dbpool_connect(h_paths()->sock, H_POOL, "doomed", NULL);
        dbpool_value v = dbpool_int(1);
        char ok = c && dbpool_begin(c, 0) == 0 &&
                  dbpool_query(c, h_sql("INSERT INTO t VALUES (?)"), &v, 1, NULL) == 0 ? 'y' : 'n';
        if (write(pfd[1], &ok, 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    char ok = 0;
    cr_assert_eq(read(pfd[0], &ok, 1), 1);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    close(pfd[0]);
    close(pfd[1]);
    cr_assert_eq(ok, 'y', "the child could not begin + insert");
    assert_rolled_back_and_writable();
    h_stop_ok();
}

Test(disconnect, vanish_with_unread_results_inside_transaction)
{
    dbpool_conn *setup = start_with_table(&single_conn);
    dbpool_close(setup);
    int fd = h_raw_connect();
    h_raw_handshake(fd);
    uint8_t flags = 0;
    dbpool_value v = dbpool_int(1);
    dbpool_value series[2] = { dbpool_int(1000000), dbpool_text("some padding for the rows") };
    send_frame(fd, PT_BEGIN, &flags, 1);
    send_query(fd, "INSERT INTO t VALUES (?)", &v, 1);
    send_query(fd, P->series_sql, series, 2);    /* a long stream nobody reads */
    expect_ready(fd, 'T', "BEGIN");
    expect_ready(fd, 'T', "INSERT");
    struct h_frame f;
    cr_assert_eq(h_raw_read_frame(fd, 10000, &f), 1, "the stream did not start");
    h_frame_free(&f);
    close(fd);
    assert_rolled_back_and_writable();
    assert_daemon_serves();
    h_stop_ok();
}

Test(disconnect, vanish_before_reading_the_response)
{
    dbpool_conn *setup = start_with_table(&single_conn);
    dbpool_close(setup);
    for (int i = 0; i < 20; i++) {
        int fd = h_raw_connect();
        h_raw_send_hello(fd, PROTO_VERSION, H_POOL);
        dbpool_value v = dbpool_int(100 + i);
        send_query(fd, "INSERT INTO t VALUES (?)", &v, 1);
        close(fd);
    }
    dbpool_conn *b = h_connect();
    int64_t n = count_rows(b, "t");
    cr_assert(n >= 0 && n <= 20, "%lld rows", (long long)n);
    insert_int(b, "t", 1);
    dbpool_close(b);
    await_no_sessions();
    assert_daemon_serves();
    h_stop_ok();
}

Test(disconnect, server_connection_killed_inside_transaction)
{
    if (!P->kill_backend_sql)
        cr_skip_test("backend %s has no server process to kill", P->name);
    dbpool_conn *a = start_with_table(NULL);
    dbpool_conn *killer = h_connect();
    must_ok(a, dbpool_begin(a, 0), "begin");
    insert_int(a, "t", 1);
    dbpool_value pid = dbpool_int(h_scalar(a, P->backend_pid_sql));
    h_execp(killer, P->kill_backend_sql, &pid, 1);

    int rc = dbpool_exec(a, h_sql("SELECT count(*) FROM t"));
    h_expect_error(a, rc, DBPOOL_E_CONN_LOST, "a statement on a killed server connection");
    assert_txstate(a, 'I', "after the connection was lost");
    cr_assert(dbpool_is_open(a), "CONN_LOST is a request error; the session goes on");
    cr_assert_eq(count_rows(a, "t"), 0, "the lost transaction's row exists");
    insert_int(a, "t", 2);
    cr_assert_str_eq(table_ints(killer, "t"), "2");
    dbpool_close(killer);
    dbpool_close(a);
    h_stop_ok();
}

/* ================================================================ batch */

TestSuite(batch, .fini = h_fini, .timeout = 60);

#define NSTMTS(a) (sizeof(a) / sizeof((a)[0]))

static void free_results(dbpool_result **r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (r[i])
            dbpool_result_free(r[i]);
}

static dbpool_stmt stmt(const char *sql, const dbpool_value *p, size_t n)
{
    dbpool_stmt s = { h_sql(sql), p, n };
    return s;
}

Test(batch, non_atomic_returns_one_result_per_statement)
{
    dbpool_conn *c = start_with_table(NULL);
    dbpool_value one = dbpool_int(1), two = dbpool_int(2);
    dbpool_stmt s[] = {
        stmt("INSERT INTO t VALUES (?)", &one, 1),
        stmt("INSERT INTO t VALUES (?)", &two, 1),
        stmt("SELECT a FROM t ORDER BY a", NULL, 0),
    };
    dbpool_result *res[3] = { NULL };
    size_t failed = 77;

    must_ok(c, dbpool_batch(c, s, NSTMTS(s), 0, res, &failed), "batch");
    cr_assert_eq(failed, SIZE_MAX, "failed_index after success: %zu", failed);
    cr_assert(res[0] && res[1] && res[2], "a result is missing");
    cr_assert_eq(dbpool_result_rows_affected(res[0]), 1);
    cr_assert_eq(dbpool_result_rows_affected(res[1]), 1);
    cr_assert_eq(dbpool_result_nrows(res[2]), 2);
    cr_assert_eq(dbpool_result_ncols(res[2]), 1);
    cr_assert_str_eq(dbpool_result_columns(res[2])[0].name, "a");
    cr_assert_eq(dbpool_result_value(res[2], 0, 0)->u.i, 1);
    cr_assert_eq(dbpool_result_value(res[2], 1, 0)->u.i, 2);
    assert_txstate(c, 'I', "after a batch");
    free_results(res, 3);
    dbpool_close(c);
    h_stop_ok();
}

Test(batch, non_atomic_stops_at_first_error_keeps_earlier)
{
    dbpool_conn *c = start_with_table(NULL);
    dbpool_value one = dbpool_int(1), three = dbpool_int(3);
    dbpool_stmt s[] = {
        stmt("INSERT INTO t VALUES (?)", &one, 1),
        stmt("INSERT INTO no_such_table VALUES (1)", NULL, 0),
        stmt("INSERT INTO t VALUES (?)", &three, 1),
    };
    dbpool_result *res[3] = { NULL };
    size_t failed = 77;

    int rc = dbpool_batch(c, s, NSTMTS(s), 0, res, &failed);
    h_expect_error(c, rc, DBPOOL_E_SQL, "batch with a bad 2nd statement");
    cr_assert_eq(failed, 1, "failed_index %zu", failed);
    cr_assert_not_null(res[0], "no result for the statement that ran");
    cr_assert_null(res[2], "a result for a statement after the failure");
    free_results(res, 3);
    assert_txstate(c, 'I', "after a failed non-atomic batch");
    cr_assert_str_eq(table_ints(c, "t"), "1", "statement 0 must stay, statement 2 must not run");
    dbpool_close(c);
    h_stop_ok();
}

Test(batch, atomic_failure_rolls_back_every_statement)
{
    dbpool_conn *c = start_with_table(NULL);
    dbpool_value v[3] = { dbpool_int(1), dbpool_int(2), dbpool_int(3) };
    dbpool_stmt bad[] = {
        stmt("INSERT INTO t VALUES (?)", &v[0], 1),
        stmt("INSERT INTO t VALUES (?)", &v[1], 1),
        stmt("INSERT INTO no_such_table VALUES (?)", &v[2], 1),
    };
    size_t failed = 77;

    int rc = dbpool_batch(c, bad, NSTMTS(bad), 1, NULL, &failed);
    h_expect_error(c, rc, DBPOOL_E_SQL, "atomic batch with a bad 3rd statement");
    cr_assert_eq(failed, 2, "failed_index %zu", failed);
    assert_txstate(c, 'I', "after a failed atomic batch");
    cr_assert_eq(count_rows(c, "t"), 0, "rows of a failed atomic batch survived");

    dbpool_stmt good[] = { bad[0], bad[1] };
    must_ok(c, dbpool_batch(c, good, NSTMTS(good), 1, NULL, NULL), "atomic batch");
    cr_assert_str_eq(table_ints(c, "t"), "1,2");
    dbpool_close(c);
    h_stop_ok();
}

/* The failing statement's vendor code survives the batch's rollback. */
Test(batch, atomic_failure_reports_the_statements_vendor_code)
{
    const struct vendor_codes *v = vendor_codes_of(P->name);
    h_start(NULL);
    dbpool_conn *c = h_connect();
    h_create_table(c, "t", "id INTEGER UNIQUE");
    dbpool_stmt dup[] = {
        stmt("INSERT INTO t VALUES (1)", NULL, 0),
        stmt("INSERT INTO t VALUES (1)", NULL, 0),
    };
    size_t failed = 77;

    int rc = dbpool_batch(c, dup, NSTMTS(dup), 1, NULL, &failed);
    expect_vendor(c, rc, "atomic batch with a duplicate key", v->dup_state, v->dup);
    cr_assert_eq(failed, 1, "failed_index %zu", failed);
    cr_assert_eq(count_rows(c, "t"), 0, "rows of a failed atomic batch survived");
    dbpool_close(c);
    h_stop_ok();
}

Test(batch, atomic_inside_transaction_uses_savepoint)
{
    dbpool_conn *c = start_with_table(NULL);
    dbpool_value v[3] = { dbpool_int(1), dbpool_int(2), dbpool_int(3) };
    dbpool_stmt bad[] = {
        stmt("INSERT INTO t VALUES (?)", &v[0], 1),
        stmt("INSERT INTO t VALUES (?)", &v[1], 1),
        stmt("INSERT INTO no_such_table VALUES (?)", &v[2], 1),
    };
    size_t failed = 77;

    must_ok(c, dbpool_begin(c, 0), "begin");
    insert_int(c, "t", 100);
    int rc = dbpool_batch(c, bad, NSTMTS(bad), 1, NULL, &failed);
    h_expect_error(c, rc, DBPOOL_E_SQL, "atomic batch inside a transaction");
    cr_assert_eq(failed, 2);
    assert_txstate(c, 'T', "the outer transaction must survive the batch failure");
    insert_int(c, "t", 200);
    must_ok(c, dbpool_commit(c), "commit");
    assert_txstate(c, 'I', "after commit");

    dbpool_conn *b = h_connect();
    cr_assert_str_eq(table_ints(b, "t"), "100,200");
    dbpool_close(b);
    dbpool_close(c);
    h_stop_ok();
}

/* ================================================================ concurrency */

TestSuite(concurrency, .fini = h_fini, .timeout = 240);

#define WRITERS 50
#define INSERTS_PER_WRITER 200
#define READERS 4

struct shared {
    const char *sock;
    const char *insert_sql;
    const char *count_sql;
    atomic_int writers_left;
    atomic_long write_errors;
    atomic_long read_errors;
    atomic_long reads;
    atomic_long count_went_down;
    pthread_mutex_t lock;
    char first_error[600];
};

struct worker {
    struct shared *sh;
    int id;
};

static void record_error(struct shared *sh, atomic_long *counter, const char *what,
                         const dbpool_conn *c, const dbpool_error *e)
{
    atomic_fetch_add(counter, 1);
    pthread_mutex_lock(&sh->lock);
    if (!sh->first_error[0]) {
        const dbpool_error *err = c ? dbpool_last_error(c) : e;
        snprintf(sh->first_error, sizeof(sh->first_error), "%s: %s: %s", what,
                 dbpool_code_name(err->code), err->message);
    }
    pthread_mutex_unlock(&sh->lock);
}

static void *writer_main(void *arg)
{
    struct worker *w = arg;
    struct shared *sh = w->sh;
    dbpool_error err;
    dbpool_conn *c = dbpool_connect(sh->sock, H_POOL, "writer", &err);

    if (!c) {
        record_error(sh, &sh->write_errors, "writer connect", NULL, &err);
    } else {
        for (int i = 0; i < INSERTS_PER_WRITER; i++) {
            dbpool_value p[2] = { dbpool_int(w->id), dbpool_int(i) };
            if (dbpool_query(c, sh->insert_sql, p, 2, NULL) != 0)
                record_error(sh, &sh->write_errors, "insert", c, NULL);
        }
        dbpool_close(c);
    }
    atomic_fetch_sub(&sh->writers_left, 1);
    return NULL;
}

static void *reader_main(void *arg)
{
    struct worker *w = arg;
    struct shared *sh = w->sh;
    dbpool_error err;
    dbpool_conn *c = dbpool_connect(sh->sock, H_POOL, "reader", &err);
    int64_t last = 0;

    if (!c) {
        record_error(sh, &sh->read_errors, "reader connect", NULL, &err);
        return NULL;
    }
    do {
        dbpool_result *r = NULL;
        if (dbpool_query(c, sh->count_sql, NULL, 0, &r) != 0) {
            record_error(sh, &sh->read_errors, "count", c, NULL);
            continue;
        }
        int64_t n = dbpool_result_value(r, 0, 0)->u.i;
        if (n < last)
            atomic_fetch_add(&sh->count_went_down, 1);
        last = n;
        atomic_fetch_add(&sh->reads, 1);
        dbpool_result_free(r);
    } while (atomic_load(&sh->writers_left) > 0);
    dbpool_close(c);
    return NULL;
}

Test(concurrency, many_writers_and_readers_on_a_small_pool)
{
    dbpool_conn *setup = start_with_table(NULL);      /* maxOpenConns 4 */
    char cols[64];
    snprintf(cols, sizeof(cols), "tid %s, i %s", P->t_int, P->t_int);
    h_create_table(setup, "w", cols);
    dbpool_close(setup);

    struct shared sh = { .sock = h_paths()->sock,
                         .insert_sql = h_sql("INSERT INTO w (tid, i) VALUES (?, ?)"),
                         .count_sql = h_sql("SELECT count(*) FROM w") };
    atomic_init(&sh.writers_left, WRITERS);
    pthread_mutex_init(&sh.lock, NULL);
    pthread_t th[WRITERS + READERS];
    struct worker wk[WRITERS + READERS];

    for (int i = 0; i < WRITERS + READERS; i++) {
        wk[i] = (struct worker){ &sh, i };
        cr_assert_eq(pthread_create(&th[i], NULL, i < WRITERS ? writer_main : reader_main,
                                    &wk[i]), 0);
    }
    for (int i = 0; i < WRITERS + READERS; i++)
        pthread_join(th[i], NULL);

    cr_assert_eq(atomic_load(&sh.write_errors), 0, "%ld write errors; first: %s",
                 atomic_load(&sh.write_errors), sh.first_error);
    cr_assert_eq(atomic_load(&sh.read_errors), 0, "%ld read errors; first: %s",
                 atomic_load(&sh.read_errors), sh.first_error);
    cr_assert_gt(atomic_load(&sh.reads), READERS - 1, "the readers did not run");
    cr_assert_eq(atomic_load(&sh.count_went_down), 0, "a reader saw the row count decrease");

    dbpool_conn *c = h_connect();
    cr_assert_eq(count_rows(c, "w"), WRITERS * INSERTS_PER_WRITER);
    cr_assert_eq(h_scalar(c, "SELECT count(*) FROM (SELECT DISTINCT tid, i FROM w) AS d"),
                 WRITERS * INSERTS_PER_WRITER, "duplicate rows");
    dbpool_close(c);
    await_no_sessions();
    h_stop_ok();
}

/* ================================================================ routing */

TestSuite(routing, .fini = h_fini, .timeout = 60);

Test(routing, fresh_session_reads_committed_data_immediately)
{
    dbpool_conn *a = start_with_table(NULL);
    for (int64_t i = 1; i <= 40; i++) {
        if (i % 2) {
            must_ok(a, dbpool_begin(a, 0), "begin");
            insert_int(a, "t", i);
            must_ok(a, dbpool_commit(a), "commit");
        } else {
            insert_int(a, "t", i);        /* autocommit */
        }
        dbpool_conn *b = h_connect();
        cr_assert_eq(h_scalar(b, "SELECT max(a) FROM t"), i,
                     "a fresh session does not see the row committed just before");
        dbpool_close(b);
    }
    dbpool_close(a);
    h_stop_ok();
}

Test(routing, uncommitted_data_is_invisible_and_readers_do_not_block)
{
    dbpool_conn *a = start_with_table(NULL);
    dbpool_conn *b = h_connect();
    insert_int(a, "t", 1);
    must_ok(a, dbpool_begin(a, 0), "begin");
    insert_int(a, "t", 2);
    cr_assert_str_eq(table_ints(b, "t"), "1", "B sees A's uncommitted row (or blocked)");
    must_ok(a, dbpool_commit(a), "commit");
    cr_assert_str_eq(table_ints(b, "t"), "1,2");
    dbpool_close(b);
    dbpool_close(a);
    h_stop_ok();
}

/* ================================================================ protocol */

TestSuite(protocol, .fini = h_fini, .timeout = 60);

static int64_t read_int_result(int fd, char txstate, const char *what)
{
    struct h_frame f;
    dbpool_value v;
    struct proto_column *cols = NULL;
    size_t ncols = 0;

    cr_assert_eq(h_raw_read_frame(fd, 10000, &f), 1, "%s: no COLUMNS", what);
    cr_assert_eq(f.type, PT_COLUMNS, "%s: frame '%c', expected COLUMNS", what, f.type);
    cr_assert(proto_get_columns(f.payload, f.len, &cols, &ncols) && ncols == 1, "%s", what);
    free(cols);
    h_frame_free(&f);
    cr_assert_eq(h_raw_read_frame(fd, 10000, &f), 1);
    cr_assert_eq(f.type, PT_ROW, "%s: frame '%c', expected ROW", what, f.type);
    cr_assert(proto_get_row(f.payload, f.len, 1, &v) && v.type == DBPOOL_INT64, "%s", what);
    h_frame_free(&f);
    cr_assert_eq(h_raw_read_frame(fd, 10000, &f), 1);
    cr_assert_eq(f.type, PT_STMT_DONE, "%s: frame '%c', expected STMT_DONE", what, f.type);
    h_frame_free(&f);
    expect_ready(fd, txstate, what);
    return v.u.i;
}

Test(protocol, pipelined_requests_answered_in_order)
{
    h_start(NULL);
    int fd = h_raw_connect();
    struct pbuf b;
    pbuf_init(&b);
    proto_put_hello(&b, PROTO_VERSION, H_POOL, "pipeliner");
    proto_put_query(&b, "SELECT 1", 8, NULL, 0);
    proto_put_query(&b, "SELECT 2", 8, NULL, 0);
    proto_put_empty(&b, PT_PING);
    proto_put_begin(&b, 0);
    proto_put_query(&b, "SELECT 3", 8, NULL, 0);
    proto_put_empty(&b, PT_COMMIT);
    proto_put_empty(&b, PT_TERMINATE);
    cr_assert(!b.oom && h_raw_send(fd, b.data, b.len), "send");
    pbuf_free(&b);

    struct h_frame f;
    cr_assert_eq(h_raw_read_frame(fd, 10000, &f), 1);
    cr_assert_eq(f.type, PT_HELLO_OK);
    h_frame_free(&f);
    cr_assert_eq(read_int_result(fd, 'I', "SELECT 1"), 1);
    cr_assert_eq(read_int_result(fd, 'I', "SELECT 2"), 2);
    expect_ready(fd, 'I', "PING");
    expect_ready(fd, 'T', "BEGIN");
    cr_assert_eq(read_int_result(fd, 'T', "SELECT 3"), 3);
    expect_ready(fd, 'I', "COMMIT");
    h_raw_expect_eof(fd, 10000, "after TERMINATE");
    await_no_sessions();
    h_stop_ok();
}

/* ================================================================ badinput */

TestSuite(badinput, .fini = h_fini, .timeout = 60);

/* Open a session (HELLO done, or not), send bytes, expect ERROR code + EOF;
 * then the daemon still serves and no session is left over. */
static void bad_bytes(bool handshake, const void *bytes, size_t n, int code, const char *what)
{
    h_start(NULL);
    int fd = h_raw_connect();
    if (handshake)
        h_raw_handshake(fd);
    cr_assert(h_raw_send(fd, bytes, n), "%s: send: %s", what, strerror(errno));
    h_raw_expect_error_then_eof(fd, code, what);
    assert_daemon_serves();
    await_no_sessions();
    h_stop_ok();
}

static size_t count_in_log(const char *needle)
{
    char *log = h_read_log();
    size_t n = 0;
    for (const char *p = log; (p = strstr(p, needle)); p++)
        n++;
    free(log);
    return n;
}

/* One garbage session: a frame type no protocol has, before HELLO. */
static void garbage_session(void)
{
    static const uint8_t junk[] = { 0, 0, 0, 1, '~' };
    int fd = h_raw_connect();
    cr_assert(h_raw_send(fd, junk, sizeof(junk)));
    h_raw_expect_error_then_eof(fd, DBPOOL_E_PROTOCOL, "garbage before HELLO");
}

/* A local user opening session after session with garbage cannot flood
 * the log: each event writes a bounded number of lines per second, and a
 * summary says how many were left out. */
Test(badinput, a_flood_of_bad_sessions_writes_a_bounded_log)
{
    h_start(NULL);
    uint64_t t0 = h_now_ms();
    for (int i = 0; i < 600; i++)
        garbage_session();
    uint64_t secs = (h_now_ms() - t0) / 1000 + 2;   /* windows the flood touched */
    size_t lines = count_in_log("event=client_protocol_error");
    cr_log_info("600 bad sessions in %llu ms: %zu log lines", (unsigned long long)(h_now_ms() - t0),
                lines);
    cr_assert_leq(lines, secs * 50, "%zu client_protocol_error lines for 600 sessions in < %llu s",
                  lines, (unsigned long long)secs);
    /* Once the window is over, the next line brings the summary. */
    bool summarised = H_AWAIT((garbage_session(),
                               count_in_log("suppressed_event=client_protocol_error") > 0), 5000);
    cr_assert(summarised, "no log_suppressed line for the dropped lines");
    assert_daemon_serves();
    h_stop_ok();
}

static void bad_frame(bool handshake, uint8_t type, const void *payload, uint32_t len, int code,
                      const char *what)
{
    uint8_t buf[256];
    cr_assert_leq(len + 5u, sizeof(buf));
    uint32_t flen = len + 1;
    buf[0] = (uint8_t)(flen >> 24);
    buf[1] = (uint8_t)(flen >> 16);
    buf[2] = (uint8_t)(flen >> 8);
    buf[3] = (uint8_t)flen;
    buf[4] = type;
    if (len)
        memcpy(buf + 5, payload, len);
    bad_bytes(handshake, buf, len + 5u, code, what);
}

Test(badinput, garbage_http_request)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    h_start(NULL);
    int fd = h_raw_connect();
    cr_assert(h_raw_send(fd, req, sizeof(req) - 1));
    struct h_frame f;
    struct proto_error e;
    cr_assert_eq(h_raw_read_frame(fd, 10000, &f), 1, "no ERROR frame for garbage");
    cr_assert_eq(f.type, PT_ERROR);
    cr_assert(proto_get_error(f.payload, f.len, &e));
    cr_assert(e.code == DBPOOL_E_PROTOCOL || e.code == DBPOOL_E_LIMIT, "code %s",
              dbpool_code_name(e.code));
    h_frame_free(&f);
    h_raw_expect_eof(fd, 10000, "after garbage");
    assert_daemon_serves();
    await_no_sessions();
    h_stop_ok();
}

Test(badinput, request_before_hello)
{
    bad_frame(false, PT_PING, NULL, 0, DBPOOL_E_PROTOCOL, "PING before HELLO");
}

Test(badinput, query_before_hello)
{
    struct pbuf b;
    pbuf_init(&b);
    proto_put_query(&b, "SELECT 1", 8, NULL, 0);
    bad_bytes(false, b.data, b.len, DBPOOL_E_PROTOCOL, "QUERY before HELLO");
    pbuf_free(&b);
}

Test(badinput, truncated_frame_then_close)
{
    static const uint8_t part[] = { 0, 0, 0, 100, 'Q', 0, 0, 0, 50, 'S', 'E', 'L' };
    h_start(NULL);
    for (int handshake = 0; handshake <= 1; handshake++) {
        int fd = h_raw_connect();
        if (handshake)
            h_raw_handshake(fd);
        cr_assert(h_raw_send(fd, part, sizeof(part)));
        close(fd);
        fd = h_raw_connect();             /* a header cut in the middle */
        if (handshake)
            h_raw_handshake(fd);
        cr_assert(h_raw_send(fd, part, 3));
        close(fd);
    }
    assert_daemon_serves();
    await_no_sessions();
    h_stop_ok();
}

Test(badinput, zero_length_frame)
{
    /* length 0 (no type byte), then a PING the daemon must never run */
    static const uint8_t zero[] = { 0, 0, 0, 0, 0, 0, 0, 1, PT_PING };
    bad_bytes(true, zero, sizeof(zero), DBPOOL_E_PROTOCOL, "frame length 0");
}

Test(badinput, oversized_length)
{
    static const uint8_t huge[] = { 0x7f, 0xff, 0xff, 0xff, 'Q', 0, 0, 0, 8 };
    bad_bytes(true, huge, sizeof(huge), DBPOOL_E_LIMIT, "length 0x7fffffff");
}

/* The header alone decides: no fifth byte is needed to refuse a bad length
 * (a client that sends only the 4 bytes must not be left waiting). */
Test(badinput, zero_length_header_alone)
{
    static const uint8_t zero[] = { 0, 0, 0, 0 };
    bad_bytes(true, zero, sizeof(zero), DBPOOL_E_PROTOCOL, "a lone 4-byte header of length 0");
}

Test(badinput, oversized_length_header_alone)
{
    static const uint8_t huge[] = { 0x7f, 0xff, 0xff, 0xff };
    bad_bytes(true, huge, sizeof(huge), DBPOOL_E_LIMIT, "a lone 4-byte header of length 0x7fffffff");
}

Test(badinput, zero_length_header_alone_before_hello)
{
    static const uint8_t zero[] = { 0, 0, 0, 0 };
    bad_bytes(false, zero, sizeof(zero), DBPOOL_E_PROTOCOL, "length 0 before HELLO");
}

Test(badinput, unknown_frame_type)
{
    bad_frame(true, 'Y', "xyz", 3, DBPOOL_E_PROTOCOL, "frame type 'Y'");
}

Test(badinput, daemon_frame_type_from_client)
{
    static const uint8_t ready = 'I';
    bad_frame(true, PT_READY, &ready, 1, DBPOOL_E_PROTOCOL, "READY sent by a client");
}

Test(badinput, query_claims_more_params_than_sent)
{
    /* str "SELECT 1", u16 nparams = 1000, no values */
    static const uint8_t q[] = { 0, 0, 0, 8, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '1', 0x03, 0xe8 };
    bad_frame(true, PT_QUERY, q, sizeof(q), DBPOOL_E_PROTOCOL, "QUERY nparams 1000, no values");
}

Test(badinput, query_with_trailing_bytes)
{
    static const uint8_t q[] = { 0, 0, 0, 8, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '1', 0, 0,
                                 0xde, 0xad };
    bad_frame(true, PT_QUERY, q, sizeof(q), DBPOOL_E_PROTOCOL, "QUERY with trailing bytes");
}

Test(badinput, query_with_bad_value_tag)
{
    static const uint8_t q[] = { 0, 0, 0, 8, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '?', 0, 1, 9 };
    bad_frame(true, PT_QUERY, q, sizeof(q), DBPOOL_E_PROTOCOL, "value tag 9");
}

Test(badinput, query_with_bad_bool_byte)
{
    static const uint8_t q[] = { 0, 0, 0, 8, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '?', 0, 1,
                                 DBPOOL_BOOL, 2 };
    bad_frame(true, PT_QUERY, q, sizeof(q), DBPOOL_E_PROTOCOL, "BOOL byte 2");
}

Test(badinput, text_length_beyond_frame)
{
    static const uint8_t q[] = { 0xff, 0xff, 0xff, 0xf0, 'S', 'E', 'L', 0, 0 };
    bad_frame(true, PT_QUERY, q, sizeof(q), DBPOOL_E_PROTOCOL, "sql length beyond the frame");
}

Test(badinput, begin_with_reserved_flag_bits)
{
    static const uint8_t flags = 0x80;
    bad_frame(true, PT_BEGIN, &flags, 1, DBPOOL_E_PROTOCOL, "BEGIN flags 0x80 (reserved bits)");
}

Test(badinput, batch_with_reserved_flag_bits)
{
    /* flags 0x82, one statement "SELECT 1" without params */
    static const uint8_t q[] = { 0x82, 0, 1, 0, 0, 0, 8, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '1',
                                 0, 0 };
    bad_frame(true, PT_BATCH, q, sizeof(q), DBPOOL_E_PROTOCOL, "BATCH flags 0x82 (reserved bits)");
}

Test(badinput, ping_with_payload)
{
    bad_frame(true, PT_PING, "x", 1, DBPOOL_E_PROTOCOL, "PING with a payload");
}

Test(badinput, terminate_with_payload)
{
    bad_frame(true, PT_TERMINATE, "x", 1, DBPOOL_E_PROTOCOL, "TERMINATE with a payload");
}

Test(badinput, cancel_with_payload)
{
    bad_frame(true, PT_CANCEL, "x", 1, DBPOOL_E_PROTOCOL, "CANCEL with a payload");
}

Test(badinput, batch_without_statements)
{
    static const uint8_t q[] = { 0, 0, 0 };          /* flags 0, nstmts 0 */
    bad_frame(true, PT_BATCH, q, sizeof(q), DBPOOL_E_PROTOCOL, "BATCH with 0 statements");
}

Test(badinput, commit_with_payload)
{
    bad_frame(true, PT_COMMIT, "x", 1, DBPOOL_E_PROTOCOL, "COMMIT with a payload");
}

Test(badinput, unsupported_version)
{
    struct pbuf b;
    pbuf_init(&b);
    proto_put_hello(&b, 2, H_POOL, "future");
    bad_bytes(false, b.data, b.len, DBPOOL_E_VERSION, "HELLO version 2");
    pbuf_free(&b);
}

Test(badinput, malformed_hello)
{
    static const uint8_t h[] = { 0, 1, 0, 0, 0, 200, 'a', 'p', 'p' };
    bad_frame(false, PT_HELLO, h, sizeof(h), DBPOOL_E_PROTOCOL, "HELLO with a cut pool name");
}

Test(badinput, second_hello)
{
    struct pbuf b;
    pbuf_init(&b);
    proto_put_hello(&b, PROTO_VERSION, H_POOL, "again");
    bad_bytes(true, b.data, b.len, DBPOOL_E_PROTOCOL, "second HELLO");
    pbuf_free(&b);
}

Test(badinput, rapid_connect_disconnect)
{
    h_start(NULL);
    for (int i = 0; i < 200; i++) {
        int fd = h_raw_connect();
        switch (i % 3) {
        case 0:                            /* connect, close */
            break;
        case 1:                            /* HELLO, close without reading */
            h_raw_send_hello(fd, PROTO_VERSION, H_POOL);
            break;
        default: {                         /* full session through the library */
            close(fd);
            fd = -1;
            dbpool_conn *c = h_connect();
            dbpool_close(c);
        }
        }
        if (fd >= 0)
            close(fd);
    }
    assert_daemon_serves();
    await_no_sessions();
    char *body = NULL;
    cr_assert_eq(h_http_get("/health", &body), 200, "/health: %s", body);
    free(body);
    h_stop_ok();
}

/* ================================================================ utf8 */
/* SQL, TEXT parameters and HELLO names are UTF-8 (doc/protocol.md). A
 * request carrying invalid UTF-8 is refused before any of it runs: ERROR SQL
 * with SQLSTATE 22021, stmt_index naming the offending statement, txstate
 * unchanged, and the session goes on. TEXT the database returns is passed
 * through unchanged. */

TestSuite(utf8, .fini = h_fini, .timeout = 60);

/* The next frame is an ERROR with these fields; returns nothing, asserts. */
static void expect_error_frame(int fd, int code, const char *sqlstate, char txstate,
                               int32_t index, const char *what)
{
    struct h_frame f;
    struct proto_error e;
    cr_assert_eq(h_raw_read_frame(fd, 10000, &f), 1, "%s: no answer", what);
    cr_assert_eq(f.type, PT_ERROR, "%s: frame '%c', expected ERROR", what, f.type);
    cr_assert(proto_get_error(f.payload, f.len, &e), "%s: malformed ERROR", what);
    cr_assert_eq(e.code, code, "%s: %s: %.*s", what, dbpool_code_name(e.code),
                 (int)e.message.len, e.message.p);
    cr_assert(e.sqlstate.len == strlen(sqlstate) && memcmp(e.sqlstate.p, sqlstate, e.sqlstate.len) == 0,
              "%s: SQLSTATE %.*s, expected %s", what, (int)e.sqlstate.len, e.sqlstate.p, sqlstate);
    cr_assert_eq(e.txstate, txstate, "%s: txstate '%c', expected '%c'", what, e.txstate, txstate);
    cr_assert_eq(e.stmt_index, index, "%s: stmt_index %d, expected %d", what, e.stmt_index, index);
    h_frame_free(&f);
}

static const char *const bad_utf8[] = {
    "\xff",                   /* never valid */
    "\x80",                   /* lone continuation byte */
    "\xc0\x80",               /* overlong NUL */
    "\xe0\x80\xaf",           /* overlong '/' */
    "\xed\xa0\x80",           /* UTF-16 surrogate U+D800 */
    "\xf4\x90\x80\x80",       /* above U+10FFFF */
    "\xf8\x88\x80\x80\x80",   /* 5-byte form */
    "\xe2\x82",               /* truncated at the end of the string */
};
#define N_BAD_UTF8 (sizeof(bad_utf8) / sizeof(bad_utf8[0]))

Test(utf8, invalid_sql_refused_session_continues)
{
    h_start(NULL);
    int fd = h_raw_connect();
    h_raw_handshake(fd);
    for (size_t i = 0; i < N_BAD_UTF8; i++) {
        char sql[64];
        snprintf(sql, sizeof(sql), "SELECT 1 --%s", bad_utf8[i]);
        send_query(fd, sql, NULL, 0);
        expect_error_frame(fd, DBPOOL_E_SQL, "22021", 'I', -1, sql);
    }
    send_query(fd, "SELECT 7 AS \"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", NULL, 0);
    cr_assert_eq(read_int_result(fd, 'I', "valid multi-byte UTF-8"), 7);
    close(fd);
    h_stop_ok();
}

Test(utf8, invalid_text_parameter_refused_blob_accepted)
{
    h_start(NULL);
    dbpool_conn *c = h_connect();
    for (size_t i = 0; i < N_BAD_UTF8; i++) {
        dbpool_value v = dbpool_text(bad_utf8[i]);
        int rc = dbpool_query(c, h_sql("SELECT ?"), &v, 1, NULL);
        cr_assert_eq(rc, -1, "TEXT parameter %zu with invalid UTF-8 was accepted", i);
        cr_assert_eq(dbpool_last_error(c)->code, DBPOOL_E_SQL, "%s",
                     dbpool_code_name(dbpool_last_error(c)->code));
        cr_assert_str_eq(dbpool_last_error(c)->sqlstate, "22021");
        cr_assert(strstr(dbpool_last_error(c)->message, "UTF8"), "message: %s",
                  dbpool_last_error(c)->message);
        assert_txstate(c, 'I', "after the refused parameter");
    }
    dbpool_value ok = dbpool_text("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    dbpool_result *r = h_query(c, "SELECT ?", &ok, 1);
    cr_assert_eq(dbpool_result_value(r, 0, 0)->type, DBPOOL_TEXT);
    cr_assert_eq(dbpool_result_value(r, 0, 0)->u.s.len, 9);
    cr_assert_eq(memcmp(dbpool_result_value(r, 0, 0)->u.s.ptr, ok.u.s.ptr, 9), 0);
    dbpool_result_free(r);
    dbpool_value blob = dbpool_blob("\xff\xfe", 2);
    r = h_query(c, "SELECT ?", &blob, 1);
    cr_assert_eq(dbpool_result_value(r, 0, 0)->u.s.len, 2, "a BLOB with non-UTF-8 bytes failed");
    dbpool_result_free(r);
    dbpool_close(c);
    h_stop_ok();
}

/* The whole batch is refused before any statement runs; stmt_index names the
 * offending statement (atomic or not). */
Test(utf8, batch_names_offending_statement_nothing_runs)
{
    dbpool_conn *c = start_with_table(NULL);
    int fd = h_raw_connect();
    h_raw_handshake(fd);
    for (int atomic = 0; atomic <= 1; atomic++) {
        dbpool_value bad = dbpool_text("a\xff");
        dbpool_stmt s[3] = { { h_sql("INSERT INTO t VALUES (1)"), NULL, 0 },
                             { h_sql("SELECT ?"), &bad, 1 },
                             { h_sql("INSERT INTO t VALUES (3)"), NULL, 0 } };
        struct pbuf b;
        pbuf_init(&b);
        proto_put_batch(&b, atomic ? PB_ATOMIC : 0, s, 3);
        cr_assert(!b.oom && h_raw_send(fd, b.data, b.len));
        pbuf_free(&b);
        expect_error_frame(fd, DBPOOL_E_SQL, "22021", 'I', 1, atomic ? "atomic batch" : "batch");
    }
    cr_assert_eq(count_rows(c, "t"), 0, "a statement of the refused batch ran");
    send_query(fd, "SELECT 4", NULL, 0);
    cr_assert_eq(read_int_result(fd, 'I', "after the refused batches"), 4);
    close(fd);
    dbpool_close(c);
    h_stop_ok();
}

Test(utf8, inside_transaction_the_transaction_stays_open)
{
    dbpool_conn *c = start_with_table(NULL);
    must_ok(c, dbpool_begin(c, 0), "begin");
    insert_int(c, "t", 1);
    int rc = dbpool_exec(c, "SELECT 1 -- \xff");
    cr_assert_eq(rc, -1, "invalid UTF-8 SQL ran");
    cr_assert_str_eq(dbpool_last_error(c)->sqlstate, "22021", "%s", dbpool_last_error(c)->message);
    assert_txstate(c, 'T', "after the refused statement");
    insert_int(c, "t", 2);
    must_ok(c, dbpool_commit(c), "commit");
    cr_assert_str_eq(table_ints(c, "t"), "1,2");
    dbpool_close(c);
    h_stop_ok();
}

Test(utf8, hello_with_invalid_client_name_is_protocol_error)
{
    struct pbuf b;
    pbuf_init(&b);
    proto_put_hello(&b, PROTO_VERSION, H_POOL, "app\xff");
    bad_bytes(false, b.data, b.len, DBPOOL_E_PROTOCOL, "HELLO with a non-UTF-8 client name");
    pbuf_free(&b);
}

/* The decision for TEXT coming from the database: passed through unchanged.
 * SQLite stores any bytes as TEXT; PostgreSQL refuses to make such a value. */
Test(utf8, stored_invalid_text_passed_through_unchanged)
{
    h_start(NULL);
    dbpool_conn *c = h_connect();
    if (strcmp(P->name, "sqlite") == 0) {
        dbpool_result *r = h_query(c, "SELECT CAST(x'ff41' AS TEXT)", NULL, 0);
        const dbpool_value *v = dbpool_result_value(r, 0, 0);
        cr_assert_eq(v->type, DBPOOL_TEXT);
        cr_assert(v->u.s.len == 2 && memcmp(v->u.s.ptr, "\xff" "A", 2) == 0,
                  "the stored bytes were changed");
        dbpool_result_free(r);
    } else if (strcmp(P->name, "postgres") == 0) {
        int rc = dbpool_exec(c, "SELECT convert_from('\\xff'::bytea, 'UTF8')");
        cr_assert_eq(rc, -1);
        cr_assert_str_eq(dbpool_last_error(c)->sqlstate, "22021");
    }
    cr_assert_eq(h_scalar(c, "SELECT 1"), 1);
    dbpool_close(c);
    h_stop_ok();
}

/* ================================================================ outputfault */
/* No frame is dropped silently: when the daemon cannot queue a frame (out of
 * memory), the session ends with ERROR INTERNAL and a close, and its server
 * is rolled back and released. Out of memory is simulated by the daemon's
 * fault-injection hook, compiled only into test builds:
 *   bash scripts/build.sh build-fi --enable-sanitizers CPPFLAGS=-DDBPOOLD_FAULT_INJECTION
 *   DBPOOL_TEST_FAULT_INJECTION=1 DBPOOLD_BIN=$PWD/build-fi/dbpoold \
 *     build-fi/tests/integration/test_daemon --filter 'outputfault/?*'
 * Without DBPOOL_TEST_FAULT_INJECTION=1 these tests are skipped. */

TestSuite(outputfault, .fini = h_fini, .timeout = 60);

static void fault_setup(const char *fail_frame)
{
    const char *on = getenv("DBPOOL_TEST_FAULT_INJECTION");
    if (!on || strcmp(on, "1") != 0)
        cr_skip_test("needs a daemon built with -DDBPOOLD_FAULT_INJECTION "
                     "(DBPOOL_TEST_FAULT_INJECTION=1)");
    cr_assert_eq(setenv("DBPOOLD_FAIL_FRAME", fail_frame, 1), 0);
    dbpool_conn *c = start_with_table(&single_conn);
    dbpool_close(c);
}

/* A session the hook applies to; HELLO_OK read unless it is the one to fail. */
static int fault_session(bool read_hello_ok)
{
    int fd = h_raw_connect();
    struct pbuf b;
    pbuf_init(&b);
    proto_put_hello(&b, PROTO_VERSION, H_POOL, "fault-injection");
    cr_assert(!b.oom && h_raw_send(fd, b.data, b.len));
    pbuf_free(&b);
    if (read_hello_ok) {
        struct h_frame f;
        cr_assert_eq(h_raw_read_frame(fd, 10000, &f), 1);
        cr_assert_eq(f.type, PT_HELLO_OK);
        h_frame_free(&f);
    }
    return fd;
}

/* Frames of the expected types, then ERROR INTERNAL, then EOF. */
static void expect_frames_then_internal(int fd, const char *types, const char *what)
{
    for (const char *t = types; *t; t++) {
        struct h_frame f;
        cr_assert_eq(h_raw_read_frame(fd, 10000, &f), 1, "%s: no '%c' frame", what, *t);
        cr_assert_eq(f.type, (uint8_t)*t, "%s: frame '%c', expected '%c'", what, f.type, *t);
        h_frame_free(&f);
    }
    h_raw_expect_error_then_eof(fd, DBPOOL_E_INTERNAL, what);
}

static void fault_end(void)
{
    assert_rolled_back_and_writable();
    await_no_sessions();
    h_stop_ok();
}

/* Inside a transaction with three rows inserted: a SELECT of them. */
static int fault_session_in_tx(void)
{
    int fd = fault_session(true);
    send_frame(fd, PT_BEGIN, "\0", 1);
    expect_ready(fd, 'T', "BEGIN");
    send_query(fd, "INSERT INTO t VALUES (1)", NULL, 0);
    expect_ready(fd, 'T', "INSERT");
    return fd;
}

Test(outputfault, lost_row_mid_result)
{
    fault_setup("r:2");
    int fd = fault_session_in_tx();
    send_query(fd, "INSERT INTO t VALUES (2)", NULL, 0);
    expect_ready(fd, 'T', "INSERT 2");
    send_query(fd, "SELECT a FROM t ORDER BY a", NULL, 0);
    expect_frames_then_internal(fd, "dr", "the second ROW lost");
    fault_end();
}

Test(outputfault, lost_columns)
{
    fault_setup("d:1");
    int fd = fault_session_in_tx();
    send_query(fd, "SELECT a FROM t", NULL, 0);
    expect_frames_then_internal(fd, "", "COLUMNS lost");
    fault_end();
}

Test(outputfault, lost_stmt_done)
{
    fault_setup("s:2");
    int fd = fault_session_in_tx();
    send_query(fd, "INSERT INTO t VALUES (2)", NULL, 0);
    expect_frames_then_internal(fd, "", "STMT_DONE lost");
    fault_end();
}

Test(outputfault, lost_ready_inside_transaction)
{
    fault_setup("z:3");
    int fd = fault_session_in_tx();   /* READY 1 and 2 */
    send_query(fd, "INSERT INTO t VALUES (2)", NULL, 0);
    expect_frames_then_internal(fd, "s", "READY of a statement lost");
    fault_end();
}

Test(outputfault, lost_error)
{
    fault_setup("e:1");
    int fd = fault_session_in_tx();
    send_query(fd, "SELECT * FROM no_such_table", NULL, 0);
    expect_frames_then_internal(fd, "", "ERROR of a statement lost");
    fault_end();
}

Test(outputfault, lost_ready_of_an_immediate_answer)
{
    fault_setup("z:1");
    int fd = fault_session(true);
    send_frame(fd, PT_PING, NULL, 0);
    expect_frames_then_internal(fd, "", "READY of a PING lost");
    fault_end();
}

Test(outputfault, lost_hello_ok)
{
    fault_setup("h:1");
    int fd = fault_session(false);
    expect_frames_then_internal(fd, "", "HELLO_OK lost");
    fault_end();
}

/* A deadline that cannot be armed (out of memory, simulated by the same
 * build's DBPOOLD_FAIL_TIMER=NAME:N: the Nth arming of that timer fails)
 * ends the session with ERROR INTERNAL, its transaction rolled back, instead
 * of letting it run without the deadline. */
static void assert_timer_failure_logged(const char *timer)
{
    char want[64], *log = h_read_log();
    snprintf(want, sizeof(want), "timer=%s", timer);
    bool found = false;
    for (char *line = strtok(log, "\n"); line && !found; line = strtok(NULL, "\n"))
        found = strstr(line, "event=client_timer_failed") && strstr(line, want);
    free(log);
    cr_assert(found, "no client_timer_failed event for the %s timer in the log", timer);
}

static void timer_fault_setup(const char *fail_timer, const struct h_opts *o)
{
    const char *on = getenv("DBPOOL_TEST_FAULT_INJECTION");
    if (!on || strcmp(on, "1") != 0)
        cr_skip_test("needs a daemon built with -DDBPOOLD_FAULT_INJECTION "
                     "(DBPOOL_TEST_FAULT_INJECTION=1)");
    cr_assert_eq(setenv("DBPOOLD_FAIL_TIMER", fail_timer, 1), 0);
    dbpool_conn *c = start_with_table(o);
    dbpool_close(c);
}

Test(outputfault, statement_timer_not_armed)
{
    static const struct h_opts o = { .max_open_conns = 1,
                                     .pool_settings = "statementTimeout = \"30s\";" };
    timer_fault_setup("statement:2", &o);
    int fd = fault_session_in_tx();   /* its INSERT armed the first */
    send_query(fd, "INSERT INTO t VALUES (2)", NULL, 0);
    expect_frames_then_internal(fd, "", "statementTimeout could not be armed");
    assert_timer_failure_logged("statement");
    fault_end();
}

Test(outputfault, frame_timer_not_armed)
{
    timer_fault_setup("frame:1", &single_conn);
    int fd = fault_session(true);
    /* The start of a QUERY frame: frameTimeout must run from here. */
    static const uint8_t part[] = { 0, 0, 0, 100, PT_QUERY, 0 };
    cr_assert(h_raw_send(fd, part, sizeof(part)));
    h_raw_expect_error_then_eof(fd, DBPOOL_E_INTERNAL, "frameTimeout could not be armed");
    assert_timer_failure_logged("frame");
    await_no_sessions();
    h_stop_ok();
}

Test(outputfault, idle_transaction_timer_not_armed)
{
    static const struct h_opts o = { .max_open_conns = 1,
                                     .daemon_settings = "idleTransactionTimeout = \"30s\";" };
    timer_fault_setup("idle:1", &o);
    int fd = fault_session(true);   /* no clientIdleTimeout: nothing armed yet */
    send_frame(fd, PT_BEGIN, "\0", 1);
    send_query(fd, "INSERT INTO t VALUES (1)", NULL, 0);   /* must not run */
    expect_frames_then_internal(fd, "z", "idleTransactionTimeout could not be armed");
    assert_timer_failure_logged("idle");
    fault_end();
}

/* ================================================================ status */

TestSuite(status, .fini = h_fini, .timeout = 60);

Test(status, health_ok)
{
    char *body = NULL, st[32];
    h_start(NULL);
    cr_assert_eq(h_http_get("/health", &body), 200, "/health: %s", body);
    cr_assert(H_JSON_STR(body, st, "status"), "no status in %s", body);
    cr_assert_str_eq(st, "ok");
    cr_assert(H_JSON_STR(body, st, "pools", "name") && strcmp(st, H_POOL) == 0, "%s", body);
    cr_assert_eq(H_JSON_NUM(body, "pools", "healthy"), 1, "%s", body);
    free(body);
    h_stop_ok();
}

Test(status, pools_reports_pool_and_counts_statements)
{
    char *body = NULL, s[64];
    h_start(NULL);
    cr_assert_eq(h_http_get("/pools", &body), 200);
    cr_assert(H_JSON_STR(body, s, "name") && strcmp(s, H_POOL) == 0, "name: %s", body);
    cr_assert(H_JSON_STR(body, s, "type") && strcmp(s, P->name) == 0, "type: %s", body);
    cr_assert_eq(H_JSON_NUM(body, "servers", "max"), 4, "servers.max: %s", body);
    cr_assert(strstr(body, h_paths()->db) == NULL, "the database path leaks into /pools");
    free(body);

    await_no_sessions();                 /* the harness's start-up probe is gone */
    double stmts = pool_num("totals", "statements");
    double errs = pool_num("totals", "errors");
    dbpool_conn *c = h_connect();
    cr_assert_eq(pool_num("clients", "connected"), 1);
    h_exec(c, "SELECT 1");
    h_exec(c, "SELECT 2");
    h_exec(c, "SELECT 3");
    cr_assert_eq(dbpool_exec(c, "SELEKT oops"), -1);
    cr_assert(H_AWAIT(pool_num("totals", "statements") >= stmts + 3, 5000),
              "totals.statements went from %g to %g after 3 statements", stmts,
              pool_num("totals", "statements"));
    cr_assert(H_AWAIT(pool_num("totals", "errors") >= errs + 1, 5000),
              "totals.errors did not count the failed statement");
    dbpool_close(c);
    await_no_sessions();
    h_stop_ok();
}

static double metric(const char *body, const char *series);

/* GET /clients: every session with its state, pool and transaction; the
 * per-state counts are the lengths of the daemon's state lists, so they
 * follow the sessions through idle, a transaction, a wait and the close. */
Test(status, clients_shows_each_session_in_its_state)
{
    char *body = NULL;
    dbpool_conn *setup = start_with_table(&single_conn);
    dbpool_close(setup);
    await_no_sessions();
    dbpool_conn *idle = h_connect();
    dbpool_conn *tx = h_connect();
    must_ok(tx, dbpool_begin(tx, 0), "begin");
    insert_int(tx, "t", 1);
    int fd = h_raw_connect();   /* a third session waits for the one writer */
    h_raw_send_hello(fd, PROTO_VERSION, H_POOL);
    struct h_frame f;
    cr_assert_eq(h_raw_read_frame(fd, 10000, &f), 1);
    cr_assert_eq(f.type, PT_HELLO_OK);
    h_frame_free(&f);
    send_query(fd, "INSERT INTO t VALUES (3)", NULL, 0);
    cr_assert(H_AWAIT(H_STATUS_NUM("/clients", "states", "waiting") == 1, 5000),
              "the third session is not counted as waiting");

    cr_assert_eq(h_http_get("/clients", &body), 200, "%s", body);
    cr_assert_eq(H_JSON_NUM(body, "states", "idle"), 1, "%s", body);
    cr_assert_eq(H_JSON_NUM(body, "states", "idle_in_transaction"), 1, "%s", body);
    cr_assert_eq(H_JSON_NUM(body, "states", "active"), 0, "%s", body);
    cr_assert_eq(H_JSON_NUM(body, "states", "handshake"), 0, "%s", body);
    cr_assert(strstr(body, "\"state\": \"idle_in_transaction\", \"pool\": \"" H_POOL "\""),
              "%s", body);
    cr_assert(strstr(body, "\"tx\": \"T\", \"server\": "), "the transaction's server: %s", body);
    cr_assert_null(strstr(body, "\"tx\": \"T\", \"server\": null"), "%s", body);
    const char *w = strstr(body, "\"state\": \"waiting\"");
    cr_assert(w, "%s", body);
    const char *w_end = strchr(w, '}'), *w_ms = strstr(w, "\"waiting_ms\": ");
    cr_assert(w_end && w_ms && w_ms < w_end && strncmp(w_ms + 14, "null", 4) != 0,
              "a waiting session has no wait time: %s", body);
    cr_assert_eq(H_JSON_NUM(body, "states", "waiting"), 1, "%s", body);
    free(body);
    body = NULL;
    cr_assert_eq(h_http_get("/metrics", &body), 200);
    cr_assert_eq(metric(body, "dbpoold_clients{state=\"idle_in_transaction\"}"), 1, "%s", body);
    cr_assert_eq(metric(body, "dbpoold_clients{state=\"waiting\"}"), 1, "%s", body);
    free(body);
    body = NULL;

    must_ok(tx, dbpool_commit(tx), "commit");   /* the waiting INSERT gets the server */
    expect_ready(fd, 'I', "the waiting INSERT");
    cr_assert(H_AWAIT(H_STATUS_NUM("/clients", "states", "idle") == 3, 5000),
              "all three sessions are not idle after the commit");
    close(fd);
    dbpool_close(idle);
    dbpool_close(tx);
    await_no_sessions();
    cr_assert_eq(h_http_get("/clients", &body), 200);
    cr_assert(strstr(body, "\"clients\": []"), "sessions left: %s", body);
    free(body);
    h_stop_ok();
}

static double metric(const char *body, const char *series)
{
    const char *p = body;
    size_t n = strlen(series);
    while ((p = strstr(p, series)) != NULL) {
        if ((p == body || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p += n;
    }
    return NAN;
}

Test(status, metrics_exposition)
{
    static const char series[] = "dbpoold_pool_statements_total{pool=\"" H_POOL "\"}";
    char *body = NULL;
    h_start(NULL);
    cr_assert_eq(h_http_get("/metrics", &body), 200);
    double before = metric(body, series);
    cr_assert(!isnan(before), "no %s in:\n%s", series, body);
    cr_assert(strstr(body, "# TYPE dbpoold_pool_statements_total counter"), "no TYPE line");
    cr_assert(!isnan(metric(body, "dbpoold_clients_connected")), "no dbpoold_clients_connected");
    free(body);

    dbpool_conn *c = h_connect();
    h_exec(c, "SELECT 1");
    dbpool_close(c);
    cr_assert_eq(h_http_get("/metrics", &body), 200);
    cr_assert_geq(metric(body, series), before + 1, "the counter did not move");
    free(body);
    h_stop_ok();
}

Test(status, stats_document)
{
    h_start(NULL);
    cr_assert_eq(H_STATUS_NUM("/stats", "pools"), 1);
    cr_assert_eq(H_STATUS_NUM("/stats", "shutting_down"), 0);
    await_no_sessions();
    dbpool_conn *c = h_connect();
    cr_assert_eq(H_STATUS_NUM("/stats", "clients", "connected"), 1);
    cr_assert_geq(H_STATUS_NUM("/stats", "clients", "total_accepted"), 1);
    dbpool_close(c);
    h_stop_ok();
}

Test(status, unknown_path_and_wrong_method)
{
    char *body = NULL;
    h_start(NULL);
    cr_assert_eq(h_http_get("/nope", &body), 404, "GET /nope: %s", body);
    cr_assert(strstr(body, "\"error\""), "404 body without an error: %s", body);
    free(body);
    cr_assert_eq(h_http("POST", "/pools", &body), 405, "POST /pools: %s", body);
    free(body);
    cr_assert_eq(h_http_get("/pools?x=1", &body), 200, "the query string is ignored");
    free(body);
    h_stop_ok();
}

/* ================================================================ shutdown */

TestSuite(shutdown, .fini = h_fini, .timeout = 60);

static const struct h_opts long_drain = { .shutdown_timeout = "60s" };

static void expect_shutdown_then_eof(int fd, int timeout_ms, const char *what);

static bool health_says_shutting_down(void)
{
    char *body = NULL, st[32] = "";
    int code = h_http_get("/health", &body);
    bool yes = code == 503 && H_JSON_STR(body, st, "status") && strcmp(st, "shutting_down") == 0;
    free(body);
    return yes;
}

/* A new session must fail now: refused, or closed at once. */
static void assert_new_session_refused(void)
{
    int fd = h_raw_try_connect(h_paths()->sock);
    if (fd < 0) {
        cr_assert(errno == ENOENT || errno == ECONNREFUSED, "connect: %s", strerror(errno));
        return;
    }
    h_raw_send_hello(fd, PROTO_VERSION, H_POOL);
    struct h_frame f;
    int r = h_raw_read_frame(fd, 2000, &f);
    if (r == 1 && f.type == PT_HELLO_OK)
        cr_assert_fail("a new session was accepted while shutting down");
    cr_assert_neq(r, -1, "a new connection during shutdown was neither refused nor answered "
                  "within 2 s (accepted into the listen backlog and left hanging?)");
    if (r == 1)
        h_frame_free(&f);
    close(fd);
}

Test(shutdown, drains_open_transaction_then_exits)
{
    dbpool_conn *a = start_with_table(&long_drain);
    must_ok(a, dbpool_begin(a, 0), "begin");
    insert_int(a, "t", 1);

    h_signal(SIGTERM);
    cr_assert(H_AWAIT(health_says_shutting_down(), 5000), "/health never said shutting_down");
    assert_new_session_refused();

    insert_int(a, "t", 2);                /* the transaction goes on */
    must_ok(a, dbpool_commit(a), "commit during the drain");
    assert_txstate(a, 'I', "after the commit");

    int st = h_wait_exit(10000);
    cr_assert_neq(st, -1, "dbpoold did not exit after the last transaction ended "
                  "(shutdownTimeout is 60 s)");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
    cr_assert_neq(access(h_paths()->sock, F_OK), 0, "the client socket file is left behind");
    cr_assert_neq(access(h_paths()->status_sock, F_OK), 0, "the status socket file is left");
    h_assert_log_clean();
    cr_assert_neq(dbpool_ping(a), 0, "the session survived the daemon");
    dbpool_close(a);

    h_restart();
    dbpool_conn *b = h_connect();
    cr_assert_str_eq(table_ints(b, "t"), "1,2", "the drained transaction was not committed");
    dbpool_close(b);
    h_stop_ok();
}

Test(shutdown, idle_sessions_closed_promptly)
{
    h_start(&long_drain);
    dbpool_conn *a = h_connect();
    int fd = h_raw_connect();
    h_raw_handshake(fd);

    h_signal(SIGTERM);
    expect_shutdown_then_eof(fd, 5000, "an idle session after SIGTERM");
    int st = h_wait_exit(5000);
    cr_assert_neq(st, -1, "dbpoold did not exit promptly with only idle sessions");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
    cr_assert_neq(dbpool_ping(a), 0, "the idle session was not closed");
    dbpool_close(a);
    h_assert_log_clean();
}

Test(shutdown, timeout_cuts_stuck_transaction)
{
    struct h_opts o = { .shutdown_timeout = "500ms" };
    dbpool_conn *a = start_with_table(&o);
    must_ok(a, dbpool_begin(a, 0), "begin");
    insert_int(a, "t", 1);

    uint64_t t0 = h_now_ms();
    h_signal(SIGTERM);
    int st = h_wait_exit(10000);
    cr_assert_neq(st, -1, "dbpoold did not exit after shutdownTimeout");
    cr_assert(WIFEXITED(st), "dbpoold died of signal %d", WTERMSIG(st));
    cr_assert_geq(h_now_ms() - t0, 400, "it did not wait for the open transaction");
    dbpool_close(a);
    h_assert_log_clean();

    h_restart();
    dbpool_conn *b = h_connect();
    cr_assert_eq(count_rows(b, "t"), 0, "the cut transaction was committed");
    dbpool_close(b);
    h_stop_ok();
}

/* Every request the daemon will not run during the drain is answered with
 * ERROR SHUTDOWN before the close (not a bare EOF or a reset). */
static void expect_shutdown_then_eof(int fd, int timeout_ms, const char *what)
{
    struct h_frame f;
    struct proto_error e;
    int r = h_raw_read_frame(fd, timeout_ms, &f);
    cr_assert_eq(r, 1, "%s: expected ERROR SHUTDOWN within %d ms, got %s", what, timeout_ms,
                 r == 0 ? "EOF" : strerror(errno));
    cr_assert_eq(f.type, PT_ERROR, "%s: frame '%c', expected ERROR SHUTDOWN", what, f.type);
    cr_assert(proto_get_error(f.payload, f.len, &e), "%s: malformed ERROR", what);
    cr_assert_eq(e.code, DBPOOL_E_SHUTDOWN, "%s: %s: %.*s", what, dbpool_code_name(e.code),
                 (int)e.message.len, e.message.p);
    cr_assert_eq(e.txstate, 'I', "%s: txstate '%c'", what, e.txstate);
    h_frame_free(&f);
    h_raw_expect_eof(fd, timeout_ms, what);
}

static void assert_exit_0(int timeout_ms, const char *what)
{
    int st = h_wait_exit(timeout_ms);
    cr_assert_neq(st, -1, "dbpoold did not exit within %d ms %s", timeout_ms, what);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
    h_assert_log_clean();
}

/* A request pipelined behind a running statement: the statement ends (here
 * by statementTimeout), then the pipelined request gets ERROR SHUTDOWN. */
Test(shutdown, request_pipelined_behind_running_statement_gets_shutdown)
{
    struct h_opts o = { .shutdown_timeout = "60s", .pool_settings = "statementTimeout = \"1500ms\";" };
    h_start(&o);
    int fd = h_raw_connect();
    h_raw_handshake(fd);
    struct pbuf b;
    pbuf_init(&b);
    const char *endless = h_sql(P->endless_sql);
    proto_put_query(&b, endless, strlen(endless), NULL, 0);
    proto_put_empty(&b, PT_PING);
    cr_assert(!b.oom && h_raw_send(fd, b.data, b.len));
    pbuf_free(&b);
    cr_assert(H_AWAIT(pool_num("clients", "active") == 1, 5000), "the statement never started");

    h_signal(SIGTERM);
    cr_assert(H_AWAIT(health_says_shutting_down(), 5000), "/health never said shutting_down");
    struct h_frame f;
    struct proto_error e;
    cr_assert_eq(h_raw_read_until_terminal(fd, 10000, &f), PT_ERROR);
    cr_assert(proto_get_error(f.payload, f.len, &e) && e.code == DBPOOL_E_CANCELED,
              "the running statement ended with %s", dbpool_code_name(e.code));
    h_frame_free(&f);
    expect_shutdown_then_eof(fd, 5000, "the PING pipelined behind it");
    assert_exit_0(10000, "after its last session ended");
}

/* A session that ends its transaction during the drain is closed; its next
 * request gets ERROR SHUTDOWN (sent with the close), and the transaction it
 * committed is kept. */
Test(shutdown, request_after_commit_during_drain_gets_shutdown)
{
    dbpool_conn *a = start_with_table(&long_drain);
    dbpool_close(a);
    int fd = h_raw_connect();
    h_raw_handshake(fd);
    send_frame(fd, PT_BEGIN, "\0", 1);
    expect_ready(fd, 'T', "BEGIN");
    send_query(fd, "INSERT INTO t VALUES (1)", NULL, 0);
    expect_ready(fd, 'T', "INSERT 1");

    h_signal(SIGTERM);
    cr_assert(H_AWAIT(health_says_shutting_down(), 5000), "/health never said shutting_down");
    send_query(fd, "INSERT INTO t VALUES (2)", NULL, 0);
    expect_ready(fd, 'T', "INSERT 2 during the drain");
    send_frame(fd, PT_COMMIT, NULL, 0);
    expect_ready(fd, 'I', "COMMIT during the drain");
    uint8_t ping[5] = { 0, 0, 0, 1, PT_PING };
    (void)h_raw_send(fd, ping, sizeof(ping));   /* may fail: the daemon may have closed already */
    expect_shutdown_then_eof(fd, 5000, "a PING after COMMIT during the drain");
    assert_exit_0(10000, "after its last session ended");

    h_restart();
    dbpool_conn *c = h_connect();
    cr_assert_str_eq(table_ints(c, "t"), "1,2", "the committed transaction was lost");
    dbpool_close(c);
    h_stop_ok();
}

/* A request waiting for a server when SIGTERM comes will not run: it gets
 * ERROR SHUTDOWN at once; the transaction holding the server may finish. */
Test(shutdown, request_waiting_for_a_server_gets_shutdown)
{
    struct h_opts o = { .max_open_conns = 1, .shutdown_timeout = "60s",
                        .pool_settings = "acquireTimeout = \"30s\";" };
    dbpool_conn *a = start_with_table(&o);
    must_ok(a, dbpool_begin(a, 0), "begin");
    insert_int(a, "t", 1);
    int fd = h_raw_connect();
    h_raw_handshake(fd);
    send_query(fd, "INSERT INTO t VALUES (5)", NULL, 0);
    cr_assert(H_AWAIT(pool_num("clients", "waiting") == 1, 5000), "the request never queued");

    h_signal(SIGTERM);
    expect_shutdown_then_eof(fd, 3000, "a request waiting for a server");
    insert_int(a, "t", 2);
    must_ok(a, dbpool_commit(a), "commit during the drain");
    assert_exit_0(10000, "after the last transaction ended");
    dbpool_close(a);

    h_restart();
    dbpool_conn *c = h_connect();
    cr_assert_str_eq(table_ints(c, "t"), "1,2", "the waiting request ran, or the commit was lost");
    dbpool_close(c);
    h_stop_ok();
}

/* Sessions cut by shutdownTimeout are told why before the close. */
Test(shutdown, session_cut_by_timeout_gets_shutdown)
{
    struct h_opts o = { .shutdown_timeout = "300ms" };
    dbpool_conn *a = start_with_table(&o);
    dbpool_close(a);
    int fd = h_raw_connect();
    h_raw_handshake(fd);
    send_frame(fd, PT_BEGIN, "\0", 1);
    expect_ready(fd, 'T', "BEGIN");
    send_query(fd, "INSERT INTO t VALUES (1)", NULL, 0);
    expect_ready(fd, 'T', "INSERT");

    h_signal(SIGTERM);
    expect_shutdown_then_eof(fd, 5000, "a transaction cut by shutdownTimeout");
    assert_exit_0(10000, "after shutdownTimeout");
}

static bool log_has(const char *needle)
{
    char *log = h_read_log();
    bool yes = strstr(log, needle) != NULL;
    free(log);
    return yes;
}

/* A statement still streaming when shutdownTimeout expires (its client had
 * stopped reading) is cut; the client, reading on, gets the rows already
 * queued, then ERROR SHUTDOWN, then EOF — never a bare EOF or a cut frame. */
Test(shutdown, streaming_cut_by_timeout_gets_shutdown_after_its_rows)
{
    struct h_opts o = { .shutdown_timeout = "300ms" };
    h_start(&o);
    int fd = h_raw_connect();
    h_raw_handshake(fd);
    char *pad = make_pad(100);
    dbpool_value p[2] = { dbpool_int(2000000), dbpool_text(pad) };
    send_query(fd, P->series_sql, p, 2);
    struct h_frame f;
    cr_assert_eq(h_raw_read_frame(fd, 10000, &f), 1, "the stream did not start");
    h_frame_free(&f);
    cr_assert(H_AWAIT(pool_num("clients", "active") == 1, 5000), "the statement never ran");

    h_signal(SIGTERM);
    cr_assert(H_AWAIT(log_has("event=shutdown_timeout"), 5000), "shutdownTimeout never expired");
    long rows = 0;
    int r;
    while ((r = h_raw_read_frame(fd, 5000, &f)) == 1 && f.type == PT_ROW) {
        rows++;
        h_frame_free(&f);
    }
    cr_assert_eq(r, 1, "after %ld rows: %s instead of ERROR SHUTDOWN", rows,
                 r == 0 ? "EOF" : strerror(errno));
    struct proto_error e;
    cr_assert(f.type == PT_ERROR && proto_get_error(f.payload, f.len, &e), "frame '%c'", f.type);
    cr_assert_eq(e.code, DBPOOL_E_SHUTDOWN, "%s", dbpool_code_name(e.code));
    h_frame_free(&f);
    h_raw_expect_eof(fd, 5000, "after ERROR SHUTDOWN");
    free(pad);
    assert_exit_0(10000, "after cutting the stream");
}

/* ================================================================ limits */

TestSuite(limits, .fini = h_fini, .timeout = 60);

static const struct h_opts small_limits = {
    .daemon_settings = "maxFrameSize = 65536; maxParams = 8; maxBatchStatements = 3;",
};

Test(limits, hello_ok_reports_limits)
{
    h_start(&small_limits);
    int fd = h_raw_connect();
    h_raw_send_hello(fd, PROTO_VERSION, H_POOL);
    struct h_frame f;
    struct proto_hello_ok ok;
    cr_assert_eq(h_raw_read_frame(fd, 10000, &f), 1);
    cr_assert_eq(f.type, PT_HELLO_OK);
    cr_assert(proto_get_hello_ok(f.payload, f.len, &ok), "malformed HELLO_OK");
    cr_assert_eq(ok.version, PROTO_VERSION);
    cr_assert(ok.backend.len == strlen(P->name) && memcmp(ok.backend.p, P->name, ok.backend.len) == 0);
    cr_assert_eq(ok.max_frame, 65536);
    cr_assert_eq(ok.max_params, 8);
    cr_assert_eq(ok.max_batch_statements, 3);
    h_frame_free(&f);
    close(fd);
    h_stop_ok();
}

static bool is_limit_code(int code)
{
    return code == DBPOOL_E_LIMIT || code == DBPOOL_E_USAGE || code == DBPOOL_E_PROTOCOL;
}

Test(limits, max_params)
{
    dbpool_value p[9];
    for (int i = 0; i < 9; i++)
        p[i] = dbpool_int(i + 1);
    h_start(&small_limits);
    dbpool_conn *c = h_connect();

    dbpool_result *r = h_query(c, "SELECT ?+?+?+?+?+?+?+?", p, 8);
    cr_assert_eq(dbpool_result_value(r, 0, 0)->u.i, 36, "maxParams parameters must work");
    dbpool_result_free(r);

    int rc = dbpool_query(c, h_sql("SELECT ?+?+?+?+?+?+?+?+?"), p, 9, NULL);
    cr_assert_eq(rc, -1, "a statement with more than maxParams parameters ran");
    cr_assert(is_limit_code(dbpool_last_error(c)->code), "error %s: %s",
              dbpool_code_name(dbpool_last_error(c)->code), dbpool_last_error(c)->message);
    dbpool_close(c);
    assert_daemon_serves();
    h_stop_ok();
}

/* A raw QUERY with 9 INT64 parameters (maxParams is 8). */
Test(limits, raw_frame_above_max_params_is_protocol_error)
{
    dbpool_value p[9];
    for (int i = 0; i < 9; i++)
        p[i] = dbpool_int(i);
    h_start(&small_limits);
    int fd = h_raw_connect();
    h_raw_handshake(fd);
    send_query(fd, "SELECT ?+?+?+?+?+?+?+?+?", p, 9);
    h_raw_expect_error_then_eof(fd, DBPOOL_E_PROTOCOL, "QUERY with 9 parameters, maxParams 8");
    assert_daemon_serves();
    h_stop_ok();
}

Test(limits, raw_batch_above_max_statements_is_protocol_error)
{
    dbpool_stmt s[4] = { { "SELECT 1", NULL, 0 }, { "SELECT 2", NULL, 0 },
                         { "SELECT 3", NULL, 0 }, { "SELECT 4", NULL, 0 } };
    h_start(&small_limits);
    int fd = h_raw_connect();
    h_raw_handshake(fd);
    struct pbuf b;
    pbuf_init(&b);
    proto_put_batch(&b, 0, s, 4);
    cr_assert(!b.oom && h_raw_send(fd, b.data, b.len));
    pbuf_free(&b);
    h_raw_expect_error_then_eof(fd, DBPOOL_E_PROTOCOL, "BATCH of 4, maxBatchStatements 3");
    assert_daemon_serves();
    h_stop_ok();
}

Test(limits, max_frame_size)
{
    const size_t fits = 60000, too_big = 100 * 1024;
    char *text = make_pad(too_big);
    h_start(&small_limits);
    dbpool_conn *c = h_connect();

    dbpool_value v = dbpool_textn(text, fits);
    dbpool_result *r = h_query(c, "SELECT ?", &v, 1);
    cr_assert_eq(dbpool_result_value(r, 0, 0)->u.s.len, fits, "a frame below the limit failed");
    dbpool_result_free(r);

    v = dbpool_textn(text, too_big);
    int rc = dbpool_query(c, h_sql("SELECT ?"), &v, 1, NULL);
    cr_assert_eq(rc, -1, "a frame above maxFrameSize went through");
    int code = dbpool_last_error(c)->code;
    cr_assert(code == DBPOOL_E_LIMIT || code == DBPOOL_E_USAGE, "error %s: %s",
              dbpool_code_name(code), dbpool_last_error(c)->message);
    dbpool_close(c);
    assert_daemon_serves();
    free(text);
    h_stop_ok();
}

Test(limits, frame_of_exactly_max_size_accepted_one_more_refused)
{
    const uint32_t max = 65536, sql_len = max - 1 - 6;    /* payload = max - 1 */
    char *sql = malloc(sql_len + 1);          /* + 1: the too-big variant */
    cr_assert_not_null(sql);
    memcpy(sql, "SELECT 1 -- ", 12);         /* MySQL: "--" starts a comment before a space */
    memset(sql + 12, 'x', sql_len + 1 - 12);
    h_start(&small_limits);

    int fd = h_raw_connect();
    h_raw_handshake(fd);
    struct pbuf b;
    pbuf_init(&b);
    proto_put_query(&b, sql, sql_len, NULL, 0);
    cr_assert_eq(b.len, PROTO_HEADER_SIZE + max - 1);
    cr_assert(h_raw_send(fd, b.data, b.len));
    cr_assert_eq(read_int_result(fd, 'I', "a frame of exactly maxFrameSize"), 1);
    close(fd);

    fd = h_raw_connect();
    h_raw_handshake(fd);
    pbuf_reset(&b);
    proto_put_query(&b, sql, sql_len + 1, NULL, 0);
    cr_assert(h_raw_send(fd, b.data, b.len));
    h_raw_expect_error_then_eof(fd, DBPOOL_E_LIMIT, "a frame of maxFrameSize + 1");
    pbuf_free(&b);
    free(sql);
    assert_daemon_serves();
    h_stop_ok();
}

Test(limits, max_batch_statements)
{
    h_start(&small_limits);
    dbpool_conn *c = h_connect();
    dbpool_stmt s[4] = { stmt("SELECT 1", NULL, 0), stmt("SELECT 2", NULL, 0),
                         stmt("SELECT 3", NULL, 0), stmt("SELECT 4", NULL, 0) };
    must_ok(c, dbpool_batch(c, s, 3, 0, NULL, NULL), "a batch of maxBatchStatements");
    int rc = dbpool_batch(c, s, 4, 0, NULL, NULL);
    cr_assert_eq(rc, -1, "a batch above maxBatchStatements ran");
    /* libdbpool knows the limit from HELLO_OK: it refuses the batch itself,
     * says what to do, and the session goes on. */
    const dbpool_error *e = dbpool_last_error(c);
    cr_assert_eq(e->code, DBPOOL_E_USAGE, "error %s: %s", dbpool_code_name(e->code), e->message);
    cr_assert(strstr(e->message, "at most 3") && strstr(e->message, "maxBatchStatements"),
              "the message names neither the limit nor the setting: %s", e->message);
    cr_assert(dbpool_is_open(c), "the session was closed over a batch libdbpool could refuse");
    dbpool_result *r = h_query(c, "SELECT 42", NULL, 0);
    cr_assert_eq(dbpool_result_value(r, 0, 0)->u.i, 42, "the session is not usable afterwards");
    dbpool_result_free(r);
    dbpool_close(c);
    assert_daemon_serves();
    h_stop_ok();
}

/* Read a request's frames up to its terminal one; asserts no frame is above
 * max_frame (the limit HELLO_OK announced). Returns the terminal frame. */
static struct h_frame read_within_limit(int fd, uint32_t max_frame, int *nrows, const char *what)
{
    struct h_frame f;
    *nrows = 0;
    for (;;) {
        int r = h_raw_read_frame(fd, 10000, &f);
        cr_assert_eq(r, 1, "%s: expected a frame, got %s", what, r == 0 ? "EOF" : strerror(errno));
        cr_assert_leq(f.len + 1, max_frame, "%s: a '%c' frame of %u bytes, above maxFrameSize %u",
                      what, f.type, f.len + 1, max_frame);
        if (f.type == PT_READY || f.type == PT_ERROR)
            return f;
        *nrows += f.type == PT_ROW;
        h_frame_free(&f);
    }
}

/* A result row larger than maxFrameSize cannot be sent: the statement fails
 * with LIMIT (54000), rows before it arrive, and the session goes on. */
Test(limits, result_row_above_max_frame_fails_statement_session_continues)
{
    h_start(&small_limits);                          /* maxFrameSize 65536 */
    dbpool_conn *c = h_connect();
    char cols[96], *pad = make_pad(40000);
    snprintf(cols, sizeof(cols), "id %s, v %s", P->t_int, P->t_text);
    h_create_table(c, "big", cols);
    dbpool_value v[2] = { dbpool_int(2), dbpool_textn(pad, 40000) };
    h_execp(c, "INSERT INTO big VALUES (?, ?)", v, 2);
    char upd[128], cat[64];
    h_concat(cat, sizeof(cat), "v", "v");
    snprintf(upd, sizeof(upd), "UPDATE big SET v = %s", cat);
    h_exec(c, upd);                                  /* 80000 bytes: above the limit */
    h_exec(c, "INSERT INTO big VALUES (1, 'small')");
    h_exec(c, "INSERT INTO big VALUES (3, 'small')");
    dbpool_close(c);
    free(pad);

    int fd = h_raw_connect();
    h_raw_handshake(fd);
    int nrows;
    send_query(fd, "SELECT id, v FROM big ORDER BY id", NULL, 0);
    struct h_frame f = read_within_limit(fd, 65536, &nrows, "SELECT of the big row");
    struct proto_error e;
    cr_assert_eq(f.type, PT_ERROR, "the statement with a row above maxFrameSize succeeded");
    cr_assert(proto_get_error(f.payload, f.len, &e));
    cr_assert_eq(e.code, DBPOOL_E_LIMIT, "%s: %.*s", dbpool_code_name(e.code), (int)e.message.len,
                 e.message.p);
    cr_assert(e.sqlstate.len == 5 && memcmp(e.sqlstate.p, "54000", 5) == 0);
    cr_assert_eq(e.txstate, 'I');
    cr_assert_eq(e.stmt_index, -1);
    cr_assert_not_null(memmem(e.message.p, e.message.len, "maxFrameSize", 12), "%.*s",
                       (int)e.message.len, e.message.p);
    cr_assert_eq(nrows, 1, "the row before the big one did not arrive");
    h_frame_free(&f);
    send_query(fd, "SELECT 9", NULL, 0);
    cr_assert_eq(read_int_result(fd, 'I', "after the refused row"), 9);

    /* inside a transaction: the statement fails, ROLLBACK works */
    send_frame(fd, PT_BEGIN, "\0", 1);
    expect_ready(fd, 'T', "BEGIN");
    send_query(fd, "SELECT v FROM big WHERE id = 2", NULL, 0);
    f = read_within_limit(fd, 65536, &nrows, "the big row in a transaction");
    cr_assert_eq(f.type, PT_ERROR);
    cr_assert(proto_get_error(f.payload, f.len, &e) && e.code == DBPOOL_E_LIMIT);
    /* the backend's real state: the statement may have completed ('T') or
     * been stopped by the cancel ('E' where an error fails the transaction) */
    if (P->error_fails_transaction)
        cr_assert(e.txstate == 'T' || e.txstate == 'E', "txstate '%c'", e.txstate);
    else
        cr_assert_eq(e.txstate, 'T', "a refused read ended the transaction");
    h_frame_free(&f);
    send_frame(fd, PT_ROLLBACK, NULL, 0);
    expect_ready(fd, 'I', "ROLLBACK");
    send_query(fd, "SELECT 10", NULL, 0);
    cr_assert_eq(read_int_result(fd, 'I', "after the rollback"), 10);
    close(fd);
    assert_daemon_serves();
    h_stop_ok();
}

Test(limits, max_clients)
{
    struct h_opts o = { .daemon_settings = "maxClients = 2;" };
    h_start(&o);
    await_no_sessions();
    dbpool_conn *a = h_connect(), *b = h_connect();
    dbpool_error err;
    memset(&err, 0, sizeof(err));
    dbpool_conn *c = h_try_connect(H_POOL, &err);
    cr_assert_null(c, "a third session was accepted with maxClients = 2");
    cr_assert_eq(err.code, DBPOOL_E_LIMIT, "got %s: %s", dbpool_code_name(err.code), err.message);
    dbpool_close(b);
    cr_assert(H_AWAIT(stats_clients() == 1, 5000), "the closed session was not freed");
    c = h_connect();
    cr_assert_eq(h_scalar(a, "SELECT 1") + h_scalar(c, "SELECT 1"), 2);
    dbpool_close(a);
    dbpool_close(c);
    h_stop_ok();
}

/* ================================================================ pool */

TestSuite(pool, .fini = h_fini, .timeout = 60);

Test(pool, acquire_timeout_then_recovers)
{
    struct h_opts o = { .max_open_conns = 1, .pool_settings = "acquireTimeout = \"200ms\";" };
    dbpool_conn *a = start_with_table(&o);
    dbpool_conn *b = h_connect();
    must_ok(a, dbpool_begin(a, 0), "begin");
    insert_int(a, "t", 1);

    uint64_t t0 = h_now_ms();
    int rc = dbpool_exec(b, "SELECT 1");
    uint64_t waited = h_now_ms() - t0;
    h_expect_error(b, rc, DBPOOL_E_POOL_TIMEOUT, "B while A holds the only connection");
    cr_assert(waited >= 150 && waited < 5000, "B waited %llu ms (acquireTimeout 200ms)",
              (unsigned long long)waited);
    if (!P->single_writer)   /* a server pool: more connections would have helped */
        cr_assert_not_null(strstr(dbpool_last_error(b)->message, "raise maxOpenConns"), "%s",
                           dbpool_last_error(b)->message);
    assert_txstate(b, 'I', "after the pool timeout");
    cr_assert_geq(pool_num("totals", "acquire_timeouts"), 1);

    must_ok(a, dbpool_commit(a), "commit");
    cr_assert_eq(count_rows(b, "t"), 1, "B cannot run after A released the connection");
    dbpool_close(a);
    dbpool_close(b);
    h_stop_ok();
}

/* SQLite has one writer whatever maxOpenConns says: a write that waits for
 * it while another session's transaction holds it must be told that (and to
 * shorten write transactions or wait longer), not to raise maxOpenConns,
 * which only adds readers. Reads go on meanwhile. */
Test(pool, sqlite_writer_held_by_a_transaction_is_named_in_the_timeout)
{
    if (!P->single_writer)
        cr_skip_test("backend %s has no single writer connection", P->name);
    struct h_opts o = { .max_open_conns = 4, .pool_settings = "acquireTimeout = \"300ms\";" };
    dbpool_conn *a = start_with_table(&o);
    dbpool_conn *b = h_connect();
    must_ok(a, dbpool_begin(a, 0), "begin");
    insert_int(a, "t", 1);

    dbpool_value v = dbpool_int(2);
    int rc = dbpool_query(b, h_sql("INSERT INTO t VALUES (?)"), &v, 1, NULL);
    h_expect_error(b, rc, DBPOOL_E_POOL_TIMEOUT, "a write while A holds the writer");
    const char *msg = dbpool_last_error(b)->message;
    cr_log_info("POOL_TIMEOUT: %s", msg);
    cr_assert_null(strstr(msg, "maxOpenConns;"), "the advice is to raise maxOpenConns: %s", msg);
    cr_assert_null(strstr(msg, "raise maxOpenConns"), "the advice is to raise maxOpenConns: %s",
                   msg);
    cr_assert_null(strstr(msg, "all 4 busy"), "the message counts readers as writers: %s", msg);
    cr_assert_not_null(strstr(msg, "writer connection"), "the writer is not named: %s", msg);
    cr_assert_not_null(strstr(msg, "another session's transaction"), "no cause: %s", msg);
    cr_assert_not_null(strstr(msg, "shorten write transactions"), "no advice: %s", msg);
    cr_assert_not_null(strstr(msg, "acquireTimeout"), "no advice: %s", msg);
    cr_assert_eq(count_rows(b, "t"), 0, "B's read (on a reader) did not run or saw A's row");

    must_ok(a, dbpool_commit(a), "commit");
    h_execp(b, "INSERT INTO t VALUES (?)", &v, 1);
    cr_assert_str_eq(table_ints(a, "t"), "1,2");
    dbpool_close(b);
    dbpool_close(a);
    h_stop_ok();
}

struct waiter_arg {
    const char *sock;
    const char *sql;
    int rc;
    char msg[600];
};

static void *waiting_insert(void *p)
{
    struct waiter_arg *w = p;
    dbpool_error err;
    dbpool_conn *c = dbpool_connect(w->sock, H_POOL, "waiter", &err);
    if (!c) {
        w->rc = -2;
        snprintf(w->msg, sizeof(w->msg), "connect: %s", err.message);
        return NULL;
    }
    dbpool_value v = dbpool_int(2);
    w->rc = dbpool_query(c, w->sql, &v, 1, NULL);
    if (w->rc)
        snprintf(w->msg, sizeof(w->msg), "%s", dbpool_last_error(c)->message);
    dbpool_close(c);
    return NULL;
}

Test(pool, waiter_gets_the_released_connection)
{
    dbpool_conn *a = start_with_table(&single_conn);
    must_ok(a, dbpool_begin(a, 0), "begin");
    insert_int(a, "t", 1);

    struct waiter_arg w = { h_paths()->sock, h_sql("INSERT INTO t VALUES (?)"), 99, "" };
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, waiting_insert, &w), 0);
    cr_assert(H_AWAIT(pool_num("clients", "waiting") == 1, 5000), "B never queued");
    cr_assert_gt(H_STATUS_NUM("/pools", "longest_wait_ms"), 0);
    must_ok(a, dbpool_commit(a), "commit");
    pthread_join(th, NULL);
    cr_assert_eq(w.rc, 0, "the waiting insert failed: %s", w.msg);
    cr_assert_str_eq(table_ints(a, "t"), "1,2");
    cr_assert_geq(pool_num("totals", "waits"), 1);
    dbpool_close(a);
    h_stop_ok();
}

/* ================================================================ timeouts */

TestSuite(timeouts, .fini = h_fini, .timeout = 60);


Test(timeouts, statement_timeout_cancels_and_session_continues)
{
    struct h_opts o = { .pool_settings = "statementTimeout = \"200ms\";" };
    h_start(&o);
    dbpool_conn *c = h_connect();
    uint64_t t0 = h_now_ms();
    int rc = dbpool_exec(c, P->endless_sql);
    h_expect_error(c, rc, DBPOOL_E_CANCELED, "a statement running past statementTimeout");
    cr_assert_str_eq(dbpool_last_error(c)->sqlstate, "57014");
    cr_assert(strstr(dbpool_last_error(c)->message, "statementTimeout"),
              "the message does not say it was the statement timeout: %s",
              dbpool_last_error(c)->message);
    cr_assert_lt(h_now_ms() - t0, 5000, "the cancel took too long");
    assert_txstate(c, 'I', "after the cancel");
    cr_assert_eq(h_scalar(c, "SELECT 3"), 3, "the session is unusable after a cancel");
    dbpool_close(c);
    h_stop_ok();
}

Test(timeouts, idle_transaction_timeout_rolls_back_and_closes)
{
    struct h_opts o = { .max_open_conns = 1, .daemon_settings = "idleTransactionTimeout = \"300ms\";" };
    dbpool_conn *a = start_with_table(&o);
    must_ok(a, dbpool_begin(a, 0), "begin");
    insert_int(a, "t", 1);
    cr_assert(H_AWAIT(pool_num("clients", "connected") == 0, 5000),
              "the idle transaction's session was not closed");
    int rc = dbpool_exec(a, "SELECT 1");
    cr_assert_eq(rc, -1, "the session survived idleTransactionTimeout");
    int code = dbpool_last_error(a)->code;
    cr_assert(code == DBPOOL_E_TX_TIMEOUT || code == DBPOOL_E_IO, "error %s",
              dbpool_code_name(code));
    dbpool_close(a);
    assert_rolled_back_and_writable();
    h_stop_ok();
}

Test(timeouts, client_idle_timeout_closes_session)
{
    struct h_opts o = { .daemon_settings = "clientIdleTimeout = \"300ms\";" };
    h_start(&o);
    int fd = h_raw_connect();
    h_raw_handshake(fd);
    struct h_frame f;
    struct proto_error e;
    int r = h_raw_read_frame(fd, 5000, &f);
    cr_assert_eq(r, 1, "no ERROR before the close of an idle session");
    cr_assert_eq(f.type, PT_ERROR);
    cr_assert(proto_get_error(f.payload, f.len, &e));
    cr_assert_eq(e.code, DBPOOL_E_TX_TIMEOUT, "code %s", dbpool_code_name(e.code));
    h_frame_free(&f);
    h_raw_expect_eof(fd, 5000, "after the idle timeout");
    assert_daemon_serves();
    h_stop_ok();
}

/* ================================================================ cancel */

TestSuite(cancel, .fini = h_fini, .timeout = 60);

struct bg_query {
    dbpool_conn *c;
    const char *sql;
    int rc;
    dbpool_error err;
    uint64_t ended_ms;
};

static void *bg_query_main(void *p)
{
    struct bg_query *q = p;
    q->rc = dbpool_exec(q->c, q->sql);
    q->err = *dbpool_last_error(q->c);
    q->ended_ms = h_now_ms();
    return NULL;
}

static void expect_canceled(const struct bg_query *q, const char *what)
{
    cr_assert_eq(q->rc, -1, "%s: the request was not cancelled", what);
    cr_assert_eq(q->err.code, DBPOOL_E_CANCELED, "%s: %s: %s", what,
                 dbpool_code_name(q->err.code), q->err.message);
    cr_assert_str_eq(q->err.sqlstate, "57014", "%s", what);
    cr_assert_null(strstr(q->err.message, "statementTimeout"),
                   "%s: the message blames the statement timeout: %s", what, q->err.message);
}

Test(cancel, running_statement)
{
    h_start(NULL);
    struct bg_query q = { .c = h_connect(), .sql = P->endless_sql };
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, bg_query_main, &q), 0);
    cr_assert(H_AWAIT(pool_num("clients", "active") == 1, 5000), "the query never started");

    uint64_t t0 = h_now_ms();
    cr_assert_eq(dbpool_cancel(q.c), 0, "dbpool_cancel");
    pthread_join(th, NULL);
    expect_canceled(&q, "a running statement");
    cr_assert_lt(q.ended_ms - t0, 5000, "the cancel took %llu ms",
                 (unsigned long long)(q.ended_ms - t0));
    assert_txstate(q.c, 'I', "after the cancel");
    cr_assert_eq(h_scalar(q.c, "SELECT 11"), 11, "the session is unusable after a cancel");
    dbpool_close(q.c);
    h_stop_ok();
}

Test(cancel, request_waiting_for_a_server)
{
    dbpool_conn *a = start_with_table(&single_conn);
    must_ok(a, dbpool_begin(a, 0), "begin");
    insert_int(a, "t", 1);
    struct bg_query q = { .c = h_connect(), .sql = "SELECT 1" };
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, bg_query_main, &q), 0);
    cr_assert(H_AWAIT(pool_num("clients", "waiting") == 1, 5000), "B never queued");

    cr_assert_eq(dbpool_cancel(q.c), 0, "dbpool_cancel");
    pthread_join(th, NULL);
    expect_canceled(&q, "a request in the wait queue");
    cr_assert_eq(pool_num("clients", "waiting"), 0, "the cancelled request is still queued");

    must_ok(a, dbpool_commit(a), "commit");
    cr_assert_eq(count_rows(q.c, "t"), 1, "B is unusable after cancelling its wait");
    dbpool_close(q.c);
    dbpool_close(a);
    h_stop_ok();
}

Test(cancel, ignored_when_nothing_runs)
{
    h_start(NULL);
    dbpool_conn *c = h_connect();
    cr_assert_eq(dbpool_cancel(c), 0);
    cr_assert_eq(h_scalar(c, "SELECT 12"), 12, "a CANCEL sent while idle affected the next query");
    dbpool_close(c);

    int fd = h_raw_connect();
    h_raw_handshake(fd);
    struct pbuf b;
    pbuf_init(&b);
    proto_put_empty(&b, PT_CANCEL);
    proto_put_empty(&b, PT_PING);
    proto_put_query(&b, "SELECT 5", 8, NULL, 0);
    cr_assert(!b.oom && h_raw_send(fd, b.data, b.len));
    pbuf_free(&b);
    /* exactly: READY for the PING, then the query's frames; nothing for CANCEL */
    struct h_frame f;
    cr_assert_eq(h_raw_read_frame(fd, 10000, &f), 1);
    cr_assert_eq(f.type, PT_READY, "frame '%c' after CANCEL + PING", f.type);
    h_frame_free(&f);
    cr_assert_eq(read_int_result(fd, 'I', "SELECT after CANCEL + PING"), 5);
    close(fd);
    h_stop_ok();
}

/* Send `sql`, a CANCEL and SELECT 6 in one write(), so the daemon reads
 * them at once; the first request must end CANCELED at once. */
static void send_query_with_cancel(int fd, const char *sql, const char *what)
{
    struct pbuf b;
    pbuf_init(&b);
    proto_put_query(&b, sql, strlen(sql), NULL, 0);
    proto_put_empty(&b, PT_CANCEL);
    proto_put_query(&b, "SELECT 6", 8, NULL, 0);
    cr_assert(!b.oom && h_raw_send(fd, b.data, b.len), "%s: send", what);
    pbuf_free(&b);

    struct h_frame f;
    struct proto_error e;
    uint64_t t0 = h_now_ms();
    cr_assert_eq(h_raw_read_until_terminal(fd, 10000, &f), PT_ERROR,
                 "%s: the request was not cancelled (CANCEL in the same read was ignored)", what);
    cr_assert(proto_get_error(f.payload, f.len, &e), "%s: malformed ERROR", what);
    cr_assert_eq(e.code, DBPOOL_E_CANCELED, "%s: %s", what, dbpool_code_name(e.code));
    cr_assert_lt(h_now_ms() - t0, 5000, "%s: the cancel took too long", what);
    h_frame_free(&f);
}

Test(cancel, read_together_with_the_running_request)
{
    h_start(NULL);
    int fd = h_raw_connect();
    h_raw_handshake(fd);
    send_query_with_cancel(fd, P->endless_sql, "a running statement");
    cr_assert_eq(read_int_result(fd, 'I', "after the cancel"), 6, "the next request");
    close(fd);
    h_stop_ok();
}

Test(cancel, read_together_with_a_waiting_request)
{
    dbpool_conn *a = start_with_table(&single_conn);
    must_ok(a, dbpool_begin(a, 0), "begin");
    insert_int(a, "t", 1);
    int fd = h_raw_connect();
    h_raw_handshake(fd);
    send_query_with_cancel(fd, "SELECT 1", "a request in the wait queue");
    /* the wait was cancelled; SELECT 6 now waits for A's connection */
    cr_assert(H_AWAIT(pool_num("clients", "waiting") == 1, 5000), "SELECT 6 never queued");
    must_ok(a, dbpool_commit(a), "commit");
    cr_assert_eq(read_int_result(fd, 'I', "after the cancel"), 6, "the next request");
    close(fd);
    dbpool_close(a);
    h_stop_ok();
}

/* ====================================================== deferred BEGIN */
/* On drivers that can open a transaction together with its first statement
 * (PostgreSQL), a protocol BEGIN is answered by the daemon and holds no
 * server; the first step of the transaction carries it. These tests hold
 * on every backend; the server-side expectations only where it defers. */

TestSuite(deferred_begin, .fini = h_fini, .timeout = 60);

static bool backend_defers_begin(void)
{
    return strcmp(P->name, "postgres") == 0;
}

Test(deferred_begin, commit_or_rollback_before_any_statement)
{
    dbpool_conn *a = start_with_table(NULL);
    cr_assert(H_AWAIT(pool_num("clients", "connected") == 1, 5000),
              "the harness's start-up session did not go");
    double stmts = pool_num("totals", "statements");

    must_ok(a, dbpool_begin(a, 0), "begin");
    assert_txstate(a, 'T', "after BEGIN");
    must_ok(a, dbpool_commit(a), "commit of an empty transaction");
    assert_txstate(a, 'I', "after COMMIT");
    must_ok(a, dbpool_begin(a, DBPOOL_READ_ONLY), "begin read only");
    must_ok(a, dbpool_rollback(a), "rollback of an empty transaction");
    assert_txstate(a, 'I', "after ROLLBACK");
    h_expect_error(a, dbpool_commit(a), DBPOOL_E_TX_STATE, "COMMIT after the transaction ended");
    if (backend_defers_begin())
        cr_assert_eq(pool_num("totals", "statements"), stmts,
                     "an empty transaction ran statements on the server");
    cr_assert_eq(h_scalar(a, "SELECT 41 + 1"), 42, "the session does not go on");
    dbpool_close(a);
    h_stop_ok();
}

Test(deferred_begin, server_bound_from_the_first_statement_to_commit)
{
    dbpool_conn *a = start_with_table(NULL);
    cr_assert(H_AWAIT(pool_num("clients", "connected") == 1, 5000),
              "the harness's start-up session did not go");

    must_ok(a, dbpool_begin(a, 0), "begin");
    if (backend_defers_begin())
        cr_assert_eq(pool_num("servers", "busy"), 0, "BEGIN alone holds a server");
    insert_int(a, "t", 1);
    cr_assert_eq(pool_num("servers", "busy"), 1, "the transaction is not bound after a statement");
    dbpool_conn *b = h_connect();
    cr_assert_eq(count_rows(b, "t"), 0, "the uncommitted row is visible outside");
    must_ok(a, dbpool_commit(a), "commit");
    cr_assert(H_AWAIT(pool_num("servers", "busy") == 0, 5000), "COMMIT did not release the server");
    cr_assert_eq(count_rows(b, "t"), 1, "the committed row is not visible");
    dbpool_close(b);
    dbpool_close(a);
    h_stop_ok();
}

Test(deferred_begin, statement_refused_before_the_server_keeps_the_transaction)
{
    dbpool_conn *a = start_with_table(NULL);
    dbpool_value two[2] = { dbpool_int(1), dbpool_int(2) };

    must_ok(a, dbpool_begin(a, 0), "begin");
    h_expect_error(a, dbpool_query(a, h_sql("INSERT INTO t VALUES (?)"), two, 2, NULL),
                   DBPOOL_E_SQL, "too many parameters as the first statement");
    cr_assert_str_eq(dbpool_last_error(a)->sqlstate, "07001");
    assert_txstate(a, 'T', "after a statement refused for its parameter count");
    h_expect_error(a, dbpool_query(a, h_sql("INSERT INTO t VALUES (?)"), NULL, 0, NULL),
                   DBPOOL_E_SQL, "too few parameters in the transaction");
    cr_assert_str_eq(dbpool_last_error(a)->sqlstate, "07001");
    assert_txstate(a, 'T', "after a statement refused for too few parameters");
    insert_int(a, "t", 5);
    must_ok(a, dbpool_commit(a), "commit");
    cr_assert_str_eq(table_ints(a, "t"), "5");

    must_ok(a, dbpool_begin(a, 0), "begin again");
    h_expect_error(a, dbpool_query(a, h_sql("INSERT INTO t VALUES (?)"), two, 2, NULL),
                   DBPOOL_E_SQL, "too many parameters again");
    must_ok(a, dbpool_rollback(a), "rollback after the refused statement");
    assert_txstate(a, 'I', "after ROLLBACK");
    dbpool_close(a);
    h_stop_ok();
}

Test(deferred_begin, savepoint_or_batch_as_the_first_step)
{
    dbpool_conn *a = start_with_table(NULL);
    dbpool_value v[2] = { dbpool_int(1), dbpool_int(2) };
    dbpool_stmt both[] = { stmt("INSERT INTO t VALUES (?)", &v[0], 1),
                           stmt("INSERT INTO t VALUES (?)", &v[1], 1) };

    must_ok(a, dbpool_begin(a, 0), "outer begin");
    must_ok(a, dbpool_begin(a, 0), "inner begin as the first step");
    insert_int(a, "t", 7);
    must_ok(a, dbpool_rollback(a), "inner rollback");
    assert_txstate(a, 'T', "after rolling back the savepoint");
    must_ok(a, dbpool_commit(a), "outer commit");
    cr_assert_eq(count_rows(a, "t"), 0, "the rolled back savepoint's row survived");

    must_ok(a, dbpool_begin(a, 0), "begin");
    cr_assert_eq(dbpool_batch(a, both, 2, 1, NULL, NULL), 0, "atomic batch as the first step: %s",
                 dbpool_last_error(a)->message);
    assert_txstate(a, 'T', "after the batch");
    must_ok(a, dbpool_rollback(a), "rollback");
    cr_assert_eq(count_rows(a, "t"), 0, "the batch's rows survived the rollback");

    must_ok(a, dbpool_begin(a, 0), "begin");
    cr_assert_eq(dbpool_batch(a, both, 2, 1, NULL, NULL), 0, "atomic batch: %s",
                 dbpool_last_error(a)->message);
    must_ok(a, dbpool_commit(a), "commit");
    cr_assert_str_eq(table_ints(a, "t"), "1,2");
    dbpool_close(a);
    h_stop_ok();
}

/* ================================================================ fdlimits */

/* Descriptor exhaustion, the RLIMIT_NOFILE raise and the listen backlog.
 * Nothing here depends on the backend: the suite runs with SQLite only. */
TestSuite(fdlimits, .fini = h_fini, .timeout = 120);

#define FD_LIMIT 64          /* the daemon's RLIMIT_NOFILE in the exhaustion test */
#define HELD_CONNS 100       /* connections held open against it */

static void skip_unless_sqlite(void)
{
    if (P->shared_server)
        cr_skip_test("backend-independent; run with sqlite only");
}

/* Our own soft descriptor limit raised to at least n (skip when impossible). */
static void need_own_fds(rlim_t n)
{
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur >= n)
        return;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < n)
        cr_skip_test("needs %lu descriptors, the hard limit is %lu", (unsigned long)n,
                     (unsigned long)rl.rlim_max);
    rl.rlim_cur = n;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0, "setrlimit: %s", strerror(errno));
}

/* utime + stime of the daemon, in seconds (/proc/<pid>/stat fields 14, 15). */
static double daemon_cpu_s(void)
{
    char path[64], buf[1024];
    unsigned long ut = 0, st = 0;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)h_pid());
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');   /* the command name may hold spaces */
    cr_assert(p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2,
              "cannot parse %s: %s", path, buf);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The daemon's scheduling state letter (R, S, T, ...). */
static char daemon_state(void)
{
    char path[64], buf[512], state = '?';

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)h_pid());
    FILE *f = fopen(path, "r");
    if (!f)
        return state;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    if (p && p[1] == ' ')
        state = p[2];
    return state;
}

static int daemon_open_fds(void)
{
    char path[64];
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)h_pid());
    DIR *dir = opendir(path);
    if (!dir)
        return -1;
    for (struct dirent *e; (e = readdir(dir));)
        n += e->d_name[0] != '.';
    closedir(dir);
    return n;
}

/* "Max open files" soft and hard limits of the daemon from /proc/<pid>/limits. */
static void daemon_nofile(unsigned long *soft, unsigned long *hard)
{
    char path[64], line[256];
    bool found = false;

    snprintf(path, sizeof(path), "/proc/%d/limits", (int)h_pid());
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    while (!found && fgets(line, sizeof(line), f))
        found = sscanf(line, "Max open files %lu %lu", soft, hard) == 2;
    fclose(f);
    cr_assert(found, "no \"Max open files\" line in %s", path);
}

/* Lines of the daemon log holding any of the words. */
static int log_lines_with(const char *const *words)
{
    char *log = h_read_log();
    int n = 0;

    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n"))
        for (const char *const *w = words; *w; w++)
            if (strstr(line, *w)) {
                n++;
                break;
            }
    free(log);
    return n;
}
#define LOG_LINES_WITH(...) log_lines_with((const char *const[]){ __VA_ARGS__, NULL })

/* A fresh raw session gets HELLO_OK within timeout_ms (no assert). */
static bool hello_answered(int timeout_ms)
{
    int fd = h_raw_try_connect(h_paths()->sock);
    struct h_frame f;
    bool ok = false;

    if (fd < 0)
        return false;
    h_raw_send_hello(fd, PROTO_VERSION, H_POOL);
    if (h_raw_read_frame(fd, timeout_ms, &f) == 1) {
        ok = f.type == PT_HELLO_OK;
        h_frame_free(&f);
    }
    close(fd);
    return ok;
}

/* Read an HTTP response until EOF; its status code, or -1 after timeout_ms. */
static int http_status_within(int fd, int timeout_ms)
{
    char buf[8192];
    size_t len = 0;
    uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;

    while (len < sizeof(buf) - 1 && h_now_ms() < deadline) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        if (poll(&pfd, 1, (int)(deadline - h_now_ms())) <= 0)
            continue;
        ssize_t r = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    int code = -1;
    return sscanf(buf, "HTTP/1.%*d %d", &code) == 1 ? code : -1;
}

Test(fdlimits, exhaustion_pauses_accepting_without_spinning)
{
    skip_unless_sqlite();
    need_own_fds(HELD_CONNS + 64);
    struct h_opts o = { .nofile_soft = FD_LIMIT, .nofile_hard = FD_LIMIT };
    h_start(&o);
    cr_expect_eq(LOG_LINES_WITH("nofile_limit_low"), 1,
                 "no warning that maxClients (10000) cannot fit in %d descriptors", FD_LIMIT);
    /* The pool's connection first: opened while descriptors are exhausted it
     * would fail and back off, and /health below would answer 503 for it. */
    cr_assert(H_AWAIT(pool_num("servers", "idle") >= 1, 5000), "the pool never connected");

    int held[HELD_CONNS];
    for (int i = 0; i < HELD_CONNS; i++) {
        held[i] = h_raw_connect();
        h_raw_send_hello(held[i], PROTO_VERSION, H_POOL);
    }
    cr_assert(H_AWAIT(daemon_open_fds() >= FD_LIMIT, 5000),
              "the daemon never ran out of descriptors (%d open)", daemon_open_fds());
    /* A status request made now waits in the status socket's backlog. */
    int http = h_raw_try_connect(h_paths()->status_sock);
    cr_assert_geq(http, 0, "connect to the status socket: %s", strerror(errno));
    static const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    cr_assert(h_raw_send(http, req, sizeof(req) - 1));

    /* A measurement window (nothing to await): out of descriptors, the
     * daemon must idle, not retry accept() in a loop. */
    double cpu0 = daemon_cpu_s();
    h_sleep_ms(2000);
    double used = daemon_cpu_s() - cpu0;
    int noisy = LOG_LINES_WITH("event=accept_failed", "event=accept_paused", "Error from accept");
    int retries = LOG_LINES_WITH("event=status_accept_paused");
    cr_expect_lt(used, 0.3, "the daemon used %.2f s of CPU in 2 s while out of descriptors", used);
    cr_expect_eq(noisy, 1, "%d accept failure lines in the log while out of descriptors, "
                 "expected one accept_paused", noisy);
    /* The status socket retries once a second, logged at debug level. */
    cr_expect_leq(retries, 5, "%d status_accept_paused lines in about 2 s", retries);

    for (int i = 0; i < HELD_CONNS; i++)
        close(held[i]);
    int code = http_status_within(http, 5000);
    close(http);
    cr_assert_eq(code, 200, "the pending /health request got %d once descriptors were free", code);
    cr_assert(H_AWAIT(hello_answered(1000), 5000), "no new session served after the release");
    cr_assert(H_AWAIT(LOG_LINES_WITH("accept_resumed") >= 1, 5000),
              "no accept_resumed event after the release");
    assert_daemon_serves();
    h_stop_ok();
}

Test(fdlimits, soft_limit_raised_to_the_hard_limit)
{
    skip_unless_sqlite();
    /* maxClients = 10 fits in 128 already: the raise must not depend on need. */
    struct h_opts o = { .nofile_soft = 128, .nofile_hard = 1024, .daemon_settings = "maxClients = 10;" };
    unsigned long soft = 0, hard = 0;

    h_start(&o);
    daemon_nofile(&soft, &hard);
    cr_assert_eq(hard, 1024, "the harness did not set the hard limit (%lu)", hard);
    cr_assert_eq(soft, 1024, "the soft descriptor limit is %lu, not raised to the hard 1024", soft);
    cr_assert_eq(LOG_LINES_WITH("event=nofile_limit soft=1024 hard=1024"), 1,
                 "the raised limit is not logged");
    cr_assert_eq(LOG_LINES_WITH("nofile_limit_low"), 0, "a warning though maxClients fits");
    h_stop_ok();
}

/* Non-blocking connects to the client socket: how many got into the backlog. */
static int connect_burst(int *fds, int n)
{
    int ok = 0;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    const char *path = h_paths()->sock;

    cr_assert_lt(strlen(path), sizeof(sa.sun_path), "socket path too long: %s", path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        cr_assert_geq(fds[i], 0, "socket: %s", strerror(errno));
        if (connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            ok++;
            continue;
        }
        cr_assert_eq(errno, EAGAIN, "connect %d: %s", i, strerror(errno));
    }
    return ok;
}

static void close_all(int *fds, int n)
{
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

static void stop_daemon_process(void)
{
    h_signal(SIGSTOP);
    cr_assert(H_AWAIT(daemon_state() == 'T', 5000), "the daemon did not stop (state %c)",
              daemon_state());
}

Test(fdlimits, listen_backlog_setting_reaches_listen)
{
    skip_unless_sqlite();
    struct h_opts o = { .daemon_settings = "listenBacklog = 16;" };
    int fds[40];

    h_start(&o);
    stop_daemon_process();
    int ok = connect_burst(fds, 40);
    h_signal(SIGCONT);
    /* Linux queues backlog + 1 connections on a Unix stream socket. */
    cr_expect(ok >= 16 && ok <= 18, "%d of 40 connects queued with listenBacklog = 16", ok);
    close_all(fds, 40);
    assert_daemon_serves();
    h_stop_ok();
}

Test(fdlimits, default_backlog_queues_a_burst_beyond_1024)
{
    enum { BURST = 1500 };
    static int fds[BURST];
    FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
    int somaxconn = 0;

    skip_unless_sqlite();
    if (!f || fscanf(f, "%d", &somaxconn) != 1 || somaxconn < BURST)
        cr_skip_test("net.core.somaxconn (%d) caps the backlog below %d", somaxconn, BURST);
    fclose(f);
    need_own_fds(BURST + 64);
    /* All from one uid: maxClientsPerUser (default 1000) would refuse some. */
    struct h_opts o = { .daemon_settings = "maxClientsPerUser = 0;" };
    h_start(&o);
    stop_daemon_process();
    int ok = connect_burst(fds, BURST);
    h_signal(SIGCONT);
    cr_expect_eq(ok, BURST, "only %d of %d connects queued while the daemon was stopped", ok, BURST);
    close_all(fds, BURST);
    assert_daemon_serves();
    h_stop_ok();
}

/* ================================================================ budget */

/* clientBufferBudget, the per-session read-ahead and frameTimeout: hostile
 * clients that send (parts of) huge frames cannot make the daemon buffer
 * more than the budget, others are served meanwhile, and stallers do not
 * hold the budget for ever. */
TestSuite(budget, .fini = h_fini, .timeout = 120);

#define BIG_FRAME (15 * MIB)

/* A raw session that pushes bytes from its own thread (its sends block
 * once the daemon stops reading), then reads until the daemon closes it. */
struct stuffer {
    int fd;
    const uint8_t *buf;
    size_t len;
    pthread_t th;
    bool sent_all;
    atomic_bool done;       /* the thread ended: EOF, or the send failed */
};

static void *stuffer_main(void *p)
{
    struct stuffer *s = p;
    char sink[4096];

    s->sent_all = h_raw_send(s->fd, s->buf, s->len);
    while (s->sent_all && recv(s->fd, sink, sizeof(sink), 0) > 0)
        ;   /* the ERROR frame, then EOF */
    atomic_store(&s->done, true);
    return NULL;
}

static void stuffer_start(struct stuffer *s, const uint8_t *buf, size_t len)
{
    s->fd = h_raw_connect();
    h_raw_handshake(s->fd);
    s->buf = buf;
    s->len = len;
    atomic_store(&s->done, false);
    cr_assert_eq(pthread_create(&s->th, NULL, stuffer_main, s), 0);
}

/* A QUERY frame header announcing plen payload bytes, then plen - missing
 * bytes of an SQL text parameterless query padded with spaces. */
static uint8_t *big_query_bytes(uint32_t plen, size_t missing, size_t *len)
{
    *len = PROTO_HEADER_SIZE + plen - missing;
    uint8_t *b = malloc(*len);
    cr_assert_not_null(b);
    memset(b, ' ', *len);
    b[0] = (uint8_t)((plen + 1) >> 24);
    b[1] = (uint8_t)((plen + 1) >> 16);
    b[2] = (uint8_t)((plen + 1) >> 8);
    b[3] = (uint8_t)(plen + 1);
    b[4] = PT_QUERY;
    return b;
}

static bool all_done(struct stuffer *s, int n)
{
    for (int i = 0; i < n; i++)
        if (!atomic_load(&s[i].done))
            return false;
    return true;
}

Test(budget, stalled_partial_frames_bounded_and_timed_out)
{
    /* 24 stallers, 4 admitted at a time: 6 waves of frameTimeout. 4 s
     * leaves a staller starved of CPU on a loaded machine time to send its
     * 15 MiB once admitted (2 s was not always enough at load 10+). */
    enum { N = 24 };
    const long budget_kib = 64 * 1024;
    struct h_opts o = { .daemon_settings =
        "clientBufferBudget = 67108864; frameTimeout = \"4s\";" };
    static struct stuffer s[N];
    size_t len;
    /* Frames of 16 MiB - 64 of which 15 MiB arrive: never complete. */
    uint8_t *bytes = big_query_bytes(16 * MIB - 64, 16 * MIB - 64 - BIG_FRAME, &len);

    h_start(&o);
    assert_daemon_serves();
    long base = h_await_stable_rss(8000), peak = base;
    for (int i = 0; i < N; i++)
        stuffer_start(&s[i], bytes, len);

    /* The budget fills and the rest queue for it. */
    bool full = H_AWAIT(H_STATUS_NUM("/stats", "client_buffers", "waiting") >= N / 2, 20000);
    cr_assert(full, "sessions never queued for budget: /stats client_buffers.waiting = %g",
              H_STATUS_NUM("/stats", "client_buffers", "waiting"));
    /* Admitted frames stay within the budget; the read-ahead (16 KiB) of each
     * session comes on top (doc/operations.md). */
    double used = H_STATUS_NUM("/stats", "client_buffers", "used");
    cr_assert_leq(used, 64.0 * MIB + N * 16384.0, "the daemon buffers %g bytes: more than "
                  "clientBufferBudget + the sessions' read-ahead", used);
    /* Small requests are served while the budget is exhausted. */
    assert_daemon_serves();

    /* Each staller is admitted in turn, then closed by frameTimeout. */
    uint64_t deadline = h_now_ms() + 90000;
    while (!all_done(s, N) && h_now_ms() < deadline) {
        long rss = h_rss_kib();
        peak = rss > peak ? rss : peak;
        h_sleep_ms(20);
    }
    cr_assert(all_done(s, N), "stalled sessions were not all closed within 90 s");
    cr_log_info("%d stalled sessions: RSS peak +%ld KiB over %ld KiB, all closed after %.1f s",
                N, peak - base, base, (double)(h_now_ms() - deadline + 90000) / 1000);
    cr_assert_lt(peak - base, budget_kib + 16 * 1024, "daemon RSS grew by %ld KiB with %d "
                 "stalled %ld MiB frames (budget %ld KiB)", peak - base, N, BIG_FRAME / MIB,
                 budget_kib);
    for (int i = 0; i < N; i++) {
        pthread_join(s[i].th, NULL);
        cr_assert(s[i].sent_all, "session %d was closed before the daemon read its bytes: it "
                  "never got budget", i);
        close(s[i].fd);
    }
    cr_assert_eq(count_in_log("event=client_frame_timeout"), N,
                 "expected one client_frame_timeout log line per stalled session");
    cr_assert_eq(H_STATUS_NUM("/stats", "client_buffers", "frame_timeouts"), N);
    await_no_sessions();
    cr_assert_lt(H_STATUS_NUM("/stats", "client_buffers", "used"), 1.0 * MIB,
                 "budget not released after the sessions closed");
    assert_daemon_serves();
    free(bytes);
    h_stop_ok();
}

/* While a request waits (or runs), a session's further frames stay in its
 * socket beyond a small read-ahead: pipelining cannot grow the daemon. */
Test(budget, pipelined_input_bounded_per_session)
{
    enum { N = 8 };
    struct h_opts o = { .max_open_conns = 1, .pool_settings = "acquireTimeout = \"60s\";" };
    static struct stuffer s[N];
    size_t len;
    uint8_t *bytes = big_query_bytes((uint32_t)BIG_FRAME, 0, &len);   /* complete frames */
    dbpool_conn *holder = start_with_table(&o);

    must_ok(holder, dbpool_begin(holder, 0), "begin");
    insert_int(holder, "t", 1);   /* holds the only server connection */
    long base = h_await_stable_rss(8000);
    for (int i = 0; i < N; i++) {
        s[i].fd = -1;
        int fd = h_raw_connect();
        h_raw_handshake(fd);
        send_query(fd, "INSERT INTO t VALUES (2)", NULL, 0);   /* waits for the server */
        s[i].fd = fd;
        s[i].buf = bytes;
        s[i].len = len;
        atomic_store(&s[i].done, false);
        cr_assert_eq(pthread_create(&s[i].th, NULL, stuffer_main, &s[i]), 0);
    }
    bool waiting = H_AWAIT(pool_num("clients", "waiting") == N, 10000);
    cr_assert(waiting, "the raw sessions' requests are not waiting for the server");
    long paused = h_await_stable_rss(8000);
    cr_log_info("%d sessions pipelining: RSS +%ld KiB", N, paused - base);
    cr_assert_lt(paused - base, 16 * 1024, "daemon RSS grew by %ld KiB while %d sessions "
                 "pipelined %ld MiB frames behind a waiting request", paused - base, N,
                 BIG_FRAME / MIB);
    double used = H_STATUS_NUM("/stats", "client_buffers", "used");
    cr_assert_lt(used, N * 48.0 * 1024, "%d sessions with pipelined %ld MiB frames buffer %g "
                 "bytes (read-ahead is 16 KiB each)", N, BIG_FRAME / MIB, used);
    for (int i = 0; i < N; i++) {
        shutdown(s[i].fd, SHUT_RDWR);   /* ends the blocked send */
        pthread_join(s[i].th, NULL);
        close(s[i].fd);
    }
    must_ok(holder, dbpool_rollback(holder), "rollback");
    dbpool_close(holder);
    await_no_sessions();
    assert_daemon_serves();
    free(bytes);
    h_stop_ok();
}

/* ================================================================ writestall */

/* writeStallTimeout: a client that stops reading its results loses its
 * session; the statement is cancelled, the transaction rolled back and the
 * server connection returned to the pool. */
TestSuite(writestall, .fini = h_fini, .timeout = 60);

Test(writestall, reader_that_stops_is_closed_and_server_returned)
{
    struct h_opts o = { .max_open_conns = 1, .daemon_settings = "writeStallTimeout = \"1s\";" };
    dbpool_conn *a = start_with_table(&o);
    char *pad = make_pad(200);
    dbpool_value params[2] = { dbpool_int(1000000), dbpool_text(pad) };
    dbpool_value one = dbpool_int(1);

    dbpool_close(a);
    int fd = h_raw_connect();
    h_raw_handshake(fd);
    send_frame(fd, PT_BEGIN, "\0", 1);
    expect_ready(fd, 'T', "BEGIN");
    send_query(fd, "INSERT INTO t VALUES (?)", &one, 1);
    struct h_frame f;
    cr_assert_eq(h_raw_read_frame(fd, 10000, &f), 1);
    h_frame_free(&f);   /* STMT_DONE */
    expect_ready(fd, 'T', "INSERT");
    send_query(fd, P->series_sql, params, 2);   /* ~220 MB of rows, never read */
    uint64_t t0 = h_now_ms();

    bool closed = H_AWAIT(stats_clients() == 0, 15000);
    cr_assert(closed, "a session that does not read its results was not closed (writeStallTimeout "
              "1s; /stats clients.connected = %g)", stats_clients());
    cr_assert_geq(h_now_ms() - t0, 900, "closed before writeStallTimeout passed");
    bool returned = H_AWAIT(pool_num("clients", "active") == 0 &&
                            pool_num("servers", "busy") == 0, 10000);
    cr_assert(returned, "the server connection was not returned to the pool");
    dbpool_conn *b = h_connect();   /* maxOpenConns = 1: only served if it came back */
    cr_assert_eq(count_rows(b, "t"), 0, "the stalled session's transaction was not rolled back");
    insert_int(b, "t", 2);
    cr_assert_str_eq(table_ints(b, "t"), "2");
    dbpool_close(b);
    cr_assert_eq(count_in_log("event=client_write_stall"), 1, "expected one log line");
    cr_assert_eq(H_STATUS_NUM("/stats", "client_buffers", "write_stalls"), 1);
    close(fd);
    free(pad);
    h_stop_ok();
}
