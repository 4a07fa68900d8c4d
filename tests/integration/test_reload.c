/*
 * test_reload.c — live reload (SIGHUP, POST /reload; src/daemon/reload.c)
 * against the real daemon: an invalid config keeps the old one serving and
 * is reported with file:line; pools are added, resized and removed; a
 * removed pool's open transaction commits before its session gets
 * UNKNOWN_POOL; changed connection settings recycle server connections
 * only after the transaction; 50 clients run transactions through reloads
 * without one failing. Runs on the profile's backend ("app") plus SQLite
 * pools of its own.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* ------------------------------------------------------------- helpers */

/* `, { name = "NAME"; type = "sqlite"; sqlite = { filePath = ...; } }` for
 * h_opts.extra_pools (a buffer per slot: up to two extra pools). */
static const char *sqlite_pool(int slot, const char *name)
{
    static char buf[2][600];

    snprintf(buf[slot], sizeof(buf[slot]), ", { name = \"%s\"; type = \"sqlite\"; sqlite = { "
             "filePath = \"%s/%s.db\"; }; }", name, h_paths()->dir, name);
    return buf[slot];
}

static char both[1300];

static const char *two_pools(const char *a, const char *b)
{
    char first[600];

    snprintf(first, sizeof(first), "%s", sqlite_pool(0, a));
    snprintf(both, sizeof(both), "%s%s", first, sqlite_pool(1, b));
    return both;
}

/* POST /reload; the status code; the body in *body (caller frees). */
static int reload_now(char **body)
{
    return h_http("POST", "/reload", body);
}

static void reload_ok(const char *what)
{
    char *body = NULL;
    int code = reload_now(&body);

    cr_assert_eq(code, 200, "%s: POST /reload answered %d: %s", what, code, body);
    cr_assert(strstr(body, "\"ok\": true"), "%s: %s", what, body);
    free(body);
}

static void expect_code(dbpool_conn *c, int rc, int code, const char *needle, const char *what)
{
    const dbpool_error *e = dbpool_last_error(c);

    cr_assert_eq(rc, -1, "%s: succeeded", what);
    cr_assert_eq(e->code, code, "%s: %s: %s", what, dbpool_code_name(e->code), e->message);
    cr_assert(!needle || strstr(e->message, needle), "%s: message \"%s\" lacks \"%s\"", what,
              e->message, needle);
}

static int64_t count_rows(dbpool_conn *c, const char *table)
{
    char sql[100];

    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", table);
    return h_scalar(c, sql);
}

/* The server connection id of the only session (GET /clients). */
static double bound_server(void)
{
    char *body = NULL;

    cr_assert_eq(h_http_get("/clients", &body), 200);
    double id = H_JSON_NUM(body, "server");
    free(body);
    return id;
}

/* h_start(o) with o->extra_pools (made by sqlite_pool, which needs the
 * test's directory) added by a first reload. */
static void start_with(struct h_opts *o, const char *const *names)
{
    h_start(o);
    if (!names)
        return;
    o->extra_pools = names[1] ? two_pools(names[0], names[1]) : sqlite_pool(0, names[0]);
    h_rewrite_config(o);
    reload_ok("adding the test's pools");
}

#define POOLS(...) ((const char *const[]){ __VA_ARGS__, NULL })

TestSuite(reload, .fini = h_fini, .timeout = 120);

/* ------------------------------------------------------ invalid config */

Test(reload, an_invalid_config_keeps_the_old_one_and_reports_file_and_line)
{
    struct h_opts o = { 0 };
    char *body = NULL;

    start_with(&o, POOLS("keep"));
    dbpool_conn *c = h_connect();
    struct h_opts bad = o;
    bad.pool_settings = "acquireTimeout = \"soon\";";   /* not a duration */
    h_rewrite_config(&bad);
    int code = reload_now(&body);
    cr_assert_eq(code, 422, "an invalid config answered %d: %s", code, body);
    free(body);
    cr_assert_eq(h_scalar(c, "SELECT 1"), 1, "the connected client stopped being served");
    dbpool_error e;
    dbpool_conn *k = h_try_connect("keep", &e);
    cr_assert_not_null(k, "the old config's pool is gone: %s", e.message);
    dbpool_close(k);
    cr_assert_eq(h_http_get("/health", &body), 200, "a failed reload made the daemon unhealthy");
    char want[400];
    snprintf(want, sizeof(want), "\"errors\": [\"%s:", h_paths()->conf);
    cr_assert(strstr(body, want) && strstr(body, "acquireTimeout"), "error without file:line: %s",
              body);
    cr_assert(strstr(body, "\"ok\": false"), "%s", body);
    free(body);
    cr_assert_eq(h_http_get("/metrics", &body), 200);
    cr_assert(strstr(body, "dbpoold_reload_total{result=\"failed\"} 1"), "%s", body);
    free(body);
    char *log = h_read_log();
    cr_assert(strstr(log, "event=reload_error") && strstr(log, h_paths()->conf),
              "not logged with file:line");
    free(log);
    dbpool_close(c);
    h_stop_ok();
}

Test(reload, reload_takes_post_only)
{
    char *body = NULL;

    h_start(NULL);
    cr_assert_eq(h_http("GET", "/reload", &body), 405, "%s", body);
    free(body);
    cr_assert_eq(h_http_get("/stats", &body), 200);
    cr_assert(strstr(body, "\"last_reload\": null"), "a GET reloaded: %s", body);
    free(body);
    h_stop_ok();
}

/* ------------------------------------------------------- adding, sizes */

Test(reload, sighup_adds_a_pool_that_clients_use_at_once)
{
    struct h_opts o = { 0 };
    dbpool_error e;

    h_start(&o);
    dbpool_conn *c = h_connect();
    h_exec(c, "BEGIN");
    o.extra_pools = sqlite_pool(0, "fresh");
    h_rewrite_config(&o);
    h_signal(SIGHUP);
    cr_assert(H_AWAIT(H_STATUS_NUM_OPT("/stats", "last_reload", "pools_added") == 1, 10000),
              "SIGHUP did not add the pool");
    dbpool_conn *f = h_try_connect("fresh", &e);
    cr_assert_not_null(f, "HELLO to the added pool failed: %s", e.message);
    cr_assert_eq(h_scalar(f, "SELECT 2"), 2);
    h_exec(c, "COMMIT");   /* the transaction open across the reload */
    dbpool_close(f);
    dbpool_close(c);
    h_stop_ok();
}

Test(reload, sizes_apply_in_place_and_sockets_need_a_restart)
{
    struct h_opts o = { .max_open_conns = 4 };
    char *body = NULL;

    h_start(&o);
    dbpool_conn *c = h_connect();
    cr_assert_eq(h_pool_stat(H_POOL, "servers", "max"), 4);
    o.max_open_conns = 2;
    o.daemon_settings = "listenBacklog = 64;";   /* read only when the sockets are made */
    h_rewrite_config(&o);
    cr_assert_eq(reload_now(&body), 200, "%s", body);
    cr_assert(strstr(body, "\"pools_changed\": 1"), "%s", body);
    cr_assert(strstr(body, "\"restart_needed\": [\"listenBacklog\"]"), "%s", body);
    free(body);
    cr_assert_eq(h_pool_stat(H_POOL, "servers", "max"), 2, "maxOpenConns did not apply");
    cr_assert_eq(h_scalar(c, "SELECT 3"), 3);
    char *log = h_read_log();
    cr_assert(strstr(log, "socket changes need a restart"), "the restart was not logged");
    free(log);
    dbpool_close(c);
    h_stop_ok();
}

/* ---------------------------------------------------------- removal */

Test(reload, a_removed_pool_commits_the_open_transaction_then_refuses)
{
    struct h_opts o = { 0 };
    dbpool_error e;
    char *body = NULL;

    start_with(&o, POOLS("gone"));
    dbpool_conn *tx = h_try_connect("gone", &e), *idle = h_try_connect("gone", &e);
    cr_assert(tx && idle, "%s", e.message);
    h_exec(tx, "CREATE TABLE t (v INTEGER)");
    h_exec(tx, "BEGIN");
    h_exec(tx, "INSERT INTO t VALUES (1)");
    o.extra_pools = NULL;
    h_rewrite_config(&o);
    cr_assert_eq(reload_now(&body), 200, "%s", body);
    cr_assert(strstr(body, "\"pools_removed\": 1"), "%s", body);
    free(body);
    expect_code(idle, dbpool_exec(idle, "SELECT 1"), DBPOOL_E_UNKNOWN_POOL, "was removed",
                "an idle session of the removed pool");
    cr_assert_null(h_try_connect("gone", &e), "HELLO to a removed pool succeeded");
    cr_assert_eq(e.code, DBPOOL_E_UNKNOWN_POOL, "%s", e.message);
    cr_assert(strstr(e.message, "removed from the configuration"), "%s", e.message);
    h_exec(tx, "INSERT INTO t VALUES (2)");
    cr_assert_eq(dbpool_commit(tx), 0, "COMMIT in the removed pool failed: %s",
                 dbpool_last_error(tx)->message);
    expect_code(tx, dbpool_exec(tx, "SELECT 1"), DBPOOL_E_UNKNOWN_POOL, "was removed",
                "the request after the transaction");
    cr_assert(H_AWAIT(H_STATUS_NUM("/stats", "pools_draining") == 0, 10000),
              "the drained pool was not freed");
    o.extra_pools = sqlite_pool(0, "gone");
    h_rewrite_config(&o);
    reload_ok("adding the pool back");
    dbpool_conn *back = h_try_connect("gone", &e);
    cr_assert_not_null(back, "%s", e.message);
    cr_assert_eq(count_rows(back, "t"), 2, "the committed transaction was lost");
    dbpool_close(back);
    dbpool_close(tx);
    dbpool_close(idle);
    h_stop_ok();
}

/* ---------------------------------------------------------- recycling */

/* The backend's process id of the session's server connection, or 0 when
 * the profile has none (SQLite). */
static int64_t backend_pid(dbpool_conn *c)
{
    const char *sql = h_profile()->backend_pid_sql;

    return sql ? h_scalar(c, sql) : 0;
}

/* BEGIN and a statement: the session is bound to a server now. */
static void bind_in_tx(dbpool_conn *c)
{
    h_exec(c, "BEGIN");
    cr_assert_eq(h_scalar(c, "SELECT 1"), 1);
}

Test(reload, changed_connection_settings_recycle_servers_after_the_transaction)
{
    struct h_opts o = { .max_open_conns = 1, .pool_settings = "timeout = \"20s\";" };
    char *body = NULL;

    h_start(&o);
    dbpool_conn *c = h_connect();
    bind_in_tx(c);
    double first = bound_server();
    h_exec(c, "COMMIT");
    bind_in_tx(c);
    cr_assert_eq(bound_server(), first, "without a reload the connection is reused");
    int64_t pid = backend_pid(c);
    o.pool_settings = "timeout = \"21s\";";
    h_rewrite_config(&o);
    cr_assert_eq(reload_now(&body), 200, "%s", body);
    cr_assert(strstr(body, "\"pools_recycled\": 1"), "%s", body);
    free(body);
    cr_assert_eq(bound_server(), first, "the server changed inside the transaction");
    cr_assert_eq(backend_pid(c), pid, "the backend changed inside the transaction");
    h_exec(c, "COMMIT");
    bind_in_tx(c);
    cr_assert_neq(bound_server(), first, "the old-settings connection was handed out again");
    if (pid)
        cr_assert_neq(backend_pid(c), pid, "the same backend process after the recycle");
    h_exec(c, "COMMIT");
    dbpool_close(c);
    h_stop_ok();
}

/* ------------------------------------------------------------- load */

#define LOAD_CLIENTS 50

struct loader {
    pthread_t tid;
    atomic_int *stop;
    atomic_long ok, failed;
    char first_error[700];
};

static void *load_client(void *arg)
{
    struct loader *l = arg;
    dbpool_error e;
    dbpool_conn *c = h_try_connect(H_POOL, &e);
    const char *insert = h_sql("INSERT INTO load (v) VALUES (?)");

    if (!c) {
        snprintf(l->first_error, sizeof(l->first_error), "connect: %s", e.message);
        atomic_fetch_add(&l->failed, 1);
        return NULL;
    }
    for (int64_t i = 0; !atomic_load(l->stop); i++) {
        dbpool_value v = dbpool_int(i);
        dbpool_result *r = NULL;
        int rc = dbpool_begin(c, 0);
        rc = rc ? rc : dbpool_query(c, insert, &v, 1, &r);
        dbpool_result_free(r);
        rc = rc ? rc : dbpool_commit(c);
        if (rc == 0) {
            atomic_fetch_add(&l->ok, 1);
            continue;
        }
        if (atomic_fetch_add(&l->failed, 1) == 0)
            snprintf(l->first_error, sizeof(l->first_error), "%s: %s",
                     dbpool_code_name(dbpool_last_error(c)->code), dbpool_last_error(c)->message);
        if (!dbpool_is_open(c))
            break;
        (void)dbpool_rollback(c);
    }
    dbpool_close(c);
    return NULL;
}

static long total_ok(struct loader *l)
{
    long n = 0;

    for (int i = 0; i < LOAD_CLIENTS; i++)
        n += atomic_load(&l[i].ok);
    return n;
}

Test(reload, fifty_clients_run_transactions_through_reloads_without_a_failure)
{
    static struct loader l[LOAD_CLIENTS];
    atomic_int stop = 0;
    struct h_opts o = { .max_open_conns = 4 };

    start_with(&o, POOLS("b"));
    dbpool_conn *c = h_connect();
    h_create_table(c, "load", "v BIGINT");
    memset(l, 0, sizeof(l));
    for (int i = 0; i < LOAD_CLIENTS; i++) {
        l[i].stop = &stop;
        cr_assert_eq(pthread_create(&l[i].tid, NULL, load_client, &l[i]), 0);
    }
    const struct { int max_open; const char *extra; } steps[] = {
        { 2, NULL },                   /* shrink, remove b */
        { 6, "c" },                    /* grow, add c */
        { 3, "bc" },                   /* shrink, add b back */
        { 5, "b" },                    /* grow, remove c */
    };
    for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
        long before = total_ok(l);
        cr_assert(H_AWAIT(total_ok(l) >= before + 4 * LOAD_CLIENTS, 30000), "no progress before "
                  "reload %zu", s);
        o.max_open_conns = steps[s].max_open;
        o.extra_pools = !steps[s].extra ? NULL : strlen(steps[s].extra) == 2
                        ? two_pools("b", "c") : sqlite_pool(0, steps[s].extra);
        h_rewrite_config(&o);
        reload_ok("a reload under load");
    }
    long before = total_ok(l);
    cr_assert(H_AWAIT(total_ok(l) >= before + 4 * LOAD_CLIENTS, 30000), "no progress after reloads");
    atomic_store(&stop, 1);
    long failed = 0;
    for (int i = 0; i < LOAD_CLIENTS; i++) {
        pthread_join(l[i].tid, NULL);
        failed += atomic_load(&l[i].failed);
        cr_assert_eq(atomic_load(&l[i].failed), 0, "client %d: %s", i, l[i].first_error);
    }
    cr_assert_eq(failed, 0);
    cr_assert_eq(count_rows(c, "load"), total_ok(l), "committed rows and counted commits differ");
    cr_assert_eq(h_pool_stat(H_POOL, "servers", "max"), 5);
    dbpool_close(c);
    h_stop_ok();
}
