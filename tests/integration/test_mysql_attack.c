/*
 * test_mysql_attack.c — hostile clients against a mysql pool (part of the
 * test_mysql program; helpers in mysql_tools.h). Each test is the
 * regression test of something that once went wrong:
 *
 *   myleak  session state one client leaves on a pooled server connection
 *           between transactions (`SET autocommit=0`, `SET SESSION`, user
 *           variables, `USE otherdb`, temporary tables, `LOCK TABLES`)
 *           never reaches the next client: the connection is reset before
 *           it serves anybody else. A pool of one connection makes sure
 *           the next client gets the same server connection.
 *   myshape a table behind a cached prepared statement changes its columns
 *           through another connection (DDL the pool cannot see): a
 *           SELECT is prepared afresh and run again, a statement that
 *           writes is not run twice (its client gets 2057 with a clear
 *           message), and the connection stays in step.
 *   myfreeze the server stops answering (`mysql-harness.sh freeze` of the
 *           fault server, $DBPOOL_TEST_MYSQL_FAULT_DIR, under its lock):
 *           statementTimeout still answers in bounded time (CONN_LOST,
 *           08007) although the KILL cannot reach the server, the
 *           connection is dropped, another pool is served meanwhile, and
 *           the pool serves again when the server is back.
 *   mytenant the same SQL text after `USE otherdb` (inside a transaction)
 *           reads the other database's table, not the one a cached
 *           prepared statement was prepared against.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "mysql_tools.h"

/* ================================================================ leak */

TestSuite(myleak, .init = my_init, .fini = h_fini, .timeout = 120);

/* A single-row, single-column TEXT (or NULL: "") answer, copied into out. */
static void text_of(dbpool_conn *c, const char *sql, char *out, size_t len)
{
    dbpool_result *r = h_query(c, sql, NULL, 0);
    const dbpool_value *v = dbpool_result_value(r, 0, 0);

    cr_assert_not_null(v, "%s: no value", sql);
    if (v->type == DBPOOL_NULL)
        snprintf(out, len, "%s", "");
    else
        snprintf(out, len, "%.*s", (int)v->u.s.len, v->u.s.ptr);
    dbpool_result_free(r);
}

Test(myleak, autocommit_off_left_by_a_client_does_not_swallow_the_next_insert)
{
    struct h_opts o = { .max_open_conns = 1 };
    h_start(&o);
    dbpool_conn *a = h_connect();
    h_create_table(a, "ac", "id INT PRIMARY KEY");
    int64_t tid = thread_id(a);
    h_exec(a, "SET autocommit = 0");
    dbpool_close(a);

    dbpool_conn *b = h_connect();
    cr_assert_eq(thread_id(b), tid, "the pool of one did not hand out the same connection");
    h_exec(b, "INSERT INTO ac VALUES (1)");
    assert_txstate(b, 'I', "after an autocommit INSERT of the next client");
    dbpool_close(b);   /* B believes its row is committed */

    dbpool_conn *c = h_connect();
    cr_assert_eq(h_scalar(c, "SELECT COUNT(*) FROM ac"), 1,
                 "the next client's autocommit INSERT was rolled back: a previous client's "
                 "SET autocommit = 0 stayed on the pooled connection");
    cr_assert_eq(h_scalar(c, "SELECT @@autocommit"), 1, "autocommit is still off");
    dbpool_close(c);
    h_stop_ok();
}

Test(myleak, session_variables_schema_and_temp_tables_are_reset)
{
    struct h_opts o = { .max_open_conns = 1 };
    char mode0[512], mode[512], db[128];

    h_start(&o);
    dbpool_conn *a = h_connect();
    int64_t tid = thread_id(a);
    text_of(a, "SELECT @@SESSION.sql_mode", mode0, sizeof(mode0));
    h_exec(a, "SET SESSION sql_mode = 'ALLOW_INVALID_DATES'");
    h_exec(a, "SET @leak = 42");
    h_exec(a, "CREATE TEMPORARY TABLE leak_tmp (a INT)");
    h_exec(a, "USE mysql");
    dbpool_close(a);

    dbpool_conn *b = h_connect();
    cr_assert_eq(thread_id(b), tid, "the pool of one did not hand out the same connection");
    text_of(b, "SELECT DATABASE()", db, sizeof(db));
    cr_assert_str_eq(db, my_env("DB"), "the next client runs in the database \"%s\" that a "
                     "previous client chose with USE", db);
    text_of(b, "SELECT @@SESSION.sql_mode", mode, sizeof(mode));
    cr_assert_str_eq(mode, mode0, "the next client inherited sql_mode \"%s\"", mode);
    cr_assert_eq(h_scalar(b, "SELECT @leak IS NULL"), 1, "a user variable leaked");
    /* 1050 "Table 'leak_tmp' already exists" when A's temporary table leaked. */
    int rc = dbpool_exec(b, "CREATE TEMPORARY TABLE leak_tmp (a INT)");
    cr_assert_eq(rc, 0, "a temporary table leaked: %s", dbpool_last_error(b)->message);
    dbpool_close(b);
    h_stop_ok();
}

Test(myleak, lock_tables_left_by_a_client_is_released)
{
    struct h_opts o = { .max_open_conns = 1 };
    h_start(&o);
    dbpool_conn *a = h_connect();
    h_create_table(a, "lk1", "id INT PRIMARY KEY");
    h_create_table(a, "lk2", "id INT PRIMARY KEY");
    int64_t tid = thread_id(a);
    h_exec(a, "LOCK TABLES lk1 WRITE");
    dbpool_close(a);

    dbpool_conn *b = h_connect();
    cr_assert_eq(thread_id(b), tid, "the pool of one did not hand out the same connection");
    /* Under a leaked LOCK TABLES, any other table is refused (1100). */
    int rc = dbpool_exec(b, "INSERT INTO lk2 VALUES (1)");
    const dbpool_error *e = dbpool_last_error(b);
    cr_assert_eq(rc, 0, "the next client is under a previous client's LOCK TABLES: %s [%s] "
                 "(%d) %s", dbpool_code_name(e->code), e->sqlstate, vendor_code(e), e->message);
    dbpool_close(b);
    h_stop_ok();
}

/* ================================================================ shape */

TestSuite(myshape, .init = my_init, .fini = h_fini, .timeout = 120);

static void expect_row(dbpool_conn *c, const char *sql, size_t ncols, const int64_t *want)
{
    dbpool_value p = dbpool_int(1);
    dbpool_result *r = h_query(c, sql, &p, 1);

    cr_assert_eq(dbpool_result_ncols(r), ncols, "%s: %zu columns, expected %zu", sql,
                 dbpool_result_ncols(r), ncols);
    cr_assert_eq(dbpool_result_nrows(r), 1);
    for (size_t i = 0; i < ncols; i++) {
        const dbpool_value *v = dbpool_result_value(r, 0, i);
        cr_assert(v->type == DBPOOL_INT64 && v->u.i == want[i],
                  "%s: column %zu is %s %lld, expected %lld", sql, i, dbpool_type_name(v->type),
                  v->type == DBPOOL_INT64 ? (long long)v->u.i : 0LL, (long long)want[i]);
    }
    dbpool_result_free(r);
}

/* The table behind a cached prepared SELECT * changes through ANOTHER
 * connection (the pool cannot see the DDL): more columns, then fewer. */
Test(myshape, table_altered_elsewhere_under_a_cached_select_star)
{
    char extra[2048] = "";
    struct h_opts o = { .max_open_conns = 1, .extra_pools = extra };
    static const int64_t one[] = { 1 }, four[] = { 1, 2, 3, 4 }, two[] = { 1, 4 };
    static const char sel[] = "SELECT * FROM sh WHERE id = ?";

    add_admin_pool(extra, sizeof(extra));
    h_start(&o);
    dbpool_conn *adm = connect_pool("admin");
    dbpool_conn *c = h_connect();
    h_create_table(c, "sh", "id INT PRIMARY KEY");
    h_exec(c, "INSERT INTO sh VALUES (1)");
    for (int i = 0; i < 3; i++)
        expect_row(c, sel, 1, one);
    h_exec(adm, "ALTER TABLE sh ADD COLUMN a INT DEFAULT 2, ADD COLUMN b BIGINT DEFAULT 3, "
                "ADD COLUMN d INT DEFAULT 4");
    for (int i = 0; i < 2; i++)
        expect_row(c, sel, 4, four);
    h_exec(adm, "ALTER TABLE sh DROP COLUMN a, DROP COLUMN b");
    for (int i = 0; i < 2; i++)
        expect_row(c, sel, 2, two);

    /* A statement that writes is not run twice: its client is told, and
     * the connection goes on in step. */
    static const char del[] = "DELETE FROM sh WHERE id = ? RETURNING *";
    h_exec(c, "INSERT INTO sh (id) VALUES (2), (3), (4), (5)");
    for (int64_t id = 2; id <= 4; id++) {
        dbpool_value p = dbpool_int(id);
        dbpool_result_free(h_query(c, del, &p, 1));
    }
    h_exec(adm, "ALTER TABLE sh ADD COLUMN e INT DEFAULT 5");
    dbpool_value p5 = dbpool_int(5);
    int rc = dbpool_query(c, del, &p5, 1, NULL);
    cr_assert_eq(rc, -1, "the DELETE's rows of a changed shape came through?");
    cr_assert_eq(vendor_code(dbpool_last_error(c)), 2057, "%s", dbpool_last_error(c)->message);
    cr_assert(strstr(dbpool_last_error(c)->message, "changed"), "%s",
              dbpool_last_error(c)->message);
    cr_assert_eq(h_scalar(c, "SELECT COUNT(*) FROM sh"), 1, "the DELETE ran not exactly once");
    dbpool_close(c);
    dbpool_close(adm);
    h_stop_ok();
}

/* ================================================================ tenant */

TestSuite(mytenant, .init = my_init, .fini = h_fini, .timeout = 120);

static void expect_v(dbpool_conn *c, const char *want, const char *when)
{
    dbpool_value id = dbpool_int(1);
    dbpool_result *r = h_query(c, "SELECT v FROM tenant_t WHERE id = ?", &id, 1);
    const dbpool_value *v = dbpool_result_value(r, 0, 0);

    cr_assert(v && v->type == DBPOOL_TEXT && v->u.s.len == strlen(want) &&
                  memcmp(v->u.s.ptr, want, v->u.s.len) == 0,
              "%s: read \"%.*s\" from the wrong database's table, expected \"%s\"", when,
              v && v->type == DBPOOL_TEXT ? (int)v->u.s.len : 0,
              v && v->type == DBPOOL_TEXT ? v->u.s.ptr : "", want);
    dbpool_result_free(r);
}

/* Multi-tenant style: the same SQL text in another database (USE inside a
 * transaction) must read that database's table, not the one a cached
 * prepared statement was prepared against. */
Test(mytenant, cached_statement_follows_use_of_another_database)
{
    struct h_opts o = { .max_open_conns = 1 };
    h_start(&o);
    dbpool_conn *c = h_connect();
    h_exec(c, "DROP DATABASE IF EXISTS dbpool_tenant2");
    h_exec(c, "CREATE DATABASE dbpool_tenant2");
    h_exec(c, "CREATE TABLE dbpool_tenant2.tenant_t (id INT PRIMARY KEY, v VARCHAR(10))");
    h_exec(c, "INSERT INTO dbpool_tenant2.tenant_t VALUES (1, 'tenant2')");
    h_create_table(c, "tenant_t", "id INT PRIMARY KEY, v VARCHAR(10)");
    h_exec(c, "INSERT INTO tenant_t VALUES (1, 'main')");
    for (int i = 0; i < 3; i++)
        expect_v(c, "main", "in the pool's database");
    must_ok(c, dbpool_begin(c, 0), "begin");
    h_exec(c, "USE dbpool_tenant2");
    expect_v(c, "tenant2", "after USE dbpool_tenant2");
    must_ok(c, dbpool_commit(c), "commit");
    expect_v(c, "main", "back in the pool's database after the transaction");
    h_exec(c, "DROP DATABASE dbpool_tenant2");
    dbpool_close(c);
    h_stop_ok();
}

/* ================================================================ freeze */

static bool server_frozen;

static void freeze_server(bool on)
{
    cr_assert_eq(fault_harness(on ? "freeze" : "thaw"), 0, "mysql-harness.sh %s failed (see %s.log)",
                 on ? "freeze" : "thaw", fault_dir());
    server_frozen = on;
}

static void freeze_fini(void)
{
    h_fini();
    if (server_frozen && fault_harness("thaw") != 0)   /* never leave it frozen */
        fprintf(stderr, "test_mysql: could not thaw the fault server (see %s.log)\n", fault_dir());
    server_frozen = false;
}

TestSuite(myfreeze, .init = my_init, .fini = freeze_fini, .timeout = 120);

/* No server connection of the pool is stuck: none busy or connecting. */
static bool pool_settled(const char *pool)
{
    return h_pool_stat(pool, "servers", "busy") == 0 &&
           h_pool_stat(pool, "servers", "connecting") == 0;
}

/* The ERROR a statementTimeout on a frozen server must give (doc/protocol.md,
 * doc/operations.md): CONN_LOST, outcome unknown (08007), saying why. */
static void expect_frozen_error(const struct h_bg_query *q)
{
    cr_assert_eq(q->rc, -1, "a statement on a frozen server succeeded?");
    cr_assert_eq(q->err.code, DBPOOL_E_CONN_LOST, "expected CONN_LOST, got %s: %s",
                 dbpool_code_name(q->err.code), q->err.message);
    cr_assert_str_eq(q->err.sqlstate, "08007", "%s", q->err.message);
    cr_assert(strstr(q->err.message, "KILL QUERY could not reach the MySQL server") &&
                  strstr(q->err.message, "outcome unknown"),
              "the message does not say what happened: %s", q->err.message);
}

/* The server stops answering (SIGSTOP) between two statements of a client:
 * statementTimeout must still end the next request in bounded time (the
 * KILL cannot reach the server either: its connection times out after the
 * pool's `timeout`), the server connection is dropped, clients of another
 * pool are served meanwhile, and the pool serves again once the server is
 * back. On the fault server: the other tests share the main one. */
Test(myfreeze, statement_timeout_on_a_frozen_server_answers_in_bounded_time)
{
    char extra[2048] = "";
    struct h_opts o = { .max_open_conns = 2, .extra_pools = extra,
                        .pool_settings = "statementTimeout = \"500ms\"; timeout = \"1s\";" };

    add_pool(extra, sizeof(extra), "other", NULL, "");   /* the main server, never frozen */
    use_fault_server();
    h_start(&o);
    dbpool_conn *f = h_connect();
    dbpool_conn *other = connect_pool("other");
    h_exec(f, "SELECT 1");
    double closes = h_pool_stat("app", "totals", "server_closes");
    freeze_server(true);

    struct h_bg_query q = { .c = f, .sql = "SELECT SLEEP(5)" };
    uint64_t t0 = h_now_ms();
    h_bg_start(&q);
    cr_assert(H_AWAIT(h_pool_stat("app", "servers", "busy") == 1 || q.done, 5000),
              "the statement never took a server connection");
    cr_assert_eq(h_scalar(other, "SELECT 2"), 2, "another pool while the server is frozen");
    uint64_t other_done = h_now_ms();
    cr_assert(H_AWAIT(q.done, 30000), "no answer 30 s after statementTimeout 500ms");
    pthread_join(q.tid, NULL);
    uint64_t took = q.ended_ms - t0;
    cr_log_info("on a frozen server: rc %d after %llu ms: %s", q.rc, (unsigned long long)took,
                q.rc ? q.err.message : "");
    expect_frozen_error(&q);
    /* statementTimeout 500 ms + the KILL's connect timeout 1 s, with room
     * for a loaded machine; without the fix there is no answer at all. */
    cr_assert_lt(took, 5000, "the request took %llu ms despite statementTimeout 500ms",
                 (unsigned long long)took);
    cr_assert_lt(other_done, q.ended_ms, "the other pool was not served during the freeze");
    cr_assert(H_AWAIT(pool_settled("app"), 5000), "a server connection is stuck: %s",
              h_pool_json("app"));
    cr_assert_geq(h_pool_stat("app", "totals", "server_closes"), closes + 1,
                  "the connection of the frozen statement was not dropped");

    freeze_server(false);
    cr_assert_eq(h_scalar(f, "SELECT 3"), 3, "the pool after the server came back");
    cr_assert(H_AWAIT(pool_settled("app"), 5000), "a server connection is stuck: %s",
              h_pool_json("app"));
    cr_assert_eq(h_scalar(other, "SELECT 4"), 4);
    dbpool_close(other);
    dbpool_close(f);
    h_stop_ok();
}
