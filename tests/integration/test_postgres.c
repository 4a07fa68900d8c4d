/*
 * test_postgres.c — PostgreSQL-specific integration tests: the real dbpoold
 * binary with a postgres pool, driven through libdbpool (and raw sockets
 * where a client must vanish abruptly), using the shared harness
 * (harness.h). tests/pg/run-pg-tests.sh starts a throwaway PostgreSQL and
 * exports DBPOOL_TEST_PG_{HOST,PORT,DB,USER}; without them every test FAILS
 * (a missing server must not look like a pass).
 *
 *   pgvalues      PostgreSQL column types -> protocol types and declared type
 *                 names; typed parameters of every kind
 *   pgerrors      SQLSTATEs; failed transactions, COMMIT of one
 *   pgstream      a million rows to a slow reader with bounded daemon memory
 *   pgcancel      CANCEL of pg_sleep; statementTimeout
 *   pgtx          binding to one server connection for a transaction only
 *   pgresilience  unreachable servers, killed server connections (idle and
 *                 inside a transaction), a server stopped and started again,
 *                 connection lifetime / idle time, clients vanishing mid
 *                 statement and mid transaction
 *   pgstatus      /pools and /health for a postgres pool; no secrets in the
 *                 status output or the log
 *   pgcache       the transparent statement cache, seen in the server's
 *                 pg_prepared_statements: prepare on second sight, LRU bound
 *                 (statementCacheSize), off at 0, stale plans and statements
 *                 dropped behind its back, DISCARD/DEALLOCATE, failing
 *                 statements; binary INT64/FLOAT64/BOOL parameters
 *
 * Isolation: criterion runs tests in parallel processes against one
 * database. The harness serializes server-backed tests of one run with a
 * lock and resets the public schema in h_start(); these tests do not rely
 * on that (another test program may run against the same database): each
 * test keeps its tables in a schema of its own (tp_<pid>, dropped at the
 * end), no test assumes an empty database, and server sessions are found by
 * pid or by a per-process marker in the statement text, never by "all
 * dbpoold sessions". The one test that stops PostgreSQL runs its own second
 * server (pg-harness.sh, another directory and port), stopped by a guardian
 * process even if the test process is killed.
 *
 * Killing server connections needs a second way into the database: tests
 * that do it configure an extra pool "admin" (same server) and run
 * pg_terminate_backend() / pg_stat_activity queries through it.
 *
 * Every wait is a poll with a deadline (H_AWAIT, /health, /pools, a query);
 * the only sleeps are durations under test (a transaction that must outlive
 * connMaxLifetime).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "common/proto.h"

#define MIB (1024L * 1024L)

/* ================================================================ setup */

/* This file is about PostgreSQL only: select the harness's postgres profile
 * whatever the environment says (it still needs the server variables). */
static void pg_init(void)
{
    setenv("DBPOOL_TEST_BACKEND", "postgres", 1);
}

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

/* A name unique to this test process: "<base>_<pid>". */
static const char *uniq(char *buf, size_t len, const char *base)
{
    snprintf(buf, len, "%s_%d", base, (int)getpid());
    return buf;
}

/* Tables live in a schema of their own, tp_<pid>, so that nothing another
 * test process does to the shared database (the harness resets `public`)
 * can touch them. Returns "tp_<pid>.<base>" after creating the schema. */
static const char *table(dbpool_conn *c, char *buf, size_t len, const char *base)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "CREATE SCHEMA IF NOT EXISTS tp_%d", (int)getpid());
    h_exec(c, sql);
    snprintf(buf, len, "tp_%d.%s", (int)getpid(), base);
    return buf;
}

static void drop_schema(dbpool_conn *c)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS tp_%d CASCADE", (int)getpid());
    h_exec(c, sql);
}

/* A server variable: $DBPOOL_TEST_PG_<suffix>, else the libpq one. */
static const char *pg_env(const char *suffix, const char *std)
{
    char var[64];
    const char *v;

    snprintf(var, sizeof(var), "DBPOOL_TEST_PG_%s", suffix);
    v = getenv(var);
    if ((!v || !*v) && std)
        v = getenv(std);
    return v && *v ? v : NULL;
}

static const char *pg_host(void)
{
    const char *h = pg_env("HOST", "PGHOST");
    cr_assert_not_null(h, "DBPOOL_TEST_PG_HOST (or PGHOST) is not set: run under "
                       "tests/pg/run-pg-tests.sh, which starts a PostgreSQL server");
    return h;
}

static int pg_port(void)
{
    const char *p = pg_env("PORT", "PGPORT");
    return p ? atoi(p) : 5432;
}

static const char *pg_db(void)
{
    const char *d = pg_env("DB", "PGDATABASE");
    return d ? d : "dbpool_test";
}

static const char *pg_user(void)
{
    const char *u = pg_env("USER", "PGUSER");
    return u ? u : "dbpool";
}

/* Append a postgres pool entry for h_opts.extra_pools:
 *   , { name = "NAME"; type = "postgres"; postgres = { ...; SETTINGS }; }
 * host NULL: the test server; port 0: the test server's port; user NULL:
 * the test user. */
static void add_pool(char *buf, size_t len, const char *name, const char *host, int port,
                     const char *user, const char *settings)
{
    size_t pos = strlen(buf);
    int n = snprintf(buf + pos, len - pos,
                     ", { name = \"%s\"; type = \"postgres\"; postgres = { host = \"%s\"; "
                     "port = %d; name = \"%s\"; username = \"%s\"; %s }; }",
                     name, host ? host : pg_host(), port ? port : pg_port(), pg_db(),
                     user ? user : pg_user(), settings ? settings : "");
    cr_assert(n > 0 && (size_t)n < len - pos, "extra_pools buffer too small");
}

/* The "admin" pool: the same server, for killing and inspecting sessions. */
static void add_admin_pool(char *buf, size_t len)
{
    add_pool(buf, len, "admin", NULL, 0, NULL, "maxOpenConns = 2;");
}

static dbpool_conn *connect_pool(const char *pool)
{
    dbpool_error err;
    memset(&err, 0, sizeof(err));
    dbpool_conn *c = h_try_connect(pool, &err);
    cr_assert_not_null(c, "connect to pool %s: %s: %s", pool, dbpool_code_name(err.code),
                       err.message);
    return c;
}

static int64_t backend_pid(dbpool_conn *c)
{
    return h_scalar(c, "SELECT pg_backend_pid()::int8");
}

/* pg_terminate_backend(pid) through an admin session; asserts it found it. */
static void kill_backend(dbpool_conn *adm, int64_t pid)
{
    dbpool_value p = dbpool_int(pid);
    dbpool_result *r = h_query(adm, "SELECT pg_terminate_backend($1::int)", &p, 1);
    const dbpool_value *v = dbpool_result_value(r, 0, 0);
    cr_assert(v->type == DBPOOL_BOOL && v->u.b == 1,
              "pg_terminate_backend(%lld) did not find the backend", (long long)pid);
    dbpool_result_free(r);
}

/* Whether the server process pid still exists (as a session). */
static bool backend_exists(dbpool_conn *adm, int64_t pid)
{
    dbpool_value p = dbpool_int(pid);
    dbpool_result *r = h_query(adm, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int",
                               &p, 1);
    int64_t n = dbpool_result_value(r, 0, 0)->u.i;
    dbpool_result_free(r);
    return n > 0;
}

/* Active statements whose text contains `marker` (other than our own). */
static int64_t active_with_marker(dbpool_conn *adm, const char *marker, int64_t *pid)
{
    char like[128];
    snprintf(like, sizeof(like), "%%%s%%", marker);
    dbpool_value p = dbpool_text(like);
    dbpool_result *r = h_query(adm,
                               "SELECT pid::int8 FROM pg_stat_activity WHERE state = 'active' "
                               "AND query LIKE $1 AND pid <> pg_backend_pid() ORDER BY pid",
                               &p, 1);
    int64_t n = (int64_t)dbpool_result_nrows(r);
    if (pid && n > 0)
        *pid = dbpool_result_value(r, 0, 0)->u.i;
    dbpool_result_free(r);
    return n;
}

/* ---- raw sessions (to vanish without TERMINATE) ---- */

static void raw_send_query(int fd, const char *sql)
{
    struct pbuf b;
    pbuf_init(&b);
    proto_put_query(&b, sql, strlen(sql), NULL, 0);
    cr_assert(!b.oom && h_raw_send(fd, b.data, b.len), "send QUERY");
    pbuf_free(&b);
}

/* Send sql and expect READY with txstate `tx`. */
static void raw_exec(int fd, const char *sql, char tx)
{
    struct h_frame f;
    raw_send_query(fd, sql);
    uint8_t t = h_raw_read_until_terminal(fd, 10000, &f);
    cr_assert_eq(t, PT_READY, "%s: answered with frame '%c'", sql, t);
    cr_assert_eq(f.len, 1);
    cr_assert_eq((char)f.payload[0], tx, "%s: txstate '%c'", sql, f.payload[0]);
    h_frame_free(&f);
}

/* ================================================================ values */

TestSuite(pgvalues, .init = pg_init, .fini = h_fini, .timeout = 120);

static void expect_col(const dbpool_result *r, size_t i, const char *name, const char *decl)
{
    const dbpool_column *c = &dbpool_result_columns(r)[i];
    cr_assert_str_eq(c->name, name, "column %zu", i);
    cr_assert_str_eq(c->decl_type, decl, "column %s", name);
}

static const dbpool_value *val(const dbpool_result *r, size_t row, size_t col, dbpool_type t)
{
    const dbpool_value *v = dbpool_result_value(r, row, col);
    const char *name = dbpool_result_columns(r)[col].name;
    cr_assert_eq(v->type, t, "column %s (%s): got type %s, expected %s", name,
                 dbpool_result_columns(r)[col].decl_type, dbpool_type_name(v->type),
                 dbpool_type_name(t));
    return v;
}

static void expect_text(const dbpool_result *r, size_t row, size_t col, const char *want)
{
    const dbpool_value *v = val(r, row, col, DBPOOL_TEXT);
    cr_assert(v->u.s.len == strlen(want) && memcmp(v->u.s.ptr, want, v->u.s.len) == 0,
              "column %s: \"%.*s\", expected \"%s\"", dbpool_result_columns(r)[col].name,
              (int)v->u.s.len, v->u.s.ptr, want);
}

static void expect_256_bytes(const dbpool_value *v, const char *what)
{
    cr_assert_eq(v->type, DBPOOL_BLOB, "%s: type %s", what, dbpool_type_name(v->type));
    cr_assert_eq(v->u.s.len, 256, "%s: %zu bytes", what, v->u.s.len);
    for (int i = 0; i < 256; i++)
        cr_assert_eq((uint8_t)v->u.s.ptr[i], i, "%s: byte %d is %d", what, i,
                     (uint8_t)v->u.s.ptr[i]);
}

Test(pgvalues, result_types_and_declared_types)
{
    h_start(NULL);
    dbpool_conn *c = h_connect();
    cr_assert_str_eq(dbpool_backend(c), "postgres");

    dbpool_result *r = h_query(c,
        "SELECT 1::int2 AS i2, 2::int4 AS i4, 9007199254740993::int8 AS i8, "
        "(-9223372036854775807 - 1)::int8 AS i8min, "
        "1.5::float4 AS f4, 0.1::float8 AS f8, 'Infinity'::float8 AS finf, "
        "true AS bt, false AS bf, NULL::int4 AS nul, "
        "(SELECT decode(string_agg(lpad(to_hex(i), 2, '0'), '' ORDER BY i), 'hex') "
        "   FROM generate_series(0, 255) AS g(i)) AS by, "
        "12345678901234567890.123456789::numeric AS num, "
        "'2024-01-02 03:04:05.123456+00'::timestamptz AS ts, "
        "('2024-01-02 03:04:05.123456+00'::timestamptz)::text AS ts_text, "
        "'{\"a\": [1, 2, null]}'::json AS js, "
        "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, "
        "'plain'::text AS t", NULL, 0);

    cr_assert_eq(dbpool_result_nrows(r), 1);
    cr_assert_eq(dbpool_result_ncols(r), 17);
    expect_col(r, 0, "i2", "int2");
    expect_col(r, 1, "i4", "int4");
    expect_col(r, 2, "i8", "int8");
    expect_col(r, 3, "i8min", "int8");
    expect_col(r, 4, "f4", "float4");
    expect_col(r, 5, "f8", "float8");
    expect_col(r, 7, "bt", "bool");
    expect_col(r, 9, "nul", "int4");
    expect_col(r, 10, "by", "bytea");
    expect_col(r, 11, "num", "numeric");
    expect_col(r, 12, "ts", "timestamptz");
    expect_col(r, 14, "js", "json");
    expect_col(r, 15, "u", "uuid");
    expect_col(r, 16, "t", "text");

    cr_assert_eq(val(r, 0, 0, DBPOOL_INT64)->u.i, 1);
    cr_assert_eq(val(r, 0, 1, DBPOOL_INT64)->u.i, 2);
    cr_assert_eq(val(r, 0, 2, DBPOOL_INT64)->u.i, 9007199254740993LL);
    cr_assert_eq(val(r, 0, 3, DBPOOL_INT64)->u.i, INT64_MIN);
    cr_assert_eq(val(r, 0, 4, DBPOOL_FLOAT64)->u.f, 1.5);
    cr_assert_eq(val(r, 0, 5, DBPOOL_FLOAT64)->u.f, 0.1);
    cr_assert(isinf(val(r, 0, 6, DBPOOL_FLOAT64)->u.f));
    cr_assert_eq(val(r, 0, 7, DBPOOL_BOOL)->u.b, 1, "true is not BOOL 1");
    cr_assert_eq(val(r, 0, 8, DBPOOL_BOOL)->u.b, 0, "false is not BOOL 0");
    val(r, 0, 9, DBPOOL_NULL);
    expect_256_bytes(dbpool_result_value(r, 0, 10), "bytea 0..255");
    expect_text(r, 0, 11, "12345678901234567890.123456789");
    const dbpool_value *ts_text = val(r, 0, 13, DBPOOL_TEXT);
    expect_text(r, 0, 12, ts_text->u.s.ptr);
    cr_assert_not_null(strstr(ts_text->u.s.ptr, ".123456"), "%s", ts_text->u.s.ptr);
    expect_text(r, 0, 14, "{\"a\": [1, 2, null]}");
    expect_text(r, 0, 15, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    expect_text(r, 0, 16, "plain");
    dbpool_result_free(r);
    dbpool_close(c);
    h_stop_ok();
}

Test(pgvalues, typed_parameters_of_every_kind)
{
    char t[64], sql[1024];
    uint8_t bytes[256];
    const char *utf8 = "h\xc3\xa9llo \xe2\x9c\x93 'quoted' \\ back";

    for (int i = 0; i < 256; i++)
        bytes[i] = (uint8_t)i;
    h_start(NULL);
    dbpool_conn *c = h_connect();
    table(c, t, sizeof(t), "typed");
    h_create_table(c, t, "id int4 PRIMARY KEY, i2 int2, i4 int4, i8 int8, f4 float4, "
                         "f8 float8, b bool, by bytea, tx text, n numeric, ts timestamptz, "
                         "j json, u uuid");

    /* Every protocol type as a parameter; TEXT into numeric, timestamptz,
     * json and uuid columns (the server infers their types). */
    dbpool_value row1[13] = {
        dbpool_int(1), dbpool_int(-32768), dbpool_int(2147483647), dbpool_int(INT64_MIN),
        dbpool_float(0.5), dbpool_float(-1e300), dbpool_bool(1),
        dbpool_blob(bytes, sizeof(bytes)), dbpool_text(utf8),
        dbpool_text("3.14159265358979323846264338327950288"),
        dbpool_text("2024-02-29 12:00:00+00"), dbpool_text("{\"k\": \"v\"}"),
        dbpool_text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    };
    snprintf(sql, sizeof(sql), "INSERT INTO %s VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
             "$10, $11, $12, $13)", t);
    h_execp(c, sql, row1, 13);
    /* NULL of every column; INT64 and FLOAT64 into numeric; BOOL false. */
    dbpool_value row2[13] = {
        dbpool_int(2), dbpool_null(), dbpool_null(), dbpool_null(), dbpool_null(),
        dbpool_null(), dbpool_bool(0), dbpool_null(), dbpool_null(), dbpool_int(12),
        dbpool_null(), dbpool_null(), dbpool_null(),
    };
    h_execp(c, sql, row2, 13);
    dbpool_value row3[2] = { dbpool_int(3), dbpool_float(2.5) };
    snprintf(sql, sizeof(sql), "INSERT INTO %s (id, n) VALUES ($1, $2)", t);
    h_execp(c, sql, row3, 2);

    snprintf(sql, sizeof(sql), "SELECT id, i2, i4, i8, f4, f8, b, by, tx, n, "
             "ts = '2024-02-29 12:00:00+00'::timestamptz AS ts_ok, j::text, u::text "
             "FROM %s ORDER BY id", t);
    dbpool_result *r = h_query(c, sql, NULL, 0);
    cr_assert_eq(dbpool_result_nrows(r), 3);
    cr_assert_eq(val(r, 0, 1, DBPOOL_INT64)->u.i, -32768);
    cr_assert_eq(val(r, 0, 2, DBPOOL_INT64)->u.i, 2147483647);
    cr_assert_eq(val(r, 0, 3, DBPOOL_INT64)->u.i, INT64_MIN);
    cr_assert_eq(val(r, 0, 4, DBPOOL_FLOAT64)->u.f, 0.5);
    cr_assert_eq(val(r, 0, 5, DBPOOL_FLOAT64)->u.f, -1e300);
    cr_assert_eq(val(r, 0, 6, DBPOOL_BOOL)->u.b, 1);
    expect_256_bytes(dbpool_result_value(r, 0, 7), "BLOB parameter read back");
    expect_text(r, 0, 8, utf8);
    expect_text(r, 0, 9, "3.14159265358979323846264338327950288");
    cr_assert_eq(val(r, 0, 10, DBPOOL_BOOL)->u.b, 1, "TEXT into timestamptz stored wrong");
    expect_text(r, 0, 11, "{\"k\": \"v\"}");
    expect_text(r, 0, 12, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    for (size_t col = 1; col < 13; col++)   /* NULL parameters stored as NULL */
        if (col != 6 && col != 9)
            val(r, 1, col, DBPOOL_NULL);
    cr_assert_eq(val(r, 1, 6, DBPOOL_BOOL)->u.b, 0);
    expect_text(r, 1, 9, "12");
    expect_text(r, 2, 9, "2.5");
    dbpool_result_free(r);

    /* TEXT parameters compared with timestamptz and uuid columns. */
    dbpool_value q[2] = { dbpool_text("2024-02-29 13:00:00+01"),
                          dbpool_text("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11") };
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE ts = $1 AND u = $2", t);
    r = h_query(c, sql, q, 2);
    cr_assert_eq(val(r, 0, 0, DBPOOL_INT64)->u.i, 1, "TEXT compared with timestamptz/uuid");
    dbpool_result_free(r);

    /* Parameters in expressions keep their protocol types. */
    dbpool_value e[6] = { dbpool_int(41), dbpool_float(1.25), dbpool_bool(0),
                          dbpool_blob(bytes, sizeof(bytes)), dbpool_text(utf8), dbpool_null() };
    r = h_query(c, "SELECT $1::int8 + 1, $2::float8 * 2, NOT $3::bool, length($4::bytea), "
                   "$5::text || '!', $6::int8 IS NULL, $4::bytea", e, 6);
    cr_assert_eq(val(r, 0, 0, DBPOOL_INT64)->u.i, 42);
    cr_assert_eq(val(r, 0, 1, DBPOOL_FLOAT64)->u.f, 2.5);
    cr_assert_eq(val(r, 0, 2, DBPOOL_BOOL)->u.b, 1);
    cr_assert_eq(val(r, 0, 3, DBPOOL_INT64)->u.i, 256);
    char bang[128];
    snprintf(bang, sizeof(bang), "%s!", utf8);
    expect_text(r, 0, 4, bang);
    cr_assert_eq(val(r, 0, 5, DBPOOL_BOOL)->u.b, 1);
    expect_256_bytes(dbpool_result_value(r, 0, 6), "BLOB parameter echoed");
    dbpool_result_free(r);
    drop_schema(c);
    dbpool_close(c);
    h_stop_ok();
}

/* ================================================================ errors */

TestSuite(pgerrors, .init = pg_init, .fini = h_fini, .timeout = 120);

static void expect_sql_error(dbpool_conn *c, const char *sql, const char *sqlstate)
{
    int rc = dbpool_exec(c, sql);
    const dbpool_error *e = dbpool_last_error(c);
    cr_assert_eq(rc, -1, "%s succeeded", sql);
    cr_assert_eq(e->code, DBPOOL_E_SQL, "%s: %s [%s] %s", sql, dbpool_code_name(e->code),
                 e->sqlstate, e->message);
    cr_assert_str_eq(e->sqlstate, sqlstate, "%s: %s", sql, e->message);
    cr_assert(dbpool_is_open(c), "%s closed the session", sql);
}

Test(pgerrors, sqlstates_and_the_session_goes_on)
{
    char t[64], sql[256];
    h_start(NULL);
    dbpool_conn *c = h_connect();
    table(c, t, sizeof(t), "errs");
    h_create_table(c, t, "id int4 PRIMARY KEY");
    snprintf(sql, sizeof(sql), "INSERT INTO %s VALUES (1)", t);
    h_exec(c, sql);

    expect_sql_error(c, sql, "23505");
    expect_sql_error(c, "SELEC 1", "42601");
    snprintf(sql, sizeof(sql), "SELECT * FROM no_such_table_%d", (int)getpid());
    expect_sql_error(c, sql, "42P01");
    expect_sql_error(c, "SELECT 1 / 0", "22012");
    assert_txstate(c, 'I', "after autocommit errors");
    cr_assert_eq(h_scalar(c, "SELECT 6 * 7"), 42, "the session is unusable after errors");
    drop_schema(c);
    dbpool_close(c);
    h_stop_ok();
}

Test(pgerrors, error_fails_the_transaction_and_commit_reports_it)
{
    char t[64], ins[256], cnt[256];
    h_start(NULL);
    dbpool_conn *c = h_connect();
    table(c, t, sizeof(t), "txerr");
    snprintf(ins, sizeof(ins), "INSERT INTO %s VALUES (1)", t);
    snprintf(cnt, sizeof(cnt), "SELECT count(*) FROM %s", t);
    h_create_table(c, t, "id int4");

    /* COMMIT of a failed transaction: TX_STATE 25P02, nothing committed. */
    must_ok(c, dbpool_begin(c, 0), "begin");
    h_exec(c, ins);
    expect_sql_error(c, "SELECT 1 / 0", "22012");
    assert_txstate(c, 'E', "after an error in a transaction");
    expect_sql_error(c, "SELECT 1", "25P02");   /* "current transaction is aborted" */
    assert_txstate(c, 'E', "still failed");
    int rc = dbpool_commit(c);
    h_expect_error(c, rc, DBPOOL_E_TX_STATE, "COMMIT of a failed transaction");
    cr_assert_str_eq(dbpool_last_error(c)->sqlstate, "25P02");
    assert_txstate(c, 'I', "after COMMIT of a failed transaction");
    cr_assert_eq(h_scalar(c, cnt), 0, "the failed transaction was committed");

    /* ROLLBACK of a failed transaction works. */
    must_ok(c, dbpool_begin(c, 0), "begin");
    h_exec(c, ins);
    expect_sql_error(c, "SELEC", "42601");
    assert_txstate(c, 'E', "after a syntax error in a transaction");
    must_ok(c, dbpool_rollback(c), "rollback of a failed transaction");
    assert_txstate(c, 'I', "after ROLLBACK");
    cr_assert_eq(h_scalar(c, cnt), 0);

    /* And a good transaction still commits. */
    must_ok(c, dbpool_begin(c, 0), "begin");
    h_exec(c, ins);
    must_ok(c, dbpool_commit(c), "commit");
    cr_assert_eq(h_scalar(c, cnt), 1);
    drop_schema(c);
    dbpool_close(c);
    h_stop_ok();
}

/* ================================================================ streaming */

TestSuite(pgstream, .init = pg_init, .fini = h_fini, .timeout = 300);

#define SERIES_SQL "SELECT n, $2::text AS pad FROM generate_series(1, $1::int8) AS g(n)"

static char *make_pad(size_t n)
{
    char *p = malloc(n + 1);
    cr_assert_not_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + i % 26);
    p[n] = '\0';
    return p;
}

/* Read up to max rows of SERIES_SQL, checking order and content; adds the
 * ROW frames' wire size to *wire. Returns the rows read; *rc as next_row. */
static int64_t read_series(dbpool_conn *c, int64_t max, int64_t *next, const char *pad,
                           uint64_t *wire, int *rc)
{
    const dbpool_value *row;
    int64_t got = 0;
    size_t padlen = strlen(pad);

    while (got < max && (*rc = dbpool_next_row(c, &row)) == 1) {
        if (row[0].type != DBPOOL_INT64 || row[0].u.i != *next)
            cr_assert_fail("row %lld: got %s %lld", (long long)*next,
                           dbpool_type_name(row[0].type), (long long)row[0].u.i);
        if (row[1].type != DBPOOL_TEXT || row[1].u.s.len != padlen ||
            memcmp(row[1].u.s.ptr, pad, padlen) != 0)
            cr_assert_fail("row %lld: pad corrupted", (long long)*next);
        /* frame header 5, ncols 2, INT64 1+8, TEXT 1+4+len */
        *wire += 5 + 2 + 9 + 5 + padlen;
        (*next)++;
        got++;
    }
    return got;
}

Test(pgstream, million_rows_to_a_slow_reader_with_bounded_daemon_memory)
{
    const int64_t rows = 1000000;
    const long bound_kib = 30 * 1024;
    char *pad = make_pad(50);
    dbpool_value p[2];
    uint64_t wire = 0;
    int64_t next = 1;
    int rc = 1;

    h_start(NULL);
    dbpool_conn *c = h_connect();

    /* Warm up (connection, buffers), then take the baseline. */
    p[0] = dbpool_int(5000);
    p[1] = dbpool_text(pad);
    must_ok(c, dbpool_query_start(c, SERIES_SQL, p, 2), "query_start");
    read_series(c, INT64_MAX, &next, pad, &wire, &rc);
    must_ok(c, rc, "warm-up stream");
    long base = h_await_stable_rss(10000);

    p[0] = dbpool_int(rows);
    must_ok(c, dbpool_query_start(c, SERIES_SQL, p, 2), "query_start");
    cr_assert_eq(dbpool_ncolumns(c), 2);
    cr_assert_str_eq(dbpool_columns(c)[0].decl_type, "int8");
    cr_assert_str_eq(dbpool_columns(c)[1].decl_type, "text");
    next = 1;
    wire = 0;
    long peak = base;
    /* Pause after 1,000 rows and again in the middle; read on in between. */
    const int64_t stops[] = { 1000, rows / 2 };
    for (size_t s = 0; s < 2; s++) {
        read_series(c, stops[s] - (next - 1), &next, pad, &wire, &rc);
        cr_assert_eq(rc, 1, "the stream ended early at row %lld: %s", (long long)next,
                     dbpool_last_error(c)->message);
        long paused = h_await_stable_rss(10000);
        if (paused > peak)
            peak = paused;
        cr_assert_lt(paused - base, bound_kib,
                     "daemon RSS grew by %ld KiB while the client paused at row %lld (bound "
                     "%ld KiB): rows are buffered instead of back-pressured",
                     paused - base, (long long)next - 1, bound_kib);
    }
    while (rc == 1) {
        read_series(c, 100000, &next, pad, &wire, &rc);
        long now = h_rss_kib();
        if (now > peak)
            peak = now;
    }
    must_ok(c, rc, "reading the stream");
    cr_assert_eq(next - 1, rows, "got %lld rows, expected %lld", (long long)(next - 1),
                 (long long)rows);
    cr_assert_eq(dbpool_rows_affected(c), rows);
    cr_assert_gt(wire, 50u * 1000 * 1000, "the result was only %llu bytes on the wire",
                 (unsigned long long)wire);
    cr_assert_lt(peak - base, bound_kib, "daemon RSS peaked %ld KiB above the baseline", peak - base);
    cr_log_info("1M rows, %.1f MB of ROW frames: daemon RSS %ld KiB at the start, peak +%ld KiB",
                (double)wire / 1e6, base, peak - base);
    assert_txstate(c, 'I', "after the stream");
    cr_assert_eq(h_scalar(c, "SELECT 5"), 5, "the session is unusable after a long stream");
    dbpool_close(c);
    free(pad);
    h_stop_ok();
}

/* ================================================================ cancel */

TestSuite(pgcancel, .init = pg_init, .fini = h_fini, .timeout = 120);

Test(pgcancel, cancel_from_another_thread_stops_pg_sleep)
{
    char extra[2048] = "", marker[64], sql[128];
    struct h_opts o = { .extra_pools = extra };

    uniq(marker, sizeof(marker), "cancel_marker");
    snprintf(sql, sizeof(sql), "SELECT pg_sleep(30) /* %s */", marker);
    add_admin_pool(extra, sizeof(extra));
    h_start(&o);
    dbpool_conn *adm = connect_pool("admin");
    struct h_bg_query q = { .c = h_connect(), .sql = sql };

    h_bg_start(&q);
    bool running = H_AWAIT(active_with_marker(adm, marker, NULL) == 1, 10000);
    cr_assert(running, "pg_sleep never showed up in pg_stat_activity");
    uint64_t t0 = h_now_ms();
    cr_assert_eq(dbpool_cancel(q.c), 0, "dbpool_cancel");
    cr_assert_eq(pthread_join(q.tid, NULL), 0);
    cr_assert_eq(q.rc, -1, "pg_sleep(30) was not cancelled");
    cr_assert_eq(q.err.code, DBPOOL_E_CANCELED, "%s: %s", dbpool_code_name(q.err.code),
                 q.err.message);
    cr_assert_str_eq(q.err.sqlstate, "57014");
    cr_assert_lt(q.ended_ms - t0, 5000, "the cancel took %llu ms",
                 (unsigned long long)(q.ended_ms - t0));
    cr_assert_eq(active_with_marker(adm, marker, NULL), 0, "pg_sleep still runs on the server");
    assert_txstate(q.c, 'I', "after the cancel");
    cr_assert_eq(h_scalar(q.c, "SELECT 11"), 11, "the session is unusable after a cancel");
    dbpool_close(q.c);
    dbpool_close(adm);
    h_stop_ok();
}

Test(pgcancel, statement_timeout_cancels_pg_sleep)
{
    struct h_opts o = { .pool_settings = "statementTimeout = \"300ms\";" };
    h_start(&o);
    dbpool_conn *c = h_connect();

    cr_assert_eq(h_scalar(c, "SELECT 1"), 1, "a short statement fails under statementTimeout");
    uint64_t t0 = h_now_ms();
    int rc = dbpool_exec(c, "SELECT pg_sleep(5)");
    uint64_t took = h_now_ms() - t0;
    h_expect_error(c, rc, DBPOOL_E_CANCELED, "pg_sleep(5) with statementTimeout 300ms");
    cr_assert_str_eq(dbpool_last_error(c)->sqlstate, "57014");
    cr_assert_not_null(strstr(dbpool_last_error(c)->message, "statementTimeout"),
                       "the message does not name statementTimeout: %s",
                       dbpool_last_error(c)->message);
    cr_assert_geq(took, 250, "cancelled before the timeout (%llu ms)", (unsigned long long)took);
    cr_assert_lt(took, 2500, "the timeout took %llu ms", (unsigned long long)took);
    assert_txstate(c, 'I', "after the timeout");
    cr_assert_eq(h_scalar(c, "SELECT 3"), 3, "the session is unusable after a timeout");

    /* Inside a transaction: the statement fails, the transaction with it. */
    must_ok(c, dbpool_begin(c, 0), "begin");
    rc = dbpool_exec(c, "SELECT pg_sleep(5)");
    h_expect_error(c, rc, DBPOOL_E_CANCELED, "pg_sleep(5) in a transaction");
    assert_txstate(c, 'E', "after a timeout in a transaction");
    must_ok(c, dbpool_rollback(c), "rollback");
    cr_assert_eq(h_scalar(c, "SELECT 4"), 4);
    dbpool_close(c);
    h_stop_ok();
}

/* ================================================================ transactions */

TestSuite(pgtx, .init = pg_init, .fini = h_fini, .timeout = 120);

Test(pgtx, session_stays_bound_inside_a_transaction)
{
    char t[64], ins[256], cnt[256];
    struct h_opts o = { .max_open_conns = 2 };

    h_start(&o);
    dbpool_conn *a = h_connect(), *b = h_connect();
    table(a, t, sizeof(t), "bound");
    snprintf(ins, sizeof(ins), "INSERT INTO %s VALUES (1)", t);
    snprintf(cnt, sizeof(cnt), "SELECT count(*) FROM %s", t);
    h_create_table(a, t, "id int4");

    must_ok(a, dbpool_begin(a, 0), "begin");
    int64_t pid1 = backend_pid(a);
    h_exec(a, ins);
    /* B works meanwhile (it would take A's connection if A were not bound). */
    for (int i = 0; i < 5; i++)
        cr_assert_eq(h_scalar(b, cnt), 0, "another session sees an uncommitted row");
    cr_assert_neq(backend_pid(b), pid1, "B ran on A's server connection");
    cr_assert_eq(h_scalar(a, cnt), 1, "the transaction does not see its own row");
    cr_assert_eq(backend_pid(a), pid1, "pg_backend_pid() changed inside a transaction");
    assert_txstate(a, 'T', "inside the transaction");
    must_ok(a, dbpool_commit(a), "commit");
    cr_assert_eq(h_scalar(b, cnt), 1, "the committed row is not visible");

    /* The same with SQL BEGIN / COMMIT. */
    h_exec(a, "BEGIN");
    assert_txstate(a, 'T', "after SQL BEGIN");
    int64_t pid2 = backend_pid(a);
    h_exec(a, ins);
    cr_assert_eq(h_scalar(b, cnt), 1);
    cr_assert_eq(h_scalar(a, cnt), 2);
    cr_assert_eq(backend_pid(a), pid2, "pg_backend_pid() changed inside a SQL transaction");
    h_exec(a, "COMMIT");
    assert_txstate(a, 'I', "after SQL COMMIT");
    cr_assert_eq(h_scalar(b, cnt), 2);
    drop_schema(a);
    dbpool_close(a);
    dbpool_close(b);
    h_stop_ok();
}

Test(pgtx, connection_is_released_after_commit)
{
    char t[64], ins[256], cnt[256];
    struct h_opts o = { .max_open_conns = 1, .pool_settings = "acquireTimeout = \"500ms\";" };

    h_start(&o);
    dbpool_conn *a = h_connect(), *b = h_connect();
    table(a, t, sizeof(t), "released");
    snprintf(ins, sizeof(ins), "INSERT INTO %s VALUES (1)", t);
    snprintf(cnt, sizeof(cnt), "SELECT count(*) FROM %s", t);
    h_create_table(a, t, "id int4");

    for (int round = 0; round < 2; round++) {
        if (round == 0)
            must_ok(a, dbpool_begin(a, 0), "begin");
        else
            h_exec(a, "BEGIN");
        h_exec(a, ins);
        /* A holds the only connection: B waits and times out. */
        int rc = dbpool_exec(b, "SELECT 1");
        h_expect_error(b, rc, DBPOOL_E_POOL_TIMEOUT, "B while A is in a transaction");
        if (round == 0)
            must_ok(a, dbpool_commit(a), "commit");
        else
            h_exec(a, "COMMIT");
        /* Released at once: B runs right away. */
        uint64_t t0 = h_now_ms();
        cr_assert_eq(h_scalar(b, cnt), round + 1, "B does not see A's committed row");
        cr_assert_lt(h_now_ms() - t0, 400, "B waited for the connection after A committed");
    }
    drop_schema(a);
    dbpool_close(a);
    dbpool_close(b);
    h_stop_ok();
}

/* ================================================================ resilience */

/* pgresilience.server_stopped_and_started_again runs its own PostgreSQL. */
static char second_server[128];
static pid_t guardian;             /* stops it, whatever happens to this process */
static int guardian_fd = -1;       /* the only write end of the guardian's pipe */

static const char *harness_script(void)
{
    static char path[1024];
    const char *s = getenv("DBPOOL_TEST_PG_HARNESS");
    const char *top = getenv("TOP_SRCDIR");

    if (s && *s)
        return s;
    if (top && *top)
        snprintf(path, sizeof(path), "%s/tests/pg/pg-harness.sh", top);
    else
        snprintf(path, sizeof(path), "%s", __FILE__);   /* .../tests/integration/test_postgres.c */
    if (!(top && *top)) {
        char *slash = strstr(path, "tests/integration/");
        if (slash)
            snprintf(slash, sizeof(path) - (size_t)(slash - path), "tests/pg/pg-harness.sh");
    }
    cr_assert_eq(access(path, R_OK), 0, "cannot find pg-harness.sh (%s); set "
                 "DBPOOL_TEST_PG_HARNESS", path);
    return path;
}

/* Run `bash pg-harness.sh CMD DIR` for the second server; stdout into out. */
static int run_harness(const char *cmd, const char *dir, char *out, size_t len)
{
    char line[2048];
    snprintf(line, sizeof(line), "PGPORT_TEST=54339 bash '%s' %s '%s' 2>>'%s.log'",
             harness_script(), cmd, dir, dir);
    FILE *f = popen(line, "r");
    cr_assert_not_null(f, "popen: %s", strerror(errno));
    size_t n = out ? fread(out, 1, len - 1, f) : 0;
    if (out)
        out[n] = '\0';
    else
        while (fgets(line, sizeof(line), f))
            ;
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A child in its own session that waits for EOF on a pipe only this
 * process holds (close-on-exec: neither the daemon nor the server inherits
 * it), then stops the second server and removes its directory. So the
 * server is stopped when the test ends normally (fini closes the pipe) and
 * also when the test process is killed (criterion timeout, watchdog, crash)
 * and fini never runs. */
static void start_guardian(const char *dir)
{
    char cmd[2048];
    int p[2];

    snprintf(cmd, sizeof(cmd), "PGPORT_TEST=54339 bash '%s' stop '%s' >>'%s.log' 2>&1; "
             "rm -f '%s.log'", harness_script(), dir, dir, dir);
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0, "pipe2: %s", strerror(errno));
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        char c;
        close(p[1]);
        setsid();   /* out of the test's process group: survives its killing */
        while (read(p[0], &c, 1) < 0 && errno == EINTR)
            ;
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(p[0]);
    guardian = pid;
    guardian_fd = p[1];
}

static void resilience_fini(void)
{
    h_fini();
    if (guardian > 0) {
        close(guardian_fd);   /* EOF: the guardian stops the server now */
        waitpid(guardian, NULL, 0);
        guardian = 0;
        guardian_fd = -1;
        second_server[0] = '\0';
    }
}

TestSuite(pgresilience, .init = pg_init, .fini = resilience_fini, .timeout = 240);

/* A TCP port on 127.0.0.1 where nothing listens (bound, not listening:
 * connections are refused). The socket stays open for the test. */
static int refused_port(int *port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    cr_assert_geq(fd, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static void expect_unavailable_pool(const char *pool)
{
    dbpool_conn *c = connect_pool(pool);
    for (int i = 0; i < 2; i++) {
        uint64_t t0 = h_now_ms();
        int rc = dbpool_exec(c, "SELECT 1");
        uint64_t took = h_now_ms() - t0;
        h_expect_error(c, rc, DBPOOL_E_UNAVAILABLE, pool);
        cr_assert_lt(took, 2000, "pool %s: the failure took %llu ms", pool,
                     (unsigned long long)took);
        cr_assert(dbpool_is_open(c), "pool %s: the session was closed", pool);
    }
    dbpool_close(c);

    char *j = h_pool_json(pool), err[300];
    char type[32];
    cr_assert(H_JSON_STR(j, type, "type") && strcmp(type, "postgres") == 0, "%s", j);
    cr_assert_eq(H_JSON_NUM(j, "healthy"), 0, "pool %s is reported healthy: %s", pool, j);
    cr_assert(H_JSON_STR(j, err, "last_error") && err[0], "pool %s has no last_error: %s",
              pool, j);
    free(j);
}

Test(pgresilience, unreachable_server_fails_fast_and_shows_unhealthy)
{
    char extra[4096] = "", host[128], settings[256];
    int port, portfd = refused_port(&port);
    struct h_opts o = { .extra_pools = extra };

    snprintf(settings, sizeof(settings), "maxRetries = 2; retryDelay = \"50ms\"; "
             "acquireTimeout = \"500ms\"; timeout = \"2s\"; maxOpenConns = 2;");
    snprintf(host, sizeof(host), "/nonexistent/dbpool-%d", (int)getpid());
    add_pool(extra, sizeof(extra), "nosocket", host, 5432, NULL, settings);
    add_pool(extra, sizeof(extra), "refused", "127.0.0.1", port, NULL, settings);
    h_start(&o);

    expect_unavailable_pool("nosocket");
    expect_unavailable_pool("refused");

    char *body = NULL;
    int st = h_http_get("/health", &body);
    cr_assert_eq(st, 503, "/health with unreachable pools: %d %s", st, body);
    cr_assert_not_null(strstr(body, "\"degraded\""), "%s", body);
    free(body);
    cr_assert_eq(h_pool_stat("app", "healthy", NULL), 1, "the good pool is reported unhealthy");
    dbpool_conn *c = h_connect();
    cr_assert_eq(h_scalar(c, "SELECT 1"), 1, "the good pool is affected");
    dbpool_close(c);
    close(portfd);
    h_stop_ok();
}

/* Idle server connections killed on the server: the daemon notices them
 * (idle watch), replaces them, and the next statements succeed. */
Test(pgresilience, idle_connections_killed_are_replaced)
{
    char extra[2048] = "";
    struct h_opts o = { .max_open_conns = 2, .extra_pools = extra };

    add_admin_pool(extra, sizeof(extra));
    h_start(&o);
    dbpool_conn *adm = connect_pool("admin");
    dbpool_conn *a = h_connect(), *b = h_connect();

    /* Two server connections, both idle afterwards. */
    must_ok(a, dbpool_begin(a, 0), "begin A");
    must_ok(b, dbpool_begin(b, 0), "begin B");
    int64_t pa = backend_pid(a), pb = backend_pid(b);
    cr_assert_neq(pa, pb);
    must_ok(a, dbpool_commit(a), "commit A");
    must_ok(b, dbpool_commit(b), "commit B");
    cr_assert(H_AWAIT(h_pool_stat("app", "servers", "idle") == 2, 5000), "not 2 idle servers");
    double closes = h_pool_stat("app", "totals", "server_closes");
    double connects = h_pool_stat("app", "totals", "connects");

    kill_backend(adm, pa);
    kill_backend(adm, pb);
    bool noticed = H_AWAIT(h_pool_stat("app", "totals", "server_closes") >= closes + 2, 5000);
    cr_assert(noticed, "the daemon did not notice its idle connections being killed "
              "(server_closes %g -> %g)", closes, h_pool_stat("app", "totals", "server_closes"));
    bool replaced = H_AWAIT(h_pool_stat("app", "totals", "connects") > connects &&
                            h_pool_stat("app", "servers", "idle") >= 1, 5000);
    cr_assert(replaced, "no replacement connection was opened");
    cr_assert_eq(h_pool_stat("app", "healthy", NULL), 1);

    /* The requirement: the next statements succeed, on new backends. */
    int64_t na = backend_pid(a), nb = backend_pid(b);
    cr_assert(na != pa && na != pb && nb != pa && nb != pb, "a killed backend was reused");
    cr_assert(!backend_exists(adm, pa) && !backend_exists(adm, pb));
    cr_assert_eq(h_health_status(), 200);
    dbpool_close(a);
    dbpool_close(b);
    dbpool_close(adm);
    h_stop_ok();
}

struct bystander {
    dbpool_conn *c;
    const char *sql;
    pthread_t tid;
    atomic_bool stop;
    atomic_int ok, failed;
    dbpool_error first_err;
};

static void *bystander_main(void *p)
{
    struct bystander *b = p;
    while (!atomic_load(&b->stop)) {
        if (dbpool_exec(b->c, b->sql) == 0) {
            atomic_fetch_add(&b->ok, 1);
        } else {
            if (atomic_fetch_add(&b->failed, 1) == 0)
                b->first_err = *dbpool_last_error(b->c);
        }
    }
    return NULL;
}

Test(pgresilience, connection_killed_inside_a_transaction)
{
    char extra[2048] = "", t[64], ins[256], cnt[256];
    struct h_opts o = { .max_open_conns = 2, .extra_pools = extra };

    add_admin_pool(extra, sizeof(extra));
    h_start(&o);
    dbpool_conn *adm = connect_pool("admin");
    dbpool_conn *a = h_connect();
    table(a, t, sizeof(t), "killed_tx");
    snprintf(ins, sizeof(ins), "INSERT INTO %s VALUES (1)", t);
    snprintf(cnt, sizeof(cnt), "SELECT count(*) FROM %s", t);
    h_create_table(a, t, "id int4");

    struct bystander b = { .c = h_connect(), .sql = cnt };
    atomic_init(&b.stop, false);
    atomic_init(&b.ok, 0);
    atomic_init(&b.failed, 0);

    must_ok(a, dbpool_begin(a, 0), "begin");
    h_exec(a, ins);
    int64_t pid = backend_pid(a);
    cr_assert_eq(pthread_create(&b.tid, NULL, bystander_main, &b), 0);
    cr_assert(H_AWAIT(atomic_load(&b.ok) >= 20, 5000), "B does not run");

    kill_backend(adm, pid);
    cr_assert(H_AWAIT(!backend_exists(adm, pid), 5000), "the backend was not terminated");
    int rc = dbpool_exec(a, "SELECT 1");
    h_expect_error(a, rc, DBPOOL_E_CONN_LOST, "statement after the backend was killed");
    cr_assert_not_null(strstr(dbpool_last_error(a)->message, "transaction aborted"),
                       "the message does not say the transaction was aborted: %s",
                       dbpool_last_error(a)->message);
    assert_txstate(a, 'I', "after CONN_LOST");
    cr_assert(dbpool_is_open(a), "CONN_LOST closed the session");

    /* A goes on, on a fresh connection; the aborted row is gone. */
    int64_t pid2 = backend_pid(a);
    cr_assert_neq(pid2, pid);
    cr_assert_eq(h_scalar(a, cnt), 0, "the aborted transaction's row is visible");
    h_exec(a, ins);
    int before = atomic_load(&b.ok);
    cr_assert(H_AWAIT(atomic_load(&b.ok) >= before + 20, 5000), "B stopped running");
    atomic_store(&b.stop, true);
    cr_assert_eq(pthread_join(b.tid, NULL), 0);
    cr_assert_eq(atomic_load(&b.failed), 0, "B saw %d errors, first: %s: %s",
                 atomic_load(&b.failed), dbpool_code_name(b.first_err.code),
                 b.first_err.message);
    cr_assert_eq(h_scalar(b.c, cnt), 1);
    drop_schema(a);
    dbpool_close(b.c);
    dbpool_close(a);
    dbpool_close(adm);
    h_stop_ok();
}

/* The server connection dies while the first statement of a protocol
 * BEGIN transaction runs: on PostgreSQL that statement went out in one
 * pipeline with the deferred BEGIN. The session gets CONN_LOST ('I': the
 * server aborted the transaction) in bounded time, and the daemon keeps
 * serving everyone (it used to spin for ever in the driver's result loop). */
static void kill_during_first_statement(bool read_only)
{
    char extra[2048] = "", marker[64], sql[128];
    struct h_opts o = { .max_open_conns = 3, .extra_pools = extra };

    uniq(marker, sizeof(marker), "first_stmt_marker");
    snprintf(sql, sizeof(sql), "SELECT pg_sleep(20) /* %s */", marker);
    add_admin_pool(extra, sizeof(extra));
    h_start(&o);
    dbpool_conn *adm = connect_pool("admin");
    dbpool_conn *other = h_connect();
    struct h_bg_query q = { .c = h_connect(), .sql = sql };
    int64_t pid = 0;

    must_ok(q.c, dbpool_begin(q.c, read_only ? DBPOOL_READ_ONLY : 0), "begin");
    h_bg_start(&q);
    cr_assert(H_AWAIT(active_with_marker(adm, marker, &pid) == 1, 10000),
              "the first statement never showed up in pg_stat_activity");
    uint64_t t0 = h_now_ms();
    kill_backend(adm, pid);
    cr_assert(H_AWAIT(atomic_load(&q.done), 10000),
              "the first statement of the transaction never ended after its server "
              "connection was killed (daemon frozen?)");
    cr_assert_eq(pthread_join(q.tid, NULL), 0);
    cr_assert_eq(q.rc, -1, "the statement succeeded on a killed connection");
    cr_assert_eq(q.err.code, DBPOOL_E_CONN_LOST, "%s: %s", dbpool_code_name(q.err.code),
                 q.err.message);
    cr_assert_lt(q.ended_ms - t0, 5000, "CONN_LOST took %llu ms",
                 (unsigned long long)(q.ended_ms - t0));
    assert_txstate(q.c, 'I', "after the first statement's connection was killed");
    /* Everyone is still served, the status socket answers. */
    cr_assert_eq(h_scalar(other, "SELECT 7"), 7);
    cr_assert_eq(h_health_status(), 200);
    cr_assert_eq(h_scalar(q.c, "SELECT 8"), 8, "the session is unusable after CONN_LOST");
    must_ok(q.c, dbpool_begin(q.c, 0), "begin after CONN_LOST");
    cr_assert_eq(h_scalar(q.c, "SELECT 9"), 9);
    must_ok(q.c, dbpool_commit(q.c), "commit after CONN_LOST");
    dbpool_close(q.c);
    dbpool_close(other);
    dbpool_close(adm);
    h_stop_ok();
}

Test(pgresilience, connection_killed_during_the_first_statement_of_a_begin)
{
    kill_during_first_statement(false);
}

Test(pgresilience, connection_killed_during_the_first_statement_of_a_read_only_begin)
{
    kill_during_first_statement(true);
}

/* COMMIT runs long here: a deferred constraint trigger sleeps at commit
 * time, marked so it can be found and killed. */
enum commit_kind { COMMIT_FRAME, COMMIT_SQL, COMMIT_ATOMIC_BATCH };

struct commit_run {
    dbpool_conn *c;
    enum commit_kind kind;
    const char *ins;
    pthread_t tid;
    int rc;
    dbpool_error err;
    atomic_bool done;
};

static void *commit_main(void *p)
{
    struct commit_run *k = p;
    dbpool_stmt st = { .sql = k->ins };

    if (k->kind == COMMIT_FRAME)
        k->rc = dbpool_commit(k->c);
    else if (k->kind == COMMIT_SQL)
        k->rc = dbpool_exec(k->c, "COMMIT");
    else
        k->rc = dbpool_batch(k->c, &st, 1, 1, NULL, NULL);
    k->err = *dbpool_last_error(k->c);
    atomic_store(&k->done, true);
    return NULL;
}

/* The server process of a COMMIT sleeping in its deferred trigger, or 0. */
static int64_t sleeping_commit(dbpool_conn *adm)
{
    int64_t pid = 0;
    dbpool_result *r = h_query(adm, "SELECT pid::int8 FROM pg_stat_activity WHERE state = "
                               "'active' AND wait_event = 'PgSleep' AND query = 'COMMIT'", NULL, 0);
    if (dbpool_result_nrows(r) == 1)
        pid = dbpool_result_value(r, 0, 0)->u.i;
    dbpool_result_free(r);
    return pid;
}

/* A COMMIT whose server connection dies: the outcome is unknown (the
 * server may have committed before it went), which the client is told as
 * CONN_LOST with SQLSTATE 08007, never as "transaction aborted". */
Test(pgresilience, commit_with_its_connection_lost_reports_an_unknown_outcome)
{
    char extra[2048] = "", t[64], sql[512], ins[256], marker[64];
    struct h_opts o = { .max_open_conns = 3, .extra_pools = extra };
    static const char *const names[] = { "COMMIT frame", "SQL COMMIT", "atomic batch" };

    add_admin_pool(extra, sizeof(extra));
    h_start(&o);
    dbpool_conn *adm = connect_pool("admin");
    dbpool_conn *a = h_connect();
    table(a, t, sizeof(t), "slow_commit");
    uniq(marker, sizeof(marker), "slow_commit_fn");
    h_create_table(a, t, "id int4");
    snprintf(sql, sizeof(sql),
             "CREATE FUNCTION tp_%d.%s() RETURNS trigger LANGUAGE plpgsql AS "
             "$f$ BEGIN PERFORM pg_sleep(20); RETURN NULL; END $f$", (int)getpid(), marker);
    h_exec(a, sql);
    snprintf(sql, sizeof(sql),
             "CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON %s DEFERRABLE INITIALLY DEFERRED "
             "FOR EACH ROW EXECUTE FUNCTION tp_%d.%s()", t, (int)getpid(), marker);
    h_exec(a, sql);
    snprintf(ins, sizeof(ins), "INSERT INTO %s VALUES (1)", t);

    for (int kind = COMMIT_FRAME; kind <= COMMIT_ATOMIC_BATCH; kind++) {
        struct commit_run k = { .c = h_connect(), .kind = kind, .ins = ins };
        int64_t pid = 0;
        atomic_init(&k.done, false);
        if (kind != COMMIT_ATOMIC_BATCH) {
            must_ok(k.c, dbpool_begin(k.c, 0), "begin");
            h_exec(k.c, ins);
        }
        cr_assert_eq(pthread_create(&k.tid, NULL, commit_main, &k), 0);
        cr_assert(H_AWAIT((pid = sleeping_commit(adm)) > 0, 10000),
                  "%s: the slow commit never showed up", names[kind]);
        kill_backend(adm, pid);
        cr_assert(H_AWAIT(atomic_load(&k.done), 10000), "%s never ended", names[kind]);
        cr_assert_eq(pthread_join(k.tid, NULL), 0);
        cr_assert_eq(k.rc, -1, "%s succeeded on a killed connection", names[kind]);
        cr_assert_eq(k.err.code, DBPOOL_E_CONN_LOST, "%s: %s: %s", names[kind],
                     dbpool_code_name(k.err.code), k.err.message);
        cr_assert_str_eq(k.err.sqlstate, "08007", "%s: %s", names[kind], k.err.message);
        cr_assert_not_null(strstr(k.err.message, "outcome unknown"), "%s: %s", names[kind],
                           k.err.message);
        cr_assert_null(strstr(k.err.message, "aborted"), "%s: %s", names[kind], k.err.message);
        assert_txstate(k.c, 'I', "after a lost COMMIT");
        cr_assert_eq(h_scalar(k.c, "SELECT 1"), 1, "the session is unusable after a lost COMMIT");
        dbpool_close(k.c);
    }
    drop_schema(a);
    dbpool_close(a);
    dbpool_close(adm);
    h_stop_ok();
}

/* Start a second throwaway PostgreSQL (own directory, port 54339) and point
 * the harness's postgres profile at it: this test may stop it. */
static void use_second_server(void)
{
    char env[1024], host[256] = "", port[32] = "";

    snprintf(second_server, sizeof(second_server), "/tmp/dbpool-pgd.XXXXXX");
    cr_assert_not_null(mkdtemp(second_server), "mkdtemp: %s", strerror(errno));
    start_guardian(second_server);
    int st = run_harness("start", second_server, env, sizeof(env));
    cr_assert_eq(st, 0, "could not start a second PostgreSQL (see %s.log)", second_server);
    /* export PGHOST=/tmp/... PGPORT=54339 PGUSER=dbpool PGDATABASE=dbpool_test */
    const char *h = strstr(env, "PGHOST="), *p = strstr(env, "PGPORT=");
    cr_assert(h && p, "unexpected harness output: %s", env);
    sscanf(h + 7, "%255s", host);
    sscanf(p + 7, "%31s", port);
    setenv("DBPOOL_TEST_PG_HOST", host, 1);
    setenv("DBPOOL_TEST_PG_PORT", port, 1);
}

static const struct h_opts health_opts = {
    .max_open_conns = 2,
    .pool_settings = "healthCheckInterval = \"200ms\"; retryDelay = \"100ms\"; "
                     "maxRetries = 3; acquireTimeout = \"1s\"; timeout = \"2s\";",
};

Test(pgresilience, server_stopped_and_started_again)
{
    use_second_server();
    h_start(&health_opts);
    pid_t daemon = h_pid();
    dbpool_conn *c = h_connect();
    cr_assert_eq(h_scalar(c, "SELECT 1"), 1);
    cr_assert_eq(h_health_status(), 200);

    cr_assert_eq(run_harness("pause", second_server, NULL, 0), 0, "could not stop PostgreSQL");
    uint64_t t0 = h_now_ms();
    bool down = H_AWAIT(h_health_status() == 503, 5000);
    cr_assert(down, "/health did not turn 503 within 5 s of the server stopping");
    cr_log_info("/health was 503 %llu ms after the server stopped",
                (unsigned long long)(h_now_ms() - t0));
    cr_assert_eq(h_pool_stat("app", "healthy", NULL), 0);
    /* No dead idle connection is handed out: the statement waits for a
     * connect that fails, and gets UNAVAILABLE (not CONN_LOST). */
    t0 = h_now_ms();
    int rc = dbpool_exec(c, "SELECT 1");
    h_expect_error(c, rc, DBPOOL_E_UNAVAILABLE, "statement with the server stopped");
    cr_assert_lt(h_now_ms() - t0, 3000, "the failure took %llu ms",
                 (unsigned long long)(h_now_ms() - t0));

    cr_assert_eq(run_harness("resume", second_server, NULL, 0), 0,
                 "could not start PostgreSQL again");
    bool up = H_AWAIT(h_health_status() == 200, 15000);
    cr_assert(up, "/health did not return to 200 after the server came back");
    cr_assert_eq(h_pool_stat("app", "healthy", NULL), 1);
    cr_assert_eq(h_scalar(c, "SELECT 2"), 2, "statements fail after the server came back");
    dbpool_conn *c2 = h_connect();
    cr_assert_eq(h_scalar(c2, "SELECT 3"), 3);
    cr_assert(h_running() && h_pid() == daemon, "the daemon was restarted");
    dbpool_close(c2);
    dbpool_close(c);
    h_stop_ok();
}

/* The same while a session holds the only open server connection in a
 * transaction: nothing is idle to watch or ping, but the pool has room for
 * a probe connection, so /health must still notice the stopped server. The
 * session in the transaction gets CONN_LOST; everything works again after
 * the restart. */
Test(pgresilience, server_stopped_while_a_transaction_holds_the_connection)
{
    use_second_server();
    h_start(&health_opts);
    dbpool_conn *c = h_connect(), *intx = h_connect();
    must_ok(intx, dbpool_begin(intx, 0), "begin");
    cr_assert_eq(h_scalar(intx, "SELECT 10"), 10);
    cr_assert_eq(h_pool_stat("app", "servers", "open"), 1, "expected one server connection");
    cr_assert_eq(h_health_status(), 200);

    cr_assert_eq(run_harness("pause", second_server, NULL, 0), 0, "could not stop PostgreSQL");
    bool down = H_AWAIT(h_health_status() == 503, 5000);
    cr_assert(down, "/health stayed 200 for 5 s after the server stopped while a transaction "
              "held the pool's only connection (healthCheckInterval 200ms, maxOpenConns 2)");
    int rc = dbpool_exec(intx, "SELECT 11");
    h_expect_error(intx, rc, DBPOOL_E_CONN_LOST, "statement in a transaction, server stopped");
    cr_assert_not_null(strstr(dbpool_last_error(intx)->message, "transaction aborted"), "%s",
                       dbpool_last_error(intx)->message);
    assert_txstate(intx, 'I', "after the server stopped");
    rc = dbpool_exec(c, "SELECT 1");
    h_expect_error(c, rc, DBPOOL_E_UNAVAILABLE, "statement with the server stopped");

    cr_assert_eq(run_harness("resume", second_server, NULL, 0), 0,
                 "could not start PostgreSQL again");
    cr_assert(H_AWAIT(h_health_status() == 200, 15000),
              "/health did not return to 200 after the server came back");
    must_ok(intx, dbpool_begin(intx, 0), "begin after the server came back");
    cr_assert_eq(h_scalar(intx, "SELECT 12"), 12);
    must_ok(intx, dbpool_commit(intx), "commit after the server came back");
    cr_assert_eq(h_scalar(c, "SELECT 2"), 2);
    dbpool_close(intx);
    dbpool_close(c);
    h_stop_ok();
}

/* ---- a stopped server under a retry storm ---- */

#define STORM_CLIENTS 50
#define STORM_MS 3000
#define STORM_RETRY_MS 100

/* Clients that retry a statement in a tight loop, as applications do when
 * the database is away: the fate of every request. */
struct storm_client {
    dbpool_conn *c;
    pthread_t tid;
    const atomic_bool *stop;
    int requests, unavailable, other;
    uint64_t slowest_ms;
    dbpool_error other_err;
};

static void *storm_main(void *p)
{
    struct storm_client *s = p;
    while (!atomic_load(s->stop)) {
        uint64_t t0 = h_now_ms();
        int rc = dbpool_exec(s->c, "SELECT 1");
        uint64_t took = h_now_ms() - t0;
        s->requests++;
        if (took > s->slowest_ms)
            s->slowest_ms = took;
        if (rc == -1 && dbpool_last_error(s->c)->code == DBPOOL_E_UNAVAILABLE)
            s->unavailable++;
        else if (s->other++ == 0)
            s->other_err = *dbpool_last_error(s->c);
    }
    return NULL;
}

/* The most connection attempts the backoff schedule allows in any window of
 * `window_ms`: one at its start, then one per (shortest, jittered) delay
 * from the first failure on, exponential from retryDelay, capped at 30 s. */
static int attempts_allowed(uint64_t window_ms, uint64_t retry_ms)
{
    uint64_t t = 0, base = retry_ms;
    int n = 1;

    for (;;) {
        uint64_t d = base - base / 4;
        if (t + d > window_ms)
            return n;
        t += d;
        n++;
        base = base * 2 < 30000 ? base * 2 : 30000;
    }
}

static int count_in(const char *text, const char *needle);

/* Log lines of the default level or above (info, warn, error: the tests
 * run the daemon at debug) in log[from..]; the text of that part into out. */
static int log_lines_since(size_t from, char **out)
{
    char *log = h_read_log();
    size_t len = strlen(log);
    const char *p = from < len ? log + from : log + len;

    *out = strdup(p);
    cr_assert_not_null(*out);
    free(log);
    return count_in(*out, "level=") - count_in(*out, "level=debug");
}

static size_t log_size(void)
{
    char *log = h_read_log();
    size_t n = strlen(log);
    free(log);
    return n;
}

static int count_in(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* A number of pool `name` in /pools; NaN when absent (no assert). */
static double pool_num_or_nan(const char *name, const char *k1, const char *k2)
{
    char *j = h_pool_json(name);
    double v = k2 ? H_JSON_NUM(j, k1, k2) : H_JSON_NUM(j, k1);
    free(j);
    return v;
}

/* How long, at most, until the backoff timer's next attempt: the announced
 * next_connect_in_ms; when none is announced (the pool is healthy, or an
 * attempt is under way, which may fail if it started before the server was
 * ready), the delay that would follow one more failure. */
static double recovery_bound_ms(const char *pool, uint64_t retry_ms)
{
    char *j = h_pool_json(pool);
    double next = H_JSON_NUM(j, "next_connect_in_ms");
    double failures = H_JSON_NUM(j, "connect_failures");
    free(j);
    cr_assert(!isnan(failures), "pool %s shows no connect_failures", pool);
    if (!isnan(next))
        return next;
    double base = (double)retry_ms;
    for (int i = 0; i < (int)failures && base < 30000; i++)
        base *= 2;
    return base < 30000 ? base : 30000;
}

/* PostgreSQL stopped for good while 50 clients retry in a tight loop: the
 * pool backs off (capped, jittered) for as long as the server is away and
 * requests fail at once with UNAVAILABLE without dialling each; the log
 * shows the episode in a handful of lines. When the server returns, the
 * backoff timer's next probe turns /health green with no client traffic at
 * all (healthCheckInterval is an hour), and statements work. */
Test(pgresilience, stopped_server_no_connect_storm_and_recovery_without_traffic)
{
    char settings[256];
    snprintf(settings, sizeof(settings),
             "healthCheckInterval = \"1h\"; retryDelay = \"%dms\"; maxRetries = 2; "
             "acquireTimeout = \"2s\"; timeout = \"2s\";", STORM_RETRY_MS);
    struct h_opts o = { .max_open_conns = 4, .pool_settings = settings };
    struct storm_client cl[STORM_CLIENTS];
    atomic_bool stop;

    use_second_server();
    h_start(&o);
    dbpool_conn *c = h_connect();
    cr_assert_eq(h_scalar(c, "SELECT 1"), 1);
    memset(cl, 0, sizeof(cl));
    atomic_init(&stop, false);
    for (int i = 0; i < STORM_CLIENTS; i++) {
        cl[i].c = h_connect();
        cl[i].stop = &stop;
    }

    size_t log_mark = log_size();
    cr_assert_eq(run_harness("pause", second_server, NULL, 0), 0, "could not stop PostgreSQL");
    cr_assert(H_AWAIT(h_health_status() == 503, 5000), "/health not 503 with the server stopped");
    /* maxRetries 2: the pool is down after three failures (~0.3 s). */
    bool down = H_AWAIT(pool_num_or_nan("app", "down", NULL) == 1, 5000);

    double attempts0 = pool_num_or_nan("app", "totals", "connect_attempts");
    double errors0 = h_pool_stat("app", "totals", "connect_errors");
    uint64_t t0 = h_now_ms();
    for (int i = 0; i < STORM_CLIENTS; i++)
        cr_assert_eq(pthread_create(&cl[i].tid, NULL, storm_main, &cl[i]), 0);
    h_sleep_ms(STORM_MS);   /* the duration under test: a storm of this length */
    atomic_store(&stop, true);
    for (int i = 0; i < STORM_CLIENTS; i++)
        cr_assert_eq(pthread_join(cl[i].tid, NULL), 0);
    uint64_t window = h_now_ms() - t0;
    double attempts = pool_num_or_nan("app", "totals", "connect_attempts") - attempts0;
    double errors = h_pool_stat("app", "totals", "connect_errors") - errors0;

    int requests = 0, unavailable = 0, other = 0, first_other = -1;
    uint64_t slowest = 0;
    for (int i = 0; i < STORM_CLIENTS; i++) {
        requests += cl[i].requests;
        unavailable += cl[i].unavailable;
        other += cl[i].other;
        if (cl[i].other && first_other < 0)
            first_other = i;
        if (cl[i].slowest_ms > slowest)
            slowest = cl[i].slowest_ms;
    }
    int allowed = attempts_allowed(window, STORM_RETRY_MS);
    cr_log_info("storm: %d requests in %llu ms (%d UNAVAILABLE), slowest %llu ms; %g connect "
                "attempts, %g errors (schedule allows %d)", requests,
                (unsigned long long)window, unavailable, (unsigned long long)slowest, attempts,
                errors, allowed);
    cr_assert_leq(errors, allowed, "%g failed connect attempts in %llu ms of %d clients "
                  "retrying (%d requests): the backoff schedule allows %d", errors,
                  (unsigned long long)window, STORM_CLIENTS, requests, allowed);
    cr_assert(down, "the pool never reported down (more than maxRetries failures)");
    cr_assert_leq(attempts, allowed, "%g connect attempts in %llu ms; the schedule allows %d",
                  attempts, (unsigned long long)window, allowed);
    cr_assert_eq(other, 0, "%d of %d requests did not get UNAVAILABLE, first: %s: %s", other,
                 requests, dbpool_code_name(cl[first_other].other_err.code),
                 cl[first_other].other_err.message);
    cr_assert_gt(requests, STORM_CLIENTS * 10, "the clients were not retrying: %d requests",
                 requests);
    cr_assert_lt(slowest, 1000, "a request took %llu ms to fail (the pool is down: at once)",
                 (unsigned long long)slowest);
    const char *msg = dbpool_last_error(cl[0].c)->message;
    cr_assert(strstr(msg, "next in") && strstr(msg, "check that the database server"),
              "UNAVAILABLE does not say when the next attempt is or what to do: %s", msg);
    cr_assert_geq(h_pool_stat("app", "totals", "unavailable"), unavailable);
    for (int i = 0; i < STORM_CLIENTS; i++)
        dbpool_close(cl[i].c);

    /* Back, with no traffic: the backoff timer's next probe finds it. */
    cr_assert_eq(run_harness("resume", second_server, NULL, 0), 0,
                 "could not start PostgreSQL again");
    uint64_t t_up = h_now_ms();
    double next = recovery_bound_ms("app", STORM_RETRY_MS);
    bool up = H_AWAIT(h_health_status() == 200, (uint64_t)next + 2000);
    cr_assert(up, "/health still 503 %llu ms after the server came back (next attempt was "
              "due in %g ms, healthCheckInterval 1h)", (unsigned long long)(h_now_ms() - t_up),
              next);
    cr_log_info("/health 200 %llu ms after the server came back (next attempt was due in %g ms)",
                (unsigned long long)(h_now_ms() - t_up), next);
    cr_assert_eq(h_pool_stat("app", "down", NULL), 0);
    cr_assert_eq(h_pool_stat("app", "connect_failures", NULL), 0);
    cr_assert_eq(h_scalar(c, "SELECT 2"), 2, "statements fail after the server came back");

    char *episode;
    int lines = log_lines_since(log_mark, &episode);
    cr_assert_leq(lines, 6, "%d log lines (info and above) for one outage:\n%s", lines, episode);
    cr_assert_eq(count_in(episode, "event=pool_down"), 1, "%s", episode);
    cr_assert_eq(count_in(episode, "event=pool_recovered"), 1, "%s", episode);
    cr_assert_leq(count_in(episode, "level=warn event=connect_failed"), 1, "%s", episode);
    free(episode);
    dbpool_close(c);
    h_stop_ok();
}

/* The server refuses new connections while the pool's open ones keep
 * working (a role's CONNECTION LIMIT here; the same happens at the server's
 * max_connections): after maxRetries failures the pool is down, but a
 * request that finds every working connection busy waits for one instead
 * of failing at once — failing fast is for requests with nothing to wait
 * for. */
Test(pgresilience, down_pool_still_serves_on_its_working_connections)
{
    char extra[2048] = "";
    struct h_opts o = { .extra_pools = extra };

    use_second_server();
    add_pool(extra, sizeof(extra), "lim", NULL, 0, "tp_limited",
             "maxOpenConns = 3; healthCheckInterval = \"1h\"; retryDelay = \"100ms\"; "
             "maxRetries = 0; acquireTimeout = \"10s\"; timeout = \"2s\";");
    h_start(&o);
    dbpool_conn *adm = h_connect();
    h_exec(adm, "DROP ROLE IF EXISTS tp_limited");
    h_exec(adm, "CREATE ROLE tp_limited LOGIN");   /* not a superuser: limits apply */
    cr_assert(H_AWAIT(h_health_status() == 200, 10000), "pool lim did not connect");

    dbpool_conn *a = connect_pool("lim"), *b = connect_pool("lim");
    struct h_bg_query c = { .c = connect_pool("lim"), .sql = "SELECT 3" };
    must_ok(a, dbpool_begin(a, 0), "begin A");
    cr_assert_eq(h_scalar(a, "SELECT 1"), 1);
    must_ok(b, dbpool_begin(b, 0), "begin B");
    cr_assert_eq(h_scalar(b, "SELECT 2"), 2);
    cr_assert_eq(h_pool_stat("lim", "servers", "open"), 2, "expected A's and B's connections");
    h_exec(adm, "ALTER ROLE tp_limited CONNECTION LIMIT 2");

    h_bg_start(&c);   /* needs a third connection: refused */
    cr_assert(H_AWAIT(h_pool_stat("lim", "totals", "connect_errors") >= 1, 5000),
              "the third connection was not refused");
    cr_assert(H_AWAIT(h_pool_stat("lim", "clients", "waiting") == 1 || atomic_load(&c.done), 5000));
    cr_assert(!atomic_load(&c.done), "C failed at once (%s: %s) though two working "
              "connections will come back", dbpool_code_name(c.err.code), c.err.message);
    cr_assert(H_AWAIT(pool_num_or_nan("lim", "down", NULL) == 1, 5000),
              "pool lim is not down after its connection attempt was refused (maxRetries 0)");
    cr_assert(!atomic_load(&c.done), "C failed (%s: %s) though two working connections will "
              "come back", dbpool_code_name(c.err.code), c.err.message);
    must_ok(a, dbpool_commit(a), "commit A");
    cr_assert(H_AWAIT(atomic_load(&c.done), 5000), "C did not get A's connection");
    cr_assert_eq(pthread_join(c.tid, NULL), 0);
    cr_assert_eq(c.rc, 0, "C: %s: %s", dbpool_code_name(c.err.code), c.err.message);

    /* The limit lifted: the backoff timer's next attempt succeeds. */
    must_ok(b, dbpool_commit(b), "commit B");
    h_exec(adm, "ALTER ROLE tp_limited CONNECTION LIMIT -1");
    cr_assert(H_AWAIT(h_health_status() == 200, 10000), "pool lim did not recover");
    cr_assert_eq(h_pool_stat("lim", "down", NULL), 0);
    dbpool_close(c.c);
    dbpool_close(b);
    dbpool_close(a);
    dbpool_close(adm);
    h_stop_ok();
}

Test(pgresilience, connection_lifetime_and_idle_time)
{
    struct h_opts o = {
        .max_open_conns = 1,
        .pool_settings = "connMaxLifetime = \"300ms\"; connMaxIdleTime = \"300ms\";",
    };
    h_start(&o);
    dbpool_conn *c = h_connect();

    /* New transactions get a new backend once the lifetime has passed. */
    int64_t p1 = backend_pid(c);
    bool changed = H_AWAIT(backend_pid(c) != p1, 3000);
    cr_assert(changed, "pg_backend_pid() stayed %lld for 3 s with connMaxLifetime 300ms",
              (long long)p1);

    /* Never inside a transaction, however long it runs. */
    must_ok(c, dbpool_begin(c, 0), "begin");
    int64_t q1 = backend_pid(c);
    h_sleep_ms(600);   /* the duration under test, not a synchronisation */
    int64_t q2 = backend_pid(c);
    h_sleep_ms(100);
    cr_assert_eq(backend_pid(c), q1, "the backend changed inside a transaction");
    cr_assert_eq(q2, q1, "the backend changed inside a transaction");
    must_ok(c, dbpool_commit(c), "commit");
    /* Expired while bound: closed when released, not reused. */
    cr_assert_neq(backend_pid(c), q1, "an expired connection was reused after its transaction");

    /* Idle connections are closed after connMaxIdleTime. */
    bool closed = H_AWAIT(h_pool_stat("app", "servers", "open") == 0, 3000);
    cr_assert(closed, "the idle connection is still open (connMaxIdleTime 300ms)");
    cr_assert_eq(h_scalar(c, "SELECT 1"), 1, "no new connection after idle recycling");
    dbpool_close(c);
    h_stop_ok();
}

Test(pgresilience, client_vanishing_mid_statement_and_mid_transaction)
{
    char extra[2048] = "", marker[64], sql[256], t[64], ins[256], cnt[256];
    struct h_opts o = { .max_open_conns = 1, .extra_pools = extra };
    int64_t pid = 0;

    uniq(marker, sizeof(marker), "vanish_marker");
    add_admin_pool(extra, sizeof(extra));
    h_start(&o);
    dbpool_conn *adm = connect_pool("admin");
    dbpool_conn *c = h_connect();
    table(c, t, sizeof(t), "vanish");
    snprintf(ins, sizeof(ins), "INSERT INTO %s VALUES (1)", t);
    snprintf(cnt, sizeof(cnt), "SELECT count(*) FROM %s", t);
    h_create_table(c, t, "id int4");
    int64_t server_pid = backend_pid(c);
    dbpool_close(c);

    /* 1. Autocommit pg_sleep, socket closed: cancelled on the server, the
     *    connection goes back to the pool and is reused (not replaced). */
    double closes = h_pool_stat("app", "totals", "server_closes");
    int fd = h_raw_connect();
    h_raw_handshake(fd);
    snprintf(sql, sizeof(sql), "SELECT pg_sleep(30) /* %s */", marker);
    raw_send_query(fd, sql);
    cr_assert(H_AWAIT(active_with_marker(adm, marker, &pid) == 1, 10000),
              "pg_sleep never showed up in pg_stat_activity");
    cr_assert_eq(pid, server_pid);
    close(fd);
    bool gone = H_AWAIT(active_with_marker(adm, marker, NULL) == 0, 5000);
    cr_assert(gone, "the server still runs the vanished client's pg_sleep");
    cr_assert(H_AWAIT(h_pool_stat("app", "servers", "idle") == 1, 5000),
              "the connection did not go back to the pool");
    c = h_connect();
    cr_assert_eq(backend_pid(c), server_pid, "the connection was not reused");
    dbpool_close(c);

    /* 2. Row inserted in a transaction, socket closed: rolled back. */
    fd = h_raw_connect();
    h_raw_handshake(fd);
    raw_exec(fd, "BEGIN", 'T');
    raw_exec(fd, ins, 'T');
    close(fd);
    c = h_connect();   /* maxOpenConns 1: runs only once the rollback is done */
    cr_assert_eq(h_scalar(c, cnt), 0, "the vanished client's transaction was committed");
    cr_assert_eq(backend_pid(c), server_pid, "the connection was not reused");
    dbpool_close(c);

    /* 3. Inside a transaction with a row inserted, while pg_sleep runs. */
    fd = h_raw_connect();
    h_raw_handshake(fd);
    raw_exec(fd, "BEGIN", 'T');
    raw_exec(fd, ins, 'T');
    raw_send_query(fd, sql);
    cr_assert(H_AWAIT(active_with_marker(adm, marker, NULL) == 1, 10000),
              "pg_sleep never showed up in pg_stat_activity");
    close(fd);
    cr_assert(H_AWAIT(active_with_marker(adm, marker, NULL) == 0, 5000),
              "the server still runs the vanished client's pg_sleep");
    c = h_connect();
    cr_assert_eq(h_scalar(c, cnt), 0, "the vanished client's transaction was committed");
    cr_assert_eq(backend_pid(c), server_pid, "the connection was not reused");
    assert_txstate(c, 'I', "a fresh session");

    /* 4. Politely closed (dbpool_close) inside a transaction: the same. */
    dbpool_conn *d = h_connect();
    must_ok(d, dbpool_begin(d, 0), "begin");
    h_exec(d, ins);
    dbpool_close(d);
    cr_assert_eq(h_scalar(c, cnt), 0, "a closed session's transaction was committed");
    cr_assert_eq(h_pool_stat("app", "totals", "server_closes"), closes,
                 "server connections were closed instead of reused");
    cr_assert_eq(h_pool_stat("app", "servers", "open"), 1);
    drop_schema(c);
    dbpool_close(c);
    dbpool_close(adm);
    h_stop_ok();
}

/* ================================================================ status */

TestSuite(pgstatus, .init = pg_init, .fini = h_fini, .timeout = 120);

Test(pgstatus, pools_and_health_report_the_postgres_pool)
{
    struct h_opts o = { .max_open_conns = 3 };
    h_start(&o);
    dbpool_conn *a = h_connect(), *b = h_connect();
    char type[32];

    must_ok(a, dbpool_begin(a, 0), "begin A");
    must_ok(b, dbpool_begin(b, 0), "begin B");
    cr_assert_neq(backend_pid(a), backend_pid(b));
    char *j = h_pool_json("app");
    cr_assert(H_JSON_STR(j, type, "type"), "%s", j);
    cr_assert_str_eq(type, "postgres");
    cr_assert_eq(H_JSON_NUM(j, "healthy"), 1, "%s", j);
    cr_assert_eq(H_JSON_NUM(j, "servers", "max"), 3, "%s", j);
    cr_assert_geq(H_JSON_NUM(j, "servers", "open"), 2, "%s", j);
    cr_assert_eq(H_JSON_NUM(j, "servers", "busy"), 2, "%s", j);
    cr_assert_eq(H_JSON_NUM(j, "clients", "connected"), 2, "%s", j);
    cr_assert_eq(H_JSON_NUM(j, "clients", "active"), 2, "%s", j);
    free(j);
    must_ok(a, dbpool_commit(a), "commit A");
    must_ok(b, dbpool_commit(b), "commit B");
    j = h_pool_json("app");
    cr_assert_eq(H_JSON_NUM(j, "servers", "busy"), 0, "%s", j);
    cr_assert_geq(H_JSON_NUM(j, "servers", "idle"), 2, "%s", j);
    cr_assert_geq(H_JSON_NUM(j, "totals", "statements"), 4, "%s", j);
    cr_assert_geq(H_JSON_NUM(j, "totals", "connects"), 2, "%s", j);
    free(j);
    char *body = NULL;
    int st = h_http_get("/health", &body);
    cr_assert_eq(st, 200, "%s", body);
    cr_assert_not_null(strstr(body, "\"ok\""), "%s", body);
    free(body);
    dbpool_close(a);
    dbpool_close(b);
    h_stop_ok();
}

static void write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fputs(content, f);
    cr_assert_eq(fclose(f), 0);
}

static void assert_absent(const char *where, const char *text, const char *needle)
{
    const char *hit = strstr(text, needle);
    cr_assert_null(hit, "%s contains the password \"%s\": ...%.200s", where, needle,
                   hit ? (hit - text > 100 ? hit - 100 : text) : "");
}

/* Password authentication through passwordFile (role dbpool_pw, SCRAM):
 * the right password works, a wrong one fails, and neither password shows
 * up in the log (at debug level) or in any status endpoint. */
Test(pgstatus, passwords_stay_out_of_the_log_and_status)
{
    char dir[] = "/tmp/dbpool-pw.XXXXXX";
    char good[128], bad[128], wrong[64], settings[512], extra[4096] = "";
    struct h_opts o = { .extra_pools = extra };

    cr_assert_not_null(mkdtemp(dir));
    snprintf(good, sizeof(good), "%s/good.pw", dir);
    snprintf(bad, sizeof(bad), "%s/bad.pw", dir);
    snprintf(wrong, sizeof(wrong), "WrongPw-%d-Zz", (int)getpid());
    write_file(good, "secret\n");   /* pg-harness.sh's password for dbpool_pw */
    write_file(bad, wrong);
    snprintf(settings, sizeof(settings), "passwordFile = \"%s\"; maxOpenConns = 2;", good);
    add_pool(extra, sizeof(extra), "pwgood", NULL, 0, "dbpool_pw", settings);
    snprintf(settings, sizeof(settings), "passwordFile = \"%s\"; maxRetries = 0; "
             "retryDelay = \"50ms\"; acquireTimeout = \"1s\"; maxOpenConns = 2;", bad);
    add_pool(extra, sizeof(extra), "pwbad", NULL, 0, "dbpool_pw", settings);
    h_start(&o);

    dbpool_conn *c = connect_pool("pwgood");
    dbpool_result *r = h_query(c, "SELECT current_user::text", NULL, 0);
    const dbpool_value *v = dbpool_result_value(r, 0, 0);
    cr_assert(v->type == DBPOOL_TEXT && strcmp(v->u.s.ptr, "dbpool_pw") == 0,
              "current_user is not dbpool_pw");
    dbpool_result_free(r);
    dbpool_close(c);

    c = connect_pool("pwbad");
    int rc = dbpool_exec(c, "SELECT 1");
    h_expect_error(c, rc, DBPOOL_E_UNAVAILABLE, "pool with a wrong password");
    cr_assert_not_null(strstr(dbpool_last_error(c)->message, "password authentication failed"),
                       "%s", dbpool_last_error(c)->message);
    assert_absent("the error message", dbpool_last_error(c)->message, wrong);
    assert_absent("the error message", dbpool_last_error(c)->message, "secret");
    dbpool_close(c);

    static const char *const paths[] = { "/health", "/pools", "/stats", "/metrics" };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char *body = NULL, where[64];
        h_http_get(paths[i], &body);
        snprintf(where, sizeof(where), "GET %s", paths[i]);
        assert_absent(where, body, wrong);
        assert_absent(where, body, "secret");
        if (strcmp(paths[i], "/pools") == 0)
            cr_assert_not_null(strstr(body, "password authentication failed"),
                               "/pools does not show pwbad's error: %s", body);
        free(body);
    }
    h_stop_ok();
    char *log = h_read_log();
    cr_assert_not_null(strstr(log, "password authentication failed"),
                       "the failed authentication is not logged");
    assert_absent("the daemon log", log, wrong);
    assert_absent("the daemon log", log, "secret");
    free(log);
    unlink(good);
    unlink(bad);
    rmdir(dir);
}

/* passwordFile is read once, when the configuration is loaded (no file I/O
 * on the event loop at connect): rewriting the file with a wrong password,
 * or deleting it, changes nothing for the running daemon. maxIdleConns = 0
 * closes every released connection, so each statement connects anew (a new
 * backend pid proves it). */
Test(pgstatus, password_file_is_read_at_load)
{
    char dir[] = "/tmp/dbpool-pwl.XXXXXX";
    char pwfile[128], settings[512], extra[2048] = "";
    struct h_opts o = { .extra_pools = extra };
    int64_t pid1, pid2, pid3;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(pwfile, sizeof(pwfile), "%s/app.pw", dir);
    write_file(pwfile, "secret\n");   /* pg-harness.sh's password for dbpool_pw */
    snprintf(settings, sizeof(settings), "passwordFile = \"%s\"; maxOpenConns = 1; "
             "maxIdleConns = 0; maxRetries = 0; acquireTimeout = \"5s\";", pwfile);
    add_pool(extra, sizeof(extra), "pwload", NULL, 0, "dbpool_pw", settings);
    h_start(&o);

    dbpool_conn *c = connect_pool("pwload");
    pid1 = backend_pid(c);
    write_file(pwfile, "WrongPw-rotated\n");
    pid2 = backend_pid(c);      /* a new connection, with the secret loaded at start */
    cr_assert_neq(pid1, pid2, "the second statement did not open a new connection");
    cr_assert_eq(unlink(pwfile), 0);
    pid3 = backend_pid(c);
    cr_assert_neq(pid2, pid3, "the third statement did not open a new connection");
    dbpool_close(c);
    h_stop_ok();
    rmdir(dir);
}

/* ================================================================ statement cache */

/* The driver prepares a statement on its server connection the second time
 * that connection sees it (dbpool_s<N>), executes it by name afterwards,
 * keeps at most statementCacheSize of them (LRU; evicted ones are
 * deallocated before the next PREPARE outside a transaction), prepares
 * again and retries once when the server lost the statement (26000) or its
 * plan no longer fits (0A000), and forgets everything after a user's
 * DISCARD / DEALLOCATE. Every test runs on ONE server connection
 * (maxOpenConns = 1) and looks at that session's pg_prepared_statements
 * through the daemon, with a probe that is itself never cached: a user
 * prepared statement run with EXECUTE (not a statement kind the cache
 * takes), so looking does not change what is looked at. */
TestSuite(pgcache, .init = pg_init, .fini = h_fini, .timeout = 120);

#define PROBE_NAME "tp_probe"
#define MAX_PREPARED 64

struct prepared {
    size_t n;
    char name[MAX_PREPARED][32];
    char stmt[MAX_PREPARED][512];
    char types[MAX_PREPARED][128];
};

/* (Re)create the probe; needed again after anything that drops the
 * session's prepared statements (DISCARD ALL, DEALLOCATE ALL). */
static void install_probe(dbpool_conn *c)
{
    h_exec(c, "PREPARE " PROBE_NAME " AS SELECT name::text, statement::text, "
              "parameter_types::text FROM pg_prepared_statements "
              "WHERE name ~ '^dbpool_s[0-9]+$' ORDER BY substr(name, 9)::int8");
}

static void copy_text(char *dst, size_t len, const dbpool_value *v)
{
    cr_assert_eq(v->type, DBPOOL_TEXT, "probe column of type %s", dbpool_type_name(v->type));
    cr_assert_lt(v->u.s.len, len, "probe value too long: %.*s", (int)v->u.s.len, v->u.s.ptr);
    memcpy(dst, v->u.s.ptr, v->u.s.len);
    dst[v->u.s.len] = '\0';
}

/* The statements the daemon has prepared on this session. */
static void prepared(dbpool_conn *c, struct prepared *p)
{
    dbpool_result *r = h_query(c, "EXECUTE " PROBE_NAME, NULL, 0);

    memset(p, 0, sizeof(*p));
    p->n = dbpool_result_nrows(r);
    cr_assert_leq(p->n, MAX_PREPARED, "%zu prepared statements", p->n);
    for (size_t i = 0; i < p->n; i++) {
        copy_text(p->name[i], sizeof(p->name[i]), dbpool_result_value(r, i, 0));
        copy_text(p->stmt[i], sizeof(p->stmt[i]), dbpool_result_value(r, i, 1));
        copy_text(p->types[i], sizeof(p->types[i]), dbpool_result_value(r, i, 2));
    }
    dbpool_result_free(r);
}

static size_t n_prepared(dbpool_conn *c)
{
    struct prepared p;
    prepared(c, &p);
    return p.n;
}

/* Index of the prepared statement with this text (and, unless NULL, these
 * parameter types, as PostgreSQL prints them: "{bigint}"); -1 if none.
 * Asserts there is at most one. */
static int find_prepared(const struct prepared *p, const char *sql, const char *types)
{
    int found = -1;
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->stmt[i], sql) != 0 || (types && strcmp(p->types[i], types) != 0))
            continue;
        cr_assert_eq(found, -1, "prepared twice: %s (%s and %s)", sql, p->name[found], p->name[i]);
        found = (int)i;
    }
    return found;
}

/* The name the statement is prepared under ("" when it is not). */
static const char *prepared_name(const struct prepared *p, const char *sql)
{
    int i = find_prepared(p, sql, NULL);
    return i < 0 ? "" : p->name[i];
}

static void start_one_conn(const char *pool_settings)
{
    struct h_opts o = { .max_open_conns = 1, .pool_settings = pool_settings };
    h_start(&o);
}

/* sql (one int8 parameter, returning one int8) run with x must give want. */
static void expect_int_result(dbpool_conn *c, const char *sql, int64_t x, int64_t want)
{
    dbpool_value p = dbpool_int(x);
    dbpool_result *r = h_query(c, sql, &p, 1);
    cr_assert_eq(dbpool_result_nrows(r), 1, "%s: %zu rows", sql, dbpool_result_nrows(r));
    cr_assert_eq(val(r, 0, 0, DBPOOL_INT64)->u.i, want, "%s with %lld", sql, (long long)x);
    dbpool_result_free(r);
}

/* "SELECT id, v FROM t WHERE id >= $1 ORDER BY id" over rows 1 a, 2 b, 3 c. */
static void expect_rows_from(dbpool_conn *c, const char *sql, dbpool_value from, int64_t first)
{
    static const char *const v[] = { "a", "b", "c" };
    dbpool_result *r = h_query(c, sql, &from, 1);
    cr_assert_eq(dbpool_result_ncols(r), 2);
    cr_assert_eq(dbpool_result_nrows(r), (size_t)(4 - first), "%s: %zu rows from %lld", sql,
                 dbpool_result_nrows(r), (long long)first);
    for (int64_t id = first; id <= 3; id++) {
        cr_assert_eq(val(r, (size_t)(id - first), 0, DBPOOL_INT64)->u.i, id);
        expect_text(r, (size_t)(id - first), 1, v[id - 1]);
    }
    dbpool_result_free(r);
}

/* (a) Once: not prepared. Twice: prepared (with the declared parameter
 * type), and from then on executed under that one name. */
Test(pgcache, prepared_on_the_second_run_and_executed_by_name_after)
{
    char t[64], ins[256], q[256], other[256], name[32];
    struct prepared p;

    start_one_conn(NULL);
    dbpool_conn *c = h_connect();
    table(c, t, sizeof(t), "cache_a");
    h_create_table(c, t, "id int8 PRIMARY KEY, v text");
    snprintf(ins, sizeof(ins), "INSERT INTO %s VALUES (1, 'a'), (2, 'b'), (3, 'c')", t);
    h_exec(c, ins);
    install_probe(c);
    cr_assert_eq(n_prepared(c), 0, "statements prepared before any ran twice");

    snprintf(q, sizeof(q), "SELECT id, v FROM %s WHERE id >= $1 ORDER BY id", t);
    expect_rows_from(c, q, dbpool_int(2), 2);
    cr_assert_eq(n_prepared(c), 0, "a statement run once was prepared");

    expect_rows_from(c, q, dbpool_int(1), 1);
    prepared(c, &p);
    cr_assert_eq(p.n, 1, "a statement run twice: %zu prepared, expected 1", p.n);
    int i = find_prepared(&p, q, NULL);
    cr_assert_geq(i, 0, "the prepared statement is not the one run twice: %s", p.stmt[0]);
    cr_assert_str_eq(p.types[i], "{bigint}", "declared parameter types");
    snprintf(name, sizeof(name), "%s", p.name[i]);

    for (int64_t from = 1; from <= 3; from++) {
        expect_rows_from(c, q, dbpool_int(from), from);
        prepared(c, &p);
        cr_assert_eq(p.n, 1, "run %lld: %zu prepared", (long long)from + 2, p.n);
        cr_assert_str_eq(prepared_name(&p, q), name, "prepared again instead of run by name");
    }

    /* The same SQL with a float8 parameter is another statement: first
     * sight again, then prepared beside the int8 one. */
    expect_rows_from(c, q, dbpool_float(2.0), 2);
    cr_assert_eq(n_prepared(c), 1, "a new parameter type was prepared on first sight");
    expect_rows_from(c, q, dbpool_float(2.5), 3);
    prepared(c, &p);
    cr_assert_eq(p.n, 2, "%zu prepared after the float8 variant ran twice", p.n);
    cr_assert_geq(find_prepared(&p, q, "{bigint}"), 0);
    cr_assert_geq(find_prepared(&p, q, "{\"double precision\"}"), 0, "float8 variant: %s %s",
                  p.types[0], p.types[1]);

    /* A different statement run once changes nothing. */
    snprintf(other, sizeof(other), "SELECT count(*) FROM %s", t);
    cr_assert_eq(h_scalar(c, other), 3);
    cr_assert_eq(n_prepared(c), 2);
    expect_rows_from(c, q, dbpool_int(3), 3);
    prepared(c, &p);
    cr_assert_eq(p.n, 2);
    i = find_prepared(&p, q, "{bigint}");
    cr_assert_geq(i, 0);
    cr_assert_str_eq(p.name[i], name, "the int8 statement was prepared again");

    /* The status socket counts both. */
    cr_assert_geq(H_STATUS_NUM("/pools", "totals", "prepares"), 2);
    cr_assert_geq(H_STATUS_NUM("/pools", "totals", "cached_executions"), 2);
    cr_assert_geq(H_STATUS_NUM("/stats", "totals", "prepares"), 2);

    drop_schema(c);
    dbpool_close(c);
    h_stop_ok();
}

/* (b) statementCacheSize = 2. The least recently USED statement is the one
 * evicted, and it is deallocated on the server before the next PREPARE.
 * So outside a transaction the session holds at most 3 = size + 1 of our
 * statements: the cached ones plus at most one evicted by the last PREPARE
 * and not yet deallocated. */
Test(pgcache, lru_eviction_bounds_the_server_statements)
{
    enum { SIZE = 2, BOUND = SIZE + 1, NSTMT = 5 };
    char sa[64], sb[64], sc[64], sd[64], a_name[32], s[NSTMT][64];
    struct prepared p;

    start_one_conn("statementCacheSize = 2;");
    dbpool_conn *c = h_connect();
    install_probe(c);
    snprintf(sa, sizeof(sa), "SELECT $1::int8 + 1000");
    snprintf(sb, sizeof(sb), "SELECT $1::int8 + 2000");
    snprintf(sc, sizeof(sc), "SELECT $1::int8 + 3000");
    snprintf(sd, sizeof(sd), "SELECT $1::int8 + 4000");

    expect_int_result(c, sa, 1, 1001);
    expect_int_result(c, sa, 2, 1002);   /* A prepared */
    expect_int_result(c, sb, 3, 2003);
    expect_int_result(c, sb, 4, 2004);   /* B prepared: the cache is full */
    prepared(c, &p);
    cr_assert_eq(p.n, 2, "A and B run twice: %zu prepared", p.n);
    snprintf(a_name, sizeof(a_name), "%s", prepared_name(&p, sa));
    cr_assert_str_neq(a_name, "", "A is not prepared");
    cr_assert_str_neq(prepared_name(&p, sb), "", "B is not prepared");

    expect_int_result(c, sa, 5, 1005);   /* A used: B is now the least recently used */
    expect_int_result(c, sc, 6, 3006);
    expect_int_result(c, sc, 7, 3007);   /* C prepared, evicts B */
    prepared(c, &p);
    cr_assert_leq(p.n, BOUND, "%zu prepared with statementCacheSize = %d", p.n, SIZE);
    cr_assert_str_eq(prepared_name(&p, sa), a_name, "A (recently used) lost its statement");
    cr_assert_str_neq(prepared_name(&p, sc), "", "C is not prepared");

    expect_int_result(c, sa, 8, 1008);   /* by name: A stays the most recently used */
    expect_int_result(c, sd, 9, 4009);
    expect_int_result(c, sd, 10, 4010);  /* D: deallocates B first, then evicts C */
    prepared(c, &p);
    cr_assert_leq(p.n, BOUND, "%zu prepared with statementCacheSize = %d", p.n, SIZE);
    cr_assert_str_eq(prepared_name(&p, sb), "", "evicted B was never deallocated (%s)",
                     prepared_name(&p, sb));
    cr_assert_str_eq(prepared_name(&p, sa), a_name,
                     "A was evicted or prepared again although it was used most recently");
    cr_assert_str_neq(prepared_name(&p, sd), "", "D is not prepared");

    /* More statements than the cache holds, round and round: results stay
     * right and the server never holds more than size + 1 of them. */
    for (int i = 0; i < NSTMT; i++)
        snprintf(s[i], sizeof(s[i]), "SELECT $1::int8 * %d", i + 2);
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < NSTMT; i++) {
            int64_t x = round * 100 + i;
            expect_int_result(c, s[i], x, x * (i + 2));
            size_t n = n_prepared(c);
            cr_assert_leq(n, BOUND, "round %d statement %d: %zu prepared with "
                          "statementCacheSize = %d", round, i, n, SIZE);
            cr_assert_geq(n, SIZE, "round %d statement %d: only %zu prepared: the cache "
                          "forgot statements the server still has", round, i, n);
        }
    }
    /* Cycling through 5 statements with room for 2 must prepare some of
     * them on the server (each is met again after 4 others). */
    prepared(c, &p);
    int ours = 0;
    for (int i = 0; i < NSTMT; i++)
        ours += find_prepared(&p, s[i], NULL) >= 0;
    cr_assert_geq(ours, 1, "none of the cycled statements is prepared");

    /* Two statements used in turn fit in the cache: once prepared, each
     * keeps its one name. */
    expect_int_result(c, sa, 1, 1001);
    expect_int_result(c, sa, 2, 1002);
    expect_int_result(c, sb, 3, 2003);
    expect_int_result(c, sb, 4, 2004);
    prepared(c, &p);
    char an[32], bn[32];
    snprintf(an, sizeof(an), "%s", prepared_name(&p, sa));
    snprintf(bn, sizeof(bn), "%s", prepared_name(&p, sb));
    cr_assert_str_neq(an, "", "A not prepared");
    cr_assert_str_neq(bn, "", "B not prepared");
    for (int i = 0; i < 5; i++) {
        expect_int_result(c, sa, i, 1000 + i);
        expect_int_result(c, sb, i, 2000 + i);
        prepared(c, &p);
        cr_assert_leq(p.n, BOUND);
        cr_assert_str_eq(prepared_name(&p, sa), an, "A prepared again while it fits");
        cr_assert_str_eq(prepared_name(&p, sb), bn, "B prepared again while it fits");
    }
    dbpool_close(c);
    h_stop_ok();
}

/* (c) statementCacheSize = 0: nothing is ever prepared. */
Test(pgcache, size_zero_turns_caching_off)
{
    const char *q = "SELECT $1::int8 * 3";

    start_one_conn("statementCacheSize = 0;");
    dbpool_conn *c = h_connect();
    install_probe(c);
    for (int i = 0; i < 6; i++) {
        expect_int_result(c, q, i, i * 3);
        cr_assert_eq(n_prepared(c), 0, "run %d: prepared with statementCacheSize = 0", i + 1);
    }
    cr_assert_eq(h_scalar(c, "SELECT 7::int8"), 7);
    cr_assert_eq(h_scalar(c, "SELECT 7::int8"), 7);
    cr_assert_eq(h_scalar(c, "SELECT 7::int8"), 7);
    cr_assert_eq(n_prepared(c), 0, "prepared with statementCacheSize = 0");
    dbpool_close(c);
    h_stop_ok();
}

/* SELECT * over (id 1, a 'x', then b 7, c 8 as columns get added). */
static void expect_star(dbpool_conn *c, const char *sql, size_t ncols)
{
    static const char *const names[] = { "id", "a", "b", "c" };
    dbpool_result *r = h_query(c, sql, NULL, 0);
    cr_assert_eq(dbpool_result_ncols(r), ncols, "%s: %zu columns, expected %zu", sql,
                 dbpool_result_ncols(r), ncols);
    cr_assert_eq(dbpool_result_nrows(r), 1);
    for (size_t i = 0; i < ncols; i++)
        cr_assert_str_eq(dbpool_result_columns(r)[i].name, names[i]);
    cr_assert_eq(val(r, 0, 0, DBPOOL_INT64)->u.i, 1);
    expect_text(r, 0, 1, "x");
    if (ncols > 2)
        cr_assert_eq(val(r, 0, 2, DBPOOL_INT64)->u.i, 7);
    if (ncols > 3)
        cr_assert_eq(val(r, 0, 3, DBPOOL_INT64)->u.i, 8);
    dbpool_result_free(r);
}

/* One server connection for "app", plus the "admin" pool: DDL run there
 * is invisible to app's pool (another pool: its caches are not told). */
static dbpool_conn *start_one_conn_with_admin(int max_open)
{
    static char extra[2048];
    struct h_opts o = { .max_open_conns = max_open, .extra_pools = extra };

    extra[0] = '\0';
    add_admin_pool(extra, sizeof(extra));
    h_start(&o);
    return connect_pool("admin");
}

/* (d) A column added under a cached SELECT * by another pool's session:
 * the server refuses the old plan (0A000 "cached plan must not change
 * result type"). Outside a transaction, and as the first statement of one
 * (the daemon sent BEGIN with it: nothing reached the client yet), the
 * daemon prepares it afresh and runs it again: the client sees the new
 * column. As a later statement of a transaction it cannot (the transaction
 * has failed and the client saw its earlier work): the client gets the
 * 0A000, and after ROLLBACK the statement works. */
Test(pgcache, column_added_under_a_cached_select_star)
{
    char t[64], sql[256], q[256], name1[32], name2[32];
    struct prepared p;

    dbpool_conn *adm = start_one_conn_with_admin(1);
    dbpool_conn *c = h_connect();
    table(c, t, sizeof(t), "cache_d");
    h_create_table(c, t, "id int8 PRIMARY KEY, a text");
    snprintf(sql, sizeof(sql), "INSERT INTO %s VALUES (1, 'x')", t);
    h_exec(c, sql);
    install_probe(c);
    snprintf(q, sizeof(q), "SELECT * FROM %s ORDER BY id", t);
    expect_star(c, q, 2);
    expect_star(c, q, 2);
    prepared(c, &p);
    cr_assert_eq(p.n, 1, "SELECT * run twice: %zu prepared", p.n);
    snprintf(name1, sizeof(name1), "%s", prepared_name(&p, q));
    cr_assert_str_neq(name1, "", "SELECT * is not prepared");

    snprintf(sql, sizeof(sql), "ALTER TABLE %s ADD COLUMN b int8 DEFAULT 7", t);
    h_exec(adm, sql);
    expect_star(c, q, 3);   /* 0A000 from the old plan, prepared again, retried */
    assert_txstate(c, 'I', "after the retried SELECT *");
    prepared(c, &p);
    cr_assert_eq(p.n, 1, "%zu prepared after the re-prepare: the old statement was not "
                 "deallocated", p.n);
    snprintf(name2, sizeof(name2), "%s", prepared_name(&p, q));
    cr_assert_str_neq(name2, "", "SELECT * is no longer prepared");
    cr_assert_str_neq(name2, name1, "the stale statement is still in use");
    expect_star(c, q, 3);
    prepared(c, &p);
    cr_assert_eq(p.n, 1);
    cr_assert_str_eq(prepared_name(&p, q), name2, "prepared again without a reason");

    /* The first statement of a transaction: replayed, invisibly. */
    snprintf(sql, sizeof(sql), "ALTER TABLE %s ADD COLUMN c int8 DEFAULT 8", t);
    h_exec(adm, sql);
    must_ok(c, dbpool_begin(c, 0), "begin");
    expect_star(c, q, 4);
    assert_txstate(c, 'T', "after the replayed first statement");
    must_ok(c, dbpool_commit(c), "commit after the replayed first statement");
    expect_star(c, q, 4);

    /* A later statement of a transaction: the documented remaining case. */
    snprintf(sql, sizeof(sql), "ALTER TABLE %s DROP COLUMN c", t);
    h_exec(adm, sql);   /* (our cached SELECT * still expects c) */
    expect_star(c, q, 3);
    expect_star(c, q, 3);
    snprintf(sql, sizeof(sql), "ALTER TABLE %s ADD COLUMN c int8 DEFAULT 8", t);
    must_ok(c, dbpool_begin(c, 0), "begin");
    cr_assert_eq(h_scalar(c, "SELECT 1"), 1);
    h_exec(adm, sql);
    dbpool_result *r = NULL;
    int rc = dbpool_query(c, q, NULL, 0, &r);
    const dbpool_error *e = dbpool_last_error(c);
    cr_assert_eq(rc, -1, "SELECT * with a stale plan succeeded as a later statement");
    cr_assert_null(r);
    cr_assert_eq(e->code, DBPOOL_E_SQL, "%s [%s] %s", dbpool_code_name(e->code), e->sqlstate,
                 e->message);
    cr_assert_str_eq(e->sqlstate, "0A000", "%s", e->message);
    cr_assert_not_null(strstr(e->message, "cached plan must not change result type"), "%s",
                       e->message);
    assert_txstate(c, 'E', "after the stale plan failed the transaction");
    must_ok(c, dbpool_rollback(c), "rollback");
    assert_txstate(c, 'I', "after ROLLBACK");
    expect_star(c, q, 4);
    prepared(c, &p);
    cr_assert_eq(p.n, 1, "%zu prepared after the transaction's stale statement", p.n);
    cr_assert_str_neq(prepared_name(&p, q), "");
    expect_star(c, q, 4);

    drop_schema(c);
    dbpool_close(c);
    dbpool_close(adm);
    h_stop_ok();
}

/* Every kind of DDL that changes what a cached SELECT * returns, or drops
 * and recreates its table, in three places: DDL from another pool, then the
 * statement in autocommit and as the first statement of a transaction
 * (transparent re-prepare); DDL through this pool on another of its
 * connections, then the statement as a LATER statement of a transaction
 * (the pool forgot every connection's cache: nothing stale is run). */
struct ddl_case {
    const char *name;
    const char *ddl;           /* '@' stands for the table */
    size_t ncols;              /* columns of SELECT * afterwards */
    const char *last_col;      /* name of the last column afterwards */
};

static const struct ddl_case ddl_cases[] = {
    { "add column", "ALTER TABLE @ ADD COLUMN b int8 DEFAULT 7", 3, "b" },
    { "drop column", "ALTER TABLE @ DROP COLUMN a", 1, "id" },
    { "change a column's type", "ALTER TABLE @ ALTER COLUMN a TYPE varchar(10)", 2, "a" },
    { "rename a column", "ALTER TABLE @ RENAME COLUMN a TO a2", 2, "a2" },
    { "drop and recreate the table",
      "DROP TABLE @; CREATE TABLE @ (id int8, a text, z int8); "
      "INSERT INTO @ VALUES (1, 'x', 3)", 3, "z" },
};

enum ddl_place { DDL_AUTOCOMMIT, DDL_FIRST_IN_TX, DDL_POOL_LATER_IN_TX };

static void expect_shape(dbpool_conn *c, const char *q, const struct ddl_case *k, const char *ctx)
{
    dbpool_result *r = NULL;
    int rc = dbpool_query(c, q, NULL, 0, &r);
    const dbpool_error *e = dbpool_last_error(c);

    cr_assert_eq(rc, 0, "%s, %s: %s [%s] %s", k->name, ctx, dbpool_code_name(e->code),
                 e->sqlstate, e->message);
    cr_assert_eq(dbpool_result_ncols(r), k->ncols, "%s, %s: %zu columns", k->name, ctx,
                 dbpool_result_ncols(r));
    cr_assert_str_eq(dbpool_result_columns(r)[k->ncols - 1].name, k->last_col, "%s, %s",
                     k->name, ctx);
    cr_assert_eq(dbpool_result_nrows(r), 1, "%s, %s", k->name, ctx);
    dbpool_result_free(r);
}

/* Run DDL ('@' replaced by the table t) split at ';', one statement per
 * QUERY. */
static void run_ddl(dbpool_conn *c, const char *t, const char *ddl)
{
    char sql[512], *save = NULL;
    size_t n = 0;

    for (const char *p = ddl; *p; p++) {
        const char *add = *p == '@' ? t : (char[2]){ *p, 0 };
        size_t k = strlen(add);
        cr_assert_lt(n + k, sizeof(sql));
        memcpy(sql + n, add, k);
        n += k;
    }
    sql[n] = '\0';
    for (char *st = strtok_r(sql, ";", &save); st; st = strtok_r(NULL, ";", &save))
        h_exec(c, st);
}

static void ddl_case_run(dbpool_conn *adm, dbpool_conn *c, const struct ddl_case *k,
                         enum ddl_place place, int n)
{
    char base[32], t[64], sql[256], q[256];
    static const char *const places[] = { "autocommit", "first statement of a transaction",
                                          "later statement, DDL through the pool" };
    dbpool_conn *holder = NULL, *other = NULL;

    snprintf(base, sizeof(base), "ddl_%d_%d", n, (int)place);
    table(c, t, sizeof(t), base);
    h_create_table(c, t, "id int8, a text");
    snprintf(sql, sizeof(sql), "INSERT INTO %s VALUES (1, 'x')", t);
    h_exec(c, sql);
    snprintf(q, sizeof(q), "SELECT * FROM %s", t);
    h_exec(c, q);
    h_exec(c, q);   /* prepared on c's connection (the pool reuses the last idle one) */
    if (place == DDL_POOL_LATER_IN_TX) {
        /* Hold c's connection so the DDL runs on the pool's other one. */
        holder = h_connect();
        must_ok(holder, dbpool_begin(holder, 0), "begin (holder)");
        cr_assert_eq(h_scalar(holder, "SELECT 1"), 1);
        other = h_connect();
        run_ddl(other, t, k->ddl);
        must_ok(holder, dbpool_commit(holder), "commit (holder)");   /* idle on top again */
        must_ok(c, dbpool_begin(c, 0), "begin");
        cr_assert_eq(h_scalar(c, "SELECT 2"), 2);
    } else {
        run_ddl(adm, t, k->ddl);
        if (place == DDL_FIRST_IN_TX)
            must_ok(c, dbpool_begin(c, 0), "begin");
    }
    expect_shape(c, q, k, places[place]);
    if (place != DDL_AUTOCOMMIT) {
        assert_txstate(c, 'T', places[place]);
        must_ok(c, dbpool_commit(c), "commit");
    }
    expect_shape(c, q, k, "again");
    if (holder)
        dbpool_close(holder);
    if (other)
        dbpool_close(other);
}

Test(pgcache, every_kind_of_ddl_under_a_cached_statement)
{
    dbpool_conn *adm = start_one_conn_with_admin(2);
    dbpool_conn *c = h_connect();

    for (size_t i = 0; i < sizeof(ddl_cases) / sizeof(ddl_cases[0]); i++)
        for (int place = DDL_AUTOCOMMIT; place <= DDL_POOL_LATER_IN_TX; place++)
            ddl_case_run(adm, c, &ddl_cases[i], (enum ddl_place)place, (int)i);
    drop_schema(c);
    dbpool_close(c);
    dbpool_close(adm);
    h_stop_ok();
}

/* A statement prepared inside a transaction that is rolled back stays
 * prepared (PREPARE is not transactional), and so does one used in a
 * transaction that fails: later transactions run it by name under the same
 * name (a statement lost there could not be retried). */
Test(pgcache, prepared_inside_a_rolled_back_transaction_stays_usable)
{
    const char *q = "SELECT $1::int8 + 5";
    char name[32];
    struct prepared p;

    start_one_conn(NULL);
    dbpool_conn *c = h_connect();
    install_probe(c);
    must_ok(c, dbpool_begin(c, 0), "begin");
    expect_int_result(c, q, 1, 6);
    expect_int_result(c, q, 2, 7);   /* prepared inside the transaction */
    must_ok(c, dbpool_rollback(c), "rollback");
    prepared(c, &p);
    cr_assert_eq(p.n, 1, "%zu prepared after ROLLBACK", p.n);
    snprintf(name, sizeof(name), "%s", prepared_name(&p, q));
    cr_assert_str_neq(name, "");

    must_ok(c, dbpool_begin(c, 0), "begin");
    expect_int_result(c, q, 3, 8);
    expect_sql_error(c, "SELECT 1 / 0", "22012");
    must_ok(c, dbpool_rollback(c), "rollback");
    must_ok(c, dbpool_begin(c, 0), "begin");
    expect_int_result(c, q, 4, 9);
    must_ok(c, dbpool_commit(c), "commit");
    prepared(c, &p);
    cr_assert_eq(p.n, 1);
    cr_assert_str_eq(prepared_name(&p, q), name, "prepared again after a rolled back transaction");
    dbpool_close(c);
    h_stop_ok();
}

/* Run q1 and q2 (one int8 parameter each; q1 adds 1, q2 adds 2) twice. */
static void run_pair(dbpool_conn *c, const char *q1, const char *q2, int64_t x)
{
    for (int i = 0; i < 2; i++) {
        expect_int_result(c, q1, x + i, x + i + 1);
        expect_int_result(c, q2, x + i, x + i + 2);
    }
}

/* (e) The user's DISCARD ALL / DEALLOCATE ALL drop the session's prepared
 * statements, ours included: the cache forgets them and prepares afresh.
 * Checked inside a transaction, where running a statement the server no
 * longer has could not be retried. */
Test(pgcache, user_discard_all_and_deallocate_all)
{
    static const char *const resets[] = { "DISCARD ALL", "DEALLOCATE ALL",
                                          "  deallocate prepare all",
                                          "/* pool reset */ DISCARD ALL",
                                          "-- clean up\nDEALLOCATE /* every one */ ALL;" };
    const char *q1 = "SELECT $1::int8 + 1", *q2 = "SELECT $1::int8 + 2";
    struct prepared p;

    start_one_conn(NULL);
    dbpool_conn *c = h_connect();
    install_probe(c);
    for (size_t k = 0; k < sizeof(resets) / sizeof(resets[0]); k++) {
        char n1[32], n2[32];
        run_pair(c, q1, q2, 10);
        prepared(c, &p);
        cr_assert_eq(p.n, 2, "before %s: %zu prepared", resets[k], p.n);
        snprintf(n1, sizeof(n1), "%s", prepared_name(&p, q1));
        snprintf(n2, sizeof(n2), "%s", prepared_name(&p, q2));

        h_exec(c, resets[k]);
        install_probe(c);   /* dropped too */
        cr_assert_eq(n_prepared(c), 0, "%s left statements", resets[k]);

        must_ok(c, dbpool_begin(c, 0), "begin");
        h_exec(c, "SET LOCAL application_name = 'in_tx'");   /* the server's BEGIN is sent now */
        run_pair(c, q1, q2, 20);
        must_ok(c, dbpool_commit(c), "commit");
        prepared(c, &p);
        cr_assert_eq(p.n, 2, "after %s: %zu prepared", resets[k], p.n);
        cr_assert_str_neq(prepared_name(&p, q1), "");
        cr_assert_str_neq(prepared_name(&p, q1), n1, "name reused after %s", resets[k]);
        cr_assert_str_neq(prepared_name(&p, q2), n2, "name reused after %s", resets[k]);
        run_pair(c, q1, q2, 30);
    }
    dbpool_close(c);
    h_stop_ok();
}

/* Runs drop (a DEALLOCATE of q[gone], prepared as name[gone]), then both
 * statements inside a transaction, where a statement the server no longer
 * has could not be retried: the cache must have forgotten just that one.
 * name[] is updated to the names the statements have afterwards. */
static void drop_one_and_rerun(dbpool_conn *c, const char *drop, const char *const q[2],
                               char name[2][32], int gone, int64_t x)
{
    struct prepared p;
    int kept = !gone;

    h_exec(c, drop);
    must_ok(c, dbpool_begin(c, 0), "begin");
    h_exec(c, "SET LOCAL application_name = 'in_tx'");   /* the server's BEGIN is sent now */
    run_pair(c, q[0], q[1], x);
    must_ok(c, dbpool_commit(c), "commit");
    prepared(c, &p);
    cr_assert_eq(p.n, 2, "after %s: %zu prepared", drop, p.n);
    cr_assert_str_neq(prepared_name(&p, q[gone]), name[gone], "%s was not prepared afresh",
                      name[gone]);
    cr_assert_str_eq(prepared_name(&p, q[kept]), name[kept], "%s was dropped too", name[kept]);
    snprintf(name[gone], 32, "%s", prepared_name(&p, q[gone]));
}

/* DISCARD PLANS / TEMP / SEQUENCES and DEALLOCATE of another name leave our
 * statements on the server: the cache must keep them (and so its bound);
 * DEALLOCATE of one of ours drops just that one. */
Test(pgcache, partial_discard_and_deallocate_keep_the_cache)
{
    static const char *const keep[] = { "DISCARD PLANS", "DISCARD TEMP", "DISCARD SEQUENCES",
                                        "DEALLOCATE mine", "DEALLOCATE \"DBPOOL_S1\"" };
    const char *q1 = "SELECT $1::int8 + 1", *q2 = "SELECT $1::int8 + 2";
    char n1[32], n2[32], drop[96];
    struct prepared p;

    start_one_conn("statementCacheSize = 2;");
    dbpool_conn *c = h_connect();
    install_probe(c);
    run_pair(c, q1, q2, 10);
    prepared(c, &p);
    cr_assert_eq(p.n, 2);
    snprintf(n1, sizeof(n1), "%s", prepared_name(&p, q1));
    snprintf(n2, sizeof(n2), "%s", prepared_name(&p, q2));
    for (size_t k = 0; k < sizeof(keep) / sizeof(keep[0]); k++) {
        if (strcmp(keep[k], "DEALLOCATE mine") == 0)
            h_exec(c, "PREPARE mine AS SELECT 1");
        if (strstr(keep[k], "DBPOOL_S1"))   /* quoted: another name than dbpool_s1 */
            h_exec(c, "PREPARE \"DBPOOL_S1\" AS SELECT 1");
        h_exec(c, keep[k]);
        run_pair(c, q1, q2, 20);
        prepared(c, &p);
        cr_assert_eq(p.n, 2, "after %s: %zu prepared (the cache forgot statements the server "
                     "still has)", keep[k], p.n);
        cr_assert_str_eq(prepared_name(&p, q1), n1, "after %s", keep[k]);
        cr_assert_str_eq(prepared_name(&p, q2), n2, "after %s", keep[k]);
    }
    const char *const q[2] = { q1, q2 };
    char name[2][32];
    snprintf(name[0], sizeof(name[0]), "%s", n1);
    snprintf(name[1], sizeof(name[1]), "%s", n2);
    snprintf(drop, sizeof(drop), "DEALLOCATE %s", name[0]);
    drop_one_and_rerun(c, drop, q, name, 0, 30);
    /* The same with a comment in front and the name quoted. */
    snprintf(drop, sizeof(drop), "-- one of yours\nDEALLOCATE PREPARE \"%s\"", name[1]);
    drop_one_and_rerun(c, drop, q, name, 1, 40);
    dbpool_close(c);
    h_stop_ok();
}

/* (f) Our statements dropped where the daemon cannot see it (inside a
 * function): the server answers 26000; outside a transaction, or as the
 * first statement of one, the daemon prepares the statement again and
 * retries; as a later statement of a transaction the client gets the 26000
 * and the statement works again after ROLLBACK. */
Test(pgcache, statements_dropped_behind_the_caches_back)
{
    const char *q = "SELECT $1::int8 - 1", *q2 = "SELECT -$1::int8";
    const char *drop_ours =
        "DO $$ DECLARE r record; BEGIN "
        "FOR r IN SELECT name FROM pg_prepared_statements WHERE name ~ '^dbpool_s[0-9]+$' LOOP "
        "EXECUTE format('DEALLOCATE %I', r.name); END LOOP; END $$";

    start_one_conn(NULL);
    dbpool_conn *c = h_connect();
    install_probe(c);
    expect_int_result(c, q, 5, 4);
    expect_int_result(c, q, 6, 5);
    cr_assert_eq(n_prepared(c), 1);

    h_exec(c, "DO $$ BEGIN EXECUTE 'DEALLOCATE ALL'; END $$");
    install_probe(c);
    cr_assert_eq(n_prepared(c), 0, "DEALLOCATE ALL inside DO did not drop the statement");
    expect_int_result(c, q, 7, 6);   /* 26000, prepared again, retried */
    assert_txstate(c, 'I', "after the retry");
    cr_assert_eq(n_prepared(c), 1, "not prepared again after the server lost it");
    expect_int_result(c, q, 8, 7);

    /* Again, with a DO block that keeps the probe. */
    h_exec(c, drop_ours);
    cr_assert_eq(n_prepared(c), 0);
    expect_int_result(c, q, 9, 8);
    cr_assert_eq(n_prepared(c), 1);

    /* The first statement of a transaction: replayed (the daemon rolls
     * back the BEGIN it sent with it and starts again). */
    h_exec(c, drop_ours);
    must_ok(c, dbpool_begin(c, 0), "begin");
    expect_int_result(c, q, 12, 11);
    assert_txstate(c, 'T', "after the replayed first statement");
    must_ok(c, dbpool_commit(c), "commit");
    cr_assert_eq(n_prepared(c), 1);

    /* A later statement of a transaction: no retry. A second cached
     * statement, q2. */
    expect_int_result(c, q2, 1, -1);
    expect_int_result(c, q2, 2, -2);
    cr_assert_eq(n_prepared(c), 2);
    h_exec(c, drop_ours);
    must_ok(c, dbpool_begin(c, 0), "begin");
    cr_assert_eq(h_scalar(c, "SELECT 1"), 1);
    dbpool_value v = dbpool_int(1);
    dbpool_result *r = NULL;
    int rc = dbpool_query(c, q, &v, 1, &r);
    const dbpool_error *e = dbpool_last_error(c);
    cr_assert_eq(rc, -1, "a statement the server no longer has ran inside a transaction");
    cr_assert_eq(e->code, DBPOOL_E_SQL, "%s [%s] %s", dbpool_code_name(e->code), e->sqlstate,
                 e->message);
    cr_assert_str_eq(e->sqlstate, "26000", "%s", e->message);
    assert_txstate(c, 'E', "after the lost statement");
    must_ok(c, dbpool_rollback(c), "rollback");
    /* One lost statement means the session lost them all: q2 is prepared
     * afresh too, so it works inside a transaction. */
    must_ok(c, dbpool_begin(c, 0), "begin");
    expect_int_result(c, q2, 3, -3);
    expect_int_result(c, q, 10, 9);
    must_ok(c, dbpool_commit(c), "commit");
    expect_int_result(c, q, 11, 10);
    expect_int_result(c, q2, 4, -4);
    cr_assert_eq(n_prepared(c), 2);
    cr_assert(dbpool_is_open(c));
    dbpool_close(c);
    h_stop_ok();
}

/* (g) Statements that fail keep failing with their own error, however often
 * they are repeated (a failed PREPARE is not cached), and the session goes
 * on; a statement failing only at execution stays prepared. */
Test(pgcache, failing_statements_repeated)
{
    char missing[128];
    const char *div = "SELECT 10 / $1::int8";
    struct prepared p;

    start_one_conn(NULL);
    dbpool_conn *c = h_connect();
    install_probe(c);
    snprintf(missing, sizeof(missing), "SELECT * FROM no_such_table_%d", (int)getpid());
    for (int i = 0; i < 3; i++) {
        expect_sql_error(c, "SELECT 1 FROM", "42601");
        assert_txstate(c, 'I', "after a syntax error");
    }
    for (int i = 0; i < 3; i++)
        expect_sql_error(c, missing, "42P01");
    cr_assert_eq(n_prepared(c), 0, "a statement that does not parse is prepared");

    for (int i = 0; i < 3; i++) {
        dbpool_value zero = dbpool_int(0);
        int rc = dbpool_query(c, div, &zero, 1, NULL);
        const dbpool_error *e = dbpool_last_error(c);
        cr_assert_eq(rc, -1, "run %d: division by zero succeeded", i + 1);
        cr_assert_str_eq(e->sqlstate, "22012", "run %d: %s [%s] %s", i + 1,
                         dbpool_code_name(e->code), e->sqlstate, e->message);
        cr_assert(dbpool_is_open(c));
    }
    expect_int_result(c, div, 5, 2);
    prepared(c, &p);
    cr_assert_eq(p.n, 1, "%zu prepared", p.n);
    cr_assert_str_neq(prepared_name(&p, div), "", "the statement failing at run time is not "
                      "prepared");

    /* In a transaction: the error, the failed transaction, ROLLBACK. */
    must_ok(c, dbpool_begin(c, 0), "begin");
    expect_sql_error(c, "SELECT 1 FROM", "42601");
    assert_txstate(c, 'E', "after a syntax error in a transaction");
    must_ok(c, dbpool_rollback(c), "rollback");
    expect_sql_error(c, "SELECT 1 FROM", "42601");
    cr_assert_eq(h_scalar(c, "SELECT 6 * 7"), 42, "the session is unusable after errors");
    cr_assert_eq(h_scalar(c, "SELECT 6 * 7"), 42);
    cr_assert_eq(h_scalar(c, "SELECT 6 * 7"), 42);
    expect_int_result(c, div, 2, 5);
    cr_assert_eq(n_prepared(c), 2);
    dbpool_close(c);
    h_stop_ok();
}

/* One value through "SELECT $1::<type> AS v<k>, ($1::<type>)::text" three
 * times: unnamed, prepared then executed, executed by name. The value must
 * come back bit for bit and the server must have read it as meant (its own
 * text form). Each value gets a statement of its own (alias v<k>), so each
 * goes through all three paths. */
static void round_trip(dbpool_conn *c, int k, const char *type, dbpool_value v,
                       const char *server_text, char *sql, size_t len)
{
    snprintf(sql, len, "SELECT $1::%s AS v%d, ($1::%s)::text AS s", type, k, type);
    for (int run = 1; run <= 3; run++) {
        dbpool_result *r = h_query(c, sql, &v, 1);
        const dbpool_value *got = dbpool_result_value(r, 0, 0);
        cr_assert_eq(got->type, v.type, "%s run %d: type %s", sql, run,
                     dbpool_type_name(got->type));
        switch (v.type) {
        case DBPOOL_INT64:
            cr_assert_eq(got->u.i, v.u.i, "%s run %d: %lld, sent %lld", sql, run,
                         (long long)got->u.i, (long long)v.u.i);
            break;
        case DBPOOL_FLOAT64:
            if (isnan(v.u.f))
                cr_assert(isnan(got->u.f), "%s run %d: %g, sent NaN", sql, run, got->u.f);
            else
                cr_assert(memcmp(&got->u.f, &v.u.f, sizeof(double)) == 0,
                          "%s run %d: %.17g (sign %d), sent %.17g (sign %d)", sql, run,
                          got->u.f, signbit(got->u.f) != 0, v.u.f, signbit(v.u.f) != 0);
            break;
        case DBPOOL_BOOL:
            cr_assert_eq(got->u.b, v.u.b, "%s run %d: %d, sent %d", sql, run, got->u.b, v.u.b);
            break;
        default:
            cr_assert_fail("round_trip: unexpected type");
        }
        expect_text(r, 0, 1, server_text);
        dbpool_result_free(r);
    }
}

/* (h) INT64, FLOAT64 and BOOL parameters go to the server in binary: exact
 * at the extremes, the sign of -0.0, NaN and the infinities, on every path
 * (unnamed, prepare + execute, execute by name). */
Test(pgcache, binary_parameters_round_trip_exactly)
{
    static const struct { int64_t v; const char *text; } ints[] = {
        { INT64_MIN, "-9223372036854775808" }, { INT64_MAX, "9223372036854775807" },
        { 0, "0" }, { -1, "-1" }, { 1, "1" }, { 256, "256" }, { -256, "-256" },
        { 0x0102030405060708LL, "72623859790382856" },
    };
    const struct { double v; const char *text; } floats[] = {
        { 0.1, "0.1" }, { -0.0, "-0" }, { 0.0, "0" }, { 1e308, "1e+308" },
        { NAN, "NaN" }, { INFINITY, "Infinity" }, { -INFINITY, "-Infinity" },
        { 5e-324, "5e-324" }, { -1.5, "-1.5" },
    };
    enum { NI = sizeof(ints) / sizeof(ints[0]), NF = sizeof(floats) / sizeof(floats[0]) };
    char isql[NI][128], fsql[NF][128], bsql[2][128], msql[256];
    struct prepared p;

    start_one_conn(NULL);
    dbpool_conn *c = h_connect();
    install_probe(c);
    int k = 0;
    for (size_t i = 0; i < NI; i++)
        round_trip(c, k++, "int8", dbpool_int(ints[i].v), ints[i].text, isql[i], sizeof(isql[i]));
    for (size_t i = 0; i < NF; i++)
        round_trip(c, k++, "float8", dbpool_float(floats[i].v), floats[i].text, fsql[i],
                   sizeof(fsql[i]));
    round_trip(c, k++, "bool", dbpool_bool(1), "true", bsql[0], sizeof(bsql[0]));
    round_trip(c, k++, "bool", dbpool_bool(0), "false", bsql[1], sizeof(bsql[1]));

    /* All three kinds in one statement, and uncast: the declared types. */
    snprintf(msql, sizeof(msql), "SELECT $1 AS i, $2 AS f, $3 AS b, "
             "$1::text || ' ' || $2::text || ' ' || $3::text AS s");
    for (int run = 1; run <= 3; run++) {
        dbpool_value ps[3] = { dbpool_int(INT64_MIN + run), dbpool_float(-0.0),
                               dbpool_bool(run & 1) };
        dbpool_result *r = h_query(c, msql, ps, 3);
        expect_col(r, 0, "i", "int8");
        expect_col(r, 1, "f", "float8");
        expect_col(r, 2, "b", "bool");
        cr_assert_eq(val(r, 0, 0, DBPOOL_INT64)->u.i, INT64_MIN + run);
        double f = val(r, 0, 1, DBPOOL_FLOAT64)->u.f;
        cr_assert(f == 0.0 && signbit(f), "run %d: -0.0 came back as %g", run, f);
        cr_assert_eq(val(r, 0, 2, DBPOOL_BOOL)->u.b, run & 1);
        char want[64];
        snprintf(want, sizeof(want), "%lld -0 %s", (long long)(INT64_MIN + run),
                 run & 1 ? "true" : "false");
        expect_text(r, 0, 3, want);
        dbpool_result_free(r);
    }

    /* Every statement went through the prepared path, with its parameter
     * types declared. */
    prepared(c, &p);
    cr_assert_eq(p.n, NI + NF + 2 + 1, "%zu prepared", p.n);
    for (size_t i = 0; i < NI; i++)
        cr_assert_geq(find_prepared(&p, isql[i], "{bigint}"), 0, "%s not prepared", isql[i]);
    for (size_t i = 0; i < NF; i++)
        cr_assert_geq(find_prepared(&p, fsql[i], "{\"double precision\"}"), 0,
                      "%s not prepared", fsql[i]);
    for (size_t i = 0; i < 2; i++)
        cr_assert_geq(find_prepared(&p, bsql[i], "{boolean}"), 0, "%s not prepared", bsql[i]);
    cr_assert_geq(find_prepared(&p, msql, "{bigint,\"double precision\",boolean}"), 0,
                  "%s not prepared", msql);
    dbpool_close(c);
    h_stop_ok();
}
