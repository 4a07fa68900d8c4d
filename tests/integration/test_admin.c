/*
 * test_admin.c — the status socket's admin side and dbpoolctl
 * (doc/status.md, dbpoolctl(8)): GET /servers and /config, the admin
 * actions (pause, resume, reconnect, kill, shutdown) with their error
 * statuses, who may use them (root, adminUsers, adminGroups; GET for
 * everyone statusSocketMode admits), the latency percentiles against a
 * known workload, and dbpoolctl's output and exit codes.
 *
 * The pool is SQLite (one writer), so a held transaction makes the next
 * writer wait: waits and hold times are what the test itself arranges.
 * Tests that run dbpoolctl under another uid use the system's "nobody"
 * user with setpriv (root only; skipped otherwise) — no users are created.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define ADMIN_GID "4242"             /* a group id nobody is given with setpriv --groups */

TestSuite(admin, .fini = h_fini, .timeout = 60);

/* ------------------------------------------------------------ helpers */

static void create_table(void)
{
    dbpool_conn *c = h_connect();
    h_create_table(c, "t", "a INTEGER");
    dbpool_close(c);
}

static int64_t count_rows(dbpool_conn *c)
{
    return h_scalar(c, "SELECT count(*) FROM t");
}

/* The id of the first client session in state (GET /clients), or 0. */
static uint64_t client_in_state(const char *state)
{
    char *body = NULL, needle[64];
    uint64_t id = 0;

    cr_assert_eq(h_http_get("/clients", &body), 200, "%s", body);
    snprintf(needle, sizeof(needle), "\"state\": \"%s\"", state);
    const char *at = strstr(body, needle);
    if (at) {
        while (at > body && strncmp(at, "{\"id\": ", 7) != 0)
            at--;
        id = strtoull(at + 7, NULL, 10);
    }
    free(body);
    return id;
}

/* Run dbpoolctl with args (prefixed by setpriv ... when as is not NULL);
 * its output (stdout and stderr) in *out; returns its exit status. */
static int run_ctl(const char *as, const char *args, char **out)
{
    char cmd[2048];
    const char *bin = getenv("DBPOOLCTL_BIN");
    size_t len = 0, cap = 65536;
    FILE *p;

    snprintf(cmd, sizeof(cmd), "%s %s -s '%s' %s 2>&1", as ? as : "",
             bin ? bin : "./dbpoolctl", h_paths()->status_sock, args);
    cr_assert_not_null(p = popen(cmd, "r"), "popen %s", cmd);
    cr_assert_not_null(*out = malloc(cap));
    size_t r;
    while ((r = fread(*out + len, 1, cap - len - 1, p)) > 0)
        len += r;
    (*out)[len] = '\0';
    int st = pclose(p);
    cr_assert(WIFEXITED(st), "dbpoolctl %s did not exit: %s", args, *out);
    return WEXITSTATUS(st);
}

/* Everyone may reach the status socket: its directory and the run's root
 * directory above it become traversable (0711). */
static void open_socket_dir(void)
{
    char dir[300];

    snprintf(dir, sizeof(dir), "%s", h_paths()->dir);
    cr_assert_eq(chmod(dir, 0711), 0, "chmod %s: %s", dir, strerror(errno));
    cr_assert_eq(chmod(dirname(dir), 0711), 0, "chmod %s: %s", dir, strerror(errno));
}

static void need_root(void)
{
    if (geteuid() != 0)
        cr_skip_test("needs root: it runs dbpoolctl as the user nobody (setpriv)");
    if (access("/usr/bin/setpriv", X_OK) != 0)
        cr_skip_test("setpriv (util-linux) is not installed");
}

#define AS_NOBODY "setpriv --reuid=nobody --regid=nogroup --clear-groups"
#define AS_NOBODY_IN_ADMIN_GROUP "setpriv --reuid=nobody --regid=nogroup --groups=" ADMIN_GID

/* ------------------------------------------------------------ GET */

Test(admin, servers_lists_each_connection_and_config_redacts_the_password)
{
    struct h_opts o = { .extra_pools = ", { name = \"remote\"; type = \"postgres\"; postgres = { "
                        "host = \"/nonexistent\"; name = \"db\"; username = \"u\"; "
                        "password = \"s3cret-pw\"; maxRetries = 0; }; }" };
    char *body = NULL;

    h_start(&o);
    create_table();
    cr_assert_eq(h_http_get("/servers", &body), 200, "%s", body);
    cr_assert(strstr(body, "\"pool\": \"app\", \"state\": \"idle\", \"role\": \"writer\""),
              "%s", body);
    cr_assert(strstr(body, "\"stale\": false"), "%s", body);
    cr_assert_geq(H_JSON_NUM(body, "servers", "requests"), 1, "create_table ran on it: %s", body);
    cr_assert(strstr(body, "\"statement_ms\": null"), "an idle server runs nothing: %s", body);
    free(body);

    cr_assert_eq(h_http_get("/config", &body), 200, "%s", body);
    cr_assert_null(strstr(body, "s3cret-pw"), "the password leaked: %s", body);
    cr_assert(strstr(body, "\"password\": \"***\""), "%s", body);
    cr_assert(strstr(body, "\"statusSocketMode\": \"0660\""), "%s", body);
    cr_assert(strstr(body, "\"name\": \"remote\", \"type\": \"postgres\""), "%s", body);
    cr_assert(strstr(body, "\"acquireTimeout\": \"10s\""), "defaults are shown: %s", body);
    free(body);
    h_stop_ok();
}

Test(admin, clients_shows_age_requests_and_bytes)
{
    char *body = NULL;

    h_start(NULL);
    create_table();
    dbpool_conn *c = h_connect();
    for (int i = 0; i < 3; i++)
        h_exec(c, "INSERT INTO t VALUES (1)");
    cr_assert_eq(h_http_get("/clients", &body), 200, "%s", body);
    cr_assert_geq(H_JSON_NUM(body, "clients", "requests"), 3, "%s", body);
    cr_assert_gt(H_JSON_NUM(body, "clients", "bytes_in"), 0, "%s", body);
    cr_assert_gt(H_JSON_NUM(body, "clients", "bytes_out"), 0, "%s", body);
    cr_assert_geq(H_JSON_NUM(body, "clients", "connected_ms"), 0, "%s", body);
    cr_assert(strstr(body, "\"request_ms\": null"), "no request runs: %s", body);
    free(body);
    dbpool_close(c);
    h_stop_ok();
}

/* ------------------------------------------------------------ actions and their errors */

Test(admin, pause_holds_new_requests_until_resume)
{
    char *body = NULL;

    h_start(NULL);
    create_table();
    dbpool_conn *c = h_connect();
    cr_assert_eq(h_http("POST", "/pools/app/pause", &body), 200, "%s", body);
    cr_assert(strstr(body, "\"paused\": true"), "%s", body);
    free(body);
    cr_assert_eq(h_pool_stat("app", "paused", NULL), 1);

    struct h_bg_query q = { .c = c, .sql = "INSERT INTO t VALUES (7)" };
    h_bg_start(&q);
    cr_assert(H_AWAIT(H_STATUS_NUM("/clients", "states", "waiting") == 1, 5000),
              "the request does not wait while the pool is paused");
    cr_assert_eq(h_http("POST", "/pools/app/pause", &body), 409, "paused twice: %s", body);
    cr_assert(strstr(body, "already paused"), "%s", body);
    free(body);
    cr_assert(!atomic_load(&q.done), "a request ran on a paused pool");

    cr_assert_eq(h_http("POST", "/pools/app/resume", &body), 200, "%s", body);
    free(body);
    cr_assert(H_AWAIT(atomic_load(&q.done), 5000), "the request did not run after resume");
    pthread_join(q.tid, NULL);
    cr_assert_eq(q.rc, 0, "%s", q.err.message);
    cr_assert_eq(h_http("POST", "/pools/app/resume", &body), 409, "resume of a running pool");
    cr_assert(strstr(body, "not paused"), "%s", body);
    free(body);
    dbpool_close(c);
    h_stop_ok();
}

Test(admin, reconnect_replaces_the_server_connections)
{
    char *body = NULL;

    h_start(NULL);
    create_table();
    cr_assert_eq(h_http_get("/servers", &body), 200);
    double before = H_JSON_NUM(body, "servers", "id");
    free(body);
    cr_assert_eq(h_http("POST", "/pools/app/reconnect", &body), 200, "%s", body);
    free(body);
    dbpool_conn *c = h_connect();
    cr_assert_eq(count_rows(c), 0);
    cr_assert_eq(h_http_get("/servers", &body), 200);
    cr_assert_gt(H_JSON_NUM(body, "servers", "id"), before, "the old connection is still used: %s",
                 body);
    free(body);
    dbpool_close(c);
    h_stop_ok();
}

Test(admin, kill_rolls_back_the_sessions_transaction_and_others_are_served)
{
    char *body = NULL, path[64];

    h_start(NULL);
    create_table();
    dbpool_conn *victim = h_connect(), *other = h_connect();
    cr_assert_eq(dbpool_begin(victim, 0), 0);
    h_exec(victim, "INSERT INTO t VALUES (1)");
    uint64_t id = client_in_state("idle_in_transaction");
    cr_assert_gt(id, 0, "no session in a transaction");

    snprintf(path, sizeof(path), "/clients/%llu/kill", (unsigned long long)id);
    cr_assert_eq(h_http("POST", path, &body), 200, "%s", body);
    free(body);
    h_expect_error(victim, dbpool_exec(victim, "INSERT INTO t VALUES (2)"), DBPOOL_E_SHUTDOWN,
                   "the killed session's next request");
    cr_assert(strstr(dbpool_last_error(victim)->message, "administrator"), "%s",
              dbpool_last_error(victim)->message);
    cr_assert_eq(count_rows(other), 0, "the killed transaction was not rolled back");
    h_exec(other, "INSERT INTO t VALUES (3)");
    cr_assert_eq(count_rows(other), 1);
    cr_assert_eq(h_http("POST", path, &body), 404, "a gone session: %s", body);
    free(body);
    dbpool_close(victim);
    dbpool_close(other);
    h_stop_ok();
}

Test(admin, unknown_targets_get_404_naming_them_and_other_methods_405)
{
    char *body = NULL;

    h_start(NULL);
    cr_assert_eq(h_http("POST", "/pools/nosuch/pause", &body), 404);
    cr_assert(strstr(body, "no such pool: \\\"nosuch\\\""), "%s", body);
    free(body);
    cr_assert_eq(h_http("POST", "/clients/987654/kill", &body), 404);
    cr_assert(strstr(body, "no such client: 987654"), "%s", body);
    free(body);
    cr_assert_eq(h_http("POST", "/clients/abc/kill", &body), 404);
    free(body);
    cr_assert_eq(h_http("GET", "/pools/app/pause", &body), 405, "%s", body);
    cr_assert(strstr(body, "takes POST"), "%s", body);
    free(body);
    cr_assert_eq(h_http("DELETE", "/shutdown", &body), 405);
    free(body);
    cr_assert_eq(h_http("POST", "/pools/app/explode", &body), 404);
    free(body);
    cr_assert_eq(h_http("POST", "/servers", &body), 405, "GET endpoints stay read-only");
    free(body);
    h_stop_ok();
}

Test(admin, shutdown_drains_like_sigterm)
{
    char *body = NULL;

    h_start(NULL);
    create_table();
    dbpool_conn *c = h_connect();
    cr_assert_eq(dbpool_begin(c, 0), 0);
    h_exec(c, "INSERT INTO t VALUES (1)");
    cr_assert_eq(h_http("POST", "/shutdown", &body), 202, "%s", body);
    free(body);
    cr_assert(H_AWAIT(h_health_status() == 503, 5000), "/health does not say shutting down");
    cr_assert_eq(h_http("POST", "/shutdown", &body), 409, "a second shutdown: %s", body);
    free(body);
    cr_assert_eq(dbpool_commit(c), 0, "the open transaction could not finish: %s",
                 dbpool_last_error(c)->message);
    dbpool_close(c);
    int st = h_wait_exit(10000);
    cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "dbpoold did not exit cleanly");
}

/* ------------------------------------------------------------ who may act */

Test(admin, only_admins_may_post_everyone_the_mode_admits_may_get)
{
    char *out = NULL;

    need_root();
    h_start(&(struct h_opts){ .daemon_settings = "statusSocketMode = \"0666\"; "
                              "adminGroups = [\"" ADMIN_GID "\"];" });
    open_socket_dir();
    cr_assert_eq(run_ctl(AS_NOBODY, "pools", &out), 0, "GET as nobody: %s", out);
    cr_assert(strstr(out, "app"), "%s", out);
    free(out);
    cr_assert_eq(run_ctl(AS_NOBODY, "pause app", &out), 1, "POST as nobody: %s", out);
    cr_assert(strstr(out, "may not use admin actions") && strstr(out, "HTTP 403"), "%s", out);
    free(out);
    cr_assert_eq(h_pool_stat("app", "paused", NULL), 0, "a refused pause paused the pool");
    cr_assert_eq(run_ctl(AS_NOBODY_IN_ADMIN_GROUP, "pause app", &out), 0,
                 "a member of adminGroups (supplementary): %s", out);
    free(out);
    cr_assert_eq(h_pool_stat("app", "paused", NULL), 1);
    cr_assert_eq(run_ctl(NULL, "resume app", &out), 0, "root: %s", out);
    free(out);
    h_stop_ok();
}

Test(admin, admin_users_apply_at_reload_and_the_default_mode_keeps_others_out)
{
    char *out = NULL, *body = NULL;

    need_root();
    h_start(NULL);
    open_socket_dir();
    cr_assert_eq(run_ctl(AS_NOBODY, "pools", &out), 2, "mode 0660 admitted nobody: %s", out);
    cr_assert(strstr(out, "statusSocketMode"), "the message says why: %s", out);
    free(out);
    cr_assert_eq(chmod(h_paths()->status_sock, 0666), 0);
    cr_assert_eq(run_ctl(AS_NOBODY, "reconnect app", &out), 1, "%s", out);
    free(out);
    h_rewrite_config(&(struct h_opts){ .daemon_settings = "adminUsers = [\"nobody\"];" });
    cr_assert_eq(h_http("POST", "/reload", &body), 200, "%s", body);
    free(body);
    cr_assert_eq(run_ctl(AS_NOBODY, "reconnect app", &out), 0, "an adminUsers user: %s", out);
    free(out);
    h_stop_ok();
}

/* ------------------------------------------------------------ dbpoolctl */

Test(admin, dbpoolctl_tables_and_exit_codes)
{
    char *out = NULL;

    h_start(NULL);
    create_table();
    dbpool_conn *c = h_connect();
    h_exec(c, "INSERT INTO t VALUES (1)");
    cr_assert_eq(run_ctl(NULL, "health", &out), 0, "%s", out);
    cr_assert(strstr(out, "ok"), "%s", out);
    free(out);
    cr_assert_eq(run_ctl(NULL, "pools", &out), 0, "%s", out);
    cr_assert(strstr(out, "POOL") && strstr(out, "app ") && strstr(out, "sqlite"), "%s", out);
    free(out);
    cr_assert_eq(run_ctl(NULL, "clients", &out), 0, "%s", out);
    cr_assert(strstr(out, "BYTES_IN") && strstr(out, " idle "), "%s", out);
    free(out);
    cr_assert_eq(run_ctl(NULL, "servers", &out), 0, "%s", out);
    cr_assert(strstr(out, "writer"), "%s", out);
    free(out);
    cr_assert_eq(run_ctl(NULL, "--json pools", &out), 0, "%s", out);
    cr_assert(out[0] == '[' && strstr(out, "\"latency\""), "--json is the daemon's JSON: %s", out);
    free(out);
    cr_assert_eq(run_ctl(NULL, "config", &out), 0, "%s", out);
    cr_assert(strstr(out, "pools[app].maxOpenConns = 4"), "%s", out);
    free(out);
    cr_assert_eq(run_ctl(NULL, "status", &out), 0, "%s", out);
    cr_assert(strstr(out, "clients: 1 connected"), "%s", out);
    free(out);
    cr_assert_eq(run_ctl(NULL, "top -n 2 -i 0.1", &out), 0, "%s", out);
    cr_assert(strstr(out, "TPS") && strstr(out, "app "), "%s", out);
    free(out);
    cr_assert_eq(run_ctl(NULL, "resume nosuch", &out), 1, "%s", out);
    cr_assert(strstr(out, "no such pool"), "%s", out);
    free(out);
    cr_assert_eq(run_ctl(NULL, "frobnicate", &out), 64, "%s", out);
    free(out);
    cr_assert_eq(run_ctl(NULL, "pause", &out), 64, "a missing argument: %s", out);
    free(out);
    cr_assert_eq(run_ctl(NULL, "-s /nonexistent/status.sock health", &out), 2, "%s", out);
    cr_assert(strstr(out, "is dbpoold running?"), "%s", out);
    free(out);
    dbpool_close(c);
    h_stop_ok();
}

Test(admin, dbpoolctl_health_exits_1_when_a_pool_is_unhealthy)
{
    struct h_opts o = { .extra_pools = ", { name = \"remote\"; type = \"postgres\"; postgres = { "
                        "host = \"/nonexistent\"; name = \"db\"; username = \"u\"; "
                        "maxRetries = 0; }; }" };
    char *out = NULL;

    h_start(&o);
    cr_assert(H_AWAIT(h_health_status() == 503, 5000));
    cr_assert_eq(run_ctl(NULL, "health", &out), 1, "%s", out);
    cr_assert(strstr(out, "degraded"), "%s", out);
    free(out);
    h_stop_ok();
}

/* ------------------------------------------------------------ latency */

Test(admin, percentiles_reflect_a_known_workload)
{
    char *body = NULL;
    const int quick = 20, hold_ms = 300;

    h_start(NULL);
    create_table();
    dbpool_conn *holder = h_connect(), *waiter = h_connect(), *c = h_connect();
    uint64_t t0 = h_now_ms();
    cr_assert_eq(dbpool_begin(holder, 0), 0);
    h_exec(holder, "INSERT INTO t VALUES (1)");       /* binds the one writer */
    struct h_bg_query q = { .c = waiter, .sql = "INSERT INTO t VALUES (2)" };
    h_bg_start(&q);
    cr_assert(H_AWAIT(H_STATUS_NUM("/clients", "states", "waiting") == 1, 5000));
    h_sleep_ms(hold_ms);                              /* the workload: a transaction held 300 ms */
    cr_assert_eq(dbpool_commit(holder), 0);
    uint64_t held_ms = h_now_ms() - t0;
    cr_assert(H_AWAIT(atomic_load(&q.done), 5000));
    pthread_join(q.tid, NULL);
    cr_assert_eq(q.rc, 0);
    for (int i = 0; i < quick; i++)
        h_exec(c, "INSERT INTO t VALUES (3)");

    body = h_pool_json("app");
    double tx_p50 = H_JSON_NUM(body, "latency", "transaction", "p50_ms");
    double tx_p99 = H_JSON_NUM(body, "latency", "transaction", "p99_ms");
    double wait_p50 = H_JSON_NUM(body, "latency", "wait", "p50_ms");
    double wait_p99 = H_JSON_NUM(body, "latency", "wait", "p99_ms");
    cr_assert_geq(H_JSON_NUM(body, "latency", "transaction", "samples"), quick + 2, "%s", body);
    cr_assert_lt(tx_p50, 50, "most transactions are quick: %s", body);
    cr_assert(tx_p99 >= hold_ms && tx_p99 <= held_ms * 1.125 + 1,
              "p99 %.3f ms is the held transaction (%d..%llu ms): %s", tx_p99, hold_ms,
              (unsigned long long)held_ms, body);
    cr_assert_lt(wait_p50, 50, "most acquisitions do not wait: %s", body);
    cr_assert_geq(wait_p99, hold_ms, "the waiter waited the hold: %s", body);
    free(body);

    cr_assert_eq(h_http_get("/metrics", &body), 200);
    cr_assert(strstr(body, "# TYPE dbpoold_pool_transaction_duration_seconds histogram"), "%s", body);
    cr_assert(strstr(body, "dbpoold_pool_wait_duration_seconds_window{pool=\"app\",quantile=\"0.99\"}"),
              "%s", body);
    const char *inf = strstr(body, "dbpoold_pool_transaction_duration_seconds_bucket{pool=\"app\",le=\"+Inf\"} ");
    const char *le = strstr(body, "dbpoold_pool_transaction_duration_seconds_bucket{pool=\"app\",le=\"0.250000\"} ");
    cr_assert(inf && le, "%s", body);
    long n_inf = strtol(strchr(inf, '}') + 2, NULL, 10), n_le = strtol(strchr(le, '}') + 2, NULL, 10);
    cr_assert_lt(n_le, n_inf, "the 300 ms transaction is above the 0.25 s bucket");
    free(body);
    dbpool_close(holder);
    dbpool_close(waiter);
    dbpool_close(c);
    h_stop_ok();
}
