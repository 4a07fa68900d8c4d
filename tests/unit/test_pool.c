/*
 * test_pool.c — unit tests of the pool (src/daemon/pool.c) on the real
 * libevent loop with the in-memory driver of fake_driver.c: acquire and
 * release, the FIFO wait queue and roles, acquireTimeout, maxOpenConns and
 * maxIdleConns, recycling by connMaxLifetime / connMaxIdleTime, broken and
 * lost connections replaced, the down pool (fail fast, probe, recovery),
 * the reset after a client left a transaction, and timers libevent cannot
 * arm.
 *
 * The pool.c linked here is built with tests/unit/event_fault.h forced in,
 * so that fault_event_add() below can make its next event_add() calls fail
 * (fail_adds) the way libevent does when out of memory. Waits run the loop
 * until a condition holds, with a deadline (AWAIT); nothing sleeps.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "daemon/configuration.h"
#include "daemon/log.h"
#include "daemon/pool.h"
#include "fake_driver.h"

static struct event_base *base;
static struct event *tick;          /* bounds each loop pass, so AWAIT re-checks */
static struct pool_config cfg;
static struct pool *P;
static int fail_adds;               /* pool.c's next event_add() calls that fail */
static int failed_adds;             /* how many did */
static int answers;                 /* waiters answered so far (struct want.order) */

int fault_event_add(struct event *ev, const struct timeval *tv);   /* event_fault.h */

int fault_event_add(struct event *ev, const struct timeval *tv)
{
    if (fail_adds > 0) {
        fail_adds--;
        failed_adds++;
        return -1;
    }
    return (event_add)(ev, tv);   /* the real one (the macro is not in this file) */
}

/* ------------------------------------------------------------- the loop */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
}

static void loop_pass(void)
{
    cr_assert_geq(event_base_loop(base, EVLOOP_ONCE), 0);
}

/* Run the loop until cond holds or ms milliseconds pass; the value of cond. */
#define AWAIT(cond, ms) ({                                              \
    uint64_t until_ = now_us() + (uint64_t)(ms) * 1000u;                \
    while (!(cond) && now_us() < until_)                                \
        loop_pass();                                                    \
    (cond);                                                             \
})

/* --------------------------------------------------------------- fixture */

static void setup(void)
{
    struct timeval tv = { 0, 5000 };

    log_set_level(LOG_ERROR);
    base = event_base_new();
    cr_assert_not_null(base);
    tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    cr_assert_not_null(tick);
    cr_assert_eq((event_add)(tick, &tv), 0);
    fake_init();
    fail_adds = failed_adds = 0;
    answers = 0;
    memset(&cfg, 0, sizeof(cfg));
    cfg.name = "fake";
    cfg.max_open_conns = 2;
    cfg.max_idle_conns = 2;
    cfg.timeout_ms = 1000;
    cfg.acquire_timeout_ms = 2000;
    cfg.max_retries = 3;
    cfg.retry_delay_ms = 20;
    cfg.retry_max_delay_ms = 40;
    P = NULL;
}

static void teardown(void)
{
    pool_free(P);
    event_free(tick);
    event_base_free(base);
}

TestSuite(pool, .init = setup, .fini = teardown, .timeout = 30);

static struct pool_stats stats(void)
{
    struct pool_stats s;

    pool_get_stats(P, &s);
    return s;
}

/* Create the pool and start it; with want_idle, wait for its first writer. */
static void start_pool(bool want_idle)
{
    char err[300];

    P = pool_new(&cfg, &fake_driver, base);
    cr_assert_not_null(P);
    cr_assert_eq(pool_start(P, err, sizeof(err)), 0, "%s", err);
    if (want_idle)
        cr_assert(AWAIT(stats().servers_idle == 1, 2000), "the first connection never opened");
}

/* Free the pool: every connection must be closed, none leaked. */
static void stop_pool(void)
{
    pool_free(P);
    P = NULL;
    cr_assert_eq(fake.alive, 0, "%d connections leaked", fake.alive);
}

/* ------------------------------------------------------------ waiters */

struct want {
    struct pool_waiter w;
    bool done;
    struct server *sv;
    struct backend_error err;
    int order;            /* 1 for the first grant or failure of the test, ... */
    uint64_t asked_us, done_us;
};

static void on_grant(void *arg, struct server *sv, const struct backend_error *err)
{
    struct want *x = arg;

    cr_assert(!x->done, "a waiter was answered twice");
    x->done = true;
    x->sv = sv;
    if (err)
        x->err = *err;
    x->order = ++answers;
    x->done_us = now_us();
}

/* Ask for a server; returns it when one was idle. */
static struct server *ask(struct want *x, enum backend_role role)
{
    memset(x, 0, sizeof(*x));
    x->asked_us = now_us();
    struct server *sv = pool_acquire(P, &x->w, role, on_grant, x);
    if (sv) {
        x->done = true;
        x->sv = sv;
        x->order = ++answers;
    }
    return sv;
}

/* A pool of maxOpenConns 3 gets n writer requests at once; wait until
 * min(n, 3) have a server. */
static void three_conns_n_requests(int max_idle, struct want *w, int n)
{
    cfg.max_open_conns = 3;
    cfg.max_idle_conns = max_idle;
    start_pool(true);
    for (int i = 0; i < n; i++)
        ask(&w[i], ROLE_WRITER);
    int served = n < 3 ? n : 3;
    cr_assert(AWAIT(answers == served, 2000), "%d of %d requests served", answers, served);
}

/* Release each request's server in turn; each must have been served. */
static void release_in_turn(struct want *w, int n)
{
    for (int i = 0; i < n; i++) {
        cr_assert(w[i].done && w[i].sv, "request %d not served in turn", i);
        pool_release(P, w[i].sv);
    }
}

/* ---------------------------------------------------------- operations */

struct op {
    bool done;
    struct backend_result res;
};

static void op_done(void *arg, const struct backend_result *res)
{
    struct op *o = arg;

    o->done = true;
    o->res = *res;
}

static const struct backend_sink op_sink = { NULL, NULL, op_done };

static void start_sql(struct server *sv, const char *sql, struct op *o)
{
    struct backend_query q = { sql, strlen(sql), NULL, 0, 0, NULL };

    memset(o, 0, sizeof(*o));
    server_exec(sv, &q, &op_sink, o);
}

static struct backend_result run_sql(struct server *sv, const char *sql)
{
    struct op o;

    start_sql(sv, sql, &o);
    cr_assert(AWAIT(o.done, 2000), "\"%s\" never completed", sql);
    return o.res;
}

/* ====================================================== acquire, release */

Test(pool, acquire_takes_the_idle_connection_release_returns_it)
{
    struct want a, b;

    start_pool(true);
    struct server *sv = ask(&a, ROLE_WRITER);
    cr_assert_not_null(sv, "an idle connection was not handed out at once");
    cr_assert_eq(stats().servers_idle, 0);
    cr_assert_eq(stats().clients_active, 1);
    uint64_t id = server_id(sv);
    pool_release(P, sv);
    cr_assert_eq(stats().servers_idle, 1);
    cr_assert_eq(stats().total_transactions, 1);
    sv = ask(&b, ROLE_WRITER);
    cr_assert(sv && server_id(sv) == id, "the released connection was not reused");
    pool_release(P, sv);
    cr_assert_eq(fake.connects, 1, "%d connects for one connection's work", fake.connects);
    stop_pool();
}

Test(pool, waiters_are_served_in_arrival_order)
{
    struct want a, b, c;

    cfg.max_open_conns = 1;
    start_pool(true);
    cr_assert_not_null(ask(&a, ROLE_WRITER));
    cr_assert_null(ask(&b, ROLE_WRITER));
    cr_assert_null(ask(&c, ROLE_WRITER));
    cr_assert_eq(stats().clients_waiting, 2);
    pool_release(P, a.sv);
    cr_assert(b.done && b.sv && !c.done, "the first waiter did not get the released connection");
    pool_release(P, b.sv);
    cr_assert(c.done && c.sv, "the second waiter did not get it next");
    cr_assert_lt(b.order, c.order);
    cr_assert_eq(stats().total_waits, 2);
    pool_release(P, c.sv);
    cr_assert_eq(fake.connects, 1, "maxOpenConns 1, but %d connects", fake.connects);
    stop_pool();
}

/* A released writer goes to the first waiter that wants a writer, even
 * when a reader waiter queued before it. */
Test(pool, a_waiter_gets_a_connection_of_its_role)
{
    struct want w1, r1, r2, w2;

    cfg.max_open_conns = 2;
    fake.writers = 1;
    fake.readers = 1;
    start_pool(true);
    cr_assert_not_null(ask(&w1, ROLE_WRITER));
    cr_assert_null(ask(&r1, ROLE_READER), "no reader was open yet");
    cr_assert(AWAIT(r1.done, 2000), "no reader was opened for the reader waiter");
    cr_assert(r1.sv && server_role(r1.sv) == ROLE_READER);
    cr_assert_null(ask(&r2, ROLE_READER));
    cr_assert_null(ask(&w2, ROLE_WRITER));
    pool_release(P, w1.sv);
    cr_assert(w2.done && !r2.done, "the writer went to %s", r2.done ? "the reader waiter" : "nobody");
    cr_assert_eq(server_role(w2.sv), ROLE_WRITER);
    pool_release(P, r1.sv);
    cr_assert(r2.done && server_role(r2.sv) == ROLE_READER);
    pool_release(P, w2.sv);
    pool_release(P, r2.sv);
    cr_assert_eq(fake.alive_max, 2);
    stop_pool();
}

/* maxOpenConns 1, acquireTimeout 100 ms: a holds the connection, b waits
 * (with fail_timer_adds, pool.c's event_add calls fail while b queues). */
static void one_holds_one_waits(struct want *a, struct want *b, int fail_timer_adds)
{
    cfg.max_open_conns = 1;
    cfg.acquire_timeout_ms = 100;
    start_pool(true);
    cr_assert_not_null(ask(a, ROLE_WRITER));
    fail_adds = fail_timer_adds;
    cr_assert_null(ask(b, ROLE_WRITER));
    cr_assert_eq(failed_adds, fail_timer_adds, "the wait timer was not armed with event_add");
    fail_adds = 0;
}

Test(pool, a_waiter_fails_with_pool_timeout_after_acquire_timeout)
{
    struct want a, b;

    one_holds_one_waits(&a, &b, 0);
    cr_assert(AWAIT(b.done, 3000), "the waiter never timed out");
    cr_assert_null(b.sv);
    cr_assert_eq(b.err.code, DBPOOL_E_POOL_TIMEOUT, "code %d: %s", b.err.code, b.err.message);
    cr_assert_geq(b.done_us - b.asked_us, 100000u, "timed out early");
    cr_assert(strstr(b.err.message, "maxOpenConns"), "the message does not say what to do: %s",
              b.err.message);
    cr_assert_eq(stats().total_acquire_timeouts, 1);
    cr_assert_eq(stats().clients_waiting, 0);
    pool_release(P, a.sv);
    cr_assert_eq(stats().servers_idle, 1, "the held connection was lost");
    stop_pool();
}

Test(pool, never_more_than_max_open_conns)
{
    struct want w[6];

    three_conns_n_requests(3, w, 6);
    cr_assert_eq(fake.alive_max, 3, "%d connections open at once", fake.alive_max);
    cr_assert_eq(stats().clients_waiting, 3);
    release_in_turn(w, 6);
    cr_assert_eq(fake.connects, 3);
    cr_assert_eq(stats().servers_idle, 3);
    stop_pool();
}

Test(pool, releases_above_max_idle_conns_are_closed)
{
    struct want w[3];

    three_conns_n_requests(1, w, 3);
    release_in_turn(w, 3);
    cr_assert_eq(stats().servers_idle, 1);
    cr_assert_eq(fake.closes, 2);
    cr_assert_eq(fake.alive, 1);
    stop_pool();
}

/* ============================================================ recycling */

Test(pool, conn_max_lifetime_recycles_idle_and_released_connections)
{
    struct want a, b;

    cfg.conn_max_lifetime_ms = 60;
    start_pool(true);
    cr_assert(AWAIT(fake.closes == 1, 2000), "an idle connection outlived connMaxLifetime");
    cr_assert_eq(stats().servers_open, 0);

    /* a connection held past its lifetime is closed when released */
    cr_assert_null(ask(&a, ROLE_WRITER));
    cr_assert(AWAIT(a.done && a.sv, 2000));
    uint64_t t0 = now_us();
    cr_assert(AWAIT(now_us() - t0 > 80000, 1000));
    int closes = fake.closes;
    pool_release(P, a.sv);
    cr_assert_eq(fake.closes, closes + 1, "an expired connection went back to the idle list");
    cr_assert_null(ask(&b, ROLE_WRITER), "an expired connection was handed out");
    cr_assert(AWAIT(b.done && b.sv, 2000));
    pool_release(P, b.sv);
    stop_pool();
}

Test(pool, conn_max_idle_time_closes_unused_connections)
{
    struct want a;

    cfg.conn_max_idle_time_ms = 60;
    start_pool(true);
    cr_assert(AWAIT(stats().servers_open == 0, 2000), "an idle connection outlived connMaxIdleTime");
    cr_assert_eq(fake.closes, 1);
    cr_assert_null(ask(&a, ROLE_WRITER));
    cr_assert(AWAIT(a.done && a.sv, 2000), "no new connection after the idle one was closed");
    pool_release(P, a.sv);
    stop_pool();
}

/* =================================================== broken connections */

/* The statement broke the connection (CONN_LOST): the pool closes it on
 * release and opens a new one for the client waiting for it. */
Test(pool, a_broken_connection_is_replaced_for_the_next_waiter)
{
    struct want a, b;

    cfg.max_open_conns = 1;
    start_pool(true);
    cr_assert_not_null(ask(&a, ROLE_WRITER));
    uint64_t broken_id = server_id(a.sv);
    cr_assert_null(ask(&b, ROLE_WRITER));
    fake.exec = FAKE_BREAK;
    struct backend_result r = run_sql(a.sv, "SELECT 1");
    cr_assert(!r.ok && r.broken && r.err.code == DBPOOL_E_CONN_LOST);
    fake.exec = FAKE_OK;
    pool_release(P, a.sv);
    cr_assert_eq(fake.closes, 1, "the broken connection was not closed");
    cr_assert_null(b.sv, "the broken connection was handed out");
    cr_assert(AWAIT(b.done, 2000), "the waiter never got a replacement");
    cr_assert(b.sv && server_id(b.sv) != broken_id);
    cr_assert(run_sql(b.sv, "SELECT 1").ok);
    cr_assert_eq(stats().total_errors, 1);
    cr_assert_eq(stats().total_statements, 1);
    pool_release(P, b.sv);
    stop_pool();
}

/* An idle connection dies (server restart): closed at once, and a probe
 * opens a fresh one. */
Test(pool, a_connection_lost_while_idle_is_replaced)
{
    start_pool(true);
    cr_assert(fake_lose_idle(fake.last_new), "the idle connection is not watched");
    cr_assert_eq(fake.closes, 1);
    cr_assert(AWAIT(stats().servers_idle == 1 && fake.connects == 2, 2000),
              "no fresh connection after the idle one died");
    cr_assert(stats().healthy);
    stop_pool();
}

/* ============================================================ down pool */

static void go_down(void)
{
    cfg.max_retries = 1;
    fake.connect = FAKE_FAIL;
    start_pool(false);
    cr_assert(AWAIT(stats().down, 3000), "the pool never went down (%d failures)",
              stats().connect_failures);
    cr_assert(!stats().healthy);
    cr_assert(strstr(stats().last_error, "refused"), "last_error: %s", stats().last_error);
}

Test(pool, a_down_pool_fails_fast_probes_and_recovers)
{
    struct want a, b;

    cfg.acquire_timeout_ms = 10000;
    go_down();
    cr_assert_null(ask(&a, ROLE_WRITER));
    cr_assert(AWAIT(a.done, 1000), "a request to a down pool waited");
    cr_assert_eq(a.err.code, DBPOOL_E_UNAVAILABLE, "code %d: %s", a.err.code, a.err.message);
    cr_assert(strstr(a.err.message, "unavailable") && strstr(a.err.message, "check that"),
              "message: %s", a.err.message);
    cr_assert_lt(a.done_us - a.asked_us, 1000000u, "took %llu us",
                 (unsigned long long)(a.done_us - a.asked_us));
    cr_assert_geq(stats().total_unavailable, 1);

    int tries = fake.connects;
    cr_assert(AWAIT(fake.connects >= tries + 2, 3000), "the down pool stopped probing");
    fake.connect = FAKE_OK;
    cr_assert(AWAIT(stats().healthy && !stats().down && stats().servers_idle == 1, 3000),
              "the pool did not recover without traffic");
    cr_assert_eq(stats().connect_failures, 0);
    cr_assert_not_null(ask(&b, ROLE_WRITER));
    pool_release(P, b.sv);
    stop_pool();
}

/* ================================================================ reset */

/* The pool asks the driver to reset the connection (its reset(), not a
 * ROLLBACK statement of the pool's own) and reuses it once that is done. */
Test(pool, a_transaction_left_open_is_reset_by_the_driver_before_reuse)
{
    struct want a, b;

    start_pool(true);
    cr_assert_not_null(ask(&a, ROLE_WRITER));
    cr_assert_eq(run_sql(a.sv, "BEGIN").txstate, 'T');
    pool_release(P, a.sv);
    cr_assert_eq(fake.resets, 1, "the driver's reset() was not called");
    cr_assert_eq(fake.execs, 1, "the pool ran a statement of its own to reset");
    cr_assert_eq(stats().servers_idle, 0, "idle before its reset finished");
    cr_assert(AWAIT(stats().servers_idle == 1, 2000));
    struct server *sv = ask(&b, ROLE_WRITER);
    cr_assert(sv && server_txstate(sv) == 'I');
    pool_release(P, sv);
    cr_assert_eq(fake.resets, 1, "a connection outside a transaction was reset");
    cr_assert_eq(fake.closes, 0);
    stop_pool();
}

/* Left in a transaction, then reset with the given outcome: the
 * connection must be closed, and the next client gets a new one. */
static void reset_closes(enum fake_outcome how, char tx_after, const char *what)
{
    struct want a, b;

    start_pool(true);
    cr_assert_not_null(ask(&a, ROLE_WRITER));
    cr_assert_eq(run_sql(a.sv, "BEGIN").txstate, 'T');
    fake.reset = how;
    fake.reset_tx = tx_after;
    pool_release(P, a.sv);
    cr_assert(AWAIT(fake.closes == 1, 2000), "a connection whose reset %s was kept", what);
    cr_assert_eq(fake.resets, 1);
    cr_assert_eq(stats().servers_idle, 0, "%s: the connection went back to idle", what);
    fake.reset = FAKE_OK;
    fake.reset_tx = 0;
    ask(&b, ROLE_WRITER);
    cr_assert(AWAIT(b.done, 2000), "%s: the next client was not served", what);
    cr_assert(b.sv && server_txstate(b.sv) == 'I', "%s: the next client's connection", what);
    cr_assert_eq(fake.connects, 2, "%s: no new connection for the next client", what);
    pool_release(P, b.sv);
    stop_pool();
}

Test(pool, a_failed_reset_closes_the_connection)
{
    reset_closes(FAKE_FAIL, 0, "failed");
}

Test(pool, a_reset_that_breaks_the_connection_closes_it)
{
    reset_closes(FAKE_BREAK, 0, "broke the connection");
}

Test(pool, a_reset_that_leaves_a_transaction_open_closes_the_connection)
{
    reset_closes(FAKE_OK, 'T', "left a transaction open");
}

/* Abandoned inside a transaction while a statement runs: the statement is
 * cancelled, then the driver resets the connection, then it is reused. */
Test(pool, abandon_inside_a_transaction_cancels_then_resets)
{
    struct want a;
    struct op o;

    start_pool(true);
    cr_assert_not_null(ask(&a, ROLE_WRITER));
    cr_assert_eq(run_sql(a.sv, "BEGIN").txstate, 'T');
    fake.exec = FAKE_HANG;
    start_sql(a.sv, "SELECT pg_sleep(60)", &o);
    pool_abandon(P, a.sv);
    cr_assert_eq(fake.cancels, 1);
    cr_assert(AWAIT(stats().servers_idle == 1, 2000), "the abandoned connection never came back");
    cr_assert_eq(fake.resets, 1, "the abandoned transaction was not reset");
    cr_assert_eq(fake.closes, 0);
    cr_assert(!o.done, "the vanished client's sink was called");
    stop_pool();
}

/* The client vanished while its statement ran: the pool cancels it, keeps
 * its completion from the client, and takes the connection back. */
Test(pool, abandon_cancels_the_running_statement)
{
    struct want a;
    struct op o;

    start_pool(true);
    cr_assert_not_null(ask(&a, ROLE_WRITER));
    fake.exec = FAKE_HANG;
    start_sql(a.sv, "SELECT pg_sleep(60)", &o);
    pool_abandon(P, a.sv);
    cr_assert_eq(fake.cancels, 1);
    cr_assert(AWAIT(stats().servers_idle == 1, 2000), "the abandoned connection never came back");
    cr_assert(!o.done, "the vanished client's sink was called");
    stop_pool();
}

/* ============================================ timers libevent cannot arm */

/* The acquire-timeout timer cannot be armed: the waiter still ends, with
 * POOL_TIMEOUT, within acquireTimeout plus a maintenance tick. */
Test(pool, a_waiter_times_out_when_its_timer_cannot_be_armed)
{
    struct want a, b;

    one_holds_one_waits(&a, &b, 1);
    cr_assert(AWAIT(b.done, 3000), "the waiter waits for ever");
    cr_assert_eq(b.err.code, DBPOOL_E_POOL_TIMEOUT, "code %d: %s", b.err.code, b.err.message);
    pool_release(P, a.sv);
    stop_pool();
}

/* The retry timer cannot be armed after a failed connect: the pool still
 * dials again and recovers when the database answers. */
Test(pool, a_pool_recovers_when_its_retry_timer_cannot_be_armed)
{
    fake.connect = FAKE_FAIL;
    start_pool(false);
    fail_adds = 1;
    cr_assert(AWAIT(fake.connect_failures == 1, 2000));
    cr_assert_eq(failed_adds, 1, "the retry timer was not armed with event_add");
    fake.connect = FAKE_OK;
    cr_assert(AWAIT(stats().healthy && stats().servers_idle == 1, 3000),
              "no retry: the pool stays unhealthy for ever");
    stop_pool();
}

/* While the pool is down no timer works: a request still fails at once. */
Test(pool, a_down_pool_fails_fast_without_timers)
{
    struct want a;

    cfg.acquire_timeout_ms = 10000;
    go_down();
    fail_adds = 1000;
    cr_assert_null(ask(&a, ROLE_WRITER));
    cr_assert(AWAIT(a.done, 1000), "the request waits with no timer to end it");
    cr_assert_eq(a.err.code, DBPOOL_E_UNAVAILABLE, "code %d: %s", a.err.code, a.err.message);
    fail_adds = 0;
    stop_pool();
}

Test(pool, start_refuses_without_its_maintenance_timer)
{
    char err[300];

    P = pool_new(&cfg, &fake_driver, base);
    cr_assert_not_null(P);
    fail_adds = 1;
    cr_assert_eq(pool_start(P, err, sizeof(err)), -1);
    cr_assert(strstr(err, "maintenance timer") && strstr(err, "\"fake\""), "message: %s", err);
    cr_assert_eq(fake.connects, 0, "a pool that did not start dialled");
    stop_pool();
}

/* ============================================ changes to a running pool */

static struct pool_config cfg2;     /* the "reloaded" config */

/* cfg2 = cfg with other sizes. */
static const struct pool_config *resized(int max_open, int max_idle)
{
    cfg2 = cfg;
    cfg2.max_open_conns = max_open;
    cfg2.max_idle_conns = max_idle;
    return &cfg2;
}

Test(pool, shrinking_closes_idle_connections_now_and_busy_ones_when_released)
{
    struct want w[3];

    three_conns_n_requests(3, w, 3);
    pool_release(P, w[0].sv);
    cr_assert_eq(stats().servers_idle, 1);
    pool_reconfigure(P, resized(1, 1), false);
    cr_assert_eq(stats().max_open, 1);
    cr_assert_eq(fake.alive, 2, "the idle connection above the new size stayed open");
    cr_assert_eq(stats().servers_busy, 2, "a busy connection was taken from its client");
    pool_release(P, w[1].sv);
    cr_assert_eq(fake.alive, 1, "a released connection above the new size was kept");
    pool_release(P, w[2].sv);
    cr_assert_eq(fake.alive, 1);
    cr_assert_eq(stats().servers_idle, 1, "the last connection within the size was closed");
    stop_pool();
}

Test(pool, growing_serves_the_waiters_at_once)
{
    struct want a, b;

    cfg.max_open_conns = 1;
    start_pool(true);
    cr_assert_not_null(ask(&a, ROLE_WRITER));
    cr_assert_null(ask(&b, ROLE_WRITER));
    pool_reconfigure(P, resized(2, 2), false);
    cr_assert(AWAIT(b.done, 2000), "the waiter did not get a connection of the larger pool");
    cr_assert_not_null(b.sv);
    cr_assert_eq(fake.alive, 2);
    pool_release(P, a.sv);
    pool_release(P, b.sv);
    stop_pool();
}

Test(pool, recycling_keeps_the_transaction_then_never_reuses_the_old_connection)
{
    struct want a, b, c;

    start_pool(true);
    cr_assert_not_null(ask(&a, ROLE_WRITER));
    cr_assert(run_sql(a.sv, "BEGIN").ok);
    uint64_t old_id = server_id(a.sv);
    struct server *spare = ask(&b, ROLE_WRITER);   /* a second one, released idle below */
    if (!spare)
        cr_assert(AWAIT(b.done && b.sv, 2000));
    pool_release(P, b.sv);
    int closes = fake.closes;
    pool_reconfigure(P, resized(2, 2), true);
    cr_assert_eq(fake.closes, closes + 1, "the idle connection of the old settings stayed open");
    cr_assert(run_sql(a.sv, "INSERT 1").ok, "the open transaction was disturbed");
    cr_assert(run_sql(a.sv, "COMMIT").ok);
    pool_release(P, a.sv);
    cr_assert_eq(fake.closes, closes + 2, "the old connection was kept after its transaction");
    struct server *sv = ask(&c, ROLE_WRITER);
    if (!sv)
        cr_assert(AWAIT(c.done && c.sv, 2000));
    cr_assert_neq(server_id(c.sv), old_id);
    pool_release(P, c.sv);
    stop_pool();
}

Test(pool, reconnect_replaces_idle_connections)
{
    struct want a;

    start_pool(true);
    int connects = fake.connects;
    pool_reconnect(P);
    cr_assert_eq(fake.alive, 0, "the idle connection was not closed");
    ask(&a, ROLE_WRITER);
    cr_assert(AWAIT(a.done && a.sv, 2000), "no new connection after reconnect");
    cr_assert_eq(fake.connects, connects + 1);
    pool_release(P, a.sv);
    stop_pool();
}

Test(pool, a_paused_pool_holds_new_acquires_until_resumed)
{
    struct want a, b, c;

    start_pool(true);
    cr_assert_not_null(ask(&a, ROLE_WRITER));
    pool_pause(P);
    cr_assert(run_sql(a.sv, "SELECT 1").ok, "a running client was stopped by the pause");
    pool_release(P, a.sv);
    cr_assert_eq(stats().servers_idle, 1);
    cr_assert_null(ask(&b, ROLE_WRITER), "a paused pool handed out its idle connection");
    for (int i = 0; i < 5; i++)
        loop_pass();
    cr_assert(!b.done, "a paused pool answered a waiter");
    cr_assert_eq(fake.alive, 1, "a paused pool opened a connection");
    pool_resume(P);
    cr_assert(b.done && b.sv, "resume did not serve the waiter");
    pool_release(P, b.sv);
    cfg.acquire_timeout_ms = 30;
    pool_pause(P);
    ask(&c, ROLE_WRITER);
    cr_assert(AWAIT(c.done, 2000));
    cr_assert_null(c.sv);
    cr_assert_eq(c.err.code, DBPOOL_E_POOL_TIMEOUT);
    cr_assert(strstr(c.err.message, "paused"), "%s", c.err.message);
    stop_pool();
}

Test(pool, a_removed_pool_is_drained_once_no_client_uses_it)
{
    struct want a;

    start_pool(true);
    pool_client_attach(P);
    cr_assert_not_null(ask(&a, ROLE_WRITER));
    pool_mark_removed(P);
    cr_assert(!pool_drained(P), "drained while a client is attached");
    pool_client_detach(P);
    cr_assert(!pool_drained(P), "drained while a connection is busy");
    pool_release(P, a.sv);
    cr_assert(pool_drained(P));
    stop_pool();
}
