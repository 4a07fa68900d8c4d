/*
 * test_lib_async.c — libdbpool's non-blocking API (include/dbpool.h,
 * "Non-blocking use"; doc/libdbpool.md) against the real daemon: a client
 * driven by libevent and one driven by poll(2), pipelining, errors inside
 * a pipeline, batches, single-row mode over a large result with bounded
 * buffering, cancel, the daemon going away mid-pipeline, connect failures
 * and the connect timeout reported through dbpool_connect_poll, and the
 * blocking calls refused while requests are outstanding. Runs on SQLite in
 * `make check`, on PostgreSQL from tests/pg/run-pg-tests.sh and on MariaDB
 * from tests/mysql/run-mysql-tests.sh.
 *
 * Waits are poll(2) / event_base_loop with deadlines, never sleeps.
 */
#include <criterion/criterion.h>

#include <event2/event.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

TestSuite(async, .fini = h_fini, .timeout = 90);

#define WAIT_MS 20000

/* ------------------------------------------------------------ a poll(2) loop */

/* Connects with connect_start / connect_poll, waiting with poll(2).
 * Returns the final poll status; *out is the connection (close it). */
static dbpool_poll_status poll_connect(const char *sock, const char *pool, const dbpool_options *o,
                                       dbpool_conn **out)
{
    dbpool_error err;
    dbpool_conn *c = dbpool_connect_start_opts(sock, pool, "async-test", o, &err);
    dbpool_poll_status st;

    cr_assert_not_null(c, "connect_start: %s", err.message);
    *out = c;
    while ((st = dbpool_connect_poll(c)) == DBPOOL_POLL_READING || st == DBPOOL_POLL_WRITING) {
        struct pollfd p = { .fd = dbpool_socket(c),
                            .events = st == DBPOOL_POLL_READING ? POLLIN : POLLOUT };
        int ms = dbpool_poll_timeout(c);
        cr_assert(p.fd >= 0);
        cr_assert(poll(&p, 1, ms < 0 || ms > WAIT_MS ? WAIT_MS : ms) >= 0);
    }
    return st;
}

static dbpool_conn *async_connect(void)
{
    dbpool_conn *c;
    dbpool_poll_status st = poll_connect(h_paths()->sock, H_POOL, NULL, &c);

    cr_assert_eq(st, DBPOOL_POLL_OK, "connect_poll: %s", dbpool_last_error(c)->message);
    return c;
}

/* Flushes, then waits (poll) until the next result is whole; returns it. */
static dbpool_result *next_result(dbpool_conn *c)
{
    uint64_t deadline = h_now_ms() + WAIT_MS;
    int f;

    while ((f = dbpool_flush(c)) == 1) {
        struct pollfd p = { .fd = dbpool_socket(c), .events = POLLOUT | POLLIN };
        cr_assert(poll(&p, 1, 1000) >= 0);
        if (p.revents & POLLIN)
            cr_assert_geq(dbpool_consume_input(c), 0, "%s", dbpool_last_error(c)->message);
        cr_assert_lt(h_now_ms(), deadline, "flush did not finish");
    }
    while (dbpool_is_busy(c)) {
        struct pollfd p = { .fd = dbpool_socket(c), .events = POLLIN };
        cr_assert_lt(h_now_ms(), deadline, "no result within %d ms", WAIT_MS);
        cr_assert(poll(&p, 1, 1000) >= 0);
        if (p.revents)
            (void)dbpool_consume_input(c);
    }
    return dbpool_get_result(c);
}

static void expect_ok(dbpool_result *r, const char *what)
{
    cr_assert_not_null(r, "%s: no result", what);
    cr_assert_eq(dbpool_result_status_of(r), DBPOOL_RESULT_OK, "%s: status %d: %s", what,
                 dbpool_result_status_of(r), dbpool_result_error(r)->message);
}

static void expect_error(dbpool_result *r, int code, const char *what)
{
    cr_assert_not_null(r, "%s: no result", what);
    cr_assert_eq(dbpool_result_status_of(r), DBPOOL_RESULT_ERROR, "%s: not an error", what);
    cr_assert_eq(dbpool_result_error(r)->code, code, "%s: %s (%d), expected %s: %s", what,
                 dbpool_code_name(dbpool_result_error(r)->code), dbpool_result_error(r)->code,
                 dbpool_code_name(code), dbpool_result_error(r)->message);
}

static int64_t int_at(const dbpool_result *r, size_t row, size_t col)
{
    const dbpool_value *v = dbpool_result_value(r, row, col);
    cr_assert_not_null(v);
    cr_assert_eq(v->type, DBPOOL_INT64, "value type %s", dbpool_type_name(v->type));
    return v->u.i;
}

/* ------------------------------------------------------------ pipelines */

Test(async, pipeline_of_100_queries_answers_in_order)
{
    h_start(NULL);
    dbpool_conn *c = async_connect();

    for (int i = 0; i < 100; i++) {
        dbpool_value p = dbpool_int(i);
        cr_assert_eq(dbpool_send_query(c, h_sql("SELECT ? + 1000"), &p, 1), 0, "%s",
                     dbpool_last_error(c)->message);
    }
    cr_assert_eq(dbpool_pending(c), 100);
    for (int i = 0; i < 100; i++) {
        dbpool_result *r = next_result(c);
        expect_ok(r, "pipelined query");
        cr_assert_eq(dbpool_result_nrows(r), 1);
        cr_assert_eq(int_at(r, 0, 0), 1000 + i, "result %d out of order", i);
        cr_assert_eq(dbpool_result_txstate(r), DBPOOL_TX_IDLE);
        dbpool_result_free(r);
    }
    cr_assert_eq(dbpool_pending(c), 0);
    cr_assert_null(dbpool_get_result(c), "nothing outstanding: NULL");
    cr_assert_eq(dbpool_is_busy(c), 0);
    cr_assert_eq(h_scalar(c, "SELECT 7"), 7, "blocking calls work again once all is taken");
    dbpool_close(c);
    h_stop_ok();
}

Test(async, error_in_the_middle_of_a_pipeline)
{
    h_start(NULL);
    dbpool_conn *c = async_connect();
    dbpool_value one = dbpool_int(1);

    h_create_table(c, "t", "a INTEGER");
    cr_assert_eq(dbpool_send_begin(c, 0), 0);
    cr_assert_eq(dbpool_send_query(c, h_sql("INSERT INTO t VALUES (?)"), &one, 1), 0);
    cr_assert_eq(dbpool_send_query(c, "SELEC broken", NULL, 0), 0);
    cr_assert_eq(dbpool_send_rollback(c), 0);
    cr_assert_eq(dbpool_send_query(c, "SELECT 42", NULL, 0), 0);
    cr_assert_eq(dbpool_send_query(c, "SELECT COUNT(*) FROM t", NULL, 0), 0);

    dbpool_result *r = next_result(c);
    expect_ok(r, "BEGIN");
    cr_assert_eq(dbpool_result_txstate(r), DBPOOL_TX_ACTIVE);
    dbpool_result_free(r);
    r = next_result(c);
    expect_ok(r, "INSERT");
    cr_assert_eq(dbpool_result_rows_affected(r), 1);
    dbpool_result_free(r);
    r = next_result(c);
    expect_error(r, DBPOOL_E_SQL, "the broken statement");
    cr_assert_eq(dbpool_result_stmt_index(r), -1);
    dbpool_result_free(r);
    r = next_result(c);
    expect_ok(r, "ROLLBACK after the error");
    cr_assert_eq(dbpool_result_txstate(r), DBPOOL_TX_IDLE);
    dbpool_result_free(r);
    r = next_result(c);
    expect_ok(r, "the query after the error");
    cr_assert_eq(int_at(r, 0, 0), 42);
    dbpool_result_free(r);
    r = next_result(c);
    expect_ok(r, "count");
    cr_assert_eq(int_at(r, 0, 0), 0, "the rolled back INSERT is gone");
    dbpool_result_free(r);
    cr_assert_eq(dbpool_pending(c), 0);
    dbpool_close(c);
    h_stop_ok();
}

Test(async, batch_gives_one_result_per_statement_then_the_final_one)
{
    h_start(NULL);
    dbpool_conn *c = async_connect();
    dbpool_stmt ok[] = { { "SELECT 1", NULL, 0 }, { "SELECT 2", NULL, 0 } };
    dbpool_stmt bad[] = { { "SELECT 1", NULL, 0 }, { "SELEC 2", NULL, 0 }, { "SELECT 3", NULL, 0 } };

    cr_assert_eq(dbpool_send_batch(c, ok, 2, 0), 0);
    cr_assert_eq(dbpool_send_batch(c, bad, 3, 1), 0);
    for (int i = 0; i < 2; i++) {
        dbpool_result *r = next_result(c);
        cr_assert_eq(dbpool_result_status_of(r), DBPOOL_RESULT_STATEMENT);
        cr_assert_eq(dbpool_result_stmt_index(r), i);
        cr_assert_eq(int_at(r, 0, 0), i + 1);
        dbpool_result_free(r);
    }
    dbpool_result *r = next_result(c);
    expect_ok(r, "the batch");
    cr_assert_eq(dbpool_result_nrows(r), 0);
    dbpool_result_free(r);
    r = next_result(c);
    cr_assert_eq(dbpool_result_status_of(r), DBPOOL_RESULT_STATEMENT, "the first statement ran");
    dbpool_result_free(r);
    r = next_result(c);
    expect_error(r, DBPOOL_E_SQL, "the failing batch");
    cr_assert_eq(dbpool_result_stmt_index(r), 1, "the failing statement's index");
    dbpool_result_free(r);

    /* single-row mode: each statement's row, then the statement */
    cr_assert_eq(dbpool_send_batch(c, ok, 2, 0), 0);
    cr_assert_eq(dbpool_set_single_row_mode(c), 0);
    for (int i = 0; i < 2; i++) {
        r = next_result(c);
        cr_assert_eq(dbpool_result_status_of(r), DBPOOL_RESULT_ROW);
        cr_assert_eq(dbpool_result_stmt_index(r), i);
        cr_assert_eq(int_at(r, 0, 0), i + 1);
        dbpool_result_free(r);
        r = next_result(c);
        cr_assert_eq(dbpool_result_status_of(r), DBPOOL_RESULT_STATEMENT);
        cr_assert_eq(dbpool_result_nrows(r), 0);
        cr_assert_eq(dbpool_result_ncols(r), 1);
        dbpool_result_free(r);
    }
    expect_ok(r = next_result(c), "the single-row batch");
    dbpool_result_free(r);
    cr_assert_eq(dbpool_pending(c), 0);
    dbpool_close(c);
    h_stop_ok();
}

Test(async, pin_and_unpin)
{
    h_start(NULL);
    dbpool_conn *c = async_connect();

    cr_assert_eq(dbpool_send_pin(c), 0);
    dbpool_result *r = next_result(c);
    expect_ok(r, "PIN");
    dbpool_result_free(r);
    cr_assert(dbpool_is_pinned(c));
    cr_assert_eq(h_pool_stat(H_POOL, "clients", "pinned"), 1);
    cr_assert_eq(dbpool_send_unpin(c), 0);
    cr_assert_eq(dbpool_send_ping(c), 0);
    r = next_result(c);
    expect_ok(r, "UNPIN");
    dbpool_result_free(r);
    r = next_result(c);
    expect_ok(r, "PING");
    dbpool_result_free(r);
    cr_assert_not(dbpool_is_pinned(c));
    dbpool_close(c);
    h_stop_ok();
}

/* More requests than the socket buffers hold: dbpool_flush returns 1 and
 * the loop reads answers while it waits to write, as a program must. The
 * answers are as large as the requests, so the daemon stops reading
 * (outputHighWater) while the client has not read yet: the socket fills
 * whatever the speed of either side. */
Test(async, pipeline_larger_than_the_socket_buffers)
{
    h_start(NULL);
    dbpool_conn *c = async_connect();
    enum { N = 3000, PAD = 2000 };
    char *pad = malloc(PAD + 1);
    int answered = 0, flush_full = 0;
    int64_t total = 0;

    cr_assert_not_null(pad);
    memset(pad, 'p', PAD);
    pad[PAD] = '\0';
    for (int i = 0; i < N; i++) {
        dbpool_value v = dbpool_text(pad);
        cr_assert_eq(dbpool_send_query(c, h_sql("SELECT ?"), &v, 1), 0);
    }
    free(pad);                       /* the requests hold their own copies */
    uint64_t deadline = h_now_ms() + 60000;
    int f = 1;
    while (answered < N) {
        cr_assert_lt(h_now_ms(), deadline, "%d of %d answered", answered, N);
        if (f != 0) {
            f = dbpool_flush(c);
            cr_assert_geq(f, 0, "%s", dbpool_last_error(c)->message);
            flush_full += f;
        }
        struct pollfd p = { .fd = dbpool_socket(c), .events = POLLIN | (f ? POLLOUT : 0) };
        cr_assert(poll(&p, 1, 1000) >= 0);
        if (p.revents & POLLIN)
            cr_assert_geq(dbpool_consume_input(c), 0, "%s", dbpool_last_error(c)->message);
        dbpool_result *r;
        while ((r = dbpool_get_result(c)) != NULL) {
            expect_ok(r, "a pipelined query");
            total += (int64_t)dbpool_result_value(r, 0, 0)->u.s.len;
            answered++;
            dbpool_result_free(r);
        }
    }
    cr_assert_gt(flush_full, 0, "the socket filled up at least once (else the test proves nothing)");
    cr_assert_eq(total, (int64_t)N * PAD);
    cr_assert_eq(dbpool_pending(c), 0);
    dbpool_close(c);
    h_stop_ok();
}

Test(async, request_above_the_frame_limit_is_refused_and_nothing_is_queued)
{
    h_start(&(struct h_opts){ .daemon_settings = "maxFrameSize = 65536;" });
    dbpool_conn *c = async_connect();
    size_t big = 70000;
    char *blob = calloc(1, big);

    cr_assert_not_null(blob);
    dbpool_value v = dbpool_blob(blob, big);
    cr_assert_eq(dbpool_send_query(c, "SELECT 1", NULL, 0), 0);
    cr_assert_eq(dbpool_send_query(c, h_sql("SELECT ?"), &v, 1), -1);
    cr_assert_eq(dbpool_last_error(c)->code, DBPOOL_E_LIMIT, "%s", dbpool_last_error(c)->message);
    cr_assert_eq(dbpool_pending(c), 1, "the refused request is not outstanding");
    free(blob);
    cr_assert_eq(dbpool_send_query(c, "SELECT 2", NULL, 0), 0);
    dbpool_result *r = next_result(c);
    expect_ok(r, "before the refused one");
    cr_assert_eq(int_at(r, 0, 0), 1);
    dbpool_result_free(r);
    r = next_result(c);
    expect_ok(r, "after the refused one");
    cr_assert_eq(int_at(r, 0, 0), 2);
    dbpool_result_free(r);
    dbpool_close(c);
    h_stop_ok();
}

/* ------------------------------------------------------------ large results */

Test(async, single_row_mode_streams_a_large_result_in_bounded_memory)
{
    h_start(NULL);
    dbpool_conn *c = async_connect();
    enum { ROWS = 20000 };
    char pad[201];
    memset(pad, 'x', 200);
    pad[200] = '\0';
    dbpool_value p[2] = { dbpool_int(ROWS), dbpool_text(pad) };

    cr_assert_eq(dbpool_set_single_row_mode(c), -1, "nothing sent yet");
    cr_assert_eq(dbpool_last_error(c)->code, DBPOOL_E_USAGE);
    cr_assert_eq(dbpool_send_query(c, h_sql(h_profile()->series_sql), p, 2), 0);
    cr_assert_eq(dbpool_set_single_row_mode(c), 0, "%s", dbpool_last_error(c)->message);
    cr_assert_eq(dbpool_flush(c), 0);

    /* Without taking results, reading stops once 256 KiB of them wait:
     * consume_input says 1 instead of buffering the whole result. */
    uint64_t deadline = h_now_ms() + WAIT_MS;
    int rc;
    while ((rc = dbpool_consume_input(c)) == 0) {
        struct pollfd pf = { .fd = dbpool_socket(c), .events = POLLIN };
        cr_assert_lt(h_now_ms(), deadline, "consume_input never reported a full queue");
        cr_assert(poll(&pf, 1, 1000) >= 0);
    }
    cr_assert_eq(rc, 1, "%s", dbpool_last_error(c)->message);
    cr_assert_eq(dbpool_consume_input(c), 1, "still full: nothing more is read");

    int64_t seen = 0;
    for (;;) {
        dbpool_result *r = next_result(c);
        cr_assert_not_null(r);
        if (dbpool_result_status_of(r) == DBPOOL_RESULT_ROW) {
            cr_assert_eq(dbpool_result_nrows(r), 1);
            cr_assert_eq(int_at(r, 0, 0), seen + 1, "rows in order");
            cr_assert_eq(dbpool_result_value(r, 0, 1)->u.s.len, 200);
            cr_assert_str_eq(dbpool_result_columns(r)[0].name, "n");
            seen++;
            dbpool_result_free(r);
            continue;
        }
        expect_ok(r, "the end of the statement");
        cr_assert_eq(dbpool_result_nrows(r), 0, "rows came one by one");
        cr_assert_eq(dbpool_result_ncols(r), 2);
        dbpool_result_free(r);
        break;
    }
    cr_assert_eq(seen, ROWS);
    cr_assert_eq(dbpool_pending(c), 0);
    dbpool_close(c);
    h_stop_ok();
}

Test(async, buffered_result_holds_every_row)
{
    h_start(NULL);
    dbpool_conn *c = async_connect();
    dbpool_value p[2] = { dbpool_int(5000), dbpool_text("pad") };

    cr_assert_eq(dbpool_send_query(c, h_sql(h_profile()->series_sql), p, 2), 0);
    dbpool_result *r = next_result(c);
    expect_ok(r, "series");
    cr_assert_eq(dbpool_result_nrows(r), 5000);
    cr_assert_eq(int_at(r, 4999, 0), 5000);
    cr_assert_str_eq(dbpool_result_value(r, 0, 1)->u.s.ptr, "pad");
    dbpool_result_free(r);
    dbpool_close(c);
    h_stop_ok();
}

/* ------------------------------------------------------------ cancel, faults */

Test(async, cancel_ends_a_running_statement_and_the_session_goes_on)
{
    h_start(NULL);
    dbpool_conn *c = async_connect();

    cr_assert_eq(dbpool_send_query(c, h_profile()->endless_sql, NULL, 0), 0);
    cr_assert_eq(dbpool_flush(c), 0);
    cr_assert(H_AWAIT(h_pool_stat(H_POOL, "clients", "active") >= 1, 10000),
                      "the statement runs");
    cr_assert_eq(dbpool_cancel(c), 0);
    dbpool_result *r = next_result(c);
    expect_error(r, DBPOOL_E_CANCELED, "the cancelled statement");
    cr_assert_str_eq(dbpool_result_error(r)->sqlstate, "57014");
    dbpool_result_free(r);
    cr_assert_eq(dbpool_send_query(c, "SELECT 5", NULL, 0), 0);
    r = next_result(c);
    expect_ok(r, "after the cancel");
    cr_assert_eq(int_at(r, 0, 0), 5);
    dbpool_result_free(r);
    dbpool_close(c);
    h_stop_ok();
}

Test(async, daemon_going_away_mid_pipeline_answers_every_request)
{
    h_start(NULL);
    dbpool_conn *c = async_connect();

    cr_assert_eq(dbpool_send_query(c, "SELECT 1", NULL, 0), 0);
    cr_assert_eq(dbpool_send_query(c, h_profile()->endless_sql, NULL, 0), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(dbpool_send_query(c, "SELECT 2", NULL, 0), 0);
    dbpool_result *r = next_result(c);
    expect_ok(r, "the first query");
    dbpool_result_free(r);
    cr_assert(H_AWAIT(h_pool_stat(H_POOL, "clients", "active") >= 1, 10000));
    h_signal(SIGKILL);
    cr_assert_neq(h_wait_exit(10000), -1);

    for (int i = 0; i < 4; i++) {
        r = next_result(c);
        expect_error(r, DBPOOL_E_IO, "a request the daemon did not answer");
        if (i > 0)
            cr_assert(strstr(dbpool_result_error(r)->message, "not answered"), "%s",
                      dbpool_result_error(r)->message);
        dbpool_result_free(r);
    }
    cr_assert_eq(dbpool_pending(c), 0);
    cr_assert_eq(dbpool_is_busy(c), 0);
    cr_assert_null(dbpool_get_result(c));
    cr_assert_not(dbpool_is_open(c));
    cr_assert_eq(dbpool_send_query(c, "SELECT 1", NULL, 0), -1);
    cr_assert_eq(dbpool_last_error(c)->code, DBPOOL_E_IO);
    dbpool_close(c);
}

Test(async, shutdown_answers_the_pipeline_with_shutdown)
{
    h_start(NULL);
    dbpool_conn *c = async_connect();

    cr_assert_eq(dbpool_send_begin(c, 0), 0);
    dbpool_result *r = next_result(c);
    expect_ok(r, "BEGIN");
    dbpool_result_free(r);
    h_signal(SIGTERM);              /* the transaction goes on until it ends */
    cr_assert_eq(dbpool_send_query(c, "SELECT 1", NULL, 0), 0);
    cr_assert_eq(dbpool_send_commit(c), 0);
    cr_assert_eq(dbpool_send_query(c, "SELECT 2", NULL, 0), 0);
    cr_assert_eq(dbpool_send_query(c, "SELECT 3", NULL, 0), 0);
    expect_ok(r = next_result(c), "in the transaction");
    dbpool_result_free(r);
    expect_ok(r = next_result(c), "COMMIT");
    dbpool_result_free(r);
    r = next_result(c);
    expect_error(r, DBPOOL_E_SHUTDOWN, "the request after the transaction");
    dbpool_result_free(r);
    r = next_result(c);
    expect_error(r, DBPOOL_E_SHUTDOWN, "the one pipelined after it");
    cr_assert(strstr(dbpool_result_error(r)->message, "did not run"), "%s",
              dbpool_result_error(r)->message);
    dbpool_result_free(r);
    cr_assert_eq(dbpool_pending(c), 0);
    dbpool_close(c);
    cr_assert_eq(h_wait_exit(10000), 0);
}

/* ------------------------------------------------------------ connecting */

Test(async, connect_to_a_missing_socket_fails_in_connect_poll)
{
    dbpool_conn *c;
    char path[] = "/tmp/dbpool-async-missing-XXXXXX";
    int fd = mkstemp(path);

    cr_assert_geq(fd, 0);
    close(fd);
    unlink(path);
    cr_assert_eq(poll_connect(path, H_POOL, NULL, &c), DBPOOL_POLL_FAILED);
    cr_assert_eq(dbpool_last_error(c)->code, DBPOOL_E_IO);
    cr_assert(strstr(dbpool_last_error(c)->message, "is dbpoold running?"), "%s",
              dbpool_last_error(c)->message);
    cr_assert_eq(dbpool_socket(c), -1);
    cr_assert_eq(dbpool_connect_poll(c), DBPOOL_POLL_FAILED, "stays failed");
    cr_assert_eq(dbpool_send_query(c, "SELECT 1", NULL, 0), -1);
    dbpool_close(c);
}

Test(async, unknown_pool_fails_in_connect_poll)
{
    h_start(NULL);
    dbpool_conn *c;

    cr_assert_eq(poll_connect(h_paths()->sock, "nosuchpool", NULL, &c), DBPOOL_POLL_FAILED);
    cr_assert_eq(dbpool_last_error(c)->code, DBPOOL_E_UNKNOWN_POOL, "%s",
                 dbpool_last_error(c)->message);
    dbpool_close(c);
    h_stop_ok();
}

Test(async, connect_timeout_through_connect_poll)
{
    char dir[] = "/tmp/dbpool-async-XXXXXX", path[256];
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    dbpool_options o;
    dbpool_conn *c;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/silent.sock", dir);
    strcpy(sa.sun_path, path);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(lfd, 8), 0);         /* connects are queued, never answered */
    dbpool_options_init(&o);
    o.connect_timeout_ms = 300;
    uint64_t t0 = h_now_ms();
    cr_assert_eq(poll_connect(path, H_POOL, &o, &c), DBPOOL_POLL_FAILED);
    uint64_t took = h_now_ms() - t0;
    cr_assert_eq(dbpool_last_error(c)->code, DBPOOL_E_TIMEOUT, "%s", dbpool_last_error(c)->message);
    cr_assert(strstr(dbpool_last_error(c)->message, "connect timeout"), "%s",
              dbpool_last_error(c)->message);
    cr_assert(took >= 250 && took < 5000, "gave up after %llu ms", (unsigned long long)took);
    cr_assert_eq(dbpool_poll_timeout(c), -1);
    dbpool_close(c);
    close(lfd);
    unlink(path);
    rmdir(dir);
}

Test(async, blocking_calls_are_refused_while_requests_are_outstanding)
{
    h_start(NULL);
    dbpool_error err;
    dbpool_conn *c = dbpool_connect_start(h_paths()->sock, H_POOL, NULL, &err);

    cr_assert_not_null(c);
    int rc = dbpool_exec(c, "SELECT 1");
    h_expect_error(c, rc, DBPOOL_E_USAGE, "a blocking call while connecting");
    cr_assert(strstr(dbpool_last_error(c)->message, "dbpool_connect_poll"));
    dbpool_close(c);

    c = async_connect();
    cr_assert_eq(dbpool_send_query(c, "SELECT 1", NULL, 0), 0);
    rc = dbpool_exec(c, "SELECT 2");
    h_expect_error(c, rc, DBPOOL_E_USAGE, "a blocking call with a request outstanding");
    cr_assert(strstr(dbpool_last_error(c)->message, "dbpool_get_result"), "%s",
              dbpool_last_error(c)->message);
    dbpool_result *r = next_result(c);
    expect_ok(r, "the async query, untouched by the refused call");
    cr_assert_eq(int_at(r, 0, 0), 1);
    dbpool_result_free(r);
    cr_assert_eq(h_scalar(c, "SELECT 3"), 3);
    dbpool_close(c);
    h_stop_ok();
}

/* ------------------------------------------------------------ libevent */

/* A client in a libevent loop: connects, pipelines QUERIES queries in
 * rounds of 10, collects every answer. */
struct ev_client {
    struct event_base *base;
    struct event *ev;
    dbpool_conn *c;
    bool connected;
    int sent, answered, errors;
    int64_t sum;
};

enum { QUERIES = 200 };

static void ev_on_io(evutil_socket_t fd, short what, void *arg);

static void ev_watch(struct ev_client *e, short what)
{
    event_del(e->ev);
    event_assign(e->ev, e->base, dbpool_socket(e->c), what | EV_PERSIST, ev_on_io, e);
    event_add(e->ev, NULL);
}

static void ev_send_round(struct ev_client *e)
{
    for (int i = 0; i < 10 && e->sent < QUERIES; i++, e->sent++) {
        dbpool_value v = dbpool_int(e->sent);
        if (dbpool_send_query(e->c, h_sql("SELECT ?"), &v, 1) < 0)
            e->errors++;
    }
}

static void ev_on_io(evutil_socket_t fd, short what, void *arg)
{
    struct ev_client *e = arg;
    (void)fd;

    if (!e->connected) {
        dbpool_poll_status st = dbpool_connect_poll(e->c);
        if (st == DBPOOL_POLL_FAILED) {
            e->errors++;
            event_base_loopbreak(e->base);
        } else if (st != DBPOOL_POLL_OK) {
            ev_watch(e, st == DBPOOL_POLL_READING ? EV_READ : EV_WRITE);
        } else {
            e->connected = true;
            ev_send_round(e);
        }
    }
    if (!e->connected)
        return;
    if ((what & EV_READ) && dbpool_consume_input(e->c) < 0)
        e->errors++;
    dbpool_result *r;
    while ((r = dbpool_get_result(e->c)) != NULL) {
        if (dbpool_result_status_of(r) != DBPOOL_RESULT_OK)
            e->errors++;
        else
            e->sum += dbpool_result_value(r, 0, 0)->u.i;
        e->answered++;
        dbpool_result_free(r);
    }
    if (dbpool_pending(e->c) == 0)
        ev_send_round(e);
    if (e->answered == QUERIES || e->errors > 0) {
        event_base_loopbreak(e->base);
        return;
    }
    int f = dbpool_flush(e->c);
    if (f < 0)
        e->errors++;
    ev_watch(e, f == 1 ? EV_READ | EV_WRITE : EV_READ);
}

Test(async, libevent_driven_client)
{
    h_start(NULL);
    struct ev_client e = { 0 };
    dbpool_error err;

    e.base = event_base_new();
    cr_assert_not_null(e.base);
    e.c = dbpool_connect_start(h_paths()->sock, H_POOL, "libevent", &err);
    cr_assert_not_null(e.c);
    e.ev = event_new(e.base, -1, 0, NULL, NULL);
    cr_assert_not_null(e.ev);
    ev_watch(&e, EV_WRITE);         /* connect_poll at once: the socket is writable */
    struct timeval tv = { 30, 0 };
    event_base_loopexit(e.base, &tv);
    event_base_dispatch(e.base);
    cr_assert_eq(e.errors, 0, "%s", dbpool_last_error(e.c)->message);
    cr_assert_eq(e.answered, QUERIES);
    cr_assert_eq(e.sum, (int64_t)QUERIES * (QUERIES - 1) / 2);
    event_free(e.ev);
    event_base_free(e.base);
    dbpool_close(e.c);
    h_stop_ok();
}
