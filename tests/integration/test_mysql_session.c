/*
 * test_mysql_session.c — what a mysql pool does around the statements (part
 * of the test_mysql program; helpers in mysql_tools.h):
 *
 *   mymulti  multi-statement text and CALL (results of a procedure, and the
 *            extra status result every CALL sends): supported or refused
 *            with a clear error, and never a connection left with unread
 *            results for the next statement
 *   myreset  a client that goes away inside a transaction (holding a row
 *            lock): the next client on the pool's one server connection
 *            (reset, or replaced) starts clean
 *   myauth   a wrong password: UNAVAILABLE with the server's reason, and
 *            the password in neither the log nor the status socket
 *   mycache  server-side prepared statements for typed parameters, cached
 *            per connection with the statementCacheSize bound (seen in the
 *            server's Prepared_stmt_count), off at 0, and a table changed
 *            under a cached SELECT *
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "mysql_tools.h"

/* ================================================================ multi */

TestSuite(mymulti, .init = my_init, .fini = h_fini, .timeout = 120);

/* rc is success, or a SQL/usage error with a message; either way the next
 * statement gets its own result. */
static void supported_or_clearly_refused(dbpool_conn *c, int rc, const char *what)
{
    const dbpool_error *e = dbpool_last_error(c);
    if (rc != 0) {
        cr_assert(e->code == DBPOOL_E_SQL || e->code == DBPOOL_E_USAGE,
                  "%s: refused with %s: %s", what, dbpool_code_name(e->code), e->message);
        cr_assert(strlen(e->message) > 10, "%s: refused without a clear message: \"%s\"", what,
                  e->message);
        cr_assert(dbpool_is_open(c), "%s closed the session", what);
    }
    for (int i = 0; i < 3; i++)
        cr_assert_eq(h_scalar(c, "SELECT 40 + 2"), 42,
                     "the statement after %s got another result", what);
    assert_txstate(c, 'I', what);
}

Test(mymulti, multi_statement_text_and_call)
{
    struct h_opts o = { .max_open_conns = 1 };
    h_start(&o);
    dbpool_conn *c = h_connect();
    h_create_table(c, "mc", "id INT");
    h_exec(c, "CREATE PROCEDURE p_ins(IN k INT) BEGIN INSERT INTO mc VALUES (k); END");
    h_exec(c, "CREATE PROCEDURE p_sel() BEGIN SELECT 1 AS a; SELECT 2 AS b, 3 AS c; END");

    /* A procedure without a result set: must work (the CLI runs them). */
    dbpool_value k = dbpool_int(7);
    h_execp(c, "CALL p_ins(?)", &k, 1);
    h_exec(c, "CALL p_ins(8)");
    cr_assert_eq(h_scalar(c, "SELECT COUNT(*) FROM mc"), 2);
    cr_assert_eq(h_scalar(c, "SELECT CAST(SUM(id) AS SIGNED) FROM mc"), 15);

    dbpool_result *r = NULL;
    int rc = dbpool_query(c, "CALL p_sel()", NULL, 0, &r);
    if (rc == 0) {
        cr_assert_geq(dbpool_result_nrows(r), 1, "CALL p_sel() returned no rows");
        dbpool_result_free(r);
    }
    supported_or_clearly_refused(c, rc, "CALL of a procedure with two result sets");

    rc = dbpool_exec(c, "SELECT 1; SELECT 2");
    supported_or_clearly_refused(c, rc, "two statements in one text");
    rc = dbpool_exec(c, "INSERT INTO mc VALUES (100); INSERT INTO mc VALUES (200)");
    supported_or_clearly_refused(c, rc, "two INSERTs in one text");
    int64_t n = h_scalar(c, "SELECT COUNT(*) FROM mc WHERE id >= 100");
    cr_assert(rc == 0 ? n == 2 : n == 0, "a refused multi-statement text ran %lld of its "
              "statements", (long long)n);
    dbpool_close(c);
    h_stop_ok();
}

/* ================================================================ reset */

TestSuite(myreset, .init = my_init, .fini = h_fini, .timeout = 120);

Test(myreset, client_gone_inside_a_transaction_leaves_a_clean_connection)
{
    struct h_opts o = { .max_open_conns = 1 };
    h_start(&o);
    dbpool_conn *a = h_connect();
    h_create_table(a, "rs", "id INT PRIMARY KEY");
    int64_t tid = thread_id(a);
    must_ok(a, dbpool_begin(a, 0), "begin");
    h_exec(a, "INSERT INTO rs VALUES (1)");
    h_exec(a, "SELECT id FROM rs WHERE id = 1 FOR UPDATE");
    dbpool_close(a);          /* gone without COMMIT */

    /* Reset (same thread) or replaced (a new one): clean either way. */
    dbpool_conn *b = h_connect();
    int64_t next = thread_id(b);
    cr_log_info("the next client runs on %s server connection", next == tid ? "the same, reset,"
                                                                            : "a new");
    assert_txstate(b, 'I', "of the next client");
    cr_assert_eq(h_scalar(b, "SELECT @@in_transaction"), 0,
                 "the next client inherited an open transaction");
    cr_assert_eq(h_scalar(b, "SELECT COUNT(*) FROM rs"), 0, "the gone client's row stayed");
    /* The row lock is gone too: B can write the same key at once. */
    h_exec(b, "SET SESSION innodb_lock_wait_timeout = 2");
    h_exec(b, "INSERT INTO rs VALUES (1)");
    dbpool_close(b);
    h_stop_ok();
}

/* ================================================================ auth */

TestSuite(myauth, .init = my_init, .fini = h_fini, .timeout = 120);

static void assert_absent(const char *where, const char *text, const char *needle)
{
    const char *hit = strstr(text, needle);
    cr_assert_null(hit, "%s contains the password \"%s\": ...%.200s", where, needle,
                   hit ? (hit - text > 100 ? hit - 100 : text) : "");
}

Test(myauth, wrong_password_is_unavailable_with_the_servers_reason)
{
    static const char wrong[] = "wrong-Pa55word-x7";
    char dir[] = "/tmp/dbpool-mypw.XXXXXX", pwfile[128], settings[512], extra[4096] = "";
    struct h_opts o = { .extra_pools = extra };

    cr_assert_not_null(mkdtemp(dir));
    snprintf(pwfile, sizeof(pwfile), "%s/bad.pw", dir);
    FILE *f = fopen(pwfile, "w");
    cr_assert_not_null(f, "%s: %s", pwfile, strerror(errno));
    fprintf(f, "%s\n", wrong);
    cr_assert_eq(fclose(f), 0);
    snprintf(settings, sizeof(settings), "maxRetries = 1; retryDelay = \"50ms\"; "
             "acquireTimeout = \"1s\"; maxOpenConns = 1;");
    size_t pos = strlen(extra);
    snprintf(extra + pos, sizeof(extra) - pos,
             ", { name = \"badpw\"; type = \"mysql\"; mysql = { host = \"%s\"; name = \"%s\"; "
             "username = \"%s\"; passwordFile = \"%s\"; %s }; }",
             my_env("HOST"), my_env("DB"), my_env("USER"), pwfile, settings);
    h_start(&o);
    dbpool_conn *c = connect_pool("badpw");
    int rc = dbpool_exec(c, "SELECT 1");
    h_expect_error(c, rc, DBPOOL_E_UNAVAILABLE, "a pool with a wrong password");
    cr_assert(strstr(dbpool_last_error(c)->message, "Access denied") ||
              strstr(dbpool_last_error(c)->message, "1045"),
              "the message does not give the server's reason: %s", dbpool_last_error(c)->message);
    dbpool_close(c);
    dbpool_conn *good = h_connect();
    cr_assert_eq(h_scalar(good, "SELECT 1"), 1);
    dbpool_close(good);

    char *body = NULL;
    static const char *const paths[] = { "/pools", "/health", "/metrics", "/config" };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        h_http_get(paths[i], &body);
        assert_absent(paths[i], body, wrong);
        assert_absent(paths[i], body, "secret");
        free(body);
    }
    h_stop_ok();
    char *log = h_read_log();
    assert_absent("the log", log, wrong);
    free(log);
    unlink(pwfile);
    rmdir(dir);
}

/* ================================================================ cache */

TestSuite(mycache, .init = my_init, .fini = h_fini, .timeout = 120);

/* The server's count of prepared statements (all sessions; the test's pool
 * has the only connection). Read without parameters. */
static int64_t prepared_on_server(dbpool_conn *c)
{
    dbpool_result *r = h_query(c, "SELECT CAST(VARIABLE_VALUE AS SIGNED) FROM "
                                  "information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = "
                                  "'PREPARED_STMT_COUNT'", NULL, 0);
    int64_t n = dbpool_result_value(r, 0, 0)->u.i;
    dbpool_result_free(r);
    return n;
}

/* 20 distinct statements with a typed parameter, each run 3 times. */
static void run_distinct_statements(dbpool_conn *c)
{
    char sql[128];
    for (int i = 0; i < 20; i++) {
        snprintf(sql, sizeof(sql), "SELECT ? + %d", i);
        for (int k = 0; k < 3; k++) {
            dbpool_value p = dbpool_int(k);
            dbpool_result *r = h_query(c, sql, &p, 1);
            cr_assert_eq(dbpool_result_value(r, 0, 0)->u.i, i + k, "%s with %d", sql, k);
            dbpool_result_free(r);
        }
    }
}

Test(mycache, prepared_statements_bounded_by_statement_cache_size)
{
    struct h_opts o = { .max_open_conns = 1, .pool_settings = "statementCacheSize = 4;" };
    h_start(&o);
    dbpool_conn *c = h_connect();
    int64_t before = prepared_on_server(c);
    run_distinct_statements(c);
    int64_t after = prepared_on_server(c);
    cr_assert_gt(after, before, "no server-side prepared statement is kept (typed parameters "
                 "must use mysql_stmt_* and be cached)");
    cr_assert_leq(after - before, 4, "%lld statements prepared on the server, "
                  "statementCacheSize is 4", (long long)(after - before));
    dbpool_close(c);
    h_stop_ok();
}

Test(mycache, size_zero_keeps_nothing_prepared)
{
    struct h_opts o = { .max_open_conns = 1, .pool_settings = "statementCacheSize = 0;" };
    h_start(&o);
    dbpool_conn *c = h_connect();
    int64_t before = prepared_on_server(c);
    run_distinct_statements(c);
    cr_assert_eq(prepared_on_server(c), before, "statements stay prepared with the cache off");
    dbpool_close(c);
    h_stop_ok();
}

Test(mycache, table_changed_under_a_cached_select_star)
{
    struct h_opts o = { .max_open_conns = 1 };
    h_start(&o);
    dbpool_conn *c = h_connect();
    h_create_table(c, "cs", "id INT PRIMARY KEY");
    h_exec(c, "INSERT INTO cs VALUES (1)");
    dbpool_value p = dbpool_int(1);
    for (int i = 0; i < 3; i++) {
        dbpool_result *r = h_query(c, "SELECT * FROM cs WHERE id = ?", &p, 1);
        cr_assert_eq(dbpool_result_ncols(r), 1);
        dbpool_result_free(r);
    }
    h_exec(c, "ALTER TABLE cs ADD COLUMN v VARCHAR(10) DEFAULT 'new'");
    dbpool_result *r = h_query(c, "SELECT * FROM cs WHERE id = ?", &p, 1);
    cr_assert_eq(dbpool_result_ncols(r), 2, "the cached statement missed the new column");
    const dbpool_value *v = dbpool_result_value(r, 0, 1);
    cr_assert(v->type == DBPOOL_TEXT && v->u.s.len == 3 && memcmp(v->u.s.ptr, "new", 3) == 0,
              "the new column's value is wrong");
    dbpool_result_free(r);
    h_exec(c, "DROP TABLE cs");
    h_create_table(c, "cs", "id INT PRIMARY KEY, w INT, z INT");
    h_exec(c, "INSERT INTO cs VALUES (1, 2, 3)");
    r = h_query(c, "SELECT * FROM cs WHERE id = ?", &p, 1);
    cr_assert_eq(dbpool_result_ncols(r), 3, "the cached statement missed the recreated table");
    cr_assert_eq(dbpool_result_value(r, 0, 2)->u.i, 3);
    dbpool_result_free(r);
    dbpool_close(c);
    h_stop_ok();
}
