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
