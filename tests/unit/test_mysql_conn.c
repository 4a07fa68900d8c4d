/*
 * test_mysql_conn.c — the MySQL driver's connection side (src/backend/mysql/:
 * connect, the non-blocking wait, ping, reset, the idle watch, cancel,
 * close) driven through struct backend_driver on a real libevent loop
 * against a real MariaDB server started by tests/mysql/mysql-harness.sh:
 *
 *   eval "$(bash tests/mysql/mysql-harness.sh start /tmp/myt)"
 *   ./test_mysql_conn
 *   bash tests/mysql/mysql-harness.sh stop /tmp/myt
 *
 * The server is found through DBPOOL_TEST_MYSQL_HOST (the socket path),
 * _USER, _DB and _PASSWORD_FILE. Without DBPOOL_TEST_MYSQL_HOST every test
 * FAILS (it does not skip): a missing server must not look like a pass.
 *
 * A blocking Connector/C connection of the test itself ("side") is the
 * other client: it KILLs the driver's connection, reads the processlist.
 * Every wait of the driver runs the loop until a callback sets a flag, with
 * a timer guard (driver_loop.c): a hang fails the test.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <event2/event.h>
#include <event2/thread.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mysql.h>

#include "backend/backend.h"
#include "backend/mysql/backend_mysql.h"
#include "backend/mysql/mysql_internal.h"
#include "backend/mysql/mysql_options.h"
#include "driver_loop.h"

static const struct backend_driver *drv = &backend_mysql_driver;
static struct event_base *base;
static struct pool_config cfg;
static struct mysql_options opts;   /* cfg.driver_opts */
static char pool_name[] = "mytest";
static char host[256], dbname[128], user[128], password[128];
static char loopback[] = "127.0.0.1";
static char ssl_mode[32];

/* ------------------------------------------------------------ fixtures */

static void copy_env(char *dst, size_t size, const char *name, const char *fallback)
{
    const char *v = getenv(name);
    snprintf(dst, size, "%s", v && *v ? v : fallback);
}

static void read_password(void)
{
    const char *path = getenv("DBPOOL_TEST_MYSQL_PASSWORD_FILE");
    FILE *f = path ? fopen(path, "r") : NULL;

    snprintf(password, sizeof(password), "secret");
    if (!f)
        return;
    if (fgets(password, sizeof(password), f))
        password[strcspn(password, "\r\n")] = '\0';
    fclose(f);
}

static void setup(void)
{
    cr_assert(getenv("DBPOOL_TEST_MYSQL_HOST") && *getenv("DBPOOL_TEST_MYSQL_HOST"),
              "DBPOOL_TEST_MYSQL_HOST is not set: run under tests/mysql/mysql-harness.sh "
              "(eval \"$(bash tests/mysql/mysql-harness.sh start DIR)\"), which starts a "
              "MariaDB server and exports DBPOOL_TEST_MYSQL_*");
    copy_env(host, sizeof(host), "DBPOOL_TEST_MYSQL_HOST", "");
    copy_env(dbname, sizeof(dbname), "DBPOOL_TEST_MYSQL_DB", "dbpool_test");
    copy_env(user, sizeof(user), "DBPOOL_TEST_MYSQL_USER", "dbpool");
    read_password();
    cr_assert_eq(evthread_use_pthreads(), 0);
    base = event_base_new();
    cr_assert_not_null(base);
    driver_loop_init(base, drv, 30);
    memset(&cfg, 0, sizeof(cfg));
    cfg.name = pool_name;
    cfg.type = BACKEND_MYSQL;
    cfg.host = host;
    cfg.port = 3306;
    cfg.dbname = dbname;
    cfg.username = user;
    cfg.password = password;
    cfg.timeout_ms = 5000;
    cfg.max_open_conns = 5;
    /* Run the suite over TLS against a server that has it. */
    copy_env(ssl_mode, sizeof(ssl_mode), "DBPOOL_TEST_MYSQL_SSL_MODE", "");
    opts = mysql_default_options;
    if (ssl_mode[0])
        opts.ssl_mode = ssl_mode;
    cfg.driver_opts = &opts;
}

static void teardown(void)
{
    drv->quiesce();
    event_base_free(base);
    libevent_global_shutdown();
}

TestSuite(myconn, .init = setup, .fini = teardown, .timeout = 120);

/* ------------------------------------------------------------- helpers */

/* The test's own blocking connection to the server. */
static MYSQL *side_open(void)
{
    MYSQL *m = mysql_init(NULL);

    cr_assert_not_null(m);
    cr_assert_not_null(mysql_real_connect(m, "localhost", user, password, dbname, 0, host, 0),
                       "side connection: %s", mysql_error(m));
    return m;
}

static void side_sql(MYSQL *m, const char *sql)
{
    cr_assert_eq(mysql_query(m, sql), 0, "%s: %s", sql, mysql_error(m));
}

static long long side_int(MYSQL *m, const char *sql)
{
    MYSQL_RES *res;
    MYSQL_ROW row;
    long long v;

    side_sql(m, sql);
    res = mysql_store_result(m);
    cr_assert_not_null(res, "%s: no result", sql);
    row = mysql_fetch_row(res);
    cr_assert_not_null(row, "%s: no row", sql);
    v = row[0] ? atoll(row[0]) : -1;
    mysql_free_result(res);
    return v;
}

static void side_kill(struct backend_conn *c, const char *what)
{
    MYSQL *m = side_open();
    char sql[96];

    snprintf(sql, sizeof(sql), "KILL %s %lu", what, my_conn(c)->thread_id);
    side_sql(m, sql);
    mysql_close(m);
}

static struct backend_conn *new_conn(void)
{
    char err[256] = "";
    struct backend_conn *c = drv->conn_new(&cfg, base, ROLE_WRITER, err, sizeof(err));
    cr_assert_not_null(c, "conn_new: %s", err);
    return c;
}

static struct backend_result try_connect(struct backend_conn **out)
{
    struct backend_conn *c = new_conn();
    struct opdone d = { 0 };

    drv->connect(c, on_done, &d);
    cr_assert(!d.done, "connect completed synchronously");
    run_until(&d.done);
    if (!d.res.ok) {
        drv->close(c);
        c = NULL;
    }
    if (out)
        *out = c;
    else if (c)
        drv->close(c);
    return d.res;
}

static struct backend_conn *open_conn(void)
{
    struct backend_conn *c;
    struct backend_result r = try_connect(&c);

    cr_assert(r.ok, "connect: %s", r.err.message);
    cr_assert_eq(r.txstate, 'I');
    return c;
}

static struct backend_result do_ping(struct backend_conn *c)
{
    struct opdone d = { 0 };

    drv->ping(c, on_done, &d);
    cr_assert(!d.done, "ping completed synchronously");
    run_until(&d.done);
    return d.res;
}

static struct backend_result do_reset(struct backend_conn *c)
{
    struct opdone d = { 0 };

    drv->reset(c, on_done, &d);
    cr_assert(!d.done, "reset completed synchronously");
    run_until(&d.done);
    return d.res;
}

static int bound_tcp_socket(int *port)
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

/* A timer that counts its ticks: the loop ran (was not blocked). */
struct ticker {
    struct event *ev;
    int ticks;
};

static void tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ((struct ticker *)arg)->ticks++;
}

static void ticker_start(struct ticker *t, int ms)
{
    struct timeval tv = { 0, ms * 1000 };

    t->ticks = 0;
    t->ev = event_new(base, -1, EV_PERSIST, tick, t);
    cr_assert_not_null(t->ev);
    cr_assert_eq(event_add(t->ev, &tv), 0);
}

static void ticker_stop(struct ticker *t)
{
    event_free(t->ev);
}

struct lost_flag {
    bool lost;
    int calls;
};

static void on_lost(void *arg)
{
    struct lost_flag *l = arg;
    l->lost = true;
    l->calls++;
}

/* ------------------------------------------------------------- connect */

Test(myconn, connect_and_server_info)
{
    struct backend_conn *c = new_conn();
    MYSQL *side;
    char sql[512];

    cr_assert_str_eq(drv->server_info(c), "");
    drv->close(c);
    c = open_conn();
    cr_assert(strncmp(drv->server_info(c), "MariaDB 10.", 11) == 0, "%s", drv->server_info(c));
    cr_assert_null(strstr(drv->server_info(c), "-MariaDB"), "%s", drv->server_info(c));
    cr_assert_eq(drv->txstate(c), 'I');
    cr_assert_neq(my_conn(c)->thread_id, 0);
    /* The server sees our connection, as our user, in our database. */
    side = side_open();
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM information_schema.processlist "
             "WHERE id = %lu AND user = '%s' AND db = '%s'", my_conn(c)->thread_id, user, dbname);
    cr_assert_eq(side_int(side, sql), 1);
    mysql_close(side);
    drv->close(c);
}

Test(myconn, driver_basics)
{
    int w = -1, r = -1;
    char err[256] = "";
    static char two[] = "a.example,b.example";

    cr_assert_str_eq(drv->name, "mysql");
    cfg.max_open_conns = 7;
    drv->pool_limits(&cfg, &w, &r);
    cr_assert_eq(w, 7);
    cr_assert_eq(r, 0);
    cr_assert_eq(drv->route("SELECT 1", 8), ROLE_WRITER);
    cr_assert_str_eq(drv->begin_sql(false, ROLE_WRITER), "BEGIN");
    cr_assert_str_eq(drv->begin_sql(true, ROLE_WRITER), "START TRANSACTION READ ONLY");
    cr_assert_str_eq(drv->tx_sql(BTX_COMMIT), "COMMIT");
    cr_assert_str_eq(drv->tx_sql(BTX_ROLLBACK), "ROLLBACK");
    cr_assert_str_eq(drv->tx_sql(BTX_SAVEPOINT), "SAVEPOINT");
    cr_assert_str_eq(drv->tx_sql(BTX_RELEASE), "RELEASE SAVEPOINT");
    cr_assert_str_eq(drv->tx_sql(BTX_ROLLBACK_TO), "ROLLBACK TO SAVEPOINT");
    cr_assert(!drv->begin_with);
    cr_assert_not_null(drv->quiesce);
    cr_assert_not_null(drv->reset);
    cr_assert_not_null(drv->watch_idle);
    cfg.host = two;
    cr_assert_null(drv->conn_new(&cfg, base, ROLE_WRITER, err, sizeof(err)));
    cr_assert(strstr(err, "connects to one host"), "%s", err);
    cfg.host = NULL;
    cr_assert_null(drv->conn_new(&cfg, base, ROLE_WRITER, err, sizeof(err)));
    cr_assert(strstr(err, "host is required"), "%s", err);
}

Test(myconn, wrong_password_fails_with_vendor_code_without_echoing_it)
{
    static char wrong[] = "wrong-pw-XYZZY";
    struct backend_result r;
    double t0 = now_s();

    cfg.password = wrong;
    r = try_connect(NULL);
    cr_assert(!r.ok);
    cr_assert_eq(r.err.code, DBPOOL_E_UNAVAILABLE, "%d %s", r.err.code, r.err.message);
    cr_assert(r.broken);
    cr_assert_eq(r.err.vendor_code, 1045, "%d %s", r.err.vendor_code, r.err.message);
    cr_assert_str_eq(r.err.sqlstate, "28000");
    cr_assert(strstr(r.err.message, "Access denied for user"), "%s", r.err.message);
    cr_assert(strstr(r.err.message, "check the pool's username and password"), "%s",
              r.err.message);
    cr_assert_null(strstr(r.err.message, "XYZZY"), "%s", r.err.message);
    cr_assert_lt(now_s() - t0, 5.0);
}

Test(myconn, unknown_database)
{
    static char nosuch[] = "nosuch_db";
    struct backend_result r;

    cfg.dbname = nosuch;
    r = try_connect(NULL);
    cr_assert(!r.ok);
    cr_assert_eq(r.err.code, DBPOOL_E_UNAVAILABLE);
    cr_assert_eq(r.err.vendor_code, 1049, "%d %s", r.err.vendor_code, r.err.message);
    cr_assert(strstr(r.err.message, "Unknown database 'nosuch_db'"), "%s", r.err.message);
}

Test(myconn, refused_port_and_missing_socket_fail_fast)
{
    static char nosock[] = "/nonexistent-dbpoold-dir/mysqld.sock";
    struct backend_result r;
    double t0 = now_s();
    int port, fd = bound_tcp_socket(&port);

    close(fd);   /* nobody listens there now */
    cfg.host = loopback;
    cfg.port = port;
    r = try_connect(NULL);
    cr_assert(!r.ok);
    cr_assert_eq(r.err.code, DBPOOL_E_UNAVAILABLE);
    cr_assert(r.broken);
    cr_assert(strstr(r.err.message, "127.0.0.1"), "%s", r.err.message);
    cr_assert_eq(r.err.vendor_code, 2002, "%d %s", r.err.vendor_code, r.err.message);

    cfg.host = nosock;
    r = try_connect(NULL);
    cr_assert(!r.ok);
    cr_assert_eq(r.err.code, DBPOOL_E_UNAVAILABLE);
    cr_assert(strstr(r.err.message, nosock), "%s", r.err.message);
    cr_assert_lt(now_s() - t0, 5.0);
}

/* A server that accepts TCP connections (the kernel does) but never sends
 * its greeting: the connect times out after cfg.timeout_ms, and the loop
 * runs meanwhile. */
Test(myconn, connect_timeout_does_not_block_the_loop)
{
    struct backend_result r;
    struct ticker t;
    char expect[160];
    double t0, dt;
    int port, fd = bound_tcp_socket(&port);

    cr_assert_eq(listen(fd, 8), 0);
    cfg.host = loopback;
    cfg.port = port;
    cfg.timeout_ms = 400;
    ticker_start(&t, 20);
    t0 = now_s();
    r = try_connect(NULL);
    dt = now_s() - t0;
    ticker_stop(&t);
    cr_assert(!r.ok);
    cr_assert_eq(r.err.code, DBPOOL_E_UNAVAILABLE);
    cr_assert(r.broken);
    snprintf(expect, sizeof(expect), "connection to MySQL at 127.0.0.1:%d timed out after 400 ms",
             port);
    cr_assert(strncmp(r.err.message, expect, strlen(expect)) == 0, "%s", r.err.message);
    cr_assert_geq(dt, 0.35);
    cr_assert_lt(dt, 3.0);
    cr_assert_geq(t.ticks, 10, "the loop ran only %d ticks of 20 ms in %.2f s", t.ticks, dt);
    close(fd);
}

Test(myconn, unresolvable_host_fails_fast)
{
    static char bad[] = "no-such-host.invalid";
    struct backend_result r;
    double t0 = now_s();

    cfg.host = bad;
    r = try_connect(NULL);
    cr_assert(!r.ok);
    cr_assert_eq(r.err.code, DBPOOL_E_UNAVAILABLE);
    cr_assert(strstr(r.err.message, "no-such-host.invalid"), "%s", r.err.message);
    cr_assert_lt(now_s() - t0, 10.0);
}

/* A host NAME goes through the resolver (off the loop), then TCP to its
 * address: the message names both. (The harness server listens on its
 * socket only, so the connection is refused.) */
Test(myconn, host_name_is_resolved_then_connected_to_by_address)
{
    static char localhost[] = "localhost";
    struct backend_result r;
    char expect[96];
    int port, fd = bound_tcp_socket(&port);

    close(fd);
    cfg.host = localhost;
    cfg.port = port;
    r = try_connect(NULL);
    cr_assert(!r.ok);
    cr_assert_eq(r.err.code, DBPOOL_E_UNAVAILABLE);
    snprintf(expect, sizeof(expect), "localhost:%d (", port);
    cr_assert(strstr(r.err.message, expect), "%s", r.err.message);
    cr_assert_eq(r.err.vendor_code, 2002, "%d %s", r.err.vendor_code, r.err.message);
}

Test(myconn, close_during_connect_and_without_connect)
{
    struct backend_conn *c = new_conn();
    struct opdone d = { 0 };
    int port, fd = bound_tcp_socket(&port);

    drv->close(c);   /* never connected */
    cr_assert_eq(listen(fd, 8), 0);
    cfg.host = loopback;
    cfg.port = port;
    c = new_conn();
    drv->connect(c, on_done, &d);
    run_for(50);
    drv->close(c);   /* waiting for the greeting: the callback never comes */
    run_for(100);
    cr_assert(!d.done);
    close(fd);
}

/* sslMode REQUIRED against a server without TLS (the harness's): the
 * connect fails and says why. (With DBPOOL_TEST_MYSQL_SSL_MODE=REQUIRED and
 * a server that has TLS, every other test runs over TLS and this one
 * checks the cipher instead.) */
Test(myconn, tls_required)
{
    static char required[] = "REQUIRED";
    struct backend_conn *c;
    struct backend_result r;
    bool server_tls = ssl_mode[0] != '\0';

    opts.ssl_mode = required;
    r = try_connect(&c);
    if (server_tls) {
        cr_assert(r.ok, "%s", r.err.message);
        cr_assert_not_null(mysql_get_ssl_cipher(my_conn(c)->m));
        cr_assert(do_ping(c).ok);
        run_for(300);   /* idle: TLS records the server sends must not look like a close */
        cr_assert(do_ping(c).ok);
        drv->close(c);
        return;
    }
    cr_assert(!r.ok);
    cr_assert_eq(r.err.code, DBPOOL_E_UNAVAILABLE);
    cr_assert(strstr(r.err.message, "SSL") || strstr(r.err.message, "TLS"), "%s",
              r.err.message);
}

/* ---------------------------------------------------------- ping, reset */

Test(myconn, ping_and_reset)
{
    struct backend_conn *c = open_conn();
    struct backend_result r;

    for (int i = 0; i < 3; i++) {
        r = do_ping(c);
        cr_assert(r.ok, "ping: %s", r.err.message);
        cr_assert_eq(r.txstate, 'I');
    }
    r = do_reset(c);
    cr_assert(r.ok, "reset: %s", r.err.message);
    cr_assert_eq(r.txstate, 'I');
    r = do_ping(c);
    cr_assert(r.ok, "ping after reset: %s", r.err.message);
    drv->close(c);
}

Test(myconn, ping_of_a_killed_connection_is_broken_with_the_reason)
{
    struct backend_conn *c = open_conn();
    struct backend_result r;

    side_kill(c, "CONNECTION");
    r = do_ping(c);
    cr_assert(!r.ok);
    cr_assert_eq(r.err.code, DBPOOL_E_CONN_LOST, "%d %s", r.err.code, r.err.message);
    cr_assert(r.broken);
    cr_assert(strstr(r.err.message, "pool opens a new one"), "%s", r.err.message);
    drv->close(c);
}

Test(myconn, exec_and_ping_before_connect_are_broken)
{
    struct backend_conn *c = new_conn();
    struct backend_result r = do_ping(c);

    cr_assert(!r.ok);
    cr_assert(r.broken);
    cr_assert_eq(r.err.code, DBPOOL_E_CONN_LOST);
    drv->close(c);
}

/* ----------------------------------------------------------- idle watch */

Test(myconn, idle_watch_reports_a_killed_connection)
{
    struct backend_conn *c = open_conn();
    struct lost_flag l = { 0 };
    struct backend_result r;

    drv->watch_idle(c, on_lost, &l);
    run_for(50);
    cr_assert(!l.lost, "a healthy idle connection was reported lost");
    side_kill(c, "CONNECTION");
    run_until(&l.lost);
    run_for(50);
    cr_assert_eq(l.calls, 1);
    r = do_ping(c);
    cr_assert(!r.ok);
    cr_assert(r.broken);
    cr_assert_eq(r.err.code, DBPOOL_E_CONN_LOST);
    cr_assert(strstr(r.err.message, "closed the connection"), "%s", r.err.message);
    drv->close(c);
}

Test(myconn, unwatched_connection_is_not_reported_and_fails_its_next_operation)
{
    struct backend_conn *c = open_conn();
    struct lost_flag l = { 0 };
    struct backend_result r;

    drv->watch_idle(c, on_lost, &l);
    drv->unwatch_idle(c);
    side_kill(c, "CONNECTION");
    run_for(200);
    cr_assert(!l.lost);
    r = do_ping(c);
    cr_assert(!r.ok);
    cr_assert(r.broken);
    cr_assert_eq(r.err.code, DBPOOL_E_CONN_LOST);
    drv->close(c);
}

Test(myconn, watch_of_a_dead_connection_reports_from_the_loop)
{
    struct backend_conn *c = open_conn();
    struct lost_flag l = { 0 };

    side_kill(c, "CONNECTION");
    run_for(200);   /* the driver notices while unwatched */
    drv->watch_idle(c, on_lost, &l);
    cr_assert(!l.lost, "lost() ran inside watch_idle()");
    run_until(&l.lost);
    cr_assert_eq(l.calls, 1);
    drv->close(c);
}

Test(myconn, close_ends_the_watch)
{
    struct backend_conn *c = open_conn();
    struct lost_flag l = { 0 };
    MYSQL *side = side_open();
    char sql[128];

    drv->watch_idle(c, on_lost, &l);
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM information_schema.processlist WHERE id = %lu",
             my_conn(c)->thread_id);
    drv->close(c);
    run_for(100);
    cr_assert(!l.lost);
    /* COM_QUIT went out: the server ends the session (polled, bounded). */
    for (int i = 0; i < 100 && side_int(side, sql) != 0; i++)
        run_for(10);
    cr_assert_eq(side_int(side, sql), 0);
    mysql_close(side);
}

/* Many connections opened and closed: no descriptor or event leaks show
 * as failures, and the server sees them all go. */
Test(myconn, churn)
{
    for (int i = 0; i < 30; i++) {
        struct backend_conn *c = open_conn();
        if (i % 3 == 0)
            cr_assert(do_ping(c).ok);
        drv->close(c);
    }
}

/* -------------------------------------------------------------- cancel */

/* A statement that runs for 1000 s unless it is killed (KILL QUERY makes
 * it fail with 1317; BENCHMARK() and a lone SLEEP() would just return). */
#define LONG_SQL "SELECT SUM(SLEEP(0.01)) FROM seq_1_to_100000"
/* A million rows: x = 1.., label 'row x' (MariaDB's Sequence engine). */
#define BIG_SQL "SELECT seq AS x, CONCAT('row ', seq) AS label FROM seq_1_to_1000000"

/* How many server sessions run sql_like (processlist.info LIKE ...). */
static long long running(MYSQL *side, const char *info_like)
{
    char sql[256];

    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM information_schema.processlist "
             "WHERE info LIKE '%s' AND id <> CONNECTION_ID()", info_like);
    return side_int(side, sql);
}

Test(myconn, cancel_running_statement)
{
    struct backend_conn *c = open_conn();
    struct collect k = { 0 };
    struct later t = { 0 };
    struct ticker tk;
    double t0 = now_s();

    ticker_start(&tk, 20);
    start_exec(c, LONG_SQL, NULL, 0, 0, &collect_sink, &k);
    schedule(&t, 200, do_cancel, c);
    run_until(&k.done);
    unschedule(&t);
    ticker_stop(&tk);
    cr_assert(!k.res.ok);
    cr_assert_eq(k.res.err.code, DBPOOL_E_CANCELED, "%d %s", k.res.err.code, k.res.err.message);
    cr_assert_eq(k.res.err.vendor_code, 1317, "%d", k.res.err.vendor_code);
    cr_assert_str_eq(k.res.err.sqlstate, "57014");
    cr_assert(!k.res.broken);
    cr_assert_eq(k.res.txstate, 'I');
    cr_assert_lt(now_s() - t0, 5.0);
    cr_assert_geq(tk.ticks, 5, "the loop was blocked (%d ticks)", tk.ticks);
    collect_free(&k);
    drv->cancel(c);   /* nothing runs: harmless */
    cr_assert_eq(query_int(c, "SELECT 42"), 42);
    drv->close(c);
}

Test(myconn, cancel_inside_transaction_keeps_it_open)
{
    struct backend_conn *c = open_conn();
    struct collect k = { 0 };
    struct later t = { 0 };

    exec_ok(c, "BEGIN");
    cr_assert_eq(drv->txstate(c), 'T');
    start_exec(c, LONG_SQL, NULL, 0, 0, &collect_sink, &k);
    schedule(&t, 100, do_cancel, c);
    run_until(&k.done);
    unschedule(&t);
    cr_assert_eq(k.res.err.code, DBPOOL_E_CANCELED, "%s", k.res.err.message);
    cr_assert_eq(k.res.txstate, 'T');   /* MySQL: the statement ends, the transaction not */
    collect_free(&k);
    cr_assert_eq(exec_ok(c, "ROLLBACK").txstate, 'I');
    drv->close(c);
}

/* A cancel that loses the race against the statement's own completion
 * must not hit the next statement: the result is held until the KILL has
 * been answered. */
Test(myconn, late_cancel_does_not_hit_the_next_statement)
{
    struct backend_conn *c = open_conn();
    struct collect k;

    for (int i = 0; i < 20; i++) {
        memset(&k, 0, sizeof(k));
        start_exec(c, "SELECT 1", NULL, 0, 0, &collect_sink, &k);
        drv->cancel(c);
        run_until(&k.done);
        cr_assert(k.res.ok || k.res.err.code == DBPOOL_E_CANCELED, "%s", k.res.err.message);
        cr_assert(!k.res.broken, "%s", k.res.err.message);
        collect_free(&k);
        run_q(c, "SELECT SLEEP(0.02)", NULL, 0, 0, &k);
        cr_assert(k.res.ok, "round %d: %s", i, k.res.err.message);
        cr_assert_eq(k.cells[0][0].i, 0, "round %d: the sleep was interrupted", i);
        collect_free(&k);
    }
    drv->close(c);
}

/* cancel() at once, before the statement has even been sent. */
Test(myconn, cancel_right_after_exec)
{
    struct backend_conn *c = open_conn();
    struct collect k = { 0 };
    double t0 = now_s();

    start_exec(c, LONG_SQL, NULL, 0, 0, &collect_sink, &k);
    drv->cancel(c);
    run_until(&k.done);
    cr_assert_eq(k.res.err.code, DBPOOL_E_CANCELED, "%d %s", k.res.err.code, k.res.err.message);
    cr_assert_lt(now_s() - t0, 10.0);
    collect_free(&k);
    cr_assert_eq(query_int(c, "SELECT 5"), 5);
    drv->close(c);
}

/* Cancel a stream paused by the sink: done comes without resume(), and the
 * connection is usable after (never handed on half-read). */
Test(myconn, cancel_paused_stream)
{
    struct backend_conn *c = open_conn();
    struct stream s = { .pause_every = 1 };
    struct later t = { 0 };

    stream_start(&s, c, BIG_SQL, NULL);
    run_until(&s.paused);
    schedule(&t, 100, do_cancel, c);
    run_until(&s.done);
    unschedule(&t);
    cr_assert(!s.bad);
    cr_assert(!s.res.ok || s.rows == 1, "%s", s.res.err.message);
    cr_assert_eq(s.rows, 1);
    if (!s.res.broken)
        cr_assert_eq(query_int(c, "SELECT 7"), 7);
    drv->close(c);
}

/* close() with a statement running: the server stops computing it. */
Test(myconn, close_with_statement_running_kills_it)
{
    struct backend_conn *c = open_conn();
    MYSQL *side = side_open();
    bool never = false;
    struct backend_sink sink = { NULL, never_row, never_done };
    const char *like = "SELECT SUM(SLEEP(0.01))%";

    start_exec(c, LONG_SQL, NULL, 0, 0, &sink, &never);
    for (int i = 0; i < 200 && running(side, like) == 0; i++)
        run_for(10);
    cr_assert_eq(running(side, like), 1);
    drv->close(c);
    for (int i = 0; i < 300 && running(side, like) != 0; i++)
        run_for(10);
    cr_assert_eq(running(side, like), 0, "the statement still runs after close()");
    cr_assert(!never);
    mysql_close(side);
}

/* Several connections cancelled at once, each by its own KILL. */
Test(myconn, concurrent_cancels)
{
    struct backend_conn *c[4];
    struct collect k[4];
    bool all;
    int rounds = 0;

    for (int i = 0; i < 4; i++) {
        c[i] = open_conn();
        memset(&k[i], 0, sizeof(k[i]));
        start_exec(c[i], LONG_SQL, NULL, 0, 0, &collect_sink, &k[i]);
    }
    run_for(100);
    for (int i = 0; i < 4; i++)
        drv->cancel(c[i]);
    do {
        run_for(10);
        all = true;
        for (int i = 0; i < 4; i++)
            all = all && k[i].done;
    } while (!all && ++rounds < 1000);
    cr_assert(all, "not every cancelled statement ended");
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(k[i].res.err.code, DBPOOL_E_CANCELED, "%d: %s", i, k[i].res.err.message);
        collect_free(&k[i]);
        cr_assert_eq(query_int(c[i], "SELECT 3"), 3);
        drv->close(c[i]);
    }
}

/* --------------------------------------------------------------- reset */

/* reset() (COM_RESET_CONNECTION) leaves nothing of a client's session for
 * the next one: the open transaction (its writes undone), user variables,
 * temporary tables; prepared statements run again after it. */
Test(myconn, reset_ends_the_transaction_and_the_session_state)
{
    struct backend_conn *c = open_conn();
    struct backend_result r;
    struct collect k;
    dbpool_value p = dbpool_int(5);

    exec_ok(c, "CREATE TABLE IF NOT EXISTS reset_t (i INT PRIMARY KEY) ENGINE=InnoDB");
    exec_ok(c, "DELETE FROM reset_t");
    cr_assert_eq(query_int_p(c, "SELECT ? + 1", &p, 1), 6);   /* a prepared statement */
    exec_ok(c, "SET @dbpool_u = 42");
    exec_ok(c, "CREATE TEMPORARY TABLE reset_tmp (i INT)");
    exec_ok(c, "BEGIN");
    exec_ok(c, "INSERT INTO reset_t VALUES (1)");
    cr_assert_eq(drv->txstate(c), 'T');
    r = do_reset(c);
    cr_assert(r.ok, "reset: %s", r.err.message);
    cr_assert_eq(r.txstate, 'I');
    cr_assert_eq(drv->txstate(c), 'I');
    cr_assert_eq(query_int(c, "SELECT COUNT(*) FROM reset_t"), 0);
    cr_assert_eq(query_int(c, "SELECT @dbpool_u IS NULL"), 1);
    run_q(c, "SELECT * FROM reset_tmp", NULL, 0, 0, &k);
    cr_assert(!k.res.ok);
    cr_assert_eq(k.res.err.vendor_code, 1146, "%d %s", k.res.err.vendor_code, k.res.err.message);
    collect_free(&k);
    cr_assert_eq(query_int_p(c, "SELECT ? + 1", &p, 1), 6);   /* prepared again */
    cr_assert_eq(query_int(c, "SELECT @@autocommit"), 1);
    exec_ok(c, "DROP TABLE reset_t");
    drv->close(c);
}

/* A reset of a connection the server killed reports it broken. */
Test(myconn, reset_of_a_killed_connection_is_broken)
{
    struct backend_conn *c = open_conn();
    struct backend_result r;

    side_kill(c, "CONNECTION");
    r = do_reset(c);
    cr_assert(!r.ok);
    cr_assert(r.broken);
    cr_assert_eq(r.err.code, DBPOOL_E_CONN_LOST, "%d %s", r.err.code, r.err.message);
    drv->close(c);
}
