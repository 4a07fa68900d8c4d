/*
 * test_backend_pg.c — the PostgreSQL driver (src/backend/pg/) driven
 * through struct backend_driver on a real libevent loop against a real
 * PostgreSQL 15 server started by tests/pg/pg-harness.sh:
 *
 *   eval "$(bash tests/pg/pg-harness.sh start /tmp/pgt)"
 *   ./test_backend_pg
 *   bash tests/pg/pg-harness.sh stop /tmp/pgt
 *
 * The server is found through PGHOST/PGPORT/PGUSER/PGDATABASE. Without
 * PGHOST every test FAILS (it does not skip): a missing server must not
 * look like a pass. Password tests use the harness's role dbpool_pw
 * (password 'secret', scram-sha-256).
 *
 * Every wait runs the loop until a callback sets a flag, with a timer guard
 * (30 s, or $PG_TEST_GUARD_S, e.g. under valgrind): a hang fails the test
 * instead of hanging it (driver_loop.c, shared with test_backend_sqlite.c). Tests run in parallel processes, so they use TEMP
 * tables only. Each test ends with driver->quiesce().
 *
 * getaddrinfo() is interposed for the whole test process (see "name
 * resolution"): it counts host-name lookups on the loop thread and off it,
 * answers *.invalid names with EAI_NONAME itself, and resolves SLOW_HOST
 * only after slow_ms.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* RTLD_NEXT */
#endif
#include <criterion/criterion.h>
#include <event2/event.h>
#include <event2/thread.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "backend/backend.h"
#include "backend/pg/backend_pg.h"
#include "backend/pg/pg_options.h"
#include "driver_loop.h"

static const struct backend_driver *drv = &backend_pg_driver;
static struct event_base *base;
static struct pool_config cfg;
static char pool_name[] = "pgtest";
static char host[256], dbname[128], user[128];
static char ssl_disable[] = "disable";
static struct pg_options opts = { .ssl_mode = ssl_disable };   /* no statement cache */
static char pw_user[] = "dbpool_pw", pw_secret[] = "secret";
static char loopback[] = "127.0.0.1";
static pthread_t loop_thread;   /* the thread running setup, tests and the loop */
typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
static gai_fn real_getaddrinfo;   /* libc's (see "name resolution"); set by setup() */

/* ------------------------------------------------------------ fixtures */

static void copy_env(char *dst, size_t size, const char *name, const char *fallback)
{
    const char *v = getenv(name);
    snprintf(dst, size, "%s", v && *v ? v : fallback);
}

static int guard_seconds(void)
{
    const char *s = getenv("PG_TEST_GUARD_S");
    return s && atoi(s) > 0 ? atoi(s) : 30;
}

static void setup(void)
{
    const char *port = getenv("PGPORT");

    cr_assert(getenv("PGHOST") && *getenv("PGHOST"),
              "PGHOST is not set: run under tests/pg/pg-harness.sh "
              "(eval \"$(bash tests/pg/pg-harness.sh start DIR)\"), which starts a PostgreSQL "
              "server and exports PGHOST/PGPORT/PGUSER/PGDATABASE");
    copy_env(host, sizeof(host), "PGHOST", "");
    copy_env(dbname, sizeof(dbname), "PGDATABASE", "dbpool_test");
    copy_env(user, sizeof(user), "PGUSER", "dbpool");
    cr_assert_eq(evthread_use_pthreads(), 0);
    loop_thread = pthread_self();
    *(void **)&real_getaddrinfo = dlsym(RTLD_NEXT, "getaddrinfo");
    cr_assert_not_null(real_getaddrinfo, "dlsym(getaddrinfo): %s", dlerror());
    base = event_base_new();
    cr_assert_not_null(base);
    driver_loop_init(base, drv, guard_seconds());
    memset(&cfg, 0, sizeof(cfg));
    cfg.name = pool_name;
    cfg.type = BACKEND_POSTGRES;
    cfg.host = host;
    cfg.port = port && *port ? atoi(port) : 5432;
    cfg.dbname = dbname;
    cfg.username = user;
    cfg.driver_opts = &opts;
    cfg.timeout_ms = 5000;
    cfg.max_open_conns = 5;
}

static void teardown(void)
{
    drv->quiesce();
    event_base_free(base);
    libevent_global_shutdown();
}

TestSuite(pg, .init = setup, .fini = teardown, .timeout = 600);

/* ------------------------------------------------------------- helpers */

/* A TEXT parameter from a C string (libdbpool's dbpool_text is not linked). */
static dbpool_value txt(const char *s)
{
    return dbpool_textn(s, strlen(s));
}

/* First column of the first row as text (static buffer). */
static const char *query_text(struct backend_conn *c, const char *sql, const dbpool_value *p,
                              size_t n)
{
    static char buf[512];
    struct collect k;

    run_q(c, sql, p, n, 0, &k);
    cr_assert(k.res.ok, "%s: %s", sql, k.res.err.message);
    cr_assert_eq(k.nrows, 1, "%s", sql);
    cr_assert_eq(k.cells[0][0].type, DBPOOL_TEXT, "%s: type %d", sql, k.cells[0][0].type);
    snprintf(buf, sizeof(buf), "%s", k.cells[0][0].s);
    collect_free(&k);
    return buf;
}

static struct backend_conn *new_conn(void)
{
    char err[256] = "";
    struct backend_conn *c = drv->conn_new(&cfg, base, ROLE_WRITER, err, sizeof(err));
    cr_assert_not_null(c, "conn_new: %s", err);
    return c;
}

/* connect; returns the result, *out the connection (closed on failure). */
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

static void expect_sql_error(struct backend_conn *c, const char *sql, const char *sqlstate,
                             char txstate)
{
    struct collect k;

    run_q(c, sql, NULL, 0, 0, &k);
    cr_assert(!k.res.ok, "%s succeeded", sql);
    cr_assert_eq(k.res.err.code, DBPOOL_E_SQL, "%s: code %d %s", sql, k.res.err.code,
                 k.res.err.message);
    cr_assert_str_eq(k.res.err.sqlstate, sqlstate, "%s: %s", sql, k.res.err.message);
    cr_assert(!k.res.broken);
    cr_assert_eq(k.res.txstate, txstate, "%s: txstate %c", sql, k.res.txstate);
    cr_assert_eq(drv->txstate(c), txstate);
    collect_free(&k);
}

/* ------------------------------------------------------------- connect */

Test(pg, connect_and_server_info)
{
    struct backend_conn *c;

    c = new_conn();
    cr_assert_str_eq(drv->server_info(c), "");
    drv->close(c);
    c = open_conn();
    cr_assert(strncmp(drv->server_info(c), "PostgreSQL 15.", 14) == 0, "%s", drv->server_info(c));
    cr_assert_eq(drv->txstate(c), 'I');
    cr_assert_eq(query_int(c, "SELECT 1"), 1);
    cr_assert_str_eq(query_text(c, "SELECT current_setting('application_name')", NULL, 0),
                     "dbpoold");
    cr_assert_str_eq(query_text(c, "SELECT current_setting('client_encoding')", NULL, 0), "UTF8");
    cr_assert_str_eq(query_text(c, "SELECT current_user::text", NULL, 0), user);
    drv->close(c);
}

Test(pg, driver_basics)
{
    int w = -1, r = -1;
    char err[256] = "";

    cr_assert_str_eq(drv->name, "postgres");
    cfg.max_open_conns = 7;
    drv->pool_limits(&cfg, &w, &r);
    cr_assert_eq(w, 7);
    cr_assert_eq(r, 0);
    cr_assert_eq(drv->route("SELECT 1", 8), ROLE_WRITER);
    cr_assert_eq(drv->route("INSERT INTO t VALUES (1)", 24), ROLE_WRITER);
    cr_assert_str_eq(drv->begin_sql(false, ROLE_WRITER), "BEGIN");
    cr_assert_str_eq(drv->begin_sql(true, ROLE_WRITER), "BEGIN READ ONLY");
    cr_assert_not_null(drv->quiesce);
    cfg.host = NULL;
    cr_assert_null(drv->conn_new(&cfg, base, ROLE_WRITER, err, sizeof(err)));
    cr_assert(strstr(err, "host is required"), "%s", err);
}

Test(pg, wrong_password_fails_fast_without_echoing_it)
{
    static char wrong[] = "wrong-pw-XYZZY";
    struct backend_result r;
    double t0 = now_s();

    cfg.username = pw_user;
    cfg.password = wrong;
    r = try_connect(NULL);
    cr_assert(!r.ok);
    cr_assert_eq(r.err.code, DBPOOL_E_UNAVAILABLE, "%d %s", r.err.code, r.err.message);
    cr_assert(r.broken);
    cr_assert(strstr(r.err.message, "password authentication failed"), "%s", r.err.message);
    cr_assert_null(strstr(r.err.message, "XYZZY"), "%s", r.err.message);
    cr_assert_null(strchr(r.err.message, '\n'), "%s", r.err.message);
    cr_assert_lt(now_s() - t0, 5.0);
}

Test(pg, password_and_password_file)
{
    char path[] = "/tmp/dbpoold-pgpw-XXXXXX";
    struct backend_conn *c;
    struct backend_result r;
    int fd;

    cfg.username = pw_user;
    cfg.password = pw_secret;
    c = open_conn();
    cr_assert_str_eq(query_text(c, "SELECT current_user::text", NULL, 0), "dbpool_pw");
    drv->close(c);

    /* passwordFile is read when the configuration is loaded, into password
     * (test_config); the driver reads no file: given only the path (of a
     * file holding the right password), it connects with no password. */
    fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "secret\n", 7), 7);
    close(fd);
    cfg.password = NULL;
    cfg.password_file = path;
    r = try_connect(NULL);
    cr_assert(!r.ok);
    cr_assert_eq(r.err.code, DBPOOL_E_UNAVAILABLE);
    cr_assert(strstr(r.err.message, "no password supplied"), "%s", r.err.message);
    unlink(path);
}

Test(pg, unknown_database)
{
    static char nosuch[] = "nosuch_db";
    struct backend_result r;

    cfg.dbname = nosuch;
    r = try_connect(NULL);
    cr_assert(!r.ok);
    cr_assert_eq(r.err.code, DBPOOL_E_UNAVAILABLE);
    cr_assert(strstr(r.err.message, "database \"nosuch_db\" does not exist"), "%s", r.err.message);
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

Test(pg, refused_port_and_missing_socket_fail_fast)
{
    static char nodir[] = "/nonexistent-dbpoold-dir";
    struct backend_result r;
    double t0 = now_s();
    int port, fd = bound_tcp_socket(&port);

    close(fd);   /* nobody listens there now */
    cfg.host = loopback;
    cfg.port = port;
    r = try_connect(NULL);
    cr_assert(!r.ok);
    cr_assert_eq(r.err.code, DBPOOL_E_UNAVAILABLE);
    cr_assert(strstr(r.err.message, "Connection refused"), "%s", r.err.message);
    cr_assert(r.broken);

    cfg.host = nodir;
    r = try_connect(NULL);
    cr_assert(!r.ok);
    cr_assert_eq(r.err.code, DBPOOL_E_UNAVAILABLE);
    cr_assert(strstr(r.err.message, nodir), "%s", r.err.message);
    cr_assert_lt(now_s() - t0, 5.0);
}

/* A server that accepts TCP connections (the kernel does) but never answers. */
Test(pg, connect_timeout)
{
    struct backend_result r;
    char expect[128];
    double t0, dt;
    int port, fd = bound_tcp_socket(&port);

    cr_assert_eq(listen(fd, 8), 0);
    cfg.host = loopback;
    cfg.port = port;
    cfg.timeout_ms = 300;
    t0 = now_s();
    r = try_connect(NULL);
    dt = now_s() - t0;
    cr_assert(!r.ok);
    cr_assert_eq(r.err.code, DBPOOL_E_UNAVAILABLE);
    cr_assert(r.broken);
    snprintf(expect, sizeof(expect), "connection to 127.0.0.1:%d timed out after 300 ms", port);
    cr_assert_str_eq(r.err.message, expect);
    cr_assert_geq(dt, 0.25);
    cr_assert_lt(dt, 3.0);
    close(fd);
}

/* libpq moves to the next host on a new socket (often with the same
 * descriptor number): the driver must watch the new one. Nothing listens
 * on TCP port PGPORT (the harness server has listen_addresses = ''), so
 * 127.0.0.1 is refused, asynchronously, and the Unix socket is next. */
Test(pg, connect_falls_back_to_the_next_host)
{
    char hosts[512];
    struct backend_conn *c;

    snprintf(hosts, sizeof(hosts), "127.0.0.1,%s", host);
    cfg.host = hosts;
    for (int i = 0; i < 5; i++) {
        c = open_conn();
        cr_assert_eq(query_int(c, "SELECT 1"), 1);
        drv->close(c);
    }
}

Test(pg, close_during_connect_and_without_connect)
{
    struct backend_conn *c = new_conn();
    struct opdone d = { 0 };

    drv->close(c);   /* never connected */
    c = new_conn();
    drv->connect(c, on_done, &d);
    drv->close(c);
    run_for(200);
    cr_assert(!d.done, "a callback ran after close");
}

/* ---------------------------------------------------- name resolution */

/*
 * The driver resolves host names on a helper thread (libpq would call the
 * blocking getaddrinfo() on the loop). This getaddrinfo() replaces libc's
 * for the whole test process: the driver's helper and libpq both call it.
 * It counts lookups of names (not IP literals) by thread, answers every
 * *.invalid name with EAI_NONAME at once (RFC 6761: they never resolve; the
 * tests do not depend on the machine's DNS), and answers SLOW_HOST with
 * 127.0.0.1 after slow_ms.
 */
#define SLOW_HOST "slow.dbpool-test"

static atomic_int names_on_loop, names_off_loop;
static atomic_int slow_ms;


static bool ip_literal(const char *s)
{
    unsigned char bin[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, bin) == 1 || inet_pton(AF_INET6, s, bin) == 1;
}

int getaddrinfo(const char *restrict node, const char *restrict service,
                const struct addrinfo *restrict hints, struct addrinfo **restrict res)
{
    size_t len = node ? strlen(node) : 0;

    if (!real_getaddrinfo)
        abort();
    if (node && !ip_literal(node))
        atomic_fetch_add(pthread_equal(pthread_self(), loop_thread) ? &names_on_loop
                                                                    : &names_off_loop, 1);
    if (len >= 8 && strcmp(node + len - 8, ".invalid") == 0)
        return EAI_NONAME;
    if (node && strcmp(node, SLOW_HOST) == 0) {
        int ms = atomic_load(&slow_ms);
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) != 0)
            ;
        node = "127.0.0.1";
    }
    return real_getaddrinfo(node, service, hints, res);
}

static void reset_lookups(void)
{
    atomic_store(&names_on_loop, 0);
    atomic_store(&names_off_loop, 0);
}

/* A connect that must fail: UNAVAILABLE, the connection broken. */
static struct backend_result connect_unavailable(void)
{
    struct backend_result r = try_connect(NULL);

    cr_assert(!r.ok);
    cr_assert_eq(r.err.code, DBPOOL_E_UNAVAILABLE, "%d %s", r.err.code, r.err.message);
    cr_assert(r.broken);
    return r;
}

/* (a) A name that does not resolve: UNAVAILABLE at once, with the reason. */
Test(pg, unresolvable_host_fails_fast)
{
    static char bad[] = "nonexistent.invalid";
    struct backend_result r;
    char expect[256];
    double t0 = now_s();

    cfg.host = bad;
    reset_lookups();
    r = connect_unavailable();
    snprintf(expect, sizeof(expect), "cannot resolve host nonexistent.invalid: %s",
             gai_strerror(EAI_NONAME));
    cr_assert_str_eq(r.err.message, expect);
    cr_assert_lt(now_s() - t0, 2.0);
    cr_assert_eq(atomic_load(&names_on_loop), 0);
    cr_assert_eq(atomic_load(&names_off_loop), 1);
}

/* (b) "localhost" is resolved off the loop; libpq then gets the address
 * (hostaddr) and the name (host) and is refused on a port nobody listens
 * on: a connection error, not a DNS error. libpq names the server by its
 * address; the driver adds which name that was. */
Test(pg, host_name_is_resolved_off_the_loop)
{
    static char localhost[] = "localhost";
    struct backend_result r;
    int port, fd = bound_tcp_socket(&port);

    close(fd);   /* nobody listens there now */
    cfg.port = port;

    cfg.host = loopback;   /* a literal: nothing to resolve */
    reset_lookups();
    r = connect_unavailable();
    cr_assert(strstr(r.err.message, "Connection refused"), "%s", r.err.message);
    cr_assert_eq(atomic_load(&names_on_loop) + atomic_load(&names_off_loop), 0);

    cfg.host = localhost;
    reset_lookups();
    r = connect_unavailable();
    cr_assert(strstr(r.err.message, "Connection refused"), "%s", r.err.message);
    cr_assert(strstr(r.err.message, "(localhost is "), "%s", r.err.message);
    cr_assert_null(strstr(r.err.message, "resolve"), "%s", r.err.message);
    cr_assert_eq(atomic_load(&names_on_loop), 0, "a host name was looked up on the loop");
    cr_assert_eq(atomic_load(&names_off_loop), 1);
}

/* A host list mixing names, an unresolvable name and a socket directory:
 * host and hostaddr stay aligned, the unresolvable entry is skipped, and
 * libpq goes on to the next host (nothing listens on TCP port PGPORT). */
Test(pg, host_list_with_names_and_a_socket_directory)
{
    char hosts[512], expect[256];
    struct backend_conn *c;
    struct backend_result r;
    int port, fd;

    snprintf(hosts, sizeof(hosts), "nonexistent.invalid,localhost,%s", host);
    cfg.host = hosts;
    reset_lookups();
    c = open_conn();
    cr_assert_eq(query_int(c, "SELECT 1"), 1);
    drv->close(c);
    cr_assert_eq(atomic_load(&names_on_loop), 0);
    cr_assert_eq(atomic_load(&names_off_loop), 2);

    /* Every host fails: the resolution error comes first in the message. */
    fd = bound_tcp_socket(&port);
    close(fd);
    cfg.port = port;
    snprintf(hosts, sizeof(hosts), "nonexistent.invalid,localhost");
    r = connect_unavailable();
    cr_assert(strncmp(r.err.message, "cannot resolve host nonexistent.invalid: ", 41) == 0,
              "%s", r.err.message);
    cr_assert(strstr(r.err.message, "Connection refused"), "%s", r.err.message);

    /* No name resolves: the first one is reported. */
    snprintf(hosts, sizeof(hosts), "first.invalid,second.invalid");
    r = connect_unavailable();
    snprintf(expect, sizeof(expect), "cannot resolve host first.invalid: %s",
             gai_strerror(EAI_NONAME));
    cr_assert_str_eq(r.err.message, expect);
}

static void tick(void *arg)
{
    (*(int *)arg)++;
}

/* A slow lookup leaves the loop running, and cfg->timeout_ms covers it. */
Test(pg, slow_resolution_does_not_block_the_loop)
{
    static char slow[] = SLOW_HOST;
    struct backend_conn *c;
    struct opdone d = { 0 };
    struct later t[20];
    struct backend_result r;
    char expect[256];
    double t0, dt;
    int ticks = 0, port, fd = bound_tcp_socket(&port);

    close(fd);
    cfg.host = slow;
    cfg.port = port;
    atomic_store(&slow_ms, 400);
    c = new_conn();
    drv->connect(c, on_done, &d);
    for (int i = 0; i < 20; i++)
        schedule(&t[i], 10 * (i + 1), tick, &ticks);   /* all due within 200 ms */
    run_until(&d.done);
    for (int i = 0; i < 20; i++)
        unschedule(&t[i]);
    drv->close(c);
    cr_assert_eq(ticks, 20, "the loop was blocked while resolving");
    cr_assert(!d.res.ok);
    cr_assert(strstr(d.res.err.message, "Connection refused"), "%s", d.res.err.message);

    /* The connect timeout runs during resolution. */
    atomic_store(&slow_ms, 1500);
    cfg.timeout_ms = 300;
    t0 = now_s();
    r = connect_unavailable();
    dt = now_s() - t0;
    snprintf(expect, sizeof(expect),
             "connection to " SLOW_HOST ":%d timed out after 300 ms (resolving the host name)",
             port);
    cr_assert_str_eq(r.err.message, expect);
    cr_assert_geq(dt, 0.25);
    cr_assert_lt(dt, 1.2);
    run_for(100);   /* the abandoned helper's answer never arrives */
}

/* (c) close() while the helper resolves, or after it has posted its
 * answer: no callback, nothing touched after free (ASan/valgrind), and
 * quiesce() waits for the helpers. */
Test(pg, close_while_resolving_then_quiesce)
{
    static char localhost[] = "localhost", slow[] = SLOW_HOST;
    struct backend_conn *c[10];
    struct opdone d[11];
    struct timespec pause = { 0, 20 * 1000000L };
    double t0, dt;

    cfg.host = localhost;
    memset(d, 0, sizeof(d));
    for (int i = 0; i < 10; i++) {
        c[i] = new_conn();
        drv->connect(c[i], on_done, &d[i]);
        if (i % 2)
            drv->close(c[i]);   /* before the helper can answer */
    }
    nanosleep(&pause, NULL);   /* the loop does not run: answers are posted, not taken */
    for (int i = 0; i < 10; i += 2)
        drv->close(c[i]);

    cfg.host = slow;   /* a helper certainly still resolving at close() */
    atomic_store(&slow_ms, 500);
    c[0] = new_conn();
    drv->connect(c[0], on_done, &d[10]);
    run_for(50);
    drv->close(c[0]);
    run_for(50);
    t0 = now_s();
    drv->quiesce();
    dt = now_s() - t0;
    cr_assert_geq(dt, 0.3, "quiesce did not wait for the resolver (%.3f s)", dt);
    cr_assert_lt(dt, 5.0);
    run_for(50);
    for (int i = 0; i < 11; i++)
        cr_assert(!d[i].done, "a callback ran after close (%d)", i);
}

Test(pg, exec_and_ping_before_connect_are_broken)
{
    struct backend_conn *c = new_conn();
    struct collect k;
    struct opdone d = { 0 };

    run_q(c, "SELECT 1", NULL, 0, 0, &k);
    cr_assert(!k.res.ok);
    cr_assert_eq(k.res.err.code, DBPOOL_E_CONN_LOST);
    cr_assert(k.res.broken);
    collect_free(&k);
    drv->ping(c, on_done, &d);
    cr_assert(!d.done, "ping completed synchronously");
    run_until(&d.done);
    cr_assert(!d.res.ok);
    cr_assert(d.res.broken);
    drv->close(c);
}

/* --------------------------------------------------------------- values */

Test(pg, result_types)
{
    struct backend_conn *c = open_conn();
    struct collect k;
    static const char *const decls[] = {
        "int2", "int4", "int8", "oid", "float4", "float8", "float8", "float8", "float8", "bool",
        "bool", "int4", "numeric", "timestamptz", "json", "jsonb", "uuid", "varchar", "text",
        "bytea", "_int4", "int8", "int2", "date", "interval", "bpchar", "text",
    };

    exec_ok(c, "SET TIME ZONE 'UTC'");
    run_q(c,
          "SELECT 1::int2 AS a, 2::int4 AS b, 3::int8 AS c, 4::oid AS d, 1.5::float4 AS e, "
          "2.25::float8 AS f, 'NaN'::float8 AS g, 'Infinity'::float8 AS h, "
          "'-Infinity'::float8 AS i, true AS j, false AS k, NULL::int4 AS l, 12.50::numeric AS m, "
          "'2024-01-02 03:04:05+00'::timestamptz AS n, '{\"a\": 1}'::json AS o, "
          "'{\"a\": 1}'::jsonb AS p, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS q, "
          "'abc'::varchar(5) AS r, 'h\xc3\xa9llo' AS s, '\\x00ff'::bytea AS t, "
          "ARRAY[1,2]::int4[] AS u, 9223372036854775807::int8 AS v, (-32768)::int2 AS w, "
          "'2024-02-29'::date AS x, '1 day 2 hours'::interval AS y, 'ab'::char(3) AS z, "
          "'' AS empty",
          NULL, 0, 0, &k);
    cr_assert(k.res.ok, "%s", k.res.err.message);
    cr_assert_eq(k.columns_calls, 1);
    cr_assert(!k.columns_after_row);
    cr_assert_eq(k.ncols, sizeof(decls) / sizeof(decls[0]));
    for (size_t i = 0; i < k.ncols; i++)
        cr_assert_str_eq(k.decls[i], decls[i], "column %zu (%s): %s", i, k.names[i], k.decls[i]);
    cr_assert_str_eq(k.names[0], "a");
    cr_assert_str_eq(k.names[26], "empty");
    cr_assert_eq(k.nrows, 1);
    cr_assert_eq(k.res.rows_affected, 1);
    cr_assert_eq(k.res.last_insert_id, 0);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(k.cells[0][i].type, DBPOOL_INT64);
        cr_assert_eq(k.cells[0][i].i, i + 1);
    }
    cr_assert_eq(k.cells[0][4].type, DBPOOL_FLOAT64);
    cr_assert_eq(k.cells[0][4].f, 1.5);
    cr_assert_eq(k.cells[0][5].f, 2.25);
    cr_assert(isnan(k.cells[0][6].f));
    cr_assert(isinf(k.cells[0][7].f) && k.cells[0][7].f > 0);
    cr_assert(isinf(k.cells[0][8].f) && k.cells[0][8].f < 0);
    cr_assert_eq(k.cells[0][9].type, DBPOOL_BOOL);
    cr_assert_eq(k.cells[0][9].i, 1);
    cr_assert_eq(k.cells[0][10].type, DBPOOL_BOOL);
    cr_assert_eq(k.cells[0][10].i, 0);
    cr_assert_eq(k.cells[0][11].type, DBPOOL_NULL);
    cr_assert_eq(k.cells[0][12].type, DBPOOL_TEXT);
    cr_assert_str_eq(k.cells[0][12].s, "12.50");
    cr_assert_str_eq(k.cells[0][13].s, "2024-01-02 03:04:05+00");
    cr_assert_str_eq(k.cells[0][14].s, "{\"a\": 1}");
    cr_assert_str_eq(k.cells[0][15].s, "{\"a\": 1}");
    cr_assert_str_eq(k.cells[0][16].s, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    cr_assert_str_eq(k.cells[0][17].s, "abc");
    cr_assert_str_eq(k.cells[0][18].s, "h\xc3\xa9llo");
    cr_assert_eq(k.cells[0][19].type, DBPOOL_BLOB);
    cr_assert_eq(k.cells[0][19].len, 2);
    cr_assert_eq(memcmp(k.cells[0][19].s, "\x00\xff", 2), 0);
    cr_assert_eq(k.cells[0][20].type, DBPOOL_TEXT);
    cr_assert_str_eq(k.cells[0][20].s, "{1,2}");
    cr_assert_eq(k.cells[0][21].i, INT64_MAX);
    cr_assert_eq(k.cells[0][22].i, -32768);
    cr_assert_str_eq(k.cells[0][23].s, "2024-02-29");
    cr_assert_str_eq(k.cells[0][24].s, "1 day 02:00:00");
    cr_assert_str_eq(k.cells[0][25].s, "ab ");
    cr_assert_eq(k.cells[0][26].type, DBPOOL_TEXT);
    cr_assert_eq(k.cells[0][26].len, 0);
    collect_free(&k);
    drv->close(c);
}

/* Every name in the driver's built-in table against the server's catalog. */
Test(pg, declared_type_names_match_catalog)
{
    static const char *const names[] = {
        "bool", "bytea", "char", "name", "int8", "int2", "int4", "regproc", "text", "oid", "tid",
        "xid", "json", "xml", "_xml", "_json", "point", "cidr", "_cidr", "float4", "float8",
        "macaddr8", "money", "_money", "macaddr", "inet", "_bool", "_bytea", "_char", "_name",
        "_int2", "_int4", "_text", "_bpchar", "_varchar", "_int8", "_float4", "_float8", "_oid",
        "_macaddr", "_inet", "bpchar", "varchar", "date", "time", "timestamp", "_timestamp",
        "_date", "_time", "timestamptz", "_timestamptz", "interval", "_interval", "_numeric",
        "timetz", "_timetz", "bit", "_bit", "varbit", "_varbit", "numeric", "regclass", "regtype",
        "uuid", "_uuid", "pg_lsn", "tsvector", "tsquery", "jsonb", "_jsonb", "int4range",
        "numrange", "tsrange", "tstzrange", "daterange", "int8range", "jsonpath", "xid8",
    };
    struct backend_conn *c = open_conn();
    char sql[128];
    struct collect k;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(sql, sizeof(sql), "SELECT NULL::pg_catalog.%s AS v", names[i]);
        run_q(c, sql, NULL, 0, 0, &k);
        cr_assert(k.res.ok, "%s: %s", sql, k.res.err.message);
        cr_assert_str_eq(k.decls[0], names[i]);
        cr_assert_eq(k.cells[0][0].type, DBPOOL_NULL);
        collect_free(&k);
    }
    /* The pseudo-types in the table, through expressions of that type. */
    run_q(c, "SELECT 'x' AS u, ROW(1, 2) AS r, pg_sleep(0) AS v", NULL, 0, 0, &k);
    cr_assert(k.res.ok, "%s", k.res.err.message);
    cr_assert_str_eq(k.decls[0], "text");   /* unknown literals resolve to text */
    cr_assert_str_eq(k.decls[1], "record");
    cr_assert_str_eq(k.decls[2], "void");
    collect_free(&k);
    drv->close(c);
}

Test(pg, user_types_are_text_with_oid_names)
{
    struct backend_conn *c = open_conn();
    struct collect k;
    char expect[32];
    int64_t oid;

    exec_ok(c, "CREATE TYPE pg_temp.mood AS ENUM ('sad', 'happy')");
    oid = query_int(c, "SELECT 'pg_temp.mood'::regtype::oid::int8");
    snprintf(expect, sizeof(expect), "oid:%lld", (long long)oid);
    run_q(c, "SELECT 'happy'::pg_temp.mood AS m", NULL, 0, 0, &k);
    cr_assert(k.res.ok, "%s", k.res.err.message);
    cr_assert_str_eq(k.decls[0], expect);
    cr_assert_eq(k.cells[0][0].type, DBPOOL_TEXT);
    cr_assert_str_eq(k.cells[0][0].s, "happy");
    collect_free(&k);
    drv->close(c);
}

static void check_256(const struct collect *k, size_t row, size_t col)
{
    cr_assert_eq(k->cells[row][col].type, DBPOOL_BLOB);
    cr_assert_eq(k->cells[row][col].len, 256);
    for (int i = 0; i < 256; i++)
        cr_assert_eq((unsigned char)k->cells[row][col].s[i], i, "byte %d", i);
}

Test(pg, bytea_round_trips_every_byte)
{
    struct backend_conn *c = open_conn();
    unsigned char all[256];
    dbpool_value p[2];
    struct collect k;

    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    exec_ok(c, "CREATE TEMP TABLE b(id int, x bytea)");
    p[0] = dbpool_int(1);
    p[1] = dbpool_blob(all, sizeof(all));
    run_q(c, "INSERT INTO b VALUES ($1, $2)", p, 2, 0, &k);
    cr_assert(k.res.ok, "%s", k.res.err.message);
    cr_assert_eq(k.res.rows_affected, 1);
    collect_free(&k);
    p[0] = dbpool_int(2);
    p[1] = dbpool_blob(NULL, 0);   /* empty, not NULL */
    run_q(c, "INSERT INTO b VALUES ($1, $2)", p, 2, 0, &k);
    cr_assert(k.res.ok, "%s", k.res.err.message);
    collect_free(&k);
    cr_assert_eq(query_int(c, "SELECT length(x) FROM b WHERE id = 1"), 256);
    cr_assert_eq(query_int(c, "SELECT count(*) FROM b WHERE x = '\\x'::bytea"), 1);

    for (int pass = 0; pass < 2; pass++) {   /* hex, then escape output format */
        run_q(c, "SELECT x, x AS again FROM b ORDER BY id", NULL, 0, 0, &k);
        cr_assert(k.res.ok, "%s", k.res.err.message);
        cr_assert_eq(k.nrows, 2);
        cr_assert_str_eq(k.decls[0], "bytea");
        check_256(&k, 0, 0);
        check_256(&k, 0, 1);
        cr_assert_eq(k.cells[1][0].type, DBPOOL_BLOB);
        cr_assert_eq(k.cells[1][0].len, 0);
        collect_free(&k);
        exec_ok(c, "SET bytea_output = 'escape'");
    }
    /* A BLOB parameter straight back. */
    p[0] = dbpool_blob(all, sizeof(all));
    run_q(c, "SELECT $1 AS v", p, 1, 0, &k);
    cr_assert(k.res.ok, "%s", k.res.err.message);
    check_256(&k, 0, 0);
    collect_free(&k);
    drv->close(c);
}

Test(pg, typed_parameters)
{
    static const unsigned char blob[] = { 0, 'a', 0xff };
    struct backend_conn *c = open_conn();
    dbpool_value p[7];
    struct collect k;

    p[0] = dbpool_int(9007199254740993LL);   /* not representable as a double */
    p[1] = dbpool_float(0.1);
    p[2] = dbpool_bool(1);
    p[3] = dbpool_textn("h\xc3\xa9llo", 6);
    p[4] = dbpool_blob(blob, sizeof(blob));
    p[5] = dbpool_null();
    p[6] = dbpool_textn(NULL, 0);
    run_q(c, "SELECT $1 AS i, $2 AS f, $3 AS b, $4 AS t, $5 AS x, $6 AS n, $7 AS e, "
             "pg_typeof($1)::text, pg_typeof($2)::text, pg_typeof($3)::text, pg_typeof($5)::text",
          p, 7, 0, &k);
    cr_assert(k.res.ok, "%s", k.res.err.message);
    {
        static const char *const decls[] = { "int8", "float8", "bool", "text", "bytea", "text",
                                             "text", "text", "text", "text", "text" };
        for (size_t i = 0; i < 11; i++)
            cr_assert_str_eq(k.decls[i], decls[i], "column %zu", i);
    }
    cr_assert_eq(k.cells[0][0].type, DBPOOL_INT64);
    cr_assert_eq(k.cells[0][0].i, 9007199254740993LL);
    cr_assert_eq(k.cells[0][1].type, DBPOOL_FLOAT64);
    cr_assert_eq(k.cells[0][1].f, 0.1);   /* %.17g round-trips exactly */
    cr_assert_eq(k.cells[0][2].type, DBPOOL_BOOL);
    cr_assert_eq(k.cells[0][2].i, 1);
    cr_assert_str_eq(k.cells[0][3].s, "h\xc3\xa9llo");
    cr_assert_eq(k.cells[0][4].type, DBPOOL_BLOB);
    cr_assert_eq(k.cells[0][4].len, 3);
    cr_assert_eq(memcmp(k.cells[0][4].s, blob, 3), 0);
    cr_assert_eq(k.cells[0][5].type, DBPOOL_NULL);
    cr_assert_eq(k.cells[0][6].type, DBPOOL_TEXT);
    cr_assert_eq(k.cells[0][6].len, 0);
    cr_assert_str_eq(k.cells[0][7].s, "bigint");
    cr_assert_str_eq(k.cells[0][8].s, "double precision");
    cr_assert_str_eq(k.cells[0][9].s, "boolean");
    cr_assert_str_eq(k.cells[0][10].s, "bytea");
    collect_free(&k);

    /* Special floats and false. */
    p[0] = dbpool_float(NAN);
    p[1] = dbpool_float(INFINITY);
    p[2] = dbpool_float(-INFINITY);
    p[3] = dbpool_bool(0);
    p[4] = dbpool_float(-1.5e300);
    run_q(c, "SELECT $1 = 'NaN'::float8, $2 = 'Infinity'::float8, $3 = '-Infinity'::float8, "
             "NOT $4, $5 = -1.5e300::float8", p, 5, 0, &k);
    cr_assert(k.res.ok, "%s", k.res.err.message);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(k.cells[0][i].type, DBPOOL_BOOL);
        cr_assert_eq(k.cells[0][i].i, 1, "column %d", i);
    }
    collect_free(&k);
    drv->close(c);
}

/* TEXT parameters are sent untyped, so the server parses them as whatever
 * the context needs; INT64 goes into int2/int4 columns by assignment. */
Test(pg, text_parameters_take_the_column_type)
{
    struct backend_conn *c = open_conn();
    dbpool_value p[9];
    struct collect k;

    exec_ok(c, "SET TIME ZONE 'UTC'");
    exec_ok(c, "CREATE TEMP TABLE t(ts timestamptz, u uuid, j json, jb jsonb, n numeric, d date, "
               "i4 int4, i2 int2, f4 float4)");
    p[0] = txt("2024-05-06T07:08:09Z");
    p[1] = txt("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11");
    p[2] = txt("{\"k\": [1, 2]}");
    p[3] = txt("{\"k\": [1, 2]}");
    p[4] = txt("12345678901234567890.123");
    p[5] = txt("2024-02-29");
    p[6] = dbpool_int(2147483647);
    p[7] = dbpool_int(-5);
    p[8] = dbpool_float(0.5);
    run_q(c, "INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", p, 9, 0, &k);
    cr_assert(k.res.ok, "%s", k.res.err.message);
    cr_assert_eq(k.res.rows_affected, 1);
    collect_free(&k);
    run_q(c, "SELECT * FROM t", NULL, 0, 0, &k);
    cr_assert(k.res.ok, "%s", k.res.err.message);
    cr_assert_str_eq(k.cells[0][0].s, "2024-05-06 07:08:09+00");
    cr_assert_str_eq(k.cells[0][1].s, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    cr_assert_str_eq(k.cells[0][2].s, "{\"k\": [1, 2]}");
    cr_assert_str_eq(k.cells[0][3].s, "{\"k\": [1, 2]}");
    cr_assert_str_eq(k.cells[0][4].s, "12345678901234567890.123");
    cr_assert_str_eq(k.cells[0][5].s, "2024-02-29");
    cr_assert_eq(k.cells[0][6].i, 2147483647);
    cr_assert_eq(k.cells[0][7].i, -5);
    cr_assert_eq(k.cells[0][8].f, 0.5);
    collect_free(&k);

    /* In comparisons too. */
    p[0] = txt("2024-05-06 07:08:09+00");
    p[1] = dbpool_int(-5);
    run_q(c, "SELECT count(*) FROM t WHERE ts = $1 AND i2 = $2", p, 2, 0, &k);
    cr_assert(k.res.ok, "%s", k.res.err.message);
    cr_assert_eq(k.cells[0][0].i, 1);
    collect_free(&k);

    /* Out of range for the column: the server says so. */
    p[0] = txt("2024-05-06 07:08:09+00");
    p[1] = txt("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    p[6] = dbpool_int(2147483648LL);
    run_q(c, "INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", p, 9, 0, &k);
    cr_assert(!k.res.ok);
    cr_assert_str_eq(k.res.err.sqlstate, "22003", "%s", k.res.err.message);
    collect_free(&k);
    drv->close(c);
}

Test(pg, parameter_errors)
{
    struct backend_conn *c = open_conn();
    dbpool_value p[2] = { dbpool_textn("a\0b", 3), dbpool_int(1) };
    struct collect k;

    run_q(c, "SELECT $1", p, 1, 0, &k);
    cr_assert(!k.res.ok);
    cr_assert_eq(k.res.err.code, DBPOOL_E_SQL);
    cr_assert_str_eq(k.res.err.sqlstate, "22021");
    cr_assert(strstr(k.res.err.message, "parameter $1"), "%s", k.res.err.message);
    cr_assert(!k.res.broken);
    collect_free(&k);

    /* Too few: refused before sending (the server would abort a
     * transaction over it), with doc/protocol.md's SQLSTATE. */
    run_q(c, "SELECT $1, $2", p + 1, 1, 0, &k);
    cr_assert(!k.res.ok);
    cr_assert_eq(k.res.err.code, DBPOOL_E_SQL);
    cr_assert_str_eq(k.res.err.sqlstate, "07001", "%s", k.res.err.message);
    cr_assert_str_eq(k.res.err.message,
                     "statement uses $1..$2 but 1 parameter was given; "
                     "pass exactly one value per $N placeholder");
    cr_assert(!k.res.broken);
    collect_free(&k);
    run_q(c, "SELECT $1", NULL, 0, 0, &k);
    cr_assert_str_eq(k.res.err.sqlstate, "07001", "%s", k.res.err.message);
    collect_free(&k);
    /* Not placeholders: in an escape string, nested comments, dollar quotes. */
    cr_assert_eq(query_int(c, "SELECT length(E'\\'' || '$1') /* a /* $2 */ $3 */"), 3);
    cr_assert_eq(query_int(c, "SELECT length($q$ $1 $q$)"), 4);
    /* Too many: PostgreSQL itself would accept an unused parameter whose
     * type is declared; the driver refuses it before sending (07001). */
    run_q(c, "SELECT 1", p + 1, 1, 0, &k);
    cr_assert(!k.res.ok);
    cr_assert_str_eq(k.res.err.sqlstate, "07001", "%s", k.res.err.message);
    cr_assert(!k.res.broken);
    collect_free(&k);
    p[0] = txt("x");
    run_q(c, "SELECT '$1', $$ $2 $$ -- $3\n", p, 1, 0, &k);   /* no real placeholder */
    cr_assert_str_eq(k.res.err.sqlstate, "07001", "%s", k.res.err.message);
    collect_free(&k);
    cr_assert_eq(query_int(c, "SELECT 2"), 2);

    /* INT64 is int8: a function taking int4 needs a cast. */
    run_q(c, "SELECT repeat('x', $1)", p + 1, 1, 0, &k);
    cr_assert(!k.res.ok);
    cr_assert_str_eq(k.res.err.sqlstate, "42883", "%s", k.res.err.message);
    collect_free(&k);
    cr_assert_str_eq(query_text(c, "SELECT repeat('x', $1::int)", p + 1, 1), "x");
    drv->close(c);
}

/* A statement far bigger than the socket buffers: PQflush must loop. */
Test(pg, big_parameter_is_sent_without_blocking)
{
    struct backend_conn *c = open_conn();
    size_t n = 16u << 20;
    char *big = malloc(n), *tail;
    dbpool_value p;

    cr_assert_not_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    p = dbpool_textn(big, n);
    cr_assert_eq(query_int_p(c, "SELECT length($1)::int8", &p, 1), (int64_t)n);
    tail = dupn(big + n - 27, 27);
    cr_assert_str_eq(query_text(c, "SELECT substr($1, 16777190)", &p, 1), tail);
    free(tail);
    free(big);
    drv->close(c);
}

/* exec() keeps no pointer into the caller's query. */
Test(pg, exec_copies_its_input)
{
    struct backend_conn *c = open_conn();
    struct collect k = { 0 };
    char *sql = strdup("SELECT $1 || 'x'");
    char *text = strdup("abc");
    dbpool_value *p = malloc(sizeof(*p));

    cr_assert(sql && text && p);
    *p = dbpool_textn(text, 3);
    start_exec(c, sql, p, 1, 0, &collect_sink, &k);
    memset(sql, 'Z', strlen(sql));
    memset(text, 'Z', 3);
    free(sql);
    free(text);
    free(p);
    run_until(&k.done);
    cr_assert(k.res.ok, "%s", k.res.err.message);
    cr_assert_str_eq(k.cells[0][0].s, "abcx");
    collect_free(&k);
    drv->close(c);
}

/* ------------------------------------------------------ results, errors */

Test(pg, counts_empty_queries_and_zero_rows)
{
    struct backend_conn *c = open_conn();
    struct backend_result r;
    struct collect k;

    r = exec_ok(c, "CREATE TEMP TABLE t(id serial PRIMARY KEY, v int)");
    cr_assert_eq(r.rows_affected, 0);
    r = exec_ok(c, "INSERT INTO t(v) VALUES (1), (2), (3)");
    cr_assert_eq(r.rows_affected, 3);
    cr_assert_eq(r.last_insert_id, 0);
    r = exec_ok(c, "UPDATE t SET v = v + 1 WHERE v > 1");
    cr_assert_eq(r.rows_affected, 2);
    r = exec_ok(c, "DELETE FROM t WHERE v = 1");
    cr_assert_eq(r.rows_affected, 1);

    run_q(c, "INSERT INTO t(v) VALUES (10), (11) RETURNING id", NULL, 0, 0, &k);
    cr_assert(k.res.ok, "%s", k.res.err.message);
    cr_assert_eq(k.columns_calls, 1);
    cr_assert_eq(k.nrows, 2);
    cr_assert_eq(k.res.rows_affected, 2);
    cr_assert_eq(k.cells[1][0].i, 5);
    collect_free(&k);

    run_q(c, "SELECT id, v FROM t WHERE false", NULL, 0, 0, &k);
    cr_assert(k.res.ok, "%s", k.res.err.message);
    cr_assert_eq(k.columns_calls, 1);   /* columns even without rows */
    cr_assert_eq(k.ncols, 2);
    cr_assert_str_eq(k.names[1], "v");
    cr_assert_str_eq(k.decls[1], "int4");
    cr_assert_eq(k.nrows, 0);
    cr_assert_eq(k.res.rows_affected, 0);
    collect_free(&k);

    run_q(c, "  ", NULL, 0, 0, &k);   /* empty query */
    cr_assert(k.res.ok, "%s", k.res.err.message);
    cr_assert_eq(k.columns_calls, 0);
    cr_assert_eq(k.res.rows_affected, 0);
    collect_free(&k);

    run_q(c, "DO $$BEGIN RAISE NOTICE 'notices are not printed'; END$$", NULL, 0, 0, &k);
    cr_assert(k.res.ok, "%s", k.res.err.message);
    collect_free(&k);
    drv->close(c);
}

Test(pg, errors_carry_sqlstate_and_the_session_goes_on)
{
    struct backend_conn *c = open_conn();
    struct collect k;

    exec_ok(c, "CREATE TEMP TABLE u(id int PRIMARY KEY, email text UNIQUE NOT NULL)");
    exec_ok(c, "INSERT INTO u VALUES (1, 'a@x')");
    expect_sql_error(c, "INSERT INTO u VALUES (2, 'a@x')", "23505", 'I');
    cr_assert_eq(query_int(c, "SELECT count(*) FROM u"), 1);
    expect_sql_error(c, "INSERT INTO u VALUES (3, NULL)", "23502", 'I');
    expect_sql_error(c, "SELEC 1", "42601", 'I');
    expect_sql_error(c, "SELECT * FROM nosuch", "42P01", 'I');
    expect_sql_error(c, "SELECT nosuch FROM u", "42703", 'I');
    expect_sql_error(c, "SELECT 1; SELECT 2", "42601", 'I');   /* one statement per exec */
    cr_assert_eq(query_int(c, "SELECT 42"), 42);

    run_q(c, "INSERT INTO u VALUES (2, 'a@x')", NULL, 0, 0, &k);
    cr_assert_str_eq(k.res.err.message,
                     "duplicate key value violates unique constraint \"u_email_key\"");
    collect_free(&k);

    /* An error after some rows were streamed. */
    run_q(c, "SELECT 10 / (3 - x) FROM generate_series(1, 5) x", NULL, 0, 0, &k);
    cr_assert(!k.res.ok);
    cr_assert_str_eq(k.res.err.sqlstate, "22012");
    cr_assert_eq(k.res.err.code, DBPOOL_E_SQL);
    cr_assert_eq(k.nrows, 2);
    cr_assert_eq(k.cells[1][0].i, 10);
    collect_free(&k);
    cr_assert_eq(query_int(c, "SELECT 7"), 7);
    drv->close(c);
}

Test(pg, transaction_state)
{
    struct backend_conn *c = open_conn();
    struct collect k;

    exec_ok(c, "CREATE TEMP TABLE t(x int)");
    cr_assert_eq(exec_ok(c, drv->begin_sql(false, ROLE_WRITER)).txstate, 'T');
    cr_assert_eq(drv->txstate(c), 'T');
    cr_assert_eq(exec_ok(c, "INSERT INTO t VALUES (1)").txstate, 'T');
    expect_sql_error(c, "SELECT * FROM nosuch", "42P01", 'E');
    expect_sql_error(c, "SELECT 1", "25P02", 'E');   /* only ROLLBACK works now */
    cr_assert_eq(exec_ok(c, "ROLLBACK").txstate, 'I');
    cr_assert_eq(drv->txstate(c), 'I');
    cr_assert_eq(query_int(c, "SELECT count(*) FROM t"), 0);

    cr_assert_eq(exec_ok(c, "BEGIN").txstate, 'T');
    exec_ok(c, "INSERT INTO t VALUES (2)");
    cr_assert_eq(exec_ok(c, "COMMIT").txstate, 'I');
    cr_assert_eq(query_int(c, "SELECT count(*) FROM t"), 1);

    cr_assert_eq(exec_ok(c, drv->begin_sql(true, ROLE_WRITER)).txstate, 'T');
    run_q(c, "CREATE TABLE ro_check(x int)", NULL, 0, 0, &k);
    cr_assert_str_eq(k.res.err.sqlstate, "25006", "%s", k.res.err.message);
    cr_assert_eq(k.res.txstate, 'E');
    collect_free(&k);
    cr_assert_eq(exec_ok(c, "ROLLBACK").txstate, 'I');
    drv->close(c);
}

Test(pg, copy_is_refused_and_the_session_goes_on)
{
    struct backend_conn *c = open_conn();
    struct collect k;

    exec_ok(c, "CREATE TEMP TABLE t(x int)");
    run_q(c, "COPY (SELECT generate_series(1, 100000)) TO STDOUT", NULL, 0, 0, &k);
    cr_assert(!k.res.ok);
    cr_assert_eq(k.res.err.code, DBPOOL_E_SQL);
    cr_assert_str_eq(k.res.err.sqlstate, "0A000");
    cr_assert(!k.res.broken);
    cr_assert_eq(k.res.txstate, 'I');
    collect_free(&k);
    cr_assert_eq(query_int(c, "SELECT 1"), 1);

    run_q(c, "COPY t FROM STDIN", NULL, 0, 0, &k);
    cr_assert(!k.res.ok);
    cr_assert_eq(k.res.err.code, DBPOOL_E_SQL);
    cr_assert_str_eq(k.res.err.sqlstate, "0A000");
    cr_assert(!k.res.broken);
    collect_free(&k);
    cr_assert_eq(query_int(c, "SELECT count(*) FROM t"), 0);

    cr_assert_eq(exec_ok(c, "BEGIN").txstate, 'T');
    run_q(c, "COPY t FROM STDIN", NULL, 0, 0, &k);
    cr_assert_eq(k.res.txstate, 'E');
    collect_free(&k);
    cr_assert_eq(exec_ok(c, "ROLLBACK").txstate, 'I');
    drv->close(c);
}

Test(pg, ping)
{
    struct backend_conn *c = open_conn();
    struct opdone d = { 0 };

    drv->ping(c, on_done, &d);
    run_until(&d.done);
    cr_assert(d.res.ok, "%s", d.res.err.message);
    cr_assert_eq(d.res.txstate, 'I');

    exec_ok(c, "BEGIN");
    expect_sql_error(c, "SELECT * FROM nosuch", "42P01", 'E');
    memset(&d, 0, sizeof(d));
    drv->ping(c, on_done, &d);   /* works inside a failed transaction too */
    run_until(&d.done);
    cr_assert(d.res.ok, "%s", d.res.err.message);
    cr_assert_eq(d.res.txstate, 'E');
    drv->close(c);
}

/* done() starts the next statement: the driver must be re-entrant there. */
struct chain {
    struct backend_conn *c;
    int step;
    bool done;
    bool ok;
};

static void chain_done(void *arg, const struct backend_result *res);
static const struct backend_sink chain_sink = { NULL, NULL, chain_done };

static void chain_done(void *arg, const struct backend_result *res)
{
    struct chain *ch = arg;

    if (!res->ok || ++ch->step == 50) {
        ch->ok = res->ok;
        ch->done = true;
        return;
    }
    start_exec(ch->c, "SELECT 1", NULL, 0, 0, &chain_sink, ch);
}

Test(pg, exec_from_done_callback)
{
    struct chain ch = { open_conn(), 0, false, false };

    start_exec(ch.c, "SELECT 1", NULL, 0, 0, &chain_sink, &ch);
    run_until(&ch.done);
    cr_assert(ch.ok);
    cr_assert_eq(ch.step, 50);
    drv->close(ch.c);
}

/* ---------------------------------------------------------- streaming */

#define BIG_ROWS 1000000
#define BIG_SQL "SELECT x, 'row ' || x AS label FROM generate_series(1, 1000000) x"

Test(pg, back_pressure_delivers_every_row_once_in_order)
{
    struct backend_conn *c = open_conn();
    struct stream s = { .pause_every = 10000, .auto_resume = true };

    stream_start(&s, c, BIG_SQL, "int4");
    run_until(&s.done);
    cr_assert(s.res.ok, "%s", s.res.err.message);
    cr_assert(!s.bad);
    cr_assert_eq(s.columns_calls, 1);
    cr_assert_eq(s.rows, BIG_ROWS);
    cr_assert_eq(s.rows_at_done, BIG_ROWS);
    cr_assert_eq(s.res.rows_affected, BIG_ROWS);
    cr_assert_eq(s.resumes, BIG_ROWS / 10000);   /* done waited for the last resume */
    unschedule(&s.timer);
    cr_assert_eq(query_int(c, "SELECT 1"), 1);
    drv->close(c);
}

Test(pg, stream_without_pauses)
{
    struct backend_conn *c = open_conn();
    struct stream s = { 0 };

    stream_start(&s, c, BIG_SQL, "int4");
    run_until(&s.done);
    cr_assert(s.res.ok, "%s", s.res.err.message);
    cr_assert(!s.bad);
    cr_assert_eq(s.rows, BIG_ROWS);
    cr_assert_eq(s.res.rows_affected, BIG_ROWS);
    drv->close(c);
}

/* While the sink is paused the driver stops reading, so the server ends up
 * blocked writing to the socket (wait event ClientWrite). */
Test(pg, back_pressure_reaches_the_server)
{
    struct backend_conn *c = open_conn(), *watcher = open_conn();
    struct stream s = { .pause_every = 1000 };
    dbpool_value pid;
    const char *wait = "";
    int64_t rows_paused;

    pid = dbpool_int(query_int(c, "SELECT pg_backend_pid()"));
    stream_start(&s, c, BIG_SQL, "int4");
    run_until(&s.paused);
    rows_paused = s.rows;
    for (int i = 0; i < 50; i++) {   /* up to 5 s for the buffers to fill */
        run_for(100);
        wait = query_text(watcher, "SELECT coalesce(wait_event, '') FROM pg_stat_activity "
                                   "WHERE pid = $1::int", &pid, 1);
        if (strcmp(wait, "ClientWrite") == 0)
            break;
    }
    cr_assert_str_eq(wait, "ClientWrite");
    cr_assert_eq(s.rows, rows_paused, "rows delivered while paused");
    s.pause_every = 0;
    stream_resume(&s);
    run_until(&s.done);
    cr_assert(s.res.ok, "%s", s.res.err.message);
    cr_assert(!s.bad);
    cr_assert_eq(s.rows, BIG_ROWS);
    drv->close(watcher);
    drv->close(c);
}

/* ------------------------------------------------------------- cancel */

Test(pg, cancel_running_statement)
{
    struct backend_conn *c = open_conn();
    struct collect k = { 0 };
    struct later t = { 0 };
    double t0 = now_s();

    start_exec(c, "SELECT pg_sleep(30)", NULL, 0, 0, &collect_sink, &k);
    schedule(&t, 200, do_cancel, c);
    run_until(&k.done);
    unschedule(&t);
    cr_assert(!k.res.ok);
    cr_assert_eq(k.res.err.code, DBPOOL_E_CANCELED, "%d %s", k.res.err.code, k.res.err.message);
    cr_assert_str_eq(k.res.err.sqlstate, "57014");
    cr_assert(!k.res.broken);
    cr_assert_eq(k.res.txstate, 'I');
    cr_assert_lt(now_s() - t0, 5.0);
    collect_free(&k);
    drv->cancel(c);   /* nothing runs: harmless */
    cr_assert_eq(query_int(c, "SELECT 42"), 42);
    drv->close(c);
}

Test(pg, cancel_inside_transaction)
{
    struct backend_conn *c = open_conn();
    struct collect k = { 0 };
    struct later t = { 0 };

    exec_ok(c, "BEGIN");
    start_exec(c, "SELECT pg_sleep(30)", NULL, 0, 0, &collect_sink, &k);
    schedule(&t, 100, do_cancel, c);
    run_until(&k.done);
    unschedule(&t);
    cr_assert_eq(k.res.err.code, DBPOOL_E_CANCELED, "%s", k.res.err.message);
    cr_assert_eq(k.res.txstate, 'E');
    collect_free(&k);
    cr_assert_eq(exec_ok(c, "ROLLBACK").txstate, 'I');
    drv->close(c);
}

/* cancel() right after exec(), while a 16 MB statement is still being sent. */
Test(pg, cancel_while_sending)
{
    struct backend_conn *c = open_conn();
    struct collect k = { 0 };
    size_t n = 16u << 20;
    char *big = malloc(n);
    dbpool_value p;
    double t0 = now_s();

    cr_assert_not_null(big);
    memset(big, 'q', n);
    p = dbpool_textn(big, n);
    start_exec(c, "SELECT length($1), pg_sleep(30)", &p, 1, 0, &collect_sink, &k);
    free(big);
    drv->cancel(c);
    run_until(&k.done);
    cr_assert_eq(k.res.err.code, DBPOOL_E_CANCELED, "%d %s", k.res.err.code, k.res.err.message);
    cr_assert_lt(now_s() - t0, 5.0);
    collect_free(&k);
    cr_assert_eq(query_int(c, "SELECT 5"), 5);
    drv->close(c);
}

/* A cancel that loses the race against the statement's own completion
 * must not hit the next statement: completion waits until the cancel
 * request has reached the server. */
Test(pg, late_cancel_does_not_hit_the_next_statement)
{
    struct backend_conn *c = open_conn();
    struct collect k;

    for (int i = 0; i < 20; i++) {
        memset(&k, 0, sizeof(k));
        start_exec(c, "SELECT 1", NULL, 0, 0, &collect_sink, &k);
        drv->cancel(c);
        run_until(&k.done);
        cr_assert(k.res.ok || k.res.err.code == DBPOOL_E_CANCELED, "%s", k.res.err.message);
        collect_free(&k);
        run_q(c, "SELECT pg_sleep(0.02)", NULL, 0, 0, &k);
        cr_assert(k.res.ok, "round %d: %s", i, k.res.err.message);
        collect_free(&k);
    }
    drv->close(c);
}

/* Cancel a stream paused by the sink: done comes without resume(). */
Test(pg, cancel_paused_stream)
{
    struct backend_conn *c = open_conn();
    struct stream s = { .pause_every = 1 };
    struct later t = { 0 };

    stream_start(&s, c, BIG_SQL, "int4");
    run_until(&s.paused);
    schedule(&t, 100, do_cancel, c);
    run_until(&s.done);
    unschedule(&t);
    cr_assert(!s.res.ok);
    cr_assert_eq(s.res.err.code, DBPOOL_E_CANCELED, "%s", s.res.err.message);
    cr_assert_eq(s.rows, 1);
    cr_assert_eq(query_int(c, "SELECT 7"), 7);
    drv->close(c);
}

/* ------------------------------------------- cancel helpers, no polling */

/*
 * PQcancel() and event_add() are interposed for the whole test process, as
 * getaddrinfo() is (the driver is linked into this program): PQcancel
 * counts the cancel requests the driver's helpers send and, while the gate
 * is closed, holds its helper after the server has the request, as a slow
 * network would; event_add fails the next timed event_add on an event of
 * the connection fail_timer_of, as libevent does when memory runs out.
 */
typedef int (*pqcancel_fn)(PGcancel *, char *, int);
typedef int (*event_add_fn)(struct event *, const struct timeval *);
static atomic_int cancel_calls;
static atomic_bool cancel_returned;       /* the server has a request */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_closed;
static void *fail_timer_of;

int PQcancel(PGcancel *cancel, char *errbuf, int errbufsize)
{
    pqcancel_fn real;
    int rc;

    *(void **)&real = dlsym(RTLD_NEXT, "PQcancel");
    if (!real)
        abort();
    rc = real(cancel, errbuf, errbufsize);
    atomic_fetch_add(&cancel_calls, 1);
    atomic_store(&cancel_returned, true);
    pthread_mutex_lock(&gate_mu);
    while (gate_closed)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    return rc;
}

int event_add(struct event *ev, const struct timeval *tv)
{
    static event_add_fn real;

    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "event_add");
    if (!real)
        abort();
    if (tv && fail_timer_of && event_get_callback_arg(ev) == fail_timer_of &&
        pthread_equal(pthread_self(), loop_thread)) {
        fail_timer_of = NULL;
        return -1;
    }
    return real(ev, tv);
}

static void gate_set(bool closed)
{
    pthread_mutex_lock(&gate_mu);
    gate_closed = closed;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

static void cancel_counters_reset(void)
{
    atomic_store(&cancel_calls, 0);
    atomic_store(&cancel_returned, false);
    fail_timer_of = NULL;
}

/* Run the loop until a helper thread has set *flag. */
static void await_atomic(atomic_bool *flag)
{
    double t0 = now_s();

    while (!atomic_load(flag)) {
        cr_assert_lt(now_s() - t0, guard_seconds(), "timed out waiting for a cancel helper");
        run_for(2);
    }
}

/* Run the loop until backend pid is (or is no longer) running a statement,
 * as obs sees it in pg_stat_activity. */
static void await_backend_active(struct backend_conn *obs, int64_t pid, bool active)
{
    dbpool_value p = dbpool_int(pid);
    double t0 = now_s();

    while ((query_int_p(obs, "SELECT count(*) FROM pg_stat_activity "
                             "WHERE pid = $1::int AND state = 'active'", &p, 1) == 1) != active) {
        cr_assert_lt(now_s() - t0, guard_seconds(), "backend %lld never became %s",
                     (long long)pid, active ? "active" : "idle");
        run_for(5);
    }
}

static void on_window(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    *(bool *)arg = true;
}

/* Loop iterations (each one a wake-up of the loop) in the next ms
 * milliseconds. */
static int wakeups_during(int ms)
{
    bool over = false;
    struct event *t = evtimer_new(base, on_window, &over);
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    int n = 0;

    cr_assert_not_null(t);
    cr_assert_eq(evtimer_add(t, &tv), 0);
    while (!over) {
        cr_assert_geq(event_base_loop(base, EVLOOP_ONCE), 0);
        n++;
    }
    event_free(t);
    return n;
}

/* A statement canceled while it runs on c, watched from obs. */
struct canceled {
    struct backend_conn *c, *obs;
    int64_t pid;              /* c's server backend */
    struct collect k;         /* the statement's result */
};

/* Start sql on a new connection and cancel it once it runs (a cancel
 * before the server has read it would be dropped); returns once the server
 * has the request. hold: its helper is then held (the gate); fail_timer: the
 * connection's next timed event_add fails. */
static void cancel_running(struct canceled *x, const char *sql, bool hold, bool fail_timer)
{
    memset(x, 0, sizeof(*x));
    x->c = open_conn();
    x->obs = open_conn();
    x->pid = query_int(x->c, "SELECT pg_backend_pid()");
    cancel_counters_reset();
    gate_set(hold);
    if (fail_timer)
        fail_timer_of = x->c;
    start_exec(x->c, sql, NULL, 0, 0, &collect_sink, &x->k);
    await_backend_active(x->obs, x->pid, true);
    drv->cancel(x->c);
    await_atomic(&cancel_returned);
}

static void canceled_end(struct canceled *x)
{
    gate_set(false);
    collect_free(&x->k);
    drv->close(x->obs);
    drv->close(x->c);
}

/* The statement ended at the cancel, but the cancel's helper has not
 * returned yet (a slow network): completion waits for the helper, which
 * wakes the loop when it is done. Nothing polls meanwhile (this waited in
 * 2 ms polls), and no second request is sent. */
Test(pg, cancel_wait_is_woken_not_polled)
{
    struct canceled x;
    int wakeups;

    cancel_running(&x, "SELECT pg_sleep(5)", true, false);
    await_backend_active(x.obs, x.pid, false);   /* the error is on its way to c */
    wakeups = wakeups_during(200);
    cr_assert(!x.k.done, "completed before the cancel request was known to have arrived");
    cr_assert_leq(wakeups, 10, "the loop woke %d times in 200 ms waiting for the cancel", wakeups);
    gate_set(false);
    run_until(&x.k.done);
    cr_assert_eq(x.k.res.err.code, DBPOOL_E_CANCELED, "%d %s", x.k.res.err.code,
                 x.k.res.err.message);
    cr_assert(!x.k.res.broken);
    cr_assert_eq(atomic_load(&cancel_calls), 1);
    cr_assert_eq(query_int(x.c, "SELECT 3"), 3);
    canceled_end(&x);
}

/* 4.5 s of a statement that catches every cancel. */
#define CANCEL_SWALLOWING_SQL                                                              \
    "DO $$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN "                           \
    "WHILE clock_timestamp() < t0 + interval '4500 ms' LOOP "                             \
    "BEGIN PERFORM pg_sleep(0.05); EXCEPTION WHEN query_canceled THEN NULL; END; "        \
    "END LOOP; END $$"

/* A statement that survives cancels (it catches them) gets the request
 * again, after 1 s, then after 2 s, ...: a few helper threads in 4.5 s, not
 * one a second. */
Test(pg, cancel_outlived_is_resent_with_growing_delays)
{
    struct canceled x;
    int calls;

    cancel_running(&x, CANCEL_SWALLOWING_SQL, false, false);
    run_until(&x.k.done);
    cr_assert(x.k.res.ok, "%d %s", x.k.res.err.code, x.k.res.err.message);
    calls = atomic_load(&cancel_calls);
    cr_assert_geq(calls, 2, "the request was not sent again while the statement ran on");
    cr_assert_leq(calls, 3, "%d cancel requests in 4.5 s", calls);
    cr_assert_eq(query_int(x.c, "SELECT 4"), 4);
    canceled_end(&x);
}

/* The statement outlived its cancel and the timer for sending it again
 * cannot be armed (out of memory): the operation ends at once, broken (the
 * pool closes the connection), instead of leaving the statement to run on
 * unchecked (this ran it to its end). */
Test(pg, cancel_resend_without_its_timer_breaks_the_connection)
{
    struct canceled x;
    double t0;

    cancel_running(&x, CANCEL_SWALLOWING_SQL, false, true);
    t0 = now_s();
    run_until(&x.k.done);
    cr_assert(!x.k.res.ok);
    cr_assert_eq(x.k.res.err.code, DBPOOL_E_INTERNAL, "%d %s", x.k.res.err.code,
                 x.k.res.err.message);
    cr_assert(x.k.res.broken);
    cr_assert_lt(now_s() - t0, 3.0, "the statement ran on after its cancel failed");
    canceled_end(&x);
}

/* The wait for a late cancel cannot be bounded (its timer cannot be armed:
 * out of memory): the operation ends at once, with the connection broken
 * so that the late cancel cannot hit another statement (this completed
 * normally and kept the connection). */
Test(pg, cancel_wait_without_its_timer_breaks_the_connection)
{
    struct canceled x;

    cancel_running(&x, "SELECT pg_sleep(5)", true, true);
    run_until(&x.k.done);   /* while the cancel's helper is still held */
    cr_assert(!x.k.res.ok);
    cr_assert_eq(x.k.res.err.code, DBPOOL_E_CANCELED, "%d %s", x.k.res.err.code,
                 x.k.res.err.message);
    cr_assert(x.k.res.broken, "the connection was kept with a cancel request in flight");
    cr_assert_eq(x.k.res.txstate, 'I');
    canceled_end(&x);
}

/* --------------------------------------------------- broken connections */

static void terminate(struct backend_conn *killer, int64_t pid)
{
    dbpool_value p = dbpool_int(pid);
    struct collect k;

    run_q(killer, "SELECT pg_terminate_backend($1::int)", &p, 1, 0, &k);
    cr_assert(k.res.ok, "%s", k.res.err.message);
    cr_assert_eq(k.cells[0][0].type, DBPOOL_BOOL);
    cr_assert_eq(k.cells[0][0].i, 1);
    collect_free(&k);
    run_for(100);   /* let the victim's FATAL message and EOF arrive */
}

Test(pg, terminated_connection_is_reported_broken)
{
    struct backend_conn *a = open_conn(), *b = open_conn(), *killer = open_conn();
    struct collect k;
    struct opdone d = { 0 };
    double t0;

    terminate(killer, query_int(a, "SELECT pg_backend_pid()"));
    t0 = now_s();
    run_q(a, "SELECT 1", NULL, 0, 0, &k);
    cr_assert(!k.res.ok);
    cr_assert_eq(k.res.err.code, DBPOOL_E_CONN_LOST, "%d %s", k.res.err.code, k.res.err.message);
    cr_assert(k.res.broken);
    cr_assert_str_eq(k.res.err.message, "terminating connection due to administrator command");
    cr_assert_str_eq(k.res.err.sqlstate, "57P01");
    cr_assert_lt(now_s() - t0, 5.0);
    collect_free(&k);
    /* And again: libpq knows now, the send itself fails. */
    run_q(a, "SELECT 1", NULL, 0, 0, &k);
    cr_assert_eq(k.res.err.code, DBPOOL_E_CONN_LOST);
    cr_assert_str_eq(k.res.err.message, "no connection to the server");
    cr_assert(k.res.broken);
    collect_free(&k);

    exec_ok(b, "BEGIN");
    terminate(killer, query_int(b, "SELECT pg_backend_pid()"));
    drv->ping(b, on_done, &d);
    run_until(&d.done);
    cr_assert(!d.res.ok);
    cr_assert_eq(d.res.err.code, DBPOOL_E_CONN_LOST);
    cr_assert(d.res.broken);
    cr_assert_eq(d.res.txstate, 'I');
    drv->close(a);
    drv->close(b);
    drv->close(killer);
}

/* Killed while a statement runs: the read sees EOF. */
Test(pg, terminated_during_statement)
{
    struct backend_conn *a = open_conn(), *killer = open_conn();
    struct collect k = { 0 };
    dbpool_value pid = dbpool_int(query_int(a, "SELECT pg_backend_pid()"));
    struct collect kk;

    start_exec(a, "SELECT pg_sleep(30)", NULL, 0, 0, &collect_sink, &k);
    run_q(killer, "SELECT pg_terminate_backend($1::int)", &pid, 1, 0, &kk);
    cr_assert(kk.res.ok, "%s", kk.res.err.message);
    collect_free(&kk);
    run_until(&k.done);
    cr_assert(!k.res.ok);
    cr_assert_eq(k.res.err.code, DBPOOL_E_CONN_LOST, "%d %s", k.res.err.code, k.res.err.message);
    cr_assert(k.res.broken);
    collect_free(&k);
    drv->close(a);
    drv->close(killer);
}

/* ---------------------------------------------------------- idle watch */

/* What the pool does with watch_idle(): one record per watched connection. */
struct watch {
    struct backend_conn *c;
    int lost;                /* lost() calls */
    bool fired;
    bool close_in_lost;      /* close the connection from lost(), like the pool */
    bool in_watch_call;      /* inside watch_idle(): lost() must not run now */
    bool lost_inside_call;
    double at;               /* now_s() of the first lost() */
};

static void on_lost(void *arg)
{
    struct watch *w = arg;

    if (w->in_watch_call)
        w->lost_inside_call = true;
    if (w->lost++ == 0)
        w->at = now_s();
    w->fired = true;
    if (w->close_in_lost) {
        drv->close(w->c);
        w->c = NULL;
    }
}

static void watch(struct watch *w)
{
    cr_assert_not_null(drv->watch_idle, "the postgres driver has no watch_idle");
    cr_assert_not_null(drv->unwatch_idle, "the postgres driver has no unwatch_idle");
    w->in_watch_call = true;
    drv->watch_idle(w->c, on_lost, w);
    w->in_watch_call = false;
}

static void kill_pid(struct backend_conn *killer, int64_t pid)
{
    dbpool_value p = dbpool_int(pid);
    struct collect k;

    run_q(killer, "SELECT pg_terminate_backend($1::int)", &p, 1, 0, &k);
    cr_assert(k.res.ok, "%s", k.res.err.message);
    cr_assert_eq(k.cells[0][0].type, DBPOOL_BOOL);
    cr_assert_eq(k.cells[0][0].i, 1, "pg_terminate_backend(%lld) found no such backend",
                 (long long)pid);
    collect_free(&k);
}

/* pg_terminate_backend without caring whether the backend still exists. */
static void terminate_quietly(struct backend_conn *killer, int64_t pid)
{
    dbpool_value p = dbpool_int(pid);
    struct collect k;

    run_q(killer, "SELECT pg_terminate_backend($1::int)", &p, 1, 0, &k);
    cr_assert(k.res.ok, "%s", k.res.err.message);
    collect_free(&k);
}

static void expect_conn_lost(struct backend_conn *c)
{
    struct collect k;

    run_q(c, "SELECT 1", NULL, 0, 0, &k);
    cr_assert(!k.res.ok, "a statement on a terminated connection succeeded");
    cr_assert_eq(k.res.err.code, DBPOOL_E_CONN_LOST, "%d %s", k.res.err.code, k.res.err.message);
    cr_assert(k.res.broken);
    collect_free(&k);
}

/* The pool's case: a watched idle connection is terminated by the server;
 * lost() comes at once, exactly once, and may close the connection. */
Test(pg, idle_watch_reports_a_terminated_connection)
{
    struct backend_conn *killer = open_conn();
    struct watch w = { .c = open_conn(), .close_in_lost = true };
    int64_t pid = query_int(w.c, "SELECT pg_backend_pid()");
    double t0;

    watch(&w);
    cr_assert_eq(w.lost, 0);
    run_for(200);
    cr_assert_eq(w.lost, 0, "a healthy idle connection was reported lost");
    t0 = now_s();
    kill_pid(killer, pid);
    run_until(&w.fired);
    cr_assert_lt(w.at - t0, 2.0, "lost() came %.3f s after the termination", w.at - t0);
    cr_assert(!w.lost_inside_call);
    cr_assert_null(w.c, "lost() did not run the close");
    run_for(200);
    cr_assert_eq(w.lost, 1, "lost() called %d times", w.lost);
    drv->close(killer);
}

/* lost() that does not close: the watch has ended (one call, although the
 * dead socket stays readable) and the connection reports itself broken. */
Test(pg, idle_watch_ends_after_lost)
{
    struct backend_conn *killer = open_conn();
    struct watch w = { .c = open_conn() };
    int64_t pid = query_int(w.c, "SELECT pg_backend_pid()");

    watch(&w);
    kill_pid(killer, pid);
    run_until(&w.fired);
    run_for(300);
    cr_assert_eq(w.lost, 1, "lost() called %d times", w.lost);
    drv->unwatch_idle(w.c);   /* harmless after the watch ended */
    expect_conn_lost(w.c);
    drv->close(w.c);
    run_for(50);
    cr_assert_eq(w.lost, 1);
    drv->close(killer);
}

/* Quiet idle time and traffic that is not a close (NOTIFY from another
 * session) leave the connection watched; a later termination is still
 * reported, and the connection works normally in between. */
Test(pg, idle_watch_survives_quiet_time_and_notifications)
{
    struct backend_conn *other = open_conn();
    struct watch w = { .c = open_conn() };
    char listen[64], notify[96];
    int64_t pid = query_int(w.c, "SELECT pg_backend_pid()");
    double t0;

    snprintf(listen, sizeof(listen), "LISTEN dbpool_watch_%d", (int)getpid());
    snprintf(notify, sizeof(notify), "NOTIFY dbpool_watch_%d, 'hello'", (int)getpid());
    exec_ok(w.c, listen);
    watch(&w);
    run_for(500);
    cr_assert_eq(w.lost, 0, "a quiet idle connection was reported lost");
    for (int i = 0; i < 3; i++)
        exec_ok(other, notify);
    run_for(300);
    cr_assert_eq(w.lost, 0, "a NOTIFY was taken for a closed connection");

    /* Still watched: an operation ends the watch and works... */
    cr_assert_eq(query_int(w.c, "SELECT 41 + 1"), 42);
    exec_ok(other, notify);   /* arrives while unwatched; read by the next watch */
    run_for(100);
    watch(&w);
    run_for(200);
    cr_assert_eq(w.lost, 0);
    /* ... and a termination is reported. */
    t0 = now_s();
    kill_pid(other, pid);
    run_until(&w.fired);
    cr_assert_lt(w.at - t0, 2.0, "lost() came %.3f s after the termination", w.at - t0);
    run_for(100);
    cr_assert_eq(w.lost, 1);
    drv->close(w.c);
    drv->close(other);
}

/* unwatch_idle() before the termination: lost() never comes; the next
 * statement finds the connection broken. unwatch is idempotent. */
Test(pg, unwatched_connection_is_not_reported)
{
    struct backend_conn *killer = open_conn();
    struct watch w = { .c = open_conn() };

    drv->unwatch_idle(w.c);   /* never watched: harmless */
    watch(&w);
    drv->unwatch_idle(w.c);
    drv->unwatch_idle(w.c);
    kill_pid(killer, query_int(w.c, "SELECT pg_backend_pid()"));
    run_for(400);
    cr_assert_eq(w.lost, 0, "lost() after unwatch_idle()");
    expect_conn_lost(w.c);
    drv->close(w.c);
    drv->close(killer);
}

/* exec and ping end the watch: a connection killed after them is not
 * reported until it is watched again, and then exactly once. */
Test(pg, operations_end_the_watch)
{
    struct backend_conn *killer = open_conn();
    struct watch w = { .c = open_conn() };
    struct opdone d = { 0 };
    int64_t pid = query_int(w.c, "SELECT pg_backend_pid()");

    watch(&w);
    cr_assert_eq(query_int(w.c, "SELECT 7"), 7);   /* ends the watch */
    watch(&w);
    drv->ping(w.c, on_done, &d);                   /* ends it too */
    run_until(&d.done);
    cr_assert(d.res.ok, "%s", d.res.err.message);
    kill_pid(killer, pid);
    run_for(400);
    cr_assert_eq(w.lost, 0, "lost() although an operation had ended the watch");
    watch(&w);
    cr_assert_eq(w.lost, 0, "lost() ran inside watch_idle()");
    run_until(&w.fired);
    cr_assert(!w.lost_inside_call);
    run_for(100);
    cr_assert_eq(w.lost, 1);
    drv->close(w.c);
    drv->close(killer);
}

/* A connection that is dead (or was never connected) when the watch starts
 * is reported from the loop, not from inside watch_idle(). */
Test(pg, watch_of_a_dead_connection_reports_from_the_loop)
{
    struct backend_conn *killer = open_conn();
    struct watch w = { .c = new_conn(), .close_in_lost = true };

    watch(&w);   /* never connected */
    cr_assert_eq(w.lost, 0, "lost() ran inside watch_idle()");
    run_until(&w.fired);
    cr_assert(!w.lost_inside_call);

    w = (struct watch){ .c = open_conn(), .close_in_lost = true };
    kill_pid(killer, query_int(w.c, "SELECT pg_backend_pid()"));
    run_for(100);            /* let the FATAL message and the EOF arrive */
    expect_conn_lost(w.c);   /* libpq now knows (CONNECTION_BAD) */
    watch(&w);
    cr_assert_eq(w.lost, 0, "lost() ran inside watch_idle()");
    run_until(&w.fired);
    run_for(50);
    cr_assert_eq(w.lost, 1);
    drv->close(killer);
}

/* close() ends the watch: no callback afterwards (ASan: no use after free). */
Test(pg, close_ends_the_watch)
{
    struct backend_conn *killer = open_conn();
    struct watch w = { .c = open_conn() };
    int64_t pid = query_int(w.c, "SELECT pg_backend_pid()");

    watch(&w);
    drv->close(w.c);
    terminate_quietly(killer, pid);   /* usually gone already (PQfinish) */
    run_for(300);
    cr_assert_eq(w.lost, 0, "lost() after close()");
    drv->close(killer);
}

/* -------------------------------------------------------------- close */

/* The statement is cancelled on the server too, not left running. */
Test(pg, close_with_statement_in_flight_then_quiesce)
{
    static const struct backend_sink sink = { NULL, never_row, never_done };
    struct backend_conn *c = open_conn(), *watcher;
    bool called = false;
    struct later t = { 0 };
    char sql[128], probe[256];
    int64_t left = -1;
    double t0;

    snprintf(sql, sizeof(sql), "SELECT pg_sleep(30) /* close-marker-%d */", (int)getpid());
    snprintf(probe, sizeof(probe),
             "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%%close-marker-%d%%' "
             "AND pid <> pg_backend_pid()", (int)getpid());
    start_exec(c, sql, NULL, 0, 0, &sink, &called);
    schedule(&t, 100, do_close, c);
    run_for(300);
    unschedule(&t);
    cr_assert(!called, "a callback ran after close");
    t0 = now_s();
    drv->quiesce();
    cr_assert_lt(now_s() - t0, 5.0);
    watcher = open_conn();
    for (int i = 0; i < 50 && left != 0; i++) {
        left = query_int(watcher, probe);
        if (left)
            run_for(100);
    }
    cr_assert_eq(left, 0, "the server still runs the statement");
    drv->close(watcher);
}

Test(pg, close_paused_stream)
{
    struct backend_conn *c = open_conn();
    struct stream s = { .pause_every = 1 };

    stream_start(&s, c, BIG_SQL, "int4");
    run_until(&s.paused);
    run_for(100);
    drv->close(c);
    run_for(50);
    cr_assert(!s.done);
}

/* Cancel, then close before the cancel helper has finished. */
Test(pg, close_right_after_cancel)
{
    static const struct backend_sink sink = { NULL, never_row, never_done };
    struct backend_conn *c = open_conn();
    bool called = false;

    start_exec(c, "SELECT pg_sleep(30)", NULL, 0, 0, &sink, &called);
    run_for(50);
    drv->cancel(c);
    drv->close(c);
    drv->quiesce();
    run_for(50);
    cr_assert(!called);
}

Test(pg, close_from_row_callback)
{
    struct backend_conn *c = open_conn();
    struct stream s = { .on_row = close_after_rows };

    stream_start(&s, c, BIG_SQL, "int4");
    run_until(&s.done);
    run_for(50);
    cr_assert_eq(s.rows, 300);   /* no row after close */
}

Test(pg, close_from_done_and_columns_callbacks)
{
    static const struct backend_sink sink = { NULL, NULL, close_in_done_cb };
    struct close_in_done x = { open_conn(), false };

    start_exec(x.c, "SELECT 1", NULL, 0, 0, &sink, &x);
    run_until(&x.done);
    run_for(20);

    /* From connect's done (what the pool does after a failed connect). */
    x.c = new_conn();
    x.done = false;
    drv->connect(x.c, close_in_done_cb, &x);
    run_until(&x.done);
}

static void close_in_columns(void *arg, size_t n, const dbpool_column *cols)
{
    struct close_in_done *x = arg;
    (void)n, (void)cols;
    drv->close(x->c);
    x->done = true;
}

Test(pg, close_from_columns_callback)
{
    static const struct backend_sink sink = { close_in_columns, NULL, close_in_done_cb };
    struct close_in_done x = { open_conn(), false };

    start_exec(x.c, "SELECT generate_series(1, 10)", NULL, 0, 0, &sink, &x);
    run_until(&x.done);
    run_for(50);
}

/* Many connections opened and closed. */
Test(pg, churn)
{
    for (int i = 0; i < 30; i++) {
        struct backend_conn *c = open_conn();
        cr_assert_eq(query_int(c, "SELECT 1"), 1);
        drv->close(c);
    }
}
