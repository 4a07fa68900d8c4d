/*
 * test_pin_faults.c — pinned sessions (doc/protocol.md "Pinned sessions")
 * against a server that stops answering, and what a pinned session leaves
 * on its server connection. The phase x fault cells of pinning (PIN
 * waiting, pinned idle / in a transaction / mid-statement, the reset after
 * UNPIN) are in the fault matrix (test_faults.c); here are the cases it
 * cannot express: a reset that never completes (the server frozen and not
 * thawed by any fault), and the session state each backend's reset must
 * clear, checked on the very connection that was pinned.
 *
 * Server backends only (the fault server of fault_tools.h, which these
 * tests may freeze: tests/pg/run-pg-tests.sh, tests/mysql/run-mysql-tests.sh);
 * every case is skipped on SQLite, whose pinned connection is replaced, not
 * reset (test_pin.c covers it).
 */
#include <criterion/criterion.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault_tools.h"
#include "harness.h"

static struct obs *obs;

static void init(void)
{
    fs_init();
}

static void fini(void)
{
    fs_thaw_all();
    h_fini();
    fs_cleanup();
    obs_close(&obs);
}

TestSuite(pinfaults, .init = init, .fini = fini, .timeout = 90);

static void must_ok(dbpool_conn *c, int rc, const char *what)
{
    const dbpool_error *e = dbpool_last_error(c);
    cr_assert_eq(rc, 0, "%s failed: %s [%s]: %s", what, dbpool_code_name(e->code), e->sqlstate,
                 e->message);
}

static void need_server(void)
{
    if (!fs_active())
        cr_skip_test("needs a server backend (the fault server)");
}

static double pools(const char *k1, const char *k2)
{
    return h_pool_stat(H_POOL, k1, k2);
}

/* ------------------------------------------------------------- a reset that never ends */

/* UNPIN's reset cannot complete: the pinned connection's backend (on
 * MariaDB the whole server) is frozen and stays frozen. The reset is given
 * up after the pool's `timeout` and the connection closed, so it does not
 * hold a place of maxOpenConns for ever: two transactions at once are
 * served again by a pool of two (PostgreSQL: at once; MariaDB: once the
 * server answers again). */
Test(pinfaults, a_reset_that_never_completes_is_given_up)
{
    need_server();
    h_start(&(struct h_opts){ .max_open_conns = 2,
                               .pool_settings = "maxPinned = 1; timeout = \"1s\"; "
                                                "acquireTimeout = \"1s\"; retryDelay = \"100ms\"; "
                                                "retryMaxDelay = \"500ms\";" });
    dbpool_conn *a = h_connect(), *b = h_connect();

    must_ok(a, dbpool_pin(a), "PIN");
    long pid = (long)h_scalar(a, fs_session_id_sql());
    fs_freeze(fs_mysql() ? fs_postmaster() : (pid_t)pid);
    must_ok(a, dbpool_unpin(a), "UNPIN (answered at once; the reset runs behind)");
    cr_assert_eq(pools("clients", "pinned"), 0);
    cr_assert(H_AWAIT(pools("totals", "server_closes") >= 1, 5000),
              "the reset of a frozen server was never given up (/pools servers.busy=%g)",
              pools("servers", "busy"));
    char *log = h_read_log();
    cr_assert(strstr(log, "event=server_op_timeout") && strstr(log, "op=reset"),
              "the daemon does not say why it closed the connection");
    free(log);
    if (fs_mysql())
        fs_thaw_all();
    must_ok(a, dbpool_begin(a, 0), "BEGIN a");
    cr_assert_eq(h_scalar(a, "SELECT 1"), 1, "a is served");
    must_ok(b, dbpool_begin(b, 0), "BEGIN b");
    cr_assert_eq(h_scalar(b, "SELECT 2"), 2, "b too, at the same time: the place is free");
    must_ok(a, dbpool_rollback(a), "ROLLBACK a");
    must_ok(b, dbpool_rollback(b), "ROLLBACK b");
    fs_thaw_all();
    dbpool_close(a);
    dbpool_close(b);
    h_stop_ok();
}

/* The same bound for a health check (PostgreSQL: one idle connection's
 * backend frozen; on MariaDB only the whole server can be): the check is
 * given up after `timeout`, its connection closed, and the pool serves on
 * new connections. */
Test(pinfaults, a_health_check_that_never_completes_is_given_up)
{
    need_server();
    if (fs_mysql())
        cr_skip_test("MariaDB freezes as a whole: nothing would serve afterwards");
    h_start(&(struct h_opts){ .max_open_conns = 2,
                               .pool_settings = "timeout = \"1s\"; healthCheckInterval = \"200ms\"; "
                                                "retryDelay = \"100ms\"; retryMaxDelay = \"500ms\";" });
    dbpool_conn *a = h_connect();

    fs_freeze((pid_t)h_scalar(a, fs_session_id_sql()));
    cr_assert(H_AWAIT(pools("totals", "server_closes") >= 1, 6000),
              "the health check of a frozen backend was never given up");
    char *log = h_read_log();
    cr_assert(strstr(log, "op=health_check"), "the daemon does not say why");
    free(log);
    cr_assert(H_AWAIT(h_health_status() == 200, 5000), "the pool is healthy again");
    cr_assert_eq(h_scalar(a, "SELECT 5"), 5, "served on a new connection");
    fs_thaw_all();
    dbpool_close(a);
    h_stop_ok();
}

/* ------------------------------------------------------------- what the reset clears */

/* The next session's statement runs on the connection that was pinned
 * (the pool hands out the most recently returned one first). */
static void expect_same_connection(dbpool_conn *c, long pid)
{
    cr_assert(H_AWAIT(pools("servers", "busy") == 0, 5000), "the reset never completed");
    cr_assert_eq((long)h_scalar(c, fs_session_id_sql()), pid,
                 "not the connection that was pinned: the test checks nothing");
}

static void expect_sql_error(dbpool_conn *c, const char *sql, const char *what)
{
    h_expect_error(c, dbpool_exec(c, h_sql(sql)), DBPOOL_E_SQL, what);
}

/* PostgreSQL: DISCARD ALL drops settings, LISTEN, temporary tables,
 * session advisory locks, cursors and prepared statements; the daemon's
 * own cached statements are prepared again, on that very connection. */
static void pg_leave_state(dbpool_conn *a)
{
    dbpool_value v = dbpool_int(7);
    for (int i = 0; i < 3; i++)   /* cached (prepared by name) on this connection */
        dbpool_result_free(h_query(a, "SELECT ? + 1", &v, 1));
    h_exec(a, "SET statement_timeout = '1min'");
    h_exec(a, "SET search_path = pg_catalog");
    h_exec(a, "LISTEN pin_channel");
    h_exec(a, "CREATE TEMP TABLE pin_tmp (a int)");
    h_exec(a, "SELECT pg_advisory_lock(4243)");
    h_exec(a, "PREPARE pin_stmt AS SELECT 1");
    h_exec(a, "DECLARE pin_cur CURSOR WITH HOLD FOR SELECT 1");
}

static void pg_expect_clean(dbpool_conn *b)
{
    dbpool_value v = dbpool_int(7);
    cr_assert_eq(h_scalar(b, "SELECT count(*) FROM pg_settings WHERE name IN "
                             "('statement_timeout', 'search_path') AND source = 'session'"), 0,
                 "session settings survived");
    cr_assert_eq(h_scalar(b, "SELECT count(*) FROM pg_listening_channels()"), 0, "LISTEN survived");
    cr_assert_eq(h_scalar(b, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                             "pid = pg_backend_pid()"), 0, "the advisory lock survived");
    cr_assert_eq(h_scalar(b, "SELECT count(*) FROM pg_prepared_statements WHERE name = 'pin_stmt'"),
                 0, "the PREPAREd statement survived");
    cr_assert_eq(h_scalar(b, "SELECT count(*) FROM pg_cursors WHERE name = 'pin_cur'"), 0,
                 "the cursor survived");
    expect_sql_error(b, "SELECT a FROM pin_tmp", "the temporary table survived");
    for (int i = 0; i < 3; i++)   /* the cache forgot what DISCARD ALL dropped */
        dbpool_result_free(h_query(b, "SELECT ? + 1", &v, 1));
}

/* MariaDB: COM_RESET_CONNECTION drops GET_LOCK locks, temporary tables,
 * user variables and session settings; the pool's database is selected
 * again. */
static void my_leave_state(dbpool_conn *a)
{
    h_exec(a, "SELECT GET_LOCK('pin_lock', 5)");
    h_exec(a, "CREATE TEMPORARY TABLE pin_tmp (a INT)");
    h_exec(a, "SET @pin_var = 42");
    h_exec(a, "SET SESSION wait_timeout = 12345");
    h_exec(a, "SET SESSION sql_mode = 'ANSI_QUOTES'");
    h_exec(a, "USE information_schema");
}

static void my_expect_clean(dbpool_conn *b)
{
    cr_assert_eq(h_scalar(b, "SELECT IS_FREE_LOCK('pin_lock')"), 1, "GET_LOCK's lock survived");
    cr_assert_eq(h_scalar(b, "SELECT @pin_var IS NULL"), 1, "the user variable survived");
    cr_assert_eq(h_scalar(b, "SELECT @@session.wait_timeout = @@global.wait_timeout"), 1,
                 "SET SESSION wait_timeout survived");
    cr_assert_eq(h_scalar(b, "SELECT @@session.sql_mode = @@global.sql_mode"), 1,
                 "SET SESSION sql_mode survived");
    cr_assert_eq(h_scalar(b, "SELECT DATABASE() <> 'information_schema'"), 1,
                 "USE survived: the next client runs in another database");
    expect_sql_error(b, "SELECT a FROM pin_tmp", "the temporary table survived");
}

static void reset_clears(bool by_disconnect)
{
    need_server();
    h_start(&(struct h_opts){ .max_open_conns = 2, .pool_settings = "maxPinned = 1;" });
    dbpool_conn *a = h_connect(), *b = h_connect();

    must_ok(a, dbpool_pin(a), "PIN");
    long pid = (long)h_scalar(a, fs_session_id_sql());
    (fs_mysql() ? my_leave_state : pg_leave_state)(a);
    if (by_disconnect)
        dbpool_close(a);
    else
        must_ok(a, dbpool_unpin(a), "UNPIN");
    expect_same_connection(b, pid);
    (fs_mysql() ? my_expect_clean : pg_expect_clean)(b);
    if (!by_disconnect)
        dbpool_close(a);
    dbpool_close(b);
    h_stop_ok();
}

Test(pinfaults, unpin_leaves_no_session_state_on_the_connection)
{
    reset_clears(false);
}

Test(pinfaults, a_disconnect_leaves_no_session_state_on_the_connection)
{
    reset_clears(true);
}
