/*
 * test_pin.c — pinned sessions (doc/protocol.md "Pinned sessions"): PIN
 * keeps one server connection for a session across transactions, UNPIN or
 * a disconnect gives it back reset, maxPinned bounds the pins so the pool
 * keeps serving everyone else, and faults (a killed server connection, a
 * daemon stop) end a pin cleanly. Runs on every backend ($DBPOOL_TEST_BACKEND:
 * SQLite in `make check`, PostgreSQL and MariaDB from their runners); the
 * lock tests need a server backend.
 *
 * Tests await conditions (the status socket, a query) with deadlines; they
 * never sleep to synchronise.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/proto.h"
#include "harness.h"

#define P (h_profile())

TestSuite(pin, .fini = h_fini, .timeout = 90);

static void must_ok(dbpool_conn *c, int rc, const char *what)
{
    const dbpool_error *e = dbpool_last_error(c);
    cr_assert_eq(rc, 0, "%s failed: %s [%s]: %s", what, dbpool_code_name(e->code), e->sqlstate,
                 e->message);
}

static bool is(const char *backend)
{
    return strcmp(P->name, backend) == 0;
}

static const char *temp_table_sql(void)
{
    return is("mysql") ? "CREATE TEMPORARY TABLE pin_tmp (a INT)"
                       : "CREATE TEMP TABLE pin_tmp (a INTEGER)";
}

static double pinned_now(void)
{
    return h_pool_stat(H_POOL, "clients", "pinned");
}

/* The temporary table is gone from the server connection c gets inside a
 * transaction (a writer on SQLite). */
static void expect_no_temp_table(dbpool_conn *c)
{
    must_ok(c, dbpool_begin(c, 0), "BEGIN");
    int rc = dbpool_exec(c, "SELECT a FROM pin_tmp");
    h_expect_error(c, rc, DBPOOL_E_SQL, "the pinned session's temporary table after UNPIN");
    must_ok(c, dbpool_rollback(c), "ROLLBACK");
}

/* ------------------------------------------------------------- state */

Test(pin, temp_table_lives_across_transactions_and_dies_with_the_pin)
{
    h_start(&(struct h_opts){ .max_open_conns = 2 });
    dbpool_conn *a = h_connect(), *b = h_connect();

    must_ok(a, dbpool_pin(a), "PIN");
    cr_assert(dbpool_is_pinned(a));
    h_exec(a, temp_table_sql());
    must_ok(a, dbpool_begin(a, 0), "BEGIN");
    h_exec(a, "INSERT INTO pin_tmp VALUES (7)");
    must_ok(a, dbpool_commit(a), "COMMIT");
    for (int i = 0; i < 20; i++)   /* everyone else is served meanwhile */
        cr_assert_eq(h_scalar(b, "SELECT 41 + 1"), 42);
    cr_assert_eq(h_scalar(a, "SELECT a FROM pin_tmp"), 7, "a later transaction sees the table");
    cr_assert_eq(pinned_now(), 1);
    char *clients = NULL;
    cr_assert_eq(h_http_get("/clients", &clients), 200);
    cr_assert(strstr(clients, "\"pinned\": true"), "/clients shows the pin: %s", clients);
    free(clients);
    char *metrics = NULL;
    cr_assert_eq(h_http_get("/metrics", &metrics), 200);
    cr_assert(strstr(metrics, "dbpoold_pool_clients_pinned{pool=\"app\"} 1"),
              "/metrics shows the pin");
    free(metrics);

    must_ok(a, dbpool_unpin(a), "UNPIN");
    cr_assert_not(dbpool_is_pinned(a));
    cr_assert_eq(pinned_now(), 0);
    if (P->single_writer) {
        expect_no_temp_table(a);
    } else {   /* both server connections at once: each must have lost it */
        must_ok(a, dbpool_begin(a, 0), "BEGIN a");
        cr_assert_eq(h_scalar(a, "SELECT 1"), 1);
        must_ok(b, dbpool_begin(b, 0), "BEGIN b");
        cr_assert_eq(h_scalar(b, "SELECT 1"), 1);
        h_expect_error(a, dbpool_exec(a, "SELECT a FROM pin_tmp"), DBPOOL_E_SQL, "a");
        h_expect_error(b, dbpool_exec(b, "SELECT a FROM pin_tmp"), DBPOOL_E_SQL, "b");
        must_ok(a, dbpool_rollback(a), "ROLLBACK a");
        must_ok(b, dbpool_rollback(b), "ROLLBACK b");
    }
    dbpool_close(a);
    dbpool_close(b);
    h_stop_ok();
}

/* PIN / UNPIN are no-ops when the session already is as asked; neither may
 * cut through a transaction. */
Test(pin, transaction_rules_and_idempotence)
{
    h_start(NULL);
    dbpool_conn *a = h_connect();

    must_ok(a, dbpool_unpin(a), "UNPIN of an unpinned session");
    must_ok(a, dbpool_begin(a, 0), "BEGIN");
    cr_assert_eq(h_scalar(a, "SELECT 1"), 1);
    h_expect_error(a, dbpool_pin(a), DBPOOL_E_TX_STATE, "PIN inside a transaction");
    cr_assert_str_eq(dbpool_last_error(a)->sqlstate, "25000");
    must_ok(a, dbpool_commit(a), "COMMIT");
    must_ok(a, dbpool_pin(a), "PIN");
    must_ok(a, dbpool_pin(a), "PIN again");
    cr_assert_eq(pinned_now(), 1, "a second PIN pins nothing more");
    must_ok(a, dbpool_begin(a, 0), "BEGIN pinned");
    cr_assert_eq(h_scalar(a, "SELECT 2"), 2);
    h_expect_error(a, dbpool_unpin(a), DBPOOL_E_TX_STATE, "UNPIN inside a transaction");
    cr_assert(strstr(dbpool_last_error(a)->message, "COMMIT or ROLLBACK first"), "%s",
              dbpool_last_error(a)->message);
    cr_assert_eq(pinned_now(), 1, "still pinned");
    must_ok(a, dbpool_commit(a), "COMMIT pinned");
    must_ok(a, dbpool_unpin(a), "UNPIN");
    must_ok(a, dbpool_unpin(a), "UNPIN again");
    cr_assert_eq(pinned_now(), 0);
    dbpool_close(a);
    h_stop_ok();
}

/* ------------------------------------------------------------- limits */

/* maxPinned (default: a quarter of maxOpenConns, at least 1) refuses the
 * pin above it with a clear error; the refused session and everyone else
 * go on being served. */
Test(pin, max_pinned_refuses_more_and_everyone_is_still_served)
{
    h_start(&(struct h_opts){ .max_open_conns = 4 });
    dbpool_conn *a = h_connect(), *b = h_connect(), *c = h_connect();

    cr_assert_eq(h_pool_stat(H_POOL, "clients", "max_pinned"), 1, "4 connections -> 1 pin");
    must_ok(a, dbpool_pin(a), "PIN a");
    h_expect_error(b, dbpool_pin(b), DBPOOL_E_LIMIT, "a second PIN above maxPinned");
    cr_assert_str_eq(dbpool_last_error(b)->sqlstate, "53400");
    cr_assert(strstr(dbpool_last_error(b)->message, "maxPinned"), "%s",
              dbpool_last_error(b)->message);
    cr_assert_not(dbpool_is_pinned(b));
    cr_assert_eq(h_scalar(b, "SELECT 3"), 3, "the refused session goes on");
    cr_assert_eq(h_scalar(c, "SELECT 4"), 4, "others are served");
    cr_assert_eq(h_scalar(a, "SELECT 5"), 5, "the pinned one too");
    must_ok(a, dbpool_unpin(a), "UNPIN a");
    must_ok(b, dbpool_pin(b), "PIN b once a unpinned");
    dbpool_close(a);
    dbpool_close(b);
    dbpool_close(c);
    h_stop_ok();
}

/* Every writer of the pool held by a session inside a transaction (SQLite:
 * its one writer, by a write). Returns how many sessions hold[] got. */
static int hold_every_writer(dbpool_conn **hold, int max_open)
{
    int n = P->single_writer ? 1 : max_open;

    for (int i = 0; i < n; i++) {
        hold[i] = h_connect();
        must_ok(hold[i], dbpool_begin(hold[i], 0), "BEGIN holder");
        h_exec(hold[i], P->single_writer ? "CREATE TABLE IF NOT EXISTS pin_hold (a INTEGER)"
                                         : "SELECT 1");
    }
    return n;
}

static void release_holders(dbpool_conn **hold, int n)
{
    for (int i = 0; i < n; i++) {
        must_ok(hold[i], dbpool_rollback(hold[i]), "ROLLBACK holder");
        dbpool_close(hold[i]);
    }
}

/* A raw session that sends PIN (not read: the caller reads its answer). */
static int send_raw_pin(void)
{
    struct pbuf b;
    int fd = h_raw_connect();

    h_raw_handshake(fd);
    pbuf_init(&b);
    proto_put_empty(&b, PT_PIN);
    cr_assert(h_raw_send(fd, b.data, b.len), "send PIN");
    pbuf_free(&b);
    return fd;
}

/* A PIN that waits for a server holds one of the maxPinned places: a PIN
 * beyond them is refused at once, not after waiting acquireTimeout for a
 * server it could not pin (and not with POOL_TIMEOUT). */
Test(pin, a_waiting_pin_counts_against_max_pinned)
{
    h_start(&(struct h_opts){ .max_open_conns = 3,
                               .pool_settings = "maxPinned = 1; acquireTimeout = \"4s\";" });
    dbpool_conn *hold[3], *b = h_connect();
    int nhold = hold_every_writer(hold, 3);
    int a = send_raw_pin();

    cr_assert(H_AWAIT(h_pool_stat(H_POOL, "clients", "waiting") == 1, 5000), "PIN waits");
    uint64_t t0 = h_now_ms();
    h_expect_error(b, dbpool_pin(b), DBPOOL_E_LIMIT, "a PIN while another one waits");
    cr_assert_lt(h_now_ms() - t0, 2000, "refused at once (not after acquireTimeout)");
    cr_assert_not(dbpool_is_pinned(b));
    release_holders(hold, nhold);
    struct h_frame f;
    cr_assert_eq(h_raw_read_until_terminal(a, 5000, &f), PT_READY, "the waiting PIN is served");
    h_frame_free(&f);
    cr_assert_eq(pinned_now(), 1);
    cr_assert_eq(h_scalar(b, "SELECT 3"), 3, "the refused session goes on");
    close(a);
    cr_assert(H_AWAIT(pinned_now() == 0, 5000), "the pin ends with its session");
    dbpool_close(b);
    h_stop_ok();
}

/* Thousands of PINs at once for one place, all while every server is
 * busy: exactly one pins, every other one gets LIMIT, the daemon stays up
 * and nothing stays counted. (Before waiting PINs held places, all of them
 * waited, and each one handed a server and refused gave it to the next
 * from inside the hand-over: one stack level per waiting PIN.) */
Test(pin, thousands_racing_for_one_pin)
{
    enum { MOST = 3000 };
    static int fds[MOST];
    struct rlimit rl;

    /* as many as this process's descriptors allow (3000 where they do) */
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    const int N = rl.rlim_cur > MOST + 100 ? MOST : (int)rl.rlim_cur - 100;
    if (N < 200)
        cr_skip_test("RLIMIT_NOFILE %llu is too low for a crowd", (unsigned long long)rl.rlim_cur);
    h_start(&(struct h_opts){ .max_open_conns = 3, .daemon_settings = "maxClientsPerUser = 0;",
                               .pool_settings = "maxPinned = 1; acquireTimeout = \"20s\";" });
    dbpool_conn *hold[3];
    int nhold = hold_every_writer(hold, 3), ready = 0, limit = 0;

    for (int i = 0; i < N; i++)
        fds[i] = send_raw_pin();
    release_holders(hold, nhold);
    for (int i = 0; i < N; i++) {
        struct h_frame f;
        struct proto_error e;
        int rc = h_raw_read_frame(fds[i], 20000, &f);
        cr_assert_eq(rc, 1, "PIN %d got no answer (daemon alive: %d)", i, h_running());
        if (f.type == PT_READY)
            ready++;
        else if (f.type == PT_ERROR && proto_get_error(f.payload, f.len, &e) &&
                 e.code == DBPOOL_E_LIMIT)
            limit++;
        h_frame_free(&f);
    }
    cr_assert_eq(ready, 1, "exactly one PIN of %d pins (%d did)", N, ready);
    cr_assert_eq(limit, N - 1, "every other PIN gets LIMIT (%d did)", limit);
    cr_assert_eq(pinned_now(), 1);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    cr_assert(H_AWAIT(pinned_now() == 0 && h_pool_stat(H_POOL, "clients", "connected") == 0,
                      10000), "every session and pin is gone");
    dbpool_conn *c = h_connect();
    cr_assert_eq(h_scalar(c, "SELECT 4"), 4);
    dbpool_close(c);
    h_stop_ok();
}

/* Server pools: with maxPinned one below maxOpenConns, every pin there is
 * still leaves a connection for the unpinned sessions. */
Test(pin, pins_never_exhaust_a_server_pool)
{
    if (P->single_writer)
        cr_skip_test("an embedded pool pins its one writer (maxPinned 0 or 1)");
    h_start(&(struct h_opts){ .max_open_conns = 3, .pool_settings = "maxPinned = 2;" });
    dbpool_conn *pins[3], *other = h_connect();

    for (int i = 0; i < 3; i++)
        pins[i] = h_connect();
    must_ok(pins[0], dbpool_pin(pins[0]), "PIN 1");
    must_ok(pins[1], dbpool_pin(pins[1]), "PIN 2");
    h_expect_error(pins[2], dbpool_pin(pins[2]), DBPOOL_E_LIMIT, "PIN 3 of maxPinned 2");
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(h_scalar(other, "SELECT 6"), 6);
        cr_assert_eq(h_scalar(pins[2], "SELECT 7"), 7);
    }
    cr_assert_eq(pinned_now(), 2);
    for (int i = 0; i < 3; i++)
        dbpool_close(pins[i]);
    cr_assert(H_AWAIT(pinned_now() == 0, 5000), "closed sessions give their pins back");
    dbpool_close(other);
    h_stop_ok();
}

/* ------------------------------------------------------------- hostile clients */

static void raw_send(int fd, struct pbuf *b)
{
    cr_assert(!b->oom);
    cr_assert(h_raw_send(fd, b->data, b->len), "send");
    pbuf_free(b);
}

/* One frame of type with a one-byte payload (PIN and UNPIN have none). */
static void raw_send_with_payload(int fd, uint8_t type)
{
    struct pbuf b;

    pbuf_init(&b);
    size_t f = proto_frame_begin(&b, type);
    pbuf_put_u8(&b, 0);
    proto_frame_end(&b, f);
    raw_send(fd, &b);
}

static void raw_expect_ready(int fd, const char *what)
{
    struct h_frame f;

    cr_assert_eq(h_raw_read_until_terminal(fd, 5000, &f), PT_READY, "%s", what);
    h_frame_free(&f);
}

/* A PIN or UNPIN with a payload is a protocol violation: ERROR PROTOCOL,
 * the session closes; a pinned session closed so gives its pin back. */
Test(pin, pin_and_unpin_with_a_payload_are_protocol_errors)
{
    h_start(NULL);
    int fd = h_raw_connect();

    h_raw_handshake(fd);
    raw_send_with_payload(fd, PT_PIN);
    h_raw_expect_error_then_eof(fd, DBPOOL_E_PROTOCOL, "PIN with a payload");
    cr_assert_eq(pinned_now(), 0);

    struct pbuf b;
    fd = h_raw_connect();
    h_raw_handshake(fd);
    pbuf_init(&b);
    proto_put_empty(&b, PT_PIN);
    raw_send(fd, &b);
    raw_expect_ready(fd, "PIN");
    cr_assert_eq(pinned_now(), 1);
    raw_send_with_payload(fd, PT_UNPIN);
    h_raw_expect_error_then_eof(fd, DBPOOL_E_PROTOCOL, "UNPIN with a payload");
    cr_assert(H_AWAIT(pinned_now() == 0, 5000), "the closed session's pin is given back");
    dbpool_conn *c = h_connect();
    cr_assert_eq(h_scalar(c, "SELECT 1"), 1);
    dbpool_close(c);
    h_stop_ok();
}

/* PIN, statements, UNPIN and PING sent in one write: each is answered in
 * order, the statements on the pinned connection, and nothing stays
 * pinned. */
Test(pin, pipelined_pin_query_unpin_are_answered_in_order)
{
    h_start(NULL);
    int fd = h_raw_connect();
    struct pbuf b;

    h_raw_handshake(fd);
    pbuf_init(&b);
    proto_put_empty(&b, PT_PIN);
    for (int i = 0; i < 3; i++)
        proto_put_query(&b, "SELECT 1", 8, NULL, 0);
    proto_put_empty(&b, PT_UNPIN);
    proto_put_empty(&b, PT_PIN);
    proto_put_empty(&b, PT_UNPIN);
    proto_put_empty(&b, PT_PING);
    raw_send(fd, &b);
    for (int i = 0; i < 8; i++)
        raw_expect_ready(fd, "a pipelined request");
    cr_assert_eq(pinned_now(), 0);
    cr_assert(H_AWAIT(h_pool_stat(H_POOL, "servers", "busy") == 0, 5000), "a server stays busy");
    close(fd);
    h_stop_ok();
}

/* CANCEL ends a PIN that waits for a server: ERROR CANCELED, not pinned,
 * not waiting; the session pins later. */
Test(pin, cancel_ends_a_waiting_pin)
{
    h_start(&(struct h_opts){ .max_open_conns = 2,
                               .pool_settings = "acquireTimeout = \"10s\";" });
    dbpool_conn *hold[2];
    int nhold = hold_every_writer(hold, 2);
    int fd = send_raw_pin();
    struct pbuf b;
    struct h_frame f;
    struct proto_error e;

    cr_assert(H_AWAIT(h_pool_stat(H_POOL, "clients", "waiting") == 1, 5000), "PIN waits");
    pbuf_init(&b);
    proto_put_empty(&b, PT_CANCEL);
    raw_send(fd, &b);
    cr_assert_eq(h_raw_read_until_terminal(fd, 3000, &f), PT_ERROR, "CANCEL of a waiting PIN");
    cr_assert(proto_get_error(f.payload, f.len, &e));
    cr_assert_eq(e.code, DBPOOL_E_CANCELED, "%s", dbpool_code_name(e.code));
    h_frame_free(&f);
    cr_assert_eq(h_pool_stat(H_POOL, "clients", "waiting"), 0);
    cr_assert_eq(pinned_now(), 0);
    release_holders(hold, nhold);
    pbuf_init(&b);
    proto_put_empty(&b, PT_PIN);
    raw_send(fd, &b);
    raw_expect_ready(fd, "PIN after the cancelled one");
    cr_assert_eq(pinned_now(), 1);
    close(fd);
    cr_assert(H_AWAIT(pinned_now() == 0, 5000));
    h_stop_ok();
}

/* The id of the pinned session in GET /clients, or 0. */
static uint64_t pinned_client_id(void)
{
    char *body = NULL;
    uint64_t id = 0;

    cr_assert_eq(h_http_get("/clients", &body), 200, "%s", body);
    const char *at = strstr(body, "\"pinned\": true");
    if (at) {
        while (at > body && strncmp(at, "{\"id\": ", 7) != 0)
            at--;
        id = strtoull(at + 7, NULL, 10);
    }
    free(body);
    return id;
}

/* POST /clients/ID/kill of a pinned session: it gets SHUTDOWN, its pin
 * ends and its connection is reset (the writer is free again). */
Test(pin, admin_kill_of_a_pinned_session_ends_the_pin)
{
    h_start(&(struct h_opts){ .max_open_conns = 2,
                               .pool_settings = "acquireTimeout = \"2s\";" });
    dbpool_conn *a = h_connect(), *b = h_connect();
    char path[64], *body = NULL;

    h_create_table(b, "pin_k", "a INTEGER");
    must_ok(a, dbpool_pin(a), "PIN");
    h_exec(a, "INSERT INTO pin_k VALUES (1)");
    uint64_t id = pinned_client_id();
    cr_assert_gt(id, 0, "/clients shows no pinned session");
    snprintf(path, sizeof(path), "/clients/%llu/kill", (unsigned long long)id);
    cr_assert_eq(h_http("POST", path, &body), 200, "%s", body);
    free(body);
    h_expect_error(a, dbpool_exec(a, "SELECT 1"), DBPOOL_E_SHUTDOWN, "the killed session");
    cr_assert(H_AWAIT(pinned_now() == 0, 5000), "the kill ends the pin");
    h_exec(b, "INSERT INTO pin_k VALUES (2)");   /* SQLite: the writer is free */
    cr_assert_eq(h_scalar(b, "SELECT count(*) FROM pin_k"), 2);
    must_ok(b, dbpool_pin(b), "PIN by another session");
    dbpool_close(a);
    dbpool_close(b);
    h_stop_ok();
}

/* A reload that lowers maxPinned below the pins there are keeps them (a
 * pin is never taken from a session) and refuses new ones until the pins
 * are fewer than the new maxPinned. */
Test(pin, reload_lowering_max_pinned_keeps_the_pins_and_refuses_new_ones)
{
    if (P->single_writer)
        cr_skip_test("an embedded pool has one pin at most");
    struct h_opts o = { .max_open_conns = 4, .pool_settings = "maxPinned = 2;" };
    h_start(&o);
    dbpool_conn *a = h_connect(), *b = h_connect(), *c = h_connect();
    char *body = NULL;

    must_ok(a, dbpool_pin(a), "PIN a");
    must_ok(b, dbpool_pin(b), "PIN b");
    o.pool_settings = "maxPinned = 1;";
    h_rewrite_config(&o);
    cr_assert_eq(h_http("POST", "/reload", &body), 200, "%s", body);
    free(body);
    cr_assert_eq(h_pool_stat(H_POOL, "clients", "max_pinned"), 1);
    cr_assert_eq(pinned_now(), 2, "the pins are kept");
    cr_assert(dbpool_is_pinned(a) && dbpool_is_pinned(b));
    cr_assert_eq(h_scalar(a, "SELECT 1"), 1);
    h_expect_error(c, dbpool_pin(c), DBPOOL_E_LIMIT, "PIN above the lowered maxPinned");
    must_ok(a, dbpool_unpin(a), "UNPIN a");
    h_expect_error(c, dbpool_pin(c), DBPOOL_E_LIMIT, "PIN at the lowered maxPinned");
    must_ok(b, dbpool_unpin(b), "UNPIN b");
    must_ok(c, dbpool_pin(c), "PIN below it");
    dbpool_close(a);
    dbpool_close(b);
    dbpool_close(c);
    h_stop_ok();
}

/* A reload shrinks maxOpenConns (and maxPinned) below the pins there
 * are: the pins stay, and the pool still opens connections for everyone
 * else (maxOpenConns - maxPinned of them); the pinned ones above the new
 * size are closed as they unpin. */
Test(pin, a_pool_shrunk_below_its_pins_still_serves_the_others)
{
    if (P->single_writer)
        cr_skip_test("an embedded pool has one pin at most");
    struct h_opts o = { .max_open_conns = 4,
                        .pool_settings = "maxPinned = 3; acquireTimeout = \"1s\";" };
    h_start(&o);
    dbpool_conn *p[3], *d = h_connect();
    char *body = NULL;

    for (int i = 0; i < 3; i++) {
        p[i] = h_connect();
        must_ok(p[i], dbpool_pin(p[i]), "PIN");
    }
    o.max_open_conns = 2;
    o.pool_settings = "maxPinned = 1; acquireTimeout = \"1s\";";
    h_rewrite_config(&o);
    cr_assert_eq(h_http("POST", "/reload", &body), 200, "%s", body);
    free(body);
    must_ok(d, dbpool_exec(d, "SELECT 1"), "an unpinned session after the shrink");
    for (int i = 0; i < 3; i++)
        cr_assert_eq(h_scalar(p[i], "SELECT 2"), 2, "the pinned sessions go on");
    must_ok(p[0], dbpool_unpin(p[0]), "UNPIN");
    must_ok(p[1], dbpool_unpin(p[1]), "UNPIN");
    cr_assert(H_AWAIT(h_pool_stat(H_POOL, "servers", "open") <= 2, 5000),
              "the connections above the new size are closed as they unpin (open: %g)",
              h_pool_stat(H_POOL, "servers", "open"));
    must_ok(d, dbpool_exec(d, "SELECT 3"), "served within the new size");
    for (int i = 0; i < 3; i++)
        dbpool_close(p[i]);
    dbpool_close(d);
    h_stop_ok();
}

/* POST /pools/NAME/pause holds the sessions without a server; a pinned
 * session holds its own and goes on (status.md, pause). */
Test(pin, a_pause_holds_others_but_not_a_pinned_session)
{
    h_start(&(struct h_opts){ .max_open_conns = 2,
                               .pool_settings = "acquireTimeout = \"1s\";" });
    dbpool_conn *a = h_connect(), *b = h_connect();
    char *body = NULL;

    must_ok(a, dbpool_pin(a), "PIN");
    cr_assert_eq(h_http("POST", "/pools/app/pause", &body), 200, "%s", body);
    free(body);
    h_expect_error(b, dbpool_exec(b, "SELECT 1"), DBPOOL_E_POOL_TIMEOUT, "paused, unpinned");
    cr_assert_eq(h_scalar(a, "SELECT 6"), 6, "the pinned session goes on");
    must_ok(a, dbpool_begin(a, 0), "BEGIN pinned");
    cr_assert_eq(h_scalar(a, "SELECT 7"), 7);
    must_ok(a, dbpool_commit(a), "COMMIT pinned");
    cr_assert_eq(h_http("POST", "/pools/app/resume", &body), 200, "%s", body);
    free(body);
    cr_assert_eq(h_scalar(b, "SELECT 8"), 8, "served after resume");
    dbpool_close(a);
    dbpool_close(b);
    h_stop_ok();
}

/* `, { name = "g1"; type = "sqlite"; ... }, { name = "g2"; ... }` (a
 * SQLite pool of its own whatever the backend under test: pins end the
 * same way on all). */
static const char *two_sqlite_pools(void)
{
    static char buf[1200];

    snprintf(buf, sizeof(buf), ", { name = \"g1\"; type = \"sqlite\"; sqlite = { filePath = "
             "\"%s/g1.db\"; }; }, { name = \"g2\"; type = \"sqlite\"; sqlite = { filePath = "
             "\"%s/g2.db\"; }; }", h_paths()->dir, h_paths()->dir);
    return buf;
}

static dbpool_conn *connect_to(const char *pool)
{
    dbpool_error e;
    dbpool_conn *c = h_try_connect(pool, &e);

    cr_assert_not_null(c, "connect to %s: %s", pool, e.message);
    return c;
}

/* A reload removes the pools of two pinned sessions: the idle one is
 * closed at once (its next request: UNKNOWN_POOL), the one inside a
 * transaction commits it first; both pins end and the pools drain. */
Test(pin, a_removed_pool_ends_its_pins_after_their_transactions)
{
    struct h_opts o = { 0 };
    char *body = NULL;

    h_start(&o);
    o.extra_pools = two_sqlite_pools();
    h_rewrite_config(&o);
    cr_assert_eq(h_http("POST", "/reload", &body), 200, "%s", body);
    free(body);
    dbpool_conn *idle = connect_to("g1"), *tx = connect_to("g2");
    must_ok(idle, dbpool_pin(idle), "PIN g1");
    h_exec(tx, "CREATE TABLE t (v INTEGER)");
    must_ok(tx, dbpool_pin(tx), "PIN g2");
    must_ok(tx, dbpool_begin(tx, 0), "BEGIN g2");
    h_exec(tx, "INSERT INTO t VALUES (1)");
    o.extra_pools = NULL;
    h_rewrite_config(&o);
    cr_assert_eq(h_http("POST", "/reload", &body), 200, "%s", body);
    free(body);
    h_expect_error(idle, dbpool_exec(idle, "SELECT 1"), DBPOOL_E_UNKNOWN_POOL,
                   "the idle pinned session of a removed pool");
    h_exec(tx, "INSERT INTO t VALUES (2)");
    must_ok(tx, dbpool_commit(tx), "COMMIT in the removed pool");
    h_expect_error(tx, dbpool_exec(tx, "SELECT 1"), DBPOOL_E_UNKNOWN_POOL,
                   "the pinned session after its transaction");
    cr_assert(H_AWAIT(H_STATUS_NUM("/stats", "pools_draining") == 0, 10000),
              "the removed pools did not drain (a pin left?)");
    o.extra_pools = two_sqlite_pools();
    h_rewrite_config(&o);
    cr_assert_eq(h_http("POST", "/reload", &body), 200, "%s", body);
    free(body);
    dbpool_conn *back = connect_to("g2");
    cr_assert_eq(h_scalar(back, "SELECT count(*) FROM t"), 2, "the committed rows");
    must_ok(back, dbpool_pin(back), "PIN in the pool added back");
    dbpool_close(back);
    dbpool_close(idle);
    dbpool_close(tx);
    h_stop_ok();
}

/* SIGTERM while a pinned session sits in a transaction and does nothing:
 * shutdownTimeout cuts it (ERROR SHUTDOWN), its transaction is rolled
 * back, and dbpoold exits cleanly. */
Test(pin, shutdown_timeout_cuts_a_pinned_transaction)
{
    h_start(&(struct h_opts){ .shutdown_timeout = "1s" });
    dbpool_conn *a = h_connect(), *b = h_connect();

    h_create_table(b, "pin_cut", "a INTEGER");
    must_ok(a, dbpool_pin(a), "PIN");
    must_ok(a, dbpool_begin(a, 0), "BEGIN");
    h_exec(a, "INSERT INTO pin_cut VALUES (1)");
    uint64_t t0 = h_now_ms();
    h_signal(SIGTERM);
    int st = h_wait_exit(6000);
    cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "dbpoold exits cleanly");
    cr_assert_lt(h_now_ms() - t0, 4000, "within shutdownTimeout (1 s) and the flush");
    h_expect_error(a, dbpool_exec(a, "INSERT INTO pin_cut VALUES (2)"), DBPOOL_E_SHUTDOWN,
                   "the cut session");
    h_restart();
    dbpool_conn *c = h_connect();
    cr_assert_eq(h_scalar(c, "SELECT count(*) FROM pin_cut"), 0, "the cut transaction stayed");
    dbpool_close(a);
    dbpool_close(b);
    dbpool_close(c);
    h_stop_ok();
}

/* ------------------------------------------------------------- locks */

static const char *lock_sql(void)
{
    return is("mysql") ? "SELECT GET_LOCK('dbpool_pin_test', 5)" : "SELECT pg_advisory_lock(4242)";
}

/* 1 while some session holds the test's lock, 0 when it is free (asks
 * without taking it). */
static int64_t lock_held(dbpool_conn *c)
{
    return is("mysql") ? 1 - h_scalar(c, "SELECT IS_FREE_LOCK('dbpool_pin_test')")
                       : h_scalar(c, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                     "AND objid = 4242 AND granted");
}

static void lock_across_transactions(dbpool_conn *a, dbpool_conn *b)
{
    must_ok(a, dbpool_pin(a), "PIN");
    must_ok(a, dbpool_begin(a, 0), "BEGIN");
    dbpool_result *r = h_query(a, lock_sql(), NULL, 0);
    dbpool_result_free(r);
    must_ok(a, dbpool_commit(a), "COMMIT");
    cr_assert_eq(lock_held(b), 1, "the session lock outlives the transaction");
    must_ok(a, dbpool_begin(a, 0), "BEGIN 2");
    cr_assert_eq(h_scalar(a, "SELECT 1"), 1);
    must_ok(a, dbpool_commit(a), "COMMIT 2");
    cr_assert_eq(lock_held(b), 1, "still held after another transaction of the pinned session");
}

Test(pin, session_lock_held_across_transactions_released_by_unpin)
{
    if (P->single_writer)
        cr_skip_test("advisory locks need a server backend");
    h_start(NULL);
    dbpool_conn *a = h_connect(), *b = h_connect();

    lock_across_transactions(a, b);
    must_ok(a, dbpool_unpin(a), "UNPIN");
    cr_assert(H_AWAIT(lock_held(b) == 0, 5000), "UNPIN's reset releases the lock");
    dbpool_close(a);
    dbpool_close(b);
    h_stop_ok();
}

Test(pin, session_lock_released_when_the_client_disconnects)
{
    if (P->single_writer)
        cr_skip_test("advisory locks need a server backend");
    h_start(NULL);
    dbpool_conn *a = h_connect(), *b = h_connect();

    lock_across_transactions(a, b);
    dbpool_close(a);
    cr_assert(H_AWAIT(lock_held(b) == 0, 5000), "the disconnect's reset releases the lock");
    cr_assert(H_AWAIT(pinned_now() == 0, 5000));
    dbpool_close(b);
    h_stop_ok();
}

/* On SQLite the pin holds the pool's writer: the database's write lock. */
Test(pin, sqlite_pin_holds_the_writer_until_unpinned)
{
    if (!P->single_writer)
        cr_skip_test("the writer lock is the embedded pool's");
    h_start(&(struct h_opts){ .max_open_conns = 2,
                               .pool_settings = "acquireTimeout = \"300ms\";" });
    dbpool_conn *a = h_connect(), *b = h_connect();

    h_create_table(a, "pin_w", "a INTEGER");
    must_ok(a, dbpool_pin(a), "PIN");
    h_expect_error(b, dbpool_exec(b, "INSERT INTO pin_w VALUES (1)"), DBPOOL_E_POOL_TIMEOUT,
                   "a write while the writer is pinned");
    cr_assert_eq(h_scalar(b, "SELECT count(*) FROM pin_w"), 0, "reads go on, on a reader");
    h_exec(a, "INSERT INTO pin_w VALUES (2)");
    must_ok(a, dbpool_unpin(a), "UNPIN");
    h_exec(b, "INSERT INTO pin_w VALUES (3)");
    cr_assert_eq(h_scalar(b, "SELECT count(*) FROM pin_w"), 2);
    dbpool_close(a);
    dbpool_close(b);
    h_stop_ok();
}

/* ------------------------------------------------------------- faults */

/* The pinned server connection is killed: the next request fails with
 * CONN_LOST saying the pin is gone, the session goes on unpinned. */
Test(pin, killed_server_connection_ends_the_pin_and_says_so)
{
    if (!P->backend_pid_sql)
        cr_skip_test("no way to kill a server connection of this backend");
    h_start(NULL);
    dbpool_conn *a = h_connect(), *b = h_connect();

    must_ok(a, dbpool_pin(a), "PIN");
    int64_t pid = h_scalar(a, P->backend_pid_sql);
    dbpool_value v = dbpool_int(pid);
    dbpool_result *r = NULL;
    int rc = dbpool_query(b, h_sql(P->kill_backend_sql), &v, 1, &r);
    dbpool_result_free(r);
    (void)rc;   /* MariaDB's KILL answers OK; PostgreSQL returns true */
    uint64_t t0 = h_now_ms();
    rc = dbpool_exec(a, "SELECT 1");
    h_expect_error(a, rc, DBPOOL_E_CONN_LOST, "a statement on the killed pinned connection");
    cr_assert(strstr(dbpool_last_error(a)->message, "no longer pinned"), "%s",
              dbpool_last_error(a)->message);
    cr_assert_lt(h_now_ms() - t0, 10000, "answered in bounded time");
    cr_assert_not(dbpool_is_pinned(a));
    cr_assert_eq(pinned_now(), 0);
    cr_assert_eq(h_scalar(a, "SELECT 8"), 8, "the session goes on, unpinned");
    cr_assert_eq(h_scalar(b, "SELECT 9"), 9);
    must_ok(a, dbpool_pin(a), "PIN again");
    cr_assert_eq(pinned_now(), 1);
    dbpool_close(a);
    dbpool_close(b);
    h_stop_ok();
}

/* A pinned session idle outside a transaction does not hold up a stop. */
Test(pin, daemon_stop_closes_an_idle_pinned_session_at_once)
{
    h_start(NULL);
    dbpool_conn *a = h_connect();

    must_ok(a, dbpool_pin(a), "PIN");
    cr_assert_eq(h_scalar(a, "SELECT 1"), 1);
    uint64_t t0 = h_now_ms();
    int st = h_stop_wait(10000);
    cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "dbpoold exits cleanly");
    cr_assert_lt(h_now_ms() - t0, 3000, "not held up until shutdownTimeout (5 s)");
    cr_assert_neq(dbpool_exec(a, "SELECT 1"), 0, "the session is closed");
    dbpool_close(a);
}

/* A PIN waiting for a server can be cancelled, and gives up after
 * acquireTimeout; nothing stays pinned. */
Test(pin, a_waiting_pin_times_out_or_is_cancelled)
{
    h_start(&(struct h_opts){ .max_open_conns = 2,
                               .pool_settings = "acquireTimeout = \"400ms\";" });
    dbpool_conn *a = h_connect(), *b = h_connect(), *c = h_connect();

    /* Hold every writer the pool has (SQLite: its one writer). */
    must_ok(a, dbpool_begin(a, 0), "BEGIN a");
    h_exec(a, P->single_writer ? "CREATE TABLE IF NOT EXISTS pin_hold (a INTEGER)" : "SELECT 1");
    if (!P->single_writer) {
        must_ok(b, dbpool_begin(b, 0), "BEGIN b");
        h_exec(b, "SELECT 1");
    }
    h_expect_error(c, dbpool_pin(c), DBPOOL_E_POOL_TIMEOUT, "PIN with no free server");
    cr_assert_not(dbpool_is_pinned(c));
    cr_assert_eq(pinned_now(), 0);
    must_ok(a, dbpool_rollback(a), "ROLLBACK a");
    if (!P->single_writer)
        must_ok(b, dbpool_rollback(b), "ROLLBACK b");
    must_ok(c, dbpool_pin(c), "PIN once a server is free");
    dbpool_close(a);
    dbpool_close(b);
    dbpool_close(c);
    h_stop_ok();
}
