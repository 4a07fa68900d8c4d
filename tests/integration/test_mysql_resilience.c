/*
 * test_mysql_resilience.c — the MySQL resilience cases (part of the
 * test_mysql program; helpers in mysql_tools.h):
 *
 *   myresilience  an unreachable server; idle server connections and one
 *                 inside a transaction killed with KILL from a side client;
 *                 the server stopped and started again, and crashed
 *                 (SIGKILL) under a transaction: clear errors, /health 503,
 *                 recovery without restarting the daemon.
 *
 * The KILL cases use the main test server. The cases that stop the server
 * use the second one that run-mysql-tests.sh starts
 * ($DBPOOL_TEST_MYSQL_FAULT_DIR) and stop/crash/resume it with
 * mysql-harness.sh ($DBPOOL_TEST_MYSQL_HARNESS, else found from
 * $TOP_SRCDIR). A lock file serializes them across processes before the
 * server is touched, and every test leaves it running (fini resumes it;
 * the next test resumes it too, in case a test process was killed).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "mysql_tools.h"

/* ================================================================ the fault server */

static const char *harness_script(void)
{
    static char path[1024];
    const char *s = getenv("DBPOOL_TEST_MYSQL_HARNESS");
    const char *top = getenv("TOP_SRCDIR");

    if (s && *s)
        return s;
    cr_assert(top && *top, "set DBPOOL_TEST_MYSQL_HARNESS (or TOP_SRCDIR) to find "
              "tests/mysql/mysql-harness.sh");
    snprintf(path, sizeof(path), "%s/tests/mysql/mysql-harness.sh", top);
    cr_assert_eq(access(path, R_OK), 0, "cannot read %s: %s", path, strerror(errno));
    return path;
}

const char *fault_dir(void)
{
    const char *d = getenv("DBPOOL_TEST_MYSQL_FAULT_DIR");
    cr_assert(d && *d, "DBPOOL_TEST_MYSQL_FAULT_DIR is not set: run under "
              "tests/mysql/run-mysql-tests.sh (it starts a second MariaDB for the tests that "
              "stop it)");
    return d;
}

/* `bash mysql-harness.sh CMD DIR` on the fault server; its exit status. */
int fault_harness(const char *cmd)
{
    char line[2048];
    snprintf(line, sizeof(line), "bash '%s' %s '%s' >/dev/null 2>>'%s.log'", harness_script(),
             cmd, fault_dir(), fault_dir());
    int st = system(line);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool fault_server_used;

/* Point the mysql profile at the fault server, after taking its lock (held
 * until this process exits) and making sure it runs. */
void use_fault_server(void)
{
    char path[1200], v[1200];

    snprintf(path, sizeof(path), "%s.lock", fault_dir());
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
    while (flock(fd, LOCK_EX) != 0)
        cr_assert_eq(errno, EINTR, "flock %s: %s", path, strerror(errno));
    fault_server_used = true;
    cr_assert_eq(fault_harness("resume"), 0, "could not start the fault server (see %s.log)",
                 fault_dir());
    snprintf(v, sizeof(v), "%s/mysqld.sock", fault_dir());
    setenv("DBPOOL_TEST_MYSQL_HOST", v, 1);
    snprintf(v, sizeof(v), "%s/password", fault_dir());
    setenv("DBPOOL_TEST_MYSQL_PASSWORD_FILE", v, 1);
}

static void resilience_fini(void)
{
    h_fini();
    if (fault_server_used && fault_harness("resume") != 0)
        fprintf(stderr, "test_mysql: could not start the fault server again (see %s.log)\n",
                fault_dir());
}

TestSuite(myresilience, .init = my_init, .fini = resilience_fini, .timeout = 240);

static const struct h_opts health_opts = {
    .max_open_conns = 2,
    .pool_settings = "healthCheckInterval = \"200ms\"; retryDelay = \"100ms\"; "
                     "maxRetries = 3; acquireTimeout = \"1s\"; timeout = \"2s\";",
};

/* ================================================================ tests */

Test(myresilience, unreachable_server_fails_fast_with_a_clear_error)
{
    char extra[4096] = "", host[128];
    struct h_opts o = { .extra_pools = extra };

    snprintf(host, sizeof(host), "/nonexistent/dbpool-%d/mysqld.sock", (int)getpid());
    add_pool(extra, sizeof(extra), "nosocket", host,
             "maxRetries = 2; retryDelay = \"50ms\"; acquireTimeout = \"500ms\"; "
             "timeout = \"2s\"; maxOpenConns = 2;");
    h_start(&o);
    dbpool_conn *c = connect_pool("nosocket");
    for (int i = 0; i < 2; i++) {
        uint64_t t0 = h_now_ms();
        int rc = dbpool_exec(c, "SELECT 1");
        h_expect_error(c, rc, DBPOOL_E_UNAVAILABLE, "a pool whose socket does not exist");
        cr_assert_lt(h_now_ms() - t0, 2000, "the failure took %llu ms",
                     (unsigned long long)(h_now_ms() - t0));
        cr_assert(dbpool_is_open(c), "the session was closed");
    }
    char *j = h_pool_json("nosocket"), err[300], type[32];
    cr_assert(H_JSON_STR(j, type, "type") && strcmp(type, "mysql") == 0, "%s", j);
    cr_assert_eq(H_JSON_NUM(j, "healthy"), 0, "%s", j);
    cr_assert(H_JSON_STR(j, err, "last_error") && strstr(err, "mysqld.sock"),
              "last_error does not name the socket: %s", j);
    free(j);
    cr_assert_eq(h_health_status(), 503);
    dbpool_close(c);
    dbpool_conn *good = h_connect();
    cr_assert_eq(h_scalar(good, "SELECT 1"), 1, "the good pool is affected");
    dbpool_close(good);
    h_stop_ok();
}

/* Idle server connections killed with KILL: the daemon notices them while
 * idle (with the server's reason in the log), replaces them, and the next
 * statements succeed on new threads. */
Test(myresilience, idle_connections_killed_are_noticed_and_replaced)
{
    char extra[2048] = "";
    struct h_opts o = { .max_open_conns = 2, .extra_pools = extra };

    add_admin_pool(extra, sizeof(extra));
    h_start(&o);
    dbpool_conn *adm = connect_pool("admin");
    dbpool_conn *a = h_connect(), *b = h_connect();
    must_ok(a, dbpool_begin(a, 0), "begin A");
    must_ok(b, dbpool_begin(b, 0), "begin B");
    int64_t ta = thread_id(a), tb = thread_id(b);
    cr_assert_neq(ta, tb);
    must_ok(a, dbpool_commit(a), "commit A");
    must_ok(b, dbpool_commit(b), "commit B");
    cr_assert(H_AWAIT(h_pool_stat("app", "servers", "idle") == 2, 5000), "not 2 idle servers");
    double closes = h_pool_stat("app", "totals", "server_closes");

    kill_thread(adm, ta, false);
    kill_thread(adm, tb, false);
    cr_assert(H_AWAIT(h_pool_stat("app", "totals", "server_closes") >= closes + 2, 5000),
              "the daemon did not notice its idle connections being killed");
    int64_t na = thread_id(a), nb = thread_id(b);
    cr_assert(na != ta && na != tb && nb != ta && nb != tb, "a killed connection was reused");
    cr_assert(!thread_exists(adm, ta) && !thread_exists(adm, tb));
    cr_assert_eq(h_pool_stat("app", "healthy", NULL), 1);
    cr_assert_eq(h_health_status(), 200);
    dbpool_close(a);
    dbpool_close(b);
    dbpool_close(adm);
    h_stop_ok();
}

Test(myresilience, connection_killed_inside_a_transaction)
{
    char extra[2048] = "";
    struct h_opts o = { .max_open_conns = 2, .extra_pools = extra };

    add_admin_pool(extra, sizeof(extra));
    h_start(&o);
    dbpool_conn *adm = connect_pool("admin");
    dbpool_conn *a = h_connect(), *b = h_connect();
    h_create_table(a, "ktx", "id INT");
    must_ok(a, dbpool_begin(a, 0), "begin");
    h_exec(a, "INSERT INTO ktx VALUES (1)");
    int64_t tid = thread_id(a);
    kill_thread(adm, tid, false);
    cr_assert(H_AWAIT(!thread_exists(adm, tid), 5000), "the thread was not killed");
    int rc = dbpool_exec(a, "SELECT 1");
    h_expect_error(a, rc, DBPOOL_E_CONN_LOST, "statement after the connection was killed");
    assert_txstate(a, 'I', "after CONN_LOST");
    cr_assert(dbpool_is_open(a), "CONN_LOST closed the session");
    cr_assert_neq(thread_id(a), tid);
    cr_assert_eq(h_scalar(a, "SELECT COUNT(*) FROM ktx"), 0, "the aborted row is visible");
    cr_assert_eq(h_scalar(b, "SELECT 5"), 5, "another client is affected");

    /* Killed while a statement runs inside the transaction. */
    must_ok(a, dbpool_begin(a, 0), "begin again");
    h_exec(a, "INSERT INTO ktx VALUES (2)");
    struct h_bg_query q = { .c = a, .sql = "SELECT SLEEP(30) /* ktx_marker */" };
    int64_t running = 0;
    h_bg_start(&q);
    cr_assert(H_AWAIT(running_with_marker(adm, "ktx_marker", &running) == 1, 10000),
              "SLEEP never showed up in the processlist");
    uint64_t t0 = h_now_ms();
    kill_thread(adm, running, false);
    cr_assert(H_AWAIT(atomic_load(&q.done), 10000), "the statement never ended");
    cr_assert_eq(pthread_join(q.tid, NULL), 0);
    cr_assert_eq(q.rc, -1);
    cr_assert_eq(q.err.code, DBPOOL_E_CONN_LOST, "%s: %s", dbpool_code_name(q.err.code),
                 q.err.message);
    cr_assert_lt(q.ended_ms - t0, 5000);
    assert_txstate(a, 'I', "after CONN_LOST mid-statement");
    cr_assert_eq(h_scalar(a, "SELECT COUNT(*) FROM ktx"), 0);
    dbpool_close(a);
    dbpool_close(b);
    dbpool_close(adm);
    h_stop_ok();
}

/* The server stopped (a clean shutdown) and started again. */
Test(myresilience, server_stopped_and_started_again)
{
    use_fault_server();
    h_start(&health_opts);
    pid_t daemon = h_pid();
    dbpool_conn *c = h_connect();
    cr_assert_eq(h_scalar(c, "SELECT 1"), 1);
    cr_assert_eq(h_health_status(), 200);

    cr_assert_eq(fault_harness("pause"), 0, "could not stop MariaDB");
    cr_assert(H_AWAIT(h_health_status() == 503, 5000),
              "/health did not turn 503 within 5 s of the server stopping");
    cr_assert_eq(h_pool_stat("app", "healthy", NULL), 0);
    uint64_t t0 = h_now_ms();
    int rc = dbpool_exec(c, "SELECT 1");
    h_expect_error(c, rc, DBPOOL_E_UNAVAILABLE, "statement with the server stopped");
    cr_assert_lt(h_now_ms() - t0, 3000, "the failure took %llu ms",
                 (unsigned long long)(h_now_ms() - t0));
    cr_assert(dbpool_last_error(c)->message[0], "UNAVAILABLE without a message");

    cr_assert_eq(fault_harness("resume"), 0, "could not start MariaDB again");
    cr_assert(H_AWAIT(h_health_status() == 200, 15000),
              "/health did not return to 200 after the server came back");
    cr_assert_eq(h_scalar(c, "SELECT 2"), 2, "statements fail after the server came back");
    cr_assert(h_running() && h_pid() == daemon, "the daemon was restarted");
    dbpool_close(c);
    h_stop_ok();
}

/* The server crashes (SIGKILL) while a session holds a connection in a
 * transaction: that session gets CONN_LOST, /health turns 503, and after
 * the restart everything works again. */
Test(myresilience, server_crashed_under_a_transaction)
{
    use_fault_server();
    h_start(&health_opts);
    dbpool_conn *a = h_connect(), *b = h_connect();
    /* The harness's server trades durability for speed; this test needs the
     * table (not the transaction) to survive the crash. */
    h_exec(a, "SET GLOBAL innodb_flush_log_at_trx_commit = 1");
    h_create_table(a, "crash", "id INT");
    must_ok(a, dbpool_begin(a, 0), "begin");
    h_exec(a, "INSERT INTO crash VALUES (1)");

    cr_assert_eq(fault_harness("crash"), 0, "could not kill MariaDB");
    int rc = dbpool_exec(a, "INSERT INTO crash VALUES (2)");
    h_expect_error(a, rc, DBPOOL_E_CONN_LOST, "statement in a transaction after the crash");
    assert_txstate(a, 'I', "after the crash");
    cr_assert(H_AWAIT(h_health_status() == 503, 5000), "/health did not turn 503 after the crash");
    rc = dbpool_exec(b, "SELECT 1");
    h_expect_error(b, rc, DBPOOL_E_UNAVAILABLE, "statement with the server down");

    cr_assert_eq(fault_harness("resume"), 0, "could not start MariaDB again");
    cr_assert(H_AWAIT(h_health_status() == 200, 30000), "/health did not return to 200");
    cr_assert_eq(h_scalar(a, "SELECT COUNT(*) FROM crash"), 0, "the crashed transaction's row "
                 "survived");
    cr_assert_eq(h_scalar(b, "SELECT 3"), 3);
    dbpool_close(a);
    dbpool_close(b);
    h_stop_ok();
}
